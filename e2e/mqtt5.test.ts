// MQTT 5 devices on the real parts: mqtt.js in v5 mode and mosquitto_pub -V mqttv5 → edge → cloud →
// InfluxDB, and the reason codes the real pipeline gives for what it refuses.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSim } from '@citysense/device-sim';
import { startStack, type Stack, type StackDevice } from './stack.ts';
import { waitFor } from './setup/influx.ts';

const run = promisify(execFile);
const DEVICES: StackDevice[] = [
  { id: 'v5-env-001', family: 'environment', secret: 'v5-env-001-secret', district: 'jinshui', tags: { site: 'park-5' } },
  { id: 'v5-fire-001', family: 'fire', secret: 'v5-fire-001-secret', district: 'erqi' },
];
const TOPIC = 'devices/v5-env-001/telemetry';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack('mqtt5', DEVICES);
});
afterAll(async () => {
  await stack?.close();
});

describe('MQTT 5 device → edge → cloud → InfluxDB', () => {
  it('readings from mqtt.js (v5) and mosquitto_pub -V mqttv5 land; refusals come back as reason codes', async () => {
    const c = await mqtt.connectAsync(stack.mqttUrl, { username: 'v5-env-001', password: 'v5-env-001-secret', clientId: 'v5-env-001', protocolVersion: 5, reconnectPeriod: 0 });
    const ts = Date.now() - 3000;
    await c.publishAsync(TOPIC, JSON.stringify({ ts, metrics: { pm25: 12.5 } }), { qos: 1, properties: { topicAlias: 1 } });
    const codes: number[] = [];
    c.on('packetreceive', (p) => {
      if (p.cmd === 'puback') codes.push(p.reasonCode ?? 0);
    });
    await c.publishAsync('', 'not json', { qos: 1, properties: { topicAlias: 1 } }).catch(() => undefined);
    await c.publishAsync(TOPIC, JSON.stringify({ ts: ts + 10 * 365 * 86_400_000, metrics: { pm25: 1 } }), { qos: 1 }).catch(() => undefined);
    await c.publishAsync('devices/someone-else/telemetry', '{}', { qos: 1 }).catch(() => undefined);
    expect(codes).toEqual([0x99, 0x83, 0x87]);
    await c.endAsync();

    const url = new URL(stack.mqttUrl);
    await run('mosquitto_pub', ['-V', 'mqttv5', '-h', url.hostname, '-p', url.port, '-i', 'v5-env-001/pub', '-u', 'v5-env-001', '-P', 'v5-env-001-secret', '-q', '1', '-t', TOPIC, '-m', JSON.stringify({ ts: ts + 1000, metrics: { pm25: 13.5 } })], { timeout: 10_000 });

    let rows: Record<string, unknown>[] = [];
    await waitFor('both readings in InfluxDB', async () => {
      rows = await stack.influx.query(`SELECT * FROM environment WHERE device_id = 'v5-env-001'`);
      return rows.length === 2;
    });
    expect(rows.map((r) => [r.time, r.pm25, r.site])).toEqual([
      [ts, 12.5, 'park-5'],
      [ts + 1000, 13.5, 'park-5'],
    ]);
  });

  it('device-sim --mqtt-version 5: every acknowledged reading is in InfluxDB', async () => {
    const stats = await runSim({
      url: stack.mqttUrl,
      devices: [{ id: 'v5-fire-001', secret: 'v5-fire-001-secret', family: 'fire' }],
      mqttVersion: 5,
      count: 20,
      intervalMs: 5,
      seed: 5,
      simStepMs: 1_000,
      startTs: Date.now() - 3_600_000,
      progress: false,
      log: () => undefined,
    });
    expect(stats.acked).toBe(20);
    expect(stats.failed).toBe(0);
    await waitFor('20 fire readings', async () => (await stack.influx.query(`SELECT * FROM fire WHERE device_id = 'v5-fire-001'`)).length === 20);
  });
});
