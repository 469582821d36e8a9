// The query API against the run's influxd: latest values, history with and without downsampling, and
// hostile parameters (metric names, times, every, fn, source, device ids) refused with QUERY_INVALID
// before any InfluxQL is built — checked by recording every statement the app sent to InfluxDB.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { EDGE_A, batch, batchHeaders, envReading, protobuf } from './helpers.ts';
import { bearer, login, registryApp } from './registry-fixtures.ts';

let influx: TestInflux;
let app: FastifyInstance;
let viewer: string;
const sent: string[] = [];
// Whole minutes, an hour ago: 60 readings one per minute, pm25 = minute index.
const BASE = Math.floor((Date.now() - 3_600_000) / 3_600_000) * 3_600_000;

beforeAll(async () => {
  influx = await testInflux('query-api');
  app = registryApp(influx);
  await app.ready();
  const client = app.influx.client;
  const orig = client.queryRaw.bind(client);
  client.queryRaw = ((q: string | string[], o?: object) => {
    sent.push(...(Array.isArray(q) ? q : [q]));
    return orig(q, o);
  }) as typeof client.queryRaw;
  const admin = await login(app, 'admin');
  viewer = await login(app, 'viewer');
  for (const id of ['env-q-1', 'env-q-2']) {
    const r = await app.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: { id, family: 'environment', district: 'jinshui' } });
    expect(r.statusCode).toBe(201);
  }
  const readings = [];
  for (let i = 0; i < 60; i++) {
    readings.push(envReading('env-q-1', BASE + i * 60_000, { pm25: i, pm10: 100 + i, status: i % 2 ? 'ok' : 'warm' }));
    readings.push(envReading('env-q-2', BASE + i * 60_000 + 30_000, { pm25: 1000 + i }));
  }
  const res = await app.inject({ method: 'POST', url: '/v1/batches', payload: protobuf(batch(EDGE_A.id, readings)), headers: batchHeaders(EDGE_A.token) });
  expect(res.statusCode).toBe(200);
});
afterAll(async () => {
  await app?.close();
});

const get = (url: string) => app.inject({ method: 'GET', url, headers: bearer(viewer) });

describe('latest', () => {
  it('gives the newest value of each metric with its time', async () => {
    const res = await get('/v1/devices/env-q-1/latest');
    expect(res.statusCode, res.body).toBe(200);
    const last = BASE + 59 * 60_000;
    expect(res.json()).toEqual({
      device_id: 'env-q-1',
      family: 'environment',
      ts: last,
      metrics: { pm25: { value: 59, ts: last }, pm10: { value: 159, ts: last }, status: { value: 'ok', ts: last } },
    });
    const other = (await get('/v1/devices/env-q-2/latest')).json();
    expect(other.metrics).toEqual({ pm25: { value: 1059, ts: BASE + 59 * 60_000 + 30_000 } });
  });

  it('404 for an unregistered device unless ?family= says where to look', async () => {
    const res = await get('/v1/devices/nobody/latest');
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toBe('DEVICE_NOT_FOUND');
    const withFamily = await get('/v1/devices/nobody/latest?family=environment');
    expect(withFamily.json()).toMatchObject({ device_id: 'nobody', ts: null, metrics: {} });
    expect((await get('/v1/devices/nobody/latest?family=weather')).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/v1/devices/env-q-1/latest' })).statusCode).toBe(401);
  });
});

describe('history', () => {
  it('raw points over a range', async () => {
    const res = await get(`/v1/devices/env-q-1/history?metric=pm25,pm10&from=${BASE + 10 * 60_000}&to=${new Date(BASE + 13 * 60_000).toISOString()}`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      device_id: 'env-q-1',
      family: 'environment',
      metrics: ['pm25', 'pm10'],
      from: BASE + 10 * 60_000,
      to: BASE + 13 * 60_000,
      every: null,
      fn: null,
      source: 'raw',
      truncated: false,
      points: [10, 11, 12].map((i) => ({ ts: BASE + i * 60_000, pm25: i, pm10: 100 + i })),
    });
  });

  it('downsampled with mean, max, min, count, last per interval', async () => {
    const q = (fn: string) => get(`/v1/devices/env-q-1/history?metric=pm25&from=${BASE}&to=${BASE + 3_600_000}&every=15m&fn=${fn}`);
    const pts = async (fn: string) => ((await q(fn)).json() as { points: { ts: number; pm25: number }[] }).points;
    expect(await pts('mean')).toEqual([7, 22, 37, 52].map((v, i) => ({ ts: BASE + i * 900_000, pm25: v })));
    expect((await pts('max')).map((p) => p.pm25)).toEqual([14, 29, 44, 59]);
    expect((await pts('min')).map((p) => p.pm25)).toEqual([0, 15, 30, 45]);
    expect((await pts('count')).map((p) => p.pm25)).toEqual([15, 15, 15, 15]);
    expect((await pts('last')).map((p) => p.pm25)).toEqual([14, 29, 44, 59]);
    // every alone means mean
    const dflt = await get(`/v1/devices/env-q-1/history?metric=pm25&from=${BASE}&to=${BASE + 3_600_000}&every=1h`);
    expect(dflt.json()).toMatchObject({ fn: 'mean', every: '1h', points: [{ ts: BASE, pm25: 29.5 }] });
    // Only this device's points: env-q-2's pm25 (1000+) never appear.
    expect(Math.max(...(await pts('max')).map((p) => p.pm25))).toBe(59);
  });

  it('bounds: rows are limited and marked truncated, buckets and raw ranges are bounded', async () => {
    const small = registryApp(influx, { query: { maxRows: 5, maxBuckets: 10 } });
    await small.ready();
    try {
      const t = await login(small, 'viewer');
      const admin = await login(small, 'admin');
      await small.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: { id: 'env-q-1', family: 'environment', district: 'jinshui' } });
      const r = await small.inject({ method: 'GET', url: `/v1/devices/env-q-1/history?metric=pm25&from=${BASE}&to=${BASE + 3_600_000}`, headers: bearer(t) });
      expect(r.json()).toMatchObject({ truncated: true });
      expect(r.json().points).toHaveLength(5);
      const b = await small.inject({ method: 'GET', url: `/v1/devices/env-q-1/history?metric=pm25&from=${BASE}&to=${BASE + 3_600_000}&every=1m`, headers: bearer(t) });
      expect(b.statusCode).toBe(400);
      expect(b.json().message).toContain('60 intervals of 1m is more than query.maxBuckets (10)');
    } finally {
      await small.close();
    }
    const wide = await get(`/v1/devices/env-q-1/history?metric=pm25&from=${BASE - 30 * 86_400_000}&to=${BASE}`);
    expect(wide.statusCode).toBe(400);
    expect(wide.json().message).toContain('needs every');
  });
});

describe('hostile and malformed parameters', () => {
  const h = (qs: string, id = 'env-q-1') => get(`/v1/devices/${id}/history?${qs}`);
  const range = `from=${BASE}&to=${BASE + 3_600_000}`;
  const enc = encodeURIComponent;

  it('metric names that are not plain names, or not fields of the measurement', async () => {
    for (const m of ['pm25"; DROP DATABASE citysense', 'mean(pm25)) ,max(x', 'pm25 OR 1=1', '"pm25"', "pm25'", '*', '/.*/', 'pm25::field', 'time', 'a'.repeat(65), '9lives', 'pm25;DELETE FROM environment']) {
      const res = await h(`metric=${enc(m)}&${range}`);
      expect(res.statusCode, m).toBe(400);
      expect(res.json().error, m).toBe('QUERY_INVALID');
    }
    const unknown = await h(`metric=no_such_field&${range}`);
    expect(unknown.json()).toMatchObject({ error: 'QUERY_INVALID', message: expect.stringContaining('no metric no_such_field in environment readings (known: ') });
    expect((await h(range)).json().message).toContain('give metric=');
    const text = await h(`metric=status&${range}&every=15m&fn=mean`);
    expect(text.json().message).toContain('fn mean needs numbers; status is string');
  });

  it('time expressions', async () => {
    for (const [name, v] of [
      ['from', 'now() - 1h'],
      ['from', "'2025-01-01' OR 1=1"],
      ['from', '1700000000000; DROP DATABASE citysense'],
      ['to', '1h); DELETE FROM environment'],
      ['to', '2025-13-45T99:00:00Z'],
      ['from', '-5'],
      ['from', '1e12'],
      ['to', '99999999999999999999'],
    ]) {
      const res = await h(`metric=pm25&${name}=${enc(v!)}`);
      expect(res.statusCode, v).toBe(400);
      expect(res.json().error).toBe('QUERY_INVALID');
      expect(res.json().message).toContain(`${name} must be an ISO 8601 time`);
    }
    const twice = await h(`metric=pm25&from=${BASE}&from=${BASE + 1}`);
    expect(twice.json()).toMatchObject({ error: 'QUERY_INVALID', message: expect.stringContaining('from must be given once') });
    const backwards = await h(`metric=pm25&from=${BASE + 10}&to=${BASE}`);
    expect(backwards.json().message).toContain('from must be before to');
  });

  it('every and fn', async () => {
    for (const e of ['1h); DELETE FROM environment', '1h,time(1m)', '0m', '1.5h', '1w', '1000000d', '400d', 'mean', '1 h', '01m', '-1m']) {
      const res = await h(`metric=pm25&${range}&every=${enc(e)}`);
      expect(res.statusCode, e).toBe(400);
      expect(res.json().error).toBe('QUERY_INVALID');
      expect(res.json().message).toMatch(/every (must be a whole number|is at most)/);
    }
    for (const f of ['mean(pm25)) ,max(x', 'MEAN', 'sum', 'percentile', 'DROP', 'mean;']) {
      const res = await h(`metric=pm25&${range}&every=5m&fn=${enc(f)}`);
      expect(res.statusCode, f).toBe(400);
      expect(res.json().message).toContain('fn must be one of mean, max, min, last, count');
    }
    const fnAlone = await h(`metric=pm25&${range}&fn=max`);
    expect(fnAlone.json().message).toContain('fn=max needs every');
  });

  it('source, unknown parameters and device ids', async () => {
    expect((await h(`metric=pm25&${range}&every=5m&source=${enc('rollup_1m"; DROP DATABASE x')}`)).json().message).toContain('source must be one of raw, rollup_1m, rollup_1h');
    const extra = await h(`metric=pm25&${range}&q=${enc('SELECT * FROM environment')}`);
    expect(extra.json()).toMatchObject({ error: 'QUERY_INVALID', message: expect.stringContaining('unknown parameter(s) "q"') });
    for (const id of ["x' OR '1'='1", 'env-q-1"; DROP DATABASE citysense', 'a/b']) {
      const res = await get(`/v1/devices/${enc(id)}/history?metric=pm25&family=environment`);
      expect(res.statusCode, id).toBe(404);
      expect(res.json().error).toBe('DEVICE_NOT_FOUND');
    }
  });

  it('none of it reached InfluxDB: every statement sent is one of ours, and the database is intact', async () => {
    expect(sent.length).toBeGreaterThan(0);
    for (const s of sent) {
      expect(s).toMatch(/^(SELECT (last|mean|max|min|count|sum|"[A-Za-z_][A-Za-z0-9_]*")|SHOW FIELD KEYS ON )/);
      expect(s).not.toMatch(/DROP|DELETE|OR 1=1|;|now\(\) - 1h\b/);
      // Values are bound parameters: no device id appears in the text.
      expect(s).not.toContain('env-q-1');
    }
    const dbs = await fetch(`${influx.url}/query?q=${enc('SHOW DATABASES')}`).then((r) => r.json() as Promise<{ results: { series: { values: string[][] }[] }[] }>);
    expect(dbs.results[0]!.series[0]!.values.flat()).toContain(influx.db);
    expect((await get(`/v1/devices/env-q-1/history?metric=pm25&${range}&every=1h`)).json().points).toHaveLength(1);
  });
});
