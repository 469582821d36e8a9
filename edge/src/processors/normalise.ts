// Validation and normalisation: decoded candidates become the Readings and DeviceEvents of the
// contract, stamped with the device's family and tags. Pure: no I/O, the clock is passed in.
import type { DeviceEvent, MetricValue, Reading } from '@citysense/proto';
import type { Device } from '../registry/registry.ts';
import {
  MESSAGE_REJECT,
  VALUE_REJECT,
  type DecodedEvent,
  type DecodedTelemetry,
  type MessageRejectReason,
  type ValueRejection,
} from '../decoders/json/json.ts';
import { eventId, priorityOf } from './event-identity.ts';

/** Quality mark of a reading kept at the edge's receive time because its own time was implausible. */
export const CLOCK_SKEW_QUALITY = 'clock_skew';

export interface NormaliseOptions {
  maxFutureSkewMs: number;
  maxPastAgeMs: number;
  maxMetricsPerMessage: number;
  maxStringValueLength: number;
  clockSkew: 'reject' | 'flag';
  alarmTypes: readonly string[];
  warningTypes: readonly string[];
}

/** InfluxDB field keys we are willing to write: no spaces, quotes or commas to escape downstream. */
const METRIC_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Names already found valid: a fleet uses a few dozen, checked once each instead of per message. */
const goodNames = new Set<string>();
const GOOD_NAMES_MAX = 4096;
function validName(name: string): boolean {
  if (goodNames.has(name)) return true;
  if (!METRIC_NAME.test(name)) return false;
  if (goodNames.size < GOOD_NAMES_MAX) goodNames.add(name);
  return true;
}

export type Normalised<T> =
  | { ok: true; item: T; rejected: ValueRejection[] }
  | { ok: false; reason: MessageRejectReason; detail: string; rejected: ValueRejection[] };

function checkTs(ts: number, now: number, o: NormaliseOptions): { reason: MessageRejectReason; detail: string } | undefined {
  if (ts > now + o.maxFutureSkewMs) {
    return { reason: MESSAGE_REJECT.clockSkewFuture, detail: `ts is ${ts - now} ms ahead of the edge's clock` };
  }
  if (ts < now - o.maxPastAgeMs) {
    return { reason: MESSAGE_REJECT.clockSkewPast, detail: `ts is ${now - ts} ms behind the edge's clock` };
  }
  return undefined;
}

export function normaliseReading(device: Device, d: DecodedTelemetry, now: number, o: NormaliseOptions): Normalised<Reading> {
  const rejected: ValueRejection[] = d.rejected.length > 0 ? d.rejected.slice() : [];
  const names = Object.keys(d.values);
  if (names.length + d.rejected.length > o.maxMetricsPerMessage) {
    return { ok: false, reason: MESSAGE_REJECT.tooManyMetrics, detail: `more than ${o.maxMetricsPerMessage} metrics`, rejected: [] };
  }
  let ts = d.ts ?? now;
  let quality = d.quality;
  const values: Record<string, MetricValue> = {};
  const skew = checkTs(ts, now, o);
  if (skew) {
    if (o.clockSkew === 'reject') return { ok: false, ...skew, rejected: [] };
    // Kept, at the time the edge received it, and marked: a sensor with a dead clock still reports.
    values.device_ts = ts;
    ts = now;
    quality = quality ? `${quality},${CLOCK_SKEW_QUALITY}` : CLOCK_SKEW_QUALITY;
  }
  let count = 0;
  for (const name of names) {
    const v = d.values[name]!;
    if (!validName(name)) rejected.push({ name, reason: VALUE_REJECT.badName });
    else if (typeof v === 'string' && v.length > o.maxStringValueLength) rejected.push({ name, reason: VALUE_REJECT.stringTooLong });
    else {
      values[name] = v;
      count++;
    }
  }
  if (count === 0) {
    return { ok: false, reason: MESSAGE_REJECT.noMetrics, detail: 'no valid metric value in the message', rejected };
  }
  // The registry's tags (district above all) are not the sample's to change. Without sample tags the
  // reading shares the device's frozen tags object (nothing downstream writes to a reading's tags).
  const item: Reading = { deviceId: device.id, family: device.family, ts, values, tags: d.tags ? { ...d.tags, ...device.tags } : device.tags };
  if (quality) item.quality = quality;
  return { ok: true, item, rejected };
}

/** `priority`, when given, is the profile's word for this event and wins over the type lists. */
export function normaliseEvent(device: Device, d: DecodedEvent, now: number, o: NormaliseOptions, priority?: DeviceEvent['priority']): Normalised<DeviceEvent> {
  let ts = d.ts ?? now;
  const skew = checkTs(ts, now, o);
  // An alarm is never refused for its clock: with `flag` it takes the receive time (device_ts in attrs).
  if (skew && o.clockSkew === 'reject' && (priority ?? priorityOf(d.type, o)) !== 'alarm') return { ok: false, ...skew, rejected: [] };
  const attrs0: Record<string, string> = {};
  if (skew) {
    attrs0.device_ts = String(ts);
    ts = now;
  }
  const attrs: Record<string, string> = attrs0;
  for (const [k, v] of Object.entries(d.attrs)) attrs[k] = v.length > o.maxStringValueLength ? v.slice(0, o.maxStringValueLength) : v;
  return {
    ok: true,
    rejected: [],
    item: {
      deviceId: device.id,
      family: device.family,
      ts,
      type: d.type,
      attrs,
      priority: priority ?? priorityOf(d.type, o),
      id: eventId(device.id, d.ts, d.type, attrs),
      tags: { ...device.tags },
    },
  };
}
