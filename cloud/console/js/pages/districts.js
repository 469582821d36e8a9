import { h, mount } from '../dom.js';
import { api } from '../api.js';
import { poll } from '../poll.js';
import { errorBox } from './common.js';

export function districtsPage(main) {
  const err = errorBox();
  const grid = h('div.cards#districts');
  const updated = h('span.muted');
  mount(main, h('div.page-head', h('h1', 'Districts'), updated), err.el, grid);
  return poll(
    async () => {
      const r = await api('/v1/districts');
      err.clear();
      updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
      if (!r.districts.length) {
        mount(grid, h('p.empty', 'No devices are registered yet. An admin can import them on the Registry page.'));
        return;
      }
      mount(
        grid,
        r.districts.map((d) =>
          h(
            'a.card.district',
            { href: `#/district/${encodeURIComponent(d.district)}`, 'data-district': d.district },
            h('h2', d.district),
            h(
              'div.counts',
              h('span.count.online', h('b', String(d.devices.online)), ' online'),
              h('span.count.offline', h('b', String(d.devices.offline)), ' offline'),
              h('span.count.total', h('b', String(d.devices.total)), ' devices'),
            ),
            h(
              'div.families',
              Object.entries(d.families).map(([f, c]) => h('span.family', `${f} ${c.online}/${c.total}`)),
            ),
            h(
              'div.alerts',
              d.alerts.firing ? h('span.state.firing', `${d.alerts.firing} firing`) : null,
              d.alerts.acknowledged ? h('span.state.acknowledged', `${d.alerts.acknowledged} acknowledged`) : null,
              !d.alerts.firing && !d.alerts.acknowledged ? h('span.muted', 'no open alerts') : null,
            ),
          ),
        ),
      );
    },
    5000,
    (e) => err.show(e),
  );
}
