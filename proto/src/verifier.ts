// How a device secret or an HJ 212 password is kept wherever it rests — the cloud's store (sealed
// further there, cloud/src/registry/secrets.ts), the registry slice an edge fetches and caches, an edge's
// registry file: never the secret and never an unsalted hash, but a salted scrypt hash in PHC notation:
//
//   $scrypt$ln=10,r=8,p=1$<salt, base64>$<hash, base64>          scrypt(secret, salt)
//   $scrypt-sha256$ln=10,r=8,p=1$<salt, base64>$<hash, base64>   scrypt(sha256(secret), salt)
//
// The second wraps an old unsalted SHA-256 (a registry's secretSha256) without knowing the secret, so
// old registries migrate at once; verifying costs the same. Part of the edge↔cloud contract (the slice
// carries it), hence here. Why scrypt at ln=10 (1 MiB, ~3 ms): docs/security.md "Secrets at rest".
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export const VERIFIER_COST = Object.freeze({ ln: 10, r: 8, p: 1 });
/** Costs a verifier may name: a slice cannot make an edge spend more than 2^16 × r=8 (64 MiB) per check. */
const MAX_LN = 16;
const MAX_R = 16;
const SALT_BYTES = 16;
const HASH_BYTES = 32;

export interface Verifier {
  kind: 'scrypt' | 'scrypt-sha256';
  ln: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

const PATTERN = /^\$(scrypt|scrypt-sha256)\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d)\$([A-Za-z0-9+/]{16,88}={0,2})\$([A-Za-z0-9+/]{43}=)$/;

/** A verifier string's parts, or undefined when it is not one (or names costs over the bound). */
export function parseVerifier(text: string): Verifier | undefined {
  const m = PATTERN.exec(text);
  if (!m) return undefined;
  const [ln, r, p] = [Number(m[2]), Number(m[3]), Number(m[4])];
  if (ln < 1 || ln > MAX_LN || r < 1 || r > MAX_R || p < 1) return undefined;
  return { kind: m[1] as Verifier['kind'], ln, r, p, salt: Buffer.from(m[5]!, 'base64'), hash: Buffer.from(m[6]!, 'base64') };
}

export const VERIFIER_DESCRIPTION = 'a salted scrypt verifier: $scrypt$ln=10,r=8,p=1$<salt>$<hash> (or $scrypt-sha256$...)';

function derive(input: Buffer, v: Pick<Verifier, 'ln' | 'r' | 'p' | 'salt'>): Promise<Buffer> {
  // The async scrypt runs on libuv's thread pool, never on the event loop.
  return new Promise((resolve, reject) =>
    scrypt(input, v.salt, HASH_BYTES, { N: 2 ** v.ln, r: v.r, p: v.p, maxmem: 2 ** v.ln * v.r * 256 + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

function format(kind: Verifier['kind'], cost: { ln: number; r: number; p: number }, salt: Buffer, hash: Buffer): string {
  return `$${kind}$ln=${cost.ln},r=${cost.r},p=${cost.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** A verifier for a secret (new salt each time). */
export async function makeVerifier(secret: string, cost = VERIFIER_COST): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  return format('scrypt', cost, salt, await derive(Buffer.from(secret, 'utf8'), { ...cost, salt }));
}

/** A verifier for a secret known only by its unsalted SHA-256 (64 hex digits): the migration of old registries. */
export async function wrapSha256(sha256Hex: string, cost = VERIFIER_COST): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  return format('scrypt-sha256', cost, salt, await derive(Buffer.from(sha256Hex, 'hex'), { ...cost, salt }));
}

/** Whether `presented` is the secret behind the verifier; constant time in the comparison. */
export async function verifySecret(v: Verifier, presented: Buffer): Promise<boolean> {
  const input = v.kind === 'scrypt-sha256' ? createHash('sha256').update(presented).digest() : presented;
  const got = await derive(input, v);
  return got.length === v.hash.length && timingSafeEqual(got, v.hash);
}
