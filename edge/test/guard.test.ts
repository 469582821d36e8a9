// Guarding the edge: MQTT over TLS, the connection rate limit, the clock-skew policy, duplicate readings.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { allReadings, makeTestPki, metricValue, startFakeCloud, startTestEdge, waitFor, type FakeCloud, type TestEdge } from './helpers.ts';

let cloud: FakeCloud | undefined;
let te: TestEdge | undefined;
afterEach(async () => {
  await te?.stop();
  await cloud?.close();
  te = undefined;
  cloud = undefined;
});

// A CA and a server certificate for 127.0.0.1, made with the openssl CLI (Debian ships it).
let pki = '';
beforeAll(() => {
  pki = makeTestPki('citysense-mqtt-tls-');
}, 30_000);

describe('MQTT over TLS', () => {
  it('a device connects over TLS with its secret and its reading goes on; a wrong secret is still refused', async () => {
    cloud = await startFakeCloud();
    te = await startTestEdge(cloud.url, { mqtt: { host: '127.0.0.1', port: 0, tls: { host: '127.0.0.1', port: 0, cert: join(pki, 'edge.crt'), key: join(pki, 'edge.key') } } });
    const port = te.edge.mqttTlsPort!;
    expect(port).toBeGreaterThan(0);
    const ca = readFileSync(join(pki, 'ca.crt'));
    const c = await mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, { username: 'env-1', password: 'env-1-secret-value', clientId: 'env-1', ca, rejectUnauthorized: true, reconnectPeriod: 0 });
    await c.publishAsync('devices/env-1/telemetry', JSON.stringify({ metrics: { pm25: 12.5 } }), { qos: 1 });
    await c.endAsync();
    await waitFor(() => allReadings(cloud!.acked).some((r) => r.values.pm25 === 12.5), 10_000, 'the TLS reading at the cloud');
    await expect(mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, { username: 'env-1', password: 'wrong', clientId: 'env-1', ca, reconnectPeriod: 0 })).rejects.toThrow(/Bad username or password/i);
    // A client that does not trust our CA does not get in either.
    await expect(mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, { username: 'env-1', password: 'env-1-secret-value', clientId: 'env-1', rejectUnauthorized: true, reconnectPeriod: 0, connectTimeout: 5_000 })).rejects.toThrow();
  });
});

describe('connection rate limit', () => {
  it('connections over mqtt.maxConnectsPerSecond are closed and counted; the admitted ones work', async () => {
    cloud = await startFakeCloud();
    te = await startTestEdge(cloud.url, { mqtt: { host: '127.0.0.1', port: 0, maxConnectsPerSecond: 1, connectBurst: 3 } });
    const url = `mqtt://127.0.0.1:${te.edge.mqttPort}`;
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => mqtt.connectAsync(url, { username: 'env-2', password: 'env-2-secret-value', clientId: `env-2/${i}`, reconnectPeriod: 0, connectTimeout: 5_000 })),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok.length).toBeGreaterThanOrEqual(3);
    expect(ok.length).toBeLessThan(6);
    expect(await metricValue(te.edge.metrics, 'citysense_edge_connect_refused_total', { reason: 'rate_limited' })).toBe(6 - ok.length);
    await Promise.all(ok.map((r) => (r as PromiseFulfilledResult<mqtt.MqttClient>).value.endAsync()));
  });
});

describe('timestamps and duplicates', () => {
  it('clockSkew reject: a far-future reading is refused and counted; flag: kept at receive time, marked, device time kept', async () => {
    cloud = await startFakeCloud();
    te = await startTestEdge(cloud.url);
    const c = await te.connect('env-1', 'env-1-secret-value');
    const future = Date.now() + 3600_000;
    await c.publishAsync('devices/env-1/telemetry', JSON.stringify({ ts: future, metrics: { pm25: 1 } }), { qos: 1 });
    await c.publishAsync('devices/env-1/telemetry', JSON.stringify({ metrics: { pm25: 2 } }), { qos: 1 });
    await waitFor(() => allReadings(cloud!.acked).some((r) => r.values.pm25 === 2), 10_000, 'the good reading');
    expect(allReadings(cloud.acked).some((r) => r.values.pm25 === 1)).toBe(false);
    expect(await metricValue(te.edge.metrics, 'citysense_edge_messages_rejected_total', { device: 'env-1', reason: 'clock_skew_future' })).toBe(1);
    await te.stop();
    await cloud.close();

    cloud = await startFakeCloud();
    te = await startTestEdge(cloud.url, { normalise: { clockSkew: 'flag' } });
    const c2 = await te.connect('env-1', 'env-1-secret-value');
    const past = Date.now() - 30 * 24 * 3600_000;
    const before = Date.now();
    await c2.publishAsync('devices/env-1/telemetry', JSON.stringify({ ts: past, metrics: { pm25: 3 } }), { qos: 1 });
    await waitFor(() => allReadings(cloud!.acked).some((r) => r.values.pm25 === 3), 10_000, 'the flagged reading');
    const r = allReadings(cloud.acked).find((x) => x.values.pm25 === 3)!;
    expect(r.quality).toBe('clock_skew');
    expect(r.values.device_ts).toBe(past);
    expect(r.ts).toBeGreaterThanOrEqual(before);
  });

  it('an exact repeat of the last reading (same time, same values) is dropped and counted; a changed value is not', async () => {
    cloud = await startFakeCloud();
    te = await startTestEdge(cloud.url);
    const c = await te.connect('env-2', 'env-2-secret-value');
    const ts = Date.now() - 1000;
    const msg = JSON.stringify({ ts, metrics: { pm25: 7, pm10: 9 } });
    await c.publishAsync('devices/env-2/telemetry', msg, { qos: 1 });
    await c.publishAsync('devices/env-2/telemetry', msg, { qos: 1 });
    await c.publishAsync('devices/env-2/telemetry', JSON.stringify({ ts, metrics: { pm25: 8, pm10: 9 } }), { qos: 1 });
    await waitFor(() => allReadings(cloud!.acked).some((r) => r.values.pm25 === 8), 10_000, 'the corrected reading');
    expect(allReadings(cloud.acked).filter((r) => r.deviceId === 'env-2').map((r) => r.values.pm25)).toEqual([7, 8]);
    expect(await metricValue(te.edge.metrics, 'citysense_edge_messages_rejected_total', { device: 'env-2', reason: 'duplicate' })).toBe(1);
  });
});
