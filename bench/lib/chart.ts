// A small SVG line chart, written by hand (no dependency): throughput on the left axis, latencies on the
// right, the run's steps as shaded bands with their names.
export interface Series {
  name: string;
  axis: 'left' | 'right';
  color: string;
  dots?: boolean;
  points: [number, number][];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function chartSvg(o: { title: string; series: Series[]; spans: { phase: string; from: number; to: number }[]; t0: number }): string {
  const W = 1200;
  const H = 520;
  const m = { l: 80, r: 80, t: 40, b: 150 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const all = o.series.flatMap((s) => s.points);
  const tMax = Math.max(o.t0 + 1000, ...all.map((p) => p[0]), ...o.spans.map((s) => s.to));
  const x = (t: number) => m.l + ((t - o.t0) / (tMax - o.t0)) * pw;
  const maxOf = (axis: 'left' | 'right') => niceMax(Math.max(0, ...o.series.filter((s) => s.axis === axis).flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite)));
  const yl = maxOf('left');
  // Latencies: cap the axis at the 99th percentile × 1.5 so one outlier does not flatten the rest.
  const rv = o.series.filter((s) => s.axis === 'right').flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite).sort((a, b) => a - b);
  const yr = niceMax(rv.length ? Math.min(rv.at(-1)!, (rv[Math.floor(rv.length * 0.99)] ?? 0) * 1.5) : 1);
  const y = (v: number, axis: 'left' | 'right') => m.t + ph - (Math.min(v, axis === 'left' ? yl : yr) / (axis === 'left' ? yl : yr)) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(o.title)}</text>`);
  o.spans.forEach((s, i) => {
    const x0 = x(s.from);
    const x1 = Math.max(x0 + 1, x(s.to));
    out.push(`<rect x="${x0.toFixed(1)}" y="${m.t}" width="${(x1 - x0).toFixed(1)}" height="${ph}" fill="${i % 2 ? '#f4f4f4' : '#fafafa'}"/>`);
    const label = s.phase.split(':')[0]!;
    out.push(`<text transform="translate(${((x0 + x1) / 2).toFixed(1)},${m.t + ph + 36}) rotate(35)" font-size="10" fill="#555">${esc(label)}</text>`);
  });
  for (let i = 0; i <= 5; i++) {
    const yy = m.t + ph - (i / 5) * ph;
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`);
    out.push(`<text x="${m.l - 6}" y="${yy + 4}" text-anchor="end">${Math.round((yl * i) / 5).toLocaleString('en-US')}</text>`);
    out.push(`<text x="${m.l + pw + 6}" y="${yy + 4}">${((yr * i) / 5).toLocaleString('en-US', { maximumFractionDigits: 1 })}</text>`);
  }
  const secs = (tMax - o.t0) / 1000;
  const step = niceMax(secs / 10);
  for (let s = 0; s <= secs; s += step) out.push(`<text x="${x(o.t0 + s * 1000).toFixed(1)}" y="${m.t + ph + 16}" text-anchor="middle">${Math.round(s)} s</text>`);
  out.push(`<text transform="translate(18,${m.t + ph / 2}) rotate(-90)" text-anchor="middle">readings/s</text>`);
  out.push(`<text transform="translate(${W - 14},${m.t + ph / 2}) rotate(90)" text-anchor="middle">latency, ms</text>`);
  for (const s of o.series) {
    const pts = s.points.filter((p) => Number.isFinite(p[1]));
    if (!pts.length) continue;
    if (s.dots) for (const p of pts) out.push(`<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1], s.axis).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
    else {
      // Break the line where samples are more than 5 s apart (between steps).
      let d = '';
      let prev = -Infinity;
      for (const p of pts) {
        d += `${p[0] - prev > 5000 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1], s.axis).toFixed(1)} `;
        prev = p[0];
      }
      out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`);
    }
  }
  o.series.forEach((s, i) => {
    const lx = m.l + (i % 2) * 420;
    const ly = H - 30 + Math.floor(i / 2) * 16;
    out.push(`<rect x="${lx}" y="${ly - 9}" width="14" height="4" fill="${s.color}"/><text x="${lx + 20}" y="${ly - 3}">${esc(s.name)} (${s.axis} axis)</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
