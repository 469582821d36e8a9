// The demo's webhook receiver (scripts/webhook-receiver.ts) names the target system of each delivery
// (X-Citysense-Target, set by the cloud), checks the signature, and binds to loopback unless told.
import { afterAll, expect, it } from 'vitest';
import { signatureHeader } from '../cloud/src/delivery/sign.ts';
import { DEMO_WEBHOOK_SECRET, startWebhookReceiver, type WebhookReceiver } from '../scripts/webhook-receiver.ts';

let r: WebhookReceiver | undefined;
afterAll(async () => r?.close());

it('prints the target system, the state and the place of each delivery', async () => {
  const lines: string[] = [];
  r = await startWebhookReceiver(0, (l) => lines.push(l));
  expect(r.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/hooks$/);
  const body = JSON.stringify({ state: 'firing', severity: 'critical', category: 'fire', rule: 'fire-alarm', device_id: 'demo-fire-002', district: 'zhongyuan', attrs: { zone: 'F3-Z2' } });
  for (const target of ['fire-system', 'emergency-management']) {
    const res = await fetch(r.url, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'idempotency-key': 'ev_1', 'x-citysense-target': target, 'x-citysense-signature': signatureHeader(DEMO_WEBHOOK_SECRET, body, Math.floor(Date.now() / 1000)) },
    });
    expect(res.status).toBe(200);
  }
  expect(lines).toEqual([
    'to fire-system, signature ok: FIRING critical fire "fire-alarm" demo-fire-002 (zhongyuan) at F3-Z2',
    'to emergency-management, signature ok: FIRING critical fire "fire-alarm" demo-fire-002 (zhongyuan) at F3-Z2',
  ]);
  expect(r.deliveries.map((d) => d.target)).toEqual(['fire-system', 'emergency-management']);
});
