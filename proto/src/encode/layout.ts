// citysense.v1.Batch encoder, written by hand instead of through protobufjs. The reason is speed: the
// edge encodes every reading twice (once into the durable queue's part records, once into the uplink
// batch). protobufjs first needs an object graph of the wire form (Value, Series and Column objects,
// delta arrays). In the edge's profile, that graph's garbage plus encodeBatch's own time was the biggest
// cost after GC. The encoder writes the bytes directly into one reused buffer, in three parts:
//   * ../wire/writer.ts  the protobuf wire writer (varints, strings, length-delimited framing);
//   * group.ts           the device and key tables, and which readings go in row or column form;
//   * this file          the message layout: which field of which message is written when and how.
// Tags and enum codes come from schema.ts, named after ingest.proto and tested against it. The decimal
// form of numbers (POW10, decimalScale, mantissa) is here too.
//
// The output is byte for byte what protobufjs 8 writes for the graph the old encodeBatch built. It uses
// the same device and key tables, the same row/series choice and the same decimal scales, and it copies
// protobufjs's rules:
//   * fields go out in field-number order;
//   * a plain proto3 scalar is written when it is not the default;
//   * a oneof member (Value.f64/dec/flag/text) is written whenever it is set, default or not;
//   * repeated numbers are packed;
//   * map entries are {key = 1, value = 2};
//   * 64-bit numbers and strings as the writer says (../wire/writer.ts).
// proto/test/encode-batch.test.ts compares the bytes with the protobufjs path
// (proto/test/encode-batch-reference.ts) on thousands of random batches. A change to ingest.proto's Batch
// must be made here as well (proto/test/encode-schema.test.ts fails until schema.ts follows it).
import type { Batch, DeviceEvent, MetricValue, Reading } from '../types.ts';
import * as wire from '../wire/writer.ts';
import {
  devCount,
  devFamily,
  devIds,
  devTags,
  eventDevice,
  groupBatch,
  groups,
  keys,
  nDev,
  nextInGroup,
  nGroups,
  nKeys,
  nRows,
  readingDevice,
  rowKeys,
  type Group,
} from './group.ts';
import {
  BATCH_BASE_TS_MS,
  BATCH_CREATED_MS,
  BATCH_DEVICES,
  BATCH_DROPS,
  BATCH_EDGE_ID,
  BATCH_EVENTS,
  BATCH_KEYS,
  BATCH_LANE,
  BATCH_READINGS,
  BATCH_SEQ,
  BATCH_SERIES,
  COLUMN_DEC_DELTAS,
  COLUMN_F64,
  COLUMN_FLAG,
  COLUMN_KEY,
  COLUMN_SCALE,
  COLUMN_TEXT,
  DEVICE_FAMILY,
  DEVICE_ID,
  DEVICE_TAGS,
  DROP_REPORT_COUNT,
  DROP_REPORT_DATA_CLASS,
  DROP_REPORT_DEVICE_ID,
  DROP_REPORT_OLDEST_TS_MS,
  DROP_REPORT_REASON,
  EVENT_ATTRS,
  EVENT_DEVICE,
  EVENT_DEVICE_SEQ,
  EVENT_ID,
  EVENT_PRIORITY,
  EVENT_TS_OFFSET_MS,
  EVENT_TYPE,
  LANE_CODE,
  MAP_ENTRY_KEY,
  MAP_ENTRY_VALUE,
  PRIORITY_CODE,
  READING_DEVICE,
  READING_DEVICE_SEQ,
  READING_QUALITY,
  READING_TAGS,
  READING_TS_OFFSET_MS,
  READING_VALUES,
  SERIES_COLUMNS,
  SERIES_DEVICE,
  SERIES_DEVICE_SEQ_DELTAS,
  SERIES_QUALITY,
  SERIES_TAGS,
  SERIES_TS_DELTAS,
  VALUE_DEC,
  VALUE_F64,
  VALUE_FLAG,
  VALUE_KEY,
  VALUE_SCALE,
  VALUE_TEXT,
} from './schema.ts';


let nums = new Float64Array(256); // one numeric column's values
let mants = new Float64Array(256); // their mantissas at their own scale
let scales = new Int8Array(256); // and those scales
const cells: MetricValue[] = []; // a series' values, column by column

const hasOwn = Object.prototype.hasOwnProperty;

// The writer's functions as module-local constants: an imported binding is a load and a hole check at
// every call, which measured ~10% on the row path (many small calls per value).
const { byte, double, ensure, finish, fork, int32, int64, ldelim, position, reset, rewind, sint64, str, strField, tag, u32Field, varint32 } = wire;
/** 10^scale for the decimal scales the wire carries (0-9); decodeBatch refuses any other. */
export const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

// Numbers travel as a decimal (mantissa / 10^scale) when that is exact. These two stay in this module
// (as do POW10's readers): called per value, an imported function was not inlined as well and the row
// path measured ~30% slower (proto/bench/encode.ts).

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

function mapEntry(t: number, k: string, v: string): void {
  const at = fork(t);
  tag(MAP_ENTRY_KEY);
  str(k);
  tag(MAP_ENTRY_VALUE);
  str(v);
  ldelim(at);
}

/** A map<string, string> field, entries in Object.keys order (own enumerable keys, as for...in gives them). */
function mapField(t: number, m: Record<string, string> | undefined | null): void {
  if (m == null) return;
  for (const k in m) if (hasOwn.call(m, k)) mapEntry(t, k, m[k]!);
}

/** A reading's tags beyond its device's, written as map entries of field `t`. */
function extraTagsField(t: number, tags: Record<string, string> | undefined, dev: Record<string, string>): void {
  if (!tags || tags === dev) return;
  for (const k in tags) {
    const v = tags[k]!;
    if (dev[k] !== v && k !== '__proto__') mapEntry(t, k, v);
  }
}

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

  groupBatch(readings, events);
  // group.ts's tables in locals: an imported binding costs a load and a hole check on every read, and
  // reading them in the loops measured up to 1.8x slower.
  const nD = nDev;
  const ids = devIds;
  const families = devFamily;
  const tags = devTags;
  const counts = devCount;
  const nK = nKeys;
  const names = keys;
  const nG = nGroups;
  const gs = groups;

  reset();
  strField(BATCH_EDGE_ID, batch.edgeId);
  if (batch.seq != null && batch.seq !== 0) {
    tag(BATCH_SEQ);
    int64(batch.seq);
  }
  if (batch.createdMs != null && batch.createdMs !== 0) {
    tag(BATCH_CREATED_MS);
    int64(batch.createdMs);
  }
  if (base !== 0) {
    tag(BATCH_BASE_TS_MS);
    int64(base);
  }
  for (let d = 0; d < nD; d++) {
    const at = fork(BATCH_DEVICES);
    strField(DEVICE_ID, ids[d]);
    const family = families[d]!;
    if (family !== 0) {
      tag(DEVICE_FAMILY);
      int32(family);
    }
    mapField(DEVICE_TAGS, tags[d]);
    ldelim(at);
  }
  for (let k = 0; k < nK; k++) {
    tag(BATCH_KEYS);
    str(names[k]!);
  }
  if (nRows > 0) {
    const rDev = readingDevice;
    const rKeys = rowKeys;
    let rk = 0;
    for (let i = 0; i < nR; i++) {
      const d = rDev[i]!;
      if (counts[d] !== 1) continue;
      const r = readings[i]!;
      rk = writeRow(r, d, r.ts - base, rKeys, rk, tags[d]!);
    }
  }
  const evDev = eventDevice;
  for (let i = 0; i < nE; i++) writeEvent(events[i]!, evDev[i]!, base);
  const next = nextInGroup;
  for (let s = 0; s < nG; s++) writeSeries(gs[s]!, readings, next, base);
  const drops = batch.drops;
  if (drops?.length) {
    for (let i = 0; i < drops.length; i++) {
      const dr = drops[i]!;
      const at = fork(BATCH_DROPS);
      strField(DROP_REPORT_DEVICE_ID, dr.deviceId);
      strField(DROP_REPORT_DATA_CLASS, dr.dataClass);
      strField(DROP_REPORT_REASON, dr.reason);
      if (dr.count != null && dr.count !== 0) {
        tag(DROP_REPORT_COUNT);
        int64(dr.count);
      }
      if (dr.oldestTsMs != null && dr.oldestTsMs !== 0) {
        tag(DROP_REPORT_OLDEST_TS_MS);
        int64(dr.oldestTsMs);
      }
      ldelim(at);
    }
  }
  if (batch.lane) {
    tag(BATCH_LANE);
    int32(LANE_CODE[batch.lane === 'alarm' ? 'alarm' : 'telemetry']);
  }
  return finish();
}

/** One Reading in row form; returns the position in `rowKeys` after its values. */
function writeRow(r: Reading, d: number, offset: number, rowKeys: Int32Array, rk: number, dev: Record<string, string>): number {
  const at = fork(BATCH_READINGS);
  u32Field(READING_DEVICE, d);
  if (offset !== 0) {
    tag(READING_TS_OFFSET_MS);
    sint64(offset);
  }
  const values = r.values;
  for (const name in values) {
    const v = values[name]!;
    const vAt = fork(READING_VALUES);
    u32Field(VALUE_KEY, rowKeys[rk++]!);
    if (typeof v === 'number') {
      const scale = decimalScale(v);
      if (scale < 0) {
        tag(VALUE_F64);
        double(v);
      } else {
        const m = mantissa(v, scale);
        if (m !== undefined) {
          tag(VALUE_DEC);
          sint64(m);
        }
        u32Field(VALUE_SCALE, scale);
      }
    } else if (typeof v === 'boolean') {
      ensure(2);
      byte(VALUE_FLAG);
      byte(v ? 1 : 0);
    } else {
      tag(VALUE_TEXT);
      str(String(v));
    }
    ldelim(vAt);
  }
  if (r.quality) {
    tag(READING_QUALITY);
    str(r.quality);
  }
  if (r.deviceSeq) {
    tag(READING_DEVICE_SEQ);
    int64(r.deviceSeq);
  }
  extraTagsField(READING_TAGS, r.tags, dev);
  ldelim(at);
  return rk;
}

function writeEvent(e: DeviceEvent, d: number, base: number): void {
  const at = fork(BATCH_EVENTS);
  u32Field(EVENT_DEVICE, d);
  const offset = e.ts - base;
  if (offset !== 0) {
    tag(EVENT_TS_OFFSET_MS);
    sint64(offset);
  }
  strField(EVENT_TYPE, e.type);
  mapField(EVENT_ATTRS, e.attrs);
  const priority = PRIORITY_CODE[e.priority] ?? 0;
  if (priority !== 0) {
    tag(EVENT_PRIORITY);
    int32(priority);
  }
  strField(EVENT_ID, e.id);
  if (e.deviceSeq) {
    tag(EVENT_DEVICE_SEQ);
    int64(e.deviceSeq);
  }
  ldelim(at);
}

function writeSeries(g: Group, readings: Reading[], next: Int32Array, base: number): void {
  const at = fork(BATCH_SERIES);
  u32Field(SERIES_DEVICE, g.dev);
  const n = g.count;
  // ts_deltas (packed); meanwhile note quality flags and device_seq, and lay the values out by column
  // (one pass of for...in per reading: its shape is the group's, so the i-th name is column i)
  let anyQuality = false;
  let anySeq = false;
  let lenAt = fork(SERIES_TS_DELTAS);
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
  const keys = g.shape.keys!;
  for (let c = 0; c < keys.length; c++) writeColumn(keys[c]!, c * n, n);
  if (anyQuality) {
    for (let k = 0, i = g.head; k < n; k++, i = next[i]!) {
      tag(SERIES_QUALITY);
      str(readings[i]!.quality ?? '');
    }
  }
  if (anySeq) {
    lenAt = fork(SERIES_DEVICE_SEQ_DELTAS);
    let prev = 0;
    for (let k = 0, i = g.head; k < n; k++, i = next[i]!) {
      const seq = readings[i]!.deviceSeq ?? 0;
      sint64(seq - prev);
      prev = seq;
    }
    ldelim(lenAt);
  }
  // tags beyond the device's
  const ex = g.extra;
  if (ex !== undefined) for (let j = 0; j < ex.length; j += 2) mapEntry(SERIES_TAGS, ex[j]!, ex[j + 1]!);
  ldelim(at);
}

/** One Column from cells[from .. from+n): decimal deltas when every value is an exact decimal, else the plain list. */
function writeColumn(key: number, from: number, n: number): void {
  const at = fork(SERIES_COLUMNS);
  u32Field(COLUMN_KEY, key);
  const first = cells[from];
  if (typeof first === 'boolean') {
    ensure(5 + n + 1);
    byte(COLUMN_FLAG);
    varint32(n);
    for (let k = 0; k < n; k++) byte(cells[from + k] ? 1 : 0);
    ldelim(at);
    return;
  }
  if (typeof first === 'string') {
    for (let k = 0; k < n; k++) {
      tag(COLUMN_TEXT);
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
    const start = position();
    u32Field(COLUMN_SCALE, scale);
    const lenAt = fork(COLUMN_DEC_DELTAS);
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
    else rewind(start);
  }
  if (!exact) {
    const bytes = n * 8;
    ensure(6 + bytes);
    byte(COLUMN_F64);
    varint32(bytes);
    for (let k = 0; k < n; k++) double(vals[k]!);
  }
  ldelim(at);
}
