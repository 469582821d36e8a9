// A tiny queue quota and a long outage: the edge keeps running, drops only routine telemetry (oldest
// first), keeps every alarm, and the drops are reported to the cloud exactly: for each device, readings
// in InfluxDB + readings reported dropped = readings the device had acknowledged.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCloudConfig, startCloud, type RunningCloud } from '@citysense/cloud';
import { startEdge, type Edge } from '@citysense/edge';
import { freePort } from '../scripts/influxd.ts';
import { CuttableLink } from './faults/harness.ts';
import { testInflux, waitFor } from './setup/influx.ts';

const TOKEN = 'disk-full-edge-token';
const dir = mkdtempSync(join(tmpdir(), 'citysense-disk-full-'));
let cloud: RunningCloud | undefined;
let edge: Edge | undefined;
let link: CuttableLink | undefined;
afterAll(async () => {
  await edge?.close();
  await link?.close();
  await cloud?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function metricSum(text: string, name: string, label: string, value: string): Promise<number> {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && line.includes(`${label}="${value}"`)) sum += Number(line.split(' ').pop());
  return sum;
}

describe('disk full: a tiny quota during a long outage', () => {
  it('drops only telemetry, keeps every alarm, and the cloud learns the exact drop counts per device', async () => {
    const influx = await testInflux('disk-full');
    cloud = await startCloud(
      parseCloudConfig({
        listen: { host: '127.0.0.1', port: 0 },
        store: { path: ':memory:' },
        influx: { url: influx.url, database: influx.db, retention: { manage: false } },
        auth: { mode: 'token', edges: [{ id: 'edge-df', tokenSha256: createHash('sha256').update(TOKEN).digest('hex') }] },
      }),
      { logger: pino({ level: 'silent' }) },
    );
    link = new CuttableLink(await freePort(), cloud.port);
    await link.open();
    link.setCut(true); // the outage starts before the first reading
    const devices = ['df-env-1', 'df-env-2'];
    edge = await startEdge(
      {
        edgeId: 'edge-df',
        dataDir: join(dir, 'edge'),
        mqtt: { host: '127.0.0.1', port: 0 },
        http: { host: '127.0.0.1', port: 0 },
        hj212: { enabled: false },
        registry: { devices: [...devices.map((id) => ({ id, family: 'environment' as const, district: 'jinshui', secret: `${id}-secret` })), { id: 'df-fire-1', family: 'fire' as const, district: 'jinshui', secret: 'df-fire-1-secret' }] },
        cloud: { url: `http://127.0.0.1:${link.port}`, token: TOKEN },
        uplink: { retry: { initialDelayMs: 50, maxDelayMs: 300 } },
        batch: { maxReadings: 20, maxAgeMs: 20 },
        queue: { telemetryQuotaBytes: 24_000, segmentBytes: 16_384 },
        log: { level: 'silent' },
      },
    );
    const url = `mqtt://127.0.0.1:${edge.mqttPort}`;
    const t0 = Date.now() - 3600_000;
    const N = 300;
    for (const id of devices) {
      const c = await mqtt.connectAsync(url, { username: id, password: `${id}-secret`, clientId: id, reconnectPeriod: 0 });
      for (let i = 0; i < N; i++) await c.publishAsync(`devices/${id}/telemetry`, JSON.stringify({ ts: t0 + i * 1000, metrics: { pm25: i } }), { qos: 1 });
      await c.endAsync();
    }
    const fire = await mqtt.connectAsync(url, { username: 'df-fire-1', password: 'df-fire-1-secret', clientId: 'df-fire-1', reconnectPeriod: 0 });
    for (let i = 0; i < 10; i++) await fire.publishAsync('devices/df-fire-1/events', JSON.stringify({ ts: t0 + i * 1000, type: 'fire_alarm', attrs: { zone: `Z${i}` } }), { qos: 1 });
    await fire.endAsync();

    // Every message was acknowledged (the edge keeps running), and the quota forced drops.
    const during = await edge.metrics.metrics();
    const dropped = Object.fromEntries(await Promise.all(devices.map(async (d) => [d, await metricSum(during, 'citysense_edge_queue_dropped_by_device_total', 'device', d)] as const)));
    expect(dropped['df-env-1']! + dropped['df-env-2']!).toBeGreaterThan(0);
    expect(await metricSum(during, 'citysense_edge_queue_dropped_total', 'class', 'alarm')).toBe(0);

    link.setCut(false); // the link returns
    await edge.flush(60_000);
    const cloudText = await cloud.app.metrics.registry.metrics();
    for (const d of devices) {
      const rows = await influx.query(`SELECT count(pm25) FROM environment WHERE device_id = '${d}'`);
      const stored = Number(rows[0]?.count ?? 0);
      const reported = await metricSum(cloudText, 'citysense_cloud_edge_dropped_total', 'device', d);
      expect(reported, `${d}: drops the cloud was told of`).toBe(dropped[d]);
      expect(stored + reported, `${d}: stored + dropped`).toBe(N);
    }
    await waitFor('all ten alarms', async () => (await influx.query(`SELECT * FROM events WHERE device_id = 'df-fire-1'`)).length === 10);
  }, 120_000);
});
