// Encodes and decodes the edge → cloud contract (citysense.v1, proto/citysense/v1/ingest.proto).
// The wire form is compact (device and metric-name tables, time offsets, decimal values); this module
// turns it into the plain objects of types.ts and back, so neither side handles tables or offsets.
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { ProtoDecodeError } from './errors.ts';
import {
  FAMILIES,
  PRIORITIES,
  type Ack,
  type Batch,
  type DeviceEvent,
  type Family,
  type MetricValue,
  type Priority,
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

const FAMILY_CODE: Record<Family, number> = { environment: 1, elevator: 2, fire: 3, nbiot: 4 };
const PRIORITY_CODE: Record<Priority, number> = { routine: 1, warning: 2, alarm: 3 };
const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
const INT32_MAX = 2147483647;

interface WireValue {
  key: number;
  f64?: number;
  dec?: number;
  scale?: number;
  flag?: boolean;
  text?: string;
}

/** Encodes a number as an exact decimal when it round-trips, else as a double. */
function numberToWire(key: number, v: number): WireValue {
  if (Number.isFinite(v) && !Object.is(v, -0)) {
    for (let scale = 0; scale < POW10.length; scale++) {
      const p = POW10[scale]!;
      const m = Math.round(v * p);
      if (m > INT32_MAX || m < -INT32_MAX) break;
      if (m / p === v) return scale === 0 ? { key, dec: m } : { key, dec: m, scale };
    }
  }
  return { key, f64: v };
}

function has(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

function wireToValue(w: WireValue): MetricValue {
  if (has(w, 'dec')) {
    const scale = w.scale ?? 0;
    if (scale >= POW10.length) throw new ProtoDecodeError('BATCH_BAD_VALUE', `decimal scale ${scale} is out of range (0-9)`);
    return scale === 0 ? w.dec! : w.dec! / POW10[scale]!;
  }
  if (has(w, 'f64')) return w.f64!;
  if (has(w, 'flag')) return w.flag!;
  if (has(w, 'text')) return w.text!;
  throw new ProtoDecodeError('BATCH_BAD_VALUE', 'a value carries no number, flag or text');
}

/**
 * Builds the wire form of a batch. Devices are tabled by id: the family and tags of a device's first
 * reading or event in the batch stand for all of them.
 */
export function encodeBatch(batch: Batch): Uint8Array {
  const deviceIndex = new Map<string, number>();
  const devices: { id: string; family: number; tags: Record<string, string> }[] = [];
  const keyIndex = new Map<string, number>();
  const keys: string[] = [];
  let base = Infinity;
  for (const r of batch.readings) if (r.ts < base) base = r.ts;
  for (const e of batch.events) if (e.ts < base) base = e.ts;
  if (base === Infinity) base = batch.createdMs;

  const deviceRef = (id: string, family: Family, tags: Record<string, string> | undefined): number => {
    let i = deviceIndex.get(id);
    if (i === undefined) {
      i = devices.length;
      deviceIndex.set(id, i);
      devices.push({ id, family: FAMILY_CODE[family] ?? 0, tags: tags ?? {} });
    }
    return i;
  };
  const keyRef = (k: string): number => {
    let i = keyIndex.get(k);
    if (i === undefined) {
      i = keys.length;
      keyIndex.set(k, i);
      keys.push(k);
    }
    return i;
  };

  const readings = batch.readings.map((r) => {
    const values: WireValue[] = [];
    for (const name in r.values) {
      const v = r.values[name]!;
      const key = keyRef(name);
      if (typeof v === 'number') values.push(numberToWire(key, v));
      else if (typeof v === 'boolean') values.push({ key, flag: v });
      else values.push({ key, text: String(v) });
    }
    const w: Record<string, unknown> = { device: deviceRef(r.deviceId, r.family, r.tags), tsOffsetMs: r.ts - base, values };
    if (r.quality) w.quality = r.quality;
    if (r.deviceSeq) w.deviceSeq = r.deviceSeq;
    return w;
  });
  const events = batch.events.map((e) => {
    const w: Record<string, unknown> = {
      device: deviceRef(e.deviceId, e.family, e.tags),
      tsOffsetMs: e.ts - base,
      type: e.type,
      attrs: e.attrs,
      priority: PRIORITY_CODE[e.priority] ?? 0,
      id: e.id,
    };
    if (e.deviceSeq) w.deviceSeq = e.deviceSeq;
    return w;
  });
  const msg = BatchType.fromObject({
    edgeId: batch.edgeId,
    seq: batch.seq,
    createdMs: batch.createdMs,
    baseTsMs: base,
    devices,
    keys,
    readings,
    events,
  });
  return BatchType.encode(msg).finish();
}

interface WireBatch {
  edgeId: string;
  seq: number;
  createdMs: number;
  baseTsMs: number;
  devices: { id: string; family: number; tags: Record<string, string> }[];
  keys: string[];
  readings: { device: number; tsOffsetMs: number; values: WireValue[]; quality: string; deviceSeq: number }[];
  events: {
    device: number;
    tsOffsetMs: number;
    type: string;
    attrs: Record<string, string>;
    priority: number;
    id: string;
    deviceSeq: number;
  }[];
}

/** Decodes and structurally checks a batch. Throws ProtoDecodeError with a stable code. */
export function decodeBatch(buf: Uint8Array): Batch {
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
  const base = w.baseTsMs;
  const readings: Reading[] = w.readings.map((r, i) => {
    const d = device(r.device, `reading #${i}`);
    const values: Record<string, MetricValue> = {};
    for (const v of r.values) {
      const name = w.keys[v.key];
      if (name === undefined) throw new ProtoDecodeError('BATCH_BAD_KEY_REF', `reading #${i} refers to metric #${v.key}, the batch has ${w.keys.length}`);
      values[name] = wireToValue(v);
    }
    const out: Reading = { deviceId: d.id, family: families[r.device]!, ts: base + r.tsOffsetMs, values, tags: d.tags };
    if (r.quality) out.quality = r.quality;
    if (r.deviceSeq) out.deviceSeq = r.deviceSeq;
    return out;
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
  return { edgeId: w.edgeId, seq: w.seq, createdMs: w.createdMs, readings, events };
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
