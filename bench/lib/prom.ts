// Reads a Prometheus text page into sums per metric name (labels summed over), and per full series.
export interface Scrape {
  sum(name: string, labelFilter?: (labels: string) => boolean): number;
  has(name: string): boolean;
  series: Map<string, number>;
}

export async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    series.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return {
    series,
    has(name) {
      for (const k of series.keys()) if (k === name || k.startsWith(`${name}{`)) return true;
      return false;
    },
    sum(name, labelFilter) {
      let s = 0;
      for (const [k, v] of series) {
        const brace = k.indexOf('{');
        const n = brace < 0 ? k : k.slice(0, brace);
        if (n !== name) continue;
        if (labelFilter && !labelFilter(brace < 0 ? '' : k.slice(brace))) continue;
        s += v;
      }
      return s;
    },
  };
}

/** Histogram quantile from cumulative `_bucket` series (linear inside the bucket, as Prometheus does). */
export function histogramQuantile(s: Scrape, name: string, q: number, labelFilter?: (l: string) => boolean): number {
  const buckets = new Map<number, number>();
  for (const [k, v] of s.series) {
    if (!k.startsWith(`${name}_bucket{`)) continue;
    if (labelFilter && !labelFilter(k)) continue;
    const m = /le="([^"]+)"/.exec(k);
    if (!m) continue;
    const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
    buckets.set(le, (buckets.get(le) ?? 0) + v);
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (!total) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevC = 0;
  for (const [le, c] of sorted) {
    if (c >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevC)) / Math.max(1, c - prevC);
    }
    prevLe = le;
    prevC = c;
  }
  return NaN;
}
