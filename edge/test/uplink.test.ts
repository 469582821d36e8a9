// Delivery to the cloud: retries keep the seq, refusals drop, backpressure reaches the device, seq
// survives restarts.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

const reading = (v: number) => JSON.stringify({ metrics: { v } });

describe('uplink', () => {
  it('503 twice then 200: delivered once, the same seq on every attempt', async () => {
    cloud.answer = (_b, n) => (n < 2 ? { status: 503 } : undefined);
    t = await startTestEdge(cloud.url);
    const c = await t.connect('env-1', 'env-1-secret-value');
    await c.publishAsync('devices/env-1/telemetry', reading(1), { qos: 1 });
    await waitFor(() => cloud.acked.length === 1, 5000, 'delivery after retries');
    await t.edge.flush(5000);
    expect(cloud.requests.map((r) => r.status)).toEqual([503, 503, 200]);
    expect(new Set(cloud.requests.map((r) => r.batch.seq)).size).toBe(1);
    expect(allReadings(cloud.acked)).toHaveLength(1);
    const m = t.edge.metrics;
    expect(await metricValue(m, 'citysense_edge_uplink_errors_total', { reason: 'http_5xx' })).toBe(2);
    expect(await metricValue(m, 'citysense_edge_batches_sent_total')).toBe(3);
    expect(await metricValue(m, 'citysense_edge_batches_acked_total')).toBe(1);
    expect(await metricValue(m, 'citysense_edge_readings_acked_total')).toBe(1);
  });

  it('400: counted and dropped, the next batch is still delivered', async () => {
    cloud.answer = (b) => (b.readings[0]?.values.v === 1 ? { status: 400, json: { error: 'batch_invalid', message: 'no good' } } : undefined);
    t = await startTestEdge(cloud.url);
    const c = await t.connect('env-1', 'env-1-secret-value');
    await c.publishAsync('devices/env-1/telemetry', reading(1), { qos: 1 });
    await waitFor(() => cloud.requests.length === 1);
    await c.publishAsync('devices/env-1/telemetry', reading(2), { qos: 1 });
    await waitFor(() => cloud.acked.length === 1);
    expect(allReadings(cloud.acked).map((r) => r.values.v)).toEqual([2]);
    expect(cloud.requests.map((r) => r.status)).toEqual([400, 200]);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_batches_refused_total', { reason: 'batch_invalid' })).toBe(1);
    expect(t.logs.join('')).toContain('no good');
  });

  it('401 is retried (an operator fixes the credential) and the health turns degraded meanwhile', async () => {
    let fixed = false;
    cloud.answer = () => (fixed ? undefined : { status: 401, json: { error: 'unauthorized', message: 'bad token' } });
    t = await startTestEdge(cloud.url);
    const c = await t.connect('env-1', 'env-1-secret-value');
    await c.publishAsync('devices/env-1/telemetry', reading(7), { qos: 1 });
    await waitFor(() => cloud.requests.length >= 2);
    expect(t.edge.health()).toMatchObject({ status: 'degraded', uplink: { state: 'down' }, queuedReadings: 1 });
    fixed = true;
    await waitFor(() => cloud.acked.length === 1);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_uplink_errors_total', { reason: 'unauthorized' })).toBeGreaterThanOrEqual(2);
    expect(t.logs.join('')).not.toContain('test-edge-token');
  });

  it('while the cloud is down readings are acknowledged from disk, and all arrive once it is back', async () => {
    let up = false;
    cloud.answer = () => (up ? undefined : { status: 503 });
    t = await startTestEdge(cloud.url, { batch: { maxReadings: 2, maxAgeMs: 10 } });
    const c = await t.connect('env-1', 'env-1-secret-value');
    await Promise.all(Array.from({ length: 8 }, (_, i) => c.publishAsync('devices/env-1/telemetry', reading(i), { qos: 1 })));
    await waitFor(() => cloud.requests.length >= 3, 5000, 'several failed attempts');
    expect(t.edge.health()).toMatchObject({ status: 'degraded', queuedReadings: 8 });
    up = true;
    await t.edge.flush(10_000);
    expect(allReadings(cloud.acked).map((r) => r.values.v).sort((x, y) => Number(x) - Number(y))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(t.edge.health().queuedReadings).toBe(0);
  });

  it('a full alarm reserve holds back the PUBACK of further alarms instead of dropping any', async () => {
    let up = false;
    cloud.answer = () => (up ? undefined : { status: 503 });
    t = await startTestEdge(cloud.url, { queue: { alarmQuotaBytes: 700 } });
    const c = await t.connect('fire-1', 'fire-1-secret-value');
    const acks: boolean[] = [];
    const sent = Array.from({ length: 6 }, (_, i) =>
      c.publishAsync('devices/fire-1/events', JSON.stringify({ ts: Date.now() - 1000 + i, type: 'fire_alarm', attrs: { zone: `Z${i}` } }), { qos: 1 }).then(() => {
        acks[i] = true;
      }),
    );
    await waitFor(() => cloud.requests.length >= 2, 5000, 'failed attempts');
    await waitFor(() => (t!.edge.health().status === 'degraded'), 5000, 'degraded health');
    expect(acks.filter(Boolean).length).toBeLessThan(6);
    up = true;
    await Promise.all(sent);
    await t.edge.flush(10_000);
    const zones = cloud.acked.flatMap((b) => b.events.map((e) => e.attrs.zone)).sort();
    expect(zones).toEqual(['Z0', 'Z1', 'Z2', 'Z3', 'Z4', 'Z5']);
    expect(cloud.acked.filter((b) => b.events.length > 0).every((b) => b.lane === 'alarm')).toBe(true);
  });

  it('seq survives a restart: the next edge starts strictly above', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'citysense-edge-seq-'));
    try {
      const a = await startTestEdge(cloud.url, {}, dir);
      const c = await a.connect('env-1', 'env-1-secret-value');
      await c.publishAsync('devices/env-1/telemetry', reading(1), { qos: 1 });
      await waitFor(() => cloud.acked.length === 1);
      await a.stop();
      const first = cloud.acked[0]!.seq;

      t = await startTestEdge(cloud.url, {}, dir);
      const c2 = await t.connect('env-1', 'env-1-secret-value');
      await c2.publishAsync('devices/env-1/telemetry', reading(2), { qos: 1 });
      await waitFor(() => cloud.acked.length === 2);
      expect(cloud.acked[1]!.seq).toBeGreaterThan(first);
    } finally {
      await t?.stop();
      t = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
