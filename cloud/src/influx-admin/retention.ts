// Retention policies and continuous queries (roll-ups), made to match influx.retention at start-up,
// idempotently: each start reads SHOW RETENTION POLICIES / SHOW CONTINUOUS QUERIES and changes only what
// differs. InfluxDB 1.x has no CREATE OR REPLACE for continuous queries, so a CQ whose definition
// changed is dropped and created again (a CQ holds no data; the roll-up points it wrote stay).
//
//   raw readings:  the database's default retention policy (normally `autogen`). A database the cloud
//                  creates gets influx.retention.raw at once (CREATE DATABASE ... WITH DURATION). An
//                  existing policy is never shortened, lengthened or replaced unless the config opts in
//                  with influx.retention.alterExistingPolicies (issue 11: pointed at an InfluxDB that
//                  already held years of history, the cloud once cut its infinite default RP to 30 days).
//                  With the opt-in the default RP is altered, never replaced: making another RP the
//                  default would send new writes there and hide the existing points from queries that
//                  name no RP (docs/retention.md).
//   rollup_1m:     mean/max/min/count of every field per minute, per series (GROUP BY time(1m), *),
//                  kept influx.retention.rollup1m; CQ cq_1m_<family>
//   rollup_1h:     the same per hour, from the raw points; kept influx.retention.rollup1h; CQ cq_1h_<family>
import type { InfluxDB } from 'influx';
import type { CloudConfig } from '../config/schema.ts';
import { ident } from '../query/influxql.ts';
import { ROLLUP_1H, ROLLUP_1M } from '../query/service.ts';

export const ROLLUP_FAMILIES = ['environment', 'elevator', 'fire', 'nbiot'] as const;

export type RetentionConfig = CloudConfig['influx']['retention'];

export interface RetentionReport {
  rawPolicy: string;
  created: string[];
  /** Existing policies changed, each with why (only with influx.retention.alterExistingPolicies). */
  altered: string[];
  replaced: string[];
  unchanged: string[];
  /** Existing policies whose duration differs from the config and that were left as they are. */
  kept: string[];
}

interface RawResult {
  results?: { series?: { name?: string; columns: string[]; values?: unknown[][] }[]; error?: string }[];
  error?: string;
}

/** "720h0m0s" / "30d" / "INF" / "0s" → ms (0 = infinite). */
export function durationMs(text: string): number {
  const t = text.trim();
  if (/^inf$/i.test(t)) return 0;
  let ms = 0;
  let matched = '';
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w)/g)) {
    matched += m[0];
    const unit = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2]!]!;
    ms += Number(m[1]) * unit;
  }
  if (matched !== t) throw new Error(`not a duration: ${text}`);
  return Math.round(ms);
}

/** The CQ statement for one family and interval, exactly as we create it. */
export function cqStatement(db: string, rawPolicy: string, family: string, interval: '1m' | '1h', resampleFor: string): string {
  const rp = interval === '1m' ? ROLLUP_1M : ROLLUP_1H;
  return (
    `CREATE CONTINUOUS QUERY ${ident(`cq_${interval}_${family}`)} ON ${ident(db)} RESAMPLE EVERY ${interval} FOR ${resampleFor} BEGIN ` +
    `SELECT mean(*), max(*), min(*), count(*) INTO ${ident(db)}.${ident(rp)}.${ident(family)} FROM ${ident(db)}.${ident(rawPolicy)}.${ident(family)} ` +
    `GROUP BY time(${interval}), * END`
  );
}

/** InfluxDB stores a CQ re-formatted (quotes only where needed): compare without quotes, case or spacing. */
export function sameCq(a: string, b: string): boolean {
  const norm = (s: string) => s.replace(/"/g, '').replace(/\s+/g, ' ').trim().toLowerCase();
  return norm(a) === norm(b);
}

async function exec(client: InfluxDB, db: string, q: string): Promise<RawResult> {
  const r = (await client.queryRaw(q, { database: db, method: 'POST' })) as RawResult;
  const err = r.error ?? r.results?.find((x) => x.error)?.error;
  if (err) throw new Error(`InfluxDB refused "${q}": ${err}`);
  return r;
}

export async function ensureRetention(client: InfluxDB, db: string, cfg: RetentionConfig): Promise<RetentionReport> {
  const report: RetentionReport = { rawPolicy: '', created: [], altered: [], replaced: [], unchanged: [], kept: [] };
  const dbs = await exec(client, db, 'SHOW DATABASES');
  const exists = (dbs.results?.[0]?.series?.[0]?.values ?? []).some((v) => v[0] === db);
  if (!exists) {
    // Ours from the start: its default policy is created with the raw duration, nothing is altered.
    const dur = cfg.raw.toUpperCase() === 'INF' ? 'INF' : cfg.raw;
    await exec(client, db, `CREATE DATABASE ${ident(db)} WITH DURATION ${dur} REPLICATION 1 NAME "autogen"`);
    report.created.push(`database ${db} with default retention policy autogen (${dur})`);
  }

  const rps = await exec(client, db, `SHOW RETENTION POLICIES ON ${ident(db)}`);
  const s = rps.results?.[0]?.series?.[0];
  const col = (name: string) => s?.columns.indexOf(name) ?? -1;
  const policies = (s?.values ?? []).map((v) => ({
    name: String(v[col('name')]),
    duration: String(v[col('duration')]),
    shard: String(v[col('shardGroupDuration')]),
    isDefault: v[col('default')] === true,
  }));
  const def = policies.find((p) => p.isDefault);
  const rawPolicy = def?.name ?? 'autogen';
  report.rawPolicy = rawPolicy;

  const want = (name: string, duration: string, isDefault: boolean) => ({ name, duration, isDefault });
  const desired = [want(rawPolicy, cfg.raw, true), want(ROLLUP_1M, cfg.rollup1m, false), want(ROLLUP_1H, cfg.rollup1h, false)];
  for (const d of desired) {
    const have = policies.find((p) => p.name === d.name);
    const dur = d.duration.toUpperCase() === 'INF' ? 'INF' : d.duration;
    if (!have) {
      await exec(client, db, `CREATE RETENTION POLICY ${ident(d.name)} ON ${ident(db)} DURATION ${dur} REPLICATION 1${d.isDefault ? ' DEFAULT' : ''}`);
      report.created.push(`retention policy ${d.name} (${dur})`);
    } else if (durationMs(have.duration) !== durationMs(d.duration)) {
      const key = d.name === rawPolicy ? 'raw' : d.name === ROLLUP_1M ? 'rollup1m' : 'rollup1h';
      if (!cfg.alterExistingPolicies) {
        report.kept.push(
          `retention policy ${d.name} keeps ${have.duration} (influx.retention.${key} says ${dur}); it existed before, and existing policies change only with influx.retention.alterExistingPolicies: true`,
        );
        continue;
      }
      // A duration shorter than the shard groups is refused: shrink them to InfluxDB's own default then.
      const ms = durationMs(d.duration);
      const shard = ms !== 0 && ms < durationMs(have.shard) ? ` SHARD DURATION ${ms < 2 * 86_400_000 ? '1h' : '1d'}` : '';
      await exec(client, db, `ALTER RETENTION POLICY ${ident(d.name)} ON ${ident(db)} DURATION ${dur}${shard}`);
      report.altered.push(`retention policy ${d.name} (${have.duration} → ${dur}: influx.retention.${key}, with influx.retention.alterExistingPolicies)`);
    } else {
      report.unchanged.push(`retention policy ${d.name}`);
    }
  }

  const cqs = await exec(client, db, 'SHOW CONTINUOUS QUERIES');
  const existing = new Map<string, string>();
  for (const series of cqs.results?.[0]?.series ?? []) {
    if (series.name !== db) continue;
    for (const v of series.values ?? []) existing.set(String(v[0]), String(v[1]));
  }
  for (const family of ROLLUP_FAMILIES) {
    for (const [interval, resample] of [['1m', cfg.resample1mFor], ['1h', cfg.resample1hFor]] as const) {
      const name = `cq_${interval}_${family}`;
      const stmt = cqStatement(db, rawPolicy, family, interval, resample);
      const have = existing.get(name);
      if (have !== undefined && sameCq(have, stmt)) {
        report.unchanged.push(`continuous query ${name}`);
        continue;
      }
      if (have !== undefined) await exec(client, db, `DROP CONTINUOUS QUERY ${ident(name)} ON ${ident(db)}`);
      await exec(client, db, stmt);
      (have !== undefined ? report.replaced : report.created).push(`continuous query ${name}`);
    }
  }
  return report;
}

/**
 * The statement that rolls up [fromMs, toMs) by hand, the same as the CQ would: for data that arrived
 * later than the CQ's RESAMPLE FOR window (docs/retention.md, "Late data and backfill").
 */
export function backfillStatement(db: string, rawPolicy: string, family: string, interval: '1m' | '1h', fromMs: number, toMs: number): string {
  if (!Number.isSafeInteger(fromMs) || !Number.isSafeInteger(toMs)) throw new Error('backfill times are whole milliseconds');
  const rp = interval === '1m' ? ROLLUP_1M : ROLLUP_1H;
  return (
    `SELECT mean(*), max(*), min(*), count(*) INTO ${ident(db)}.${ident(rp)}.${ident(family)} FROM ${ident(db)}.${ident(rawPolicy)}.${ident(family)} ` +
    `WHERE time >= ${fromMs}ms AND time < ${toMs}ms GROUP BY time(${interval}), *`
  );
}
