// A time-series chart of one metric with uPlot (served from /console/vendor/uplot.min.js, MIT).
// uPlot styles its elements through the CSSOM (element.style), which the CSP's style-src 'self' allows.
import { h } from './dom.js';

export function timeChart(container, label) {
  const el = h('div.chart');
  container.append(el);
  const xs = [];
  const ys = [];
  if (!window.uPlot) {
    el.append(h('p.muted', 'The chart library did not load.'));
    return { set() {}, push() {}, destroy() {} };
  }
  const width = () => Math.max(320, (el.clientWidth || container.clientWidth || 800) - 8);
  const plot = new window.uPlot(
    {
      width: width(),
      height: 300,
      scales: { x: { time: true } },
      series: [{}, { label, stroke: '#0f5c8c', fill: 'rgba(15,92,140,0.08)', width: 2, points: { show: true, size: 4 } }],
      axes: [
        {
          stroke: '#556',
          space: 90,
          // Whole seconds and up: readings arrive every few seconds at most.
          incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400],
          values: (u, splits) => splits.map((s) => new Date(s * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })),
        },
        { stroke: '#556', size: 60 },
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    },
    [xs, ys],
    el,
  );
  const onResize = () => plot.setSize({ width: width(), height: 300 });
  window.addEventListener('resize', onResize);
  const redraw = () => plot.setData([xs, ys]);
  return {
    /** Replaces the data: [[ms, value], ...] in time order. */
    set(points) {
      xs.length = 0;
      ys.length = 0;
      for (const [t, v] of points) (xs.push(t / 1000), ys.push(v));
      redraw();
    },
    /** Appends a point newer than the last; keeps `windowMs` of data. */
    push(t, v, windowMs) {
      if (xs.length && t / 1000 <= xs[xs.length - 1]) return false;
      xs.push(t / 1000);
      ys.push(v);
      const from = t / 1000 - windowMs / 1000;
      while (xs.length > 2 && xs[0] < from) (xs.shift(), ys.shift());
      redraw();
      return true;
    },
    get size() {
      return xs.length;
    },
    destroy() {
      window.removeEventListener('resize', onResize);
      plot.destroy();
    },
  };
}
