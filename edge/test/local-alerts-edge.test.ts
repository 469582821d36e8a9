// Edge-local alerting through the whole edge (MQTT → ingest → durable queue → uplink) against a fake
// cloud that answers as told and a fire system played by a node:http receiver: the batch the cloud finally
// takes carries edge_notified (same seq as the failed attempts), across an edge restart too, and a device
// cannot set edge_notified itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { receiver, type Receiver } from '../../cloud/test/alerts-fixtures.ts';
import { EDGE_NOTIFIED_ATTR } from '../src/alerts/rules.ts';
import { metricValue, startFakeCloud, startTestEdge, waitFor, type FakeCloud, type TestEdge } from './helpers.ts';

const SECRET = 'fire-system-secret-1';
let cloud: FakeCloud;
let fire: Receiver;
const edges: TestEdge[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  cloud = await startFakeCloud();
  fire = await receiver();
});
afterEach(async () => {
  for (const e of edges.splice(0)) await e.stop();
  cloud.requests.length = 0;
  cloud.acked.length = 0;
  cloud.answer = () => undefined;
  fire.deliveries.length = 0;
  fire.attempts.length = 0;
  fire.otherwise = 200;
});
afterAll(async () => {
  await cloud.close();
  await fire.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function edge(dataDir?: string) {
  const e = await startTestEdge(
    cloud.url,
    {
      localAlerts: {
        rules: [{ id: 'fire-alarm', types: ['fire_alarm'], category: 'fire', keyAttrs: ['zone'] }],
        targets: [{ id: 'fire-system', url: fire.url, secret: SECRET, match: { categories: ['fire'] }, timeoutMs: 1000, backoff: { initialMs: 20, maxMs: 100 } }],
        cloudDownAfterMs: 10_000,
      },
      log: { level: 'info' },
    },
    dataDir,
  );
  edges.push(e);
  return e;
}

const down = () => ({ status: 503, json: { error: 'INFLUX_UNAVAILABLE', message: 'down' } });
const fireAlarms = () => cloud.requests.filter((r) => r.batch.events.some((e) => e.type === 'fire_alarm'));

describe('edge-local alerting through the edge', () => {
  it('cloud failing → the fire system hears it from the edge; the batch the cloud then takes says edge_notified, same seq', async () => {
    cloud.answer = down;
    const e = await edge();
    const c = await e.connect('fire-1', 'fire-1-secret-value');
    await c.publishAsync('devices/fire-1/events', JSON.stringify({ ts: Date.now(), type: 'fire_alarm', attrs: { zone: 'Z1' } }), { qos: 1 });
    const [d] = await fire.waitFor(1);
    expect(d!.body).toMatchObject({ rule: 'fire-alarm', device_id: 'fire-1', district: 'zhongyuan', attrs: { zone: 'Z1' } });
    await waitFor(async () => (await metricValue(e.edge.metrics, 'citysense_edge_local_alerts_total', { outcome: 'delivered' })) === 1, 5000, 'delivered');
    const failedSeq = fireAlarms()[0]!.batch.seq;
    cloud.answer = () => undefined;
    await e.edge.flush(5000);
    const acked = cloud.acked.find((b) => b.events.some((x) => x.type === 'fire_alarm'))!;
    expect(acked.seq).toBe(failedSeq);
    expect(acked.events[0]!.attrs).toEqual({ zone: 'Z1', [EDGE_NOTIFIED_ATTR]: 'fire-system' });
    expect(acked.events[0]!.id).toBe(d!.body.source_event_id);
    expect(fire.attempts).toHaveLength(1);
  });

  it('an edge restart while the cloud is still away: the notification is made after it, and the cloud is still told', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'citysense-local-alerts-edge-'));
    dirs.push(dir);
    cloud.answer = down;
    fire.otherwise = 503;
    const first = await edge(dir);
    const c = await first.connect('fire-1', 'fire-1-secret-value');
    await c.publishAsync('devices/fire-1/events', JSON.stringify({ ts: Date.now(), type: 'fire_alarm', attrs: { zone: 'Z7' } }), { qos: 1 });
    await waitFor(() => fire.attempts.length >= 1, 5000, 'a failed local attempt');
    await first.stop();
    edges.splice(edges.indexOf(first), 1);
    expect(fire.deliveries).toHaveLength(0);

    fire.otherwise = 200;
    const second = await edge(dir);
    const [d] = await fire.waitFor(1);
    expect(d!.headers['idempotency-key']).toBe(fire.attempts[0]!.headers['idempotency-key']);
    await waitFor(async () => (await metricValue(second.edge.metrics, 'citysense_edge_local_alerts_total', { outcome: 'delivered' })) === 1, 5000, 'delivered');
    cloud.answer = () => undefined;
    await second.edge.flush(5000);
    const acked = cloud.acked.find((b) => b.events.some((x) => x.type === 'fire_alarm'))!;
    expect(acked.events[0]!.attrs[EDGE_NOTIFIED_ATTR]).toBe('fire-system');
    expect(fire.deliveries).toHaveLength(1);
  });

  it('a device cannot say edge_notified (it would silence the cloud\'s webhook)', async () => {
    const e = await edge();
    const c = await e.connect('fire-1', 'fire-1-secret-value');
    await c.publishAsync('devices/fire-1/events', JSON.stringify({ ts: Date.now(), type: 'door_open', attrs: { door: '3', edge_notified: 'fire-system' } }), { qos: 1 });
    await e.edge.flush(5000);
    const ev = cloud.acked.flatMap((b) => b.events).find((x) => x.type === 'door_open')!;
    expect(ev.attrs).toEqual({ door: '3' });
  });
});
