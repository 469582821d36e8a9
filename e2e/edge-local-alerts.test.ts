// Edge-local alerting end to end (issue 5, item 5): the real cloud (alert engine, webhook outbox, store on
// disk, InfluxDB) and the real edge, a fire system played by a node:http receiver that both post to,
// signed with the same secret. Done when: with the cloud stopped, a fire alarm still reaches the fire
// system (from the edge); after the cloud returns, no second notification for the same event.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCloudConfig, startCloud, type RunningCloud } from '@citysense/cloud';
import { startEdge, type Edge } from '@citysense/edge';
import { verifySignature } from '../cloud/src/delivery/sign.ts';
import { receiver, type Delivery, type Receiver } from '../cloud/test/alerts-fixtures.ts';
import { testInflux, waitFor, type TestInflux } from './setup/influx.ts';

const EDGE_ID = 'edge-local-alerts';
const EDGE_TOKEN = 'e2e-local-alerts-token-41c9';
const SECRET = 'fire-system-e2e-secret';
const DEVICE = { id: 'demo-fire-001', family: 'fire' as const, district: 'zhongyuan', secret: 'demo-fire-001-secret' };
const FIRE_RULES = new URL('../cloud/rules/fire.yaml', import.meta.url).pathname;

let influx: TestInflux;
let fireSystem: Receiver;
let cloud: RunningCloud | undefined;
let edge: Edge;
let device: MqttClient;
let dir: string;
const logs: string[] = [];
const sink = new Writable({
  write(chunk, _enc, done) {
    logs.push(...String(chunk).split('\n').filter(Boolean));
    done();
  },
});

function cloudConfig(port: number) {
  return parseCloudConfig({
    listen: { host: '127.0.0.1', port },
    store: { path: join(dir, 'cloud.db') },
    influx: { url: influx.url, database: influx.db, retention: { manage: false } },
    auth: { mode: 'token', edges: [{ id: EDGE_ID, tokenSha256: createHash('sha256').update(EDGE_TOKEN).digest('hex') }] },
    // The default rules (cloud/rules/): fire-alarm is an event rule of severity critical, one alert per zone.
    webhooks: {
      demoTargetsFromEnv: false,
      pollIntervalMs: 50,
      targets: [{ id: 'fire-system', url: fireSystem.url, secret: SECRET, match: { categories: ['fire'] }, backoff: { initialMs: 50, maxMs: 500 } }],
    },
    operators: { demoUsers: true },
    log: { level: 'info' },
  });
}

async function api<T>(path: string): Promise<T> {
  const base = cloud!.url;
  const login = await fetch(`${base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'duty', password: 'duty-demo' }) });
  const { token } = (await login.json()) as { token: string };
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

interface AlertJson {
  id: string;
  rule: string;
  attrs: Record<string, string> | null;
  source_event_id: string | null;
  deliveries: { target: string; status: string; event_id: string }[];
}
const alertOfZone = async (zone: string) => (await api<{ alerts: AlertJson[] }>('/v1/alerts?rule=fire-alarm')).alerts.find((a) => a.attrs?.zone === zone);

async function edgeMetric(name: string, labels: Record<string, string>): Promise<number> {
  const data = await edge.metrics.getSingleMetric(name)!.get();
  return data.values.find((v) => Object.entries(labels).every(([k, x]) => String((v.labels as Record<string, unknown>)[k]) === x))?.value ?? 0;
}

const fromEdge = (d: Delivery) => String(d.headers['x-citysense-origin'] ?? '').startsWith('edge:');
const ofZone = (zone: string) => fireSystem.deliveries.filter((d) => (d.body.attrs as Record<string, string> | undefined)?.zone === zone);

async function fireAlarm(zone: string): Promise<void> {
  await device.publishAsync(`devices/${DEVICE.id}/events`, JSON.stringify({ ts: Date.now(), type: 'fire_alarm', attrs: { zone } }), { qos: 1 });
}

beforeAll(async () => {
  influx = await testInflux('edge-local-alerts');
  fireSystem = await receiver();
  dir = mkdtempSync(join(tmpdir(), 'citysense-e2e-local-alerts-'));
  cloud = await startCloud(cloudConfig(0), { logger: pino({ level: 'info' }, sink) });
  edge = await startEdge(
    {
      edgeId: EDGE_ID,
      dataDir: join(dir, 'edge'),
      mqtt: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0 },
      hj212: { host: '127.0.0.1', port: 0 },
      registry: { devices: [DEVICE] },
      cloud: { url: cloud.url, token: EDGE_TOKEN },
      batch: { maxAgeMs: 50 },
      uplink: { requestTimeoutMs: 3000, retry: { initialDelayMs: 50, maxDelayMs: 300, factor: 2 } },
      localAlerts: {
        // The cloud's own rule file: the same rule ids, types and keys.
        rulesFiles: [FIRE_RULES],
        targets: [{ id: 'fire-system', url: fireSystem.url, secret: SECRET, match: { categories: ['fire'] }, backoff: { initialMs: 50, maxMs: 500 } }],
        // Generous, so a slow test machine never makes the edge step in while the cloud is up.
        cloudDownAfterMs: 15_000,
      },
    },
    { logDestination: sink },
  );
  device = await mqtt.connectAsync(`mqtt://127.0.0.1:${edge.mqttPort}`, { username: DEVICE.id, password: DEVICE.secret, clientId: `${DEVICE.id}/fire-panel`, reconnectPeriod: 0 });
});

afterAll(async () => {
  await device?.endAsync(true).catch(() => undefined);
  await edge?.close();
  await cloud?.close();
  await fireSystem?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('edge-local alerting', () => {
  it('with the cloud up, a fire alarm is delivered by the cloud only', async () => {
    await fireAlarm('A-1');
    await waitFor('the cloud\'s delivery', async () => ofZone('A-1').length >= 1);
    // The edge saw the ack in time and decided not to notify.
    await waitFor('the edge standing down', async () => (await edgeMetric('citysense_edge_local_alert_decisions_total', { rule: 'fire-alarm', decision: 'cloud_acked' })) === 1);
    const [d] = ofZone('A-1');
    expect(ofZone('A-1')).toHaveLength(1);
    expect(fromEdge(d!)).toBe(false);
    expect(d!.headers['user-agent']).toBe('citysense-cloud');
    expect(await edgeMetric('citysense_edge_local_alert_decisions_total', { decision: 'notified' })).toBe(0);
    expect(fireSystem.attempts.filter(fromEdge)).toHaveLength(0);
    const alert = await alertOfZone('A-1');
    expect(alert?.deliveries.map((x) => [x.target, x.status])).toEqual([['fire-system', 'delivered']]);
  });

  it('with the cloud stopped, the edge alerts the fire system; the returning cloud does not notify it again', async () => {
    const port = cloud!.port;
    await cloud!.close();
    cloud = undefined;

    await fireAlarm('B2-07');
    await waitFor('the edge\'s delivery', async () => ofZone('B2-07').length >= 1);
    const [d] = ofZone('B2-07');
    expect(fromEdge(d!)).toBe(true);
    expect(verifySignature(SECRET, d!.raw, d!.headers['x-citysense-signature'] as string, Math.floor(Date.now() / 1000))).toMatchObject({ ok: true });
    expect(d!.body).toMatchObject({ rule: 'fire-alarm', state: 'firing', severity: 'critical', category: 'fire', device_id: DEVICE.id, district: 'zhongyuan', type: 'fire_alarm', attrs: { zone: 'B2-07' } });
    expect(d!.headers['idempotency-key']).toBe(d!.body.event_id);
    // Recorded as delivered (durably): from now on every upload attempt of the batch says edge_notified.
    await waitFor('delivered recorded', async () => (await edgeMetric('citysense_edge_local_alerts_total', { rule: 'fire-alarm', target: 'fire-system', outcome: 'delivered' })) === 1);

    // The cloud returns on the same store and port; the edge's queued batch drains into it.
    cloud = await startCloud(cloudConfig(port), { logger: pino({ level: 'info' }, sink) });
    let alert: AlertJson | undefined;
    await waitFor('the cloud processed the batch', async () => {
      alert = await alertOfZone('B2-07');
      return alert !== undefined;
    });
    await edge.flush(10_000);
    // The firing's outbox rows were committed with the alert: fire-system's is `edge`, never sent.
    expect(alert!.deliveries.map((x) => [x.target, x.status])).toEqual([['fire-system', 'edge']]);
    expect(alert!.deliveries[0]!.event_id).toBe(d!.headers['idempotency-key']);
    expect(alert!.id).toBe(d!.body.id);
    expect(alert!.source_event_id).toBe(d!.body.source_event_id);
    expect(alert!.attrs).toMatchObject({ zone: 'B2-07', edge_notified: 'fire-system' });
    const pending = await api<{ deliveries: unknown[] }>('/v1/webhooks/deliveries?status=pending');
    expect(pending.deliveries).toHaveLength(0);
    expect(ofZone('B2-07')).toHaveLength(1);
    expect(fireSystem.attempts.filter((a) => a.headers['idempotency-key'] === d!.headers['idempotency-key'])).toHaveLength(1);
  });
});
