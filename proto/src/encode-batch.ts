// citysense.v1.Batch encoder, written by hand instead of through protobufjs. The reason is speed: the
// edge encodes every reading twice (once into the durable queue's part records, once into the uplink
// batch). protobufjs first needs an object graph of the wire form (Value, Series and Column objects,
// delta arrays). In the edge's profile, that graph's garbage plus encodeBatch's own time was the biggest
// cost after GC. This file writes the bytes directly into one reused buffer.
//
// The output is byte for byte what protobufjs 8 writes for the graph the old encodeBatch built. It uses
// the same device and key tables, the same row/series choice and the same decimal scales, and it copies
// protobufjs's rules:
//   * fields go out in field-number order;
//   * a plain proto3 scalar is written when it is not the default;
//   * a oneof member (Value.f64/dec/flag/text) is written whenever it is set, default or not;
//   * repeated numbers are packed;
//   * map entries are {key = 1, value = 2};
//   * 64-bit numbers follow LongBits.fromNumber, so a negative one is a 10-byte varint;
//   * a string shorter than 40 UTF-16 units goes through protobufjs's own UTF-8 writer (a lone surrogate
//     becomes 3 WTF-8 bytes), a longer one through Buffer (which writes U+FFFD).
// proto/test/encode-batch.test.ts compares the bytes with the protobufjs path
// (proto/test/encode-batch-reference.ts) on thousands of random batches. A change to ingest.proto's Batch
// must be made here as well.
import type { Batch, DeviceEvent, Family, MetricValue, Priority, Reading } from './types.ts';

const FAMILY_CODE: Record<Family, number> = { environment: 1, elevator: 2, fire: 3, nbiot: 4 };
const PRIORITY_CODE: Record<Priority, number> = { routine: 1, warning: 2, alarm: 3 };
/** 10^scale for the decimal scales the wire carries (0-9); decodeBatch refuses any other. */
export const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
const EMPTY_TAGS: Record<string, string> = {};

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

// ---- writer: one buffer, reused across calls (encodeBatch is synchronous) ----------------------------

const KEEP_BYTES = 4 << 20; // a bigger buffer, grown for an unusual batch, is not kept
let buf = Buffer.allocUnsafeSlow(64 << 10);
let pos = 0;
const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);

function grow(n: number): void {
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const next = Buffer.allocUnsafeSlow(size);
  buf.copy(next, 0, 0, pos);
  buf = next;
}

/** Room for n more bytes. */
function ensure(n: number): void {
  if (pos + n > buf.length) grow(n);
}

/** An unsigned 32-bit varint (room ensured by the caller). */
function varint32(v: number): void {
  while (v > 127) {
    buf[pos++] = (v & 127) | 128;
    v >>>= 7;
  }
  buf[pos++] = v;
}

function varint64(lo: number, hi: number): void {
  while (hi) {
    buf[pos++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 127) {
    buf[pos++] = (lo & 127) | 128;
    lo = lo >>> 7;
  }
  buf[pos++] = lo;
}

// The two 32-bit halves of a 64-bit two's complement number (module state: no object per value).
let bitsLo = 0;
let bitsHi = 0;
/** As protobufjs's LongBits.fromNumber: magnitude split in halves, negated over 64 bits when negative. */
function longBits(value: number): void {
  const sign = value < 0;
  if (sign) value = -value;
  let lo = value >>> 0;
  let hi = ((value - lo) / 4294967296) >>> 0;
  if (sign) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
    if (++lo > 4294967295) {
      lo = 0;
      if (++hi > 4294967295) hi = 0;
    }
  }
  bitsLo = lo;
  bitsHi = hi;
}

/** uint64 / int64 from a JS number, as protobufjs's LongBits.fromNumber (negatives: 10 bytes). */
function int64(value: number): void {
  ensure(10);
  if (value >= 0 && value <= 0x7fffffff && (value | 0) === value) {
    varint32(value);
    return;
  }
  if (value === 0) {
    buf[pos++] = 0;
    return;
  }
  longBits(value);
  varint64(bitsLo, bitsHi);
}

/** sint64 (zigzag) from a JS number, as protobufjs's LongBits.fromNumber(v).zzEncode(). */
function sint64(value: number): void {
  ensure(10);
  if ((value | 0) === value) {
    varint32(((value << 1) ^ (value >> 31)) >>> 0);
    return;
  }
  longBits(value);
  const lo = bitsLo;
  const hi = bitsHi;
  const mask = hi >> 31;
  varint64(((lo << 1) ^ mask) >>> 0, (((hi << 1) | (lo >>> 31)) ^ mask) >>> 0);
}

/** int32 (enums): a negative value takes 10 bytes. */
function int32(value: number): void {
  ensure(10);
  if ((value |= 0) < 0) varint64(value >>> 0, 0xffffffff); // two's complement over 64 bits
  else varint32(value);
}

function double(v: number): void {
  ensure(8);
  f64[0] = v;
  buf[pos] = f64b[0]!;
  buf[pos + 1] = f64b[1]!;
  buf[pos + 2] = f64b[2]!;
  buf[pos + 3] = f64b[3]!;
  buf[pos + 4] = f64b[4]!;
  buf[pos + 5] = f64b[5]!;
  buf[pos + 6] = f64b[6]!;
  buf[pos + 7] = f64b[7]!;
  pos += 8;
}

/** A tag byte (every tag of this schema fits in one). */
function tag(t: number): void {
  ensure(1);
  buf[pos++] = t;
}

/** A length-delimited string: length varint, UTF-8 bytes. */
function str(s: string): void {
  const n = s.length;
  if (n < 40) {
    // protobufjs's own writer (util.utf8.write) for short strings: at most 117 bytes, one length byte.
    ensure(n * 3 + 1);
    const at = pos;
    let p = at + 1;
    for (let i = 0; i < n; i++) {
      let c1 = s.charCodeAt(i);
      let c2: number;
      if (c1 < 128) buf[p++] = c1;
      else if (c1 < 2048) {
        buf[p++] = (c1 >> 6) | 192;
        buf[p++] = (c1 & 63) | 128;
      } else if ((c1 & 0xfc00) === 0xd800 && ((c2 = s.charCodeAt(i + 1)) & 0xfc00) === 0xdc00) {
        c1 = 0x10000 + ((c1 & 0x03ff) << 10) + (c2 & 0x03ff);
        ++i;
        buf[p++] = (c1 >> 18) | 240;
        buf[p++] = ((c1 >> 12) & 63) | 128;
        buf[p++] = ((c1 >> 6) & 63) | 128;
        buf[p++] = (c1 & 63) | 128;
      } else {
        buf[p++] = (c1 >> 12) | 224;
        buf[p++] = ((c1 >> 6) & 63) | 128;
        buf[p++] = (c1 & 63) | 128;
      }
    }
    buf[at] = p - at - 1;
    pos = p;
    return;
  }
  const len = Buffer.byteLength(s, 'utf8');
  ensure(len + 5);
  varint32(len);
  pos += buf.write(s, pos, len, 'utf8');
}

/** Starts a length-delimited field: the tag and one byte reserved for the length. */
function fork(t: number): number {
  ensure(2);
  buf[pos++] = t;
  return pos++;
}

/** Ends a length-delimited field started at `at`, moving its content when the length needs more bytes. */
function ldelim(at: number): void {
  const len = pos - at - 1;
  if (len < 128) {
    buf[at] = len;
    return;
  }
  const vlen = len < 16384 ? 2 : len < 2097152 ? 3 : len < 268435456 ? 4 : 5;
  ensure(vlen - 1);
  buf.copyWithin(at + vlen, at + 1, pos);
  pos += vlen - 1;
  let v = len;
  let p = at;
  while (v > 127) {
    buf[p++] = (v & 127) | 128;
    v >>>= 7;
  }
  buf[p] = v;
}

/** A uint32 field, written when not 0. */
function u32Field(t: number, v: number): void {
  if (v !== 0) {
    ensure(6);
    buf[pos++] = t;
    varint32(v >>> 0);
  }
}

function strField(t: number, s: string | undefined | null): void {
  if (s != null && s !== '') {
    tag(t);
    str(s);
  }
}

function mapEntry(t: number, k: string, v: string): void {
  const at = fork(t);
  tag(0x0a);
  str(k);
  tag(0x12);
  str(v);
  ldelim(at);
}

/** A map<string, string> field, entries in Object.keys order (own enumerable keys, as for...in gives them). */
function mapField(t: number, m: Record<string, string> | undefined | null): void {
  if (m == null) return;
  for (const k in m) if (hasOwn.call(m, k)) mapEntry(t, k, m[k]!);
}

const hasOwn = Object.prototype.hasOwnProperty;

// ---- state reused across calls (encodeBatch is synchronous) -------------------------------------------

let i32a = new Int32Array(1024); // device index per reading
let i32b = new Int32Array(1024); // next reading of the same series
let i32c = new Int32Array(4096); // key index per value of the row-form readings, in order
let i32d = new Int32Array(64); // device index per event
let nums = new Float64Array(256); // one numeric column's values
let mants = new Float64Array(256); // their mantissas at their own scale
let scales = new Int8Array(256); // and those scales
const cells: MetricValue[] = []; // a series' values, column by column

function fit(a: Int32Array<ArrayBuffer>, n: number): Int32Array<ArrayBuffer> {
  if (a.length >= n) return a;
  let size = a.length * 2;
  while (size < n) size *= 2;
  const b = new Int32Array(size);
  b.set(a);
  return b;
}

/**
 * Index tables (device ids, metric names) without a Map per batch: a slot per name, kept across calls and
 * valid only in the call (`epoch`) that set it.
 */
interface Slot {
  epoch: number;
  index: number;
}
const MAX_SLOTS = 100_000;
const deviceSlots = new Map<string, Slot>();
const keySlots = new Map<string, Slot>();
let epoch = 0;

/** The slot of `name`, or undefined when this call has not tabled it yet. */
function lookup(slots: Map<string, Slot>, name: string): Slot | undefined {
  const s = slots.get(name);
  return s !== undefined && s.epoch === epoch ? s : undefined;
}

function assign(slots: Map<string, Slot>, name: string, index: number): void {
  const s = slots.get(name);
  if (s === undefined) slots.set(name, { epoch, index });
  else {
    s.epoch = epoch;
    s.index = index;
  }
}

// Tables of the batch being encoded; entries beyond the counts are stale.
const devIds: string[] = [];
const devFamily: number[] = [];
const devTags: Record<string, string>[] = [];
const devCount: number[] = [];
const devGroups: (Group | undefined)[] = [];
let nDev = 0;
const keys: string[] = [];
let nKeys = 0;
const groups: Group[] = [];
let nGroups = 0;

function deviceRef(id: string, family: Family, tags: Record<string, string> | undefined): number {
  const s = lookup(deviceSlots, id);
  if (s !== undefined) return s.index;
  const d = nDev++;
  assign(deviceSlots, id, d);
  devIds[d] = id;
  devFamily[d] = FAMILY_CODE[family] ?? 0;
  devTags[d] = tags ?? EMPTY_TAGS;
  devCount[d] = 0;
  devGroups[d] = undefined;
  return d;
}

function keyRef(name: string): number {
  const s = lookup(keySlots, name);
  if (s !== undefined) return s.index;
  const k = nKeys++;
  assign(keySlots, name, k);
  keys[k] = name;
  return k;
}

// ---- grouping ----------------------------------------------------------------------------------------

const NUM = 0;
const BOOL = 1;
const OTHER = 2;

function kindOf(v: MetricValue): number {
  return typeof v === 'number' ? NUM : typeof v === 'boolean' ? BOOL : OTHER;
}

/** Metric names and value kinds of a reading, in order. Consecutive series share one when equal. */
interface Shape {
  names: string[];
  kinds: number[];
  /** Key indices of the names (set once the key table has them). */
  keys: number[] | undefined;
}

/** The readings of one device with one shape and the same extra tags: one Series. */
interface Group {
  dev: number;
  shape: Shape;
  /** Whether the readings have tags beyond their device's (the old encoder's `extra` object existed). */
  hasExtra: boolean;
  /** Those tags as [key, value, key, value, ...]. */
  extra: string[] | undefined;
  /** First and last reading (indices into batch.readings); the rest are linked through `next`. */
  head: number;
  tail: number;
  count: number;
  /** The device's next group. */
  sibling: Group | undefined;
}

const NO_SHAPE: Shape = { names: [], kinds: [], keys: [] };

function newGroup(dev: number, shape: Shape, head: number): Group {
  let g = groups[nGroups];
  if (g === undefined) groups[nGroups] = g = { dev, shape, hasExtra: false, extra: undefined, head, tail: head, count: 0, sibling: undefined };
  else {
    g.dev = dev;
    g.shape = shape;
    g.hasExtra = false;
    g.extra = undefined;
    g.head = head;
    g.tail = head;
    g.count = 0;
    g.sibling = undefined;
  }
  nGroups++;
  return g;
}

function sameShape(values: Record<string, MetricValue>, shape: Shape): boolean {
  const names = shape.names;
  const kinds = shape.kinds;
  let i = 0;
  for (const name in values) {
    if (i >= names.length || names[i] !== name || kinds[i] !== kindOf(values[name]!)) return false;
    i++;
  }
  return i === names.length;
}

function shapeOf(values: Record<string, MetricValue>): Shape {
  const names: string[] = [];
  const kinds: number[] = [];
  for (const name in values) {
    names.push(name);
    kinds.push(kindOf(values[name]!));
  }
  return { names, kinds, keys: undefined };
}

/**
 * Whether a reading's tags beyond its device's (`dev`) equal a group's: the same keys with the same values
 * in the same order. The old encoder compared JSON.stringify of an object built from them, in which a
 * `__proto__` key does not survive, so such a key only makes the extra "exist".
 */
function sameExtra(tags: Record<string, string> | undefined, dev: Record<string, string>, g: Group): boolean {
  if (!tags || tags === dev) return !g.hasExtra;
  const ex = g.extra;
  const n = ex === undefined ? 0 : ex.length;
  let any = false;
  let j = 0;
  for (const k in tags) {
    const v = tags[k]!;
    if (dev[k] !== v) {
      any = true;
      if (k === '__proto__') continue;
      if (j >= n || ex![j] !== k || ex![j + 1] !== v) return false;
      j += 2;
    }
  }
  return any === g.hasExtra && j === n;
}

function setExtra(g: Group, tags: Record<string, string> | undefined, dev: Record<string, string>): void {
  if (!tags || tags === dev) return;
  for (const k in tags) {
    const v = tags[k]!;
    if (dev[k] !== v) {
      g.hasExtra = true;
      if (k === '__proto__') continue;
      (g.extra ??= []).push(k, v);
    }
  }
}

/** A reading's tags beyond its device's, written as map entries of field `t`. */
function extraTagsField(t: number, tags: Record<string, string> | undefined, dev: Record<string, string>): void {
  if (!tags || tags === dev) return;
  for (const k in tags) {
    const v = tags[k]!;
    if (dev[k] !== v && k !== '__proto__') mapEntry(t, k, v);
  }
}

// ---- the batch -----------------------------------------------------------------------------------------

/**
 * Encodes a batch. Devices are tabled by id: the family and tags of a device's first reading or event in
 * the batch stand for all of them. A device with several readings of the same metric set travels as a
 * column Series, a lone reading in row form. Decoding returns row-form readings first, then each series in
 * order; reading indices in an Ack refer to that decoded order.
 */
export function encodeBatchDirect(batch: Batch): Buffer {
  const readings = batch.readings;
  const events = batch.events;
  const nR = readings.length;
  const nE = events.length;
  let base = Infinity;
  for (let i = 0; i < nR; i++) if (readings[i]!.ts < base) base = readings[i]!.ts;
  for (let i = 0; i < nE; i++) if (events[i]!.ts < base) base = events[i]!.ts;
  if (base === Infinity) base = batch.createdMs;

  if (++epoch > 0x3fffffff || deviceSlots.size > MAX_SLOTS || keySlots.size > MAX_SLOTS) {
    epoch = 1;
    deviceSlots.clear();
    keySlots.clear();
  }
  nDev = 0;
  nKeys = 0;
  nGroups = 0;

  // Device table in order of first appearance (readings, then events).
  const rDev = (i32a = fit(i32a, nR));
  for (let i = 0; i < nR; i++) {
    const r = readings[i]!;
    const d = deviceRef(r.deviceId, r.family, r.tags);
    devCount[d]!++;
    rDev[i] = d;
  }

  // Key table: the row-form readings' names in order, then each series' names.
  // Row form for a device's lone reading; otherwise a series per device, extra tags and shape.
  const next = (i32b = fit(i32b, nR));
  let rowKeys = i32c;
  let nRowKeys = 0;
  let nRows = 0;
  let lastShape: Shape = NO_SHAPE;
  for (let i = 0; i < nR; i++) {
    const r = readings[i]!;
    const d = rDev[i]!;
    if (devCount[d] === 1) {
      nRows++;
      for (const name in r.values) {
        if (nRowKeys === rowKeys.length) i32c = rowKeys = fit(rowKeys, nRowKeys + 1);
        rowKeys[nRowKeys++] = keyRef(name);
      }
      continue;
    }
    const dev = devTags[d]!;
    let g = devGroups[d];
    let last: Group | undefined;
    while (g !== undefined && !(sameExtra(r.tags, dev, g) && sameShape(r.values, g.shape))) {
      last = g;
      g = g.sibling;
    }
    if (g === undefined) {
      if (!sameShape(r.values, lastShape)) lastShape = shapeOf(r.values);
      g = newGroup(d, lastShape, i);
      setExtra(g, r.tags, dev);
      if (last === undefined) devGroups[d] = g;
      else last.sibling = g;
    } else next[g.tail] = i;
    g.tail = i;
    g.count++;
  }
  for (let s = 0; s < nGroups; s++) {
    const shape = groups[s]!.shape;
    if (shape.keys === undefined) {
      const ks = new Array<number>(shape.names.length);
      for (let c = 0; c < ks.length; c++) ks[c] = keyRef(shape.names[c]!);
      shape.keys = ks;
    }
  }

  const evDev = (i32d = fit(i32d, nE));
  for (let i = 0; i < nE; i++) {
    const e = events[i]!;
    evDev[i] = deviceRef(e.deviceId, e.family, e.tags);
  }

  pos = 0;
  // 1 edge_id, 2 seq, 3 created_ms, 4 base_ts_ms
  strField(0x0a, batch.edgeId);
  if (batch.seq != null && batch.seq !== 0) {
    tag(0x10);
    int64(batch.seq);
  }
  if (batch.createdMs != null && batch.createdMs !== 0) {
    tag(0x18);
    int64(batch.createdMs);
  }
  if (base !== 0) {
    tag(0x20);
    int64(base);
  }
  // 5 devices
  for (let d = 0; d < nDev; d++) {
    const at = fork(0x2a);
    strField(0x0a, devIds[d]);
    const family = devFamily[d]!;
    if (family !== 0) {
      tag(0x10);
      int32(family);
    }
    mapField(0x1a, devTags[d]);
    ldelim(at);
  }
  // 6 keys
  for (let k = 0; k < nKeys; k++) {
    tag(0x32);
    str(keys[k]!);
  }
  // 7 readings (row form)
  if (nRows > 0) {
    let rk = 0;
    for (let i = 0; i < nR; i++) {
      const d = rDev[i]!;
      if (devCount[d] !== 1) continue;
      const r = readings[i]!;
      rk = writeRow(r, d, r.ts - base, rowKeys, rk, devTags[d]!);
    }
  }
  // 8 events
  for (let i = 0; i < nE; i++) writeEvent(events[i]!, evDev[i]!, base);
  // 9 series
  for (let s = 0; s < nGroups; s++) writeSeries(groups[s]!, readings, next, base);
  // 10 drops
  const drops = batch.drops;
  if (drops?.length) {
    for (let i = 0; i < drops.length; i++) {
      const dr = drops[i]!;
      const at = fork(0x52);
      strField(0x0a, dr.deviceId);
      strField(0x12, dr.dataClass);
      strField(0x1a, dr.reason);
      if (dr.count != null && dr.count !== 0) {
        tag(0x20);
        int64(dr.count);
      }
      if (dr.oldestTsMs != null && dr.oldestTsMs !== 0) {
        tag(0x28);
        int64(dr.oldestTsMs);
      }
      ldelim(at);
    }
  }
  // 11 lane
  if (batch.lane) {
    tag(0x58);
    int32(batch.lane === 'alarm' ? 2 : 1);
  }

  const out = Buffer.allocUnsafe(pos);
  buf.copy(out, 0, 0, pos);
  if (buf.length > KEEP_BYTES) buf = Buffer.allocUnsafeSlow(64 << 10);
  return out;
}

/** One Reading in row form; returns the position in `rowKeys` after its values. */
function writeRow(r: Reading, d: number, offset: number, rowKeys: Int32Array, rk: number, dev: Record<string, string>): number {
  const at = fork(0x3a);
  u32Field(0x08, d);
  if (offset !== 0) {
    tag(0x10);
    sint64(offset);
  }
  const values = r.values;
  for (const name in values) {
    const v = values[name]!;
    const vAt = fork(0x1a);
    u32Field(0x08, rowKeys[rk++]!);
    if (typeof v === 'number') {
      const scale = decimalScale(v);
      if (scale < 0) {
        tag(0x11);
        double(v);
      } else {
        const m = mantissa(v, scale);
        if (m !== undefined) {
          tag(0x18);
          sint64(m);
        }
        u32Field(0x20, scale);
      }
    } else if (typeof v === 'boolean') {
      ensure(2);
      buf[pos++] = 0x28;
      buf[pos++] = v ? 1 : 0;
    } else {
      tag(0x32);
      str(String(v));
    }
    ldelim(vAt);
  }
  if (r.quality) {
    tag(0x22);
    str(r.quality);
  }
  if (r.deviceSeq) {
    tag(0x28);
    int64(r.deviceSeq);
  }
  extraTagsField(0x32, r.tags, dev);
  ldelim(at);
  return rk;
}

function writeEvent(e: DeviceEvent, d: number, base: number): void {
  const at = fork(0x42);
  u32Field(0x08, d);
  const offset = e.ts - base;
  if (offset !== 0) {
    tag(0x10);
    sint64(offset);
  }
  strField(0x1a, e.type);
  mapField(0x22, e.attrs);
  const priority = PRIORITY_CODE[e.priority] ?? 0;
  if (priority !== 0) {
    tag(0x28);
    int32(priority);
  }
  strField(0x32, e.id);
  if (e.deviceSeq) {
    tag(0x38);
    int64(e.deviceSeq);
  }
  ldelim(at);
}

function writeSeries(g: Group, readings: Reading[], next: Int32Array, base: number): void {
  const at = fork(0x4a);
  u32Field(0x08, g.dev);
  const n = g.count;
  // 2 ts_deltas (packed); meanwhile note quality flags and device_seq, and lay the values out by column
  // (one pass of for...in per reading: its shape is the group's, so the i-th name is column i)
  let anyQuality = false;
  let anySeq = false;
  let lenAt = fork(0x12);
  let prevTs = base;
  for (let k = 0, i = g.head; k < n; k++, i = next[i]!) {
    const r = readings[i]!;
    const ts = r.ts;
    const d = ts - prevTs;
    if ((d | 0) === d) {
      ensure(5);
      varint32(((d << 1) ^ (d >> 31)) >>> 0);
    } else sint64(d);
    prevTs = ts;
    if (r.quality) anyQuality = true;
    if (r.deviceSeq) anySeq = true;
    const values = r.values;
    let c = k;
    for (const name in values) {
      cells[c] = values[name]!;
      c += n;
    }
  }
  ldelim(lenAt);
  // 3 columns
  const keys = g.shape.keys!;
  for (let c = 0; c < keys.length; c++) writeColumn(keys[c]!, c * n, n);
  // 4 quality
  if (anyQuality) {
    for (let k = 0, i = g.head; k < n; k++, i = next[i]!) {
      tag(0x22);
      str(readings[i]!.quality ?? '');
    }
  }
  // 5 device_seq_deltas (packed)
  if (anySeq) {
    lenAt = fork(0x2a);
    let prev = 0;
    for (let k = 0, i = g.head; k < n; k++, i = next[i]!) {
      const seq = readings[i]!.deviceSeq ?? 0;
      sint64(seq - prev);
      prev = seq;
    }
    ldelim(lenAt);
  }
  // 6 tags beyond the device's
  const ex = g.extra;
  if (ex !== undefined) for (let j = 0; j < ex.length; j += 2) mapEntry(0x32, ex[j]!, ex[j + 1]!);
  ldelim(at);
}

/** One Column from cells[from .. from+n): decimal deltas when every value is an exact decimal, else the plain list. */
function writeColumn(key: number, from: number, n: number): void {
  const at = fork(0x1a);
  u32Field(0x08, key);
  const first = cells[from];
  if (typeof first === 'boolean') {
    ensure(5 + n + 1);
    buf[pos++] = 0x2a;
    varint32(n);
    for (let k = 0; k < n; k++) buf[pos++] = cells[from + k] ? 1 : 0;
    ldelim(at);
    return;
  }
  if (typeof first === 'string') {
    for (let k = 0; k < n; k++) {
      tag(0x32);
      str(cells[from + k] as string);
    }
    ldelim(at);
    return;
  }
  if (nums.length < n) {
    const size = Math.max(n, nums.length * 2);
    nums = new Float64Array(size);
    mants = new Float64Array(size);
    scales = new Int8Array(size);
  }
  const vals = nums;
  // Pass 1: each value's own decimal scale and mantissa (decimalScale, inline), the column's scale.
  let scale = 0;
  let exact = true;
  for (let k = 0; k < n; k++) {
    const v = cells[from + k] as number;
    vals[k] = v;
    if (!exact) continue;
    let s = -1;
    if (Number.isFinite(v) && !Object.is(v, -0)) {
      for (let t = 0; t < 10; t++) {
        const p = POW10[t]!;
        const m = Math.round(v * p);
        if (!Number.isSafeInteger(m)) break;
        if (m / p === v) {
          s = t;
          mants[k] = m;
          break;
        }
      }
    }
    scales[k] = s;
    if (s < 0) exact = false;
    else if (s > scale) scale = s;
  }
  if (exact) {
    // Pass 2: mantissas at the column's scale (mantissa(), inline; the same m where a value's scale is
    // the column's), written as packed deltas.
    const start = pos;
    u32Field(0x10, scale);
    const lenAt = fork(0x1a);
    const p = POW10[scale]!;
    let prev = 0;
    for (let k = 0; k < n; k++) {
      let m: number;
      if (scales[k] === scale) m = mants[k]!;
      else {
        const v = vals[k]!;
        m = Math.round(v * p);
        if (!(Number.isSafeInteger(m) && (scale === 0 ? m : m / p) === v)) {
          exact = false;
          break;
        }
      }
      const d = m - prev;
      if ((d | 0) === d) {
        // sint64() inline for what fits in 32 bits: a call would box the double
        ensure(5);
        varint32(((d << 1) ^ (d >> 31)) >>> 0);
      } else sint64(d);
      prev = m;
    }
    if (exact) ldelim(lenAt);
    else pos = start;
  }
  if (!exact) {
    const bytes = n * 8;
    ensure(6 + bytes);
    buf[pos++] = 0x22;
    varint32(bytes);
    for (let k = 0; k < n; k++) double(vals[k]!);
  }
  ldelim(at);
}
