// Writes a validated batch to InfluxDB and builds the Ack. The Ack exists only once InfluxDB has
// answered the write: 204 (all stored) or 400 (the rest stored, the refused points listed). Anything else
// throws a retryable CloudError, and the edge keeps the batch.
// What was written is not counted here: the route counts it (countStored) only once the batch is marked
// processed for the first time (plugin.ts), so a replayed batch does not inflate the counters.
import type { Ack, Batch, Rejection } from '@citysense/proto';
import { CloudError } from '../errors.ts';
import type { CloudMetrics } from '../plugins/metrics.ts';
import { EVENTS_MEASUREMENT, SeriesPrefixes, attrFieldKey, eventLine, readingLine } from './line-protocol.ts';
import { attributeRefusal, fieldTypeOf, type InfluxFieldType, type PointRef } from './partial-write.ts';
import type { ValidatedBatch } from './validate.ts';
import type { InfluxWriter } from './write.ts';

export interface StoreDeps {
  writer: InfluxWriter;
  metrics: CloudMetrics;
}

export interface StoreResult {
  ack: Ack;
  /** The InfluxDB refusal message, when there was one (for the log). */
  influxMessage?: string;
  /** What was written and left out, for countStored(). */
  tally: StoreTally;
  /** Readings and events InfluxDB stored (validated, not refused), in decoded order. */
  stored: Pick<ValidatedBatch, 'readings' | 'events'>;
}

export interface StoreTally {
  readingsByFamily: Map<string, number>;
  eventsByType: Map<string, number>;
  rejections: Rejection[];
  /** Points InfluxDB dropped beyond the one unattributed rejection that carries their count. */
  extraUnattributed: number;
}

/** Counts a stored batch in the metrics: call it once per batch, for first-time batches only. */
export function countStored(metrics: CloudMetrics, t: StoreTally): void {
  for (const [family, count] of t.readingsByFamily) metrics.readingsWritten.inc({ family }, count);
  for (const [type, count] of t.eventsByType) metrics.eventsWritten.inc({ type }, count);
  for (const r of t.rejections) (r.kind === 'reading' ? metrics.readingsRejected : metrics.eventsRejected).inc({ reason: r.code });
  if (t.extraUnattributed > 0) metrics.readingsRejected.inc({ reason: 'INFLUX_REJECTED' }, t.extraUnattributed);
}

/** The lines of a refused write, for partial-write.ts: `body` split at the offsets where each line ends. */
function pointRefs(v: ValidatedBatch, body: string, ends: readonly number[]): PointRef[] {
  const refs: PointRef[] = [];
  const lineAt = (i: number) => body.slice(i === 0 ? 0 : ends[i - 1]! + 1, ends[i]!);
  v.readings.forEach(({ index, reading }, i) =>
    refs.push({
      kind: 'reading',
      index,
      line: lineAt(i),
      measurement: reading.family,
      fieldTypes() {
        const t: Record<string, InfluxFieldType> = {};
        for (const k in reading.values) t[k] = fieldTypeOf(reading.values[k]!);
        if (reading.quality) t.quality = 'string';
        return t;
      },
    }),
  );
  const offset = v.readings.length;
  v.events.forEach(({ index, event }, i) =>
    refs.push({
      kind: 'event',
      index,
      line: lineAt(offset + i),
      measurement: EVENTS_MEASUREMENT,
      fieldTypes() {
        // Every field of an event line is a string.
        const t: Record<string, InfluxFieldType> = { attrs: 'string', id: 'string', priority: 'string' };
        for (const k in event.attrs) t[attrFieldKey(k)] = 'string';
        return t;
      },
    }),
  );
  return refs;
}

export async function storeBatch(batch: Batch, v: ValidatedBatch, deps: StoreDeps): Promise<StoreResult> {
  const { metrics } = deps;
  const rejections: Rejection[] = [...v.rejections];
  const total = v.readings.length + v.events.length;
  let refusedByInflux: Rejection[] = [];
  let unattributed = 0;
  let influxMessage: string | undefined;

  if (total > 0) {
    // The body is built as one string (line i ends at ends[i]); lines are cut out of it only when
    // InfluxDB refuses some and partial-write.ts needs them.
    const prefixes = new SeriesPrefixes();
    const ends: number[] = new Array(total);
    let body = '';
    let n = 0;
    const readings = v.readings;
    for (let i = 0; i < readings.length; i++) {
      if (n > 0) body += '\n';
      body += readingLine(readings[i]!.reading, prefixes);
      ends[n++] = body.length;
    }
    const events = v.events;
    for (let i = 0; i < events.length; i++) {
      if (n > 0) body += '\n';
      body += eventLine(events[i]!.event);
      ends[n++] = body.length;
    }

    const endTimer = metrics.influxWriteSeconds.startTimer();
    const outcome = await deps.writer.write(body);
    endTimer({ outcome: outcome.kind });
    if (outcome.kind === 'unavailable') {
      metrics.influxUp.set(0);
      throw new CloudError(outcome.auth ? 'INFLUX_AUTH_FAILED' : 'INFLUX_UNAVAILABLE', outcome.message);
    }
    metrics.influxUp.set(1);
    if (outcome.kind === 'refused') {
      influxMessage = outcome.message;
      const a = attributeRefusal(outcome.message, pointRefs(v, body, ends));
      refusedByInflux = a.rejections;
      unattributed = a.unattributed;
    }
  }

  const refusedReadings = new Set<number>();
  const refusedEvents = new Set<number>();
  for (const r of refusedByInflux) (r.kind === 'reading' ? refusedReadings : refusedEvents).add(r.index);
  rejections.push(...refusedByInflux);
  if (unattributed > 0) {
    // The index is past the end of the batch on purpose: InfluxDB did not say which points these were.
    rejections.push({
      kind: 'reading',
      index: batch.readings.length,
      code: 'INFLUX_REJECTED',
      message: `InfluxDB dropped ${unattributed} more point(s) of this batch without saying which (this rejection's index is past the end of the batch): ${influxMessage}`.slice(0, 1000),
    });
  }

  // Counted per label first: one inc per family instead of one per reading, and one Map update per run
  // of readings of the same family rather than per reading. Without refusals the validated arrays are
  // what was stored, as they are.
  const readingsByFamily = new Map<string, number>();
  const storedReadings = refusedReadings.size === 0 ? v.readings : v.readings.filter(({ index }) => !refusedReadings.has(index));
  let runFamily: string | undefined;
  let run = 0;
  for (let i = 0; i < storedReadings.length; i++) {
    const family = storedReadings[i]!.reading.family;
    if (family === runFamily) {
      run++;
      continue;
    }
    if (runFamily !== undefined) readingsByFamily.set(runFamily, (readingsByFamily.get(runFamily) ?? 0) + run);
    runFamily = family;
    run = 1;
  }
  if (runFamily !== undefined) readingsByFamily.set(runFamily, (readingsByFamily.get(runFamily) ?? 0) + run);
  const eventsByType = new Map<string, number>();
  const storedEvents = refusedEvents.size === 0 ? v.events : v.events.filter(({ index }) => !refusedEvents.has(index));
  for (const { event } of storedEvents) {
    const type = metrics.eventTypeLabel(event.type);
    eventsByType.set(type, (eventsByType.get(type) ?? 0) + 1);
  }
  const tally: StoreTally = { readingsByFamily, eventsByType, rejections, extraUnattributed: Math.max(0, unattributed - 1) };
  const stored = { readings: storedReadings, events: storedEvents };

  const rejected = v.rejections.length + refusedByInflux.length + unattributed;
  const ack: Ack = {
    seq: batch.seq,
    accepted: Math.max(0, batch.readings.length + batch.events.length - rejected),
    rejected,
    rejections,
    duplicate: false,
  };
  return influxMessage === undefined ? { ack, tally, stored } : { ack, tally, stored, influxMessage };
}
