// Retention policies and roll-up CQs: created at start-up, idempotent on the next start, existing
// policies changed only when the config opts in (issue 11), CQs dropped and created again when their
// definition changes, the history API reading the roll-ups, and no start without a named InfluxDB.
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, waitFor, type TestInflux } from '../../e2e/setup/influx.ts';
import { backfillStatement, cqStatement, durationMs, sameCq } from '../src/influx-admin/retention.ts';
import { buildApp } from '../src/app.ts';
import { parseCloudConfig } from '../src/config/load.ts';
import type { CloudConfigInput } from '../src/config/schema.ts';
import { EDGE_A, batch, batchHeaders, envReading, protobuf, testConfig } from './helpers.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
import { bearer, login, registryApp } from './registry-fixtures.ts';

let influx: TestInflux;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  influx = await testInflux('retention');
});
afterAll(async () => {
  for (const a of apps) await a.close();
});

async function app(extra: Parameters<typeof registryApp>[1] = {}) {
  const a = registryApp(influx, extra);
  apps.push(a);
  await a.ready();
  return a;
}

const rps = async () => Object.fromEntries((await influx.query('SHOW RETENTION POLICIES')).map((r) => [r.name, { duration: r.duration, default: r.default }]));
const cqs = async () => {
  const res = await fetch(`${influx.url}/query?q=${encodeURIComponent('SHOW CONTINUOUS QUERIES')}`).then((r) => r.json() as Promise<{ results: { series?: { name: string; values: string[][] }[] }[] }>);
  return Object.fromEntries((res.results[0]!.series ?? []).find((s) => s.name === influx.db)?.values ?? []);
};

/** An app whose log lines are kept (what the cloud did to InfluxDB must be in the log). */
async function loggedApp(db: { url: string; db: string }, extra: CloudConfigInput = {}) {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l) as { level: number; msg: string });
      done();
    },
  });
  const config = testConfig(db, { ...extra, alerts: { rulesFiles: [] } });
  const a = buildApp(config, { logger: pino({ level: 'info' }, sink), env: {} });
  apps.push(a);
  await a.listen({ port: 0, host: '127.0.0.1' });
  await waitFor('retention applied at listen', () => a.influxAdmin.last !== undefined, 10_000);
  return { report: a.influxAdmin.last!, lines };
}

describe('start-up', () => {
  it('leaves an existing database\'s infinite default policy alone, says so in the log, and adds the roll-ups', async () => {
    // testInflux created the database: its autogen policy is infinite, as in any InfluxDB a user already runs.
    expect((await rps()).autogen).toEqual({ duration: '0s', default: true });
    const { report: r, lines } = await loggedApp(influx);
    expect(r.rawPolicy).toBe('autogen');
    expect(r.altered).toEqual([]);
    expect(r.kept).toEqual([expect.stringContaining('retention policy autogen keeps 0s (influx.retention.raw says 30d)')]);
    expect(lines.some((l) => l.level === 40 && l.msg.includes('left as it was: retention policy autogen keeps 0s') && l.msg.includes('alterExistingPolicies'))).toBe(true);
    expect(r.created).toEqual(expect.arrayContaining(['retention policy rollup_1m (180d)', 'retention policy rollup_1h (1095d)', 'continuous query cq_1m_environment', 'continuous query cq_1h_nbiot']));
    expect(r.created).toHaveLength(2 + 8);
    expect(await rps()).toEqual({
      autogen: { duration: '0s', default: true },
      rollup_1m: { duration: '4320h0m0s', default: false },
      rollup_1h: { duration: '26280h0m0s', default: false },
    });
    const defs = await cqs();
    expect(Object.keys(defs).sort()).toEqual(['environment', 'elevator', 'fire', 'nbiot'].flatMap((f) => [`cq_1h_${f}`, `cq_1m_${f}`]).sort());
    expect(defs.cq_1m_fire).toContain('RESAMPLE EVERY 1m FOR 10m BEGIN SELECT mean(*), max(*), min(*), count(*) INTO');
    expect(defs.cq_1m_fire).toContain('GROUP BY time(1m), *');
    expect(sameCq(defs.cq_1h_elevator!, cqStatement(influx.db, 'autogen', 'elevator', '1h', '2h'))).toBe(true);
  });

  it('changes an existing policy only with influx.retention.alterExistingPolicies, and logs what and why', async () => {
    const { report: r, lines } = await loggedApp(influx, { influx: { retention: { alterExistingPolicies: true } } });
    expect(r.altered).toEqual(['retention policy autogen (0s → 30d: influx.retention.raw, with influx.retention.alterExistingPolicies)']);
    expect(r.kept).toEqual([]);
    expect(lines.some((l) => l.msg === `InfluxDB: altered ${r.altered[0]}`)).toBe(true);
    expect((await rps()).autogen).toEqual({ duration: '720h0m0s', default: true });
  });

  it('gives a database it creates itself the raw duration at once', async () => {
    const fresh = { url: influx.url, db: `${influx.db}_fresh` };
    const { report: r, lines } = await loggedApp(fresh);
    expect(r.created[0]).toBe(`database ${fresh.db} with default retention policy autogen (30d)`);
    expect(r.altered).toEqual([]);
    expect(lines.some((l) => l.msg.startsWith(`InfluxDB: created database ${fresh.db}`))).toBe(true);
    const res = await fetch(`${influx.url}/query?q=${encodeURIComponent(`SHOW RETENTION POLICIES ON "${fresh.db}"`)}`).then((x) => x.json() as Promise<{ results: { series: { values: unknown[][] }[] }[] }>);
    expect(res.results[0]!.series[0]!.values.find((v) => v[0] === 'autogen')?.[1]).toBe('720h0m0s');
  });

  it('refuses to start on a config that names no InfluxDB, with a sentence that says so', async () => {
    expect(() => parseCloudConfig({})).toThrow(/influx\.url: no InfluxDB is named: set influx\.url \(or INFLUX_URL\)/);
    // The real process, started with no config file and no INFLUX_URL.
    const env = { ...process.env };
    for (const k of ['INFLUX_URL', 'CITYSENSE_CLOUD_CONFIG']) delete env[k];
    const child = spawn(join(ROOT, 'node_modules', '.bin', 'node'), ['--import', 'tsx', 'cloud/src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(1);
    expect(stderr).toMatch(/citysense cloud: default config is not valid:\n\s+influx\.url: no InfluxDB is named/);
  });

  it('is idempotent: a second start changes nothing', async () => {
    const r = await (await app()).influxAdmin.ensure();
    expect(r.created).toEqual([]);
    expect(r.altered).toEqual([]);
    expect(r.replaced).toEqual([]);
    expect(r.unchanged).toHaveLength(3 + 8);
  });

  it('follows a changed config when it opts in: durations altered, CQs dropped and created again', async () => {
    const r = await (await app({ influx: { retention: { raw: '14d', rollup1h: '2w', resample1mFor: '30m', alterExistingPolicies: true } } })).influxAdmin.ensure();
    expect(r.altered).toEqual([
      'retention policy autogen (720h0m0s → 14d: influx.retention.raw, with influx.retention.alterExistingPolicies)',
      'retention policy rollup_1h (26280h0m0s → 2w: influx.retention.rollup1h, with influx.retention.alterExistingPolicies)',
    ]);
    expect(r.replaced.sort()).toEqual(['environment', 'elevator', 'fire', 'nbiot'].map((f) => `continuous query cq_1m_${f}`).sort());
    expect((await cqs()).cq_1m_environment).toContain('FOR 30m');
    expect((await rps()).autogen).toEqual({ duration: '336h0m0s', default: true });
    // and back to the defaults for the tests below
    await (await app({ influx: { retention: { alterExistingPolicies: true } } })).influxAdmin.ensure();
  });

  it('manage: false leaves InfluxDB alone; an unreachable InfluxDB does not stop the cloud from listening', async () => {
    const off = await app({ influx: { retention: { manage: false } } });
    await off.listen({ port: 0, host: '127.0.0.1' });
    const away = registryApp({ url: 'http://127.0.0.1:9', db: 'nowhere' }, { influx: { timeoutMs: 500 } });
    apps.push(away);
    await away.listen({ port: 0, host: '127.0.0.1' });
    await expect(away.influxAdmin.ensure()).rejects.toThrow();
    expect(off.influxAdmin.last).toBeUndefined();
  });

  it('reads InfluxDB durations', () => {
    expect(durationMs('720h0m0s')).toBe(30 * 86_400_000);
    expect(durationMs('0s')).toBe(0);
    expect(durationMs('INF')).toBe(0);
    expect(durationMs('2w')).toBe(14 * 86_400_000);
    expect(() => durationMs('30 days')).toThrow();
  });
});

describe('roll-ups in the history API', () => {
  it('reads mean/max/min/count from rollup_1m and rollup_1h', async () => {
    const a = await app();
    const admin = await login(a, 'admin');
    await a.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: { id: 'env-r-1', family: 'environment', district: 'jinshui' } });
    const base = Math.floor((Date.now() - 2 * 3_600_000) / 3_600_000) * 3_600_000;
    const readings = [];
    for (let i = 0; i < 120; i++) readings.push(envReading('env-r-1', base + i * 30_000, { pm25: i }));
    const res = await a.inject({ method: 'POST', url: '/v1/batches', payload: protobuf(batch(EDGE_A.id, readings)), headers: batchHeaders(EDGE_A.token) });
    expect(res.statusCode).toBe(200);
    // What the CQs do every minute/hour, done now for the hour of test data.
    for (const interval of ['1m', '1h'] as const) await influx.query(backfillStatement(influx.db, 'autogen', 'environment', interval, base, base + 3_600_000));

    const viewer = await login(a, 'viewer');
    const q = (qs: string) => a.inject({ method: 'GET', url: `/v1/devices/env-r-1/history?metric=pm25&from=${base}&to=${base + 3_600_000}&${qs}`, headers: bearer(viewer) });
    const m = await q('every=30m&fn=mean&source=rollup_1m');
    expect(m.statusCode, m.body).toBe(200);
    expect(m.json()).toMatchObject({ source: 'rollup_1m', points: [{ ts: base, pm25: 29.5 }, { ts: base + 1_800_000, pm25: 89.5 }] });
    expect((await q('every=30m&fn=max&source=rollup_1m')).json().points.map((p: { pm25: number }) => p.pm25)).toEqual([59, 119]);
    expect((await q('every=30m&fn=min&source=rollup_1m')).json().points.map((p: { pm25: number }) => p.pm25)).toEqual([0, 60]);
    expect((await q('every=30m&fn=count&source=rollup_1m')).json().points.map((p: { pm25: number }) => p.pm25)).toEqual([60, 60]);
    expect((await q('every=1h&fn=mean&source=rollup_1h')).json()).toMatchObject({ source: 'rollup_1h', points: [{ ts: base, pm25: 59.5 }] });
    // Roll-ups need every in whole minutes / hours.
    expect((await q('every=30s&fn=mean&source=rollup_1m')).json().error).toBe('QUERY_INVALID');
    expect((await q('every=30m&fn=mean&source=rollup_1h')).json().message).toContain('whole number of hours');
    // Ranges older than the raw retention go to the roll-ups by themselves.
    expect(a.readings.chooseSource({ metrics: ['pm25'], from: Date.now() - 60 * 86_400_000, to: Date.now(), every: { text: '1h', ms: 3_600_000 }, fn: 'mean', source: undefined })).toBe('rollup_1m');
    expect(a.readings.chooseSource({ metrics: ['pm25'], from: Date.now() - 400 * 86_400_000, to: Date.now(), every: { text: '1d', ms: 86_400_000 }, fn: 'max', source: undefined })).toBe('rollup_1h');
    expect(a.readings.chooseSource({ metrics: ['pm25'], from: Date.now() - 86_400_000, to: Date.now(), every: { text: '1h', ms: 3_600_000 }, fn: 'mean', source: undefined })).toBe('raw');
  });
});
