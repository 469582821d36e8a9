// Per-reading and per-event checks before anything is written. A failing item is left out with a stable
// reason (errors.ts REJECTION_REASONS) and travels back in the Ack; the rest of the batch goes on.
// Alarm events are checked only for what InfluxDB cannot store: an alarm must not be lost to cosmetics.
import type { Batch, DeviceEvent, Reading, Rejection } from '@citysense/proto';
import type { RejectionReason } from '../errors.ts';

export interface ValidationLimits {
  maxStringBytes: number;
  minTimestampMs: number;
  maxFutureSkewMs: number;
}

export interface IndexedReading {
  index: number;
  reading: Reading;
}
export interface IndexedEvent {
  index: number;
  event: DeviceEvent;
}

export interface ValidatedBatch {
  readings: IndexedReading[];
  events: IndexedEvent[];
  rejections: Rejection[];
}

/** Field and tag names: ASCII, starting with a letter, so they need no quoting in InfluxQL either. */
const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;
/** `time` is InfluxDB's own column; `quality` is the field the cloud writes the quality flag to. */
const RESERVED_FIELDS = new Set(['time', 'quality']);
/**
 * Tag values and event types: control characters cannot be represented in line protocol, and InfluxDB
 * 1.x does not unescape `\\` in tags, so a value ending in a backslash would corrupt the line.
 */
const UNSAFE_TAG_TEXT = /[\u0000-\u001f\u007f\\]/;
const MAX_TAG_VALUE = 256;

function rejection(kind: Rejection['kind'], index: number, code: RejectionReason, message: string): Rejection {
  return { kind, index, code, message };
}

function deviceIdProblem(id: string): string | undefined {
  if (id.length > MAX_TAG_VALUE) return `device id is longer than ${MAX_TAG_VALUE} characters`;
  if (UNSAFE_TAG_TEXT.test(id)) return 'device id contains a control character or a backslash';
  return undefined;
}

function tagProblem(tags: Record<string, string> | undefined): string | undefined {
  if (!tags) return undefined;
  for (const k in tags) {
    if (!NAME.test(k) || k === 'time') return `tag name ${JSON.stringify(k)} is not usable`;
    const v = tags[k]!;
    if (v.length > MAX_TAG_VALUE) return `tag ${k} is longer than ${MAX_TAG_VALUE} characters`;
    if (UNSAFE_TAG_TEXT.test(v)) return `tag ${k} contains a control character or a backslash`;
  }
  return undefined;
}

export class BatchValidator {
  constructor(
    private readonly limits: ValidationLimits,
    private readonly now: () => number = Date.now,
  ) {}

  validate(batch: Batch): ValidatedBatch {
    const now = this.now();
    const out: ValidatedBatch = { readings: [], events: [], rejections: [] };
    // Devices share one tags object per batch (codec.ts), so each is checked once.
    const tagCheck = new Map<object, string | undefined>();
    const checkTags = (deviceId: string, tags: Record<string, string> | undefined) => {
      const idErr = deviceIdProblem(deviceId);
      if (idErr || !tags) return idErr;
      if (tagCheck.has(tags)) return tagCheck.get(tags);
      const p = tagProblem(tags);
      tagCheck.set(tags, p);
      return p;
    };

    batch.readings.forEach((reading, index) => {
      const tagErr = checkTags(reading.deviceId, reading.tags);
      if (tagErr) return out.rejections.push(rejection('reading', index, 'READING_BAD_TAG', `device ${JSON.stringify(reading.deviceId.slice(0, 140))}: ${tagErr}`));
      const problem = this.readingProblem(reading, now);
      if (problem) return out.rejections.push(rejection('reading', index, problem[0], problem[1]));
      out.readings.push({ index, reading });
    });
    batch.events.forEach((event, index) => {
      const tagErr = checkTags(event.deviceId, event.tags);
      if (tagErr) return out.rejections.push(rejection('event', index, 'EVENT_BAD_TAG', `device ${JSON.stringify(event.deviceId.slice(0, 140))}: ${tagErr}`));
      const problem = this.eventProblem(event, now);
      if (problem) return out.rejections.push(rejection('event', index, problem[0], problem[1]));
      out.events.push({ index, event });
    });
    return out;
  }

  private timestampProblem(ts: number, now: number): string | undefined {
    if (!Number.isSafeInteger(ts)) return `timestamp ${ts} is not a whole number of milliseconds`;
    if (ts < this.limits.minTimestampMs) return `timestamp ${new Date(ts).toISOString()} is before ${new Date(this.limits.minTimestampMs).toISOString()}`;
    if (ts > now + this.limits.maxFutureSkewMs) return `timestamp ${new Date(ts).toISOString()} is ${ts - now} ms ahead of the cloud clock`;
    return undefined;
  }

  private readingProblem(r: Reading, now: number): [RejectionReason, string] | undefined {
    const where = `device ${r.deviceId}`;
    let count = 0;
    for (const name in r.values) {
      count++;
      if (!NAME.test(name) || RESERVED_FIELDS.has(name) || name === 'device_id' || (r.tags && name in r.tags)) {
        return ['READING_BAD_METRIC_NAME', `${where}: metric name ${JSON.stringify(name.slice(0, 140))} is not usable as an InfluxDB field`];
      }
      const v = r.values[name]!;
      if (typeof v === 'number') {
        if (!Number.isFinite(v)) return ['READING_NOT_FINITE', `${where}: metric ${name} is ${v}`];
      } else if (typeof v === 'string') {
        if (Buffer.byteLength(v) > this.limits.maxStringBytes) {
          return ['READING_VALUE_TOO_LONG', `${where}: metric ${name} is longer than ${this.limits.maxStringBytes} bytes`];
        }
      }
    }
    if (count === 0) return ['READING_NO_VALUES', `${where}: the reading has no metrics`];
    if (r.quality !== undefined && Buffer.byteLength(r.quality) > this.limits.maxStringBytes) {
      return ['READING_VALUE_TOO_LONG', `${where}: the quality flag is longer than ${this.limits.maxStringBytes} bytes`];
    }
    const tsErr = this.timestampProblem(r.ts, now);
    if (tsErr) return ['READING_BAD_TIMESTAMP', `${where}: ${tsErr}`];
    return undefined;
  }

  private eventProblem(e: DeviceEvent, now: number): [RejectionReason, string] | undefined {
    const where = `device ${e.deviceId} event ${e.id || '(no id)'}`;
    if (!e.type || e.type.length > MAX_TAG_VALUE || UNSAFE_TAG_TEXT.test(e.type)) {
      return ['EVENT_BAD_TYPE', `${where}: type ${JSON.stringify(e.type.slice(0, 140))} is empty, too long or has a control character or backslash`];
    }
    if (!e.id) return ['EVENT_NO_ID', `${where}: the event has no id`];
    if (Buffer.byteLength(e.id) > MAX_TAG_VALUE) return ['EVENT_NO_ID', `${where}: the event id is longer than ${MAX_TAG_VALUE} bytes`];
    if (Buffer.byteLength(JSON.stringify(e.attrs ?? {})) > this.limits.maxStringBytes) {
      return ['EVENT_TOO_LARGE', `${where}: attrs are longer than ${this.limits.maxStringBytes} bytes as JSON`];
    }
    const tsErr = this.timestampProblem(e.ts, now);
    if (tsErr) return ['EVENT_BAD_TIMESTAMP', `${where}: ${tsErr}`];
    return undefined;
  }
}
