// The demo's stand-in for the fire, emergency, elevator-rescue and environment systems: it receives the
// cloud's webhooks, checks each signature as docs/receiving-webhooks.md tells a real receiver to, answers
// 200, and reports one line per delivery. The check is cloud/src/delivery/sign.ts's verifySignature, the
// receiver's side of the contract written once. Also used by tests that look at what was delivered.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySignature } from '../cloud/src/delivery/sign.ts';

export const DEMO_WEBHOOK_SECRET = 'demo-webhook-secret';

export interface Delivery {
  path: string;
  /** The target system the cloud delivered for (X-Citysense-Target), e.g. fire-system. */
  target: string | undefined;
  idempotencyKey: string | undefined;
  verified: boolean;
  body: Record<string, unknown>;
  receivedAt: number;
}

export interface WebhookReceiver {
  url: string;
  deliveries: Delivery[];
  close(): Promise<void>;
}

export async function startWebhookReceiver(port: number, report?: (line: string) => void, secret = DEMO_WEBHOOK_SECRET, host = '127.0.0.1'): Promise<WebhookReceiver> {
  const deliveries: Delivery[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const verified = verifySignature(secret, raw, req.headers['x-citysense-signature'] as string | undefined, Date.now() / 1000).ok;
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      } catch {
        // kept as {}: reported below as unreadable
      }
      const key = req.headers['idempotency-key'] as string | undefined;
      // The four demo systems share this one URL; the cloud names the one it delivers for in a header.
      const target = req.headers['x-citysense-target'] as string | undefined;
      deliveries.push({ path: req.url ?? '/', target, idempotencyKey: key, verified, body, receivedAt: Date.now() });
      const attrs = (body.attrs ?? {}) as Record<string, string>;
      const where = [attrs.building, attrs.floor && `floor ${attrs.floor}`, attrs.zone].filter(Boolean).join(', ');
      report?.(
        `to ${target ?? 'an unnamed target'}, ${verified ? 'signature ok' : 'SIGNATURE INVALID'}: ${String(body.state ?? '?').toUpperCase()} ${body.severity ?? ''} ${body.category ?? ''} ` +
          `"${body.rule ?? '?'}" ${body.device_id ?? ''} (${body.district ?? ''})${where ? ` at ${where}` : ''}${body.value !== undefined && body.value !== null ? ` value ${body.value}` : ''}`,
      );
      res.writeHead(verified ? 200 : 401).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    url: `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${(server.address() as AddressInfo).port}/hooks`,
    deliveries,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
