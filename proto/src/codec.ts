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

interface WireValue {
  key: number;
  f64?: number;
  dec?: number;
  scale?: number;
  flag?: boolean;
  text?: string;
}

interface WireColumn {
  key: number;
  scale?: number;
  decDeltas?: number[];
  f64?: number[];
  flag?: boolean[];
  text?: string[];
}

interface WireSeries {
  device: number;
  tags?: Record<string, string>;
  tsDeltas: number[];
  columns: WireColumn[];
  quality?: string[];
  deviceSeqDeltas?: number[];
}

/** Smallest number of decimal digits that represents `v` exactly, or -1 (then it travels as a double). */
function decimalScale(v: number): number {
  if (!Number.isFinite(v) || Object.is(v, -0)) return -1;
  for (let scale = 0; scale < POW10.length; scale++) {
    const p = POW10[scale]!;
    const m = Math.round(v * p);
    if (!Number.isSafeInteger(m)) return -1;
    if (m / p === v) return scale;
  }
  return -1;
}

/** The mantissa of `v` at `scale`, or undefined when that is not exact. */
function mantissa(v: number, scale: number): number | undefined {
  const p = POW10[scale]!;
  const m = Math.round(v * p);
  return Number.isSafeInteger(m) && (scale === 0 ? m : m / p) === v ? m : undefined;
}

function numberToWire(key: number, v: number): WireValue {
  const scale = decimalScale(v);
  if (scale < 0) return { key, f64: v };
  const m = mantissa(v, scale)!;
  return scale === 0 ? { key, dec: m } : { key, dec: m, scale };
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

/** One column of a series: decimal deltas when every value is an exact decimal, else the plain list. */
function encodeColumn(key: number, vals: MetricValue[]): WireColumn {
  const first = vals[0];
  if (typeof first === 'boolean') return { key, flag: vals as boolean[] };
  if (typeof first === 'string') return { key, text: vals as string[] };
  const nums = vals as number[];
  let scale = 0;
  for (const v of nums) {
    const s = decimalScale(v);
    if (s < 0) return { key, f64: nums };
    if (s > scale) scale = s;
  }
  const decDeltas = new Array<number>(nums.length);
  let prev = 0;
  for (let i = 0; i < nums.length; i++) {
    const m = mantissa(nums[i]!, scale);
    if (m === undefined) return { key, f64: nums };
    decDeltas[i] = m - prev;
    prev = m;
  }
  return scale === 0 ? { key, decDeltas } : { key, scale, decDeltas };
}

function kindOf(v: MetricValue): string {
  return typeof v === 'number' ? 'n' : typeof v === 'boolean' ? 'b' : 's';
}

/**
 * Builds the wire form of a batch. Devices are tabled by id: the family and tags of a device's first
 * reading or event in the batch stand for all of them. A device with several readings of the same metric
 * set travels as a column Series, a lone reading in row form. Decoding returns row-form readings first,
 * then each series in order; reading indices in an Ack refer to that decoded order.
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

  /** A reading's tags beyond its device's (first-seen) tags: what varies per reading. */
  const extraTags = (r: Reading): Record<string, string> | undefined => {
    if (!r.tags) return undefined;
    const dev = devices[deviceIndex.get(r.deviceId)!]!.tags;
    let extra: Record<string, string> | undefined;
    for (const k in r.tags) {
      if (dev[k] !== r.tags[k]) (extra ??= {})[k] = r.tags[k]!;
    }
    return extra;
  };

  // Group readings by device, extra tags and metric signature (names and value kinds, in order).
  const groups = new Map<string, Reading[]>();
  const perDevice = new Map<string, number>();
  for (const r of batch.readings) perDevice.set(r.deviceId, (perDevice.get(r.deviceId) ?? 0) + 1);
  const readings: Record<string, unknown>[] = [];
  for (const r of batch.readings) {
    const dev = deviceRef(r.deviceId, r.family, r.tags);
    if (perDevice.get(r.deviceId) === 1) {
      const values: WireValue[] = [];
      for (const name in r.values) {
        const v = r.values[name]!;
        const key = keyRef(name);
        if (typeof v === 'number') values.push(numberToWire(key, v));
        else if (typeof v === 'boolean') values.push({ key, flag: v });
        else values.push({ key, text: String(v) });
      }
      const w: Record<string, unknown> = { device: dev, tsOffsetMs: r.ts - base, values };
      if (r.quality) w.quality = r.quality;
      if (r.deviceSeq) w.deviceSeq = r.deviceSeq;
      const extra = extraTags(r);
      if (extra) w.tags = extra;
      readings.push(w);
      continue;
    }
    const extra = extraTags(r);
    let sig = extra ? `${dev}\u0002${JSON.stringify(extra)}` : String(dev);
    for (const name in r.values) sig += `\u0000${name}\u0001${kindOf(r.values[name]!)}`;
    let g = groups.get(sig);
    if (!g) groups.set(sig, (g = []));
    g.push(r);
  }

  const series: WireSeries[] = [];
  for (const g of groups.values()) {
    const first = g[0]!;
    const tsDeltas = new Array<number>(g.length);
    let prevTs = base;
    let anyQuality = false;
    let anySeq = false;
    for (let i = 0; i < g.length; i++) {
      const r = g[i]!;
      tsDeltas[i] = r.ts - prevTs;
      prevTs = r.ts;
      if (r.quality) anyQuality = true;
      if (r.deviceSeq) anySeq = true;
    }
    const columns: WireColumn[] = [];
    for (const name in first.values) columns.push(encodeColumn(keyRef(name), g.map((r) => r.values[name]!)));
    const s: WireSeries = { device: deviceIndex.get(first.deviceId)!, tsDeltas, columns };
    const extra = extraTags(first);
    if (extra) s.tags = extra;
    if (anyQuality) s.quality = g.map((r) => r.quality ?? '');
    if (anySeq) {
      let prev = 0;
      s.deviceSeqDeltas = g.map((r) => {
        const d = (r.deviceSeq ?? 0) - prev;
        prev = r.deviceSeq ?? 0;
        return d;
      });
    }
    series.push(s);
  }

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
  const extra: Record<string, unknown> = {};
  if (batch.drops?.length) extra.drops = batch.drops;
  if (batch.lane) extra.lane = batch.lane === 'alarm' ? 2 : 1;
  // encode() takes the plain object as it is: every field already has its wire type (numbers for enums,
  // plain numbers for 64-bit fields), so fromObject's second copy of the whole graph is skipped.
  return BatchType.encode({
    ...extra,
    edgeId: batch.edgeId,
    seq: batch.seq,
    createdMs: batch.createdMs,
    baseTsMs: base,
    devices,
    keys,
    readings,
    events,
    series,
  }).finish();
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
  const keyName = (ref: number, what: string) => {
    const name = w.keys[ref];
    if (name === undefined) throw new ProtoDecodeError('BATCH_BAD_KEY_REF', `${what} refers to metric #${ref}, the batch has ${w.keys.length}`);
    return name;
  };
  const base = w.baseTsMs;
  const readings: Reading[] = w.readings.map((r, i) => {
    const d = device(r.device, `reading #${i}`);
    const values: Record<string, MetricValue> = Object.create(null); // a metric named __proto__ must not vanish
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
      const values: Record<string, MetricValue> = Object.create(null); // a metric named __proto__ must not vanish
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
