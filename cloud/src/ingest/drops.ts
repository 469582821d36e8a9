// Loss the edges report (Batch.drops: what an edge had to drop, per device, data class and reason, e.g.
// its disk queue was full). Recorded from first-time batches only, so a replayed batch's report is not
// counted twice: exported as edge_dropped_total{edge,device,class,reason} and kept as durable totals per
// (edge, device, class, reason) in the store, for the API and for after a restart.
import type { DropReport } from '@citysense/proto';
import type { StatementSync } from 'node:sqlite';
import type { CloudStore } from '../store/db.ts';

export const DROPS_MIGRATION = 'ingest-device-drops-v1';

export interface DropTotal {
  edge: string;
  device: string;
  dataClass: string;
  reason: string;
  count: number;
  /** Oldest dropped reading's time over all reports (ms). */
  oldestTsMs: number;
  /** Cloud time of the last report (ms). */
  lastReportMs: number;
}

export class DropLedger {
  private readonly add: StatementSync;
  private readonly byDevice: StatementSync;

  constructor(store: CloudStore) {
    store.migrate(
      DROPS_MIGRATION,
      `CREATE TABLE ingest_device_drops (
         edge TEXT NOT NULL,
         device TEXT NOT NULL,
         class TEXT NOT NULL,
         reason TEXT NOT NULL,
         count INTEGER NOT NULL,
         oldest_ts_ms INTEGER NOT NULL,
         last_report_ms INTEGER NOT NULL,
         PRIMARY KEY (device, edge, class, reason)
       ) WITHOUT ROWID;`,
    );
    this.add = store.db.prepare(
      `INSERT INTO ingest_device_drops (edge, device, class, reason, count, oldest_ts_ms, last_report_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (device, edge, class, reason) DO UPDATE SET count = count + excluded.count,
         oldest_ts_ms = min(oldest_ts_ms, excluded.oldest_ts_ms), last_report_ms = excluded.last_report_ms`,
    );
    this.byDevice = store.db.prepare(
      'SELECT edge, device, class, reason, count, oldest_ts_ms, last_report_ms FROM ingest_device_drops WHERE device = ? ORDER BY edge, class, reason',
    );
  }

  /** Only reports with a positive count matter; the rest are ignored. */
  static useful(drops: readonly DropReport[] | undefined): DropReport[] {
    return (drops ?? []).filter((d) => Number.isSafeInteger(d.count) && d.count > 0);
  }

  /** Adds a first-time batch's reports; run inside the transaction that marks the batch. */
  record(edge: string, drops: readonly DropReport[], nowMs: number): void {
    for (const d of drops) this.add.run(edge, d.deviceId, d.dataClass, d.reason, d.count, d.oldestTsMs, nowMs);
  }

  /** Durable totals of one device, over every edge that reported it. */
  totals(device: string): DropTotal[] {
    return this.byDevice.all(device).map((r) => ({
      edge: String(r.edge),
      device: String(r.device),
      dataClass: String(r.class),
      reason: String(r.reason),
      count: Number(r.count),
      oldestTsMs: Number(r.oldest_ts_ms),
      lastReportMs: Number(r.last_report_ms),
    }));
  }
}
