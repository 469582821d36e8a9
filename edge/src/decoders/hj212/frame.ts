// One HJ 212 frame (2017, and the 2005 and 2025 versions it is compatible with) from text to fields.
// Pure: no I/O, never throws; every refusal carries a code from errors.ts and a message for the installer.
import { hj212Crc } from './crc.ts';
import { HJ212_ERRORS, type Hj212ErrorCode } from './errors.ts';

/** HJ 212-2017 §6.3.1: the data segment is 0–1024 bytes. */
export const HJ212_MAX_SEGMENT_BYTES = 1024;
/** `##` + 4-digit length before the segment; 4 CRC digits + CRLF after it. */
export const HJ212_HEADER_BYTES = 6;
export const HJ212_TRAILER_BYTES = 6;

export type Hj212Version = '2005' | '2017' | '2025' | 'unknown';

export interface Hj212Frame {
  qn: string;
  st: string;
  cn: string;
  pw: string;
  mn: string;
  /** The Flag byte as sent (0 when a 2005 station left it out). */
  flag: number;
  ackWanted: boolean;
  split: boolean;
  version: Hj212Version;
  pnum?: number;
  pno?: number;
  /** DataTime (China time, UTC+8) as epoch milliseconds, when the CP carries one. */
  dataTimeMs?: number;
  /** CP `code-Suffix=value` pairs: items['a34004']['Rtd'] === '35.2'. Values stay text; readings.ts checks them. */
  items: Record<string, Record<string, string>>;
  /** CP plain `key=value` pairs: DataTime, RtdInterval, QnRtn, ... */
  params: Record<string, string>;
  /** The CRC as sent (upper-cased). */
  crc: string;
}

/** What could be read from a refused frame's header, so the caller can still address a 9011 answer. */
export type Hj212Partial = Partial<Pick<Hj212Frame, 'qn' | 'st' | 'cn' | 'pw' | 'mn' | 'flag' | 'ackWanted' | 'version'>>;

export interface Hj212Refusal {
  ok: false;
  code: Hj212ErrorCode;
  message: string;
  /** The data-segment field at fault, for HJ212_BAD_FIELD (QN, ST, CN, PW, MN, Flag, PNUM, PNO, CP). */
  field?: string;
  /** Best-effort header fields of a frame refused after its segment was located (e.g. bad CRC). */
  partial?: Hj212Partial;
}

export type Hj212Result = { ok: true; frame: Hj212Frame } | Hj212Refusal;

export interface ParseFrameOptions {
  /** Largest data segment accepted, in bytes. Default 1024 (HJ 212-2017 §6.3.1). */
  maxSegmentBytes?: number;
  /** Most CP `key=value` pairs, counted before the CP is split (decoders.hj212.maxCpPairs). Default 512. */
  maxCpPairs?: number;
}

export const HJ212_MAX_CP_PAIRS = 512;

export function hj212Refusal(code: Hj212ErrorCode, detail: string, extra?: { field?: string; partial?: Hj212Partial }): Hj212Refusal {
  const r: Hj212Refusal = { ok: false, code, message: `${HJ212_ERRORS[code]}: ${detail}` };
  if (extra?.field !== undefined) r.field = extra.field;
  if (extra?.partial !== undefined) r.partial = extra.partial;
  return r;
}

const HASH = 0x23;
const CR = 0x0d;
const LF = 0x0a;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parse one frame given as text (as read from a line or a test vector). */
export function parseFrame(text: string, opts: ParseFrameOptions = {}): Hj212Result {
  if (typeof text !== 'string') return hj212Refusal('HJ212_BAD_HEADER', 'expected the frame as text');
  return parseFrameBytes(Buffer.from(text, 'utf8'), opts);
}

/** Parse one frame given as bytes: the CRC is over the bytes as sent, so prefer this for raw TCP data. */
export function parseFrameBytes(bytes: Uint8Array, opts: ParseFrameOptions = {}): Hj212Result {
  const max = opts.maxSegmentBytes ?? HJ212_MAX_SEGMENT_BYTES;
  if (bytes.length < HJ212_HEADER_BYTES || bytes[0] !== HASH || bytes[1] !== HASH) {
    return hj212Refusal('HJ212_BAD_HEADER', `starts with ${JSON.stringify(ascii(bytes, 0, 6))}`);
  }
  const lenText = ascii(bytes, 2, 6);
  if (!/^\d{4}$/.test(lenText)) {
    return hj212Refusal('HJ212_BAD_HEADER', `the length field is ${JSON.stringify(lenText)}, not 4 decimal digits`);
  }
  const declared = Number(lenText);
  if (declared > max) {
    return hj212Refusal('HJ212_TOO_LONG', `the frame declares ${declared} bytes, the maximum is ${max}`);
  }
  // HJ 212-2017 §6.3.1: the packet ends in CRLF; tolerate its absence at the end of the input.
  const crlf = bytes.length >= 2 && bytes[bytes.length - 2] === CR && bytes[bytes.length - 1] === LF ? 2 : 0;
  const actual = bytes.length - HJ212_HEADER_BYTES - 4 - crlf;
  if (actual !== declared) {
    const seen = actual < 0 ? 'the frame is too short to hold a segment and a CRC' : `the segment is ${actual} bytes`;
    return hj212Refusal('HJ212_BAD_LENGTH', `the length field says ${lenText} but ${seen}; check the station's length computation (bytes of the UTF-8 segment)`);
  }
  const segment = bytes.subarray(HJ212_HEADER_BYTES, HJ212_HEADER_BYTES + declared);
  const crcText = ascii(bytes, HJ212_HEADER_BYTES + declared, HJ212_HEADER_BYTES + declared + 4);

  let segText: string | undefined;
  try {
    segText = utf8.decode(segment);
  } catch {
    segText = undefined;
  }
  // A 9011 with QnRtn=9 is owed even to a frame with a bad CRC (protocols.md), so read what we can first.
  const partial = segText === undefined ? undefined : readPartial(segText);
  const partialExtra = partial && Object.keys(partial).length > 0 ? { partial } : undefined;

  if (!/^[0-9A-Fa-f]{4}$/.test(crcText)) {
    return hj212Refusal('HJ212_BAD_CRC', `the CRC field is ${JSON.stringify(crcText)}, not 4 hex digits`, partialExtra);
  }
  const computed = hj212Crc(segment);
  if (computed !== parseInt(crcText, 16)) {
    const want = computed.toString(16).toUpperCase().padStart(4, '0');
    return hj212Refusal('HJ212_BAD_CRC', `the frame says ${crcText.toUpperCase()} but the segment's CRC is ${want}; the frame was corrupted in transit or the station computes another CRC`, partialExtra);
  }
  if (segText === undefined) {
    return hj212Refusal('HJ212_BAD_ENCODING', 'the data segment has bytes that are not UTF-8; set the station to UTF-8 (HJ 212-2017) text');
  }
  const r = parseSegment(segText, crcText.toUpperCase(), opts.maxCpPairs ?? HJ212_MAX_CP_PAIRS);
  // A frame refused for a field (ST, CN, PNUM, DataTime...) can still be answered 9011 with the QnRtn
  // that names the field, as long as its QN, MN and Flag were readable.
  if (!r.ok && r.partial === undefined && partialExtra) r.partial = partialExtra.partial;
  return r;
}

interface Header {
  fields: Map<string, string>;
  cp: string;
}

function splitHeader(seg: string): Header | Hj212Refusal {
  // HJ 212-2017 §6.3.2: header fields are `key=value;` pairs and CP=&&...&& closes the segment.
  const cpAt = seg.indexOf('CP=&&');
  if (cpAt === -1) return hj212Refusal('HJ212_BAD_FIELD', 'no CP=&&...&& in the data segment', { field: 'CP' });
  if (cpAt > 0 && seg[cpAt - 1] !== ';') return hj212Refusal('HJ212_BAD_FIELD', 'CP=&& is not preceded by ;', { field: 'CP' });
  const rest = seg.slice(cpAt + 5);
  if (!rest.endsWith('&&')) return hj212Refusal('HJ212_BAD_FIELD', 'the CP payload does not end with && at the end of the segment', { field: 'CP' });
  const cp = rest.slice(0, -2);
  const fields = new Map<string, string>();
  const head = seg.slice(0, Math.max(0, cpAt - 1));
  if (head.length > 0) {
    for (const piece of head.split(';')) {
      const eq = piece.indexOf('=');
      const key = eq === -1 ? piece : piece.slice(0, eq);
      if (eq === -1 || !/^[A-Za-z]{1,16}$/.test(key)) {
        return hj212Refusal('HJ212_BAD_FIELD', `${JSON.stringify(piece.slice(0, 40))} is not a key=value field`, { field: key.slice(0, 16) });
      }
      if (fields.has(key)) return hj212Refusal('HJ212_BAD_FIELD', `${key} appears twice`, { field: key });
      fields.set(key, piece.slice(eq + 1));
    }
  }
  return { fields, cp };
}

function readPartial(seg: string): Hj212Partial {
  const h = splitHeader(seg);
  const p: Hj212Partial = {};
  if ('ok' in h) return p;
  const f = h.fields;
  const qn = f.get('QN');
  if (qn !== undefined && /^\d{17}$/.test(qn)) p.qn = qn;
  const st = f.get('ST');
  if (st !== undefined && /^\d{2,5}$/.test(st)) p.st = st;
  const cn = f.get('CN');
  if (cn !== undefined && /^\d{4}$/.test(cn)) p.cn = cn;
  const pw = f.get('PW');
  if (pw !== undefined && PW_RE.test(pw)) p.pw = pw;
  const mn = f.get('MN');
  if (mn !== undefined && MN_RE.test(mn)) p.mn = mn;
  const flag = f.get('Flag');
  if (flag !== undefined && /^\d{1,3}$/.test(flag) && Number(flag) <= 255) {
    p.flag = Number(flag);
    p.ackWanted = (p.flag & 1) === 1;
    p.version = versionOf(p.flag);
  }
  return p;
}

// HJ 212-2017 §6.3.2: MN is up to 24 characters (EPC-96 as hex in 2017, 14 digits in 2005).
const MN_RE = /^[0-9A-Za-z]{1,24}$/;
// HJ 212-2017 §6.3.2: PW is a short printable password; 64 is a generous bound, not the standard's.
const PW_RE = /^[\x21-\x3c\x3e-\x7e]{0,64}$/; // printable ASCII but `=`
const CODE_RE = /^[A-Za-z0-9][A-Za-z0-9_]{0,31}$/;
const SUFFIX_RE = /^[A-Za-z]{1,16}$/;
const PARAM_RE = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\x00-\x1f\x7f]/;

/** Flag bits V5..V0 (HJ 212-2017 §6.3.2): 000000 = 2005, 000001 = 2017, 000010 = 2025. */
export function versionOf(flag: number): Hj212Version {
  const v = flag >> 2;
  return v === 0 ? '2005' : v === 1 ? '2017' : v === 2 ? '2025' : 'unknown';
}

function parseSegment(seg: string, crc: string, maxCpPairs: number): Hj212Result {
  const h = splitHeader(seg);
  if ('ok' in h) return h;
  const f = h.fields;

  const flagText = f.get('Flag');
  let flag = 0;
  if (flagText !== undefined) {
    if (!/^\d{1,3}$/.test(flagText) || Number(flagText) > 255) {
      return hj212Refusal('HJ212_BAD_FIELD', `Flag=${JSON.stringify(flagText)} is not a number 0..255`, { field: 'Flag' });
    }
    flag = Number(flagText);
  }
  // HJ/T 212-2005 stations may leave Flag out: read as 0, i.e. version 2005, no answer wanted.
  const version = versionOf(flag);
  const ackWanted = (flag & 1) === 1; // bit 0 = A
  const split = (flag & 2) === 2; // bit 1 = D

  const qn = f.get('QN');
  if (qn === undefined) {
    // HJ/T 212-2005 data uploads often carry no QN; 2017 and later always do.
    if (version !== '2005') return hj212Refusal('HJ212_BAD_FIELD', 'QN is missing', { field: 'QN' });
  } else if (!/^\d{17}$/.test(qn)) {
    return hj212Refusal('HJ212_BAD_FIELD', `QN=${JSON.stringify(qn.slice(0, 30))} is not 17 digits (YYYYMMDDhhmmsszzz)`, { field: 'QN' });
  }
  const st = f.get('ST');
  if (st === undefined || !/^\d{2,5}$/.test(st)) {
    return hj212Refusal('HJ212_BAD_FIELD', st === undefined ? 'ST is missing' : `ST=${JSON.stringify(st.slice(0, 30))} is not a system code`, { field: 'ST' });
  }
  const cn = f.get('CN');
  if (cn === undefined || !/^\d{4}$/.test(cn)) {
    return hj212Refusal('HJ212_BAD_FIELD', cn === undefined ? 'CN is missing' : `CN=${JSON.stringify(cn.slice(0, 30))} is not 4 digits`, { field: 'CN' });
  }
  const pw = f.get('PW');
  if (pw === undefined || !PW_RE.test(pw)) {
    return hj212Refusal('HJ212_BAD_FIELD', pw === undefined ? 'PW is missing' : 'PW has characters other than printable ASCII or is over 64 long', { field: 'PW' });
  }
  const mn = f.get('MN');
  if (mn === undefined || !MN_RE.test(mn)) {
    return hj212Refusal('HJ212_BAD_FIELD', mn === undefined ? 'MN is missing' : `MN=${JSON.stringify(mn.slice(0, 30))} is not 1 to 24 letters and digits`, { field: 'MN' });
  }

  const frame: Hj212Frame = { qn: qn ?? '', st, cn, pw, mn, flag, ackWanted, split, version, items: {}, params: {}, crc };

  // HJ 212-2017 §6.3.2: PNUM/PNO follow only when the D bit says the packet is split.
  for (const key of ['PNUM', 'PNO'] as const) {
    const t = f.get(key);
    if (t === undefined) {
      if (split) return hj212Refusal('HJ212_BAD_FIELD', `Flag=${flag} says the packet is split but ${key} is missing`, { field: key });
      continue;
    }
    if (!/^\d{1,4}$/.test(t) || Number(t) < 1) {
      return hj212Refusal('HJ212_BAD_FIELD', `${key}=${JSON.stringify(t.slice(0, 30))} is not a packet number 1..9999`, { field: key });
    }
    if (key === 'PNUM') frame.pnum = Number(t);
    else frame.pno = Number(t);
  }
  if (frame.pnum !== undefined && frame.pno !== undefined && frame.pno > frame.pnum) {
    return hj212Refusal('HJ212_BAD_FIELD', `PNO=${frame.pno} is beyond PNUM=${frame.pnum}`, { field: 'PNO' });
  }

  const cpErr = parseCp(h.cp, frame, maxCpPairs);
  if (cpErr) return cpErr;

  const dt = frame.params['DataTime'];
  if (dt !== undefined) {
    const ms = chinaTimeToMs(dt);
    if (ms === undefined) {
      return hj212Refusal('HJ212_BAD_DATATIME', `DataTime=${JSON.stringify(dt.slice(0, 30))} is not a real YYYYMMDDhhmmss time; check the data logger's clock`);
    }
    frame.dataTimeMs = ms;
  }
  return { ok: true, frame };
}

function parseCp(cp: string, frame: Hj212Frame, maxPairs: number): Hj212Refusal | undefined {
  // Count the pairs before splitting: split() would build every piece first.
  let pairs = 1;
  for (let i = 0; i < cp.length; i++) {
    const c = cp.charCodeAt(i);
    if ((c === 0x3b || c === 0x2c) && ++pairs > maxPairs) {
      return hj212Refusal('HJ212_TOO_MANY_ITEMS', `more than ${maxPairs} pairs in CP`, { field: 'CP' });
    }
  }
  // HJ 212-2017 §6.3.2: items are separated by `;`, the values of one item by `,`.
  for (const item of cp.split(';')) {
    if (item === '') continue; // a trailing `;` before `&&` is common and harmless
    for (const pair of item.split(',')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) return hj212Refusal('HJ212_BAD_FIELD', `CP piece ${JSON.stringify(pair.slice(0, 40))} is not key=value`, { field: 'CP' });
      const key = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      // No value of the standard holds `=`: one inside means separators were damaged (`a=1002-Rtd=45.0`).
      if (CONTROL_RE.test(value) || value.includes('=')) {
        return hj212Refusal('HJ212_BAD_FIELD', `the value of ${key.slice(0, 40)} has control characters or =`, { field: 'CP' });
      }
      const dash = key.indexOf('-');
      if (dash === -1) {
        if (!PARAM_RE.test(key)) return hj212Refusal('HJ212_BAD_FIELD', `CP key ${JSON.stringify(key.slice(0, 40))} is not a parameter name`, { field: 'CP' });
        if (Object.hasOwn(frame.params, key)) return hj212Refusal('HJ212_BAD_FIELD', `CP key ${key} appears twice`, { field: 'CP' });
        frame.params[key] = value;
        continue;
      }
      const code = key.slice(0, dash);
      const suffix = key.slice(dash + 1);
      if (!CODE_RE.test(code) || !SUFFIX_RE.test(suffix)) {
        return hj212Refusal('HJ212_BAD_FIELD', `CP key ${JSON.stringify(key.slice(0, 40))} is not code-Suffix (e.g. a34004-Rtd)`, { field: 'CP' });
      }
      const entry = Object.hasOwn(frame.items, code) ? frame.items[code]! : (frame.items[code] = {});
      if (Object.hasOwn(entry, suffix)) return hj212Refusal('HJ212_BAD_FIELD', `CP key ${key} appears twice`, { field: 'CP' });
      entry[suffix] = value;
    }
  }
  return undefined;
}

const CHINA_OFFSET_MS = 8 * 3600_000;

/**
 * `YYYYMMDDhhmmss` in China time (UTC+8, no daylight saving; HJ 212-2017 §6.3.2 DataTime) → epoch ms,
 * or undefined when it is not a real instant (month 13, 30 February, hour 24, ...).
 */
export function chinaTimeToMs(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return undefined;
  const utc = Date.UTC(y, mo - 1, d, h, mi, s);
  if (new Date(utc).getUTCDate() !== d) return undefined; // day past the month's end rolled over
  return utc - CHINA_OFFSET_MS;
}

function ascii(bytes: Uint8Array, from: number, to: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1', from, Math.min(to, bytes.length));
}
