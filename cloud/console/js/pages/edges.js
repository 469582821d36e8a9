import { h, mount } from '../dom.js';
import { api } from '../api.js';
import { ago, duration, time } from '../format.js';
import { poll } from '../poll.js';
import { errorBox, statusBadge } from './common.js';

export function edgesPage(main) {
  const err = errorBox();
  const body = h('tbody');
  const note = h('p.muted');
  mount(
    main,
    h('div.page-head', h('h1', 'Edges')),
    err.el,
    h(
      'table.grid#edges',
      h('thead', h('tr', ['Edge', 'Link', 'Last contact', 'Last batch', 'Highest seq', 'Devices', 'Reported drops', 'Queue depth'].map((t) => h('th', t)))),
      body,
    ),
    note,
  );
  return poll(
    async () => {
      const r = await api('/v1/edges');
      err.clear();
      note.textContent = `Link is "up" while the edge's last batch is under ${duration(r.stale_after_ms)} old. Edges do not send their queue depth to the cloud yet: see each edge's own /metrics (citysense_edge_queue_*).`;
      mount(
        body,
        r.edges.length
          ? r.edges.map((e) =>
              h(
                'tr',
                { 'data-edge': e.id },
                h('td', e.id, e.configured ? null : h('span.muted', ' (not in config)')),
                h('td', statusBadge(e.link)),
                h('td', { title: time(e.last_batch_at) }, ago(e.last_batch_at, r.now)),
                h('td', e.last_seq === null ? '—' : `#${e.last_seq} (${e.last_lane}, ${e.last_batch_readings} readings, ${e.last_batch_events} events)`),
                h('td', e.max_seq_processed ?? '—'),
                h('td', String(e.devices_assigned)),
                h(
                  'td',
                  e.drops_total
                    ? h('span.warn', { title: e.drops.map((d) => `${d.class}/${d.reason}: ${d.count}`).join('\n') }, `${e.drops_total} (${e.drops.map((d) => `${d.class}/${d.reason}`).join(', ')})`)
                    : '0',
                ),
                h('td.muted', 'not reported'),
              ),
            )
          : h('tr', h('td.empty', { colspan: 8 }, 'No edges configured or heard from.')),
      );
    },
    5000,
    (e) => err.show(e),
  );
}
