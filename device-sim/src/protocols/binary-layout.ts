// The inverse of the edge's binary-layout decoder (edge/src/decoders/binary/decode.ts): values → the bytes
// a device with that layout sends. The layouts are the very objects the edge reads from a profile's
// `binary:` section, so a simulated device and the edge can never disagree about where a field sits.
import type { BinaryField, BinaryLayout } from '@citysense/edge/binary';

export type LayoutValue = number | boolean | string;

const SIZES: Readonly<Record<string, number>> = { u8: 1, i8: 1, u16: 2, i16: 2, u24: 3, u32: 4, i32: 4, f32: 4, f64: 8 };
const RANGES: Readonly<Record<string, readonly [number, number]>> = {
  u8: [0, 0xff],
  i8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  u24: [0, 0xffffff],
  u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
};

export function fieldBytes(f: Pick<BinaryField, 'type' | 'length'>): number {
  if (f.type === 'hex' || f.type === 'ascii') return f.length ?? 0;
  if (f.type === 'bits') return f.length ?? 1;
  return SIZES[f.type] ?? 0;
}

/** Length of the frame a layout describes: past its last field, its match byte and minLength. */
export function frameLength(layout: BinaryLayout): number {
  let n = layout.minLength ?? 0;
  for (const f of layout.fields) n = Math.max(n, f.offset + fieldBytes(f));
  if (layout.match) n = Math.max(n, layout.match.byte + 1);
  return n;
}

export interface EncodeOptions {
  /**
   * Write values outside the field's min/max as long as the wire type holds them (fault injection:
   * a sensor reporting nonsense). By default such a value is an error, as it is a bug in the simulator.
   */
  allowOutOfRange?: boolean;
}

/**
 * Encodes `values` (keyed like the decoder's output: field names, and bit names for bits fields) into a
 * frame. A numeric value is turned back into its raw integer as round((value − add) / scale); an enum
 * field takes the state's name; a missing value is written as 0 (or false). The match byte is set.
 * Throws on a value the layout cannot carry (unknown enum state, raw value outside the wire type).
 */
export function encodeBinary(layout: BinaryLayout, values: Readonly<Record<string, LayoutValue>>, opts: EncodeOptions = {}): Buffer {
  const buf = Buffer.alloc(frameLength(layout));
  if (layout.match) buf[layout.match.byte] = layout.match.equals;
  for (const f of layout.fields) {
    const order = f.byteOrder ?? layout.byteOrder ?? 'big';
    if (f.type === 'bits') {
      let raw = 0;
      for (const b of f.bits ?? []) if (values[b.name] === true) raw |= 1 << b.bit;
      writeUnsigned(buf, f.offset, fieldBytes(f), raw >>> 0, order);
      continue;
    }
    const v = values[f.name];
    if (f.type === 'hex') {
      const text = typeof v === 'string' ? v : '';
      Buffer.from(text.padEnd(2 * fieldBytes(f), '0').slice(0, 2 * fieldBytes(f)), 'hex').copy(buf, f.offset);
      continue;
    }
    if (f.type === 'ascii') {
      // The decoder strips trailing NULs and spaces, so NUL padding round-trips.
      buf.write(typeof v === 'string' ? v.slice(0, fieldBytes(f)) : '', f.offset, 'latin1');
      continue;
    }
    if (f.enum !== undefined) {
      const key = Object.entries(f.enum).find(([, state]) => state === v)?.[0];
      if (v !== undefined && key === undefined) throw new RangeError(`${f.name}: "${String(v)}" is not one of ${Object.values(f.enum).join(', ')}`);
      writeNumber(buf, f, key === undefined ? 0 : Number(key), order);
      continue;
    }
    const value = typeof v === 'number' ? v : typeof v === 'boolean' ? Number(v) : 0;
    if (v !== undefined && !opts.allowOutOfRange && ((f.min !== undefined && value < f.min) || (f.max !== undefined && value > f.max))) {
      throw new RangeError(`${f.name}: ${value} is outside ${f.min ?? '-∞'}..${f.max ?? '∞'}`);
    }
    const raw = (value - (f.add ?? 0)) / (f.scale ?? 1);
    writeNumber(buf, f, f.type === 'f32' || f.type === 'f64' ? raw : Math.round(raw), order);
  }
  return buf;
}

function writeUnsigned(buf: Buffer, offset: number, size: number, raw: number, order: 'big' | 'little'): void {
  if (order === 'big') buf.writeUIntBE(raw, offset, size);
  else buf.writeUIntLE(raw, offset, size);
}

function writeNumber(buf: Buffer, f: BinaryField, raw: number, order: 'big' | 'little'): void {
  const range = RANGES[f.type];
  if (range && (raw < range[0] || raw > range[1])) {
    throw new RangeError(`${f.name}: raw value ${raw} does not fit a ${f.type}`);
  }
  const be = order === 'big';
  switch (f.type) {
    case 'u8':
      buf.writeUInt8(raw, f.offset);
      return;
    case 'i8':
      buf.writeInt8(raw, f.offset);
      return;
    case 'u16':
      if (be) buf.writeUInt16BE(raw, f.offset);
      else buf.writeUInt16LE(raw, f.offset);
      return;
    case 'i16':
      if (be) buf.writeInt16BE(raw, f.offset);
      else buf.writeInt16LE(raw, f.offset);
      return;
    case 'u24':
      writeUnsigned(buf, f.offset, 3, raw, order);
      return;
    case 'u32':
      if (be) buf.writeUInt32BE(raw, f.offset);
      else buf.writeUInt32LE(raw, f.offset);
      return;
    case 'i32':
      if (be) buf.writeInt32BE(raw, f.offset);
      else buf.writeInt32LE(raw, f.offset);
      return;
    case 'f32':
      if (be) buf.writeFloatBE(raw, f.offset);
      else buf.writeFloatLE(raw, f.offset);
      return;
    case 'f64':
      if (be) buf.writeDoubleBE(raw, f.offset);
      else buf.writeDoubleLE(raw, f.offset);
      return;
    default:
      throw new TypeError(`${f.name}: cannot encode a ${f.type} field`);
  }
}

/**
 * The value the decoder will give back for `value` in field `f`: on the field's grid (scale steps from
 * `add`) and rounded as the decoder rounds. Generators report through this so what they record as sent
 * is exactly what the edge reads.
 */
export function quantize(f: BinaryField, value: number): number {
  if (f.type === 'f32') return Math.fround(value);
  if (f.type === 'f64') return value;
  const raw = Math.round((value - (f.add ?? 0)) / (f.scale ?? 1));
  const v = raw * (f.scale ?? 1) + (f.add ?? 0);
  const d = f.decimals ?? Math.min(12, Math.max(decimalsOf(f.scale ?? 1), decimalsOf(f.add ?? 0)));
  const r = Number(v.toFixed(d));
  return Object.is(r, -0) ? 0 : r;
}

function decimalsOf(x: number): number {
  const [mant = '', exp = '0'] = String(x).toLowerCase().split('e');
  const frac = mant.split('.')[1]?.length ?? 0;
  return Math.max(0, frac - Number(exp));
}
