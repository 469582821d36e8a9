// The audit log: who changed what, when. Every registry change (create, import, update, delete, secret
// rotation) and every alert acknowledgement or resolution is one row in the cloud's store, written in the
// same transaction as the change itself, so a change without its audit row cannot be committed.
//
//   app.audit.record({ actor: 'duty', action: 'alert.ack', target: 'alert:al_0123', details: { note } })
//
// `record` is synchronous (node:sqlite): call it inside the store transaction that makes the change.
import type { CloudStore } from '../store/db.ts';

export interface AuditInput {
  /** Who: an operator's username, `edge:<id>`, or `system`. */
  actor: string;
  /** What kind of change, dotted: `device.create`, `device.import`, `device.update`, `device.delete`,
   * `device.rotate_secret`, `alert.ack`, `alert.resolve`, ... */
  action: string;
  /** What it was done to: `device:<id>`, `alert:<id>`, `registry`. */
  target: string;
  /** Anything that says what changed (JSON-serialisable; never a secret). */
  details?: Record<string, unknown> | undefined;
  /** When (ms since the epoch); default the log's clock. */
  ts?: number | undefined;
}

export interface AuditEntry {
  seq: number;
  ts: number;
  actor: string;
  action: string;
  target: string;
  details: Record<string, unknown>;
}

export interface AuditFilter {
  actor?: string | undefined;
  /** Exact action, or a prefix ending in `.` or `*` (`device.`, `alert.*`). */
  action?: string | undefined;
  target?: string | undefined;
  from?: number | undefined;
  to?: number | undefined;
  /** Entries with seq below this (the `next` cursor of the previous page). */
  before?: number | undefined;
  limit: number;
}

const MIGRATION = `
  CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL
  );
  CREATE INDEX audit_log_ts ON audit_log (ts);
  CREATE INDEX audit_log_target ON audit_log (target, seq);
  CREATE INDEX audit_log_actor ON audit_log (actor, seq);
`;

const MAX_TEXT = 512;
const clip = (s: string) => (s.length > MAX_TEXT ? s.slice(0, MAX_TEXT) : s);

export class AuditLog {
  private readonly insert;

  constructor(
    private readonly store: CloudStore,
    private readonly now: () => number = Date.now,
  ) {
    store.migrate('audit-v1', MIGRATION);
    this.insert = store.db.prepare('INSERT INTO audit_log (ts, actor, action, target, details) VALUES (?, ?, ?, ?, ?)');
  }

  /** Appends one entry (inside the caller's transaction, if any) and returns it. */
  record(e: AuditInput): AuditEntry {
    if (!e.actor || !e.action || !e.target) throw new TypeError('audit.record needs actor, action and target');
    const ts = e.ts ?? this.now();
    const details = e.details ?? {};
    const r = this.insert.run(ts, clip(e.actor), clip(e.action), clip(e.target), JSON.stringify(details));
    return { seq: Number(r.lastInsertRowid), ts, actor: e.actor, action: e.action, target: e.target, details };
  }

  /**
   * Replaces values in the details of every entry about `target` (erasure of personal data when a
   * device is deleted: entries written before masking existed still hold the values). Returns how many
   * entries changed. The entries themselves (who did what, when) stay.
   */
  redact(target: string, replace: readonly (readonly [string, string])[]): number {
    if (replace.length === 0) return 0;
    const rows = this.store.db.prepare('SELECT seq, details FROM audit_log WHERE target = ?').all(target) as { seq: number; details: string }[];
    const update = this.store.db.prepare('UPDATE audit_log SET details = ? WHERE seq = ?');
    let n = 0;
    for (const r of rows) {
      let d = r.details;
      // Values are matched as JSON strings, so only whole string values are replaced.
      for (const [from, to] of replace) d = d.split(JSON.stringify(from)).join(JSON.stringify(to));
      if (d !== r.details) {
        update.run(d, r.seq);
        n++;
      }
    }
    return n;
  }

  /** Newest first. */
  list(f: AuditFilter): AuditEntry[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (f.actor) (where.push('actor = ?'), args.push(f.actor));
    if (f.action) {
      const prefix = f.action.endsWith('*') ? f.action.slice(0, -1) : f.action.endsWith('.') ? f.action : undefined;
      if (prefix !== undefined) (where.push('substr(action, 1, ?) = ?'), args.push(prefix.length, prefix));
      else (where.push('action = ?'), args.push(f.action));
    }
    if (f.target) (where.push('target = ?'), args.push(f.target));
    if (f.from !== undefined) (where.push('ts >= ?'), args.push(f.from));
    if (f.to !== undefined) (where.push('ts < ?'), args.push(f.to));
    if (f.before !== undefined) (where.push('seq < ?'), args.push(f.before));
    const sql = `SELECT seq, ts, actor, action, target, details FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
    return (this.store.db.prepare(sql).all(...args, f.limit) as { seq: number; ts: number; actor: string; action: string; target: string; details: string }[]).map(
      (r) => ({ seq: Number(r.seq), ts: Number(r.ts), actor: r.actor, action: r.action, target: r.target, details: JSON.parse(r.details) as Record<string, unknown> }),
    );
  }
}
