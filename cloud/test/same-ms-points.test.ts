// Issue 12 item 1: events and alert changes that share a series key and a millisecond are each their
// own point in the real InfluxDB (a fire panel reporting a zone and its detector in one ms; one rule
// firing for two zones at once), and a batch sent again writes each point onto itself, not beside it.
import type { DeviceEvent } from '@citysense/proto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, waitFor, type TestInflux } from '../../e2e/setup/influx.ts';
import { alertApp, reading } from './alerts-fixtures.ts';
import { EDGE_A, batch, batchHeaders, protobuf } from './helpers.ts';

let influx: TestInflux;
let app: FastifyInstance;

beforeAll(async () => {
  influx = await testInflux('cloud-same-ms');
  app = alertApp(influx, {
    rules: [{ id: 'fire-zone', kind: 'event', category: 'fire', severity: 'critical', types: 'fire_alarm', keyAttrs: ['zone'] }],
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
});

const T = Date.now() - 5 * 60_000;
const post = async (b: ReturnType<typeof batch>) => {
  const res = await app.inject({ method: 'POST', url: '/v1/batches', payload: protobuf(b), headers: batchHeaders(EDGE_A.token) });
  expect(res.statusCode, res.body).toBe(200);
};
const ev = (deviceId: string, i: number, type: string, attrs: Record<string, string>, deviceSeq?: number): DeviceEvent => ({
  deviceId,
  family: 'fire',
  ts: T,
  type,
  attrs,
  priority: 'alarm',
  id: `${deviceId}-evt-${i}`,
  ...(deviceSeq !== undefined ? { deviceSeq } : {}),
  tags: { district: 'zhongyuan' },
});

describe('same-millisecond bursts in InfluxDB', () => {
  it('keeps every event of one device and type in one millisecond, each with its own id and attrs', async () => {
    // 50 events in one ms, one device, one type: a burst from a panel; deviceSeq as the edge stamps it,
    // crossing a multiple of a million so the offset wraps inside the burst.
    const burst = Array.from({ length: 50 }, (_, i) => ev('panel-1', i, 'fault', { zone: `Z${i}`, detector: `D${i}` }, 999_980 + i));
    await post(batch(EDGE_A.id, [], burst));
    const rows = await influx.query(`SELECT * FROM events WHERE device_id = 'panel-1'`);
    expect(rows).toHaveLength(50);
    for (const r of rows) {
      expect(r.time).toBe(T);
      // No mixing: each row's id, attrs JSON and attr_* fields belong to one event.
      const i = Number(String(r.id).split('-').pop());
      expect(JSON.parse(r.attrs as string)).toEqual({ zone: `Z${i}`, detector: `D${i}` });
      expect(r.attr_zone).toBe(`Z${i}`);
      expect(r.attr_detector).toBe(`D${i}`);
    }
  });

  it('keeps events the edge did not stamp with a deviceSeq apart too (their id places them)', async () => {
    const burst = Array.from({ length: 20 }, (_, i) => ev('panel-2', i, 'fault', { zone: `Z${i}` }));
    await post(batch(EDGE_A.id, [], burst));
    const rows = await influx.query(`SELECT id, attr_zone FROM events WHERE device_id = 'panel-2'`);
    expect(rows.map((r) => r.id).sort()).toEqual(burst.map((e) => e.id).sort());
  });

  it('a batch sent again (a new batch seq, same events) writes each event onto itself', async () => {
    const burst = Array.from({ length: 10 }, (_, i) => ev('panel-3', i, 'fault', { zone: `Z${i}` }, i + 1));
    await post(batch(EDGE_A.id, [], burst));
    await post(batch(EDGE_A.id, [], burst));
    const [count] = await influx.query(`SELECT count(id) FROM events WHERE device_id = 'panel-3'`);
    expect(count!.count).toBe(10);
  });

  it('keeps every alert change of one rule in one millisecond: one firing row per zone', async () => {
    const zones = ['A1', 'A2', 'B1', 'B2', 'C1'];
    await post(batch(EDGE_A.id, [], zones.map((zone, i) => ev('panel-4', i, 'fire_alarm', { zone }, 100 + i))));
    await app.alerts.influxIdle();
    let rows: Record<string, unknown>[] = [];
    await waitFor('five firing rows', async () => {
      rows = await influx.query(`SELECT * FROM alerts WHERE device_id = 'panel-4' AND state = 'firing'`);
      return rows.length >= zones.length;
    }, 10_000);
    expect(rows).toHaveLength(zones.length);
    expect(rows.map((r) => JSON.parse(r.attrs as string).zone).sort()).toEqual(zones);
    expect(new Set(rows.map((r) => r.id)).size).toBe(zones.length);
    for (const r of rows) expect(r.time).toBe(T);
  });

  it('readings keep (device, ms) as their key: a reading sent twice is one row, and two sources merge into it', async () => {
    await post(batch(EDGE_A.id, [reading('env-9', T, { pm25: 30 })]));
    await post(batch(EDGE_A.id, [reading('env-9', T, { pm25: 30 })]));
    await post(batch(EDGE_A.id, [reading('env-9', T, { no2: 12 })]));
    const rows = await influx.query(`SELECT pm25, no2 FROM environment WHERE device_id = 'env-9'`);
    expect(rows).toEqual([expect.objectContaining({ time: T, pm25: 30, no2: 12 })]);
  });
});
