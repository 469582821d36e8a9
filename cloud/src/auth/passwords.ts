// Operator passwords: scrypt (node:crypto), stored as scrypt$N$r$p$<salt base64>$<hash base64>.
// New hashes use OWASP's current minimum for scrypt (Password Storage Cheat Sheet: N=2^17, r=8, p=1,
// 128 MiB and a few hundred ms of one core per hash). Each stored hash carries its own N/r/p, so hashes
// made with older or other parameters keep verifying; the cloud warns at start about weaker ones.
// Logins hash in the threads of hash-pool.ts; the functions here (async crypto.scrypt, on libuv's thread
// pool) serve the hash-password tool and tests. Nothing hashes on the event loop.
import { randomBytes, scrypt, scryptSync, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** OWASP Password Storage Cheat Sheet, scrypt: N=2^17 (128 MiB with r=8), r=8, p=1. */
export const SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 17, r: 8, p: 1 });
const KEY_LEN = 32;

/**
 * What a stored hash may ask for. A hash string is configuration, but a typo (N=2^30) must not make
 * every login allocate gigabytes: past these bounds the hash is refused (config validation and verify).
 */
export const SCRYPT_BOUNDS = { maxN: 2 ** 20, maxR: 32, maxP: 16 } as const;

/** Memory scrypt needs for these parameters (128·N·r for the main array, plus 128·r·p), with 1 MiB spare. */
export const scryptMaxmem = (c: ScryptParams) => 128 * c.N * c.r + 128 * c.r * c.p + 1024 * 1024;

function scryptAsync(password: string, salt: Buffer, len: number, c: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const opts: ScryptOptions = { N: c.N, r: c.r, p: c.p, maxmem: scryptMaxmem(c) };
    scrypt(password, salt, len, opts, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

const format = (c: ScryptParams, salt: Buffer, key: Buffer) => `scrypt$${c.N}$${c.r}$${c.p}$${salt.toString('base64')}$${key.toString('base64')}`;

/** A new hash, computed off the event loop. */
export async function hashPassword(password: string, params: ScryptParams = SCRYPT_PARAMS, salt: Buffer = randomBytes(16)): Promise<string> {
  return format(params, salt, await scryptAsync(password, salt, KEY_LEN, params));
}

/** The same, blocking: for tools and test fixtures only, never on a request path. */
export function hashPasswordSync(password: string, params: ScryptParams = SCRYPT_PARAMS, salt: Buffer = randomBytes(16)): string {
  return format(params, salt, scryptSync(password, salt, KEY_LEN, { ...params, maxmem: scryptMaxmem(params) }));
}

interface Parsed extends ScryptParams {
  salt: Buffer;
  hash: Buffer;
}

/** The parameters, salt and hash of a stored value; undefined when it is not one we can (or may) verify. */
export function parseHash(stored: string): Parsed | undefined {
  const [scheme, n, r, p, salt, hash, extra] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash || extra !== undefined) return undefined;
  const c = { N: Number(n), r: Number(r), p: Number(p) };
  if (!Number.isInteger(c.N) || c.N < 2 || c.N > SCRYPT_BOUNDS.maxN || (c.N & (c.N - 1)) !== 0) return undefined;
  if (!Number.isInteger(c.r) || c.r < 1 || c.r > SCRYPT_BOUNDS.maxR) return undefined;
  if (!Number.isInteger(c.p) || c.p < 1 || c.p > SCRYPT_BOUNDS.maxP) return undefined;
  const h = Buffer.from(hash, 'base64');
  if (h.length < 16 || h.length > 64) return undefined;
  return { ...c, salt: Buffer.from(salt, 'base64'), hash: h };
}

/** Whether `password` matches `stored`, computed off the event loop with the hash's own N/r/p. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const h = parseHash(stored);
  if (!h) return false;
  const key = await scryptAsync(password, h.salt, h.hash.length, h);
  return timingSafeEqual(key, h.hash);
}

/** A stored hash made with less work than `params` asks for (the cloud warns about it at start). */
export function weakerThan(stored: string, params: ScryptParams = SCRYPT_PARAMS): boolean {
  const h = parseHash(stored);
  return !h || h.N * h.r * h.p < params.N * params.r * params.p;
}
