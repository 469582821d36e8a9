// Who may connect, publish and subscribe; and that secrets never reach the log.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
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

function tryConnect(port: number, username: string | undefined, password: string | undefined) {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username, password, clientId: username ?? 'anonymous', reconnectPeriod: 0, connectTimeout: 5000 });
}

describe('CONNECT', () => {
  it('refuses a wrong password with "bad user name or password", counts it, never logs it', async () => {
    t = await startTestEdge(cloud.url);
    const err = (await tryConnect(t.edge.mqttPort, 'env-1', 'wrong-password-xyz').then(
      () => undefined,
      (e: unknown) => e,
    )) as { code?: number } | undefined;
    expect(err?.code).toBe(4);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_connect_refused_total', { reason: 'bad_password' })).toBe(1);

    const unknown = (await tryConnect(t.edge.mqttPort, 'nobody', 'whatever-secret').catch((e: unknown) => e)) as { code?: number };
    expect(unknown.code).toBe(4);
    const anon = (await tryConnect(t.edge.mqttPort, undefined, undefined).catch((e: unknown) => e)) as { code?: number };
    expect(anon.code).toBe(4);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_connect_refused_total', { reason: 'unknown_device' })).toBe(1);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_connect_refused_total', { reason: 'missing_credentials' })).toBe(1);

    const ok = await t.connect('env-1', 'env-1-secret-value');
    await ok.publishAsync('devices/env-1/telemetry', JSON.stringify({ metrics: { a: 1 } }), { qos: 1 });
    await waitFor(() => cloud.acked.length === 1);

    const logged = t.logs.join('');
    expect(logged).toContain('bad_password');
    for (const secret of ['wrong-password-xyz', 'env-1-secret-value', 'whatever-secret', 'test-edge-token']) {
      expect(logged).not.toContain(secret);
    }
  });

  it('accepts a device registered by secretSha256', async () => {
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256').update('hashed-secret-123').digest('hex');
    t = await startTestEdge(cloud.url, {
      registry: { devices: [{ id: 'nb-1', family: 'nbiot', district: 'guancheng', secretSha256: hash }] },
    });
    const c = await t.connect('nb-1', 'hashed-secret-123');
    await c.publishAsync('devices/nb-1/telemetry', JSON.stringify({ metrics: { battery_pct: 88 } }), { qos: 1 });
    await waitFor(() => allReadings(cloud.acked).length === 1);
    expect(allReadings(cloud.acked)[0]).toMatchObject({ deviceId: 'nb-1', family: 'nbiot', tags: { district: 'guancheng' } });
  });
});

describe('topic ACL', () => {
  it("refuses a publish under another device's topic; it never reaches the cloud", async () => {
    t = await startTestEdge(cloud.url);
    const c = await t.connect('env-1', 'env-1-secret-value');
    await c.publishAsync('devices/env-2/telemetry', JSON.stringify({ metrics: { spoofed: 1 } }), { qos: 1 });
    await c.publishAsync('elsewhere/topic', JSON.stringify({ metrics: { spoofed: 2 } }), { qos: 1 });
    await c.publishAsync('devices/env-1/whatever', JSON.stringify({ metrics: { spoofed: 3 } }), { qos: 0 });
    await c.publishAsync('devices/env-1/telemetry', JSON.stringify({ metrics: { real: 1 } }), { qos: 1 });
    await waitFor(() => allReadings(cloud.acked).length >= 1);
    await t.edge.flush(5000);
    expect(allReadings(cloud.acked).map((r) => r.values)).toEqual([{ real: 1 }]);
    expect(allReadings(cloud.acked).every((r) => r.deviceId === 'env-1')).toBe(true);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_publish_refused_total', { reason: 'foreign_topic' })).toBe(2);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_publish_refused_total', { reason: 'unknown_topic' })).toBe(1);
  });

  it("refuses subscriptions outside the device's own subtree and does not fan telemetry out", async () => {
    t = await startTestEdge(cloud.url);
    const spy = await t.connect('env-2', 'env-2-secret-value');
    // mqtt.js turns a SUBACK 0x80 into a rejection.
    await expect(spy.subscribeAsync('devices/env-1/#', { qos: 1 })).rejects.toThrow();
    await expect(spy.subscribeAsync('#', { qos: 1 })).rejects.toThrow();
    const own = await spy.subscribeAsync('devices/env-2/#', { qos: 1 });
    expect(own.map((g) => g.qos)).toEqual([1]);
    const seen: string[] = [];
    spy.on('message', (topic) => seen.push(topic));
    const c = await t.connect('env-2', 'env-2-secret-value');
    await c.publishAsync('devices/env-2/telemetry', JSON.stringify({ metrics: { a: 1 } }), { qos: 1 });
    await waitFor(() => cloud.acked.length === 1);
    // The message went to the pipeline only, not through aedes' subscriber fan-out.
    expect(seen).toEqual([]);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_subscribe_refused_total')).toBe(2);
  });
});

describe('limits', () => {
  it('cuts a connection that declares a packet over mqtt.maxPacketBytes', async () => {
    t = await startTestEdge(cloud.url, { mqtt: { host: '127.0.0.1', port: 0, maxPacketBytes: 1024 } });
    const c = await t.connect('env-1', 'env-1-secret-value');
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish('devices/env-1/telemetry', JSON.stringify({ metrics: { blob: 'x'.repeat(4096) } }), { qos: 1 });
    await closed;
    await waitFor(async () => (await metricValue(t!.edge.metrics, 'citysense_edge_publish_refused_total', { reason: 'packet_too_large' })) === 1);
    expect(cloud.requests).toHaveLength(0);
  });
});
