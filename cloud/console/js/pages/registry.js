// Admin: the device registry (a page of devices) and the CSV import (docs/registry.md for the columns).
import { h, mount } from '../dom.js';
import { api, q } from '../api.js';
import { errorBox } from './common.js';

const PAGE = 200;

export function registryPage(main) {
  const err = errorBox();
  const body = h('tbody');
  const more = h('button#registry-more', { type: 'button', hidden: true }, 'Next page');
  const count = h('span.muted#registry-count');
  const csv = h('textarea#csv-text', { rows: 8, spellcheck: 'false', placeholder: 'id,family,district,profile,site,secret\nenv-0001,environment,jinshui,environment-station-json,park,at-least-8-chars' });
  const file = h('input#csv-file', { type: 'file', accept: '.csv,text/csv' });
  const mode = h('select#csv-mode', h('option', { value: 'atomic' }, 'all rows or none'), h('option', { value: 'partial' }, 'the good rows'));
  const result = h('div#import-result');
  const submit = h('button.primary#csv-submit', { type: 'submit' }, 'Import');
  let after;
  let shown = 0;

  file.addEventListener('change', async () => {
    const f = file.files?.[0];
    if (f) csv.value = await f.text();
  });

  async function load(reset) {
    if (reset) {
      after = undefined;
      shown = 0;
      body.replaceChildren();
    }
    const r = await api(`/v1/devices${q({ limit: PAGE, after })}`);
    for (const d of r.devices) {
      body.append(
        h(
          'tr',
          { 'data-device': d.id },
          h('td', h('a', { href: `#/device/${encodeURIComponent(d.id)}` }, d.id)),
          h('td', d.family),
          h('td', d.profile),
          h('td', d.district),
          h('td', d.assigned_edge ?? '—'),
          h('td', d.credential),
          h('td', String(d.version)),
        ),
      );
    }
    shown += r.devices.length;
    after = r.next ?? undefined;
    more.hidden = !r.next;
    count.textContent = `${shown} devices shown, registry version ${r.registry_version}`;
  }
  more.addEventListener('click', () => load(false).catch((e) => err.show(e)));

  const form = h(
    'form.import#csv-form',
    {
      on: {
        async submit(e) {
          e.preventDefault();
          err.clear();
          result.replaceChildren();
          submit.disabled = true;
          try {
            let r;
            try {
              r = await api(`/v1/devices/import${q({ mode: mode.value })}`, { method: 'POST', body: csv.value, type: 'text/csv' });
            } catch (x) {
              if (x.body && Array.isArray(x.body.results)) r = x.body;
              else throw x;
            }
            showResult(r);
            await load(true);
          } catch (x) {
            err.show(x);
          } finally {
            submit.disabled = false;
          }
        },
      },
    },
    h('h2', 'Import devices from CSV'),
    h('p.muted', 'Columns: id, family, district (required), profile, site, lat, lon, address, owner_unit, expected_interval, edge, tags (k=v;k=v), hj212_mn, hj212_password, opcua_server, opcua_vars, secret. Generated credentials are shown once, below.'),
    h('label', 'CSV file ', file),
    csv,
    h('div.row', h('label', 'Import ', mode), submit),
  );

  function showResult(r) {
    const refused = (r.results ?? []).filter((x) => x.status === 'refused');
    const creds = (r.results ?? []).filter((x) => x.credentials && Object.keys(x.credentials).length);
    mount(
      result,
      h('p', { class: r.refused ? 'message error' : 'message ok', id: 'import-summary' }, `${r.imported ?? 0} imported, ${r.refused ?? 0} refused of ${r.rows ?? 0} rows${r.error ? ` (${r.message})` : ''}.`),
      refused.length
        ? h('table.grid', h('thead', h('tr', h('th', 'Line'), h('th', 'Device'), h('th', 'Why'))), h('tbody', refused.map((x) => h('tr', h('td', String(x.line ?? '')), h('td', x.id ?? ''), h('td', (x.issues ?? []).map((i) => `${i.field ?? ''}: ${i.message}`).join('; ') || x.error || x.message || 'refused')))))
        : null,
      creds.length
        ? h('details', h('summary', `${creds.length} new credentials (shown once)`), h('table.grid', h('tbody', creds.map((x) => h('tr', h('td', x.id), h('td.mono', JSON.stringify(x.credentials)))))))
        : null,
    );
  }

  mount(
    main,
    h('div.page-head', h('h1', 'Registry'), count),
    err.el,
    h('section.panel', form, result),
    h('section.panel', h('h2', 'Devices'), h('table.grid#registry-devices', h('thead', h('tr', ['Device', 'Family', 'Profile', 'District', 'Edge', 'Credential', 'Version'].map((t) => h('th', t)))), body), more),
  );
  load(true).catch((e) => err.show(e));
  return undefined;
}
