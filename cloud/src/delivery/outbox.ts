// The durable webhook outbox: one row per (state change, target), written in the same store transaction
// as the alert state change itself, so a change is either recorded with all its deliveries or not at all.
// A worker POSTs due rows, signed, with the change's event_id as Idempotency-Key on every attempt; a
// failed attempt is retried with exponential backoff and jitter until the target's maxAttempts, then the
// row is a dead letter (kept, listed, retryable by an admin). Rows survive a restart: an attempt cut short
// by a crash or a close is simply made again (at-least-once, same key).
//
// Order: a target gets one alert's changes in order (firing before resolved): a row is not attempted
// while an earlier row of the same alert for the same target is still pending.
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { AlertMetrics } from '../alerts/metrics.ts';
import type { CloudStore } from '../store/db.ts';
import { TokenBucket } from './rate-limit.ts';
import { signatureHeader } from './sign.ts';
import type { WebhookTarget } from './targets.ts';

export type DeliveryStatus = 'pending' | 'delivered' | 'dead' | 'edge';

export interface DeliveryRow {
  id: number;
  event_id: string;
  alert_id: string;
  target_id: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number;
  created_at: number;
  received_at: number | null;
  delivered_at: number | null;
  last_error: string | null;
  last_status: number | null;
}

export interface OutboxOptions {
  maxConcurrent: number;
  pollIntervalMs: number;
  retainDeliveredMs: number;
}

export interface EnqueueItem {
  eventId: string;
  alertId: string;
  targetId: string;
  body: string;
  /** When the batch that caused the change reached the cloud (latency metrics); absent for operator changes. */
  receivedAt?: number | undefined;
}

const MIGRATION = `
  CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    received_at INTEGER,
    delivered_at INTEGER,
    last_error TEXT,
    last_status INTEGER,
    UNIQUE (event_id, target_id)
  );
  CREATE INDEX webhook_outbox_due ON webhook_outbox (status, next_attempt_at);
  CREATE INDEX webhook_outbox_alert ON webhook_outbox (alert_id);
`;

/** How long close() lets attempts in flight finish before abandoning them. */
const CLOSE_GRACE_MS = 2_000;

const COLUMNS = 'id, event_id, alert_id, target_id, status, attempts, next_attempt_at, created_at, received_at, delivered_at, last_error, last_status';

type Outcome = { kind: 'delivered'; status: number } | { kind: 'http_error'; status: number } | { kind: 'timeout' | 'network_error' | 'closed'; error: string };

export class WebhookOutbox {
  private readonly targets: Map<string, WebhookTarget>;
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly inflight = new Map<number, Promise<void>>();
  private readonly closing = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private pumping = false;
  private again = false;
  private stopped = true;
  private readonly q;

  constructor(
    private readonly store: CloudStore,
    targets: readonly WebhookTarget[],
    private readonly metrics: AlertMetrics,
    private readonly opts: OutboxOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {
    store.migrate('webhook-outbox-v1', MIGRATION);
    this.targets = new Map(targets.map((t) => [t.id, t]));
    const db = store.db;
    this.q = {
      insert: db.prepare(
        `INSERT OR IGNORE INTO webhook_outbox (event_id, alert_id, target_id, body, status, next_attempt_at, created_at, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      due: db.prepare(
        `SELECT o.id, o.event_id, o.alert_id, o.target_id, o.body, o.attempts, o.received_at FROM webhook_outbox o
         WHERE o.status = 'pending' AND o.next_attempt_at <= ?
           AND NOT EXISTS (SELECT 1 FROM webhook_outbox e WHERE e.target_id = o.target_id AND e.alert_id = o.alert_id AND e.status = 'pending' AND e.id < o.id)
         ORDER BY o.next_attempt_at, o.id LIMIT ?`,
      ),
      nextDue: db.prepare(`SELECT MIN(next_attempt_at) AS at FROM webhook_outbox WHERE status = 'pending'`),
      pending: db.prepare(`SELECT COUNT(*) AS n FROM webhook_outbox WHERE status = 'pending'`),
      defer: db.prepare(`UPDATE webhook_outbox SET next_attempt_at = ? WHERE id = ?`),
      delivered: db.prepare(`UPDATE webhook_outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, last_status = ?, last_error = NULL WHERE id = ?`),
      failed: db.prepare(`UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_status = ?, last_error = ? WHERE id = ?`),
      dead: db.prepare(`UPDATE webhook_outbox SET status = 'dead', attempts = attempts + 1, last_status = ?, last_error = ? WHERE id = ?`),
      byAlert: db.prepare(`SELECT ${COLUMNS} FROM webhook_outbox WHERE alert_id = ? ORDER BY id`),
      prune: db.prepare(`DELETE FROM webhook_outbox WHERE status IN ('delivered', 'edge') AND created_at < ?`),
      retry: db.prepare(`UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL WHERE id = ? AND status = 'dead'`),
    };
  }

  get targetIds(): string[] {
    return [...this.targets.keys()];
  }

  target(id: string): WebhookTarget | undefined {
    return this.targets.get(id);
  }

  /** Records a delivery to make. Call inside the transaction that records the state change. */
  enqueue(item: EnqueueItem): void {
    const now = this.now();
    this.q.insert.run(item.eventId, item.alertId, item.targetId, item.body, 'pending', now, now, item.receivedAt ?? null);
    if (item.receivedAt !== undefined) this.metrics.enqueueLatency.observe(Math.max(0, now - item.receivedAt) / 1000);
  }

  /** Records that the edge already notified this target of the change's source event (nothing is sent). */
  recordEdgeDelivered(item: EnqueueItem): void {
    const now = this.now();
    this.q.insert.run(item.eventId, item.alertId, item.targetId, item.body, 'edge', now, now, item.receivedAt ?? null);
    this.metrics.edgeNotifiedSkipped.inc({ target: item.targetId });
  }

  pendingCount(): number {
    return Number((this.q.pending.get() as { n: number }).n);
  }

  deliveriesOf(alertId: string): DeliveryRow[] {
    return this.q.byAlert.all(alertId) as unknown as DeliveryRow[];
  }

  list(filter: { status?: DeliveryStatus | undefined; target?: string | undefined; limit: number; before?: number | undefined }): DeliveryRow[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.status) (where.push('status = ?'), args.push(filter.status));
    if (filter.target) (where.push('target_id = ?'), args.push(filter.target));
    if (filter.before !== undefined) (where.push('id < ?'), args.push(filter.before));
    const sql = `SELECT ${COLUMNS} FROM webhook_outbox ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return this.store.db.prepare(sql).all(...args, filter.limit) as unknown as DeliveryRow[];
  }

  /** Puts a dead letter back in the outbox with a fresh attempt budget. */
  retry(id: number): boolean {
    const changed = Number(this.q.retry.run(this.now(), id).changes) > 0;
    if (changed) this.kick();
    return changed;
  }

  start(): void {
    this.stopped = false;
    this.q.prune.run(this.now() - this.opts.retainDeliveredMs);
    this.kick();
  }

  /**
   * Stops attempting. Attempts in flight get up to CLOSE_GRACE_MS to finish (so an answered delivery is
   * recorded as delivered); those still open then are abandoned and stay pending: made again after a
   * restart, with the same Idempotency-Key.
   */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const all = Promise.allSettled([...this.inflight.values()]);
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (grace = setTimeout(r, CLOSE_GRACE_MS)))]);
    clearTimeout(grace);
    this.closing.abort();
    await all;
  }

  /** Looks for due deliveries now (after an enqueue, or an attempt ended). */
  kick(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        this.pump();
      } while (this.again && !this.stopped);
    } catch (err) {
      this.log.error({ err }, 'webhook outbox: reading due deliveries failed');
    } finally {
      this.pumping = false;
    }
    this.schedule();
  }

  private pump(): void {
    const free = this.opts.maxConcurrent - this.inflight.size;
    if (free <= 0) return;
    const now = this.now();
    const rows = this.q.due.all(now, free + this.inflight.size) as { id: number; event_id: string; alert_id: string; target_id: string; body: string; attempts: number; received_at: number | null }[];
    let started = 0;
    for (const row of rows) {
      if (started >= free) break;
      if (this.inflight.has(row.id)) continue;
      const target = this.targets.get(row.target_id);
      if (!target) {
        // The target was removed from the config: nobody to send to. Kept as a dead letter, visible.
        this.q.dead.run(null, `target ${row.target_id} is no longer configured`, row.id);
        this.metrics.webhookDeadLetter.inc({ target: row.target_id });
        continue;
      }
      let bucket = this.buckets.get(target.id);
      if (!bucket) this.buckets.set(target.id, (bucket = new TokenBucket(target.rateLimit.perMinute, target.rateLimit.burst, now)));
      if (!bucket.take(now)) {
        this.q.defer.run(now + bucket.waitMs(now), row.id);
        this.metrics.webhookDeferred.inc({ target: target.id });
        continue;
      }
      started++;
      const p = this.attempt(target, row).finally(() => {
        this.inflight.delete(row.id);
        this.kick();
      });
      this.inflight.set(row.id, p);
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    let wait = this.opts.pollIntervalMs;
    const next = (this.q.nextDue.get() as { at: number | null }).at;
    if (next !== null) wait = Math.max(5, Math.min(wait, next - this.now()));
    this.timer = setTimeout(() => this.kick(), wait);
    this.timer.unref();
  }

  private backoffMs(target: WebhookTarget, attempts: number): number {
    const base = Math.min(target.backoff.maxMs, target.backoff.initialMs * 2 ** Math.min(30, attempts - 1));
    // "Equal jitter": half fixed, half random, so retries of many deliveries spread out but never come early.
    return Math.round(base / 2 + (this.random() * base) / 2);
  }

  private async post(target: WebhookTarget, row: { event_id: string; body: string; attempts: number }): Promise<Outcome> {
    const t = Math.floor(this.now() / 1000);
    const signal = AbortSignal.any([AbortSignal.timeout(target.timeoutMs), this.closing.signal]);
    try {
      const res = await fetch(target.url, {
        method: 'POST',
        body: row.body,
        redirect: 'manual',
        signal,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'citysense-cloud',
          'idempotency-key': row.event_id,
          'x-citysense-signature': signatureHeader(target.secret, row.body, t),
          'x-citysense-attempt': String(row.attempts + 1),
          // Which target this is, for a receiver that serves several at one URL (the demo's does).
          'x-citysense-target': target.id,
        },
      });
      // The answer's body is not used; reading it (within the timeout) lets the connection be reused.
      await res.arrayBuffer().catch(() => undefined);
      return res.status >= 200 && res.status < 300 ? { kind: 'delivered', status: res.status } : { kind: 'http_error', status: res.status };
    } catch (err) {
      if (this.closing.signal.aborted) return { kind: 'closed', error: 'cloud closing' };
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError') return { kind: 'timeout', error: `no answer within ${target.timeoutMs} ms` };
      return { kind: 'network_error', error: `${e.cause?.code ?? e.name}: ${(e.cause?.message ?? e.message).slice(0, 200)}` };
    }
  }

  private async attempt(target: WebhookTarget, row: { id: number; event_id: string; body: string; attempts: number; received_at: number | null }): Promise<void> {
    const outcome = await this.post(target, row);
    if (outcome.kind === 'closed') return; // stays pending, attempt not counted
    this.metrics.webhookAttempts.inc({ target: target.id, outcome: outcome.kind });
    const now = this.now();
    if (outcome.kind === 'delivered') {
      this.q.delivered.run(now, outcome.status, row.id);
      this.metrics.webhookDelivered.inc({ target: target.id });
      if (row.received_at !== null) this.metrics.deliveryLatency.observe({ target: target.id }, Math.max(0, now - row.received_at) / 1000);
      return;
    }
    const status = 'status' in outcome ? outcome.status : null;
    const error = 'error' in outcome ? outcome.error : `HTTP ${outcome.status}`;
    const attempts = row.attempts + 1;
    if (attempts >= target.maxAttempts) {
      this.q.dead.run(status, error, row.id);
      this.metrics.webhookDeadLetter.inc({ target: target.id });
      this.log.warn({ target: target.id, event_id: row.event_id, attempts, error }, 'webhook delivery failed its last attempt: dead letter');
      return;
    }
    this.q.failed.run(now + this.backoffMs(target, attempts), status, error, row.id);
  }
}
