// The generic JSON profile (contracts.md, "MQTT: generic JSON profile"): turns a payload into candidate
// values. Decoding only checks shape and JSON types; naming rules and clock skew are the normaliser's.
import type { MetricValue } from '@citysense/proto';
import { DEFAULT_JSON_LIMITS, jsonShapeProblem, type JsonLimits } from './limits.ts';

/** Why a whole message was refused. Stable: metric labels and docs use them. */
export const MESSAGE_REJECT = {
  malformedJson: 'malformed_json',
  duplicate: 'duplicate',
  undecodable: 'undecodable',
  noValidValues: 'no_valid_values',
  notAnObject: 'not_an_object',
  badTs: 'bad_ts',
  noMetrics: 'no_metrics',
  badType: 'bad_event_type',
  tooManyMetrics: 'too_many_metrics',
  payloadTooLarge: 'payload_too_large',
  tooDeep: 'too_deep',
  tooManyMembers: 'too_many_members',
  clockSkewFuture: 'clock_skew_future',
  clockSkewPast: 'clock_skew_past',
} as const;
export type MessageRejectReason = (typeof MESSAGE_REJECT)[keyof typeof MESSAGE_REJECT];

/** Why a single value was refused while its neighbours went on. */
export const VALUE_REJECT = {
  badType: 'bad_value_type',
  notFinite: 'not_finite',
  badName: 'bad_metric_name',
  stringTooLong: 'string_too_long',
} as const;
export type ValueRejectReason = (typeof VALUE_REJECT)[keyof typeof VALUE_REJECT];

export interface ValueRejection {
  name: string;
  reason: ValueRejectReason;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: MessageRejectReason; detail: string };

export interface DecodedTelemetry {
  ts: number | undefined;
  values: Record<string, MetricValue>;
  rejected: ValueRejection[];
  /** A data-quality flag from the source, carried as the reading's `quality`. */
  quality?: string | undefined;
  /** Tags of this reading beyond the device's. */
  tags?: Record<string, string> | undefined;
}

/** Where a device model keeps its time and metrics (the profile's `json` section). */
export interface JsonLayout {
  metricsKey: string;
  tsKey: string;
  tsUnit: 'ms' | 's';
}
const CONTRACT_LAYOUT: JsonLayout = { metricsKey: 'metrics', tsKey: 'ts', tsUnit: 'ms' };

export interface DecodedEvent {
  ts: number | undefined;
  type: string;
  attrs: Record<string, string>;
}

function parseObject(payload: Uint8Array, limits: Readonly<JsonLimits>): Decoded<Record<string, unknown>> {
  // Size, depth and member count before JSON.parse builds the object graph (limits.ts).
  const shape = jsonShapeProblem(payload, limits);
  if (shape) return { ok: false, reason: shape.reason, detail: shape.detail };
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch (err) {
    return { ok: false, reason: MESSAGE_REJECT.malformedJson, detail: (err as Error).message };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return { ok: false, reason: MESSAGE_REJECT.notAnObject, detail: 'the payload must be a JSON object' };
  }
  return { ok: true, value: v as Record<string, unknown> };
}

function parseTs(ts: unknown): Decoded<number | undefined> {
  if (ts === undefined || ts === null) return { ok: true, value: undefined };
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) {
    return { ok: false, reason: MESSAGE_REJECT.badTs, detail: 'ts must be whole milliseconds since the Unix epoch' };
  }
  return { ok: true, value: ts };
}

export function decodeTelemetry(payload: Uint8Array, layout: JsonLayout = CONTRACT_LAYOUT, limits: Readonly<JsonLimits> = DEFAULT_JSON_LIMITS): Decoded<DecodedTelemetry> {
  const o = parseObject(payload, limits);
  if (!o.ok) return o;
  const rawTs = o.value[layout.tsKey];
  const ts = parseTs(layout.tsUnit === 's' && typeof rawTs === 'number' ? Math.round(rawTs * 1000) : rawTs);
  if (!ts.ok) return ts;
  const metrics = o.value[layout.metricsKey];
  if (typeof metrics !== 'object' || metrics === null || Array.isArray(metrics)) {
    return { ok: false, reason: MESSAGE_REJECT.noMetrics, detail: 'metrics must be an object of name: value' };
  }
  const values: Record<string, MetricValue> = {};
  const rejected: ValueRejection[] = [];
  for (const [name, v] of Object.entries(metrics as Record<string, unknown>)) {
    if (typeof v === 'number') {
      if (Number.isFinite(v)) values[name] = v;
      else rejected.push({ name, reason: VALUE_REJECT.notFinite });
    } else if (typeof v === 'boolean' || typeof v === 'string') {
      values[name] = v;
    } else {
      rejected.push({ name, reason: VALUE_REJECT.badType });
    }
  }
  return { ok: true, value: { ts: ts.value, values, rejected } };
}

export function decodeEvent(payload: Uint8Array, limits: Readonly<JsonLimits> = DEFAULT_JSON_LIMITS): Decoded<DecodedEvent> {
  const o = parseObject(payload, limits);
  if (!o.ok) return o;
  const ts = parseTs(o.value.ts);
  if (!ts.ok) return ts;
  const type = o.value.type;
  if (typeof type !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(type)) {
    return { ok: false, reason: MESSAGE_REJECT.badType, detail: 'type must be a name like fire_alarm' };
  }
  const attrs: Record<string, string> = {};
  const raw = o.value.attrs;
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      if (v === null || v === undefined) continue;
      attrs[k] = typeof v === 'object' ? JSON.stringify(v) : String(v);
    }
  }
  return { ok: true, value: { ts: ts.value, type, attrs } };
}
