// A counting pass over a citysense.v1.Batch's bytes that enforces the batch limits BEFORE anything is
// allocated per item. protobufjs (codec.ts) builds an object for every reading, value, map entry and
// packed number it meets, and checks nothing on the way: a 58 KB gzip body that inflates to 60 MB of
// two-byte empty readings (or one packed list of 60 M zero deltas) becomes tens of millions of objects
// and exhausts the heap long before a count could be compared with a limit. This pass reads only tags,
// lengths and varint ends, keeps a handful of counters, and stops at the first limit passed, so the cost
// of a hostile body is one scan of bytes the cloud already holds (bounded by limits.inflatedBytes).
//
// Why not a second decoder: the golden vectors pin protobufjs's reading of the wire; a pre-pass keeps
// that reader and only adds the bounds (about as fast: a 90 KB batch is scanned in well under a
// millisecond). A change to ingest.proto's Batch must be made here as well (the schema below mirrors it).
//
// Nesting is bounded by the schema itself: Batch → Series → Column, Batch → Reading → Value, and map
// entries; an unknown length-delimited field is skipped, never descended into, and groups (wire types 3
// and 4, absent from proto3, and the one place where protobufjs recurses on unknown input) are refused.
import { ProtoDecodeError, ProtoLimitError } from './errors.ts';

export interface DecodeLimits {
  /** Readings: row-form readings plus the rows of every series (BATCH_TOO_MANY_READINGS). */
  maxReadings: number;
  /** Events (BATCH_TOO_MANY_EVENTS). */
  maxEvents: number;
  /** Entries of the device table (BATCH_TOO_MANY_DEVICES). */
  maxDevices: number;
  /** Series (column-form groups) (BATCH_TOO_MANY_SERIES). */
  maxSeries: number;
  /** Entries of the metric-name table (BATCH_TOO_MANY_KEYS). */
  maxKeys: number;
  /** Every repeated scalar in the batch: row values, column entries, series timestamps, quality flags
   * and device_seq deltas together (BATCH_TOO_MANY_VALUES). */
  maxValues: number;
  /** Values of one reading, columns of one series (BATCH_TOO_MANY_METRICS). */
  maxMetricsPerReading: number;
  /** Tags of one device, reading or series; attrs of one event (BATCH_TOO_MANY_TAGS). */
  maxTagsPerItem: number;
  /** Drop reports (BATCH_TOO_MANY_DROPS). */
  maxDrops: number;
  /** Any one string on the wire, in bytes (BATCH_STRING_TOO_LONG). */
  maxStringBytes: number;
}

/** The cloud's defaults (cloud/src/config/schema.ts `limits`); what decodeBatch applies when given none. */
export const DEFAULT_DECODE_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxReadings: 50_000,
  maxEvents: 10_000,
  maxDevices: 10_000,
  maxSeries: 10_000,
  maxKeys: 1_000,
  maxValues: 1_000_000,
  maxMetricsPerReading: 256,
  maxTagsPerItem: 64,
  maxDrops: 10_000,
  maxStringBytes: 65_536,
});

/** For bytes the caller wrote itself and verified (the edge's own checksummed queue records). */
export const UNBOUNDED_DECODE_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxReadings: Infinity,
  maxEvents: Infinity,
  maxDevices: Infinity,
  maxSeries: Infinity,
  maxKeys: Infinity,
  maxValues: Infinity,
  maxMetricsPerReading: Infinity,
  maxTagsPerItem: Infinity,
  maxDrops: Infinity,
  maxStringBytes: Infinity,
});

// Wire types (protobuf encoding spec).
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

class Scan {
  pos = 0;
  readings = 0;
  events = 0;
  devices = 0;
  series = 0;
  keys = 0;
  values = 0;
  drops = 0;

  constructor(
    readonly buf: Uint8Array,
    readonly lim: Readonly<DecodeLimits>,
  ) {}

  bad(what: string): never {
    throw new ProtoDecodeError('BATCH_UNDECODABLE', `the body is not a citysense.v1.Batch: ${what} at byte ${this.pos}`);
  }

  /** A varint that must fit 32 bits (tags, lengths); the value. */
  u32(end: number): number {
    let v = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= end) this.bad('truncated varint');
      const b = this.buf[this.pos++]!;
      if (shift < 28) v |= (b & 0x7f) << shift;
      else if (shift === 28) v += (b & 0x7f) * 2 ** 28;
      else if (b & 0x7f) this.bad('length or tag over 32 bits');
      if (!(b & 0x80)) return v;
      shift += 7;
      if (shift > 63) this.bad('varint longer than 10 bytes');
    }
  }

  skipVarint(end: number): void {
    for (let n = 0; n < 10; n++) {
      if (this.pos >= end) this.bad('truncated varint');
      if (!(this.buf[this.pos++]! & 0x80)) return;
    }
    this.bad('varint longer than 10 bytes');
  }

  /** A length-delimited field's end, checked against its container. */
  lenEnd(end: number): number {
    const n = this.u32(end);
    if (n > end - this.pos) this.bad('length past the end of its message');
    return this.pos + n;
  }

  skip(wire: number, end: number): void {
    switch (wire) {
      case VARINT:
        return this.skipVarint(end);
      case I64:
        if (end - this.pos < 8) this.bad('truncated fixed64');
        this.pos += 8;
        return;
      case LEN:
        this.pos = this.lenEnd(end);
        return;
      case I32:
        if (end - this.pos < 4) this.bad('truncated fixed32');
        this.pos += 4;
        return;
      default:
        this.bad(`wire type ${wire} (groups are not part of citysense.v1)`);
    }
  }

  string(wire: number, end: number, what: string): void {
    if (wire !== LEN) return this.skip(wire, end);
    const e = this.lenEnd(end);
    const n = e - this.pos;
    if (n > this.lim.maxStringBytes) throw new ProtoLimitError('BATCH_STRING_TOO_LONG', `${what} is ${n} bytes, the limit is ${this.lim.maxStringBytes}`);
    this.pos = e;
  }

  /** A repeated scalar (packed or not): how many entries this field adds. */
  scalars(wire: number, end: number, fixed: number): number {
    if (wire !== LEN) {
      this.skip(wire, end);
      return 1;
    }
    const e = this.lenEnd(end);
    let n: number;
    if (fixed) n = Math.floor((e - this.pos) / fixed);
    else {
      // A packed varint list: one entry per byte without the continuation bit.
      n = 0;
      for (let i = this.pos; i < e; i++) if (!(this.buf[i]! & 0x80)) n++;
    }
    this.pos = e;
    return n;
  }

  addValues(n: number): void {
    this.values += n;
    if (this.values > this.lim.maxValues) throw new ProtoLimitError('BATCH_TOO_MANY_VALUES', `more than ${this.lim.maxValues} values`);
  }

  addReadings(n: number): void {
    this.readings += n;
    if (this.readings > this.lim.maxReadings) throw new ProtoLimitError('BATCH_TOO_MANY_READINGS', `more than ${this.lim.maxReadings} readings`);
  }

  /** One map<string,string> entry: key = 1, value = 2. */
  mapEntry(end: number, what: string): void {
    const e = this.lenEnd(end);
    while (this.pos < e) {
      const tag = this.u32(e);
      const f = tag >>> 3;
      if (f === 1 || f === 2) this.string(tag & 7, e, what);
      else this.skip(tag & 7, e);
    }
  }

  tagCount(n: number, what: string): void {
    if (n > this.lim.maxTagsPerItem) throw new ProtoLimitError('BATCH_TOO_MANY_TAGS', `${what} has more than ${this.lim.maxTagsPerItem} tags or attrs`);
  }

  /** Fields of a message whose only nested parts are strings and string maps (mapField -1: none). */
  flat(end: number, strings: readonly number[], mapField: number, what: string): void {
    let tags = 0;
    while (this.pos < end) {
      const tag = this.u32(end);
      const f = tag >>> 3;
      const wire = tag & 7;
      if (f === mapField && wire === LEN) {
        this.tagCount(++tags, what);
        this.mapEntry(end, `a tag of ${what}`);
      } else if (strings.includes(f)) this.string(wire, end, `a string of ${what}`);
      else this.skip(wire, end);
    }
  }

  device(end: number): void {
    this.flat(end, [1], 3, `device #${this.devices - 1}`);
  }

  event(end: number): void {
    this.flat(end, [3, 6], 4, `event #${this.events - 1}`);
  }

  drop(end: number): void {
    this.flat(end, [1, 2, 3], -1, `drop report #${this.drops - 1}`);
  }

  reading(end: number): void {
    const what = `reading #${this.readings - 1}`;
    let tags = 0;
    let values = 0;
    while (this.pos < end) {
      const tag = this.u32(end);
      const f = tag >>> 3;
      const wire = tag & 7;
      if (f === 3 && wire === LEN) {
        if (++values > this.lim.maxMetricsPerReading) throw new ProtoLimitError('BATCH_TOO_MANY_METRICS', `${what} has more than ${this.lim.maxMetricsPerReading} values`);
        this.addValues(1);
        this.flat(this.lenEnd(end), [6], -1, what);
      } else if (f === 6 && wire === LEN) {
        this.tagCount(++tags, what);
        this.mapEntry(end, `a tag of ${what}`);
      } else if (f === 4) this.string(wire, end, `the quality of ${what}`);
      else this.skip(wire, end);
    }
  }

  column(end: number, what: string): void {
    while (this.pos < end) {
      const tag = this.u32(end);
      const f = tag >>> 3;
      const wire = tag & 7;
      if (f === 3 || f === 5) this.addValues(this.scalars(wire, end, 0));
      else if (f === 4) this.addValues(this.scalars(wire, end, 8));
      else if (f === 6) {
        this.addValues(1);
        this.string(wire, end, `a text value of ${what}`);
      } else this.skip(wire, end);
    }
  }

  seriesMsg(end: number): void {
    const what = `series #${this.series - 1}`;
    let tags = 0;
    let columns = 0;
    while (this.pos < end) {
      const tag = this.u32(end);
      const f = tag >>> 3;
      const wire = tag & 7;
      if (f === 2) {
        // Each timestamp is one reading of the series.
        const n = this.scalars(wire, end, 0);
        this.addReadings(n);
        this.addValues(n);
      } else if (f === 3 && wire === LEN) {
        if (++columns > this.lim.maxMetricsPerReading) throw new ProtoLimitError('BATCH_TOO_MANY_METRICS', `${what} has more than ${this.lim.maxMetricsPerReading} columns`);
        this.column(this.lenEnd(end), `${what} column #${columns - 1}`);
      } else if (f === 4) {
        this.addValues(1);
        this.string(wire, end, `a quality flag of ${what}`);
      } else if (f === 5) this.addValues(this.scalars(wire, end, 0));
      else if (f === 6 && wire === LEN) {
        this.tagCount(++tags, what);
        this.mapEntry(end, `a tag of ${what}`);
      } else this.skip(wire, end);
    }
  }

  batch(): void {
    const end = this.buf.length;
    const lim = this.lim;
    while (this.pos < end) {
      const tag = this.u32(end);
      const f = tag >>> 3;
      const wire = tag & 7;
      if (f === 0) this.bad('field number 0');
      if (wire !== LEN || f < 5 || f > 10) {
        if (f === 1) this.string(wire, end, 'the edge id');
        else this.skip(wire, end);
        continue;
      }
      const e = this.lenEnd(end);
      switch (f) {
        case 5:
          if (++this.devices > lim.maxDevices) throw new ProtoLimitError('BATCH_TOO_MANY_DEVICES', `more than ${lim.maxDevices} devices`);
          this.device(e);
          break;
        case 6:
          if (++this.keys > lim.maxKeys) throw new ProtoLimitError('BATCH_TOO_MANY_KEYS', `more than ${lim.maxKeys} metric names`);
          if (e - this.pos > lim.maxStringBytes) throw new ProtoLimitError('BATCH_STRING_TOO_LONG', `metric name #${this.keys - 1} is ${e - this.pos} bytes, the limit is ${lim.maxStringBytes}`);
          this.pos = e;
          break;
        case 7:
          this.addReadings(1);
          this.reading(e);
          break;
        case 8:
          if (++this.events > lim.maxEvents) throw new ProtoLimitError('BATCH_TOO_MANY_EVENTS', `more than ${lim.maxEvents} events`);
          this.event(e);
          break;
        case 9:
          if (++this.series > lim.maxSeries) throw new ProtoLimitError('BATCH_TOO_MANY_SERIES', `more than ${lim.maxSeries} series`);
          this.seriesMsg(e);
          break;
        case 10:
          if (++this.drops > lim.maxDrops) throw new ProtoLimitError('BATCH_TOO_MANY_DROPS', `more than ${lim.maxDrops} drop reports`);
          this.drop(e);
          break;
      }
      if (this.pos !== e) this.bad('a nested message overran its length');
    }
  }
}

/**
 * Scans a Batch's bytes and throws ProtoLimitError (a ProtoDecodeError with a BATCH_TOO_MANY_* or
 * BATCH_STRING_TOO_LONG code) at the first limit passed, or ProtoDecodeError BATCH_UNDECODABLE for bytes
 * that cannot be a Batch; allocates nothing per item.
 */
export function checkBatchWire(buf: Uint8Array, limits: Readonly<DecodeLimits>): void {
  new Scan(buf, limits).batch();
}
