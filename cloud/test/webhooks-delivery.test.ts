// Webhook delivery to real HTTP receivers (node:http): signatures, Idempotency-Key across retries,
// backoff, dead letters, routing, the storm bound and what the edge already notified.
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { signatureHeader, verifySignature } from '../src/delivery/sign.ts';
import { DEMO_WEBHOOK_SECRET } from '../src/delivery/targets.ts';
import { alertApp, alertBatch, event, login, reading, receiver, target, type AlertAppOptions, type Receiver } from './alerts-fixtures.ts';

let influx: TestInflux;
let app: FastifyInstance | undefined;
const receivers: Receiver[] = [];
beforeAll(async () => {
  influx = await testInflux('cloud-webhooks');
});
afterEach(async () => {
  await app?.close();
  app = undefined;
  for (const r of receivers.splice(0)) await r.close();
});

async function start(o: AlertAppOptions) {
  app = alertApp(influx, o);
  await app.ready();
  return app;
}
async function recv(otherwise: number | 'hang' = 200) {
  const r = await receiver(otherwise);
  receivers.push(r);
  return r;
}

const GAS_RULE = { id: 'gas', kind: 'threshold' as const, category: 'safety' as const, severity: 'critical' as const, metric: 'gas_lel', above: 25, clear: { below: 20 } };
const FIRE_RULE = { id: 'fire-alarm', kind: 'event' as const, category: 'fire' as const, severity: 'critical' as const, types: 'fire_alarm' };
const now = () => Math.floor(Date.now() / 1000);

async function metric(a: FastifyInstance, line: RegExp): Promise<number> {
  const text = await (await a.inject({ method: 'GET', url: '/metrics' })).body;
  const m = text.split('\n').find((l) => line.test(l));
  return m ? Number(m.split(' ').pop()) : 0;
}

describe('a state change reaches its target', () => {
  it('signed as contracts.md says: the receiver verifies with the shared secret; a tampered body fails', async () => {
    const r = await recv();
    const a = await start({ rules: [GAS_RULE], targets: [target('safety-desk', r.url)] });
    const t0 = Date.now();
    a.alerts.onBatch(alertBatch([reading('gas-1', t0, { gas_lel: 31.5 }, 'nbiot', 'guancheng')]));
    const [d] = await r.waitFor(1);
    expect(d!.headers['content-type']).toBe('application/json');
    const sig = d!.headers['x-citysense-signature'] as string;
    expect(sig).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature('safety-desk-secret-123', d!.raw, sig, now())).toMatchObject({ ok: true });
    // By hand, as a receiver in any language would.
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]+)$/.exec(sig)!;
    const { createHmac } = await import('node:crypto');
    expect(createHmac('sha256', 'safety-desk-secret-123').update(`${t}.${d!.raw.toString('utf8')}`).digest('hex')).toBe(v1);
    // Tampered body, wrong secret, replayed old signature: refused.
    const tampered = Buffer.from(d!.raw.toString('utf8').replace('"gas-1"', '"gas-2"'));
    expect(verifySignature('safety-desk-secret-123', tampered, sig, now())).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifySignature('another-secret', d!.raw, sig, now())).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifySignature('safety-desk-secret-123', d!.raw, signatureHeader('safety-desk-secret-123', d!.raw, now() - 3600), now())).toEqual({ ok: false, reason: 'too_old' });

    expect(d!.body).toMatchObject({
      rule: 'gas',
      state: 'firing',
      severity: 'critical',
      category: 'safety',
      device_id: 'gas-1',
      district: 'guancheng',
      value: 31.5,
      threshold: 25,
      started_at: t0,
      ts: t0,
    });
    expect(d!.headers['idempotency-key']).toBe(d!.body.event_id);
    expect(d!.body.id).toMatch(/^al_[0-9a-f]{24}$/);
  });

  it('500 twice then 200: exactly one delivery, three attempts, the same Idempotency-Key and body each time', async () => {
    const r = await recv();
    r.script = [500, 500];
    const a = await start({ rules: [GAS_RULE], targets: [target('safety-desk', r.url)] });
    a.alerts.onBatch(alertBatch([reading('gas-1', Date.now(), { gas_lel: 40 }, 'nbiot')]));
    await r.waitFor(1);
    await new Promise((res) => setTimeout(res, 300)); // nothing more comes
    expect(r.deliveries).toHaveLength(1);
    expect(r.attempts).toHaveLength(3);
    const keys = new Set(r.attempts.map((x) => x.headers['idempotency-key']));
    expect(keys.size).toBe(1);
    expect(new Set(r.attempts.map((x) => x.raw.toString())).size).toBe(1);
    expect(r.attempts.map((x) => x.headers['x-citysense-attempt'])).toEqual(['1', '2', '3']);
    expect(r.attempts.map((x) => x.headers['x-citysense-target'])).toEqual(['safety-desk', 'safety-desk', 'safety-desk']);
    for (const x of r.attempts) expect(verifySignature('safety-desk-secret-123', x.raw, x.headers['x-citysense-signature'] as string, now()).ok).toBe(true);

    const [alert] = a.alerts.list({ limit: 1 });
    const token = await login(a, 'viewer');
    const res = await a.inject({ method: 'GET', url: `/v1/alerts/${alert!.id}`, headers: { authorization: `Bearer ${token}` } });
    expect(res.json().deliveries).toEqual([expect.objectContaining({ target: 'safety-desk', status: 'delivered', attempts: 3, last_status: 200 })]);
    expect(await metric(a, /^citysense_cloud_webhook_attempts_total\{target="safety-desk",outcome="http_error"\}/)).toBe(2);
    expect(await metric(a, /^citysense_cloud_webhook_delivered_total\{target="safety-desk"\}/)).toBe(1);
    expect(await metric(a, /^citysense_cloud_alerts_delivery_latency_seconds_count\{target="safety-desk"\}/)).toBe(1);
    expect(await metric(a, /^citysense_cloud_alerts_enqueue_latency_seconds_count/)).toBe(1);
  });

  it('a target that never answers ends in the dead-letter list after maxAttempts; an admin can retry it', async () => {
    const r = await recv('hang');
    const a = await start({ rules: [GAS_RULE], targets: [target('silent', r.url, { timeoutMs: 150, maxAttempts: 3 })] });
    a.alerts.onBatch(alertBatch([reading('gas-1', Date.now(), { gas_lel: 40 }, 'nbiot')]));
    const token = await login(a, 'admin');
    const auth = { authorization: `Bearer ${token}` };
    let dead: { id: number; status: string; attempts: number; last_error: string }[] = [];
    for (let i = 0; i < 100 && dead.length === 0; i++) {
      await new Promise((res) => setTimeout(res, 50));
      dead = (await a.inject({ method: 'GET', url: '/v1/webhooks/deliveries?status=dead', headers: auth })).json().deliveries;
    }
    expect(dead).toEqual([expect.objectContaining({ status: 'dead', attempts: 3, target: 'silent', last_error: expect.stringMatching(/no answer within 150 ms/) })]);
    expect(r.attempts).toHaveLength(3);
    expect(await metric(a, /^citysense_cloud_webhook_dead_letter_total\{target="silent"\}/)).toBe(1);
    expect(await metric(a, /^citysense_cloud_webhook_attempts_total\{target="silent",outcome="timeout"\}/)).toBe(3);
    expect(await metric(a, /^citysense_cloud_webhook_outbox_pending/)).toBe(0);

    // The target is back: an admin puts the dead letter back; a viewer may not.
    r.otherwise = 200;
    const viewer = await login(a, 'viewer');
    expect((await a.inject({ method: 'POST', url: `/v1/webhooks/deliveries/${dead[0]!.id}/retry`, headers: { authorization: `Bearer ${viewer}` } })).statusCode).toBe(403);
    expect((await a.inject({ method: 'POST', url: `/v1/webhooks/deliveries/${dead[0]!.id}/retry`, headers: auth })).statusCode).toBe(200);
    await r.waitFor(1);
    expect(r.deliveries[0]!.headers['idempotency-key']).toBe(r.attempts[0]!.headers['idempotency-key']);
  });
});

describe('routing', () => {
  it('by category, severity and district; every state change goes to each target that matches', async () => {
    const fire = await recv();
    const emergency = await recv();
    const jinshui = await recv();
    const a = await start({
      rules: [GAS_RULE, FIRE_RULE],
      targets: [
        target('fire-system', fire.url, { match: { categories: ['fire'] } }),
        target('emergency', emergency.url, { match: { severities: ['critical'] } }),
        target('jinshui-env', jinshui.url, { match: { districts: ['jinshui'] } }),
      ],
    });
    a.alerts.onBatch(alertBatch([reading('gas-1', Date.now(), { gas_lel: 40 }, 'nbiot', 'guancheng')], [event('panel-1', Date.now(), 'fire_alarm', { zone: 'B2-07' })]));
    await fire.waitFor(1);
    await emergency.waitFor(2);
    expect(fire.deliveries.map((d) => d.body.rule)).toEqual(['fire-alarm']);
    expect(fire.deliveries[0]!.body).toMatchObject({ type: 'fire_alarm', attrs: { zone: 'B2-07' } });
    expect(emergency.deliveries.map((d) => d.body.rule).sort()).toEqual(['fire-alarm', 'gas']);
    expect(jinshui.attempts).toHaveLength(0);

    // An operator's acknowledgement is a state change too, with its own event id.
    const duty = await login(a, 'duty');
    const fireAlert = a.alerts.list({ limit: 10, categories: ['fire'] })[0]!;
    await a.inject({ method: 'POST', url: `/v1/alerts/${fireAlert.id}/ack`, headers: { authorization: `Bearer ${duty}` } });
    await fire.waitFor(2);
    expect(fire.deliveries[1]!.body).toMatchObject({ id: fireAlert.id, state: 'acknowledged', by: 'duty' });
    expect(fire.deliveries[1]!.body.event_id).not.toBe(fire.deliveries[0]!.body.event_id);
  });

  it('CITYSENSE_WEBHOOK_URL: every demo target posts there, signed with demo-webhook-secret', async () => {
    const r = await recv();
    const a = await start({ rules: [FIRE_RULE], env: { CITYSENSE_WEBHOOK_URL: r.url } });
    expect(a.webhooks.targetIds.sort()).toEqual(['elevator-rescue', 'emergency-management', 'environment-bureau', 'fire-system']);
    a.alerts.onBatch(alertBatch([], [event('panel-1', Date.now(), 'fire_alarm', { zone: 'Z1' })]));
    await r.waitFor(2); // fire system and emergency management (critical)
    for (const d of r.deliveries) expect(verifySignature(DEMO_WEBHOOK_SECRET, d.raw, d.headers['x-citysense-signature'] as string, now()).ok).toBe(true);
  });
});

describe('storms', () => {
  it('a target\'s rate limit defers deliveries (counted) and never drops one', async () => {
    const r = await recv();
    const a = await start({ rules: [FIRE_RULE], targets: [target('fire-system', r.url, { rateLimit: { perMinute: 600, burst: 2 } })] });
    const ts = Date.now();
    a.alerts.onBatch(alertBatch([], Array.from({ length: 6 }, (_, i) => event(`panel-${i}`, ts, 'fire_alarm'))));
    await r.waitFor(2);
    await new Promise((res) => setTimeout(res, 50));
    expect(r.deliveries.length).toBeLessThan(6);
    expect(await metric(a, /^citysense_cloud_webhook_deferred_total\{target="fire-system"\}/)).toBeGreaterThan(0);
    await r.waitFor(6, 5000); // 10 per second
    expect(new Set(r.deliveries.map((d) => d.body.device_id)).size).toBe(6);
  });
});

describe('edge-local alerting', () => {
  it('a target the edge already notified of an event is not notified again by the cloud', async () => {
    const fire = await recv();
    const emergency = await recv();
    const a = await start({
      rules: [FIRE_RULE],
      targets: [target('fire-system', fire.url, { match: { categories: ['fire'] } }), target('emergency', emergency.url)],
    });
    // The edge reports it in the event: edge_notified=<target ids>.
    const e1 = event('panel-1', Date.now(), 'fire_alarm', { zone: 'Z1', edge_notified: 'fire-system' });
    // Or it is marked through the engine's interface.
    const e2 = event('panel-2', Date.now(), 'fire_alarm', { zone: 'Z2' });
    a.alerts.markEdgeDelivered('emergency', e2.id);
    expect(a.alerts.edgeDelivered('emergency', e2.id)).toBe(true);
    a.alerts.onBatch(alertBatch([], [e1, e2]));
    await emergency.waitFor(1);
    await fire.waitFor(1);
    await new Promise((res) => setTimeout(res, 200));
    expect(fire.deliveries.map((d) => d.body.source_event_id)).toEqual([e2.id]);
    expect(emergency.deliveries.map((d) => d.body.source_event_id)).toEqual([e1.id]);
    const alert1 = a.alerts.list({ limit: 10 }).find((x) => x.source_event_id === e1.id)!;
    expect(a.webhooks.deliveriesOf(alert1.id).map((d) => [d.target_id, d.status]).sort()).toEqual([
      ['emergency', 'delivered'],
      ['fire-system', 'edge'],
    ]);
    expect(await metric(a, /^citysense_cloud_alerts_edge_notified_skipped_total\{target="fire-system"\}/)).toBe(1);
  });
});
