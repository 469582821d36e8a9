// InfluxQL is built here, and only here, from validated parts:
//   - identifiers (measurement, field, retention policy, database) match a strict pattern and are
//     double-quoted with escaping besides;
//   - values (device id, district) never enter the text: they travel as bound parameters ($device);
//   - times are integers (ms since the epoch) that we parsed ourselves, written as `<n>ms`;
//   - every and fn come from an allow-list.
// Anything else is refused with QUERY_INVALID before any text is built.
import { CloudError } from '../errors.ts';

/** Metric (field) names the query API accepts: the edge normaliser's rule (edge/src/profiles/schema.ts). */
export const METRIC_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
export const FUNCTIONS = ['mean', 'max', 'min', 'last', 'count'] as const;
export type Fn = (typeof FUNCTIONS)[number];

const IDENT_SAFE = /^[^\u0000-\u001f\u007f]{1,255}$/;

/** A double-quoted InfluxQL identifier. Callers pass validated names; the escaping is a second wall. */
export function ident(name: string): string {
  if (!IDENT_SAFE.test(name)) throw new CloudError('QUERY_INVALID', 'an identifier has control characters');
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A single-quoted InfluxQL string literal (for SHOW statements, which take no bound parameters). */
export function literal(s: string): string {
  if (!IDENT_SAFE.test(s)) throw new CloudError('QUERY_INVALID', 'a value has control characters');
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function checkMetric(name: string): string {
  if (!METRIC_NAME.test(name)) {
    throw new CloudError('QUERY_INVALID', `metric ${JSON.stringify(name.slice(0, 80))} is not a metric name (a letter or _, then letters, digits, _; at most 64)`);
  }
  return name;
}

/** `metric=pm25,pm10` (or repeated) → names, each checked. */
export function parseMetrics(v: unknown, max: number): string[] {
  const raw = (Array.isArray(v) ? v : [v]).filter((x) => x !== undefined);
  if (raw.some((x) => typeof x !== 'string')) throw new CloudError('QUERY_INVALID', 'metric must be text');
  const names = (raw as string[]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new CloudError('QUERY_INVALID', 'give metric=<name> (or several: metric=pm25,pm10)');
  if (names.length > max) throw new CloudError('QUERY_INVALID', `at most ${max} metrics per query`);
  return [...new Set(names.map(checkMetric))];
}

export function parseFn(v: unknown): Fn | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || !(FUNCTIONS as readonly string[]).includes(v)) {
    throw new CloudError('QUERY_INVALID', `fn must be one of ${FUNCTIONS.join(', ')} (got ${JSON.stringify(String(v).slice(0, 80))})`);
  }
  return v as Fn;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MAX_EVERY_MS = 366 * 86_400_000;

/** `every`: a whole number and one unit (s, m, h, d), 1s .. 366d. Returns the InfluxQL text and ms. */
export function parseEvery(v: unknown): { text: string; ms: number } | undefined {
  if (v === undefined || v === '') return undefined;
  const m = typeof v === 'string' ? /^([1-9][0-9]{0,5})([smhd])$/.exec(v) : null;
  if (!m) throw new CloudError('QUERY_INVALID', `every must be a whole number and one unit s, m, h or d, e.g. 1m, 5m, 1h, 1d (got ${JSON.stringify(String(v).slice(0, 80))})`);
  const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
  if (ms > MAX_EVERY_MS) throw new CloudError('QUERY_INVALID', 'every is at most 366d');
  return { text: `${m[1]}${m[2]}`, ms };
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** ISO 8601 or milliseconds since the epoch → ms; anything else is refused. */
export function parseTime(name: string, v: unknown): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw new CloudError('QUERY_INVALID', `${name} must be given once`);
  let ms: number;
  if (/^\d{1,15}$/.test(v)) ms = Number(v);
  else if (ISO_8601.test(v)) ms = Date.parse(v);
  else ms = NaN;
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > 8_640_000_000_000_000) {
    throw new CloudError('QUERY_INVALID', `${name} must be an ISO 8601 time (2025-11-23T08:00:00Z) or milliseconds since the epoch (got ${JSON.stringify(v.slice(0, 80))})`);
  }
  return ms;
}

/** `time >= <from>ms AND time < <to>ms`, from integers only. */
export function timeRange(from: number, to: number): string {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to)) throw new CloudError('QUERY_INVALID', 'times must be whole milliseconds');
  return `time >= ${from}ms AND time < ${to}ms`;
}

/** "<db>"."<rp>"."<measurement>" */
export function source(database: string, rp: string | undefined, measurement: string): string {
  return rp ? `${ident(database)}.${ident(rp)}.${ident(measurement)}` : `${ident(database)}..${ident(measurement)}`;
}
