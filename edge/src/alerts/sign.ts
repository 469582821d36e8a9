// Webhook signatures as shared/contracts.md defines them, written here so the edge needs nothing of the
// cloud at run time: X-Citysense-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>.
// edge/test/local-alerts.test.ts checks that the cloud's verifier (cloud/src/delivery/sign.ts) and the
// receiver of docs/receiving-webhooks.md accept what this makes.
import { createHmac } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-citysense-signature';

export function signatureHeader(secret: string, rawBody: string | Buffer, unixSeconds: number): string {
  const t = Math.floor(unixSeconds);
  const mac = createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest('hex');
  return `t=${t},v1=${mac}`;
}
