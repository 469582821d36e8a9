// Writes a validated batch to InfluxDB and builds the Ack. The Ack exists only once InfluxDB has
// answered the write: 204 (all stored) or 400 (the rest stored, the refused points listed). Anything else
// throws a retryable CloudError, and the edge keeps the batch.
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
}

function pointRefs(v: ValidatedBatch, lines: readonly string[]): PointRef[] {
  const refs: PointRef[] = [];
  v.readings.forEach(({ index, reading }, i) =>
    refs.push({
      kind: 'reading',
      index,
      line: lines[i]!,
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
      line: lines[offset + i]!,
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
    const prefixes = new SeriesPrefixes();
    const lines: string[] = new Array(total);
    let n = 0;
    for (const { reading } of v.readings) lines[n++] = readingLine(reading, prefixes);
    for (const { event } of v.events) lines[n++] = eventLine(event);

    const endTimer = metrics.influxWriteSeconds.startTimer();
    const outcome = await deps.writer.write(lines.join('\n'));
    endTimer({ outcome: outcome.kind });
    if (outcome.kind === 'unavailable') {
      metrics.influxUp.set(0);
      throw new CloudError(outcome.auth ? 'INFLUX_AUTH_FAILED' : 'INFLUX_UNAVAILABLE', outcome.message);
    }
    metrics.influxUp.set(1);
    if (outcome.kind === 'refused') {
      influxMessage = outcome.message;
      const a = attributeRefusal(outcome.message, pointRefs(v, lines));
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

  // Counted per label first: one inc per family instead of one per reading.
  const byFamily = new Map<string, number>();
  for (const { index, reading } of v.readings) if (!refusedReadings.has(index)) byFamily.set(reading.family, (byFamily.get(reading.family) ?? 0) + 1);
  for (const [family, count] of byFamily) metrics.readingsWritten.inc({ family }, count);
  const byType = new Map<string, number>();
  for (const { index, event } of v.events) {
    if (refusedEvents.has(index)) continue;
    const type = metrics.eventTypeLabel(event.type);
    byType.set(type, (byType.get(type) ?? 0) + 1);
  }
  for (const [type, count] of byType) metrics.eventsWritten.inc({ type }, count);
  for (const r of rejections) (r.kind === 'reading' ? metrics.readingsRejected : metrics.eventsRejected).inc({ reason: r.code });
  if (unattributed > 1) metrics.readingsRejected.inc({ reason: 'INFLUX_REJECTED' }, unattributed - 1);

  const rejected = v.rejections.length + refusedByInflux.length + unattributed;
  const ack: Ack = {
    seq: batch.seq,
    accepted: Math.max(0, batch.readings.length + batch.events.length - rejected),
    rejected,
    rejections,
    duplicate: false,
  };
  return influxMessage === undefined ? { ack } : { ack, influxMessage };
}
