// The registry survives a restart (a file store) and is backed up with one command while the cloud runs.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { backupStore } from '../src/registry/backup.ts';
import { bearer, login, registryApp } from './registry-fixtures.ts';

let influx: TestInflux;
let dir: string;

beforeAll(async () => {
  influx = await testInflux('registry-backup');
  dir = mkdtempSync(join(tmpdir(), 'citysense-backup-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('durability and backup', () => {
  it('keeps devices and audit across a restart, and backs up a running store with npm run backup', async () => {
    const store = join(dir, 'cloud.db');
    let app = registryApp(influx, { store: { path: store } });
    await app.ready();
    const admin = await login(app, 'admin');
    const created = await app.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: { id: 'keep-1', family: 'fire', district: 'zhongyuan' } });
    expect(created.statusCode).toBe(201);
    await app.close();

    app = registryApp(influx, { store: { path: store } });
    await app.ready();
    try {
      expect(app.registry.get('keep-1')).toMatchObject({ id: 'keep-1', created_by: 'admin' });
      expect(app.audit.list({ limit: 10 }).map((e) => e.action)).toEqual(['device.create']);

      // While the app holds the store open: the function, then the command.
      const r = backupStore(store, join(dir, 'b1.db'));
      expect(r).toMatchObject({ devices: 1 });
      expect(() => backupStore(store, join(dir, 'b1.db'))).toThrow(/exists/);
      const run = await promisify(execFile)(join(process.cwd(), 'node_modules/.bin/tsx'), ['cloud/src/registry/backup.ts', join(dir, 'b2.db')], {
        env: { ...process.env, CITYSENSE_CLOUD_STORE: store, CITYSENSE_CLOUD_CONFIG: '' },
      });
      expect(run.stdout).toContain(`to ${join(dir, 'b2.db')}`);
      expect(run.stdout).toContain('1 devices');
      const copy = new DatabaseSync(join(dir, 'b2.db'), { readOnly: true });
      try {
        expect(copy.prepare('SELECT id, family FROM devices').all()).toEqual([{ id: 'keep-1', family: 'fire' }]);
        expect((copy.prepare('SELECT COUNT(*) AS n FROM audit_log').get() as { n: number }).n).toBe(1);
      } finally {
        copy.close();
      }
    } finally {
      await app.close();
    }
  });
});
