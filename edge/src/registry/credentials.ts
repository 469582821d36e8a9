// A device's credential as the edge holds it, and the check of a presented secret or HJ 212 PW.
//
//   verifier  a salted scrypt hash (@citysense/proto verifier.ts): what the cloud's slice and the cache
//             carry, and a registry file's secretHash / hj212.passwordHash
//   sha256    in memory only: a registry file's plain secret / password, or its old secretSha256 /
//             passwordSha256 (kept working; the file is the operator's, docs/security.md says to move on)
//
// scrypt costs ~3 ms of a thread-pool thread, so a device whose secret matched once is remembered as an
// HMAC of that secret under a key that exists only in this process: a device reconnecting (the common
// storm) costs microseconds, and a wrong or unknown one always pays the full scrypt — unknown ids and MNs
// cost what wrong passwords cost, so timing does not tell which ids exist. At most `maxParallel` scrypt
// run at once, so a password guesser cannot take the thread pool the disk queue's writes need; beyond
// `maxWaiting` waiting checks, check() answers 'busy' at once (hand-written: twenty lines, no queue
// library needed for a counter and a FIFO of resolvers).
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { VERIFIER_COST, parseVerifier, verifySecret, type Verifier } from '@citysense/proto';

export type StoredCredential = { kind: 'verifier'; verifier: Verifier; text: string } | { kind: 'sha256'; hash: Buffer };

export type CheckResult = 'ok' | 'wrong' | 'busy';

export function credentialFromVerifier(text: string): StoredCredential {
  const verifier = parseVerifier(text);
  if (!verifier) throw new Error('not a verifier string');
  return { kind: 'verifier', verifier, text };
}

export function credentialFromPlain(secret: string): StoredCredential {
  return { kind: 'sha256', hash: createHash('sha256').update(secret, 'utf8').digest() };
}

export function credentialFromSha256(hex: string): StoredCredential {
  return { kind: 'sha256', hash: Buffer.from(hex, 'hex') };
}

// What an unknown device is checked against, so it costs the same as a known one.
const DUMMY: Verifier = { kind: 'scrypt', ...VERIFIER_COST, salt: Buffer.from('citysense-no-device'), hash: Buffer.alloc(32) };

export interface CredentialCheckerOptions {
  /** scrypt checks running at once (libuv's pool has 4 threads; the disk queue needs some). */
  maxParallel?: number;
  /** Checks waiting for a turn before 'busy' is answered. */
  maxWaiting?: number;
  /** Devices remembered after a successful check. */
  maxRemembered?: number;
}

export class CredentialChecker {
  private readonly key = randomBytes(32);
  private readonly remembered = new Map<string, Buffer>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly maxParallel: number;
  private readonly maxWaiting: number;
  private readonly maxRemembered: number;

  constructor(o: CredentialCheckerOptions = {}) {
    this.maxParallel = o.maxParallel ?? 2;
    this.maxWaiting = o.maxWaiting ?? 1_000;
    this.maxRemembered = o.maxRemembered ?? 200_000;
  }

  /** Whether `presented` matches `stored`; undefined stored (no such device) costs a full check too. */
  async check(stored: StoredCredential | undefined, presented: Buffer): Promise<CheckResult> {
    if (stored?.kind === 'sha256') {
      // Hashing first gives equal lengths: the length of the secret does not leak either.
      const h = createHash('sha256').update(presented).digest();
      return h.length === stored.hash.length && timingSafeEqual(h, stored.hash) ? 'ok' : 'wrong';
    }
    const tag = createHmac('sha256', this.key).update(presented).digest();
    if (stored) {
      const known = this.remembered.get(stored.text);
      if (known && timingSafeEqual(known, tag)) return 'ok';
    }
    if (this.running >= this.maxParallel) {
      if (this.waiting.length >= this.maxWaiting) return 'busy';
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.running++;
    let ok: boolean;
    try {
      ok = await verifySecret(stored?.verifier ?? DUMMY, presented);
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.running--;
    }
    if (!ok || !stored) return 'wrong';
    if (this.remembered.size >= this.maxRemembered) this.remembered.delete(this.remembered.keys().next().value!);
    this.remembered.set(stored.text, tag);
    return 'ok';
  }
}
