// Splits one TCP connection's byte stream into HJ 212 frames. A station's frames follow each other on
// a long-lived connection, so one bad frame must cost only itself: after anything that does not fit,
// the splitter throws away bytes up to the next `##` and carries on. It holds at most one frame.
// Frames come out as text still to be checked with parseFrame (CRC, fields); only framing is judged here.
import { hj212Crc } from './crc.ts';
import { HJ212_ERRORS, type Hj212ErrorCode } from './errors.ts';
import { HJ212_HEADER_BYTES, HJ212_MAX_SEGMENT_BYTES, HJ212_TRAILER_BYTES } from './frame.ts';

export type Hj212StreamItem =
  | {
      /** The frame's text without its CRLF, for parseFrame. */
      frame: string;
      /** Bytes of the stream it took, CRLF included. */
      length: number;
    }
  | {
      /** The first bytes thrown away (at most 64), for a log line. */
      garbage: Buffer;
      /** How many bytes were thrown away in all. */
      length: number;
      code: Hj212ErrorCode;
      message: string;
    };

export interface Hj212SplitterOptions {
  /** Largest data segment accepted (bytes). Default 1024, HJ 212-2017 §6.3.1. */
  maxSegmentBytes?: number;
}

const HASH = 0x23;
const CR = 0x0d;
const LF = 0x0a;
const SAMPLE_BYTES = 64;
const DIGIT = (b: number | undefined) => b !== undefined && b >= 0x30 && b <= 0x39;
const utf8 = new TextDecoder('utf-8', { fatal: true });

interface Skip {
  code: Hj212ErrorCode;
  detail: string;
  length: number;
  sample: Buffer[];
  sampled: number;
  /** Bytes after which a skip still without `##` is reported (and a new one begins). */
  budget: number;
}

export class Hj212StreamSplitter {
  private buf: Buffer = Buffer.alloc(0);
  private skip: Skip | undefined;
  /** idle() delivered a frame without its CRLF: a CRLF that still comes belongs to it, not to garbage. */
  private lateCrlf = false;
  private readonly maxSegment: number;
  private readonly maxFrame: number;

  constructor(opts: Hj212SplitterOptions = {}) {
    const m = opts.maxSegmentBytes ?? HJ212_MAX_SEGMENT_BYTES;
    // The length field has 4 digits, so nothing over 9999 can be framed anyway.
    this.maxSegment = Number.isInteger(m) && m >= 0 ? Math.min(m, 9999) : HJ212_MAX_SEGMENT_BYTES;
    this.maxFrame = HJ212_HEADER_BYTES + this.maxSegment + HJ212_TRAILER_BYTES;
  }

  /** Bytes currently held while waiting for the rest of a frame (never more than one maximal frame). */
  get buffered(): number {
    return this.buf.length;
  }

  push(chunk: Uint8Array): Hj212StreamItem[] {
    const out: Hj212StreamItem[] = [];
    if (chunk.length > 0) this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    if (this.lateCrlf && this.buf.length > 0) {
      if (this.buf[0] === CR && this.buf.length === 1) return out; // the LF may follow
      this.lateCrlf = false;
      if (this.buf[0] === CR && this.buf[1] === LF) this.buf = this.buf.subarray(2);
    }
    for (;;) {
      if (this.skip) {
        if (!this.resync(out)) break;
        continue;
      }
      const b = this.buf;
      if (b.length === 0) break;
      // HJ 212-2017 §6.3.1: every packet starts with `##`.
      if (b[0] !== HASH || (b.length > 1 && b[1] !== HASH)) {
        this.startSkip('HJ212_BAD_HEADER', 'bytes that are not part of a frame (no ## where one should start)', 0);
        continue;
      }
      let digits = 0;
      while (digits < 4 && 2 + digits < b.length && DIGIT(b[2 + digits])) digits++;
      if (digits < 4 && 2 + digits < b.length) {
        this.startSkip('HJ212_BAD_HEADER', `a frame whose length field is not 4 digits (${JSON.stringify(b.toString('latin1', 0, 6))})`, 1);
        continue;
      }
      if (b.length < HJ212_HEADER_BYTES) break;
      const declared = Number(b.toString('latin1', 2, 6));
      if (declared > this.maxSegment) {
        // Budget the whole declared frame on top, so one oversized frame is one refusal, not two.
        this.startSkip('HJ212_TOO_LONG', `a frame declaring ${declared} bytes (maximum ${this.maxSegment})`, 1, this.maxFrame + HJ212_HEADER_BYTES + declared + HJ212_TRAILER_BYTES);
        continue;
      }
      const crcEnd = HJ212_HEADER_BYTES + declared + 4;
      // A segment is text and holds no CRLF, so a CRLF before the declared end shows at once that the
      // length is wrong; no need to wait for (and swallow) the frames that follow.
      const early = indexOfCrlf(b, HJ212_HEADER_BYTES, Math.min(b.length, crcEnd));
      if (early !== -1) {
        const actual = early - HJ212_HEADER_BYTES - 4;
        this.startSkip('HJ212_BAD_LENGTH', `a frame whose length field says ${declared} bytes but which ends after ${Math.max(actual, 0)}`, 1);
        continue;
      }
      if (b.length < crcEnd + 2) break;
      let end: number;
      if (b[crcEnd] === CR && b[crcEnd + 1] === LF) end = crcEnd + 2;
      else if (b[crcEnd] === HASH && b[crcEnd + 1] === HASH) end = crcEnd; // CRLF left out, next frame follows
      else {
        this.startSkip('HJ212_BAD_LENGTH', `a frame whose length field says ${declared} bytes but which does not end with CRC and CRLF there`, 1);
        continue;
      }
      // A frame cut short and directly followed by the next one can, by chance, reach a CRLF exactly where
      // its length says it ends, and would swallow its neighbour. A `##` inside plus a CRC that fails
      // gives that away: skip only up to the inner `##`.
      const inner = b.subarray(0, crcEnd).indexOf('##', 2, 'latin1');
      if (inner !== -1 && !crcMatches(b, declared)) {
        this.startSkip('HJ212_BAD_LENGTH', 'a frame cut short by the start of the next one', inner);
        continue;
      }
      let text: string;
      try {
        text = utf8.decode(b.subarray(0, crcEnd));
      } catch {
        this.startSkip('HJ212_BAD_ENCODING', 'a frame with bytes that are not UTF-8', end);
        continue;
      }
      this.buf = b.subarray(end);
      out.push({ frame: text, length: end });
    }
    if (this.buf.length > 0 && this.buf.byteOffset > 0 && this.buf.length < 4096) this.buf = Buffer.from(this.buf);
    return out;
  }

  /**
   * The station has gone quiet (hj212.crlfIdleMs): a held frame that is complete by its length and whose
   * CRC checks, but whose CRLF has not come, is delivered now. Some loggers leave the CRLF out; without
   * this their frame would wait for their next write, and they for an answer that never comes (so they
   * resend). Anything less certain (CRC wrong, bytes after the CRC) stays held: push() judges it.
   */
  idle(): Hj212StreamItem[] {
    const b = this.buf;
    if (this.skip || b.length < HJ212_HEADER_BYTES || b[0] !== HASH || b[1] !== HASH) return [];
    const lenText = b.toString('latin1', 2, 6);
    if (!/^\d{4}$/.test(lenText)) return [];
    const declared = Number(lenText);
    if (declared > this.maxSegment || b.length !== HJ212_HEADER_BYTES + declared + 4 || !crcMatches(b, declared)) return [];
    let text: string;
    try {
      text = utf8.decode(b);
    } catch {
      return [];
    }
    this.buf = Buffer.alloc(0);
    this.lateCrlf = true;
    return [{ frame: text, length: b.length }];
  }

  /** The connection closed: report what is left. A last frame that only lacks its CRLF still counts. */
  end(): Hj212StreamItem[] {
    const out: Hj212StreamItem[] = [];
    if (this.lateCrlf && this.buf.length === 1 && this.buf[0] === CR) this.buf = Buffer.alloc(0);
    const b = this.buf;
    if (!this.skip && b.length >= HJ212_HEADER_BYTES && b[0] === HASH && b[1] === HASH) {
      const declared = Number(b.toString('latin1', 2, 6));
      if (b.length === HJ212_HEADER_BYTES + declared + 4) {
        try {
          out.push({ frame: utf8.decode(b), length: b.length });
          this.buf = Buffer.alloc(0);
          return out;
        } catch {
          // falls through to a truncation report
        }
      }
    }
    if (b.length > 0 && !this.skip) this.startSkip('HJ212_TRUNCATED', 'the connection closed in the middle of a frame', b.length);
    else if (this.skip) this.take(b.length);
    this.buf = Buffer.alloc(0);
    this.flushSkip(out);
    return out;
  }

  /** Throws away `consume` bytes now and everything after them up to the next `##`. */
  private startSkip(code: Hj212ErrorCode, detail: string, consume: number, budget = this.maxFrame): void {
    this.skip = { code, detail, length: 0, sample: [], sampled: 0, budget };
    this.take(consume);
  }

  private take(n: number): void {
    const s = this.skip!;
    const dropped = this.buf.subarray(0, n);
    if (s.sampled < SAMPLE_BYTES && dropped.length > 0) {
      const piece = Buffer.from(dropped.subarray(0, SAMPLE_BYTES - s.sampled));
      s.sample.push(piece);
      s.sampled += piece.length;
    }
    s.length += dropped.length;
    this.buf = this.buf.subarray(n);
  }

  /** True when a `##` was found and framing can start again; false when more bytes are needed. */
  private resync(out: Hj212StreamItem[]): boolean {
    let at = this.buf.indexOf('##', 0, 'latin1');
    if (at !== -1) {
      // In a run like `###0101`, only the last two `#` start the frame.
      while (this.buf[at + 2] === HASH) at++;
      this.take(at);
      this.flushSkip(out);
      return true;
    }
    // Keep a trailing `#`: it may be the first half of the next `##`.
    const keep = this.buf.length > 0 && this.buf[this.buf.length - 1] === HASH ? 1 : 0;
    this.take(this.buf.length - keep);
    // A flood with no `##` in it is still reported, once per frame's worth, so it shows in the counts.
    if (this.skip!.length >= this.skip!.budget) {
      const { code, detail } = this.skip!;
      this.flushSkip(out);
      this.skip = { code, detail: `${detail} (continued)`, length: 0, sample: [], sampled: 0, budget: this.maxFrame };
    }
    return false;
  }

  private flushSkip(out: Hj212StreamItem[]): void {
    const s = this.skip;
    this.skip = undefined;
    if (!s || s.length === 0) return;
    out.push({
      garbage: Buffer.concat(s.sample),
      length: s.length,
      code: s.code,
      message: `${HJ212_ERRORS[s.code]}: ${s.length} bytes skipped: ${s.detail}`,
    });
  }
}

function crcMatches(b: Buffer, declared: number): boolean {
  const text = b.toString('latin1', HJ212_HEADER_BYTES + declared, HJ212_HEADER_BYTES + declared + 4);
  if (!/^[0-9A-Fa-f]{4}$/.test(text)) return false;
  return hj212Crc(b.subarray(HJ212_HEADER_BYTES, HJ212_HEADER_BYTES + declared)) === parseInt(text, 16);
}

function indexOfCrlf(b: Buffer, from: number, to: number): number {
  for (let i = from; i + 1 < to + 1 && i + 1 < b.length; i++) {
    if (b[i] === CR && b[i + 1] === LF) return i;
  }
  return -1;
}
