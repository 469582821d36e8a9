// citysense.v1.Batch encoder, written by hand instead of through protobufjs. The reason is speed: the
// edge encodes every reading twice (once into the durable queue's part records, once into the uplink
// batch). protobufjs first needs an object graph of the wire form (Value, Series and Column objects,
// delta arrays). In the edge's profile, that graph's garbage plus encodeBatch's own time was the biggest
// cost after GC. The encoder writes the bytes directly into one reused buffer, in three parts:
//   * ../wire/writer.ts  the protobuf wire writer (varints, strings, length-delimited framing);
//   * group.ts           the device and key tables, and which readings go in row or column form;
//   * this file          the message layout: which field of which message is written when and how.
// Tags and enum codes come from schema.ts, named after ingest.proto and tested against it.
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
import { byte, double, ensure, finish, fork, int32, int64, ldelim, position, reset, rewind, sint64, str, strField, tag, u32Field, varint32 } from '../wire/writer.ts';
import { decimalScale, mantissa, POW10 } from './decimal.ts';
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
import * as T from './schema.ts';

export { POW10 } from './decimal.ts';

let nums = new Float64Array(256); // one numeric column's values
let mants = new Float64Array(256); // their mantissas at their own scale
let scales = new Int8Array(256); // and those scales
const cells: MetricValue[] = []; // a series' values, column by column

const hasOwn = Object.prototype.hasOwnProperty;

function mapEntry(t: number, k: string, v: string): void {
  const at = fork(t);
  tag(T.MAP_ENTRY_KEY);
  str(k);
  tag(T.MAP_ENTRY_VALUE);
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

  reset();
  strField(T.BATCH_EDGE_ID, batch.edgeId);
  if (batch.seq != null && batch.seq !== 0) {
    tag(T.BATCH_SEQ);
    int64(batch.seq);
  }
  if (batch.createdMs != null && batch.createdMs !== 0) {
    tag(T.BATCH_CREATED_MS);
    int64(batch.createdMs);
  }
  if (base !== 0) {
    tag(T.BATCH_BASE_TS_MS);
    int64(base);
  }
  for (let d = 0; d < nDev; d++) {
    const at = fork(T.BATCH_DEVICES);
    strField(T.DEVICE_ID, devIds[d]);
    const family = devFamily[d]!;
    if (family !== 0) {
      tag(T.DEVICE_FAMILY);
      int32(family);
    }
    mapField(T.DEVICE_TAGS, devTags[d]);
    ldelim(at);
  }
  for (let k = 0; k < nKeys; k++) {
    tag(T.BATCH_KEYS);
    str(keys[k]!);
  }
  if (nRows > 0) {
    const rDev = readingDevice;
    let rk = 0;
    for (let i = 0; i < nR; i++) {
      const d = rDev[i]!;
      if (devCount[d] !== 1) continue;
      const r = readings[i]!;
      rk = writeRow(r, d, r.ts - base, rk, devTags[d]!);
    }
  }
  const evDev = eventDevice;
  for (let i = 0; i < nE; i++) writeEvent(events[i]!, evDev[i]!, base);
  for (let s = 0; s < nGroups; s++) writeSeries(groups[s]!, readings, nextInGroup, base);
  const drops = batch.drops;
  if (drops?.length) {
    for (let i = 0; i < drops.length; i++) {
      const dr = drops[i]!;
      const at = fork(T.BATCH_DROPS);
      strField(T.DROP_REPORT_DEVICE_ID, dr.deviceId);
      strField(T.DROP_REPORT_DATA_CLASS, dr.dataClass);
      strField(T.DROP_REPORT_REASON, dr.reason);
      if (dr.count != null && dr.count !== 0) {
        tag(T.DROP_REPORT_COUNT);
        int64(dr.count);
      }
      if (dr.oldestTsMs != null && dr.oldestTsMs !== 0) {
        tag(T.DROP_REPORT_OLDEST_TS_MS);
        int64(dr.oldestTsMs);
      }
      ldelim(at);
    }
  }
  if (batch.lane) {
    tag(T.BATCH_LANE);
    int32(T.LANE_CODE[batch.lane === 'alarm' ? 'alarm' : 'telemetry']);
  }
  return finish();
}

/** One Reading in row form; returns the position in `rowKeys` after its values. */
function writeRow(r: Reading, d: number, offset: number, rk: number, dev: Record<string, string>): number {
  const at = fork(T.BATCH_READINGS);
  u32Field(T.READING_DEVICE, d);
  if (offset !== 0) {
    tag(T.READING_TS_OFFSET_MS);
    sint64(offset);
  }
  const values = r.values;
  const kk = rowKeys;
  for (const name in values) {
    const v = values[name]!;
    const vAt = fork(T.READING_VALUES);
    u32Field(T.VALUE_KEY, kk[rk++]!);
    if (typeof v === 'number') {
      const scale = decimalScale(v);
      if (scale < 0) {
        tag(T.VALUE_F64);
        double(v);
      } else {
        const m = mantissa(v, scale);
        if (m !== undefined) {
          tag(T.VALUE_DEC);
          sint64(m);
        }
        u32Field(T.VALUE_SCALE, scale);
      }
    } else if (typeof v === 'boolean') {
      ensure(2);
      byte(T.VALUE_FLAG);
      byte(v ? 1 : 0);
    } else {
      tag(T.VALUE_TEXT);
      str(String(v));
    }
    ldelim(vAt);
  }
  if (r.quality) {
    tag(T.READING_QUALITY);
    str(r.quality);
  }
  if (r.deviceSeq) {
    tag(T.READING_DEVICE_SEQ);
    int64(r.deviceSeq);
  }
  extraTagsField(T.READING_TAGS, r.tags, dev);
  ldelim(at);
  return rk;
}

function writeEvent(e: DeviceEvent, d: number, base: number): void {
  const at = fork(T.BATCH_EVENTS);
  u32Field(T.EVENT_DEVICE, d);
  const offset = e.ts - base;
  if (offset !== 0) {
    tag(T.EVENT_TS_OFFSET_MS);
    sint64(offset);
  }
  strField(T.EVENT_TYPE, e.type);
  mapField(T.EVENT_ATTRS, e.attrs);
  const priority = T.PRIORITY_CODE[e.priority] ?? 0;
  if (priority !== 0) {
    tag(T.EVENT_PRIORITY);
    int32(priority);
  }
  strField(T.EVENT_ID, e.id);
  if (e.deviceSeq) {
    tag(T.EVENT_DEVICE_SEQ);
    int64(e.deviceSeq);
  }
  ldelim(at);
}

function writeSeries(g: Group, readings: Reading[], next: Int32Array, base: number): void {
  const at = fork(T.BATCH_SERIES);
  u32Field(T.SERIES_DEVICE, g.dev);
  const n = g.count;
  // ts_deltas (packed); meanwhile note quality flags and device_seq, and lay the values out by column
  // (one pass of for...in per reading: its shape is the group's, so the i-th name is column i)
  let anyQuality = false;
  let anySeq = false;
  let lenAt = fork(T.SERIES_TS_DELTAS);
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
      tag(T.SERIES_QUALITY);
      str(readings[i]!.quality ?? '');
    }
  }
  if (anySeq) {
    lenAt = fork(T.SERIES_DEVICE_SEQ_DELTAS);
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
  if (ex !== undefined) for (let j = 0; j < ex.length; j += 2) mapEntry(T.SERIES_TAGS, ex[j]!, ex[j + 1]!);
  ldelim(at);
}

/** One Column from cells[from .. from+n): decimal deltas when every value is an exact decimal, else the plain list. */
function writeColumn(key: number, from: number, n: number): void {
  const at = fork(T.SERIES_COLUMNS);
  u32Field(T.COLUMN_KEY, key);
  const first = cells[from];
  if (typeof first === 'boolean') {
    ensure(5 + n + 1);
    byte(T.COLUMN_FLAG);
    varint32(n);
    for (let k = 0; k < n; k++) byte(cells[from + k] ? 1 : 0);
    ldelim(at);
    return;
  }
  if (typeof first === 'string') {
    for (let k = 0; k < n; k++) {
      tag(T.COLUMN_TEXT);
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
    u32Field(T.COLUMN_SCALE, scale);
    const lenAt = fork(T.COLUMN_DEC_DELTAS);
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
    byte(T.COLUMN_F64);
    varint32(bytes);
    for (let k = 0; k < n; k++) double(vals[k]!);
  }
  ldelim(at);
}
