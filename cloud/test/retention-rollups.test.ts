// Retention policies and roll-up CQs: created at start-up, idempotent on the next start, changed when
// the config changes (CQs dropped and created again), and the history API reading the roll-ups.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, waitFor, type TestInflux } from '../../e2e/setup/influx.ts';
import { backfillStatement, cqStatement, durationMs, sameCq } from '../src/influx-admin/retention.ts';
import { EDGE_A, batch, batchHeaders, envReading, protobuf } from './helpers.ts';
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

describe('start-up', () => {
  it('creates the roll-up policies and CQs, sets the raw duration on the default policy, and keeps it the default', async () => {
    const a = await app();
    await a.listen({ port: 0, host: '127.0.0.1' });
    await waitFor('retention applied at listen', () => a.influxAdmin.last !== undefined, 10_000);
    const r = a.influxAdmin.last!;
    expect(r.rawPolicy).toBe('autogen');
    expect(r.altered).toEqual(['retention policy autogen (0s → 30d)']);
    expect(r.created).toEqual(expect.arrayContaining(['retention policy rollup_1m (180d)', 'retention policy rollup_1h (1095d)', 'continuous query cq_1m_environment', 'continuous query cq_1h_nbiot']));
    expect(r.created).toHaveLength(2 + 8);
    expect(await rps()).toEqual({
      autogen: { duration: '720h0m0s', default: true },
      rollup_1m: { duration: '4320h0m0s', default: false },
      rollup_1h: { duration: '26280h0m0s', default: false },
    });
    const defs = await cqs();
    expect(Object.keys(defs).sort()).toEqual(['environment', 'elevator', 'fire', 'nbiot'].flatMap((f) => [`cq_1h_${f}`, `cq_1m_${f}`]).sort());
    expect(defs.cq_1m_fire).toContain('RESAMPLE EVERY 1m FOR 10m BEGIN SELECT mean(*), max(*), min(*), count(*) INTO');
    expect(defs.cq_1m_fire).toContain('GROUP BY time(1m), *');
    expect(sameCq(defs.cq_1h_elevator!, cqStatement(influx.db, 'autogen', 'elevator', '1h', '2h'))).toBe(true);
  });

  it('is idempotent: a second start changes nothing', async () => {
    const r = await (await app()).influxAdmin.ensure();
    expect(r.created).toEqual([]);
    expect(r.altered).toEqual([]);
    expect(r.replaced).toEqual([]);
    expect(r.unchanged).toHaveLength(3 + 8);
  });

  it('follows a changed config: durations altered, CQs dropped and created again', async () => {
    const r = await (await app({ influx: { retention: { raw: '14d', rollup1h: '2w', resample1mFor: '30m' } } })).influxAdmin.ensure();
    expect(r.altered).toEqual(['retention policy autogen (720h0m0s → 14d)', 'retention policy rollup_1h (26280h0m0s → 2w)']);
    expect(r.replaced.sort()).toEqual(['environment', 'elevator', 'fire', 'nbiot'].map((f) => `continuous query cq_1m_${f}`).sort());
    expect((await cqs()).cq_1m_environment).toContain('FOR 30m');
    expect((await rps()).autogen).toEqual({ duration: '336h0m0s', default: true });
    // and back to the defaults for the tests below
    await (await app()).influxAdmin.ensure();
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
