// Edge-local alerting (issue 5, item 5; README.md § Edge-local alerting, docs/alert-rules.md).
//
// Critical event rules also run on the edge. When the cloud cannot alert in time, the edge posts the
// firing to its locally configured targets itself, and tells the cloud so, in the event itself:
//
//   accept (after the durable queue holds the event)
//     → a local rule matches: watch the event for localAlerts.cloudDownAfterMs
//   the batch carrying it is acked in time                      → nothing to do (the cloud alerts)
//   an upload attempt of that batch fails, or the uplink is down
//   at accept, or the deadline passes without an ack            → decide: notify locally
//   decide → outbox "notify" lines (fdatasync) → POST to each matching target, signed, Idempotency-Key =
//            the event_id the cloud computes for the same firing; retried with backoff up to maxAttempts
//          → on 2xx an outbox "done delivered" line (fdatasync)
//   every later upload attempt of the batch carries the event with attrs.edge_notified = the targets
//   delivered (uplink hook beforeAttempt); the cloud records them before it evaluates the batch and does
//   not send those targets that firing (delivery status `edge`).
//   the batch is acked while a local delivery is still failing → the delivery stops (`superseded`): the
//   cloud got the event without that target in edge_notified and notifies it itself.
//
// The queue's persisted batch is never changed: the attribute is added on the wire, derived from the
// durable outbox, so every attempt after the local delivery (also after an edge restart) carries it.
import type { Batch, DeviceEvent } from '@citysense/proto';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { join } from 'node:path';
import type { Sink } from '../sink.ts';
import type { LocalAlertsConfig, LocalRule } from './config.ts';
import { LocalOutbox, type OutboxEntry } from './outbox.ts';
import { EDGE_NOTIFIED_ATTR, firingBody, loadLocalRules, resolveLocalTargets, rulesFor, targetMatches, type LocalTarget } from './rules.ts';
import { signatureHeader } from './sign.ts';

export type UplinkAttemptOutcome = 'acked' | 'failed' | 'refused';

/** What the uplink calls around each upload attempt (edge/src/outputs/uplink/uplink.ts). */
export interface UplinkHooks {
  /** The batch to send for this attempt: the queue's batch, or a copy whose events carry edge_notified. */
  beforeAttempt(batch: Batch): Promise<Batch>;
  afterAttempt(batch: Batch, outcome: UplinkAttemptOutcome): void;
}

export interface LocalAlertsDeps {
  config: LocalAlertsConfig;
  dataDir: string;
  edgeId: string;
  /** The uplink's view of the cloud: 'down' after a failed attempt, 'up' after an ack. */
  uplinkState: () => 'unknown' | 'up' | 'down';
  registry: Registry;
  log: Logger;
  env?: Record<string, string | undefined>;
  now?: () => number;
  random?: () => number;
}

interface Job {
  entry: OutboxEntry;
  target: LocalTarget;
  attempts: number;
  timer?: NodeJS.Timeout | undefined;
  inflight?: Promise<void> | undefined;
  /** The cloud acked the event without this target in edge_notified: it notifies the target itself. */
  superseded?: boolean;
}

interface Watch {
  event: DeviceEvent;
  rules: LocalRule[];
  timer: NodeJS.Timeout;
}

const ACKED_MEMORY = 10_000;

export class LocalAlerts implements UplinkHooks {
  readonly rules: LocalRule[];
  readonly targets: LocalTarget[];
  private readonly watches = new Map<string, Watch>();
  private readonly deciding = new Map<string, Promise<void>>();
  /** Event ids the cloud acknowledged (bounded; an acked batch is never sent again). */
  private readonly acked = new Set<string>();
  private readonly jobs = new Map<string, Job>();
  private readonly stop = new AbortController();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly m: {
    outcomes: Counter<'rule' | 'target' | 'outcome'>;
    decisions: Counter<'rule' | 'decision'>;
    attempts: Counter<'target' | 'outcome'>;
  };

  private constructor(
    private readonly d: LocalAlertsDeps,
    private readonly outbox: LocalOutbox,
    rules: LocalRule[],
    targets: LocalTarget[],
  ) {
    this.rules = rules;
    this.targets = targets;
    this.now = d.now ?? Date.now;
    this.random = d.random ?? Math.random;
    const registers = [d.registry];
    this.m = {
      outcomes: new Counter({
        name: 'citysense_edge_local_alerts_total',
        help: 'Local alert notifications finished, by rule, target and outcome (delivered, dead = gave up after maxAttempts, superseded = the cloud took over)',
        labelNames: ['rule', 'target', 'outcome'],
        registers,
      }),
      decisions: new Counter({
        name: 'citysense_edge_local_alert_decisions_total',
        help: 'Events a local rule matched, by rule and decision (cloud_acked: the cloud acknowledged in time; notified; too_old; no_target)',
        labelNames: ['rule', 'decision'],
        registers,
      }),
      attempts: new Counter({
        name: 'citysense_edge_local_alert_attempts_total',
        help: 'Local webhook attempts, by target and outcome (delivered, http_error, timeout, network_error)',
        labelNames: ['target', 'outcome'],
        registers,
      }),
    };
    const self = this;
    new Gauge({
      name: 'citysense_edge_local_alerts_pending',
      help: 'Local alert notifications decided and not yet finished (in the durable outbox)',
      registers,
      collect() {
        this.set(self.outbox.pending().length);
      },
    });
  }

  /** Loads rules (inline and from the cloud's rule files), resolves secrets, opens the outbox, resumes it. */
  static async start(d: LocalAlertsDeps): Promise<LocalAlerts> {
    const rules = loadLocalRules(d.config);
    const targets = resolveLocalTargets(d.config.targets, d.env ?? process.env);
    const outbox = await LocalOutbox.open(d.config.outboxFile ?? join(d.dataDir, 'local-alerts.jsonl'), { retainMs: d.config.retainMs, ...(d.now ? { now: d.now } : {}) });
    const la = new LocalAlerts(d, outbox, rules, targets);
    if (outbox.skippedLines) d.log.warn({ file: outbox.file, skipped: outbox.skippedLines }, 'local alert outbox: unreadable lines skipped (torn by a crash?)');
    const pending = outbox.pending();
    if (pending.length) d.log.info({ pending: pending.length }, 'local alert outbox: resuming notifications not yet delivered');
    for (const e of pending) la.startJob(e);
    d.log.info({ rules: rules.map((r) => r.id), targets: targets.map((t) => t.id), cloudDownAfterMs: d.config.cloudDownAfterMs }, 'edge-local alerting on');
    return la;
  }

  // ---- input ---------------------------------------------------------------------------------------

  /** A sink that hands on to `inner` and, once the events are safe there, watches those a rule matches. */
  wrapSink(inner: Sink): Sink {
    return {
      accept: async (readings, events) => {
        await inner.accept(readings, events);
        if (events.length) this.accepted(events);
      },
    };
  }

  /** Events the durable queue now holds. */
  accepted(events: readonly DeviceEvent[]): void {
    if (this.stop.signal.aborted) return;
    for (const e of events) {
      if (this.watches.has(e.id) || this.acked.has(e.id) || this.outbox.has(e.id) || this.deciding.has(e.id)) continue;
      const rules = rulesFor(this.rules, e);
      if (rules.length === 0) continue;
      if (this.d.uplinkState() === 'down') {
        this.decide(e, rules, 'uplink down');
        continue;
      }
      const timer = setTimeout(() => this.decide(e, rules, `no ack within ${this.d.config.cloudDownAfterMs} ms`), this.d.config.cloudDownAfterMs);
      timer.unref();
      this.watches.set(e.id, { event: e, rules, timer });
    }
  }

  // ---- uplink hooks --------------------------------------------------------------------------------

  async beforeAttempt(batch: Batch): Promise<Batch> {
    try {
      return await this.annotate(batch);
    } catch (err) {
      // Never stops the uplink: without the attribute the cloud may notify a target a second time (same key).
      this.d.log.error({ err, seq: batch.seq }, 'local alerts: could not mark a batch; sent as queued');
      return batch;
    }
  }

  afterAttempt(batch: Batch, outcome: UplinkAttemptOutcome): void {
    try {
      this.attempted(batch, outcome);
    } catch (err) {
      this.d.log.error({ err, seq: batch.seq }, 'local alerts: could not follow an upload attempt');
    }
  }

  private async annotate(batch: Batch): Promise<Batch> {
    // A decision being written, then a local delivery of one of these events in flight, is awaited (bounded
    // by the target's timeout) so that the cloud hears of its outcome in this very attempt.
    const deciding = batch.events.map((e) => this.deciding.get(e.id)).filter((p) => p !== undefined);
    if (deciding.length) await Promise.allSettled(deciding);
    const inflight: Promise<unknown>[] = [];
    let bound = 0;
    for (const e of batch.events) {
      for (const o of this.outbox.ofSource(e.id)) {
        const j = this.jobs.get(o.k);
        if (j?.inflight) {
          inflight.push(j.inflight);
          bound = Math.max(bound, j.target.timeoutMs);
        }
      }
    }
    if (inflight.length) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled(inflight), new Promise<void>((r) => (t = setTimeout(r, bound + 250)))]);
      clearTimeout(t);
    }
    let changed = false;
    const events = batch.events.map((e) => {
      const targets = this.notifiedTargets(e.id);
      if (targets.length === 0) return e;
      changed = true;
      return { ...e, attrs: { ...e.attrs, [EDGE_NOTIFIED_ATTR]: targets.join(',') } };
    });
    return changed ? { ...batch, events } : batch;
  }

  private attempted(batch: Batch, outcome: UplinkAttemptOutcome): void {
    if (this.stop.signal.aborted) return;
    if (outcome === 'acked') {
      for (const e of batch.events) this.cloudAcked(e.id);
      return;
    }
    // The cloud did not take the batch (down, failing, refusing): its critical events are alerted here now.
    const oldest = this.now() - this.d.config.maxEventAgeMs;
    for (const e of batch.events) {
      if (this.acked.has(e.id) || this.outbox.has(e.id) || this.deciding.has(e.id)) continue;
      const w = this.watches.get(e.id);
      const rules = w?.rules ?? rulesFor(this.rules, e);
      if (rules.length === 0) continue;
      // After an edge restart old batches are resent: decide() counts an old event once and does not alert it.
      if (e.ts < oldest && this.tooOld.has(e.id)) continue;
      this.decide(w?.event ?? e, rules, outcome === 'refused' ? 'the cloud refused the batch' : 'upload attempt failed');
    }
  }

  /** Targets every notification of this event to which was delivered (what edge_notified says). */
  notifiedTargets(sourceEventId: string): string[] {
    const byTarget = new Map<string, boolean>();
    for (const o of this.outbox.ofSource(sourceEventId)) byTarget.set(o.target, (byTarget.get(o.target) ?? true) && o.status === 'delivered');
    return [...byTarget].filter(([, ok]) => ok).map(([t]) => t).sort();
  }

  /** Event ids found too old to alert locally (bounded): counted and logged once. */
  private readonly tooOld = new Set<string>();

  private cloudAcked(id: string): void {
    this.acked.add(id);
    if (this.acked.size > ACKED_MEMORY) this.acked.delete(this.acked.values().next().value!);
    const w = this.watches.get(id);
    if (w) {
      clearTimeout(w.timer);
      this.watches.delete(id);
      for (const r of w.rules) this.m.decisions.inc({ rule: r.id, decision: 'cloud_acked' });
    }
    for (const o of this.outbox.ofSource(id)) {
      const j = this.jobs.get(o.k);
      if (!j || o.status !== 'pending') continue;
      j.superseded = true;
      if (!j.inflight) void this.finish(j, 'superseded');
    }
  }

  // ---- decision and delivery -----------------------------------------------------------------------

  private decide(e: DeviceEvent, rules: LocalRule[], why: string): void {
    const w = this.watches.get(e.id);
    if (w) clearTimeout(w.timer);
    this.watches.delete(e.id);
    if (this.acked.has(e.id) || this.outbox.has(e.id) || this.deciding.has(e.id) || this.stop.signal.aborted) return;
    if (e.ts < this.now() - this.d.config.maxEventAgeMs) {
      if (!this.tooOld.has(e.id)) {
        this.tooOld.add(e.id);
        if (this.tooOld.size > ACKED_MEMORY) this.tooOld.delete(this.tooOld.values().next().value!);
        for (const r of rules) this.m.decisions.inc({ rule: r.id, decision: 'too_old' });
        this.d.log.warn({ event: e.id, device: e.deviceId, type: e.type, ts: e.ts }, 'critical event older than localAlerts.maxEventAgeMs: not alerted locally (the cloud alerts when it gets it)');
      }
      return;
    }
    const items: { source: string; target: string; rule: string; key: string; body: string }[] = [];
    for (const rule of rules) {
      const { eventId, body } = firingBody(rule, e);
      const targets = this.targets.filter((t) => targetMatches(t, { category: rule.category, district: e.tags?.district ?? '' }));
      if (targets.length === 0) this.m.decisions.inc({ rule: rule.id, decision: 'no_target' });
      else this.m.decisions.inc({ rule: rule.id, decision: 'notified' });
      for (const t of targets) items.push({ source: e.id, target: t.id, rule: rule.id, key: eventId, body });
    }
    if (items.length === 0) return;
    this.d.log.warn(
      { event: e.id, device: e.deviceId, type: e.type, rules: rules.map((r) => r.id), targets: [...new Set(items.map((i) => i.target))], why },
      'the cloud did not take a critical event in time: alerting the local targets',
    );
    const p = this.outbox
      .notify(items)
      .then((entries) => {
        for (const o of entries) if (o.status === 'pending') this.startJob(o);
      })
      .catch((err: Error) => {
        // Not written: nothing was promised to the cloud; the next failed attempt decides again.
        this.d.log.error({ err, event: e.id }, 'local alert outbox: could not record a notification; it is not sent');
      })
      .finally(() => this.deciding.delete(e.id));
    this.deciding.set(e.id, p);
  }

  private startJob(entry: OutboxEntry): void {
    if (this.jobs.has(entry.k) || this.stop.signal.aborted) return;
    const target = this.targets.find((t) => t.id === entry.target);
    if (!target) {
      this.d.log.error({ target: entry.target, event: entry.source }, 'local alert outbox names a target no longer configured: given up');
      void this.outbox.done(entry.k, 'dead').catch(() => undefined);
      this.m.outcomes.inc({ rule: entry.rule, target: entry.target, outcome: 'dead' });
      return;
    }
    const job: Job = { entry, target, attempts: 0 };
    this.jobs.set(entry.k, job);
    this.run(job);
  }

  private run(job: Job): void {
    job.timer = undefined;
    if (this.stop.signal.aborted) return;
    if (job.superseded) return void this.finish(job, 'superseded');
    job.inflight = this.attempt(job).finally(() => (job.inflight = undefined));
  }

  private async attempt(job: Job): Promise<void> {
    const { target, entry } = job;
    const outcome = await this.post(target, entry, job.attempts + 1);
    if (outcome.kind === 'closed') return;
    job.attempts++;
    this.m.attempts.inc({ target: target.id, outcome: outcome.kind });
    if (outcome.kind === 'delivered') {
      this.d.log.info({ target: target.id, event: entry.source, key: entry.key, attempts: job.attempts }, 'local alert delivered');
      return this.finish(job, 'delivered');
    }
    if (job.superseded) return this.finish(job, 'superseded');
    if (job.attempts >= target.maxAttempts) {
      this.d.log.error({ target: target.id, event: entry.source, key: entry.key, attempts: job.attempts, error: outcome.error }, 'local alert not delivered: gave up after maxAttempts');
      return this.finish(job, 'dead');
    }
    this.d.log.warn({ target: target.id, event: entry.source, attempt: job.attempts, error: outcome.error }, 'local alert attempt failed, will retry');
    const base = Math.min(target.backoff.maxMs, target.backoff.initialMs * 2 ** Math.min(30, job.attempts - 1));
    job.timer = setTimeout(() => this.run(job), Math.round(base / 2 + (this.random() * base) / 2));
    job.timer.unref();
  }

  private async finish(job: Job, outcome: 'delivered' | 'dead' | 'superseded'): Promise<void> {
    clearTimeout(job.timer);
    this.jobs.delete(job.entry.k);
    try {
      await this.outbox.done(job.entry.k, outcome);
    } catch (err) {
      // The fact is not on disk: after a restart the notification is made again (same Idempotency-Key).
      this.d.log.error({ err, target: job.target.id, event: job.entry.source }, 'local alert outbox: could not record the outcome');
      return;
    }
    this.m.outcomes.inc({ rule: job.entry.rule, target: job.target.id, outcome });
  }

  private async post(
    target: LocalTarget,
    entry: OutboxEntry,
    attempt: number,
  ): Promise<{ kind: 'delivered'; error?: undefined } | { kind: 'http_error' | 'timeout' | 'network_error'; error: string } | { kind: 'closed'; error?: undefined }> {
    const signal = AbortSignal.any([AbortSignal.timeout(target.timeoutMs), this.stop.signal]);
    try {
      const res = await fetch(target.url, {
        method: 'POST',
        body: entry.body,
        redirect: 'manual',
        signal,
        headers: {
          'content-type': 'application/json',
          'user-agent': `citysense-edge/${this.d.edgeId}`,
          'idempotency-key': entry.key,
          'x-citysense-signature': signatureHeader(target.secret, entry.body, this.now() / 1000),
          'x-citysense-attempt': String(attempt),
          // Who sent it (the cloud's deliveries do not carry it): receivers may log it, must not need it.
          'x-citysense-origin': `edge:${this.d.edgeId}`,
        },
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.status >= 200 && res.status < 300 ? { kind: 'delivered' } : { kind: 'http_error', error: `HTTP ${res.status}` };
    } catch (err) {
      if (this.stop.signal.aborted) return { kind: 'closed' };
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError') return { kind: 'timeout', error: `no answer within ${target.timeoutMs} ms` };
      return { kind: 'network_error', error: `${e.cause?.code ?? e.name}: ${(e.cause?.message ?? e.message).slice(0, 200)}` };
    }
  }

  /** Notifications decided and not yet finished. */
  pendingCount(): number {
    return this.outbox.pending().length;
  }

  /** Stops timers and attempts (an attempt cut short is made again after the restart); closes the outbox. */
  async close(): Promise<void> {
    this.stop.abort();
    for (const w of this.watches.values()) clearTimeout(w.timer);
    this.watches.clear();
    for (const j of this.jobs.values()) clearTimeout(j.timer);
    await Promise.allSettled([...this.deciding.values(), ...[...this.jobs.values()].map((j) => j.inflight)]);
    this.jobs.clear();
    await this.outbox.close();
  }
}
