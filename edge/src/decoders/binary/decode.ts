// Decodes one NB-IoT binary frame with a device's layout (layout.ts). Pure and never throws: a frame
// that cannot be read at all gives one refusal and no values; a single bad value is refused alone.
import { BINARY_ERRORS, type BinaryErrorCode } from './errors.ts';
import { fieldSize, requiredLength, type BinaryField, type BinaryLayout } from './layout.ts';

export type BinaryValue = number | boolean | string;

export interface BinaryRefusal {
  code: BinaryErrorCode;
  message: string;
  /** The field (or bit) whose value was refused; absent when the whole frame was. */
  field?: string;
}

export interface BinaryDecoded {
  values: Record<string, BinaryValue>;
  refusals: BinaryRefusal[];
}

function refusal(code: BinaryErrorCode, detail: string, field?: string): BinaryRefusal {
  const r: BinaryRefusal = { code, message: `${BINARY_ERRORS[code]}: ${detail}` };
  if (field !== undefined) r.field = field;
  return r;
}

export interface BinaryLimits {
  /** Longest frame accepted, in bytes (hex text: twice as many digits, plus separators). */
  maxFrameBytes: number;
}
export const DEFAULT_BINARY_LIMITS: Readonly<BinaryLimits> = Object.freeze({ maxFrameBytes: 1024 });

/**
 * A frame over the limit, checked before hex text is split into tokens or bytes are copied. Hex text may
 * carry a separator between byte pairs (`0xA1 0xB2`: up to 5 characters per byte).
 */
function tooLong(payload: Uint8Array | string, lim: Readonly<BinaryLimits>): BinaryRefusal | undefined {
  const max = typeof payload === 'string' ? lim.maxFrameBytes * 5 + 8 : lim.maxFrameBytes;
  const len = typeof payload === 'string' || payload instanceof Uint8Array ? payload.length : 0;
  if (len <= max) return undefined;
  return refusal('BINARY_TOO_LONG', `${len} ${typeof payload === 'string' ? 'characters of hex text' : 'bytes'}, the limit is ${lim.maxFrameBytes} bytes`);
}

/** Hex text → bytes: `a1b2`, `A1 B2`, `0xA1B2`, `0xa1 0xb2`, `a1:b2` are all the same two bytes. */
export function hexToBytes(text: string): Buffer | BinaryRefusal {
  const tokens = text.trim().split(/[\s,:]+/).filter((t) => t !== '');
  const clean = tokens.map((t) => (t.startsWith('0x') || t.startsWith('0X') ? t.slice(2) : t)).join('');
  const bad = /[^0-9A-Fa-f]/.exec(clean);
  if (bad) return refusal('BINARY_BAD_HEX', `${JSON.stringify(bad[0])} is not a hex digit; send the frame as raw bytes or as hex text`);
  if (clean.length % 2 !== 0) return refusal('BINARY_BAD_HEX', `${clean.length} hex digits is an odd number: a byte is cut in half`);
  return Buffer.from(clean, 'hex');
}

/** Decode `payload` (raw bytes, or hex text) with `layout`, a layout that passed loadBinaryLayout. */
export function decodeBinary(payload: Uint8Array | string, layout: BinaryLayout, limits: Readonly<BinaryLimits> = DEFAULT_BINARY_LIMITS): BinaryDecoded {
  const long = tooLong(payload, limits);
  if (long) return { values: {}, refusals: [long] };
  let bytes: Buffer;
  if (typeof payload === 'string') {
    const b = hexToBytes(payload);
    if (!Buffer.isBuffer(b)) return { values: {}, refusals: [b] };
    bytes = b;
  } else if (payload instanceof Uint8Array) {
    bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  } else {
    return { values: {}, refusals: [refusal('BINARY_BAD_PAYLOAD', `got ${payload === null ? 'null' : typeof payload}`)] };
  }
  try {
    return decodeBytes(bytes, layout);
  } catch (err) {
    // Only a layout that skipped loadBinaryLayout can get here (an unknown type, say); still no throw.
    return { values: {}, refusals: [refusal('BINARY_BAD_LAYOUT', `decoding failed: ${(err as Error)?.message ?? String(err)}; validate the layout with loadBinaryLayout`)] };
  }
}

function decodeBytes(bytes: Buffer, layout: BinaryLayout): BinaryDecoded {
  const need = requiredLength(layout);
  if (bytes.length < need) {
    return { values: {}, refusals: [refusal('BINARY_TOO_SHORT', `the layout needs ${need} bytes, the frame has ${bytes.length}`)] };
  }
  if (layout.match && bytes[layout.match.byte] !== layout.match.equals) {
    const got = bytes[layout.match.byte]!;
    return {
      values: {},
      refusals: [refusal('BINARY_NO_MATCH', `byte ${layout.match.byte} is 0x${hex2(got)}, the layout is for 0x${hex2(layout.match.equals)}; another frame type of this device needs its own layout`)],
    };
  }
  const values: Record<string, BinaryValue> = {};
  const refusals: BinaryRefusal[] = [];
  for (const f of layout.fields) {
    const order = f.byteOrder ?? layout.byteOrder ?? 'big';
    if (f.type === 'bits') {
      const raw = readUnsigned(bytes, f.offset, fieldSize(f), order);
      for (const b of f.bits ?? []) values[b.name] = ((raw >>> b.bit) & 1) === 1;
      continue;
    }
    if (f.type === 'hex') {
      values[f.name] = bytes.toString('hex', f.offset, f.offset + fieldSize(f));
      continue;
    }
    if (f.type === 'ascii') {
      // Devices pad text with NULs or spaces to the field's width.
      const text = bytes.toString('latin1', f.offset, f.offset + fieldSize(f)).replace(/[\0 ]+$/, '');
      if (/[^\x20-\x7e]/.test(text)) refusals.push(refusal('BINARY_BAD_TEXT', `${f.name} at offset ${f.offset}`, f.name));
      else values[f.name] = text;
      continue;
    }
    const raw = readNumber(bytes, f, order);
    if (!Number.isFinite(raw)) {
      refusals.push(refusal('BINARY_NOT_FINITE', `${f.name} at offset ${f.offset} is ${raw}`, f.name));
      continue;
    }
    if (f.enum !== undefined) {
      const key = String(raw);
      if (Object.hasOwn(f.enum, key)) values[f.name] = f.enum[key]!;
      else refusals.push(refusal('BINARY_BAD_ENUM', `${f.name} is ${raw}, the layout knows ${Object.keys(f.enum).join(', ')}`, f.name));
      continue;
    }
    const v = scaled(raw, f);
    if ((f.min !== undefined && v < f.min) || (f.max !== undefined && v > f.max)) {
      const range = `${f.min ?? '-∞'}..${f.max ?? '∞'}`;
      refusals.push(refusal('BINARY_OUT_OF_RANGE', `${f.name} is ${v}${f.unit ? ' ' + f.unit : ''}, valid ${range}; check the sensor`, f.name));
      continue;
    }
    values[f.name] = v;
  }
  return { values, refusals };
}

function readUnsigned(b: Buffer, offset: number, size: number, order: 'big' | 'little'): number {
  return order === 'big' ? b.readUIntBE(offset, size) : b.readUIntLE(offset, size);
}

function readNumber(b: Buffer, f: BinaryField, order: 'big' | 'little'): number {
  const be = order === 'big';
  switch (f.type) {
    case 'u8':
      return b.readUInt8(f.offset);
    case 'i8':
      return b.readInt8(f.offset);
    case 'u16':
      return be ? b.readUInt16BE(f.offset) : b.readUInt16LE(f.offset);
    case 'i16':
      return be ? b.readInt16BE(f.offset) : b.readInt16LE(f.offset);
    case 'u24':
      return be ? b.readUIntBE(f.offset, 3) : b.readUIntLE(f.offset, 3);
    case 'u32':
      return be ? b.readUInt32BE(f.offset) : b.readUInt32LE(f.offset);
    case 'i32':
      return be ? b.readInt32BE(f.offset) : b.readInt32LE(f.offset);
    case 'f32':
      return be ? b.readFloatBE(f.offset) : b.readFloatLE(f.offset);
    case 'f64':
      return be ? b.readDoubleBE(f.offset) : b.readDoubleLE(f.offset);
    default:
      throw new TypeError(`unknown field type ${String(f.type)}`);
  }
}

function scaled(raw: number, f: BinaryField): number {
  if (f.scale === undefined && f.add === undefined && f.decimals === undefined) return raw;
  const v = raw * (f.scale ?? 1) + (f.add ?? 0);
  const isFloat = f.type === 'f32' || f.type === 'f64';
  // An integer × a scale with k decimals has exactly k decimals; rounding there undoes binary noise.
  const d = f.decimals ?? (isFloat ? undefined : Math.min(12, Math.max(decimalsOf(f.scale ?? 1), decimalsOf(f.add ?? 0))));
  if (d === undefined) return v;
  const r = Number(v.toFixed(d));
  return Object.is(r, -0) ? 0 : r;
}

/** Decimal places of a number as written: 0.01 → 2, 2.5e-3 → 4, 10 → 0. */
function decimalsOf(x: number): number {
  const [mant = '', exp = '0'] = String(x).toLowerCase().split('e');
  const frac = mant.split('.')[1]?.length ?? 0;
  return Math.max(0, frac - Number(exp));
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

/**
 * Decode with the first of a device's layouts whose `match` byte fits (a layout without `match` fits
 * any frame), for devices that send several frame types (heartbeat, alarm, ...). `layout` is its index.
 */
export function decodeBinaryAny(payload: Uint8Array | string, layouts: readonly BinaryLayout[], limits: Readonly<BinaryLimits> = DEFAULT_BINARY_LIMITS): BinaryDecoded & { layout?: number } {
  const long = tooLong(payload, limits);
  if (long) return { values: {}, refusals: [long] };
  let bytes: Uint8Array;
  if (typeof payload === 'string') {
    const b = hexToBytes(payload);
    if (!Buffer.isBuffer(b)) return { values: {}, refusals: [b] };
    bytes = b;
  } else bytes = payload;
  if (!(bytes instanceof Uint8Array)) return decodeBinary(bytes, layouts[0]!, limits);
  const i = layouts.findIndex((l) => !l.match || bytes[l.match.byte] === l.match.equals);
  if (i === -1) {
    const kinds = layouts.map((l) => (l.match ? `0x${hex2(l.match.equals)} at byte ${l.match.byte}` : 'any')).join(', ');
    return { values: {}, refusals: [refusal('BINARY_NO_MATCH', `no layout of the device fits this frame (they expect ${kinds})`)] };
  }
  return { ...decodeBinary(bytes, layouts[i]!, limits), layout: i };
}
