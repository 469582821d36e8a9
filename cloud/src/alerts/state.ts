// The alert engine's durable state in the cloud store (store/db.ts): series state per rule × device, one
// row per alert (episode), every state change with its stream sequence number, the devices last heard of
// (offline rules) and the (target, event) pairs the edge already notified.
import type { CloudStore } from '../store/db.ts';
import type { SeriesState } from './evaluate.ts';

export const ALERT_STATES = ['firing', 'acknowledged', 'resolved'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

const MIGRATION = `
  CREATE TABLE alert_series (
    rule TEXT NOT NULL, device_id TEXT NOT NULL, subject TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (rule, device_id, subject)
  );
  CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL, device_id TEXT NOT NULL, subject TEXT NOT NULL,
    state TEXT NOT NULL, category TEXT NOT NULL, severity TEXT NOT NULL, district TEXT NOT NULL, family TEXT,
    started_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    value TEXT, threshold TEXT, type TEXT, attrs TEXT, source_event_id TEXT,
    acked_by TEXT, acked_at INTEGER, resolved_by TEXT, resolved_at INTEGER, resolved_reason TEXT,
    flapping INTEGER NOT NULL DEFAULT 0, changes INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX alerts_state ON alerts (state, started_at);
  CREATE INDEX alerts_started ON alerts (started_at);
  CREATE INDEX alerts_source_event ON alerts (rule, source_event_id);
  CREATE TABLE alert_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    alert_id TEXT NOT NULL,
    state TEXT NOT NULL,
    ts INTEGER NOT NULL,
    body TEXT NOT NULL,
    influx_written INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX alert_changes_alert ON alert_changes (alert_id);
  CREATE INDEX alert_changes_unwritten ON alert_changes (influx_written, seq);
  CREATE TABLE alert_devices (
    device_id TEXT PRIMARY KEY, family TEXT NOT NULL, tags TEXT NOT NULL, last_ts INTEGER NOT NULL
  );
  CREATE TABLE edge_notified (
    target_id TEXT NOT NULL, source_event_id TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (target_id, source_event_id)
  );
`;

/** An alert as the API lists it (one episode of one rule × device). */
export interface AlertRow {
  id: string;
  rule: string;
  device_id: string;
  subject: string;
  state: AlertState;
  category: string;
  severity: string;
  district: string;
  family: string | null;
  started_at: number;
  updated_at: number;
  value: unknown;
  threshold: unknown;
  type: string | null;
  attrs: Record<string, string> | null;
  source_event_id: string | null;
  acked_by: string | null;
  acked_at: number | null;
  resolved_by: string | null;
  resolved_at: number | null;
  resolved_reason: string | null;
  flapping: boolean;
  changes: number;
}

export interface DeviceSeen {
  family: string;
  tags: Record<string, string>;
  lastTs: number;
}

export interface AlertFilter {
  states?: string[] | undefined;
  categories?: string[] | undefined;
  districts?: string[] | undefined;
  rule?: string | undefined;
  device?: string | undefined;
  from?: number | undefined;
  to?: number | undefined;
  /** Rows started before this alert (paging: started_at, id descending). */
  before?: { startedAt: number; id: string } | undefined;
  limit: number;
}

/** An idle series has no row: nothing to remember beyond "ok". */
export function isIdleSeries(s: SeriesState): boolean {
  return s.phase === 'ok' && !s.samples?.length && !s.firings?.length;
}

// A rate series carries up to alerts.maxRateSamples [ts, value] samples and is written after every batch
// that touched it. A sample never changes once taken, so its JSON text is kept on it (a named property of
// the array, which JSON.stringify does not see) and only new samples are stringified.
type Sample = [number, number] & { json?: string };

/** JSON.stringify(s), with the samples' text reused. */
export function seriesJson(s: SeriesState): string {
  const samples = s.samples as Sample[] | undefined;
  if (!samples?.length) return JSON.stringify(s);
  const rest = JSON.stringify({ ...s, samples: undefined });
  let out = `${rest.slice(0, -1)}${rest.length > 2 ? ',' : ''}"samples":[`;
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i]!;
    out += (i ? ',' : '') + (x.json ??= JSON.stringify(x));
  }
  return `${out}]}`;
}

const j = (v: unknown) => (v === undefined ? null : JSON.stringify(v));
const parse = (s: unknown) => (typeof s === 'string' ? JSON.parse(s) : null);

function toAlert(r: Record<string, unknown>): AlertRow {
  return {
    ...(r as unknown as AlertRow),
    value: parse(r.value),
    threshold: parse(r.threshold),
    attrs: parse(r.attrs),
    flapping: r.flapping === 1,
  };
}

export class AlertStateStore {
  private readonly q;

  constructor(readonly store: CloudStore) {
    store.migrate('alerts-v1', MIGRATION);
    const db = store.db;
    this.q = {
      allSeries: db.prepare('SELECT rule, device_id, subject, data FROM alert_series'),
      putSeries: db.prepare('INSERT INTO alert_series (rule, device_id, subject, data) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET data = excluded.data'),
      delSeries: db.prepare('DELETE FROM alert_series WHERE rule = ? AND device_id = ? AND subject = ?'),
      insertAlert: db.prepare(
        `INSERT INTO alerts (id, rule, device_id, subject, state, category, severity, district, family, started_at, updated_at, value, threshold, type, attrs, source_event_id, flapping, changes)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
      ),
      updateAlert: db.prepare(
        `UPDATE alerts SET state = ?, updated_at = ?, value = COALESCE(?, value), acked_by = COALESCE(?, acked_by), acked_at = COALESCE(?, acked_at),
           resolved_by = COALESCE(?, resolved_by), resolved_at = COALESCE(?, resolved_at), resolved_reason = COALESCE(?, resolved_reason) WHERE id = ?`,
      ),
      bumpChanges: db.prepare('UPDATE alerts SET changes = changes + 1 WHERE id = ? RETURNING changes'),
      getAlert: db.prepare('SELECT * FROM alerts WHERE id = ?'),
      alertExists: db.prepare('SELECT 1 FROM alerts WHERE id = ?'),
      firedForEvent: db.prepare('SELECT 1 FROM alerts WHERE rule = ? AND source_event_id = ?'),
      insertChange: db.prepare('INSERT INTO alert_changes (event_id, alert_id, state, ts, body) VALUES (?, ?, ?, ?, ?)'),
      changesAfter: db.prepare('SELECT seq, body FROM alert_changes WHERE seq > ? ORDER BY seq LIMIT ?'),
      lastSeq: db.prepare('SELECT COALESCE(MAX(seq), 0) AS seq FROM alert_changes'),
      changesOf: db.prepare('SELECT seq, body FROM alert_changes WHERE alert_id = ? ORDER BY seq'),
      unwritten: db.prepare('SELECT seq, body FROM alert_changes WHERE influx_written = 0 ORDER BY seq LIMIT ?'),
      markWritten: db.prepare('UPDATE alert_changes SET influx_written = 1 WHERE seq <= ? AND influx_written = 0'),
      allDevices: db.prepare('SELECT device_id, family, tags, last_ts FROM alert_devices'),
      putDevice: db.prepare('INSERT INTO alert_devices (device_id, family, tags, last_ts) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET family = excluded.family, tags = excluded.tags, last_ts = excluded.last_ts'),
      active: db.prepare(`SELECT state, COUNT(*) AS n FROM alerts WHERE state != 'resolved' GROUP BY state`),
      putEdge: db.prepare('INSERT OR IGNORE INTO edge_notified (target_id, source_event_id, at) VALUES (?, ?, ?)'),
      getEdge: db.prepare('SELECT 1 FROM edge_notified WHERE target_id = ? AND source_event_id = ?'),
    };
  }

  loadSeries(): { rule: string; deviceId: string; subject: string; state: SeriesState }[] {
    return (this.q.allSeries.all() as { rule: string; device_id: string; subject: string; data: string }[]).map((r) => ({
      rule: r.rule,
      deviceId: r.device_id,
      subject: r.subject,
      state: JSON.parse(r.data) as SeriesState,
    }));
  }

  /** Writes a series' state, or deletes its row when it is idle (see isIdleSeries). */
  putSeries(rule: string, deviceId: string, subject: string, s: SeriesState): void {
    if (isIdleSeries(s)) this.q.delSeries.run(rule, deviceId, subject);
    else this.q.putSeries.run(rule, deviceId, subject, seriesJson(s));
  }

  loadDevices(): Map<string, DeviceSeen> {
    const m = new Map<string, DeviceSeen>();
    for (const r of this.q.allDevices.all() as { device_id: string; family: string; tags: string; last_ts: number }[]) {
      m.set(r.device_id, { family: r.family, tags: JSON.parse(r.tags), lastTs: r.last_ts });
    }
    return m;
  }

  putDevice(deviceId: string, d: DeviceSeen): void {
    this.q.putDevice.run(deviceId, d.family, JSON.stringify(d.tags), d.lastTs);
  }

  insertAlert(a: Omit<AlertRow, 'acked_by' | 'acked_at' | 'resolved_by' | 'resolved_at' | 'resolved_reason' | 'changes'>): void {
    this.q.insertAlert.run(
      a.id, a.rule, a.device_id, a.subject, a.state, a.category, a.severity, a.district, a.family, a.started_at, a.updated_at,
      j(a.value), j(a.threshold), a.type, j(a.attrs ?? undefined), a.source_event_id, a.flapping ? 1 : 0,
    );
  }

  updateAlert(id: string, u: { state: AlertState; ts: number; value?: unknown; by?: string | undefined; reason?: string | undefined }): void {
    const acked = u.state === 'acknowledged';
    const resolved = u.state === 'resolved';
    this.q.updateAlert.run(
      u.state, u.ts, j(u.value),
      acked ? (u.by ?? null) : null, acked ? u.ts : null,
      resolved ? (u.by ?? null) : null, resolved ? u.ts : null, resolved ? (u.reason ?? null) : null,
      id,
    );
  }

  /** The number of this change within its alert (1 for the firing). */
  nextChangeNumber(alertId: string): number {
    return Number((this.q.bumpChanges.get(alertId) as { changes: number }).changes);
  }

  alertExists(id: string): boolean {
    return this.q.alertExists.get(id) !== undefined;
  }

  firedForEvent(rule: string, sourceEventId: string): boolean {
    return this.q.firedForEvent.get(rule, sourceEventId) !== undefined;
  }

  getAlert(id: string): AlertRow | undefined {
    const r = this.q.getAlert.get(id) as Record<string, unknown> | undefined;
    return r ? toAlert(r) : undefined;
  }

  insertChange(eventId: string, alertId: string, state: AlertState, ts: number, body: string): number {
    return Number(this.q.insertChange.run(eventId, alertId, state, ts, body).lastInsertRowid);
  }

  changesAfter(seq: number, limit: number): { seq: number; body: string }[] {
    return this.q.changesAfter.all(seq, limit) as { seq: number; body: string }[];
  }

  changesOf(alertId: string): { seq: number; body: string }[] {
    return this.q.changesOf.all(alertId) as { seq: number; body: string }[];
  }

  lastSeq(): number {
    return Number((this.q.lastSeq.get() as { seq: number }).seq);
  }

  unwritten(limit: number): { seq: number; body: string }[] {
    return this.q.unwritten.all(limit) as { seq: number; body: string }[];
  }

  markWritten(uptoSeq: number): void {
    this.q.markWritten.run(uptoSeq);
  }

  active(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.q.active.all() as { state: string; n: number }[]) out[r.state] = Number(r.n);
    return out;
  }

  putEdgeNotified(targetId: string, sourceEventId: string, at: number): void {
    this.q.putEdge.run(targetId, sourceEventId, at);
  }

  edgeNotified(targetId: string, sourceEventId: string): boolean {
    return this.q.getEdge.get(targetId, sourceEventId) !== undefined;
  }

  list(f: AlertFilter): AlertRow[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    const inList = (col: string, vals: string[] | undefined) => {
      if (!vals?.length) return;
      where.push(`${col} IN (${vals.map(() => '?').join(', ')})`);
      args.push(...vals);
    };
    inList('state', f.states);
    inList('category', f.categories);
    inList('district', f.districts);
    if (f.rule) (where.push('rule = ?'), args.push(f.rule));
    if (f.device) (where.push('device_id = ?'), args.push(f.device));
    if (f.from !== undefined) (where.push('started_at >= ?'), args.push(f.from));
    if (f.to !== undefined) (where.push('started_at < ?'), args.push(f.to));
    if (f.before) (where.push('(started_at < ? OR (started_at = ? AND id < ?))'), args.push(f.before.startedAt, f.before.startedAt, f.before.id));
    const sql = `SELECT * FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at DESC, id DESC LIMIT ?`;
    return (this.store.db.prepare(sql).all(...args, f.limit) as Record<string, unknown>[]).map(toAlert);
  }
}
