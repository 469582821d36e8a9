// Per-district summaries: devices registered, online (heard from within registry.offlineAfterIntervals ×
// the device's expected interval, or its family's alerts.expectedIntervalMs), offline, never heard from,
// and alerts firing / acknowledged (from the alert engine's table in the same store).
import type { CloudConfig } from '../config/schema.ts';
import type { CloudStore } from '../store/db.ts';
import type { LastSeen } from './last-seen.ts';

export interface Counts {
  total: number;
  online: number;
  offline: number;
  /** Part of offline: never heard from since the cloud tracked it. */
  never_seen: number;
}

export interface DistrictSummary {
  district: string;
  devices: Counts;
  families: Record<string, Counts>;
  alerts: { firing: number; acknowledged: number };
}

const zero = (): Counts => ({ total: 0, online: 0, offline: 0, never_seen: 0 });

export class DistrictSummaries {
  constructor(
    private readonly store: CloudStore,
    private readonly lastSeen: LastSeen,
    private readonly config: CloudConfig,
    private readonly now: () => number,
  ) {}

  private alertCounts(district: string | undefined): Map<string, { firing: number; acknowledged: number }> {
    const out = new Map<string, { firing: number; acknowledged: number }>();
    const has = this.store.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alerts'").get();
    if (!has) return out;
    const sql = `SELECT district, state, COUNT(*) AS n FROM alerts WHERE state IN ('firing', 'acknowledged') ${district !== undefined ? 'AND district = ?' : ''} GROUP BY district, state`;
    const rows = this.store.db.prepare(sql).all(...(district !== undefined ? [district] : [])) as { district: string; state: string; n: number }[];
    for (const r of rows) {
      const c = out.get(r.district) ?? { firing: 0, acknowledged: 0 };
      c[r.state as 'firing' | 'acknowledged'] = Number(r.n);
      out.set(r.district, c);
    }
    return out;
  }

  /** All districts (with devices or alerts), or one. */
  summaries(district?: string): DistrictSummary[] {
    const now = this.now();
    const factor = this.config.registry.offlineAfterIntervals;
    const familyInterval = this.config.alerts.expectedIntervalMs as Record<string, number>;
    const rows = this.store.db
      .prepare(`SELECT id, district, family, expected_interval_ms FROM devices ${district !== undefined ? 'WHERE district = ?' : ''}`)
      .all(...(district !== undefined ? [district] : [])) as { id: string; district: string; family: string; expected_interval_ms: number | null }[];
    const by = new Map<string, DistrictSummary>();
    const get = (d: string) => {
      let s = by.get(d);
      if (!s) by.set(d, (s = { district: d, devices: zero(), families: {}, alerts: { firing: 0, acknowledged: 0 } }));
      return s;
    };
    for (const r of rows) {
      const s = get(r.district);
      const f = (s.families[r.family] ??= zero());
      const interval = r.expected_interval_ms ?? familyInterval[r.family] ?? 60_000;
      const seen = this.lastSeen.get(r.id);
      const online = seen !== undefined && now - seen <= factor * interval;
      for (const c of [s.devices, f]) {
        c.total++;
        if (online) c.online++;
        else {
          c.offline++;
          if (seen === undefined) c.never_seen++;
        }
      }
    }
    for (const [d, a] of this.alertCounts(district)) get(d).alerts = a;
    if (district !== undefined && !by.has(district)) return [];
    return [...by.values()].sort((a, b) => a.district.localeCompare(b.district));
  }
}
