// One GB/T 26875.3-2011 frame: the control unit (header), the application data unit and the checksum.
// Pure and never throws. Layout (../shared/protocols.md; GB/T 26875.3-2011 §6.6, clause number not
// verified), multi-byte fields low byte first:
//
//   0 '@@' | 2 serial | 4 version major, minor | 6 time s,min,h,day,month,year-2000 | 12 source (6)
//   | 18 destination (6) | 24 app data length n | 26 command | 27 app data (n) | 27+n checksum | 28+n '##'
import { refusal, type Gb26875Refusal } from './errors.ts';

export const HEADER_BYTES = 27;
/** Header + checksum + end marker: a frame is n + 30 bytes. */
export const OVERHEAD_BYTES = 30;
/** GB/T 26875.3-2011 §6.6 (not verified): the application data unit is at most 1024 bytes. */
export const MAX_APP_DATA = 1024;
const AT = 0x40;
const HASH = 0x23;

/** Command byte (protocols.md): 1 control, 2 send data, 3 confirm, 4 request, 5 response, 6 deny. */
export const COMMANDS = { control: 1, send: 2, confirm: 3, request: 4, response: 5, deny: 6 } as const;
export type Command = (typeof COMMANDS)[keyof typeof COMMANDS];

/** The six time bytes as sent: panel local time. */
export interface FrameTime {
  second: number;
  minute: number;
  hour: number;
  day: number;
  month: number;
  /** Full year (the byte is year − 2000). */
  year: number;
}

export interface Gb26875Frame {
  serial: number;
  version: { major: number; minor: number };
  time: FrameTime;
  /** The frame's send time as epoch ms, or undefined when its time bytes are not a date. */
  sentAt: number | undefined;
  /** Addresses as 12 hex digits in wire order (low byte first), e.g. `2c312c320000`. */
  source: string;
  destination: string;
  command: number;
  appData: Uint8Array;
}

export type FrameResult = { ok: true; frame: Gb26875Frame; refusals: Gb26875Refusal[] } | { ok: false; refusal: Gb26875Refusal };

/** Sum of bytes [from, to) mod 256. */
export function checksum(bytes: Uint8Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum = (sum + bytes[i]!) & 0xff;
  return sum;
}

function hex(bytes: Uint8Array, from: number, to: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + from, to - from).toString('hex');
}

export function readTime(bytes: Uint8Array, at: number): FrameTime {
  // GB/T 26875.3-2011 §8.2.2 (not verified): seconds first, year − 2000 last, binary (not BCD).
  return { second: bytes[at]!, minute: bytes[at + 1]!, hour: bytes[at + 2]!, day: bytes[at + 3]!, month: bytes[at + 4]!, year: 2000 + bytes[at + 5]! };
}

/**
 * Local time → epoch ms, or undefined when the bytes are not a real date (a panel with an unset clock
 * sends zeros). `offsetMinutes` is the panel's offset from UTC (China: +480).
 */
export function timeToEpoch(t: FrameTime, offsetMinutes: number): number | undefined {
  if (t.second > 59 || t.minute > 59 || t.hour > 23 || t.month < 1 || t.month > 12 || t.day < 1) return undefined;
  const daysInMonth = new Date(Date.UTC(t.year, t.month, 0)).getUTCDate();
  if (t.day > daysInMonth) return undefined;
  return Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second) - offsetMinutes * 60_000;
}

export function describeTime(t: FrameTime): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${t.year}-${p(t.month)}-${p(t.day)} ${p(t.hour)}:${p(t.minute)}:${p(t.second)}`;
}

/** Parse one frame that fills `bytes` exactly. */
export function parseFrame(bytes: Uint8Array, offsetMinutes = 480): FrameResult {
  if (!(bytes instanceof Uint8Array)) {
    return { ok: false, refusal: refusal('GB26875_BAD_PAYLOAD', `got ${bytes === null ? 'null' : typeof bytes}`) };
  }
  if (bytes.length < 2 || bytes[0] !== AT || bytes[1] !== AT) {
    const first = Buffer.from(bytes.subarray(0, 2)).toString('hex') || '(empty)';
    return { ok: false, refusal: refusal('GB26875_BAD_START', `the message starts with 0x${first}`) };
  }
  if (bytes.length < OVERHEAD_BYTES) {
    return { ok: false, refusal: refusal('GB26875_TRUNCATED', `${bytes.length} bytes, the smallest frame is ${OVERHEAD_BYTES}`) };
  }
  const n = bytes[24]! | (bytes[25]! << 8);
  if (n > MAX_APP_DATA) {
    return { ok: false, refusal: refusal('GB26875_BAD_LENGTH', `the application data length is ${n}, at most ${MAX_APP_DATA} is allowed`) };
  }
  const total = n + OVERHEAD_BYTES;
  if (bytes.length < total) {
    return { ok: false, refusal: refusal('GB26875_TRUNCATED', `the header says ${n} bytes of application data, so ${total} bytes in all; the message has ${bytes.length}`) };
  }
  if (bytes[28 + n] !== HASH || bytes[29 + n] !== HASH) {
    return { ok: false, refusal: refusal('GB26875_BAD_END', `bytes ${28 + n}–${29 + n} are 0x${hex(bytes, 28 + n, 30 + n)}, expected 0x2323`) };
  }
  if (bytes.length > total) {
    return { ok: false, refusal: refusal('GB26875_BAD_LENGTH', `${bytes.length - total} bytes follow the end of a ${total}-byte frame`) };
  }
  // GB/T 26875.3-2011 §6.6 (not verified): the arithmetic sum of bytes 3–27 of the control unit and
  // the application data, carry above 8 bits dropped; 0-based that is bytes 2 .. 26+n.
  const want = checksum(bytes, 2, HEADER_BYTES + n);
  const got = bytes[HEADER_BYTES + n]!;
  if (want !== got) {
    return { ok: false, refusal: refusal('GB26875_BAD_CHECKSUM', `the frame says 0x${got.toString(16).padStart(2, '0')}, its bytes sum to 0x${want.toString(16).padStart(2, '0')}`) };
  }
  const time = readTime(bytes, 6);
  const sentAt = timeToEpoch(time, offsetMinutes);
  const refusals: Gb26875Refusal[] = [];
  if (sentAt === undefined) refusals.push(refusal('GB26875_BAD_TIME', `the frame's time is ${describeTime(time)}`));
  return {
    ok: true,
    refusals,
    frame: {
      serial: bytes[2]! | (bytes[3]! << 8),
      // GB/T 26875.3-2011 §6.6 (not verified): major version is fixed at 1, the minor is the vendor's.
      // Devices in the field send other values (0x10 0x00 is common), so the version is reported, not checked.
      version: { major: bytes[4]!, minor: bytes[5]! },
      time,
      sentAt,
      source: hex(bytes, 12, 18),
      destination: hex(bytes, 18, 24),
      command: bytes[26]!,
      appData: bytes.slice(HEADER_BYTES, HEADER_BYTES + n),
    },
  };
}

/** Epoch ms → the six time bytes in the panel's local time. */
export function epochToTime(ms: number, offsetMinutes = 480): FrameTime {
  const d = new Date(ms + offsetMinutes * 60_000);
  return { second: d.getUTCSeconds(), minute: d.getUTCMinutes(), hour: d.getUTCHours(), day: d.getUTCDate(), month: d.getUTCMonth() + 1, year: d.getUTCFullYear() };
}

export interface FrameFields {
  serial: number;
  version?: { major: number; minor: number };
  time: FrameTime;
  /** 12 hex digits, wire order. */
  source: string;
  destination: string;
  command: number;
  appData?: Uint8Array;
}

/** Build a frame. Throws only on arguments no caller should pass (an address that is not 6 bytes). */
export function encodeFrame(f: FrameFields): Uint8Array {
  const app = f.appData ?? new Uint8Array(0);
  const out = new Uint8Array(app.length + OVERHEAD_BYTES);
  const src = Buffer.from(f.source, 'hex');
  const dst = Buffer.from(f.destination, 'hex');
  if (src.length !== 6 || dst.length !== 6) throw new RangeError('an address is 6 bytes (12 hex digits)');
  out[0] = AT;
  out[1] = AT;
  out[2] = f.serial & 0xff;
  out[3] = (f.serial >> 8) & 0xff;
  out[4] = f.version?.major ?? 1;
  out[5] = f.version?.minor ?? 0;
  const t = f.time;
  out.set([t.second, t.minute, t.hour, t.day, t.month, (t.year - 2000) & 0xff], 6);
  out.set(src, 12);
  out.set(dst, 18);
  out[24] = app.length & 0xff;
  out[25] = (app.length >> 8) & 0xff;
  out[26] = f.command;
  out.set(app, HEADER_BYTES);
  out[HEADER_BYTES + app.length] = checksum(out, 2, HEADER_BYTES + app.length);
  out[28 + app.length] = HASH;
  out[29 + app.length] = HASH;
  return out;
}

/**
 * The answer to a received frame: command 3 (confirm) or 6 (deny), same serial number (GB/T
 * 26875.3-2011 §6.3, the send/confirm mode; not verified), addresses swapped, no application data,
 * stamped with `now` in the panel's local time. For a future TCP input; over MQTT the PUBACK confirms.
 */
export function buildAnswer(to: Gb26875Frame, command: 3 | 6 = 3, now = Date.now(), offsetMinutes = 480): Uint8Array {
  return encodeFrame({
    serial: to.serial,
    version: to.version,
    time: epochToTime(now, offsetMinutes),
    source: to.destination,
    destination: to.source,
    command,
  });
}
