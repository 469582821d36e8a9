// Webhook signatures (contracts.md): X-Citysense-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>.
// The timestamp is inside the signed text, so a receiver that refuses old `t` values refuses replays.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-citysense-signature';

export function signatureHeader(secret: string, rawBody: string | Buffer, unixSeconds: number): string {
  const t = Math.floor(unixSeconds);
  const mac = createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest('hex');
  return `t=${t},v1=${mac}`;
}

export type VerifyResult = { ok: true; t: number } | { ok: false; reason: 'malformed' | 'mismatch' | 'too_old' };

/**
 * What a receiver does (docs/receiving-webhooks.md): recompute the HMAC over the raw bytes received and
 * compare in constant time; refuse a `t` further than toleranceSeconds from its own clock.
 */
export function verifySignature(secret: string, rawBody: string | Buffer, header: string | undefined, nowSeconds: number, toleranceSeconds = 300): VerifyResult {
  if (!header) return { ok: false, reason: 'malformed' };
  const parts = new Map<string, string[]>();
  for (const kv of header.split(',')) {
    const i = kv.indexOf('=');
    if (i <= 0) return { ok: false, reason: 'malformed' };
    const k = kv.slice(0, i).trim();
    parts.set(k, [...(parts.get(k) ?? []), kv.slice(i + 1).trim()]);
  }
  const t = Number(parts.get('t')?.[0]);
  const sigs = parts.get('v1') ?? [];
  if (!Number.isInteger(t) || sigs.length === 0) return { ok: false, reason: 'malformed' };
  if (Math.abs(nowSeconds - t) > toleranceSeconds) return { ok: false, reason: 'too_old' };
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest('hex'), 'utf8');
  const ok = sigs.some((s) => s.length === expected.length && timingSafeEqual(Buffer.from(s, 'utf8'), expected));
  return ok ? { ok: true, t } : { ok: false, reason: 'mismatch' };
}
