// Device credentials: generated from the OS's CSPRNG, shown once (in the create, import or rotate
// answer), kept only as a salted scrypt verifier (@citysense/proto verifier.ts) — what an edge's registry
// slice carries, so an edge can check a device without the secret and its cache cannot be reversed with
// a dictionary — and, in the cloud's store, that verifier sealed with AES-256-GCM under the registry key:
// a key kept outside the database (a file with mode 0600, or CITYSENSE_REGISTRY_KEY) that never leaves
// the cloud. A copy of the database alone (a backup, a stolen disk image) then gives nothing to guess
// against; with the key too, each guess still costs a salted scrypt per device.
//
// Why sealed and not HMAC'd: the cloud must hand every edge a verifier it can check a device with, long
// after the secret is gone (an edge joins, a device moves district), so it must be able to recover the
// verifier; a one-way HMAC of it would leave nothing to send. docs/security.md "Secrets at rest".
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createCipheriv, createDecipheriv, randomBytes, randomInt } from 'node:crypto';

/** An MQTT secret: 24 random bytes, base64url (32 characters). */
export function newSecret(): string {
  return randomBytes(24).toString('base64url');
}

const ALNUM = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

/**
 * An HJ 212 access password (PW): 16 letters and digits (~93 bits). Stations take their PW as typed text
 * in their configuration screen, so it avoids symbols and look-alike characters.
 */
export function newHj212Password(): string {
  let s = '';
  for (let i = 0; i < 16; i++) s += ALNUM[randomInt(ALNUM.length)];
  return s;
}

const SEAL_PREFIX = 'seal1';

/** "seal1:<iv>:<tag>:<ciphertext>" (base64): a verifier sealed under the registry key. */
export function sealVerifier(key: Buffer, verifier: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([c.update(verifier, 'utf8'), c.final()]);
  return `${SEAL_PREFIX}:${iv.toString('base64')}:${c.getAuthTag().toString('base64')}:${ct.toString('base64')}`;
}

export function openVerifier(key: Buffer, sealed: string): string {
  const [prefix, iv, tag, ct] = sealed.split(':');
  if (prefix !== SEAL_PREFIX || !iv || !tag || ct === undefined) throw new Error('not a sealed verifier');
  const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
  d.setAuthTag(Buffer.from(tag, 'base64'));
  return Buffer.concat([d.update(Buffer.from(ct, 'base64')), d.final()]).toString('utf8');
}

/**
 * The registry key: CITYSENSE_REGISTRY_KEY (32 bytes, base64 or 64 hex digits) when set, else the key
 * file, made (32 random bytes, mode 0600) on first start. Losing it means re-issuing every device's
 * credential (rotate-secret): back it up apart from the database.
 */
export function loadRegistryKey(file: string, env: NodeJS.ProcessEnv = process.env): Buffer {
  const fromEnv = env.CITYSENSE_REGISTRY_KEY;
  if (fromEnv) {
    const key = /^[0-9a-fA-F]{64}$/.test(fromEnv) ? Buffer.from(fromEnv, 'hex') : Buffer.from(fromEnv, 'base64');
    if (key.length !== 32) throw new Error('CITYSENSE_REGISTRY_KEY must be 32 bytes (base64, or 64 hex digits)');
    return key;
  }
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  }
  chmodSync(file, 0o600);
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new Error(`${file}: the registry key must be 32 bytes, base64`);
  return key;
}
