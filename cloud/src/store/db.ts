// The cloud's durable state (per-edge seq marks, alert state, the webhook outbox, ...) in one embedded
// SQLite database: node:sqlite, which Node 24 ships, so there is no native addon to build on an edge box
// or a city's server. WAL with synchronous=FULL: a committed mark survives a crash of the process or the
// machine. Each feature owns its tables and creates them through migrate(), idempotently.
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export interface CloudStore {
  readonly db: DatabaseSync;
  readonly path: string;
  /** Runs `sql` once per database under this name (a feature's schema, versioned by its name). */
  migrate(name: string, sql: string): void;
  /** Runs fn in one transaction: all of it is durable, or none. */
  transaction<T>(fn: () => T): T;
  close(): void;
}

export function openCloudStore(path: string): CloudStore {
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true });
    // The database holds sealed device verifiers, operators' password hashes and audit details: owner
    // only. SQLite gives its -wal and -shm files the database file's mode.
    closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
  }
  const db = new DatabaseSync(path);
  db.exec(`
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = FULL;
    PRAGMA busy_timeout = 5000;
    PRAGMA foreign_keys = ON;
    CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL);
  `);
  const applied = db.prepare('SELECT 1 FROM migrations WHERE name = ?');
  const record = db.prepare('INSERT INTO migrations (name, applied_at) VALUES (?, ?)');
  let depth = 0;
  const transaction = <T>(fn: () => T): T => {
    // Nested calls join the outer transaction.
    if (depth > 0) return fn();
    db.exec('BEGIN IMMEDIATE');
    depth++;
    try {
      const out = fn();
      db.exec('COMMIT');
      return out;
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    } finally {
      depth--;
    }
  };
  return {
    db,
    path,
    migrate(name, sql) {
      if (applied.get(name)) return;
      transaction(() => {
        db.exec(sql);
        record.run(name, Date.now());
      });
    },
    transaction,
    close: () => db.close(),
  };
}
