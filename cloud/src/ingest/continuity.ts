// Per-device continuity: the edge stamps each device's readings and events with one per-device sequence
// (`deviceSeq`, 0/absent = unstamped); the cloud counts the numbers that never arrived (gaps) and the ones
// that arrived twice (duplicates). Only first-time batches are looked at (a replayed batch is not a
// device duplicate: dedupe.ts recognises it).
//
// Per device the cloud keeps the highest deviceSeq seen and the holes below it, as ranges. Arrivals out of
// order are normal (the alarm lane overtakes the telemetry backlog), so a hole is not a gap at once:
//   - a hole is *pending* while younger than `ingest.gapGraceMs` (cloud clock, from when it opened); a
//     reading filling it then is simply late, and nothing is counted;
//   - a hole older than that is counted as a gap (device_gaps_total += its size), and stays remembered;
//   - a reading that later fills a counted hole is counted as late (device_late_total): gaps - late is
//     what is still missing; both counters only go up, as Prometheus counters must;
//   - a deviceSeq at or below the highest seen that is in no hole is a duplicate (device_duplicates_total);
//   - at most `ingest.gapRangesPerDevice` holes are remembered per device: past that the lowest is
//     forgotten (counted as a gap if it was pending). A reading arriving later for a forgotten hole is
//     counted as a duplicate, which is the imprecision at the bound.
// The lowest deviceSeq the cloud has seen of a device starts its history: numbers before it are not gaps.
// It can move down: with several batches of an edge in flight, a device's first batches may commit out
// of order, and a lower number arriving then is no duplicate; the numbers between it and the old start
// become a hole like any other.
// A device whose sequence restarts (an edge that lost its state) shows as duplicates until it passes its
// old highest number: the edge must keep device sequences durable.
//
// State is cached in memory (loaded at start, a few numbers per device) and written through to the store
// in the transaction that marks the batch (plugin.ts): a cloud restart neither invents gaps nor forgets
// holes. Changes are planned on copies and applied to the cache only once that transaction committed.
import type { Batch } from '@citysense/proto';
import type { StatementSync } from 'node:sqlite';
import type { CloudStore } from '../store/db.ts';

export const CONTINUITY_MIGRATION = 'ingest-device-seq-v1';
export const CONTINUITY_MIN_MIGRATION = 'ingest-device-seq-min-v2';

export interface Hole {
  lo: number;
  hi: number;
  /** Cloud time the hole opened (ms). */
  openedMs: number;
  /** Already counted as a gap. */
  counted: boolean;
}

export interface DeviceSeqState {
  /** The lowest deviceSeq seen: where the device's history starts (0: not known, a row from before v2). */
  min: number;
  max: number;
  /** Disjoint, lowest first, all below max. */
  holes: Hole[];
  /** Durable totals (the metrics restart from 0 with the process; these do not). */
  gaps: number;
  duplicates: number;
  late: number;
}

export interface ContinuityDelta {
  gaps: number;
  duplicates: number;
  late: number;
}

/** What one batch (or one sweep) changes: new states to write, counts to export. */
export interface ContinuityPlan {
  states: Map<string, DeviceSeqState>;
  deltas: Map<string, ContinuityDelta>;
}

export interface ContinuityOptions {
  graceMs: number;
  maxHoles: number;
}

const size = (h: Hole) => h.hi - h.lo + 1;

function cloneState(s: DeviceSeqState): DeviceSeqState {
  return { ...s, holes: s.holes.map((h) => ({ ...h })) };
}

export class Continuity {
  private readonly cache = new Map<string, DeviceSeqState>();
  /** Devices with at least one hole not yet counted (what the sweep looks at). */
  private readonly pending = new Set<string>();
  /** Devices with any hole remembered (pending or counted). */
  private readonly holey = new Set<string>();
  private readonly upsert: StatementSync;

  constructor(
    store: CloudStore,
    private readonly opts: ContinuityOptions,
  ) {
    store.migrate(
      CONTINUITY_MIGRATION,
      `CREATE TABLE ingest_device_seq (
         device TEXT PRIMARY KEY,
         max_seq INTEGER NOT NULL,
         holes TEXT NOT NULL,
         gaps INTEGER NOT NULL,
         duplicates INTEGER NOT NULL,
         late INTEGER NOT NULL,
         updated_ms INTEGER NOT NULL
       ) WITHOUT ROWID;`,
    );
    store.migrate(CONTINUITY_MIN_MIGRATION, 'ALTER TABLE ingest_device_seq ADD COLUMN min_seq INTEGER NOT NULL DEFAULT 0;');
    this.upsert = store.db.prepare(
      `INSERT INTO ingest_device_seq (device, min_seq, max_seq, holes, gaps, duplicates, late, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (device) DO UPDATE SET min_seq = excluded.min_seq, max_seq = excluded.max_seq, holes = excluded.holes, gaps = excluded.gaps,
         duplicates = excluded.duplicates, late = excluded.late, updated_ms = excluded.updated_ms`,
    );
    for (const row of store.db.prepare('SELECT device, min_seq, max_seq, holes, gaps, duplicates, late FROM ingest_device_seq').all()) {
      const holes = (JSON.parse(String(row.holes)) as [number, number, number, number][]).map(([lo, hi, openedMs, counted]) => ({ lo, hi, openedMs, counted: counted === 1 }));
      const s: DeviceSeqState = { min: Number(row.min_seq), max: Number(row.max_seq), holes, gaps: Number(row.gaps), duplicates: Number(row.duplicates), late: Number(row.late) };
      this.cache.set(String(row.device), s);
      this.index(String(row.device), s);
    }
  }

  /** A device's state (a copy), or undefined when the cloud never saw a deviceSeq of it. */
  get(device: string): DeviceSeqState | undefined {
    const s = this.cache.get(device);
    return s && cloneState(s);
  }

  /** Devices with missing readings remembered (pending or counted). */
  get devicesWithGaps(): number {
    return this.holey.size;
  }

  /** Plans what a first-time batch's deviceSeqs change; nothing is touched until commit(). */
  planBatch(batch: Batch, nowMs: number): ContinuityPlan {
    const byDevice = new Map<string, number[]>();
    const add = (device: string, seq: number | undefined) => {
      if (!seq || seq < 0) return;
      let l = byDevice.get(device);
      if (!l) byDevice.set(device, (l = []));
      l.push(seq);
    };
    for (const r of batch.readings) add(r.deviceId, r.deviceSeq);
    for (const e of batch.events) add(e.deviceId, e.deviceSeq);
    const plan: ContinuityPlan = { states: new Map(), deltas: new Map() };
    for (const [device, seqs] of byDevice) {
      seqs.sort((a, b) => a - b);
      const old = this.cache.get(device);
      const s: DeviceSeqState = old ? cloneState(old) : { min: 0, max: 0, holes: [], gaps: 0, duplicates: 0, late: 0 };
      const d: ContinuityDelta = { gaps: 0, duplicates: 0, late: 0 };
      for (const seq of seqs) this.arrive(s, d, seq, nowMs);
      this.age(s, d, nowMs);
      plan.states.set(device, s);
      if (d.gaps || d.duplicates || d.late) plan.deltas.set(device, d);
    }
    return plan;
  }

  /** Plans counting the holes that outlived the grace period, for devices that have not sent since. */
  planSweep(nowMs: number): ContinuityPlan {
    const plan: ContinuityPlan = { states: new Map(), deltas: new Map() };
    for (const device of this.pending) {
      const old = this.cache.get(device)!;
      if (!old.holes.some((h) => !h.counted && h.openedMs + this.opts.graceMs <= nowMs)) continue;
      const s = cloneState(old);
      const d: ContinuityDelta = { gaps: 0, duplicates: 0, late: 0 };
      this.age(s, d, nowMs);
      plan.states.set(device, s);
      plan.deltas.set(device, d);
    }
    return plan;
  }

  /** Writes a plan's states; run inside the store transaction that commits the batch. */
  persist(plan: ContinuityPlan, nowMs: number): void {
    for (const [device, s] of plan.states) {
      const holes = JSON.stringify(s.holes.map((h) => [h.lo, h.hi, h.openedMs, h.counted ? 1 : 0]));
      this.upsert.run(device, s.min, s.max, holes, s.gaps, s.duplicates, s.late, nowMs);
    }
  }

  /** Applies a persisted plan to the cache (after the transaction committed). */
  commit(plan: ContinuityPlan): void {
    for (const [device, s] of plan.states) {
      this.cache.set(device, s);
      this.index(device, s);
    }
  }

  private index(device: string, s: DeviceSeqState): void {
    if (s.holes.length) this.holey.add(device);
    else this.holey.delete(device);
    if (s.holes.some((h) => !h.counted)) this.pending.add(device);
    else this.pending.delete(device);
  }

  private arrive(s: DeviceSeqState, d: ContinuityDelta, seq: number, nowMs: number): void {
    if (s.max === 0) {
      s.min = s.max = seq;
      return;
    }
    if (seq < s.min) {
      // Before the known start: never seen, so no duplicate (see the top of this file).
      if (seq < s.min - 1) s.holes.unshift({ lo: seq + 1, hi: s.min - 1, openedMs: nowMs, counted: false });
      s.min = seq;
      this.cap(s, d);
      return;
    }
    if (seq > s.max) {
      if (seq > s.max + 1) s.holes.push({ lo: s.max + 1, hi: seq - 1, openedMs: nowMs, counted: false });
      s.max = seq;
      this.cap(s, d);
      return;
    }
    const i = s.holes.findIndex((h) => h.lo <= seq && seq <= h.hi);
    if (i < 0) {
      d.duplicates++;
      s.duplicates++;
      return;
    }
    const h = s.holes[i]!;
    if (h.counted) {
      d.late++;
      s.late++;
    }
    if (h.lo === h.hi) s.holes.splice(i, 1);
    else if (seq === h.lo) h.lo++;
    else if (seq === h.hi) h.hi--;
    else {
      s.holes.splice(i + 1, 0, { ...h, lo: seq + 1 });
      h.hi = seq - 1;
      this.cap(s, d);
    }
  }

  private age(s: DeviceSeqState, d: ContinuityDelta, nowMs: number): void {
    for (const h of s.holes) {
      if (!h.counted && h.openedMs + this.opts.graceMs <= nowMs) {
        h.counted = true;
        d.gaps += size(h);
        s.gaps += size(h);
      }
    }
  }

  private cap(s: DeviceSeqState, d: ContinuityDelta): void {
    while (s.holes.length > this.opts.maxHoles) {
      const h = s.holes.shift()!;
      if (!h.counted) {
        d.gaps += size(h);
        s.gaps += size(h);
      }
    }
  }
}
