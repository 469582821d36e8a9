import { h, mount } from '../dom.js';
import * as alerts from '../alerts-store.js';
import * as session from '../session.js';
import { time, value } from '../format.js';
import { errorBox, severityBadge, stateBadge } from './common.js';

const FILTERS = { open: (a) => a.state !== 'resolved', firing: (a) => a.state === 'firing', all: () => true };

export function alertsPage(main) {
  const err = errorBox();
  const body = h('tbody');
  const status = h('span.muted#alerts-status');
  let filter = 'open';
  const filterSel = h(
    'select#alert-filter',
    { 'aria-label': 'which alerts', on: { change: () => ((filter = filterSel.value), render()) } },
    h('option', { value: 'open', selected: true }, 'open (firing and acknowledged)'),
    h('option', { value: 'firing' }, 'firing'),
    h('option', { value: 'all' }, 'all, resolved too'),
  );
  const canAct = session.can('operator');
  mount(
    main,
    h('div.page-head', h('h1', 'Alerts'), h('label', 'Show ', filterSel), status),
    err.el,
    h(
      'table.grid#alerts',
      h('thead', h('tr', ['Severity', 'State', 'Rule', 'Device', 'District', 'Detail', 'Started', 'Changed', canAct ? 'Actions' : null].filter(Boolean).map((t) => h('th', t)))),
      body,
    ),
  );

  const busy = new Set();
  async function act(id, what) {
    busy.add(id);
    render();
    try {
      await (what === 'ack' ? alerts.acknowledge(id) : alerts.resolve(id));
      err.clear();
    } catch (e) {
      err.show(e);
    } finally {
      busy.delete(id);
      render();
    }
  }

  function detail(a) {
    const parts = [];
    if (a.type) parts.push(a.type);
    for (const [k, v] of Object.entries(a.attrs ?? {})) if (k !== 'edge_notified') parts.push(`${k}=${v}`);
    if (a.value !== null && a.value !== undefined && !a.type) parts.push(`value ${value(a.value)}`);
    if (a.threshold !== null && a.threshold !== undefined) parts.push(`threshold ${value(a.threshold)}`);
    return parts.join(', ');
  }

  function who(a) {
    if (a.state === 'acknowledged' && a.acked_by) return ` by ${a.acked_by}`;
    if (a.state === 'resolved' && a.resolved_by) return ` by ${a.resolved_by}`;
    return '';
  }

  function render() {
    const st = alerts.status();
    status.textContent = st.state === 'live' ? (st.loaded ? 'updating live' : 'loading…') : `stream ${st.state}${st.detail ? `: ${st.detail}` : ''}`;
    const list = alerts.all().filter(FILTERS[filter]);
    mount(
      body,
      list.length
        ? list.map((a) =>
            h(
              `tr.alert.${a.state}`,
              { 'data-alert-id': a.id, 'data-rule': a.rule, 'data-device': a.device_id, 'data-state': a.state },
              h('td', severityBadge(a.severity)),
              h('td', stateBadge(a.state), h('span.muted', who(a))),
              h('td.nowrap', { title: a.description ?? '' }, a.rule),
              h('td.nowrap', h('a', { href: `#/device/${encodeURIComponent(a.device_id)}` }, a.device_id)),
              h('td', a.district),
              h('td.detail', detail(a)),
              h('td.nowrap', time(a.started_at)),
              h('td.nowrap', time(a.updated_at)),
              canAct
                ? h(
                    'td.actions',
                    a.state === 'firing'
                      ? h('button.ack', { type: 'button', disabled: busy.has(a.id), on: { click: () => act(a.id, 'ack') } }, 'Acknowledge')
                      : null,
                    a.state !== 'resolved'
                      ? h('button.resolve', { type: 'button', disabled: busy.has(a.id), on: { click: () => act(a.id, 'resolve') } }, 'Resolve')
                      : null,
                  )
                : null,
            ),
          )
        : h('tr', h('td.empty', { colspan: canAct ? 9 : 8 }, st.loaded ? 'No alerts.' : 'Loading…')),
    );
  }
  const off = alerts.subscribe(render);
  render();
  return off;
}
