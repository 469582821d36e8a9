import { h, mount } from '../dom.js';
import { api, q } from '../api.js';
import * as alerts from '../alerts-store.js';
import { timeChart } from '../chart.js';
import { ago, time, value } from '../format.js';
import { poll } from '../poll.js';
import { errorBox, severityBadge, stateBadge } from './common.js';

const WINDOW_MS = 15 * 60_000;
const POLL_MS = 2000;
/** The metric charted first, when the device has it. */
const PREFERRED = ['pm25', 'aqi', 'temperature', 'floor', 'smoke_obscuration', 'sprinkler_pressure', 'battery_pct'];

export function devicePage(main, id) {
  const err = errorBox();
  const info = h('dl.info#device-info');
  const latestBody = h('tbody');
  const heard = h('span.muted#device-heard');
  const picker = h('select#metric-picker', { 'aria-label': 'metric to chart' });
  const chartBox = h('div.chart-box');
  const chartNote = h('p.muted');
  const openAlerts = h('ul.device-alerts');
  const back = h('a', { href: '#/districts' }, 'Districts');
  const crumb = h('h1', back, ' / ', h('span#district-crumb'), ' / ', id);
  mount(
    main,
    h('div.page-head', crumb, heard),
    err.el,
    h('section.panel', h('h2', 'Device'), info),
    h('section.panel', h('h2', 'Latest values'), h('table.grid#latest', h('thead', h('tr', h('th', 'Metric'), h('th', 'Value'), h('th', 'Time'))), latestBody)),
    h('section.panel', h('div.panel-head', h('h2', 'Recent readings'), h('label', 'Metric ', picker)), chartBox, chartNote),
    h('section.panel', h('h2', 'Open alerts'), openAlerts),
  );

  let device;
  let chart;
  let chartMetric;
  let family;
  const shown = new Map();

  api(`/v1/devices/${encodeURIComponent(id)}`)
    .then((d) => {
      device = d;
      family = d.family;
      const dist = main.querySelector('#district-crumb');
      if (dist) mount(dist, h('a', { href: `#/district/${encodeURIComponent(d.district)}` }, d.district));
      mount(
        info,
        [
          ['Family', d.family],
          ['Profile', d.profile],
          ['District', d.district],
          ['Site', d.site ?? '—'],
          ['Edge', d.assigned_edge ?? '—'],
          ['Credential', d.credential],
          ['Expected interval', d.expected_interval_ms ? `${d.expected_interval_ms / 1000} s` : 'family default'],
        ].map(([k, v]) => [h('dt', k), h('dd', v)]),
      );
    })
    .catch((e) => err.show(e));

  async function loadChart(metric) {
    chartMetric = metric;
    chart?.destroy();
    chartBox.replaceChildren();
    chart = timeChart(chartBox, metric);
    const to = Date.now();
    const r = await api(`/v1/devices/${encodeURIComponent(id)}/history${q({ metric, from: to - WINDOW_MS, to, family: device ? undefined : family })}`);
    if (chartMetric !== metric) return;
    chart.set(r.points.filter((p) => typeof p[metric] === 'number').map((p) => [p.ts, p[metric]]));
    chartNote.textContent = `${metric}, the last ${WINDOW_MS / 60_000} minutes; new readings are added every ${POLL_MS / 1000} s.${r.truncated ? ' (truncated)' : ''}`;
  }
  picker.addEventListener('change', () => loadChart(picker.value).catch((e) => err.show(e)));

  const renderAlerts = () => {
    const list = alerts.all().filter((a) => a.device_id === id && a.state !== 'resolved');
    mount(
      openAlerts,
      list.length
        ? list.map((a) => h('li', { 'data-alert-id': a.id }, severityBadge(a.severity), ' ', stateBadge(a.state), ' ', h('a', { href: '#/alerts' }, a.rule), ` since ${time(a.started_at)}`))
        : h('li.muted', 'none'),
    );
  };
  const offAlerts = alerts.subscribe(renderAlerts);
  renderAlerts();

  const stop = poll(
    async () => {
      const r = await api(`/v1/devices/${encodeURIComponent(id)}/latest${q({ family: device ? undefined : family })}`);
      err.clear();
      family = r.family;
      heard.textContent = r.ts ? `last reading ${ago(r.ts)}` : 'no readings yet';
      heard.dataset.ts = String(r.ts ?? '');
      const names = Object.keys(r.metrics).sort();
      const numeric = names.filter((n) => typeof r.metrics[n].value === 'number');
      // Rows: update in place, so a change can be seen (and flashes).
      if (names.join() !== [...shown.keys()].join()) {
        shown.clear();
        latestBody.replaceChildren();
        for (const n of names) {
          const v = h('td.value', { 'data-metric': n });
          const t = h('td.time');
          latestBody.append(h('tr', { 'data-metric-row': n }, h('th', n), v, t));
          shown.set(n, { v, t, last: undefined });
        }
        if (!names.length) latestBody.append(h('tr', h('td.empty', { colspan: 3 }, 'No readings in the last 30 days.')));
      }
      for (const n of names) {
        const m = r.metrics[n];
        const row = shown.get(n);
        const text = value(m.value);
        if (row.last !== undefined && row.v.textContent !== text) {
          row.v.classList.remove('flash');
          void row.v.offsetWidth;
          row.v.classList.add('flash');
        }
        row.v.textContent = text;
        row.v.dataset.ts = String(m.ts);
        row.t.textContent = time(m.ts);
        row.last = `${m.ts}`;
      }
      if (numeric.length && picker.options.length !== numeric.length) {
        const keep = chartMetric && numeric.includes(chartMetric) ? chartMetric : (PREFERRED.find((n) => numeric.includes(n)) ?? numeric[0]);
        mount(picker, numeric.map((n) => h('option', { value: n, selected: n === keep }, n)));
        if (keep !== chartMetric) await loadChart(keep);
      }
      if (chart && chartMetric && r.metrics[chartMetric] && typeof r.metrics[chartMetric].value === 'number') {
        chart.push(r.metrics[chartMetric].ts, r.metrics[chartMetric].value, WINDOW_MS);
      }
    },
    POLL_MS,
    (e) => err.show(e),
  );

  return () => {
    stop();
    offAlerts();
    chart?.destroy();
  };
}
