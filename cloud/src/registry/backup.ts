// One command backs up the cloud's store (device registry, audit log, alert state, webhook outbox,
// ingest marks — everything in the one SQLite file), consistently, while the cloud runs:
//
//   npm run backup -- /var/backups/citysense-cloud-$(date +%F).db [--config cloud.yaml]
//
// SQLite's VACUUM INTO writes a compact, self-contained copy from one read transaction (a snapshot: the
// cloud keeps writing meanwhile, thanks to WAL). The copy is a normal database file: restore by stopping
// the cloud and putting it at store.path (delete the old -wal and -shm files beside it).
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { loadCloudConfig } from '../config/load.ts';

export interface BackupResult {
  source: string;
  target: string;
  bytes: number;
  devices: number | null;
}

export function backupStore(storePath: string, target: string): BackupResult {
  if (storePath === ':memory:') throw new Error('store.path is :memory:, there is nothing on disk to back up');
  if (!existsSync(storePath)) throw new Error(`no store at ${storePath} (check store.path / CITYSENSE_CLOUD_STORE)`);
  const out = resolve(target);
  if (existsSync(out)) throw new Error(`${out} exists: give a new file name (a backup never overwrites)`);
  const db = new DatabaseSync(storePath, { readOnly: true });
  try {
    db.exec('PRAGMA busy_timeout = 10000');
    db.prepare('VACUUM INTO ?').run(out);
  } finally {
    db.close();
  }
  const copy = new DatabaseSync(out, { readOnly: true });
  let devices: number | null = null;
  try {
    const check = copy.prepare('PRAGMA integrity_check').get() as { integrity_check: string };
    if (check.integrity_check !== 'ok') throw new Error(`the copy failed its integrity check: ${check.integrity_check}`);
    const has = copy.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'devices'").get();
    if (has) devices = Number((copy.prepare('SELECT COUNT(*) AS n FROM devices').get() as { n: number }).n);
  } finally {
    copy.close();
  }
  return { source: storePath, target: out, bytes: statSync(out).size, devices };
}

function main(argv: string[]): number {
  const args = [...argv];
  let configFile: string | undefined;
  const at = args.indexOf('--config');
  if (at >= 0) {
    configFile = args[at + 1];
    args.splice(at, 2);
  }
  const target = args[0];
  if (!target || args.length !== 1) {
    process.stderr.write('usage: npm run backup -- <backup file> [--config cloud.yaml]\n');
    return 2;
  }
  try {
    // The backup reads only store.path: a config that names no InfluxDB (which the cloud itself refuses
    // to start on) is still enough to find the store, so the InfluxDB URL is filled in when missing.
    const env = { ...process.env, INFLUX_URL: process.env.INFLUX_URL ?? 'http://influx.not-used-by-backup.invalid' };
    const config = loadCloudConfig(configFile ?? process.env.CITYSENSE_CLOUD_CONFIG, env);
    const r = backupStore(config.store.path, target);
    process.stdout.write(`backed up ${r.source} to ${r.target} (${r.bytes} bytes${r.devices !== null ? `, ${r.devices} devices` : ''})\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`backup failed: ${(err as Error).message}\n`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('registry/backup.ts')) {
  process.exitCode = main(process.argv.slice(2));
}
