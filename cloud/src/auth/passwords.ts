// Operator passwords: scrypt (node:crypto), stored as scrypt$N$r$p$<salt base64>$<hash base64>.
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;
const KEY_LEN = 32;

export function hashPassword(password: string, salt: Buffer = randomBytes(16)): string {
  const key = scryptSync(password, salt, KEY_LEN, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export function verifyPassword(password: string, stored: string): boolean {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const cost = { N: Number(n), r: Number(r), p: Number(p), maxmem: 256 * Number(n) * Number(r) + 1024 * 1024 };
  const key = scryptSync(password, Buffer.from(salt, 'base64'), expected.length, cost);
  return timingSafeEqual(key, expected);
}

/** Compared against when the username is unknown, so the answer takes as long as for a known one. */
export const DUMMY_HASH = hashPassword('citysense-no-such-user', Buffer.alloc(16));
