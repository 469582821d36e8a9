// Nothing is lost, under faults: simulators publish a known set of readings (QoS 1) and fire alarms while
// the edge, the cloud and influxd are killed with SIGKILL at random moments (and restarted) and the
// edge↔cloud link is cut; after the drain, InfluxDB must hold exactly the readings the simulators had
// acknowledged (count and value sums per device, no duplicates) and every alarm exactly once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { runSim, createRng, type SimStats } from '@citysense/device-sim';
import { influxQuery, rows, waitFor } from '../../scripts/influxd.ts';
import { startStage, type Stage, type StageDevice } from './harness.ts';
import { startWebhookReceiver } from '../../scripts/webhook-receiver.ts';

const SEED = Number(process.env.CITYSENSE_FAULT_SEED ?? 20261123);
const READINGS_PER_DEVICE = Number(process.env.CITYSENSE_FAULT_READINGS ?? 400);
const FAMILIES = ['environment', 'fire', 'nbiot'] as const;
const DEVICES: StageDevice[] = FAMILIES.flatMap((family, f) =>
  Array.from({ length: 4 }, (_, i) => ({ id: `ft-${family}-${i + 1}`, family, secret: `ft-${family}-${i + 1}-secret`, district: ['jinshui', 'erqi', 'huiji'][f]! })),
);
const dir = mkdtempSync(join(tmpdir(), 'citysense-faults-'));
let stage: Stage | undefined;
const say = (line: string) => process.stdout.write(`[faults] ${line}\n`);

afterAll(async () => {
  await stage?.stop();
  if (process.env.CITYSENSE_KEEP_FAULT_DIR) say(`logs and data kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
});

/** Publishes fire alarms with unique zones until stopped; remembers those the edge acknowledged. */
function alarmPublisher(url: string, device: StageDevice) {
  const acked = new Set<string>();
  const client = mqtt.connect(url, { username: device.id, password: device.secret, clientId: `${device.id}/alarms`, reconnectPeriod: 200, connectTimeout: 5_000, clean: true });
  client.on('error', () => undefined);
  let n = 0;
  let stopped = false;
  const pending: Promise<void>[] = [];
  const timer = setInterval(() => {
    if (stopped) return;
    const zone = `Z-${++n}`;
    const ts = Date.now() - 1_000;
    pending.push(
      client.publishAsync(`devices/${device.id}/events`, JSON.stringify({ ts, type: 'fire_alarm', attrs: { zone } }), { qos: 1 }).then(
        () => void acked.add(zone),
        () => undefined,
      ),
    );
  }, 1_500);
  return {
    acked,
    async stop() {
      stopped = true;
      clearInterval(timer);
      // Unacknowledged alarms are resent by the client after a reconnect: wait for them, bounded.
      await waitFor('the alarms to be acknowledged', () => acked.size === n, 90_000).catch(() => undefined);
      await Promise.race([Promise.allSettled(pending), new Promise((r) => setTimeout(r, 5_000))]);
      await client.endAsync(true);
      return n;
    },
  };
}

describe('fault tests: kill -9 and link cuts', () => {
  it('InfluxDB holds exactly what the simulators had acknowledged, and every alarm once', async () => {
    const hooks = await startWebhookReceiver(0, undefined, 'fault-test-webhook-secret');
    stage = await startStage(dir, DEVICES, { webhookUrl: hooks.url });
    const s = stage;
    const rng = createRng('faults', SEED);
    const q = async (query: string) => rows(await influxQuery(s.influxUrl, s.db, query));

    const alarms = alarmPublisher(s.mqttUrl, DEVICES.find((d) => d.family === 'fire')!);
    const startTs = Date.now() - 6 * 3600_000;
    const sim: Promise<SimStats> = runSim({
      url: s.mqttUrl,
      devices: DEVICES.map((d) => ({ id: d.id, secret: d.secret, family: d.family })),
      count: READINGS_PER_DEVICE,
      intervalMs: 100,
      simStepMs: 1_000,
      startTs,
      seed: SEED,
      reconnectPeriodMs: 200,
      connectTimeoutMs: 60_000,
      drainTimeoutMs: 120_000,
      progress: false,
    });
    let simDone = false;
    void sim.finally(() => (simDone = true));

    // Chaos until the simulators are done: a fault every 2–4 s, in turn, each bounded in time.
    const actions = ['kill-edge', 'kill-cloud', 'kill-influxd', 'cut-link'] as const;
    const deadline = Date.now() + 180_000;
    let round = 0;
    while (!simDone && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2_000 + rng.next() * 2_000));
      if (simDone) break;
      const action = actions[round++ % actions.length]!;
      const downMs = 300 + Math.floor(rng.next() * 2_000);
      say(`${action} for ${downMs} ms`);
      if (action === 'cut-link') {
        s.link.setCut(true);
        await new Promise((r) => setTimeout(r, downMs + 2_000));
        s.link.setCut(false);
      } else {
        const proc = action === 'kill-edge' ? s.edge : action === 'kill-cloud' ? s.cloud : s.influx;
        await proc.kill();
        await new Promise((r) => setTimeout(r, downMs));
        await proc.start();
      }
    }
    const stats = await sim;
    const alarmsSent = await alarms.stop();
    say(`kills: edge ${s.edge.kills}, cloud ${s.cloud.kills}, influxd ${s.influx.kills}; link cuts ${s.link.cuts}`);

    // Drain: wait until InfluxDB holds every acknowledged reading (bounded), showing progress.
    const acked = Object.fromEntries(DEVICES.map((d) => [d.id, stats.perDevice[d.id]!.acked]));
    const total = Object.values(acked).reduce((a, b) => a + b, 0);
    const window = `time >= ${startTs}ms AND time < ${startTs + (READINGS_PER_DEVICE + 5) * 1_000}ms`;
    let found = 0;
    await waitFor(`InfluxDB to hold ${total} readings`, async () => {
      found = 0;
      for (const d of DEVICES) {
        const r = await q(`SELECT count(*) FROM ${d.family} WHERE device_id = '${d.id}' AND ${window}`).catch(() => []);
        const c = r[0] ? Math.max(...Object.entries(r[0]).filter(([k]) => k.startsWith('count_')).map(([, v]) => Number(v))) : 0;
        found += c;
      }
      say(`drain: ${found}/${total} readings in InfluxDB`);
      return found >= total;
    }, 150_000, 2_000);
    say(`readings sent ${stats.published}, acknowledged ${stats.acked}, found ${found}; alarms sent ${alarmsSent}, acknowledged ${alarms.acked.size}`);

    expect(stats.refused).toBe(0);
    expect(stats.failed).toBe(0);
    expect(s.edge.kills + s.cloud.kills + s.influx.kills).toBeGreaterThanOrEqual(3);
    for (const d of DEVICES) {
      const points = await q(`SELECT * FROM ${d.family} WHERE device_id = '${d.id}' AND ${window}`);
      const dev = stats.perDevice[d.id]!;
      expect(points.length, `${d.id}: readings in InfluxDB vs acknowledged`).toBe(dev.acked);
      expect(new Set(points.map((p) => p.time)).size, `${d.id}: duplicate timestamps`).toBe(points.length);
      for (const [metric, sum] of Object.entries(dev.sums)) {
        const got = points.reduce((a, p) => a + Number(p[metric] ?? 0), 0);
        expect(got, `${d.id}.${metric}`).toBeCloseTo(sum, 4);
      }
    }
    await waitFor('every acknowledged alarm in InfluxDB', async () => {
      const ev = await q(`SELECT * FROM events WHERE type = 'fire_alarm'`);
      return [...alarms.acked].every((z) => ev.some((e) => e.attr_zone === z));
    }, 60_000);
    const ev = await q(`SELECT * FROM events WHERE type = 'fire_alarm'`);
    const perZone = new Map<string, number>();
    for (const e of ev) perZone.set(String(e.attr_zone), (perZone.get(String(e.attr_zone)) ?? 0) + 1);
    for (const zone of alarms.acked) expect(perZone.get(zone), `alarm ${zone}`).toBe(1);

    // At the cloud: each alarm raised exactly one alert, and the fire system was notified of it under one
    // Idempotency-Key (a resend after a kill carries the same key: at least once on the wire, once in effect).
    const login = await fetch(`${s.cloudUrl}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'viewer', password: 'viewer-demo' }) });
    const { token } = (await login.json()) as { token: string };
    const list = (await (await fetch(`${s.cloudUrl}/v1/alerts?rule=fire-alarm&limit=1000`, { headers: { authorization: `Bearer ${token}` } })).json()) as { alerts: { id: string; attrs?: Record<string, string> }[] };
    const alertsPerZone = new Map<string, number>();
    for (const a of list.alerts) alertsPerZone.set(String(a.attrs?.zone), (alertsPerZone.get(String(a.attrs?.zone)) ?? 0) + 1);
    for (const zone of alarms.acked) expect(alertsPerZone.get(zone), `alerts for ${zone}`).toBe(1);
    await waitFor('a firing delivery for every alarm', () => [...alarms.acked].every((z) => hooks.deliveries.some((d) => d.body.state === 'firing' && (d.body.attrs as Record<string, string>)?.zone === z)), 60_000);
    for (const zone of alarms.acked) {
      const keys = new Set(hooks.deliveries.filter((d) => d.body.state === 'firing' && (d.body.attrs as Record<string, string>)?.zone === zone).map((d) => d.idempotencyKey));
      expect(keys.size, `fire-system notifications for ${zone}`).toBe(1);
    }
    expect(hooks.deliveries.every((d) => d.verified)).toBe(true);
    say(`alerts: ${list.alerts.length} fire alerts, ${hooks.deliveries.length} webhook deliveries (${new Set(hooks.deliveries.map((d) => d.idempotencyKey)).size} distinct)`);
    await hooks.close();
  }, 600_000);
});
