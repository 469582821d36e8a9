// The alerts API end to end: batches through POST /v1/batches (ingest's onBatchStored → the engine),
// the `alerts` measurement in the real InfluxDB, GET /v1/alerts with filters, ack and resolve by role,
// and the SSE stream resumed with Last-Event-ID.
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { alertApp, event, login, reading, receiver, target, type Receiver } from './alerts-fixtures.ts';
import { EDGE_A, batch, batchHeaders, protobuf } from './helpers.ts';

let influx: TestInflux;
let app: FastifyInstance;
let base: string;
let hooks: Receiver;
let duty: string;
let viewer: string;

beforeAll(async () => {
  influx = await testInflux('cloud-alerts-api');
  hooks = await receiver();
  app = alertApp(influx, {
    rules: [
      { id: 'pm25', kind: 'threshold', category: 'environment', severity: 'major', metric: 'pm25', above: 75, clear: { below: 60 } },
      { id: 'entrapment', kind: 'event', category: 'elevator', severity: 'critical', types: 'entrapment' },
      { id: 'gas', kind: 'threshold', category: 'safety', severity: 'critical', metric: 'gas_lel', above: 25 },
    ],
    targets: [target('all', hooks.url)],
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  duty = await login(app, 'duty');
  viewer = await login(app, 'viewer');
});
afterAll(async () => {
  await app?.close();
  await hooks?.close();
});

const T = Date.now() - 10 * 60_000;
const post = (b: ReturnType<typeof batch>) => app.inject({ method: 'POST', url: '/v1/batches', payload: protobuf(b), headers: batchHeaders(EDGE_A.token) });
const get = (url: string, token = viewer) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });

describe('from a batch to an alert', () => {
  it('a first-time batch fires; the same batch again (a replay) fires nothing', async () => {
    const b = batch(EDGE_A.id, [reading('env-1', T, { pm25: 90 }), reading('gas-1', T, { gas_lel: 30 }, 'nbiot', 'guancheng')], [event('lift-1', T + 1, 'entrapment', { floor: '7' }, 'elevator', 'erqi')]);
    expect((await post(b)).statusCode).toBe(200);
    expect((await post(b)).statusCode).toBe(200); // duplicate
    const res = await get('/v1/alerts');
    expect(res.statusCode).toBe(200);
    const alerts = res.json().alerts as { rule: string; state: string }[];
    expect(alerts.map((a) => a.rule).sort()).toEqual(['entrapment', 'gas', 'pm25']);
    await hooks.waitFor(3);
    await new Promise((r) => setTimeout(r, 100));
    expect(hooks.deliveries).toHaveLength(3);
  });

  it('every state change is written to the `alerts` measurement with its tags', async () => {
    await app.alerts.influxIdle();
    let rows: Record<string, unknown>[] = [];
    for (let i = 0; i < 50 && rows.length < 3; i++) {
      rows = await influx.query(`SELECT * FROM alerts WHERE state = 'firing'`);
      if (rows.length < 3) await new Promise((r) => setTimeout(r, 50));
    }
    const lift = rows.find((r) => r.rule === 'entrapment');
    expect(lift).toMatchObject({ time: T + 1, device_id: 'lift-1', district: 'erqi', category: 'elevator', severity: 'critical', state: 'firing', type: 'entrapment' });
    expect(JSON.parse(lift!.attrs as string)).toEqual({ floor: '7' });
    expect(rows.find((r) => r.rule === 'pm25')).toMatchObject({ value: 90, threshold: 75, district: 'jinshui' });
  });
});

describe('GET /v1/alerts', () => {
  it('filters by state, category, district and time, and pages', async () => {
    const ids = async (q: string) => ((await get(`/v1/alerts${q}`)).json().alerts as { rule: string }[]).map((a) => a.rule).sort();
    expect(await ids('?category=elevator')).toEqual(['entrapment']);
    expect(await ids('?category=safety,environment')).toEqual(['gas', 'pm25']);
    expect(await ids('?district=guancheng')).toEqual(['gas']);
    expect(await ids('?state=resolved')).toEqual([]);
    expect(await ids(`?from=${T + 1}`)).toEqual(['entrapment']);
    expect(await ids(`?to=${new Date(T + 1).toISOString()}`)).toEqual(['gas', 'pm25']);
    const page1 = (await get('/v1/alerts?limit=2')).json();
    expect(page1.alerts).toHaveLength(2);
    const page2 = (await get(`/v1/alerts?limit=2&before=${page1.next}`)).json();
    expect(page2.alerts).toHaveLength(1);
    expect(page2.next).toBeNull();
    expect((await get('/v1/alerts?from=yesterday')).json()).toMatchObject({ error: 'BAD_REQUEST' });
  });

  it('needs a viewer token: 401 without or with a wrong one', async () => {
    expect((await app.inject({ method: 'GET', url: '/v1/alerts' })).json()).toMatchObject({ error: 'AUTH_MISSING' });
    const wrong = await app.inject({ method: 'GET', url: '/v1/alerts', headers: { authorization: `Bearer ${viewer.slice(0, -2)}xx` } });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toMatchObject({ error: 'AUTH_INVALID' });
    expect((await app.inject({ method: 'GET', url: '/v1/alerts', headers: { authorization: `Bearer ${EDGE_A.token}` } })).statusCode).toBe(401);
  });
});

describe('acknowledge and resolve', () => {
  it('an operator acknowledges and resolves; who did it is recorded; a viewer gets 403', async () => {
    const gas = (await get('/v1/alerts?rule=gas')).json().alerts[0];
    const asViewer = await app.inject({ method: 'POST', url: `/v1/alerts/${gas.id}/ack`, headers: { authorization: `Bearer ${viewer}` } });
    expect(asViewer.statusCode).toBe(403);
    expect(asViewer.json()).toMatchObject({ error: 'FORBIDDEN' });
    expect((await app.inject({ method: 'POST', url: `/v1/alerts/${gas.id}/ack` })).statusCode).toBe(401);

    const ack = await app.inject({ method: 'POST', url: `/v1/alerts/${gas.id}/ack`, headers: { authorization: `Bearer ${duty}` } });
    expect(ack.statusCode).toBe(200);
    expect(ack.json()).toMatchObject({ state: 'acknowledged', acked_by: 'duty' });
    const resolved = await app.inject({ method: 'POST', url: `/v1/alerts/${gas.id}/resolve`, headers: { authorization: `Bearer ${duty}` } });
    expect(resolved.json()).toMatchObject({ state: 'resolved', resolved_by: 'duty', resolved_reason: 'operator' });
    const again = await app.inject({ method: 'POST', url: `/v1/alerts/${gas.id}/ack`, headers: { authorization: `Bearer ${duty}` } });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ error: 'ALERT_RESOLVED' });
    expect((await app.inject({ method: 'POST', url: '/v1/alerts/al_000/ack', headers: { authorization: `Bearer ${duty}` } })).statusCode).toBe(404);

    // The audit log has who acknowledged and who resolved; the refused attempts left no entry.
    const audit = (await get(`/v1/audit?target=${encodeURIComponent(`alert:${gas.id}`)}`)).json();
    const entries = (audit.entries ?? audit.items ?? audit) as { actor: string; action: string }[];
    expect(entries.map((e) => `${e.action}:${e.actor}`).sort()).toEqual(['alert.ack:duty', 'alert.resolve:duty']);

    const detail = (await get(`/v1/alerts/${gas.id}`)).json();
    expect(detail.changes.map((c: { state: string; by?: string }) => `${c.state}:${c.by ?? ''}`)).toEqual(['firing:', 'acknowledged:duty', 'resolved:duty']);
    expect(new Set(detail.changes.map((c: { event_id: string }) => c.event_id)).size).toBe(3);

    // Resolved by hand while the gas is still high: it does not fire again until the level has cleared.
    await post(batch(EDGE_A.id, [reading('gas-1', T + 60_000, { gas_lel: 31 }, 'nbiot', 'guancheng')]));
    expect((await get('/v1/alerts?rule=gas&state=firing')).json().alerts).toHaveLength(0);
    await post(batch(EDGE_A.id, [reading('gas-1', T + 120_000, { gas_lel: 10 }, 'nbiot', 'guancheng'), reading('gas-1', T + 180_000, { gas_lel: 30 }, 'nbiot', 'guancheng')]));
    expect((await get('/v1/alerts?rule=gas&state=firing')).json().alerts).toHaveLength(1);
  });
});

describe('GET /v1/alerts/stream', () => {
  async function readEvents(res: Response, n: number): Promise<{ id: number; data: Record<string, unknown> }[]> {
    const out: { id: number; data: Record<string, unknown> }[] = [];
    const reader = res.body!.getReader();
    let buf = '';
    const dec = new TextDecoder();
    while (out.length < n) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value);
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const id = /^id: (\d+)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (id && data) out.push({ id: Number(id), data: JSON.parse(data) });
      }
    }
    await reader.cancel();
    return out;
  }

  it('pushes live changes, replays from Last-Event-ID, and refuses without a token', async () => {
    expect((await fetch(`${base}/v1/alerts/stream`)).status).toBe(401);
    const all = app.alerts.changesAfter(0, 1000);
    const res = await fetch(`${base}/v1/alerts/stream`, { headers: { authorization: `Bearer ${viewer}`, 'last-event-id': String(all[1]!.seq) } });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const replayed = all.length - 2;
    const live = readEvents(res, replayed + 1);
    await new Promise((r) => setTimeout(r, 100));
    await post(batch(EDGE_A.id, [reading('env-1', Date.now() - 1000, { pm25: 40 })])); // pm25 clears
    const got = await live;
    expect(got.map((e) => e.id)).toEqual([...all.slice(2).map((c) => c.seq), all[all.length - 1]!.seq + 1]);
    expect(got[got.length - 1]!.data).toMatchObject({ rule: 'pm25', state: 'resolved', device_id: 'env-1' });

    // A token in the URL is refused (logs and proxies keep URLs), even a valid one; ?lastEventId= works.
    const inUrl = await fetch(`${base}/v1/alerts/stream?access_token=${viewer}&lastEventId=0`);
    expect(inUrl.status).toBe(401);
    expect(await inUrl.json()).toMatchObject({ error: 'AUTH_TOKEN_IN_URL' });
    const again = await fetch(`${base}/v1/alerts/stream?lastEventId=0`, { headers: { authorization: `Bearer ${viewer}` } });
    expect(again.headers.get('cache-control')).toBe('no-store');
    const everything = await readEvents(again, all.length + 1);
    expect(everything.map((e) => e.id)).toEqual([...all.map((c) => c.seq), all[all.length - 1]!.seq + 1]);
  });
});

describe('metrics', () => {
  it('exports alert and webhook counters and the latency histograms', async () => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/citsense|citysense_cloud_alerts_fired_total\{rule="entrapment",category="elevator",severity="critical"\} 1/);
    expect(text).toMatch(/citysense_cloud_alerts_state_changes_total\{state="acknowledged"\} 1/);
    expect(text).toMatch(/citysense_cloud_alerts_active\{state="firing"\} \d/);
    expect(text).toMatch(/citysense_cloud_webhook_outbox_pending \d/);
    expect(text).toMatch(/citysense_cloud_alerts_enqueue_latency_seconds_bucket/);
    expect(text).toMatch(/citysense_cloud_alerts_delivery_latency_seconds_bucket\{le="0.1",target="all"\}/);
  });
});
