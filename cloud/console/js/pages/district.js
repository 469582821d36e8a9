import { h, mount } from '../dom.js';
import { api } from '../api.js';
import { ago } from '../format.js';
import { poll } from '../poll.js';
import { errorBox, statusBadge } from './common.js';

export function districtPage(main, district) {
  const err = errorBox();
  const body = h('tbody');
  const summary = h('p.muted#district-summary');
  mount(
    main,
    h('div.page-head', h('h1', h('a', { href: '#/districts' }, 'Districts'), ' / ', district), summary),
    err.el,
    h('table.grid#devices', h('thead', h('tr', ['Device', 'Family', 'Profile', 'Site', 'Edge', 'Status', 'Last heard'].map((t) => h('th', t)))), body),
  );
  return poll(
    async () => {
      const r = await api(`/v1/districts/${encodeURIComponent(district)}/devices`);
      err.clear();
      const on = r.devices.filter((d) => d.status === 'online').length;
      summary.textContent = `${r.devices.length} devices, ${on} online${r.truncated ? ' (first page only)' : ''}`;
      mount(
        body,
        r.devices.length
          ? r.devices.map((d) =>
              h(
                'tr',
                { 'data-device': d.id },
                h('td', h('a', { href: `#/device/${encodeURIComponent(d.id)}` }, d.id)),
                h('td', d.family),
                h('td', d.profile),
                h('td', d.site ?? '—'),
                h('td', d.edge ?? '—'),
                h('td', statusBadge(d.status)),
                h('td', { title: d.last_seen ? new Date(d.last_seen).toISOString() : '' }, ago(d.last_seen, r.now)),
              ),
            )
          : h('tr', h('td.empty', { colspan: 7 }, 'No devices in this district.')),
      );
    },
    5000,
    (e) => err.show(e),
  );
}
