// The protobuf wire writer of the hand-written Batch encoder (proto/src/encode/): varints, doubles,
// strings and length-delimited framing into one buffer reused across calls. It copies protobufjs 8's
// choices byte for byte, so that the encoder's output is the bytes protobufjs writes (proto/test/
// encode-batch.test.ts):
//   * 64-bit numbers follow LongBits.fromNumber, so a negative one is a 10-byte varint;
//   * a string shorter than 40 UTF-16 units goes through protobufjs's own UTF-8 writer (a lone surrogate
//     becomes 3 WTF-8 bytes), a longer one through Buffer (which writes U+FFFD).
// Module state, not a class: the encoder is synchronous, and plain functions over module variables are
// what V8 inlines best on this path (the reason the encoder is hand-written at all is speed).

const KEEP_BYTES = 4 << 20; // a bigger buffer, grown for an unusual batch, is not kept
const START_BYTES = 64 << 10;
let buf = Buffer.allocUnsafeSlow(START_BYTES);
let pos = 0;
const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);

/** Starts a message: the buffer is empty again. */
export function reset(): void {
  pos = 0;
}

/** The bytes written since reset(), copied out; a buffer grown past KEEP_BYTES is let go. */
export function finish(): Buffer {
  const out = Buffer.allocUnsafe(pos);
  buf.copy(out, 0, 0, pos);
  if (buf.length > KEEP_BYTES) buf = Buffer.allocUnsafeSlow(START_BYTES);
  return out;
}

/** The write position (for a later rewind). */
export function position(): number {
  return pos;
}

/** Drops everything written after `at` (a position() taken earlier). */
export function rewind(at: number): void {
  pos = at;
}

function grow(n: number): void {
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const next = Buffer.allocUnsafeSlow(size);
  buf.copy(next, 0, 0, pos);
  buf = next;
}

/** Room for n more bytes. */
export function ensure(n: number): void {
  if (pos + n > buf.length) grow(n);
}

/** One raw byte (room ensured by the caller). */
export function byte(b: number): void {
  buf[pos++] = b;
}

/** An unsigned 32-bit varint (room ensured by the caller). */
export function varint32(v: number): void {
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
export function int64(value: number): void {
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
export function sint64(value: number): void {
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
export function int32(value: number): void {
  ensure(10);
  if ((value |= 0) < 0) varint64(value >>> 0, 0xffffffff); // two's complement over 64 bits
  else varint32(value);
}

export function double(v: number): void {
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

/** A tag byte (every tag of citysense.v1 fits in one: proto/src/encode/schema.ts). */
export function tag(t: number): void {
  ensure(1);
  buf[pos++] = t;
}

/** A length-delimited string: length varint, UTF-8 bytes. */
export function str(s: string): void {
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
export function fork(t: number): number {
  ensure(2);
  buf[pos++] = t;
  return pos++;
}

/** Ends a length-delimited field started at `at`, moving its content when the length needs more bytes. */
export function ldelim(at: number): void {
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

/** A uint32 field, written when not 0 (proto3: a default scalar is left out). */
export function u32Field(t: number, v: number): void {
  if (v !== 0) {
    ensure(6);
    buf[pos++] = t;
    varint32(v >>> 0);
  }
}

/** A string field, written when not empty. */
export function strField(t: number, s: string | undefined | null): void {
  if (s != null && s !== '') {
    tag(t);
    str(s);
  }
}
