// GB/T 26875.3-2011 frame ENCODER for simulated fire panels (user-information transmission devices).
// Written from the standard's layout (../shared/protocols.md), deliberately without the edge's decoder,
// so that a misreading shared by both is less likely; the edge's tests decode what this encodes.
//
// Frame: '@@' | serial u16 | version (major, minor) | time s,min,h,day,month,year-2000 | source (6)
//        | destination (6) | n = app data length u16 | command | app data (n) | checksum | '##'
// All multi-byte integers are little-endian (low byte first). Checksum = sum of every byte from the
// serial number to the end of the app data, mod 256.

export const GB_COMMAND = { control: 1, send: 2, confirm: 3, request: 4, response: 5, deny: 6 } as const;
export const GB_TYPE = { systemState: 1, componentState: 2, analog: 3, operation: 4, deviceState: 21 } as const;
export const GB_ANALOG = { height: 2, temperature: 3, pressureMPa: 4, pressureKPa: 5, gas: 6 } as const;
/**
 * Resolution per count of the analog types the simulator sends, in the type's own unit (the standard's
 * table of analog types, §8.2.1.3; written here apart from the edge's decoder): height 0.01 m,
 * temperature 0.1 °C, pressure type 4 0.1 MPa, pressure type 5 0.1 kPa, gas 0.1 %LEL.
 */
export const GB_ANALOG_RESOLUTION = { height: 0.01, temperature: 0.1, pressureMPa: 0.1, pressureKPa: 0.1, gas: 0.1 } as const;

/** Sprinkler pipe pressure in MPa → a type 5 count (kPa at 0.1 kPa per count: 0.4 MPa = 400 kPa = 4000). */
export function kPaCount(mpa: number): number {
  return Math.round((mpa * 1000) / GB_ANALOG_RESOLUTION.pressureKPa);
}

/** State-word bits (protocols.md). Components use 0–8 (bit 8: power fault). */
export const GB_STATE = {
  normal: 1 << 0,
  fireAlarm: 1 << 1,
  fault: 1 << 2,
  isolated: 1 << 3,
  supervisory: 1 << 4,
  started: 1 << 5,
  feedback: 1 << 6,
  delay: 1 << 7,
  mainPowerFault: 1 << 8,
  backupPowerFault: 1 << 9,
  busFault: 1 << 10,
  manual: 1 << 11,
  configChanged: 1 << 12,
  reset: 1 << 13,
} as const;

const MAX_DATA = 1024;

/** The 6 time bytes for epoch ms, in the panel's local time (`offsetMinutes` east of UTC; China +480). */
export function timeBytes(ms: number, offsetMinutes = 480): number[] {
  const local = new Date(ms + offsetMinutes * 60_000);
  const year = local.getUTCFullYear() - 2000;
  if (year < 0 || year > 255) throw new RangeError(`year ${local.getUTCFullYear()} does not fit a GB/T 26875 time label`);
  return [local.getUTCSeconds(), local.getUTCMinutes(), local.getUTCHours(), local.getUTCDate(), local.getUTCMonth() + 1, year];
}

export interface GbFrameSpec {
  serial: number;
  /** Send time, epoch ms. */
  time: number;
  offsetMinutes?: number;
  source: Uint8Array;
  destination: Uint8Array;
  command: number;
  data?: Uint8Array;
  versionMajor?: number;
  versionMinor?: number;
}

export function encodeGbFrame(spec: GbFrameSpec): Uint8Array {
  const data = spec.data ?? new Uint8Array();
  if (data.length > MAX_DATA) throw new RangeError(`application data of ${data.length} bytes is over ${MAX_DATA}`);
  if (spec.source.length !== 6 || spec.destination.length !== 6) throw new RangeError('addresses are 6 bytes');
  const bytes: number[] = [0x40, 0x40];
  bytes.push(spec.serial & 0xff, (spec.serial >>> 8) & 0xff);
  bytes.push(spec.versionMajor ?? 1, spec.versionMinor ?? 0);
  bytes.push(...timeBytes(spec.time, spec.offsetMinutes));
  bytes.push(...spec.source, ...spec.destination);
  bytes.push(data.length & 0xff, data.length >>> 8);
  bytes.push(spec.command);
  bytes.push(...data);
  let sum = 0;
  for (let i = 2; i < bytes.length; i++) sum += bytes[i]!;
  bytes.push(sum % 256, 0x23, 0x23);
  return Uint8Array.from(bytes);
}

// ---- information objects: body, then the object's 6-byte time label ----

export interface SystemStateObject {
  systemType: number;
  systemAddress: number;
  state: number;
  ts: number;
}
export interface ComponentRef {
  systemType: number;
  systemAddress: number;
  componentType: number;
  /** 4-byte component address as an unsigned integer. */
  componentAddress: number;
}
export interface ComponentStateObject extends ComponentRef {
  state: number;
  /** Up to 31 bytes of GB 18030 text. */
  description: string;
  ts: number;
}
export interface AnalogObject extends ComponentRef {
  analogType: number;
  /** The raw signed 16-bit count (value ÷ the type's resolution). */
  raw: number;
  ts: number;
}

function u16le(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff];
}
function u32le(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

function unit(type: number, objects: number[][]): Uint8Array {
  if (objects.length > 255) throw new RangeError('at most 255 objects in one data unit');
  return Uint8Array.from([type, objects.length, ...objects.flat()]);
}

export function systemStateData(objs: readonly SystemStateObject[], offsetMinutes = 480): Uint8Array {
  return unit(GB_TYPE.systemState, objs.map((o) => [o.systemType, o.systemAddress, ...u16le(o.state), ...timeBytes(o.ts, offsetMinutes)]));
}

export function componentStateData(objs: readonly ComponentStateObject[], offsetMinutes = 480): Uint8Array {
  return unit(
    GB_TYPE.componentState,
    objs.map((o) => [o.systemType, o.systemAddress, o.componentType, ...u32le(o.componentAddress), ...u16le(o.state), ...gb18030Field(o.description, 31), ...timeBytes(o.ts, offsetMinutes)]),
  );
}

export function analogData(objs: readonly AnalogObject[], offsetMinutes = 480): Uint8Array {
  return unit(
    GB_TYPE.analog,
    objs.map((o) => {
      const raw = Math.round(o.raw);
      if (raw < -32768 || raw > 32767) throw new RangeError(`analog count ${raw} does not fit 16 bits`);
      return [o.systemType, o.systemAddress, o.componentType, ...u32le(o.componentAddress), o.analogType, ...u16le(raw & 0xffff), ...timeBytes(o.ts, offsetMinutes)];
    }),
  );
}

export function deviceStateData(state: number, ts: number, offsetMinutes = 480): Uint8Array {
  return unit(GB_TYPE.deviceState, [[state & 0xff, ...timeBytes(ts, offsetMinutes)]]);
}

// ---- GB 18030 text (descriptions) ----

let gbTable: Map<string, number[]> | undefined;

/**
 * Node can decode GB 18030 but not encode it, so the table of two-byte codes is built once by
 * decoding every lead/trail pair (GBK's range; enough for the Chinese a panel description uses).
 */
function gbCodes(): Map<string, number[]> {
  if (gbTable) return gbTable;
  const dec = new TextDecoder('gb18030');
  gbTable = new Map();
  for (let lead = 0x81; lead <= 0xfe; lead++) {
    for (let trail = 0x40; trail <= 0xfe; trail++) {
      if (trail === 0x7f) continue;
      const ch = dec.decode(Uint8Array.of(lead, trail));
      if (ch.length === 1 && ch !== '\ufffd' && !gbTable.has(ch)) gbTable.set(ch, [lead, trail]);
    }
  }
  return gbTable;
}

/** Text → GB 18030 bytes, NUL-padded to `width`, never cutting a character in half; unknown characters become '?'. */
export function gb18030Field(text: string, width: number): number[] {
  const out: number[] = [];
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    const bytes = code < 0x80 ? [code] : (gbCodes().get(ch) ?? [0x3f]);
    if (out.length + bytes.length > width) break;
    out.push(...bytes);
  }
  while (out.length < width) out.push(0);
  return out;
}
