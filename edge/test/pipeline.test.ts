// Device → edge → fake cloud over real sockets: MQTT in, gzipped protobuf out.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { allReadings, metricValue, startFakeCloud, startTestEdge, waitFor, type FakeCloud, type TestEdge } from './helpers.ts';

let cloud: FakeCloud;
let t: TestEdge | undefined;

beforeEach(async () => {
  cloud = await startFakeCloud();
});
afterEach(async () => {
  await t?.stop();
  t = undefined;
  await cloud.close();
});

describe('a reading from a device', () => {
  it('arrives at the cloud with device id, family, tags, values and its own ts', async () => {
    t = await startTestEdge(cloud.url);
    const c = await t.connect('env-1', 'env-1-secret-value');
    const ts = Date.now() - 60_000;
    await c.publishAsync('devices/env-1/telemetry', JSON.stringify({ ts, metrics: { pm25: 35.2, pm10: 61, ok: true, state: 'warm' } }), { qos: 1 });
    await waitFor(() => allReadings(cloud.acked).length === 1, 5000, 'reading at the cloud');
    const batch = cloud.acked[0]!;
    expect(batch.edgeId).toBe('edge-test');
    expect(batch.readings[0]).toMatchObject({
      deviceId: 'env-1',
      family: 'environment',
      ts,
      values: { pm25: 35.2, pm10: 61, ok: true, state: 'warm' },
      tags: { district: 'jinshui', site: 'station-3', model: 'AQM-65' },
    });
    const req = cloud.requests[0]!;
    expect(req.headers['content-type']).toBe('application/x-protobuf');
    expect(req.headers['content-encoding']).toBe('gzip');
    expect(req.headers.authorization).toBe('Bearer test-edge-token');
    await waitFor(async () => (await metricValue(t!.edge.metrics, 'citysense_edge_batches_acked_total')) === 1);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_readings_received_total', { family: 'environment' })).toBe(1);
  });

  it('without ts gets the receive time', async () => {
    t = await startTestEdge(cloud.url);
    const c = await t.connect('env-2', 'env-2-secret-value');
    const before = Date.now();
    await c.publishAsync('devices/env-2/telemetry', JSON.stringify({ metrics: { noise_db: 55 } }), { qos: 1 });
    await waitFor(() => allReadings(cloud.acked).length === 1);
    const r = allReadings(cloud.acked)[0]!;
    expect(r.ts).toBeGreaterThanOrEqual(before);
    expect(r.ts).toBeLessThanOrEqual(Date.now());
    expect(r.tags).toEqual({ district: 'erqi' });
  });
});

describe('events', () => {
  it('carry priority, string attrs and an id that a redelivery keeps', async () => {
    t = await startTestEdge(cloud.url);
    const c = await t.connect('fire-1', 'fire-1-secret-value');
    const ts = Date.now();
    const alarm = JSON.stringify({ ts, type: 'fire_alarm', attrs: { zone: 'B2-07', loop: 3 } });
    await c.publishAsync('devices/fire-1/events', alarm, { qos: 1 });
    await c.publishAsync('devices/fire-1/events', alarm, { qos: 1 });
    await c.publishAsync('devices/fire-1/events', JSON.stringify({ ts, type: 'fault' }), { qos: 1 });
    await c.publishAsync('devices/fire-1/events', JSON.stringify({ type: 'door_open' }), { qos: 1 });
    await waitFor(() => cloud.acked.flatMap((b) => b.events).length === 4);
    const [a1, a2, fault, door] = cloud.acked.flatMap((b) => b.events);
    expect(a1).toMatchObject({ deviceId: 'fire-1', family: 'fire', ts, type: 'fire_alarm', priority: 'alarm', attrs: { zone: 'B2-07', loop: '3' } });
    expect(a1!.tags).toEqual({ district: 'zhongyuan', site: 'mall' });
    expect(a2!.id).toBe(a1!.id);
    expect(fault!.priority).toBe('warning');
    expect(door!.priority).toBe('routine');
    expect(door!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_events_received_total', { type: 'fire_alarm' })).toBe(2);
  });

  it('an alarm leaves at once in the alarm lane, ahead of telemetry still waiting for its age limit', async () => {
    t = await startTestEdge(cloud.url, { batch: { maxAgeMs: 600_000 } });
    const c = await t.connect('fire-1', 'fire-1-secret-value');
    await c.publishAsync('devices/fire-1/telemetry', JSON.stringify({ metrics: { smoke_obscuration: 0.4 } }), { qos: 1 });
    await c.publishAsync('devices/fire-1/events', JSON.stringify({ type: 'smoke_alarm', attrs: { zone: 'A1' } }), { qos: 1 });
    await waitFor(() => cloud.acked.length === 1, 5000, 'the alarm batch');
    expect(cloud.acked[0]!.lane).toBe('alarm');
    expect(cloud.acked[0]!.readings).toHaveLength(0);
    expect(cloud.acked[0]!.events[0]!.type).toBe('smoke_alarm');
    // The telemetry reading is on disk, acknowledged to the device, and leaves when its batch is due.
    expect(t.edge.health().queuedReadings).toBe(1);
  });
});

describe('batching', () => {
  it('seals by count', async () => {
    t = await startTestEdge(cloud.url, { batch: { maxReadings: 3, maxAgeMs: 600_000 } });
    const c = await t.connect('env-1', 'env-1-secret-value');
    for (let i = 0; i < 6; i++) {
      await c.publishAsync('devices/env-1/telemetry', JSON.stringify({ metrics: { i } }), { qos: 1 });
    }
    await waitFor(() => cloud.acked.length === 2, 5000, 'two full batches');
    expect(cloud.acked.map((b) => b.readings.map((r) => r.values.i))).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    expect(cloud.acked[1]!.seq).toBeGreaterThan(cloud.acked[0]!.seq);
  });

  it('seals by age', async () => {
    t = await startTestEdge(cloud.url, { batch: { maxReadings: 5000, maxAgeMs: 30 } });
    const c = await t.connect('env-1', 'env-1-secret-value');
    await c.publishAsync('devices/env-1/telemetry', JSON.stringify({ metrics: { pm25: 1 } }), { qos: 1 });
    await c.publishAsync('devices/env-1/telemetry', JSON.stringify({ metrics: { pm25: 2 } }), { qos: 1 });
    // Far below maxReadings: only the age limit can have sealed these.
    await waitFor(() => allReadings(cloud.acked).length === 2, 5000, 'readings sealed by age');
    expect(cloud.acked.every((b) => b.readings.length <= 2)).toBe(true);
  });
});

describe('bad input', () => {
  it('malformed JSON is counted and the connection goes on', async () => {
    t = await startTestEdge(cloud.url);
    const c = await t.connect('env-1', 'env-1-secret-value');
    await c.publishAsync('devices/env-1/telemetry', '{"metrics": {"pm25": 3', { qos: 1 });
    await c.publishAsync('devices/env-1/telemetry', JSON.stringify({ metrics: { pm25: 4 } }), { qos: 1 });
    await waitFor(() => allReadings(cloud.acked).length === 1);
    expect(allReadings(cloud.acked)[0]!.values).toEqual({ pm25: 4 });
    expect(await metricValue(t.edge.metrics, 'citysense_edge_messages_rejected_total', { device: 'env-1', reason: 'malformed_json' })).toBe(1);
  });

  it('a partly bad message: bad values counted, good neighbours delivered', async () => {
    t = await startTestEdge(cloud.url);
    const c = await t.connect('env-1', 'env-1-secret-value');
    const payload = { metrics: { pm25: 12, 'bad name': 1, nested: { a: 1 }, nothing: null, fine: 'ok' } };
    await c.publishAsync('devices/env-1/telemetry', JSON.stringify(payload), { qos: 1 });
    await waitFor(() => allReadings(cloud.acked).length === 1);
    expect(allReadings(cloud.acked)[0]!.values).toEqual({ pm25: 12, fine: 'ok' });
    const m = t.edge.metrics;
    expect(await metricValue(m, 'citysense_edge_values_rejected_total', { device: 'env-1', reason: 'bad_value_type' })).toBe(2);
    expect(await metricValue(m, 'citysense_edge_values_rejected_total', { device: 'env-1', reason: 'bad_metric_name' })).toBe(1);
  });

  it('timestamps outside the clock-skew window are refused with a counter', async () => {
    t = await startTestEdge(cloud.url, { normalise: { maxFutureSkewMs: 60_000, maxPastAgeMs: 3_600_000 } });
    const c = await t.connect('env-1', 'env-1-secret-value');
    await c.publishAsync('devices/env-1/telemetry', JSON.stringify({ ts: Date.now() + 3_600_000, metrics: { a: 1 } }), { qos: 1 });
    await c.publishAsync('devices/env-1/telemetry', JSON.stringify({ ts: 1000, metrics: { a: 2 } }), { qos: 1 });
    await c.publishAsync('devices/env-1/telemetry', JSON.stringify({ metrics: { a: 3 } }), { qos: 1 });
    await waitFor(() => allReadings(cloud.acked).length === 1);
    expect(allReadings(cloud.acked)[0]!.values).toEqual({ a: 3 });
    const m = t.edge.metrics;
    expect(await metricValue(m, 'citysense_edge_messages_rejected_total', { device: 'env-1', reason: 'clock_skew_future' })).toBe(1);
    expect(await metricValue(m, 'citysense_edge_messages_rejected_total', { device: 'env-1', reason: 'clock_skew_past' })).toBe(1);
  });
});

describe('health and metrics over HTTP', () => {
  it('/healthz and /metrics answer', async () => {
    t = await startTestEdge(cloud.url);
    const c = await t.connect('env-1', 'env-1-secret-value');
    await c.publishAsync('devices/env-1/telemetry', JSON.stringify({ metrics: { pm25: 1 } }), { qos: 1 });
    await waitFor(() => cloud.acked.length === 1);
    await waitFor(async () => {
      const h = (await (await fetch(`http://127.0.0.1:${t!.edge.httpPort}/healthz`)).json()) as { uplink: { state: string } };
      return h.uplink.state === 'up';
    });
    const h = await (await fetch(`http://127.0.0.1:${t.edge.httpPort}/healthz`)).json();
    expect(h).toMatchObject({ status: 'ok', edgeId: 'edge-test', mqtt: { port: t.edge.mqttPort, connections: 1 }, queuedReadings: 0 });
    const text = await (await fetch(`http://127.0.0.1:${t.edge.httpPort}/metrics`)).text();
    expect(text).toContain('citysense_edge_batches_acked_total{lane="telemetry"} 1');
    expect(text).toContain('citysense_edge_queue_items{class="telemetry",kind="readings"} 0');
    expect(text).toContain('citysense_edge_uplink_request_seconds_bucket');
  });
});
