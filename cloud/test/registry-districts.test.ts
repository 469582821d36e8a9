// District summaries: devices online (heard from within registry.offlineAfterIntervals × their expected
// interval), offline, never heard from, per family, and the district's alerts firing / acknowledged;
// last-heard times survive a restart.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { EDGE_A, batch, batchHeaders, envReading, protobuf } from './helpers.ts';
import { bearer, login, registryApp } from './registry-fixtures.ts';

let influx: TestInflux;
let dir: string;
let offset = 0;
const now = () => Date.now() + offset;
const rules = [{ id: 'pm25-high', kind: 'threshold', category: 'environment', severity: 'major', match: { family: 'environment' }, metric: 'pm25', above: 100 }];

function app(): FastifyInstance {
  return registryApp(influx, { store: { path: join(dir, 'cloud.db') }, alerts: { rules: rules as never }, registry: { lastSeenFlushMs: 100 } }, now);
}

let a: FastifyInstance;
let viewer: string;

beforeAll(async () => {
  influx = await testInflux('registry-districts');
  dir = mkdtempSync(join(tmpdir(), 'citysense-districts-'));
  a = app();
  await a.ready();
  const admin = await login(a, 'admin');
  viewer = await login(a, 'viewer');
  for (const d of [
    { id: 'env-d-1', family: 'environment', district: 'jinshui' },
    { id: 'env-d-2', family: 'environment', district: 'jinshui' },
    { id: 'env-d-3', family: 'environment', district: 'jinshui' },
    { id: 'nb-d-1', family: 'nbiot', district: 'jinshui', profile: 'nb-smoke-detector', expected_interval: '1h' },
    { id: 'lift-d-1', family: 'elevator', district: 'erqi' },
  ]) {
    expect((await a.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: d })).statusCode).toBe(201);
  }
  const t = now();
  const readings = [
    envReading('env-d-1', t - 30_000, { pm25: 150 }),
    envReading('env-d-2', t - 10 * 60_000, { pm25: 20 }), // 10 min ago: more than 3 × 60 s
    { deviceId: 'nb-d-1', family: 'nbiot' as const, ts: t - 2 * 3_600_000, values: { battery: 90 }, tags: { district: 'jinshui' } }, // 2 h: within 3 × 1 h
    { deviceId: 'lift-d-1', family: 'elevator' as const, ts: t - 5_000, values: { floor: 3 }, tags: { district: 'erqi' } },
  ];
  const res = await a.inject({ method: 'POST', url: '/v1/batches', payload: protobuf(batch(EDGE_A.id, readings)), headers: batchHeaders(EDGE_A.token) });
  expect(res.statusCode).toBe(200);
});
afterAll(async () => {
  await a?.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (app: FastifyInstance, url: string, token = viewer) => app.inject({ method: 'GET', url, headers: bearer(token) });

describe('district summaries', () => {
  it('counts devices online, offline and never heard from, per family, and the alerts firing', async () => {
    const res = await get(a, '/v1/districts/jinshui/summary');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      district: 'jinshui',
      devices: { total: 4, online: 2, offline: 2, never_seen: 1 },
      families: {
        environment: { total: 3, online: 1, offline: 2, never_seen: 1 },
        nbiot: { total: 1, online: 1, offline: 0, never_seen: 0 },
      },
      alerts: { firing: 1, acknowledged: 0 },
    });
    const all = await get(a, '/v1/districts');
    expect((all.json() as { districts: { district: string }[] }).districts.map((d) => d.district)).toEqual(['erqi', 'jinshui']);
    const empty = await get(a, '/v1/districts/nowhere/summary');
    expect(empty.json()).toMatchObject({ district: 'nowhere', devices: { total: 0 }, alerts: { firing: 0 } });
    expect((await a.inject({ method: 'GET', url: '/v1/districts' })).statusCode).toBe(401);
  });

  it('follows acknowledgement and the clock', async () => {
    const duty = await login(a, 'duty');
    const alerts = (await get(a, '/v1/alerts?district=jinshui')).json() as { alerts: { id: string }[] };
    const ack = await a.inject({ method: 'POST', url: `/v1/alerts/${alerts.alerts[0]!.id}/ack`, headers: bearer(duty), payload: {} });
    expect(ack.statusCode, ack.body).toBe(200);
    expect((await get(a, '/v1/districts/jinshui/summary')).json().alerts).toEqual({ firing: 0, acknowledged: 1 });
    // Ten minutes on: the elevator (10 s interval) and env-d-1 went quiet.
    offset = 10 * 60_000;
    expect((await get(a, '/v1/districts/erqi/summary')).json().devices).toEqual({ total: 1, online: 0, offline: 1, never_seen: 0 });
    expect((await get(a, '/v1/districts/jinshui/summary')).json().devices).toEqual({ total: 4, online: 1, offline: 3, never_seen: 1 });
    offset = 0;
  });

  it('remembers when devices were last heard from across a restart', async () => {
    await a.close();
    a = app();
    await a.ready();
    viewer = await login(a, 'viewer');
    expect((await get(a, '/v1/districts/jinshui/summary')).json().devices).toEqual({ total: 4, online: 2, offline: 2, never_seen: 1 });
  });
});
