// Device credentials: generated from the OS's CSPRNG, shown once (in the create, import or rotate
// answer), stored only as SHA-256. A plain SHA-256 is enough here (not a slow password hash): the
// secrets are 192 random bits, not something a person chose, and the edges compare SHA-256 already
// (edge/src/registry/registry.ts), so the registry slice carries the hash and never the secret.
import { createHash, randomBytes, randomInt } from 'node:crypto';

export const sha256Hex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

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
