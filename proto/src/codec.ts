// Encodes and decodes the edge → cloud contract (citysense.v1, proto/citysense/v1/ingest.proto).
// The wire form is compact (device and metric-name tables, time offsets, decimal values); this module
// turns it into the plain objects of types.ts and back, so neither side handles tables or offsets.
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { encodeBatchDirect, POW10 } from './encode/layout.ts';
import { ProtoDecodeError } from './errors.ts';
import { checkBatchWire, DEFAULT_DECODE_LIMITS, type DecodeLimits } from './wire-limits.ts';
import {
  FAMILIES,
  PRIORITIES,
  type Ack,
  type Batch,
  type DeviceEvent,
  type MetricValue,
  type Reading,
} from './types.ts';

// 64-bit fields (seq, timestamps) decode to plain numbers: every value we put there is far below 2^53,
// and Long objects on the hot path cost an allocation each.
protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

const PROTO_PATH = fileURLToPath(new URL('../citysense/v1/ingest.proto', import.meta.url));
const root = protobuf.loadSync(PROTO_PATH);
const BatchType = root.lookupType('citysense.v1.Batch');
const AckType = root.lookupType('citysense.v1.Ack');

export interface WireValue {
  key: number;
  f64?: number;
  dec?: number;
  scale?: number;
  flag?: boolean;
  text?: string;
}

export interface WireColumn {
  key: number;
  scale?: number;
  decDeltas?: number[];
  f64?: number[];
  flag?: boolean[];
  text?: string[];
}

export interface WireSeries {
  device: number;
  tags?: Record<string, string>;
  tsDeltas: number[];
  columns: WireColumn[];
  quality?: string[];
  deviceSeqDeltas?: number[];
}

function has(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

function checkScale(scale: number): number {
  if (scale >= POW10.length) throw new ProtoDecodeError('BATCH_BAD_VALUE', `decimal scale ${scale} is out of range (0-9)`);
  return POW10[scale]!;
}

function wireToValue(w: WireValue): MetricValue {
  if (has(w, 'dec')) {
    const p = checkScale(w.scale ?? 0);
    return p === 1 ? w.dec! : w.dec! / p;
  }
  if (has(w, 'f64')) return w.f64!;
  if (has(w, 'flag')) return w.flag!;
  if (has(w, 'text')) return w.text!;
  throw new ProtoDecodeError('BATCH_BAD_VALUE', 'a value carries no number, flag or text');
}

/**
 * Encodes a batch. Devices are tabled by id: the family and tags of a device's first reading or event in
 * the batch stand for all of them. A device with several readings of the same metric set travels as a
 * column Series, a lone reading in row form. Decoding returns row-form readings first, then each series in
 * order; reading indices in an Ack refer to that decoded order. Written by hand (encode/layout.ts): it is
 * the edge's hot path; the bytes are those protobufjs writes for the same wire form.
 */
export function encodeBatch(batch: Batch): Uint8Array {
  return encodeBatchDirect(batch);
}

interface WireBatch {
  edgeId: string;
  seq: number;
  createdMs: number;
  baseTsMs: number;
  devices: { id: string; family: number; tags: Record<string, string> }[];
  keys: string[];
  readings: { device: number; tsOffsetMs: number; values: WireValue[]; quality: string; deviceSeq: number; tags: Record<string, string> }[];
  events: {
    device: number;
    tsOffsetMs: number;
    type: string;
    attrs: Record<string, string>;
    priority: number;
    id: string;
    deviceSeq: number;
  }[];
  series: Required<WireSeries>[];
  drops: { deviceId: string; dataClass: string; reason: string; count: number; oldestTsMs: number }[];
  lane: number;
}

function columnValues(c: Required<WireColumn>, n: number, where: string): MetricValue[] {
  const lists = [c.decDeltas.length, c.f64.length, c.flag.length, c.text.length].filter((l) => l > 0);
  if (lists.length !== 1 || lists[0] !== n) {
    throw new ProtoDecodeError('BATCH_BAD_SERIES', `${where} must hold exactly ${n} values of one kind`);
  }
  if (c.decDeltas.length) {
    const p = checkScale(c.scale);
    const out = new Array<number>(n);
    let m = 0;
    for (let i = 0; i < n; i++) {
      m += c.decDeltas[i]!;
      out[i] = p === 1 ? m : m / p;
    }
    return out;
  }
  return c.f64.length ? c.f64 : c.flag.length ? c.flag : c.text;
}

/** A reading's tags: its device's, with its own on top (the same object when it has none of its own). */
function withTags(device: Record<string, string>, own: Record<string, string> | undefined): Record<string, string> {
  if (!own) return device;
  let any = false;
  for (const _ in own) {
    any = true;
    break;
  }
  return any ? { ...device, ...own } : device;
}

/**
 * A decoded reading's values: nothing inherited (a metric named `__proto__` or `toString` is an own
 * property like any other, a missing one is undefined), yet in V8's fast mode. `Object.create(null)`
 * objects are dictionaries: every for…in over them (validation, line protocol, continuity, alerts)
 * builds a fresh key list; objects made by a constructor share hidden classes and their enum cache.
 */
const Values = function Values() {} as unknown as { new (): Record<string, MetricValue> };
Values.prototype = Object.create(null) as Record<string, MetricValue>;

/**
 * Decodes and structurally checks a batch. Throws ProtoDecodeError with a stable code; ProtoLimitError
 * (a ProtoDecodeError) when the bytes pass one of `limits`, found by a counting pass before protobufjs
 * allocates anything per item (wire-limits.ts).
 */
export function decodeBatch(buf: Uint8Array, limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS): Batch {
  checkBatchWire(buf, limits);
  let w: WireBatch;
  try {
    w = BatchType.decode(buf) as unknown as WireBatch;
  } catch (err) {
    throw new ProtoDecodeError('BATCH_UNDECODABLE', `the body is not a citysense.v1.Batch: ${(err as Error).message}`);
  }
  if (!w.edgeId) throw new ProtoDecodeError('BATCH_NO_EDGE_ID', 'the batch has no edge_id');
  if (!w.seq) throw new ProtoDecodeError('BATCH_NO_SEQ', 'the batch has no seq (it must be 1 or more)');
  const families = w.devices.map((d, i) => {
    const f = FAMILIES[d.family - 1];
    if (!f) throw new ProtoDecodeError('BATCH_BAD_FAMILY', `device #${i} (${d.id}) has unknown family code ${d.family}`);
    if (!d.id) throw new ProtoDecodeError('BATCH_BAD_DEVICE', `device #${i} has no id`);
    return f;
  });
  const device = (ref: number, what: string) => {
    const d = w.devices[ref];
    if (!d) throw new ProtoDecodeError('BATCH_BAD_DEVICE_REF', `${what} refers to device #${ref}, the batch has ${w.devices.length}`);
    return d;
  };
  const keyName = (ref: number, what: string) => {
    const name = w.keys[ref];
    if (name === undefined) throw new ProtoDecodeError('BATCH_BAD_KEY_REF', `${what} refers to metric #${ref}, the batch has ${w.keys.length}`);
    return name;
  };
  const base = w.baseTsMs;
  const readings: Reading[] = w.readings.map((r, i) => {
    const d = device(r.device, `reading #${i}`);
    const values = new Values();
    for (const v of r.values) values[keyName(v.key, `reading #${i}`)] = wireToValue(v);
    const out: Reading = { deviceId: d.id, family: families[r.device]!, ts: base + r.tsOffsetMs, values, tags: withTags(d.tags, r.tags) };
    if (r.quality) out.quality = r.quality;
    if (r.deviceSeq) out.deviceSeq = r.deviceSeq;
    return out;
  });
  w.series.forEach((s, si) => {
    const where = `series #${si}`;
    const d = device(s.device, where);
    const n = s.tsDeltas.length;
    if (s.quality.length && s.quality.length !== n) throw new ProtoDecodeError('BATCH_BAD_SERIES', `${where} has ${s.quality.length} quality flags for ${n} readings`);
    if (s.deviceSeqDeltas.length && s.deviceSeqDeltas.length !== n) throw new ProtoDecodeError('BATCH_BAD_SERIES', `${where} has ${s.deviceSeqDeltas.length} device_seq for ${n} readings`);
    const cols = s.columns.map((c, ci) => ({ name: keyName(c.key, where), vals: columnValues(c as Required<WireColumn>, n, `${where} column #${ci}`) }));
    const tags = withTags(d.tags, s.tags);
    let ts = base;
    let seq = 0;
    for (let i = 0; i < n; i++) {
      ts += s.tsDeltas[i]!;
      const values = new Values();
      for (const c of cols) values[c.name] = c.vals[i]!;
      const out: Reading = { deviceId: d.id, family: families[s.device]!, ts, values, tags };
      if (s.quality[i]) out.quality = s.quality[i]!;
      if (s.deviceSeqDeltas.length) {
        seq += s.deviceSeqDeltas[i]!;
        if (seq) out.deviceSeq = seq;
      }
      readings.push(out);
    }
  });
  const events: DeviceEvent[] = w.events.map((e, i) => {
    const d = device(e.device, `event #${i}`);
    const out: DeviceEvent = {
      deviceId: d.id,
      family: families[e.device]!,
      ts: base + e.tsOffsetMs,
      type: e.type,
      attrs: e.attrs,
      priority: PRIORITIES[e.priority - 1] ?? 'routine',
      id: e.id,
      tags: d.tags,
    };
    if (e.deviceSeq) out.deviceSeq = e.deviceSeq;
    return out;
  });
  const out: Batch = { edgeId: w.edgeId, seq: w.seq, createdMs: w.createdMs, readings, events };
  if (w.drops.length) {
    out.drops = w.drops.map((d) => ({ deviceId: d.deviceId, dataClass: d.dataClass === 'alarm' ? 'alarm' : 'telemetry', reason: d.reason, count: d.count, oldestTsMs: d.oldestTsMs }));
  }
  if (w.lane) out.lane = w.lane === 2 ? 'alarm' : 'telemetry';
  return out;
}

export function encodeAck(ack: Ack): Uint8Array {
  return AckType.encode(AckType.fromObject(ack as unknown as Record<string, unknown>)).finish();
}

export function decodeAck(buf: Uint8Array): Ack {
  let a: Ack;
  try {
    a = AckType.toObject(AckType.decode(buf), { defaults: true, arrays: true }) as unknown as Ack;
  } catch (err) {
    throw new ProtoDecodeError('ACK_UNDECODABLE', `the answer is not a citysense.v1.Ack: ${(err as Error).message}`);
  }
  return a;
}
