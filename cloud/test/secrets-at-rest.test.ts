// Secrets at rest (issue 11, item 6): a registry from before issue 11 (unsalted SHA-256 columns) is
// migrated at start — its devices keep their secrets, the store and the slice hold no unsalted hash — and
// the database and the registry key are owner-only files.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseVerifier, verifySecret } from '@citysense/proto';
import { testInflux } from '../../e2e/setup/influx.ts';
import { EDGE_A } from './helpers.ts';
import { bearer, login, registryApp } from './registry-fixtures.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const mode = (f: string) => statSync(f).mode & 0o777;

let dir = '';
let app: FastifyInstance | undefined;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'citysense-secrets-'));
});
afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('secrets at rest', () => {
  it('migrates an old registry (secret_sha256 columns): same secrets work, no unsalted hash left, files 0600', async () => {
    const influx = await testInflux('secrets-at-rest');
    const dbPath = join(dir, 'cloud.db');
    const config = { store: { path: dbPath }, registry: { defaultEdge: EDGE_A.id } };
    app = registryApp(influx, config);
    await app.ready();
    const admin = await login(app, 'admin');
    const made = await app.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: { id: 'old-env-1', family: 'environment', district: 'jinshui', secret: 'old-secret-value-1' } });
    expect(made.statusCode, made.body).toBe(201);
    const st = await app.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: { id: 'old-hj-1', family: 'environment', district: 'jinshui', profile: 'hj212-air-station', hj212: { mn: 'AB12', password: '123456' } } });
    expect(st.statusCode, st.body).toBe(201);
    await app.close();
    app = undefined;

    // Turn the database into one from before issue 11: the unsalted columns filled, the sealed ones gone.
    const db = new DatabaseSync(dbPath);
    db.prepare("UPDATE devices SET secret_sha256 = ? WHERE id = 'old-env-1'").run(sha('old-secret-value-1'));
    db.prepare("UPDATE devices SET hj212_password_sha256 = ? WHERE id = 'old-hj-1'").run(sha('123456'));
    db.exec("ALTER TABLE devices DROP COLUMN secret_sealed; ALTER TABLE devices DROP COLUMN hj212_password_sealed; DELETE FROM migrations WHERE name = 'registry-v2-sealed-verifiers';");
    db.close();

    app = registryApp(influx, config);
    await app.ready();
    const rows = app.store.db.prepare('SELECT id, secret_sha256, hj212_password_sha256, secret_sealed, hj212_password_sealed FROM devices ORDER BY id').all() as Record<string, string | null>[];
    for (const r of rows) {
      expect(r.secret_sha256).toBeNull();
      expect(r.hj212_password_sha256).toBeNull();
    }
    const res = await app.inject({ method: 'GET', url: `/v1/edges/${EDGE_A.id}/registry`, headers: bearer(EDGE_A.token) });
    expect(res.statusCode, res.body).toBe(200);
    const devices = (res.json() as { devices: { id: string; secretHash?: string; hj212?: { passwordHash?: string } }[] }).devices;
    const env = devices.find((d) => d.id === 'old-env-1')!;
    const hj = devices.find((d) => d.id === 'old-hj-1')!;
    // A dictionary attack on the slice with the known secret and PW in it: no SHA-256 matches.
    for (const word of ['old-secret-value-1', '123456', 'password']) expect(res.body).not.toContain(sha(word));
    expect(env.secretHash).toMatch(/^\$scrypt-sha256\$/);
    expect(await verifySecret(parseVerifier(env.secretHash!)!, Buffer.from('old-secret-value-1'))).toBe(true);
    expect(await verifySecret(parseVerifier(hj.hj212!.passwordHash!)!, Buffer.from('123456'))).toBe(true);
    expect(await verifySecret(parseVerifier(hj.hj212!.passwordHash!)!, Buffer.from('1234567'))).toBe(false);

    expect(mode(dbPath)).toBe(0o600);
    expect(mode(join(dir, 'registry.key'))).toBe(0o600);
  });
});
