// The protobufjs path of encodeBatch as it was before proto/src/encode-batch.ts (test-only): it builds the
// wire object graph and lets protobufjs encode it. proto/test/encode-batch.test.ts and proto/bench/encode.ts
// compare the hand-written encoder's bytes and cost with it. Keep it as it is: it is the reference.
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { WireColumn, WireSeries, WireValue } from '../src/codec.ts';
import type { Batch, Family, MetricValue, Priority, Reading } from '../src/types.ts';

// As in codec.ts: 64-bit fields as plain numbers.
protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

const PROTO_PATH = fileURLToPath(new URL('../citysense/v1/ingest.proto', import.meta.url));
const BatchType = protobuf.loadSync(PROTO_PATH).lookupType('citysense.v1.Batch');

const FAMILY_CODE: Record<Family, number> = { environment: 1, elevator: 2, fire: 3, nbiot: 4 };
const PRIORITY_CODE: Record<Priority, number> = { routine: 1, warning: 2, alarm: 3 };
const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

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
export function encodeBatchReference(batch: Batch): Uint8Array {
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
