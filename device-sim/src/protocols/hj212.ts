// HJ 212-2017 frames as a station sends them: real-time (CN 2011), minute (2051) and hour (2061) data,
// and the little of the answers (9011/9014) a station has to read. Written here rather than taken from
// the edge's decoder so that a bug in one is caught by the other (the tests cross-check both ways).
// Layout, CRC and field meanings: ../../../shared/protocols.md and edge/docs/protocols/hj212.md.

/** HJ 212-2017 system codes (ST). */
export const ST_AIR = '22';
export const ST_NOISE = '23';
export const ST_SYSTEM = '91';

/** HJ 212-2017 Flag: version bits 000001 (2017) + A (answer wanted) → 5; without A → 4. */
export const FLAG_2017_ANSWER = 5;
export const FLAG_2017_NO_ANSWER = 4;

/** HJ 212-2017 data commands this simulator sends. */
export const CN_REALTIME = '2011';
export const CN_MINUTE = '2051';
export const CN_HOUR = '2061';
export const CN_DATA_ANSWER = '9014';
export const CN_REQUEST_ANSWER = '9011';

/** HJ 212-2017 data flags: N normal, F stopped, M maintenance, S manual, D fault, C calibration, T over range, B comms. */
export type DataFlag = 'N' | 'F' | 'M' | 'S' | 'D' | 'C' | 'T' | 'B';

const CHINA_OFFSET_MS = 8 * 3_600_000;

/**
 * Appendix A of HJ 212-2017 (not CRC-16/MODBUS): the register is shifted right by 8 before each byte is
 * folded in, so only its high byte carries over. Computed over the data segment only.
 */
export function crc212(segment: Uint8Array): number {
  let reg = 0xffff;
  for (const b of segment) {
    reg = (reg >> 8) ^ b;
    for (let i = 0; i < 8; i++) {
      const lsb = reg & 1;
      reg >>= 1;
      if (lsb) reg ^= 0xa001;
    }
  }
  return reg;
}

export function crc212Hex(segment: string): string {
  return crc212(Buffer.from(segment, 'utf8')).toString(16).toUpperCase().padStart(4, '0');
}

/**
 * `##` + 4-digit byte length of the UTF-8 segment + segment + CRC + CRLF (HJ 212-2017 §6.3.1).
 * `badCrc` replaces the CRC with a different, wrong one: what a corrupted line delivers.
 */
export function frameText(segment: string, opts: { badCrc?: boolean } = {}): string {
  const len = Buffer.byteLength(segment, 'utf8');
  if (len > 9999) throw new RangeError(`an HJ 212 data segment cannot exceed 9999 bytes (got ${len})`);
  let crc = crc212Hex(segment);
  if (opts.badCrc) crc = ((parseInt(crc, 16) ^ 0x5a5a) & 0xffff).toString(16).toUpperCase().padStart(4, '0');
  return `##${String(len).padStart(4, '0')}${segment}${crc}\r\n`;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** China time (UTC+8, HJ 212-2017 §6.3.2) `YYYYMMDDhhmmss` of an epoch-ms instant. */
export function chinaTime(ms: number): string {
  const d = new Date(ms + CHINA_OFFSET_MS);
  return (
    pad(d.getUTCFullYear(), 4) + pad(d.getUTCMonth() + 1, 2) + pad(d.getUTCDate(), 2) +
    pad(d.getUTCHours(), 2) + pad(d.getUTCMinutes(), 2) + pad(d.getUTCSeconds(), 2)
  );
}

/** QN `YYYYMMDDhhmmsszzz` (China time, milliseconds included): the request id an answer repeats. */
export function qnOf(ms: number): string {
  return chinaTime(ms) + pad(((ms % 1000) + 1000) % 1000, 3);
}

/** One parameter's values in a data frame: `Rtd` for real-time, `Min`/`Avg`/`Max` for interval data. */
export interface ParamValues {
  rtd?: number;
  min?: number;
  avg?: number;
  max?: number;
  flag?: DataFlag;
  /** Raw text to send instead of the numbers (faults: `NaN`, `--`, an empty value). */
  text?: string;
}

/** Decimal places each parameter is reported with (HJ 212 practice; gases in mg/m³ need three). */
export const PARAM_DECIMALS: Readonly<Record<string, number>> = {
  a34004: 1,
  a34002: 1,
  a34001: 1,
  a21026: 3,
  a21004: 3,
  a05024: 3,
  a21005: 3,
  a01001: 1,
  a01002: 1,
  a01006: 3,
  a01007: 1,
  a01008: 0,
  LA: 1,
};

export function formatValue(code: string, value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return value.toFixed(PARAM_DECIMALS[code] ?? 2);
}

export interface DataFrameInput {
  cn: typeof CN_REALTIME | typeof CN_MINUTE | typeof CN_HOUR;
  /** QN time (when the frame is sent), epoch ms. */
  sentMs: number;
  /** DataTime: the sampling instant (2011) or the interval's start (2051/2061), epoch ms. */
  dataTimeMs: number;
  mn: string;
  password: string;
  st?: string;
  /** Ask for a 9014 answer (Flag=5); default true. */
  ackWanted?: boolean;
  params: Readonly<Record<string, ParamValues>>;
  /** Send a wrong CRC (fault injection). */
  badCrc?: boolean;
}

export interface BuiltFrame {
  qn: string;
  cn: string;
  text: string;
  ackWanted: boolean;
}

/** The CP of a data frame: `DataTime=...;code-Rtd=v,code-Flag=N;...` (HJ 212-2017 §6.3.2). */
export function dataCp(input: Pick<DataFrameInput, 'cn' | 'dataTimeMs' | 'params'>): string {
  const items = [`DataTime=${chinaTime(input.dataTimeMs)}`];
  for (const [code, v] of Object.entries(input.params)) {
    const parts: string[] = [];
    const put = (suffix: string, value: number | undefined): void => {
      if (value === undefined) return;
      parts.push(`${code}-${suffix}=${v.text ?? formatValue(code, value)}`);
    };
    if (input.cn === CN_REALTIME) put('Rtd', v.rtd);
    else {
      put('Min', v.min);
      put('Avg', v.avg);
      put('Max', v.max);
    }
    if (parts.length === 0) continue;
    parts.push(`${code}-Flag=${v.flag ?? 'N'}`);
    items.push(parts.join(','));
  }
  return items.join(';');
}

export function buildDataFrame(input: DataFrameInput): BuiltFrame {
  const qn = qnOf(input.sentMs);
  const ackWanted = input.ackWanted ?? true;
  const flag = ackWanted ? FLAG_2017_ANSWER : FLAG_2017_NO_ANSWER;
  const segment =
    `QN=${qn};ST=${input.st ?? ST_AIR};CN=${input.cn};PW=${input.password};MN=${input.mn};Flag=${flag};` +
    `CP=&&${dataCp(input)}&&`;
  return { qn, cn: input.cn, text: frameText(segment, { badCrc: input.badCrc ?? false }), ackWanted };
}

/** What a station needs from an answer: which request it answers, the command, and QnRtn for a 9011. */
export interface AnswerInfo {
  qn: string;
  cn: string;
  crcOk: boolean;
  qnRtn?: number;
}

/** Reads the header of one complete frame (`##` … CRLF optional). Undefined when it is not a frame at all. */
export function readAnswer(frame: string): AnswerInfo | undefined {
  const m = /^##(\d{4})/.exec(frame);
  if (!m) return undefined;
  const len = Number(m[1]);
  const bytes = Buffer.from(frame, 'utf8');
  if (bytes.length < 6 + len + 4) return undefined;
  const segment = bytes.subarray(6, 6 + len);
  const crcText = bytes.toString('latin1', 6 + len, 10 + len);
  const seg = segment.toString('utf8');
  const field = (key: string): string | undefined => new RegExp(`(?:^|;)${key}=([^;&]*)`).exec(seg)?.[1];
  const qn = field('QN');
  const cn = field('CN');
  if (qn === undefined || cn === undefined) return undefined;
  const info: AnswerInfo = { qn, cn, crcOk: /^[0-9A-Fa-f]{4}$/.test(crcText) && parseInt(crcText, 16) === crc212(segment) };
  const rtn = /QnRtn=(\d+)/.exec(seg)?.[1];
  if (rtn !== undefined) info.qnRtn = Number(rtn);
  return info;
}

/**
 * Cuts complete frames out of a TCP byte stream (answers can arrive split or several in one chunk).
 * Anything before `##` is dropped; a frame is complete once its declared length, CRC and CRLF are in.
 */
export class FrameSplitter {
  private buf = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: string[] = [];
    for (;;) {
      const start = this.buf.indexOf('##');
      if (start === -1) {
        // Keep a lone trailing '#', it may be the first half of the next start marker.
        this.buf = this.buf.subarray(this.buf.length > 0 && this.buf[this.buf.length - 1] === 0x23 ? this.buf.length - 1 : this.buf.length);
        return out;
      }
      if (start > 0) this.buf = this.buf.subarray(start);
      if (this.buf.length < 6) return out;
      const lenText = this.buf.toString('latin1', 2, 6);
      if (!/^\d{4}$/.test(lenText)) {
        this.buf = this.buf.subarray(2);
        continue;
      }
      const total = 6 + Number(lenText) + 4 + 2;
      if (this.buf.length < total) return out;
      out.push(this.buf.toString('utf8', 0, total));
      this.buf = this.buf.subarray(total);
    }
  }
}
