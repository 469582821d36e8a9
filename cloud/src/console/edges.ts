// What the cloud knows of each edge, for GET /v1/edges (console: the Edges page). An edge tells the cloud
// nothing but its batches, so this is: the last first-time batch (cloud time, seq, lane, readings and
// events in it, kept durably in the store, written inside the batch's own transaction through
// app.ingest.onBatchStored), the highest processed seq (ingest's seq marks), the loss it reported
// (ingest's drop totals), and the devices the registry assigns it. The edge's own disk-queue depth is
// not sent to the cloud (docs/console.md says what is missing).
import type { CloudStore } from '../store/db.ts';

export const EDGE_CONTACT_MIGRATION = 'console-edge-contact-v1';

export interface EdgeContact {
  edge: string;
  last_batch_at: number;
  last_seq: number;
  last_lane: string;
  last_readings: number;
  last_events: number;
  batches: number;
}

export interface EdgeView {
  id: string;
  /** In auth.edges (false: known only from stored data, e.g. removed from the config since). */
  configured: boolean;
  /** up: a batch within console.edgeStaleAfterMs; down: not since; never: no batch since the cloud has kept count. */
  link: 'up' | 'down' | 'never';
  last_batch_at: number | null;
  last_seq: number | null;
  last_lane: string | null;
  last_batch_readings: number | null;
  last_batch_events: number | null;
  /** First-time batches counted since this store began keeping them. */
  batches: number;
  /** Highest seq marked processed (ingest seq marks; replays included). */
  max_seq_processed: number | null;
  devices_assigned: number;
  drops: { class: string; reason: string; count: number; last_report_at: number }[];
  drops_total: number;
  /** Not sent by edges today (docs/console.md). */
  queue_depth: null;
}

export class EdgeContacts {
  private readonly upsert;
  private readonly all;

  constructor(private readonly store: CloudStore) {
    store.migrate(
      EDGE_CONTACT_MIGRATION,
      `CREATE TABLE console_edge_contact (
         edge TEXT PRIMARY KEY,
         last_batch_at INTEGER NOT NULL,
         last_seq INTEGER NOT NULL,
         last_lane TEXT NOT NULL,
         last_readings INTEGER NOT NULL,
         last_events INTEGER NOT NULL,
         batches INTEGER NOT NULL
       ) WITHOUT ROWID;`,
    );
    this.upsert = store.db.prepare(
      `INSERT INTO console_edge_contact (edge, last_batch_at, last_seq, last_lane, last_readings, last_events, batches) VALUES (?, ?, ?, ?, ?, ?, 1)
       ON CONFLICT (edge) DO UPDATE SET batches = batches + 1,
         last_seq = CASE WHEN excluded.last_batch_at >= last_batch_at THEN excluded.last_seq ELSE last_seq END,
         last_lane = CASE WHEN excluded.last_batch_at >= last_batch_at THEN excluded.last_lane ELSE last_lane END,
         last_readings = CASE WHEN excluded.last_batch_at >= last_batch_at THEN excluded.last_readings ELSE last_readings END,
         last_events = CASE WHEN excluded.last_batch_at >= last_batch_at THEN excluded.last_events ELSE last_events END,
         last_batch_at = max(last_batch_at, excluded.last_batch_at)`,
    );
    this.all = store.db.prepare('SELECT edge, last_batch_at, last_seq, last_lane, last_readings, last_events, batches FROM console_edge_contact');
  }

  /** One first-time batch; called inside the batch's store transaction (one upsert). */
  record(edge: string, seq: number, lane: string, readings: number, events: number, nowMs: number): void {
    this.upsert.run(edge, nowMs, seq, lane, readings, events);
  }

  list(): EdgeContact[] {
    return (this.all.all() as unknown as EdgeContact[]).map((r) => ({
      edge: String(r.edge),
      last_batch_at: Number(r.last_batch_at),
      last_seq: Number(r.last_seq),
      last_lane: String(r.last_lane),
      last_readings: Number(r.last_readings),
      last_events: Number(r.last_events),
      batches: Number(r.batches),
    }));
  }
}

function hasTable(store: CloudStore, name: string): boolean {
  return store.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

/** Every edge the config or the store knows, sorted by id. */
export function edgeViews(
  store: CloudStore,
  contacts: EdgeContacts,
  configured: readonly string[],
  edgeFor: (d: { edge: string | null; district: string }) => string | null,
  staleAfterMs: number,
  now: number,
): EdgeView[] {
  const ids = new Set(configured);
  const contact = new Map(contacts.list().map((c) => [c.edge, c]));
  for (const id of contact.keys()) ids.add(id);

  const maxSeq = new Map<string, number>();
  if (hasTable(store, 'ingest_seq_ranges')) {
    for (const r of store.db.prepare('SELECT edge, max(hi) AS hi FROM ingest_seq_ranges GROUP BY edge').all() as { edge: string; hi: number }[]) {
      maxSeq.set(String(r.edge), Number(r.hi));
      ids.add(String(r.edge));
    }
  }
  const drops = new Map<string, EdgeView['drops']>();
  if (hasTable(store, 'ingest_device_drops')) {
    const rows = store.db
      .prepare('SELECT edge, class, reason, sum(count) AS n, max(last_report_ms) AS at FROM ingest_device_drops GROUP BY edge, class, reason ORDER BY edge, class, reason')
      .all() as { edge: string; class: string; reason: string; n: number; at: number }[];
    for (const r of rows) {
      const list = drops.get(String(r.edge)) ?? [];
      list.push({ class: String(r.class), reason: String(r.reason), count: Number(r.n), last_report_at: Number(r.at) });
      drops.set(String(r.edge), list);
    }
  }
  const assigned = new Map<string, number>();
  if (hasTable(store, 'devices')) {
    // The edge serving a device: its own `edge`, else by district or the default (the registry's rule).
    const rows = store.db.prepare('SELECT edge, district, count(*) AS n FROM devices GROUP BY edge, district').all() as { edge: string | null; district: string; n: number }[];
    for (const r of rows) {
      const e = edgeFor({ edge: r.edge === null ? null : String(r.edge), district: String(r.district) });
      if (e !== null) assigned.set(e, (assigned.get(e) ?? 0) + Number(r.n));
    }
  }
  const configuredSet = new Set(configured);
  return [...ids].sort().map((id): EdgeView => {
    const c = contact.get(id);
    const d = drops.get(id) ?? [];
    return {
      id,
      configured: configuredSet.has(id),
      link: c === undefined ? 'never' : now - c.last_batch_at <= staleAfterMs ? 'up' : 'down',
      last_batch_at: c?.last_batch_at ?? null,
      last_seq: c?.last_seq ?? null,
      last_lane: c?.last_lane ?? null,
      last_batch_readings: c?.last_readings ?? null,
      last_batch_events: c?.last_events ?? null,
      batches: c?.batches ?? 0,
      max_seq_processed: maxSeq.get(id) ?? null,
      devices_assigned: assigned.get(id) ?? 0,
      drops: d,
      drops_total: d.reduce((s, x) => s + x.count, 0),
      queue_depth: null,
    };
  });
}
