// A reading's whole path on the real parts: MQTT client over TCP → edge (aedes) → protobuf uplink →
// cloud → InfluxDB, checked by querying InfluxDB.
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSim } from '@citysense/device-sim';
import { startStack, type Stack, type StackDevice } from './stack.ts';
import { waitFor } from './setup/influx.ts';

const DEVICES: StackDevice[] = [
  { id: 'demo-env-001', family: 'environment', secret: 'demo-env-001-secret', district: 'jinshui', tags: { site: 'park-1', model: 'AQM-9' } },
  { id: 'demo-fire-001', family: 'fire', secret: 'demo-fire-001-secret', district: 'zhongyuan' },
  { id: 'demo-nb-001', family: 'nbiot', secret: 'demo-nb-001-secret', district: 'guancheng' },
];

let stack: Stack;
beforeAll(async () => {
  stack = await startStack('pipeline', DEVICES);
});
afterAll(async () => {
  await stack?.close();
});

function connect(username: string, password: string): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(stack.mqttUrl, { username, password, clientId: username, reconnectPeriod: 0, connectTimeout: 5_000 });
    c.once('connect', () => resolve(c));
    c.once('error', (err) => {
      c.end(true);
      reject(err);
    });
  });
}

describe('sensor → edge → cloud → InfluxDB', () => {
  it('a JSON reading lands in its family measurement with tags, float fields and its own timestamp', async () => {
    const c = await connect('demo-env-001', 'demo-env-001-secret');
    const ts = Date.now() - 1234;
    await c.publishAsync('devices/demo-env-001/telemetry', JSON.stringify({ ts, metrics: { pm25: 35.2, pm10: 61, door_open: false, status: 'ok' } }), { qos: 1 });
    await c.endAsync();
    let rows: Record<string, unknown>[] = [];
    await waitFor('the reading in InfluxDB', async () => {
      rows = await stack.influx.query(`SELECT * FROM environment WHERE device_id = 'demo-env-001'`);
      return rows.length === 1;
    });
    expect(rows[0]).toMatchObject({ time: ts, device_id: 'demo-env-001', district: 'jinshui', site: 'park-1', model: 'AQM-9', pm25: 35.2, pm10: 61, door_open: false, status: 'ok' });
    // pm10 was sent as 61 and must be a float field, so a later 61.5 never conflicts.
    const types = await stack.influx.query('SHOW FIELD KEYS FROM environment');
    expect(types.find((r) => r.fieldKey === 'pm10')?.fieldType).toBe('float');
  });

  it('an event lands in `events` with its type, family and attributes', async () => {
    const c = await connect('demo-fire-001', 'demo-fire-001-secret');
    const ts = Date.now() - 500;
    await c.publishAsync('devices/demo-fire-001/events', JSON.stringify({ ts, type: 'fire_alarm', attrs: { zone: 'B2-07', floor: 2 } }), { qos: 1 });
    await c.endAsync();
    let rows: Record<string, unknown>[] = [];
    await waitFor('the event in InfluxDB', async () => {
      rows = await stack.influx.query(`SELECT * FROM events WHERE device_id = 'demo-fire-001'`);
      return rows.length === 1;
    });
    expect(rows[0]).toMatchObject({ time: ts, type: 'fire_alarm', family: 'fire', district: 'zhongyuan', priority: 'alarm', attr_zone: 'B2-07', attr_floor: '2' });
  });

  it('a wrong device password is refused at CONNECT and nothing is written', async () => {
    await expect(connect('demo-nb-001', 'not-the-secret')).rejects.toThrow(/Bad username or password|Not authorized/i);
    const rows = await stack.influx.query(`SELECT * FROM nbiot WHERE device_id = 'demo-nb-001'`);
    expect(rows).toHaveLength(0);
  });

  it('a device publishing under another device\'s topic is refused; its own reading still lands', async () => {
    const c = await connect('demo-nb-001', 'demo-nb-001-secret');
    const ts = Date.now() - 100;
    await c.publishAsync('devices/demo-env-001/telemetry', JSON.stringify({ ts, metrics: { pm25: 999 } }), { qos: 1 });
    await c.publishAsync('devices/demo-nb-001/telemetry', JSON.stringify({ ts, metrics: { battery_pct: 88 } }), { qos: 1 });
    await c.endAsync();
    await waitFor('demo-nb-001 reading', async () => (await stack.influx.query(`SELECT * FROM nbiot WHERE device_id = 'demo-nb-001'`)).length === 1);
    const forged = await stack.influx.query(`SELECT * FROM environment WHERE pm25 = 999`);
    expect(forged).toHaveLength(0);
    const metrics = await stack.edge.metrics.getSingleMetricAsString('citysense_edge_publish_refused_total');
    expect(metrics).toMatch(/citysense_edge_publish_refused_total\{[^}]*\} 1/);
  });

  it('every reading device-sim had acknowledged is in InfluxDB: count and value sums per device', async () => {
    const stats = await runSim({
      url: stack.mqttUrl,
      devices: DEVICES.map((d) => ({ id: d.id, secret: d.secret!, family: d.family })),
      count: 40,
      intervalMs: 5,
      seed: 42,
      simStepMs: 1_000,
      startTs: Date.now() - 3_600_000,
      progress: false,
    });
    expect(stats.refused).toBe(0);
    expect(stats.acked).toBe(DEVICES.length * 40);
    for (const d of DEVICES) {
      const dev = stats.perDevice[d.id]!;
      const from = `time >= ${stats.startTs}ms AND time < ${stats.startTs + 41 * 1_000}ms`; // the sim run only
      let rows: Record<string, unknown>[] = [];
      await waitFor(`${d.id}: ${dev.acked} readings`, async () => {
        rows = await stack.influx.query(`SELECT * FROM ${d.family} WHERE device_id = '${d.id}' AND ${from}`);
        return rows.length === dev.acked;
      });
      for (const [metric, sum] of Object.entries(dev.sums)) {
        const got = rows.reduce((s, r) => s + Number(r[metric] ?? 0), 0);
        expect(got, `${d.id}.${metric}`).toBeCloseTo(sum, 6);
      }
    }
  });
});
