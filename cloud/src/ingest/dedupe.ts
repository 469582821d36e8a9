// Seq marks: which batches of each edge the cloud has processed (written to InfluxDB, counted, handed to
// the alert engine). A batch whose (edge, seq) is marked is a replay: it is written again (a point
// rewritten with the same series and timestamp overwrites itself) but not counted or alerted on twice.
//
// Edges send out of order (the alarm lane overtakes the telemetry backlog; retries), and leave holes for
// good (an edge skips the rest of its reserved seq block when it restarts; a batch refused with 400/413 is
// dropped by the edge), so a high-water mark is not enough. The processed seqs of an edge are kept as
// disjoint ranges [lo, hi] in the store: processing in order only stretches the last range, an overtaking
// batch opens a new range, and a late one fills a hole (merging two ranges). The number of ranges per
// edge is bounded (`ingest.seqRangesPerEdge`): past the bound the two lowest ranges are merged, i.e. the
// lowest hole is taken as processed. A batch that still arrives in such a hole is answered as a
// duplicate: written to InfluxDB all the same, but not counted or alerted on (counted in
// seq_marks_assumed_total when the hole is given up).
//
// Every read and write is SQL against the store (no cache), so a cloud restart, or another instance on the
// same store, sees exactly the committed marks. Marks are taken inside the caller's transaction
// (plugin.ts), together with the rest of what a first-time batch changes.
import type { StatementSync } from 'node:sqlite';
import type { CloudStore } from '../store/db.ts';

export const SEQ_MARKS_MIGRATION = 'ingest-seq-marks-v1';

interface Range {
  lo: number;
  hi: number;
}

export interface MarkResult {
  /** false: the seq was already marked (a replay). */
  firstTime: boolean;
  /** Seqs never seen that were given up as processed to keep within the range bound (0 mostly). */
  assumed: number;
}

export class SeqMarks {
  private readonly floorRange: StatementSync;
  private readonly ceilRange: StatementSync;
  private readonly insert: StatementSync;
  private readonly setHi: StatementSync;
  private readonly setLo: StatementSync;
  private readonly remove: StatementSync;
  private readonly count: StatementSync;
  private readonly lowestTwo: StatementSync;
  private readonly all: StatementSync;

  constructor(
    private readonly store: CloudStore,
    private readonly maxRanges: number,
  ) {
    store.migrate(
      SEQ_MARKS_MIGRATION,
      `CREATE TABLE ingest_seq_ranges (
         edge TEXT NOT NULL,
         lo INTEGER NOT NULL,
         hi INTEGER NOT NULL,
         PRIMARY KEY (edge, lo)
       ) WITHOUT ROWID;`,
    );
    const db = store.db;
    this.floorRange = db.prepare('SELECT lo, hi FROM ingest_seq_ranges WHERE edge = ? AND lo <= ? ORDER BY lo DESC LIMIT 1');
    this.ceilRange = db.prepare('SELECT lo, hi FROM ingest_seq_ranges WHERE edge = ? AND lo > ? ORDER BY lo ASC LIMIT 1');
    this.insert = db.prepare('INSERT INTO ingest_seq_ranges (edge, lo, hi) VALUES (?, ?, ?)');
    this.setHi = db.prepare('UPDATE ingest_seq_ranges SET hi = ? WHERE edge = ? AND lo = ?');
    this.setLo = db.prepare('UPDATE ingest_seq_ranges SET lo = ? WHERE edge = ? AND lo = ?');
    this.remove = db.prepare('DELETE FROM ingest_seq_ranges WHERE edge = ? AND lo = ?');
    this.count = db.prepare('SELECT count(*) AS n FROM ingest_seq_ranges WHERE edge = ?');
    this.lowestTwo = db.prepare('SELECT lo, hi FROM ingest_seq_ranges WHERE edge = ? ORDER BY lo ASC LIMIT 2');
    this.all = db.prepare('SELECT lo, hi FROM ingest_seq_ranges WHERE edge = ? ORDER BY lo ASC');
  }

  /** Whether (edge, seq) is marked processed. */
  has(edge: string, seq: number): boolean {
    const r = this.floorRange.get(edge, seq) as Range | undefined;
    return r !== undefined && r.hi >= seq;
  }

  /**
   * Marks (edge, seq) processed. Run it inside store.transaction() with everything else the batch
   * changes: the caller decides from `firstTime` whether this is a replay, atomically with the mark.
   */
  mark(edge: string, seq: number): MarkResult {
    const prev = this.floorRange.get(edge, seq) as Range | undefined;
    if (prev && prev.hi >= seq) return { firstTime: false, assumed: 0 };
    const next = this.ceilRange.get(edge, seq) as Range | undefined;
    const joinPrev = prev !== undefined && prev.hi === seq - 1;
    const joinNext = next !== undefined && next.lo === seq + 1;
    if (joinPrev && joinNext) {
      this.setHi.run(next.hi, edge, prev.lo);
      this.remove.run(edge, next.lo);
      return { firstTime: true, assumed: 0 };
    }
    if (joinPrev) {
      this.setHi.run(seq, edge, prev.lo);
      return { firstTime: true, assumed: 0 };
    }
    if (joinNext) {
      this.setLo.run(seq, edge, next.lo);
      return { firstTime: true, assumed: 0 };
    }
    this.insert.run(edge, seq, seq);
    let assumed = 0;
    let n = Number((this.count.get(edge) as { n: number }).n);
    while (n > this.maxRanges) {
      const [a, b] = this.lowestTwo.all(edge) as unknown as Range[];
      if (!a || !b) break;
      this.setHi.run(b.hi, edge, a.lo);
      this.remove.run(edge, b.lo);
      assumed += b.lo - a.hi - 1;
      n--;
    }
    return { firstTime: true, assumed };
  }

  /** The processed ranges of an edge, lowest first (tests, diagnostics). */
  ranges(edge: string): Range[] {
    return (this.all.all(edge) as unknown as Range[]).map((r) => ({ lo: Number(r.lo), hi: Number(r.hi) }));
  }
}
