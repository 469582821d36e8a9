// Operator bearer tokens: base64url(JSON {sub, jti, iat, exp}) "." base64url(HMAC-SHA256(key, payload)).
// The token says who and until when, nothing more: the role is read from the operator's current record
// on every request (plugin.ts), and `jti` names the token in the revocation list (revocations.ts), so a
// logout or an admin's revocation ends it before `exp`. Any instance with the same key
// (CITYSENSE_AUTH_SECRET) and store accepts it.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface TokenClaims {
  /** The operator's username. */
  sub: string;
  /** Token id: 128 random bits, base64url. */
  jti: string;
  /** Issued at, ms since the epoch (ms, so an admin's "revoke everything before now" never catches a
   * login made in the same second after it). */
  iat: number;
  /** Expiry, ms since the epoch. */
  exp: number;
}

const mac = (key: Buffer, payload: string) => createHmac('sha256', key).update(payload).digest();

export const newTokenId = () => randomBytes(16).toString('base64url');

export function signToken(key: Buffer, claims: TokenClaims): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${payload}.${mac(key, payload).toString('base64url')}`;
}

/** The claims of a well-signed, unexpired token; undefined for anything else. Revocation is checked by the caller. */
export function verifyToken(key: Buffer, token: string, nowMs: number): TokenClaims | undefined {
  const dot = token.indexOf('.');
  if (dot <= 0 || token.length > 4096) return undefined;
  const payload = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1), 'base64url');
  const expected = mac(key, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  let claims: TokenClaims;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims;
  } catch {
    return undefined;
  }
  if (typeof claims.sub !== 'string' || typeof claims.jti !== 'string' || typeof claims.iat !== 'number' || typeof claims.exp !== 'number') return undefined;
  if (claims.exp <= nowMs) return undefined;
  return claims;
}

export function roleAtLeast(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}
