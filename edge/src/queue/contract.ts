// The durable store-and-forward queue between the edge's inputs and its uplink: the contract every
// implementation keeps (memory.ts, the reference; disk.ts, the real one), checked by one conformance suite
// (edge/test/queue-conformance.test.ts). docs/queue.md explains the on-disk format and the policies.
import type { Logger } from 'pino';
import type { Batch, DeviceEvent, DropReport, Lane, Reading } from '@citysense/proto';
import type { Sink } from '../sink.ts';
import { EDGE_ERRORS, type EdgeErrorCode } from '../errors.ts';

/** An item is 'alarm' when it is an event of priority 'alarm'; everything else is 'telemetry'. */
export type DataClass = Lane;

export interface QueueOptions {
  /** Where the segment files, dead letters and nothing else live (disk only). */
  dir: string;
  edgeId: string;
  /** Bytes of queued data (record frames) per class. Telemetry beyond it is dropped oldest first; alarms beyond it wait. */
  quotaBytes: { telemetry: number; alarm: number };
  /** A telemetry batch is sealed at this many readings + events. */
  maxBatchItems: number;
  /** An alarm-lane batch holds at most this many alarm events (they seal at once, no age wait). */
  maxAlarmBatchItems: number;
  /** A forming telemetry batch is sealed this long after its first item. */
  maxBatchAgeMs: number;
  /**
   * Queued items also kept in memory (default 100,000, about 40 MB), so a batch is sent without reading
   * it back from disk. Past it, new chunks are read back when sent (a backlog, or after a restart).
   */
  cacheItems?: number;
  /** A segment file is closed and a new one started past this size (default 8 MiB). */
  segmentBytes?: number;
  /** Wait this long before a sync when idle, to gather more appends into it (default 0: sync at once). */
  commitIntervalMs?: number;
  /** After a failed write or sync, retry the pending records this often (default 1000 ms). */
  writeRetryMs?: number;
  now?: () => number;
  /** Told of every drop, one call per device, class and reason. */
  onDrop?: (d: DropInfo) => void;
  log?: Logger;
  /** Test hook: called before every write with the number of bytes; throw (e.g. an ENOSPC error) to make it fail. */
  injectWriteFault?: (bytes: number) => void;
}

export interface DropInfo extends DropReport {
  /** The queue-internal chunk the items belonged to (for log correlation). */
  chunk: number;
}

export interface ClassStats {
  readings: number;
  events: number;
  /** Bytes of record frames holding this class's live items (what the quota counts). */
  bytes: number;
}

export interface QueueStats {
  telemetry: ClassStats;
  alarm: ClassStats;
  /** Accept time of the oldest item not yet acked, ms since the epoch; null when empty. */
  oldestAcceptedMs: number | null;
  /** Sealed batches waiting for a seq, per lane. */
  batchesQueued: { telemetry: number; alarm: number };
  /** Batches handed out (seq assigned and persisted) and not yet acked or refused. */
  batchesOpen: number;
  lastSeq: number;
  /** Bytes of segment files (live data, plus dead records not yet compacted away). */
  diskBytes: number;
  segments: number;
  acked: { batches: number; readings: number; events: number };
  deadLettered: { batches: number; readings: number; events: number };
  /** Items dropped, keyed `${dataClass}/${reason}`. */
  droppedByClassReason: Record<string, number>;
  /** Items dropped, per device (all classes and reasons). */
  droppedByDevice: Record<string, number>;
  /** Drops not yet carried by an acked batch (they ride on the next batch). */
  dropsPendingReport: number;
  /** Torn or corrupt records detected (on open or on read) and skipped. */
  tornRecords: number;
  corruptBytesSkipped: number;
  syncs: number;
  writeErrors: number;
  /** accept() calls refused because the disk refused writes. */
  rejectedAccepts: number;
  /** accept() calls waiting for room (alarm reserve full, or telemetry with nothing left to drop). */
  waitingAccepts: number;
}

/**
 * Guarantees (both implementations; "durable" means on disk for disk.ts and nothing for memory.ts):
 *
 * 1. accept(readings, events) stamps each item with its device's next deviceSeq (1, 2, ...; never reused,
 *    across restarts too) in call order (readings, then events), and resolves once every item is durable
 *    (group commit: one sync covers every accept() that arrived while the previous sync ran). It rejects
 *    (QueueError QUEUE_CLOSED / QUEUE_WRITE_FAILED) when the items are not safe: the caller must then not
 *    acknowledge the device. It waits (backpressure) while the alarm reserve is full, or while telemetry is
 *    over quota with nothing left that may be dropped.
 * 2. next() returns, in this order: batches already handed out but unacked that this instance has not
 *    returned yet (after a restart: the same seq, the same items, the same drops); then alarm-lane batches,
 *    oldest first; then telemetry batches (alternating oldest backlog and newest live when several wait).
 *    A batch's seq is strictly greater than every earlier one and is persisted, with the batch's composition,
 *    before next() returns it. It resolves null once closed or when `signal` aborts.
 * 3. ack(seq) durably forgets the batch and the drop reports it carried; unknown seqs are ignored.
 *    refuse(seq) writes the batch to the dead-letter area, counts it, returns its drop reports to the
 *    pending set (the cloud did not count them), and forgets it.
 * 4. Telemetry over its byte quota: the oldest sealed, not yet sent telemetry batch is dropped (whole), each
 *    item counted per device/class/reason (QUEUE_FULL), logged (rate-limited), told to onDrop, and reported
 *    in the drops of the next batch handed out; the report is durable until that batch is acked. Batches
 *    already handed out and the forming batch are never dropped. Alarm items are never dropped.
 * 5. Every accepted item ends in exactly one of: acked, dead-lettered, counted as dropped, or still queued.
 */
export interface DurableQueue extends Sink {
  accept(readings: readonly Reading[], events: readonly DeviceEvent[]): Promise<void>;
  /**
   * `lane` restricts what is handed out: the uplink runs one sender for the alarm lane and one for
   * telemetry, so an alarm never waits behind a telemetry batch in flight. Default: any (alarm first).
   */
  next(signal?: AbortSignal, lane?: 'alarm' | 'telemetry' | 'any'): Promise<Batch | null>;
  ack(seq: number): Promise<void>;
  refuse(seq: number, reason: string): Promise<void>;
  /** Seals the forming telemetry batch now and waits until everything accepted so far is durable. */
  flush(): Promise<void>;
  /** Resolves when nothing is queued or open (everything acked, refused or dropped). */
  drained(signal?: AbortSignal): Promise<void>;
  stats(): QueueStats;
  /** Seals what is forming, writes a checkpoint, refuses further accept(), resolves waiting next() with null. */
  close(): Promise<void>;
}

/** The queue's codes: declared once, with the edge's others, in edge/src/errors.ts. */
export type QueueErrorCode = Extract<EdgeErrorCode, `QUEUE_${string}`>;

export class QueueError extends Error {
  override name = 'QueueError';
  constructor(
    readonly code: QueueErrorCode,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${EDGE_ERRORS[code]}: ${detail}`, options);
  }
}

export const DEFAULTS = { segmentBytes: 8 * 1024 * 1024, commitIntervalMs: 0, writeRetryMs: 1000, cacheItems: 100_000 } as const;
