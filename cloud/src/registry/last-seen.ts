// When the cloud last heard from each device (the newest reading or event time InfluxDB stored, capped
// at the cloud clock), for the online/offline counts of the district summaries. Kept in memory, fed by
// app.ingest.onBatchStored (a Map update per device per batch: nothing on the hot path touches the
// disk), and flushed to the store every registry.lastSeenFlushMs and at close, so a restart does not
// make every device look offline until it reports again (at most one flush interval is lost).
import type { CloudStore } from '../store/db.ts';

const MIGRATION = `CREATE TABLE device_last_seen (device_id TEXT PRIMARY KEY, ts INTEGER NOT NULL);`;

export class LastSeen {
  private readonly seen = new Map<string, number>();
  private readonly dirty = new Set<string>();
  private readonly put;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: CloudStore,
    /** Devices remembered at most (the rest are not tracked; summaries count them as never seen). */
    private readonly maxDevices: number,
  ) {
    store.migrate('device-last-seen-v1', MIGRATION);
    this.put = store.db.prepare('INSERT INTO device_last_seen (device_id, ts) VALUES (?, ?) ON CONFLICT DO UPDATE SET ts = max(ts, excluded.ts)');
    for (const r of store.db.prepare('SELECT device_id, ts FROM device_last_seen').all() as { device_id: string; ts: number }[]) {
      this.seen.set(r.device_id, Number(r.ts));
    }
  }

  heard(deviceId: string, ts: number): void {
    const prev = this.seen.get(deviceId);
    if (prev !== undefined ? ts <= prev : this.seen.size >= this.maxDevices) return;
    this.seen.set(deviceId, ts);
    this.dirty.add(deviceId);
  }

  get(deviceId: string): number | undefined {
    return this.seen.get(deviceId);
  }

  flush(): void {
    if (this.dirty.size === 0) return;
    const ids = [...this.dirty];
    this.dirty.clear();
    this.store.transaction(() => {
      for (const id of ids) this.put.run(id, this.seen.get(id)!);
    });
  }

  start(everyMs: number, onError: (err: unknown) => void): void {
    this.timer = setInterval(() => {
      try {
        this.flush();
      } catch (err) {
        onError(err);
      }
    }, everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
  }
}
