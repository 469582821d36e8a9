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

/**
 * Metric names repeat in every reading: the verdict of NAME and the reserved names is kept per distinct
 * name. Bounded: past MAX_NAME_VERDICTS distinct names it starts over.
 */
const MAX_NAME_VERDICTS = 4096;
const nameVerdicts = new Map<string, boolean>();

function usableFieldName(name: string): boolean {
  let ok = nameVerdicts.get(name);
  if (ok === undefined) {
    ok = NAME.test(name) && !RESERVED_FIELDS.has(name) && name !== 'device_id';
    if (nameVerdicts.size >= MAX_NAME_VERDICTS) nameVerdicts.clear();
    nameVerdicts.set(name, ok);
  }
  return ok;
}

/**
 * Per-batch memo of device id and tag checks. Devices share one tags object per batch (codec.ts), so
 * tags are checked once per object; a device's readings come one after another, so the last device id
 * is remembered, and the others in a Map.
 */
class TagCheck {
  private readonly byTags = new Map<object, string | undefined>();
  private readonly byId = new Map<string, string | undefined>();
  private lastId: string | undefined;
  private lastIdErr: string | undefined;
  private lastTags: object | undefined;
  private lastTagsErr: string | undefined;

  problem(deviceId: string, tags: Record<string, string> | undefined): string | undefined {
    let idErr: string | undefined;
    if (deviceId === this.lastId) idErr = this.lastIdErr;
    else {
      if (this.byId.has(deviceId)) idErr = this.byId.get(deviceId);
      else {
        idErr = deviceIdProblem(deviceId);
        this.byId.set(deviceId, idErr);
      }
      this.lastId = deviceId;
      this.lastIdErr = idErr;
    }
    if (idErr || !tags) return idErr;
    if (tags === this.lastTags) return this.lastTagsErr;
    let p: string | undefined;
    if (this.byTags.has(tags)) p = this.byTags.get(tags);
    else {
      p = tagProblem(tags);
      this.byTags.set(tags, p);
    }
    this.lastTags = tags;
    this.lastTagsErr = p;
    return p;
  }
}

export class BatchValidator {
  constructor(
    private readonly limits: ValidationLimits,
    private readonly now: () => number = Date.now,
  ) {}

  validate(batch: Batch): ValidatedBatch {
    const now = this.now();
    const out: ValidatedBatch = { readings: [], events: [], rejections: [] };
    const tagCheck = new TagCheck();
    const readings = batch.readings;
    for (let index = 0; index < readings.length; index++) {
      const reading = readings[index]!;
      const tagErr = tagCheck.problem(reading.deviceId, reading.tags);
      if (tagErr) {
        out.rejections.push(rejection('reading', index, 'READING_BAD_TAG', `device ${JSON.stringify(reading.deviceId.slice(0, 140))}: ${tagErr}`));
        continue;
      }
      const problem = this.readingProblem(reading, now);
      if (problem) out.rejections.push(rejection('reading', index, problem[0], problem[1]));
      else out.readings.push({ index, reading });
    }
    const events = batch.events;
    for (let index = 0; index < events.length; index++) {
      const event = events[index]!;
      const tagErr = tagCheck.problem(event.deviceId, event.tags);
      if (tagErr) {
        out.rejections.push(rejection('event', index, 'EVENT_BAD_TAG', `device ${JSON.stringify(event.deviceId.slice(0, 140))}: ${tagErr}`));
        continue;
      }
      const problem = this.eventProblem(event, now);
      if (problem) out.rejections.push(rejection('event', index, problem[0], problem[1]));
      else out.events.push({ index, event });
    }
    return out;
  }

  private timestampProblem(ts: number, now: number): string | undefined {
    if (!Number.isSafeInteger(ts)) return `timestamp ${ts} is not a whole number of milliseconds`;
    if (ts < this.limits.minTimestampMs) return `timestamp ${new Date(ts).toISOString()} is before ${new Date(this.limits.minTimestampMs).toISOString()}`;
    if (ts > now + this.limits.maxFutureSkewMs) return `timestamp ${new Date(ts).toISOString()} is ${ts - now} ms ahead of the cloud clock`;
    return undefined;
  }

  private readingProblem(r: Reading, now: number): [RejectionReason, string] | undefined {
    const tags = r.tags;
    const values = r.values;
    let count = 0;
    for (const name in values) {
      count++;
      if (!usableFieldName(name) || (tags !== undefined && name in tags)) {
        return ['READING_BAD_METRIC_NAME', `device ${r.deviceId}: metric name ${JSON.stringify(name.slice(0, 140))} is not usable as an InfluxDB field`];
      }
      const v = values[name]!;
      if (typeof v === 'number') {
        if (!Number.isFinite(v)) return ['READING_NOT_FINITE', `device ${r.deviceId}: metric ${name} is ${v}`];
      } else if (typeof v === 'string') {
        if (Buffer.byteLength(v) > this.limits.maxStringBytes) {
          return ['READING_VALUE_TOO_LONG', `device ${r.deviceId}: metric ${name} is longer than ${this.limits.maxStringBytes} bytes`];
        }
      }
    }
    if (count === 0) return ['READING_NO_VALUES', `device ${r.deviceId}: the reading has no metrics`];
    if (r.quality !== undefined && Buffer.byteLength(r.quality) > this.limits.maxStringBytes) {
      return ['READING_VALUE_TOO_LONG', `device ${r.deviceId}: the quality flag is longer than ${this.limits.maxStringBytes} bytes`];
    }
    const ts = r.ts;
    // The common case (a whole ms inside the window) without building anything.
    if (Number.isSafeInteger(ts) && ts >= this.limits.minTimestampMs && ts <= now + this.limits.maxFutureSkewMs) return undefined;
    const tsErr = this.timestampProblem(ts, now);
    if (tsErr) return ['READING_BAD_TIMESTAMP', `device ${r.deviceId}: ${tsErr}`];
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
