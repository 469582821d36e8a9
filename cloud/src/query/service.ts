// The query API's reads from InfluxDB: a device's latest values and its history over a time range,
// optionally downsampled. Uses the `influx` client (queries are not the hot path) with bound parameters
// for every value, identifiers only from validated names (influxql.ts), and field names checked against
// the measurement's real field keys (SHOW FIELD KEYS, cached), so a query can only ever name fields
// that exist. Rows are limited; a downsampled query is limited in buckets.
import type { InfluxService } from '../plugins/influx.ts';
import type { CloudConfig } from '../config/schema.ts';
import { CloudError } from '../errors.ts';
import { ident, source, timeRange, type Fn } from './influxql.ts';

export const ROLLUP_1M = 'rollup_1m';
export const ROLLUP_1H = 'rollup_1h';
export type Source = 'raw' | typeof ROLLUP_1M | typeof ROLLUP_1H;
export const SOURCES: readonly Source[] = ['raw', ROLLUP_1M, ROLLUP_1H];

const NUMERIC = new Set(['float', 'integer']);

export interface HistoryParams {
  metrics: string[];
  from: number;
  to: number;
  every: { text: string; ms: number } | undefined;
  fn: Fn | undefined;
  source: Source | undefined;
}

export interface HistoryResult {
  device_id: string;
  family: string;
  metrics: string[];
  from: number;
  to: number;
  every: string | null;
  fn: Fn | null;
  source: Source;
  points: Record<string, unknown>[];
  truncated: boolean;
}

export interface LatestResult {
  device_id: string;
  family: string;
  /** Newest reading time of any metric; null when none within query.latestWindow. */
  ts: number | null;
  metrics: Record<string, { value: unknown; ts: number }>;
}

interface RawSeries {
  name?: string;
  columns: string[];
  values: unknown[][];
}
interface RawResult {
  results?: { statement_id: number; series?: RawSeries[]; error?: string }[];
  error?: string;
}

/** InfluxQL duration text ("30d", "INF") → ms; Infinity for INF / 0. */
export function retentionMs(text: string): number {
  if (/^(inf|0+[smhdw]?)$/i.test(text)) return Infinity;
  const m = /^(\d+)([mhdw])$/.exec(text);
  if (!m) return Infinity;
  return Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 }[m[2] as 'm' | 'h' | 'd' | 'w'];
}

export class QueryService {
  private readonly keys = new Map<string, { at: number; fields: Map<string, string> }>();
  private readonly db: string;

  constructor(
    private readonly influx: InfluxService,
    private readonly config: CloudConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.db = config.influx.database;
  }

  private async run(statements: string[], placeholders: Record<string, string | number> = {}): Promise<RawResult['results'] & object> {
    let raw: RawResult;
    try {
      raw = (await this.influx.client.queryRaw(statements, {
        database: this.db,
        precision: 'ms',
        placeholders,
        signal: AbortSignal.timeout(this.config.influx.timeoutMs),
      })) as RawResult;
    } catch (err) {
      const msg = (err as Error).message ?? String(err);
      if (/authori[sz]ation|401|403/i.test(msg)) throw new CloudError('INFLUX_AUTH_FAILED');
      // A 400 from InfluxDB is a query it refused (we validated, so this is a bug or a type clash).
      if (/^A 400/.test(msg) || /error parsing query/i.test(msg)) throw new CloudError('QUERY_INVALID', `InfluxDB refused the query: ${msg.slice(0, 300)}`);
      throw new CloudError('INFLUX_UNAVAILABLE', msg.slice(0, 300));
    }
    if (raw.error) throw new CloudError('QUERY_INVALID', `InfluxDB refused the query: ${raw.error.slice(0, 300)}`);
    const results = raw.results ?? [];
    const failed = results.find((r) => r.error && !/database not found/.test(r.error));
    if (failed) throw new CloudError('QUERY_INVALID', `InfluxDB refused the query: ${failed.error!.slice(0, 300)}`);
    return results;
  }

  /** Field name → type of a measurement in a retention policy (raw = the database's default RP). */
  async fieldKeys(rp: string | undefined, measurement: string, refresh = false): Promise<Map<string, string>> {
    const key = `${rp ?? ''}\u0000${measurement}`;
    const cached = this.keys.get(key);
    const now = this.now();
    // A refresh on a miss is allowed at most every 5 s, so hostile metric names cannot hammer InfluxDB.
    if (cached && now - cached.at < (refresh ? 5_000 : this.config.query.fieldCacheMs)) return cached.fields;
    const from = rp ? `${ident(this.db)}.${ident(rp)}.${ident(measurement)}` : ident(measurement);
    const [r] = await this.run([`SHOW FIELD KEYS ON ${ident(this.db)} FROM ${from}`]);
    const fields = new Map<string, string>();
    for (const s of r?.series ?? []) for (const [name, type] of s.values as [string, string][]) fields.set(name, type);
    this.keys.set(key, { at: now, fields });
    return fields;
  }

  private async requireFields(family: string, metrics: string[], src: Source, fn: Fn | undefined): Promise<void> {
    let raw = await this.fieldKeys(undefined, family);
    const prefix = src === 'raw' ? '' : `${fn === 'count' ? 'count' : fn === 'max' ? 'max' : fn === 'min' ? 'min' : 'mean'}_`;
    let rolled = src === 'raw' ? undefined : await this.fieldKeys(src, family);
    const missing = () => metrics.filter((m) => !raw.has(m) && !rolled?.has(prefix + m));
    if (missing().length) {
      raw = await this.fieldKeys(undefined, family, true);
      if (src !== 'raw') rolled = await this.fieldKeys(src, family, true);
    }
    const unknown = missing();
    if (unknown.length) {
      const known = [...raw.keys()].filter((k) => k !== 'quality').slice(0, 50);
      throw new CloudError('QUERY_INVALID', `no metric ${unknown.join(', ')} in ${family} readings (known: ${known.join(', ') || 'none yet'})`);
    }
    if (fn === 'mean' || fn === 'max' || fn === 'min') {
      const text = metrics.filter((m) => raw.has(m) && !NUMERIC.has(raw.get(m)!));
      if (text.length) throw new CloudError('QUERY_INVALID', `fn ${fn} needs numbers; ${text.join(', ')} ${text.length > 1 ? 'are' : 'is'} ${text.map((m) => raw.get(m)).join(', ')} (use fn=last or fn=count)`);
    }
  }

  /** Which data answers a history query: raw while `from` is within raw retention, else a roll-up. */
  chooseSource(p: HistoryParams): Source {
    if (p.source) return p.source;
    const r = this.config.influx.retention;
    if (!p.every || !p.fn || p.fn === 'last' || !r.manage) return 'raw';
    const age = this.now() - p.from;
    if (age <= retentionMs(r.raw)) return 'raw';
    const minuteMultiple = p.every.ms % 60_000 === 0;
    const hourMultiple = p.every.ms % 3_600_000 === 0;
    if (minuteMultiple && age <= retentionMs(r.rollup1m)) return ROLLUP_1M;
    if (hourMultiple) return ROLLUP_1H;
    return minuteMultiple ? ROLLUP_1M : 'raw';
  }

  async history(device: { id: string; family: string }, p: HistoryParams): Promise<HistoryResult> {
    const q = this.config.query;
    if (p.to <= p.from) throw new CloudError('QUERY_INVALID', 'from must be before to');
    if (p.fn && !p.every) throw new CloudError('QUERY_INVALID', `fn=${p.fn} needs every (e.g. every=5m)`);
    const fn: Fn | undefined = p.every ? (p.fn ?? 'mean') : undefined;
    if (p.every) {
      const buckets = Math.ceil((p.to - p.from) / p.every.ms);
      if (buckets > q.maxBuckets) {
        throw new CloudError('QUERY_INVALID', `${buckets} intervals of ${p.every.text} is more than query.maxBuckets (${q.maxBuckets}): shorten the range or widen every`);
      }
    } else if (p.to - p.from > q.maxRawRangeMs) {
      throw new CloudError('QUERY_INVALID', `a range over ${Math.round(q.maxRawRangeMs / 3_600_000)} h needs every (downsampling)`);
    }
    const src = this.chooseSource({ ...p, fn });
    if (src !== 'raw' && !p.every) throw new CloudError('QUERY_INVALID', `source ${src} needs every and fn`);
    if (src !== 'raw' && p.every && p.every.ms % (src === ROLLUP_1H ? 3_600_000 : 60_000) !== 0) {
      throw new CloudError('QUERY_INVALID', `every must be a whole number of ${src === ROLLUP_1H ? 'hours' : 'minutes'} for source ${src}`);
    }
    await this.requireFields(device.family, p.metrics, src, fn);

    const from = source(this.db, src === 'raw' ? undefined : src, device.family);
    const where = `WHERE ${ident('device_id')} = $device AND ${timeRange(p.from, p.to)}`;
    let stmt: string;
    if (!fn) {
      stmt = `SELECT ${p.metrics.map(ident).join(', ')} FROM ${from} ${where} ORDER BY time ASC LIMIT ${q.maxRows + 1}`;
    } else {
      const sel = p.metrics.map((m) => {
        if (src === 'raw') return `${fn}(${ident(m)}) AS ${ident(m)}`;
        // Roll-ups hold mean_/max_/min_/count_<metric> per interval.
        const rolled = { mean: `mean(${ident(`mean_${m}`)})`, max: `max(${ident(`max_${m}`)})`, min: `min(${ident(`min_${m}`)})`, count: `sum(${ident(`count_${m}`)})`, last: `last(${ident(`mean_${m}`)})` }[fn];
        return `${rolled} AS ${ident(m)}`;
      });
      stmt = `SELECT ${sel.join(', ')} FROM ${from} ${where} GROUP BY time(${p.every!.text}) fill(none) LIMIT ${q.maxBuckets + 1}`;
    }
    const [r] = await this.run([stmt], { device: device.id });
    const s = r?.series?.[0];
    const points: Record<string, unknown>[] = [];
    if (s) {
      for (const row of s.values) {
        const pt: Record<string, unknown> = {};
        s.columns.forEach((c, i) => (pt[c === 'time' ? 'ts' : c] = row[i]));
        points.push(pt);
      }
    }
    const limit = fn ? q.maxBuckets : q.maxRows;
    const truncated = points.length > limit;
    if (truncated) points.length = limit;
    return { device_id: device.id, family: device.family, metrics: p.metrics, from: p.from, to: p.to, every: p.every?.text ?? null, fn: fn ?? null, source: src, points, truncated };
  }

  async latest(device: { id: string; family: string }): Promise<LatestResult> {
    const fields = [...(await this.fieldKeys(undefined, device.family)).keys()].slice(0, this.config.query.maxLatestFields);
    const out: LatestResult = { device_id: device.id, family: device.family, ts: null, metrics: {} };
    if (fields.length === 0) return out;
    const from = source(this.db, undefined, device.family);
    const window = `time >= now() - ${Math.floor(this.config.query.latestWindowMs)}ms`;
    const stmts = fields.map((f) => `SELECT last(${ident(f)}) AS ${ident('value')} FROM ${from} WHERE ${ident('device_id')} = $device AND ${window}`);
    const results = await this.run(stmts, { device: device.id });
    results.forEach((r, i) => {
      const row = r.series?.[0]?.values[0];
      if (!row) return;
      const ts = Number(row[0]);
      out.metrics[fields[i]!] = { value: row[1], ts };
      if (out.ts === null || ts > out.ts) out.ts = ts;
    });
    return out;
  }
}
