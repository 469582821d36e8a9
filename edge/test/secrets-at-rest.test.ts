// Secrets at rest on the edge (issue 11, item 6): the registry cache holds salted verifiers only — an old
// cache with unsalted SHA-256 hashes is migrated at start — and it is an owner-only file.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseVerifier, verifySecret } from '@citysense/proto';
import { startRegistrySync, type RegistrySync } from '../src/registry/cloud-sync.ts';
import { buildRegistry, type DeviceRegistry } from '../src/registry/registry.ts';
import { loadProfiles } from '../src/profiles/load.ts';
import { CredentialChecker } from '../src/registry/credentials.ts';
import { authenticateDevice } from '../src/inputs/mqtt-broker/auth.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
let dir = '';
let sync: RegistrySync | undefined;
afterEach(async () => {
  await sync?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the registry cache', () => {
  it('an old cache with unsalted hashes is rewritten with salted verifiers (0600); the devices keep logging in', async () => {
    dir = mkdtempSync(join(tmpdir(), 'citysense-edge-secrets-'));
    const cache = join(dir, 'registry-cache.json');
    const old = {
      edge: 'edge-x',
      version: 7,
      etag: '"r7-abc"',
      savedAt: 1,
      devices: [
        { id: 'env-9', family: 'environment', district: 'jinshui', profile: 'generic-json', secretSha256: sha('env-9-secret') },
        { id: 'hj-9', family: 'environment', district: 'jinshui', profile: 'hj212-air-station', hj212: { mn: 'AB99', passwordSha256: sha('123456') } },
      ],
    };
    writeFileSync(cache, JSON.stringify(old), { mode: 0o644 });
    const profiles = loadProfiles([]);
    let registry: DeviceRegistry | undefined;
    sync = await startRegistrySync({
      cloudUrl: 'http://127.0.0.1:9', // nobody: the edge runs from its cache
      edgeId: 'edge-x',
      cacheFile: cache,
      intervalMs: 60_000,
      log: pino({ level: 'silent' }),
      onUpdate: (entries) => void (registry = buildRegistry(entries, 'cache', profiles)),
    });
    const text = readFileSync(cache, 'utf8');
    // A dictionary attack with the known secrets in it finds no SHA-256 in the file.
    for (const word of ['env-9-secret', '123456', 'password', 'admin']) expect(text).not.toContain(sha(word));
    const c = JSON.parse(text) as typeof old & { devices: { secretHash?: string; hj212?: { passwordHash?: string } }[] };
    expect(c.etag).toBeNull(); // fetched again
    expect(c.devices[0]!.secretHash).toMatch(/^\$scrypt-sha256\$ln=\d+,r=8,p=1\$/);
    expect(await verifySecret(parseVerifier(c.devices[1]!.hj212!.passwordHash!)!, Buffer.from('123456'))).toBe(true);
    expect(statSync(cache).mode & 0o777).toBe(0o600);
    const checker = new CredentialChecker();
    expect((await authenticateDevice(registry!, checker, 'env-9', Buffer.from('env-9-secret'))).ok).toBe(true);
    expect((await authenticateDevice(registry!, checker, 'env-9', Buffer.from('env-9-secreT'))).ok).toBe(false);
    // Remembered after a success (a reconnect costs no scrypt), and still exact.
    expect((await authenticateDevice(registry!, checker, 'env-9', Buffer.from('env-9-secret'))).ok).toBe(true);
    expect((await authenticateDevice(registry!, checker, 'env-9', Buffer.from('env-9-secreT'))).ok).toBe(false);
  });
});
