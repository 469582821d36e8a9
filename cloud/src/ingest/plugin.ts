// app.ingest: what the cloud remembers about ingestion, and the moment a stored batch becomes processed.
//
//   write to InfluxDB (store-batch.ts, holding a write slot of the gate)
//   → commit(): one store transaction: mark (edge, seq); for a first-time batch also continuity,
//     drop reports and the onBatchStored listeners (the alert engine) — all durable together, or none
//   → metrics (first-time batches only) → Ack (duplicate: true for a replay).
// An alarm-lane batch goes the other way round (routes/ingest/batches.ts): commit() first, so its alert
// does not wait for InfluxDB, then the write; a failed write is answered 503 and the resend is a replay.
// If the transaction fails the batch is not acknowledged (500): the edge sends it again, the write is
// repeated (idempotent) and the mark taken then.
import type { Batch, DeviceEvent, Reading } from '@citysense/proto';
import type { CloudConfig } from '../config/schema.ts';
import { shared } from '../plugins/shared.ts';
import { IngestGate } from './backpressure.ts';
import { Continuity, type ContinuityPlan } from './continuity.ts';
import { SeqMarks } from './dedupe.ts';
import { DropLedger } from './drops.ts';
import { countStored, type StoreResult, type StoreTally } from './store-batch.ts';

export interface BatchStoredInfo {
  /** Always false: listeners are called for first-time batches only (a replay is not alerted on). */
  duplicate: false;
  /** The Ack the edge will get (duplicate: false). */
  ack: StoreResult['ack'];
  /** What InfluxDB stored: validated and not refused, in decoded order with their batch indices. */
  readings: readonly { index: number; reading: Reading }[];
  events: readonly { index: number; event: DeviceEvent }[];
  /** The cloud clock at commit (ms). */
  nowMs: number;
}

/**
 * Called once per first-time batch, synchronously, inside the store transaction that marks the batch
 * processed: writes to app.store made here commit with the mark (a crash loses both or neither); a
 * throw rolls the mark back and the edge gets 500 and sends the batch again. Do not await here: queue
 * slow work (webhooks: the outbox) and return.
 */
export type BatchStoredListener = (batch: Batch, info: BatchStoredInfo) => void;

export interface CommitResult {
  duplicate: boolean;
}

export interface IngestService {
  marks: SeqMarks;
  continuity: Continuity;
  drops: DropLedger;
  gate: IngestGate;
  /** Registers a listener for first-time stored batches; returns a function that removes it. */
  onBatchStored(listener: BatchStoredListener): () => void;
  /** Marks a batch InfluxDB stored as processed (see the top of this file). Without a `tally` (an
   * alarm-lane batch, committed before its write) the caller counts what was written itself. */
  commit(edge: string, batch: Batch, result: Pick<StoreResult, 'ack' | 'stored'> & { tally?: StoreTally }): CommitResult;
  /** Counts deviceSeq holes that outlived ingest.gapGraceMs (also run on a timer). */
  sweepGaps(): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    ingest: IngestService;
  }
}

export interface IngestPluginOptions extends Record<string, unknown> {
  config: CloudConfig;
  now: () => number;
}

export const ingestPlugin = shared<IngestPluginOptions>('citysense-ingest', async (app, opts) => {
  const { config, now } = opts;
  const { store, metrics } = app;
  const marks = new SeqMarks(store, config.ingest.seqRangesPerEdge);
  const continuity = new Continuity(store, { graceMs: config.ingest.gapGraceMs, maxHoles: config.ingest.gapRangesPerDevice });
  const drops = new DropLedger(store);
  const gate = new IngestGate({
    maxWrites: config.influx.maxConcurrentWrites,
    maxQueued: config.limits.maxQueuedBatches,
    alarmReserve: config.limits.alarmReservedBatches,
    waitMs: config.influx.timeoutMs,
    onChange: (writing, waiting) => {
      metrics.influxWritesInFlight.set(writing);
      metrics.ingestWaiting.set(waiting);
    },
  });
  const listeners = new Set<BatchStoredListener>();
  metrics.devicesWithGaps.set(continuity.devicesWithGaps);

  const exportContinuity = (plan: ContinuityPlan) => {
    for (const [device, d] of plan.deltas) {
      const label = { device: metrics.deviceLabel(device) };
      if (d.gaps) metrics.deviceGaps.inc(label, d.gaps);
      if (d.duplicates) metrics.deviceDuplicates.inc(label, d.duplicates);
      if (d.late) metrics.deviceLate.inc(label, d.late);
    }
    metrics.devicesWithGaps.set(continuity.devicesWithGaps);
  };

  const service: IngestService = {
    marks,
    continuity,
    drops,
    gate,
    onBatchStored(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    commit(edge, batch, result) {
      const nowMs = now();
      const reported = DropLedger.useful(batch.drops);
      let plan: ContinuityPlan | undefined;
      const mark = store.transaction(() => {
        const m = marks.mark(edge, batch.seq);
        if (!m.firstTime) return m;
        plan = continuity.planBatch(batch, nowMs);
        continuity.persist(plan, nowMs);
        drops.record(edge, reported, nowMs);
        const info: BatchStoredInfo = { duplicate: false, ack: result.ack, readings: result.stored.readings, events: result.stored.events, nowMs };
        for (const l of listeners) l(batch, info);
        return m;
      });
      if (mark.assumed > 0) metrics.seqMarksAssumed.inc({ edge }, mark.assumed);
      if (!mark.firstTime) {
        metrics.batchesDuplicate.inc({ edge });
        return { duplicate: true };
      }
      continuity.commit(plan!);
      exportContinuity(plan!);
      if (result.tally) countStored(metrics, result.tally);
      for (const d of reported) {
        metrics.edgeDropped.inc({ edge, device: metrics.deviceLabel(d.deviceId), class: d.dataClass, reason: metrics.dropReasonLabel(d.reason) }, d.count);
      }
      return { duplicate: false };
    },
    sweepGaps() {
      const nowMs = now();
      const plan = continuity.planSweep(nowMs);
      if (plan.states.size === 0) return;
      store.transaction(() => continuity.persist(plan, nowMs));
      continuity.commit(plan);
      exportContinuity(plan);
    },
  };
  app.decorate('ingest', service);

  // A device that stops sending after a hole gets it counted too, within about a grace period.
  const sweepEvery = Math.max(1000, Math.min(config.ingest.gapGraceMs, 60_000));
  const timer = setInterval(() => {
    try {
      service.sweepGaps();
    } catch (err) {
      app.log.error({ err }, 'counting deviceSeq gaps failed; will try again');
    }
  }, sweepEvery);
  timer.unref();
  app.addHook('onClose', async () => {
    clearInterval(timer);
    gate.close();
  });
});
