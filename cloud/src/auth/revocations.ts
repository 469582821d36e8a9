// Revoked operator tokens, in the cloud's store (store/db.ts) so a logout or a revocation survives a
// restart. Two kinds of entry:
//   - one token (logout): its jti, kept until the token would have expired anyway, then swept;
//   - every token of an operator issued before a moment (an admin's revocation, a password change):
//     one row per operator, the latest cutoff; a later login is not affected.
// Lookups are by primary key on every authenticated request: microseconds in SQLite, no cache to keep
// coherent.
import type { CloudStore } from '../store/db.ts';
import type { TokenClaims } from './tokens.ts';

const MIGRATION = `
  CREATE TABLE operator_token_revocations (
    jti TEXT PRIMARY KEY,
    operator TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
  );
  CREATE INDEX operator_token_revocations_expiry ON operator_token_revocations (expires_at);
  CREATE TABLE operator_revoked_before (
    operator TEXT PRIMARY KEY,
    before INTEGER NOT NULL
  );
`;

export class Revocations {
  private readonly findJti;
  private readonly findBefore;
  private readonly insertJti;
  private readonly upsertBefore;
  private readonly sweepStmt;

  constructor(private readonly store: CloudStore) {
    store.migrate('operator-token-revocations-v1', MIGRATION);
    const db = store.db;
    this.findJti = db.prepare('SELECT 1 AS x FROM operator_token_revocations WHERE jti = ?');
    this.findBefore = db.prepare('SELECT before FROM operator_revoked_before WHERE operator = ?');
    this.insertJti = db.prepare('INSERT OR IGNORE INTO operator_token_revocations (jti, operator, expires_at, revoked_at) VALUES (?, ?, ?, ?)');
    this.upsertBefore = db.prepare(
      'INSERT INTO operator_revoked_before (operator, before) VALUES (?, ?) ON CONFLICT (operator) DO UPDATE SET before = max(before, excluded.before)',
    );
    this.sweepStmt = db.prepare('DELETE FROM operator_token_revocations WHERE expires_at <= ?');
  }

  isRevoked(c: TokenClaims): boolean {
    if (this.findJti.get(c.jti)) return true;
    const row = this.findBefore.get(c.sub) as { before: number } | undefined;
    return row !== undefined && c.iat < row.before;
  }

  /** Ends one token (logout). */
  revoke(c: TokenClaims, nowMs: number): void {
    this.insertJti.run(c.jti, c.sub, c.exp, nowMs);
  }

  /** Ends every token of `operator` issued before `nowMs`. */
  revokeAll(operator: string, nowMs: number): void {
    this.upsertBefore.run(operator, nowMs);
  }

  /** Drops single-token entries whose token has expired (they can no longer be presented). */
  sweep(nowMs: number): number {
    return Number(this.sweepStmt.run(nowMs).changes);
  }

  /** Single-token entries held (tests, metrics). */
  count(): number {
    return Number((this.store.db.prepare('SELECT count(*) AS n FROM operator_token_revocations').get() as { n: number }).n);
  }
}
