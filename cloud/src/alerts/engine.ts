// The alert engine: rules × devices → alert state changes → the outbox, the stream and InfluxDB.
//
//   onBatch(batch)   first-time batches, after their InfluxDB write (ingest's onBatchStored)
//     → for each reading, in time order: device last heard of; offline alerts of that device clear;
//       threshold and rate rules step (evaluate.ts)
//     → for each event: event rules fire at once; clear types resolve
//     → every state change, in one store transaction with the series state: the `alerts` row, the
//       change (its stream sequence number), one outbox row per matching webhook target
//     → after the commit: outbox kicked, stream listeners told, changes written to InfluxDB
//   tick()           wall clock, every alerts.checkIntervalMs: offline rules, autoResolveAfter
//   ack / resolve    operators, through the API
//
// Nothing fires twice for one episode: the series state (phase, alert id) is committed with the change,
// so a restart continues where it stopped, and an event that already fired its rule (same event id)
// does not fire it again.
import { createHash } from 'node:crypto';
import type { Batch, DeviceEvent, MetricValue, Reading } from '@citysense/proto';
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { CloudConfig } from '../config/schema.ts';
import type { WebhookOutbox } from '../delivery/outbox.ts';
import { targetMatches } from '../delivery/targets.ts';
import { CloudError } from '../errors.ts';
import type { WriteOutcome } from '../ingest/write.ts';
import { stepRate, stepThreshold, matches, type SeriesState, type Step } from './evaluate.ts';
import { alertChangeLine } from './influx.ts';
import type { AlertMetrics } from './metrics.ts';
import type { EventRuleT, OfflineRuleT, RateRuleT, Rule, ThresholdRuleT } from './rules.ts';
import { AlertStateStore, isIdleSeries, type AlertFilter, type AlertRow, type AlertState, type DeviceSeen } from './state.ts';
import type { CloudStore } from '../store/db.ts';

/** The events an operator platform's online/offline report becomes (edge/src/inputs/http-push/). */
export const PLATFORM_OFFLINE = 'device_offline';
export const PLATFORM_ONLINE = 'device_online';

/** The body of a webhook, an SSE `data:` and the source of an `alerts` point: one state change. */
export interface AlertChangeBody {
  id: string;
  event_id: string;
  rule: string;
  state: AlertState;
  severity: string;
  category: string;
  device_id: string;
  district: string;
  family: string | null;
  value: unknown;
  threshold: unknown;
  started_at: number;
  ts: number;
  /** Why: "condition", "condition cleared", "event", "clear event", "offline", "reporting again", "operator", "auto". */
  reason: string;
  /** The operator who acknowledged or resolved. */
  by?: string;
  description?: string;
  /** Event rules: the event's type and attrs (e.g. the fire zone), and its id. */
  type?: string;
  attrs?: Record<string, string>;
  source_event_id?: string;
  /** The event that caused this change (the firing event, or the clear event). */
  cause_event_id?: string;
  flapping: boolean;
}

/** Event attribute by which an edge reports the webhook targets it already notified of that event. */
export const EDGE_NOTIFIED_ATTR = 'edge_notified';

export interface AlertEngineDeps {
  store: CloudStore;
  outbox: WebhookOutbox;
  metrics: AlertMetrics;
  rules: readonly Rule[];
  config: CloudConfig['alerts'];
  log: Logger;
  now: () => number;
  writeInflux: (lines: string) => Promise<WriteOutcome>;
}

interface Series {
  rule: Rule;
  deviceId: string;
  subject: string;
  state: SeriesState;
  /** The store has a row for it (an idle series has none: see persist()). */
  stored: boolean;
}

/** What one batch's evaluation collects, written once at its end. */
interface BatchCtx {
  receivedAt: number;
  touched: Set<Series>;
  changes: number;
  /** Devices whose last-heard time moved (one store write each, not one per reading). */
  heard: Set<string>;
  /** Devices whose offline series were already looked at in this batch. */
  offlineChecked: Set<string>;
}

interface Cause {
  ts: number;
  value?: unknown;
  reason: string;
  by?: string | undefined;
  causeEventId?: string | undefined;
}

const INFLUX_RETRY_MS = 5_000;
const INFLUX_CHUNK = 1_000;

const hash = (...parts: (string | number)[]) => createHash('sha256').update(parts.join('\0')).digest('hex');
const seriesKey = (rule: string, deviceId: string, subject: string) => `${rule}\0${deviceId}\0${subject}`;

export class AlertEngine {
  readonly state: AlertStateStore;
  private readonly rules: Map<string, Rule>;
  private readonly readingRules: (ThresholdRuleT | RateRuleT)[];
  /** readingRules that can match a family, in rule order: most rules name one, so most are skipped. */
  private readonly readingRulesByFamily = new Map<string, (ThresholdRuleT | RateRuleT)[]>();
  private readonly offlineRules: OfflineRuleT[];
  private readonly eventRules: EventRuleT[];
  private readonly series = new Map<string, Series>();
  /** The same series without a subject (reading and offline rules), by device then rule: looked up per reading without building a key string. */
  private readonly plainSeries = new Map<string, Map<Rule, Series>>();
  private devices = new Map<string, DeviceSeen>();
  private readonly listeners = new Set<() => void>();
  private tickTimer: NodeJS.Timeout | undefined;
  private influxTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  /** A transaction failed after the in-memory state changed: reload before the next evaluation. */
  private stale = false;

  constructor(private readonly deps: AlertEngineDeps) {
    this.state = new AlertStateStore(deps.store);
    this.rules = new Map(deps.rules.map((r) => [r.id, r]));
    this.readingRules = deps.rules.filter((r): r is ThresholdRuleT | RateRuleT => r.kind === 'threshold' || r.kind === 'rate');
    this.offlineRules = deps.rules.filter((r): r is OfflineRuleT => r.kind === 'offline');
    this.eventRules = deps.rules.filter((r): r is EventRuleT => r.kind === 'event');
    this.reload();
  }

  get ruleList(): Rule[] {
    return [...this.rules.values()];
  }

  /** (Re)reads series and devices from the store: at start, and after a transaction that failed. */
  private reload(): void {
    this.stale = false;
    this.series.clear();
    this.plainSeries.clear();
    for (const s of this.state.loadSeries()) {
      const rule = this.rules.get(s.rule);
      // A rule removed from the config: its series are forgotten (its open alerts stay listed, resolvable).
      if (rule) this.addSeries(seriesKey(s.rule, s.deviceId, s.subject), { rule, deviceId: s.deviceId, subject: s.subject, state: s.state, stored: true });
    }
    this.devices = this.state.loadDevices();
  }

  start(): void {
    this.tickTimer = setInterval(() => this.tick(), this.deps.config.checkIntervalMs);
    this.tickTimer.unref();
    this.flushInflux();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.tickTimer);
    clearTimeout(this.influxTimer);
    this.listeners.clear();
    await this.flushing;
  }

  /** Stream listeners: called after each commit that recorded state changes. */
  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  // ---- input -------------------------------------------------------------------------------------

  /**
   * Evaluates a first-time batch (once per batch, after InfluxDB accepted it). Standalone (tests, tools)
   * it commits its own transaction and never throws: a failure is logged and the state reloaded.
   * Inside an outer transaction (`inTransaction`: ingest's onBatchStored, which commits our changes with
   * the batch's seq mark) a failure is thrown, so that the outer transaction rolls back and the edge sends
   * the batch again; the in-memory state is reloaded before the next evaluation. The outbox, the stream
   * and InfluxDB hear of the changes after the current task, i.e. after the outer commit.
   */
  onBatch(batch: Pick<Batch, 'readings' | 'events'> & Partial<Pick<Batch, 'edgeId' | 'seq'>>, meta: { receivedAt?: number; inTransaction?: boolean } = {}): void {
    if (this.closed) return;
    if (this.stale) this.reload();
    const receivedAt = meta.receivedAt ?? this.deps.now();
    let changes = 0;
    try {
      changes = this.deps.store.transaction(() => {
        const ctx: BatchCtx = { receivedAt, touched: new Set(), changes: 0, heard: new Set(), offlineChecked: new Set() };
        const readings = [...batch.readings].sort((a, b) => a.ts - b.ts);
        for (const r of readings) this.reading(r, ctx);
        const events = [...batch.events].sort((a, b) => a.ts - b.ts);
        for (const e of events) this.event(e, ctx);
        for (const s of ctx.touched) this.persist(s);
        for (const id of ctx.heard) this.state.putDevice(id, this.devices.get(id)!);
        return ctx.changes;
      });
    } catch (err) {
      this.deps.log.error({ err, edge: batch.edgeId, seq: batch.seq }, 'alert engine: evaluating a batch failed');
      this.stale = true;
      if (meta.inTransaction) throw err;
      return;
    }
    if (changes > 0) {
      if (meta.inTransaction) queueMicrotask(() => this.afterCommit());
      else this.afterCommit();
    }
  }

  /** ingest's onBatchStored listener: evaluates what InfluxDB stored of a first-time batch. */
  onStoredBatch(batch: Batch, info: { readings: readonly { reading: Reading }[]; events: readonly { event: DeviceEvent }[]; nowMs: number; receivedAtMs?: number }): void {
    this.onBatch(
      { edgeId: batch.edgeId, seq: batch.seq, readings: info.readings.map((r) => r.reading), events: info.events.map((e) => e.event) },
      { receivedAt: info.receivedAtMs ?? info.nowMs, inTransaction: true },
    );
  }

  private addSeries(key: string, s: Series): void {
    this.series.set(key, s);
    if (s.subject !== '') return;
    let byRule = this.plainSeries.get(s.deviceId);
    if (!byRule) this.plainSeries.set(s.deviceId, (byRule = new Map()));
    byRule.set(s.rule, s);
  }

  private getSeries(rule: Rule, deviceId: string, subject: string, create: 'always' | 'bounded'): Series | undefined {
    const key = seriesKey(rule.id, deviceId, subject);
    let s = this.series.get(key);
    if (!s) {
      if (create === 'bounded' && this.series.size >= this.deps.config.maxSeries) {
        this.deps.metrics.seriesDropped.inc();
        return undefined;
      }
      s = { rule, deviceId, subject, state: { phase: 'ok', lastTs: -Infinity }, stored: false };
      this.addSeries(key, s);
    }
    return s;
  }

  /** Writes a series' state in the current transaction; an idle series without a row needs no write. */
  private persist(s: Series): void {
    const idle = isIdleSeries(s.state);
    if (idle && !s.stored) return;
    this.state.putSeries(s.rule.id, s.deviceId, s.subject, s.state);
    s.stored = !idle;
  }

  private rulesForFamily(family: string): (ThresholdRuleT | RateRuleT)[] {
    let rules = this.readingRulesByFamily.get(family);
    if (!rules) {
      rules = this.readingRules.filter((rule) => !rule.match.family || rule.match.family.includes(family as never));
      this.readingRulesByFamily.set(family, rules);
    }
    return rules;
  }

  private reading(r: Reading, ctx: BatchCtx): void {
    this.heard(r.deviceId, r.family, r.tags, r.ts, ctx);
    // Only a device's first reading of the batch (in time order) can find its offline series not ok:
    // that reading sets them ok, and nothing in a batch makes them fire again.
    if (this.offlineRules.length && !ctx.offlineChecked.has(r.deviceId)) {
      ctx.offlineChecked.add(r.deviceId);
      for (const rule of this.offlineRules) {
        const s = this.plainSeries.get(r.deviceId)?.get(rule);
        if (!s || s.state.phase === 'ok') continue;
        ctx.touched.add(s);
        if (s.state.phase === 'latched') s.state.phase = 'ok';
        else if (s.state.phase === 'firing') ctx.changes += this.resolveSeries(s, { ts: r.ts, value: 0, reason: 'reporting again' }, ctx.receivedAt);
      }
    }
    const plain = this.plainSeries.get(r.deviceId);
    for (const rule of this.rulesForFamily(r.family)) {
      const v = r.values[rule.metric];
      if (v === undefined || !matches(rule.match, r.deviceId, r.family, r.tags)) continue;
      if (rule.kind === 'rate' && typeof v !== 'number') continue;
      const existing = plain?.get(rule);
      const s = existing ?? this.getSeries(rule, r.deviceId, '', 'bounded');
      if (!s || r.ts < s.state.lastTs) continue; // untracked, or older than what this series has seen
      s.state.lastTs = r.ts;
      const clearFor = Math.max(rule.kind === 'threshold' ? rule.clearFor : 0, s.state.flapping ? this.deps.config.flapping.quietMs : 0);
      const step: Step =
        rule.kind === 'threshold'
          ? stepThreshold(rule, s.state, r.ts, v, clearFor)
          : stepRate(rule, s.state, r.ts, v as number, this.deps.config.maxRateSamples, clearFor);
      ctx.touched.add(s);
      if (step.kind === 'fire') {
        ctx.changes += this.fire(s, { ts: r.ts, value: step.value, threshold: step.threshold, startedAt: step.startedAt, family: r.family, tags: r.tags ?? {} }, ctx.receivedAt);
      } else if (step.kind === 'resolve') {
        ctx.changes += this.resolveSeries(s, { ts: r.ts, value: step.value, reason: 'condition cleared' }, ctx.receivedAt);
      }
    }
  }

  private heard(deviceId: string, family: string, tags: Record<string, string> | undefined, ts: number, ctx: BatchCtx): void {
    const d = this.devices.get(deviceId);
    if (d && d.lastTs >= ts) return;
    if (!d && this.devices.size >= this.deps.config.maxDevices) return; // offline rules will not know this device
    this.devices.set(deviceId, { family, tags: tags ?? d?.tags ?? {}, lastTs: ts });
    ctx.heard.add(deviceId);
  }

  /**
   * An operator platform's word on a device (CTWing deviceOnlineOfflineReport, OneNET type 2; issue 18):
   * `device_offline` fires the device's offline rules at once, without waiting for the silence, and
   * `device_online` resolves them, as a reading does. The platform spoke, not the device: an offline
   * report does not count as hearing from it.
   */
  private platformStatus(e: DeviceEvent, ctx: BatchCtx): void {
    const offline = e.type === PLATFORM_OFFLINE;
    if (!offline) this.heard(e.deviceId, e.family, e.tags, e.ts, ctx);
    for (const rule of this.offlineRules) {
      if (!matches(rule.match, e.deviceId, e.family, e.tags)) continue;
      const existing = this.plainSeries.get(e.deviceId)?.get(rule);
      if (offline) {
        if (existing && existing.state.phase !== 'ok') continue;
        const s = existing ?? this.getSeries(rule, e.deviceId, '', 'always')!;
        ctx.touched.add(s);
        ctx.changes += this.fire(s, { ts: e.ts, value: 0, threshold: 0, startedAt: e.ts, family: e.family, tags: e.tags ?? {}, type: e.type, attrs: e.attrs, sourceEventId: e.id }, ctx.receivedAt);
      } else if (existing && existing.state.phase !== 'ok') {
        ctx.touched.add(existing);
        if (existing.state.phase === 'latched') existing.state.phase = 'ok';
        else ctx.changes += this.resolveSeries(existing, { ts: e.ts, value: 0, reason: 'reporting again' }, ctx.receivedAt);
      }
    }
  }

  private event(e: DeviceEvent, ctx: BatchCtx): void {
    if (e.type === PLATFORM_OFFLINE || e.type === PLATFORM_ONLINE) this.platformStatus(e, ctx);
    else this.heard(e.deviceId, e.family, e.tags, e.ts, ctx);
    // The edge says which targets it already notified of this event: remembered before anything is enqueued.
    const notified = e.attrs?.[EDGE_NOTIFIED_ATTR];
    if (notified) for (const t of notified.split(',').map((x) => x.trim()).filter(Boolean)) this.state.putEdgeNotified(t, e.id, this.deps.now());
    for (const rule of this.eventRules) {
      const fires = rule.types.includes(e.type);
      const clearTypes = rule.clearTypes ?? rule.types.map((t) => `${t}_cleared`);
      const clears = clearTypes.includes(e.type);
      if ((!fires && !clears) || !matches(rule.match, e.deviceId, e.family, e.tags)) continue;
      const subject = rule.keyAttrs.map((k) => e.attrs?.[k] ?? '').join('|');
      if (fires) {
        if (this.state.firedForEvent(rule.id, e.id)) continue; // this very event already fired the rule
        const s = this.getSeries(rule, e.deviceId, subject, 'always')!;
        ctx.touched.add(s);
        s.state.lastTs = Math.max(s.state.lastTs, e.ts);
        if (s.state.phase === 'firing') continue; // the same episode: one alert per rule × device (× key)
        ctx.changes += this.fire(
          s,
          { ts: e.ts, value: null, threshold: null, startedAt: e.ts, family: e.family, tags: e.tags ?? {}, type: e.type, attrs: e.attrs, sourceEventId: e.id },
          ctx.receivedAt,
        );
      } else {
        // A clear event with the key attrs clears that key's alert; without them, every key of the device.
        const hasKey = rule.keyAttrs.length === 0 || rule.keyAttrs.some((k) => e.attrs?.[k] !== undefined);
        for (const s of this.series.values()) {
          if (s.rule !== rule || s.deviceId !== e.deviceId || (hasKey && s.subject !== subject)) continue;
          ctx.touched.add(s);
          if (s.state.phase === 'firing') ctx.changes += this.resolveSeries(s, { ts: e.ts, reason: 'clear event', causeEventId: e.id }, ctx.receivedAt);
          else if (s.state.phase === 'latched') s.state.phase = 'ok';
        }
      }
    }
  }

  /** Wall-clock checks: devices silent too long (offline rules) and event alerts past autoResolveAfter. */
  tick(): void {
    if (this.closed) return;
    if (this.stale) this.reload();
    const now = this.deps.now();
    let changes = 0;
    try {
      changes = this.deps.store.transaction(() => {
        let n = 0;
        const touched = new Set<Series>();
        for (const rule of this.offlineRules) {
          for (const [deviceId, d] of this.devices) {
            if (!matches(rule.match, deviceId, d.family, d.tags)) continue;
            const window = this.offlineWindow(rule, d.family);
            const silent = now - d.lastTs;
            const existing = this.series.get(seriesKey(rule.id, deviceId, ''));
            if (existing && existing.state.phase !== 'ok') continue;
            if (silent < window) continue;
            const s = this.getSeries(rule, deviceId, '', 'always')!;
            touched.add(s);
            n += this.fire(s, { ts: now, value: Math.round(silent / 1000), threshold: Math.round(window / 1000), startedAt: d.lastTs + window, family: d.family, tags: d.tags }, undefined);
          }
        }
        for (const s of this.series.values()) {
          const r = s.rule;
          if (r.kind !== 'event' || r.autoResolveAfter === undefined || s.state.phase !== 'firing') continue;
          if (now - (s.state.firedAt ?? now) < r.autoResolveAfter) continue;
          touched.add(s);
          n += this.resolveSeries(s, { ts: now, reason: 'auto' }, undefined);
        }
        for (const s of touched) this.persist(s);
        return n;
      });
    } catch (err) {
      this.deps.log.error({ err }, 'alert engine: periodic check failed');
      this.stale = true;
      return;
    }
    if (changes > 0) this.afterCommit();
  }

  offlineWindow(rule: OfflineRuleT, family: string): number {
    if (rule.after !== undefined) return rule.after;
    const expected = rule.expectedInterval ?? this.deps.config.expectedIntervalMs[family as keyof CloudConfig['alerts']['expectedIntervalMs']] ?? 60_000;
    return Math.round(rule.intervals * expected);
  }

  // ---- transitions ---------------------------------------------------------------------------------

  private fire(
    s: Series,
    f: { ts: number; value: unknown; threshold: unknown; startedAt: number; family: string; tags: Record<string, string>; type?: string; attrs?: Record<string, string>; sourceEventId?: string },
    receivedAt: number | undefined,
  ): number {
    const { flapping: fl } = this.deps.config;
    const firings = (s.state.firings ?? []).filter((t) => f.ts - t < fl.windowMs);
    firings.push(f.ts);
    s.state.firings = firings.slice(-fl.maxFirings);
    const flapping = s.state.firings.length >= fl.maxFirings;
    if (flapping && !s.state.flapping) this.deps.metrics.flapping.inc({ rule: s.rule.id });
    let id = `al_${hash(s.rule.id, s.deviceId, s.subject, f.startedAt, f.ts).slice(0, 24)}`;
    for (let i = 2; this.state.alertExists(id); i++) id = `al_${hash(s.rule.id, s.deviceId, s.subject, f.startedAt, f.ts, i).slice(0, 24)}`;
    Object.assign(s.state, { phase: 'firing', alertId: id, since: undefined, clearSince: undefined, flapping, firedAt: f.ts });
    const district = f.tags.district ?? '';
    this.state.insertAlert({
      id,
      rule: s.rule.id,
      device_id: s.deviceId,
      subject: s.subject,
      state: 'firing',
      category: s.rule.category,
      severity: s.rule.severity,
      district,
      family: f.family,
      started_at: f.startedAt,
      updated_at: f.ts,
      value: f.value,
      threshold: f.threshold,
      type: f.type ?? null,
      attrs: f.attrs ?? null,
      source_event_id: f.sourceEventId ?? null,
      flapping,
    });
    this.deps.metrics.fired.inc({ rule: s.rule.id, category: s.rule.category, severity: s.rule.severity });
    this.change(id, 'firing', { ts: f.ts, value: f.value, reason: f.type ? 'event' : s.rule.kind === 'offline' ? 'offline' : 'condition', causeEventId: f.sourceEventId }, receivedAt);
    return 1;
  }

  private resolveSeries(s: Series, cause: Cause, receivedAt: number | undefined): number {
    const id = s.state.alertId;
    Object.assign(s.state, { phase: 'ok', alertId: undefined, since: undefined, clearSince: undefined, flapping: false, firedAt: undefined });
    if (s.rule.kind === 'rate') s.state.samples = s.state.samples?.slice(-1);
    if (!id) return 0;
    const a = this.state.getAlert(id);
    if (!a || a.state === 'resolved') return 0;
    this.change(id, 'resolved', cause, receivedAt);
    return 1;
  }

  /** Records one state change: the alert row, the change (stream seq), the outbox rows. In a transaction. */
  private change(alertId: string, state: AlertState, cause: Cause, receivedAt: number | undefined): void {
    this.state.updateAlert(alertId, { state, ts: cause.ts, value: state === 'firing' ? undefined : cause.value, by: cause.by, reason: cause.reason });
    const a = this.state.getAlert(alertId)!;
    const n = this.state.nextChangeNumber(alertId);
    const rule = this.rules.get(a.rule);
    const body: AlertChangeBody = {
      id: a.id,
      event_id: `ev_${hash(a.id, n, state).slice(0, 24)}`,
      rule: a.rule,
      state,
      severity: a.severity,
      category: a.category,
      device_id: a.device_id,
      district: a.district,
      family: a.family,
      value: cause.value === undefined ? a.value : cause.value,
      threshold: a.threshold,
      started_at: a.started_at,
      ts: cause.ts,
      reason: cause.reason,
      flapping: a.flapping,
    };
    if (cause.by) body.by = cause.by;
    if (rule?.description) body.description = rule.description;
    if (a.type) body.type = a.type;
    if (a.attrs) body.attrs = a.attrs;
    if (a.source_event_id) body.source_event_id = a.source_event_id;
    if (cause.causeEventId) body.cause_event_id = cause.causeEventId;
    const raw = JSON.stringify(body);
    this.state.insertChange(body.event_id, alertId, state, cause.ts, raw);
    this.deps.metrics.stateChanges.inc({ state });
    const outbox = this.deps.outbox;
    for (const targetId of outbox.targetIds) {
      const target = outbox.target(targetId)!;
      if (!targetMatches(target, body)) continue;
      const item = { eventId: body.event_id, alertId, targetId, body: raw, receivedAt };
      if (cause.causeEventId && this.state.edgeNotified(targetId, cause.causeEventId)) outbox.recordEdgeDelivered(item);
      else outbox.enqueue(item);
    }
  }

  private afterCommit(): void {
    this.deps.outbox.kick();
    for (const fn of this.listeners) {
      try {
        fn();
      } catch (err) {
        this.deps.log.error({ err }, 'alert stream listener failed');
      }
    }
    this.flushInflux();
  }

  // ---- operators -----------------------------------------------------------------------------------

  /** firing → acknowledged. Acknowledging an acknowledged alert changes nothing; a resolved one is refused. */
  acknowledge(id: string, by: string, alsoInTransaction?: (a: AlertRow) => void): AlertRow {
    if (this.stale) this.reload();
    const a = this.state.getAlert(id);
    if (!a) throw new CloudError('ALERT_NOT_FOUND', id.slice(0, 100));
    if (a.state === 'resolved') throw new CloudError('ALERT_RESOLVED', id);
    if (a.state === 'acknowledged') return a;
    this.guarded(() => {
      this.change(id, 'acknowledged', { ts: this.deps.now(), by, reason: 'operator' }, undefined);
      alsoInTransaction?.(a);
    });
    this.afterCommit();
    return this.state.getAlert(id)!;
  }

  /**
   * → resolved by an operator. If the rule's condition still holds, its series is latched: it does not
   * fire again until the clear condition has been seen (or the device reported, for offline rules).
   */
  resolve(id: string, by: string, alsoInTransaction?: (a: AlertRow) => void): AlertRow {
    if (this.stale) this.reload();
    const a = this.state.getAlert(id);
    if (!a) throw new CloudError('ALERT_NOT_FOUND', id.slice(0, 100));
    if (a.state === 'resolved') return a;
    this.guarded(() => {
      const s = this.series.get(seriesKey(a.rule, a.device_id, a.subject));
      if (s && s.state.alertId === id) {
        const latch = s.rule.kind !== 'event';
        Object.assign(s.state, { phase: latch ? 'latched' : 'ok', alertId: undefined, since: undefined, clearSince: undefined, flapping: false, firedAt: undefined });
        this.persist(s);
      }
      this.change(id, 'resolved', { ts: this.deps.now(), by, reason: 'operator' }, undefined);
      alsoInTransaction?.(a);
    });
    this.afterCommit();
    return this.state.getAlert(id)!;
  }

  /** One transaction; if it fails, the in-memory state is reloaded before the next use. */
  private guarded(fn: () => void): void {
    try {
      this.deps.store.transaction(fn);
    } catch (err) {
      this.stale = true;
      throw err;
    }
  }

  // ---- edge-local alerting -------------------------------------------------------------------------

  /**
   * The edge already notified `targetId` of the event `sourceEventId` (its DeviceEvent.id): the cloud will
   * not enqueue a webhook to that target for a state change caused by that event. Durable; idempotent.
   */
  markEdgeDelivered(targetId: string, sourceEventId: string): void {
    this.state.putEdgeNotified(targetId, sourceEventId, this.deps.now());
  }

  edgeDelivered(targetId: string, sourceEventId: string): boolean {
    return this.state.edgeNotified(targetId, sourceEventId);
  }

  // ---- reading -------------------------------------------------------------------------------------

  get(id: string): AlertRow | undefined {
    return this.state.getAlert(id);
  }

  list(f: AlertFilter): AlertRow[] {
    return this.state.list(f);
  }

  changesAfter(seq: number, limit: number): { seq: number; body: string }[] {
    return this.state.changesAfter(seq, limit);
  }

  changesOf(alertId: string): AlertChangeBody[] {
    return this.state.changesOf(alertId).map((c) => JSON.parse(c.body) as AlertChangeBody);
  }

  // ---- InfluxDB ------------------------------------------------------------------------------------

  /** Writes unwritten changes to the `alerts` measurement, in order; retried while InfluxDB is away. */
  flushInflux(): void {
    if (this.flushing || this.closed) return;
    const p = this.writeUnwritten();
    this.flushing = p;
    // Cleared in a later microtask, so never before the assignment above, even if nothing was to be written.
    void p.finally(() => {
      if (this.flushing === p) this.flushing = undefined;
    });
  }

  private async writeUnwritten(): Promise<void> {
    try {
      for (;;) {
        const rows = this.state.unwritten(INFLUX_CHUNK);
        if (rows.length === 0) return;
        const lines = rows.map((r) => alertChangeLine(JSON.parse(r.body) as AlertChangeBody, r.seq)).join('\n');
        const outcome = await this.deps.writeInflux(lines);
        if (outcome.kind === 'unavailable') {
          this.deps.metrics.influxWriteFailures.inc();
          this.deps.log.warn({ error: outcome.message }, `alert changes not written to InfluxDB; retrying in ${INFLUX_RETRY_MS / 1000} s`);
          this.retryInfluxLater();
          return;
        }
        // 'refused' will not get better by retrying (a field type conflict): counted and passed over.
        if (outcome.kind === 'refused') {
          this.deps.metrics.influxWriteFailures.inc();
          this.deps.log.warn({ error: outcome.message }, 'InfluxDB refused alert change points');
        }
        if (this.closed) return;
        this.state.markWritten(rows[rows.length - 1]!.seq);
      }
    } catch (err) {
      this.deps.log.error({ err }, 'writing alert changes to InfluxDB failed');
      this.retryInfluxLater();
    }
  }

  private retryInfluxLater(): void {
    if (this.closed) return;
    clearTimeout(this.influxTimer);
    this.influxTimer = setTimeout(() => this.flushInflux(), INFLUX_RETRY_MS);
    this.influxTimer.unref();
  }

  /** Resolves when every recorded change is in InfluxDB (tests, graceful close). */
  async influxIdle(): Promise<void> {
    while (this.flushing) await this.flushing.then(() => new Promise((r) => setImmediate(r)));
  }
}

export type { MetricValue };
