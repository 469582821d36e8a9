// Cuts a byte stream (a TCP connection, a DTU's MQTT message) into GB/T 26875.3 frames. Frames arrive
// joined (two in one read), split (half now, half later), with line noise or a DTU's CRLF between them;
// the standard's own notes tell the receiver to handle joined packets (粘包). Every complete frame whose
// start '@@', length, checksum and end '##' check out is delivered; whatever is between is reported as
// garbage with a reason and thrown away, and the framer resynchronises on the next '@@'. Hand-written:
// the frame is delimited by its own length field and checksum, which no general-purpose framing library
// (length-prefix or delimiter based) checks together.
//
// Bounded: it holds at most one maximal frame (1024 + 30 bytes) plus the chunk being read. A '@@' inside
// noise that looks like a header with a large length would make it wait for bytes that never complete
// that "frame"; so while it waits it looks further on for a complete valid frame, and if one is there the
// false start is dropped as garbage at once (a fire alarm is never held behind noise).
import { GB26875_ERRORS, type Gb26875ErrorCode } from './errors.ts';
import { HEADER_BYTES, MAX_APP_DATA, OVERHEAD_BYTES, checksum } from './frame.ts';

const AT = 0x40;
const HASH = 0x23;
/** Bytes of a garbage run kept for the log line. */
const SAMPLE_BYTES = 64;

/** What a rejected candidate's header said, when its 27 header bytes were there: enough to answer with a deny. */
export interface Gb26875Header {
  serial: number;
  version: { major: number; minor: number };
  /** 12 hex digits, wire order. */
  source: string;
  destination: string;
  command: number;
  appDataLength: number;
}

export type Gb26875StreamItem =
  | { frame: Uint8Array }
  | {
      /** The first bytes thrown away (at most 64), for the log line. */
      garbage: Uint8Array;
      /** How many bytes were thrown away. */
      length: number;
      code: Gb26875ErrorCode;
      message: string;
      /** Set when a frame start with a readable header failed a check the standard answers with a deny (§6.5: checksum, length over the limit). */
      header?: Gb26875Header;
    };

export interface Gb26875FramerOptions {
  /** Largest application data unit accepted (GB/T 26875.3-2011: 1024). */
  maxAppData?: number;
}

type Check = { kind: 'frame'; length: number } | { kind: 'incomplete' } | { kind: 'bad'; code: Gb26875ErrorCode; detail: string; header?: Gb26875Header };

export class Gb26875StreamFramer {
  private buf: Buffer = Buffer.alloc(0);
  private readonly maxAppData: number;

  constructor(o: Gb26875FramerOptions = {}) {
    this.maxAppData = Math.min(o.maxAppData ?? MAX_APP_DATA, 0xffff);
  }

  /** Bytes held while waiting for the rest of a frame. */
  buffered(): number {
    return this.buf.length;
  }

  /** Feed bytes; returns the frames completed and the garbage thrown away, in stream order. */
  push(chunk: Uint8Array): Gb26875StreamItem[] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([this.buf, chunk]);
    const out: Gb26875StreamItem[] = [];
    this.scan(out, false);
    // Own the bytes kept (the chunk's memory may be reused by the caller).
    if (this.buf.length > 0 && this.buf.buffer === chunk.buffer) this.buf = Buffer.from(this.buf);
    return out;
  }

  /**
   * The stream ended (an MQTT message's last byte, a closed connection): complete frames still in the
   * buffer are delivered, a frame cut off is reported (GB26875_TRUNCATED), and the framer is empty.
   */
  end(): Gb26875StreamItem[] {
    const out: Gb26875StreamItem[] = [];
    this.scan(out, true);
    if (this.buf.length > 0) this.drop(out, this.buf.length, 'GB26875_TRUNCATED', `the stream ended ${this.buf.length} byte(s) into a frame`);
    return out;
  }

  private scan(out: Gb26875StreamItem[], ending: boolean): void {
    for (;;) {
      const b = this.buf;
      if (b.length === 0) return;
      const p = indexOfStart(b, 0);
      if (p < 0) {
        // Keep a trailing '@': it may be the first half of the next start.
        const keep = b[b.length - 1] === AT ? 1 : 0;
        if (b.length - keep > 0) this.drop(out, b.length - keep, 'GB26875_BAD_START', "bytes that are not part of a frame (no '@@')");
        if (ending && keep) this.drop(out, keep, 'GB26875_TRUNCATED', 'the stream ended after one start byte');
        return;
      }
      if (p > 0) {
        this.drop(out, p, 'GB26875_BAD_START', `${p} byte(s) before the next '@@'`);
        continue;
      }
      const c = this.check(0);
      if (c.kind === 'frame') {
        out.push({ frame: Uint8Array.from(b.subarray(0, c.length)) });
        this.buf = b.subarray(c.length);
        continue;
      }
      const next = indexOfStart(b, 1);
      if (c.kind === 'bad') {
        this.drop(out, next < 0 ? Math.max(1, b.length - (b[b.length - 1] === AT ? 1 : 0)) : next, c.code, c.detail, c.header);
        continue;
      }
      // Incomplete: a later complete frame shows this start was not one.
      let q = next;
      while (q >= 0 && this.check(q).kind !== 'frame') q = indexOfStart(b, q + 1);
      if (q >= 0) {
        this.drop(out, q, 'GB26875_TRUNCATED', `a frame start with ${describeWant(b)} was followed by a complete frame before its end`);
        continue;
      }
      if (!ending) return;
      // At the end of the stream nothing more will come: this start is not a frame, look past it.
      this.drop(out, next < 0 ? b.length : next, 'GB26875_TRUNCATED', `the stream ended with ${b.length} byte(s) of a frame that announced ${describeWant(b)}`);
    }
  }

  /** Check the candidate frame starting at `at` (which holds '@@'). */
  private check(at: number): Check {
    const b = this.buf;
    if (b.length - at < HEADER_BYTES) return { kind: 'incomplete' };
    const n = b[at + 24]! | (b[at + 25]! << 8);
    const header: Gb26875Header = {
      serial: b[at + 2]! | (b[at + 3]! << 8),
      version: { major: b[at + 4]!, minor: b[at + 5]! },
      source: b.toString('hex', at + 12, at + 18),
      destination: b.toString('hex', at + 18, at + 24),
      command: b[at + 26]!,
      appDataLength: n,
    };
    if (n > this.maxAppData) return { kind: 'bad', code: 'GB26875_BAD_LENGTH', detail: `the application data length is ${n}, at most ${this.maxAppData} is allowed`, header };
    const total = n + OVERHEAD_BYTES;
    if (b.length - at < total) return { kind: 'incomplete' };
    if (b[at + 28 + n] !== HASH || b[at + 29 + n] !== HASH) {
      // Not answered: the bytes may be noise that happened to hold '@@', not a device's frame.
      return { kind: 'bad', code: 'GB26875_BAD_END', detail: `no '##' where the length (${n}) says the frame ends` };
    }
    const want = checksum(b, at + 2, at + HEADER_BYTES + n);
    const got = b[at + HEADER_BYTES + n]!;
    if (want !== got) return { kind: 'bad', code: 'GB26875_BAD_CHECKSUM', detail: `serial ${header.serial}: the frame says 0x${hex2(got)}, its bytes sum to 0x${hex2(want)}`, header };
    return { kind: 'frame', length: total };
  }

  private drop(out: Gb26875StreamItem[], length: number, code: Gb26875ErrorCode, detail: string, header?: Gb26875Header): void {
    const item: Gb26875StreamItem = { garbage: Uint8Array.from(this.buf.subarray(0, Math.min(length, SAMPLE_BYTES))), length, code, message: `${GB26875_ERRORS[code]}: ${detail}` };
    if (header) item.header = header;
    out.push(item);
    this.buf = this.buf.subarray(length);
  }
}

function indexOfStart(b: Buffer, from: number): number {
  for (let i = b.indexOf(AT, from); i >= 0 && i + 1 < b.length; i = b.indexOf(AT, i + 1)) if (b[i + 1] === AT) return i;
  return -1;
}

function describeWant(b: Buffer): string {
  return b.length >= HEADER_BYTES ? `${b[24]! | (b[25]! << 8)} bytes of application data` : 'an incomplete header';
}

function hex2(x: number): string {
  return x.toString(16).padStart(2, '0');
}
