// Record framing of the queue's log (docs/queue.md, "On-disk format"):
//
//   magic u32 LE "CSQ1" | length u32 LE | crc32 u32 LE (of the payload) | payload
//   payload = meta length u32 LE | meta (JSON, utf8) | body (bytes; a part's items as an encoded Batch)
//
// A reader trusts a frame only when magic, length and checksum agree. After a bad frame it looks for the
// next magic that starts a valid frame (a corrupt record mid-segment costs that record only); when none
// follows, the rest is a torn tail (a crash mid-write).
import { crc32 } from 'node:zlib';

export const MAGIC = 0x31515343; // "CSQ1" little-endian
export const HEADER_BYTES = 12;
/** No record is this large; a length beyond it is corruption, not a reason to allocate. */
export const MAX_PAYLOAD = 256 * 1024 * 1024;

export type RecordMeta =
  /** Items of one chunk (a batch before it has a seq): readings and events appended by one accept(). */
  | { t: 'p'; c: number; k: 'telemetry' | 'alarm'; r: number; e: number; at: number; ts: number }
  /** A whole chunk copied forward by compaction: body = its part frames, concatenated. Supersedes its parts. */
  | { t: 'c'; c: number; k: 'telemetry' | 'alarm'; r: number; e: number; at: number; ts: number }
  /** Chunk c was handed out as batch q (cp: a copy made by compaction, not a new hand-out). */
  | { t: 's'; q: number; c: number; at: number; k: 'telemetry' | 'alarm'; dr: DropLine[]; cp?: 1 }
  /** Batch q acked. */
  | { t: 'a'; q: number }
  /** Batch q refused for good and dead-lettered. */
  | { t: 'r'; q: number; why: string }
  /** Chunk c dropped (quota); dr: per-device counts, added to the pending drop report. */
  | { t: 'd'; c: number; why: string; dr: DropLine[] }
  /** Checkpoint: last seq and chunk, every device's last deviceSeq, the pending drop report. */
  | { t: 'S'; q: number; c: number; dev: Record<string, number>; pend: DropLine[] };

/** A DropReport as stored: [deviceId, class, reason, count, oldestTsMs]. */
export type DropLine = [string, 'telemetry' | 'alarm', string, number, number];

export function encodeFrame(meta: RecordMeta, body?: Uint8Array): Buffer {
  const m = Buffer.from(JSON.stringify(meta), 'utf8');
  const bodyLen = body ? body.length : 0;
  const payloadLen = 4 + m.length + bodyLen;
  const buf = Buffer.allocUnsafe(HEADER_BYTES + payloadLen);
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt32LE(payloadLen, 4);
  buf.writeUInt32LE(m.length, HEADER_BYTES);
  m.copy(buf, HEADER_BYTES + 4);
  if (body) buf.set(body, HEADER_BYTES + 4 + m.length);
  buf.writeUInt32LE(crc32(buf.subarray(HEADER_BYTES)), 8);
  return buf;
}

export interface Frame {
  meta: RecordMeta;
  body: Buffer;
  /** Offsets within the scanned buffer, plus the buffer's base offset. */
  off: number;
  end: number;
}

/** The frame starting at `pos`, or undefined when the bytes there are not one. */
function frameAt(buf: Buffer, pos: number): { meta: RecordMeta; body: Buffer; end: number } | undefined {
  if (buf.length - pos < HEADER_BYTES) return undefined;
  if (buf.readUInt32LE(pos) !== MAGIC) return undefined;
  const len = buf.readUInt32LE(pos + 4);
  if (len < 4 || len > MAX_PAYLOAD || pos + HEADER_BYTES + len > buf.length) return undefined;
  const payload = buf.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + len);
  if (crc32(payload) !== buf.readUInt32LE(pos + 8)) return undefined;
  const metaLen = payload.readUInt32LE(0);
  if (metaLen > len - 4) return undefined;
  let meta: RecordMeta;
  try {
    meta = JSON.parse(payload.toString('utf8', 4, 4 + metaLen)) as RecordMeta;
  } catch {
    return undefined;
  }
  if (typeof meta !== 'object' || meta === null || typeof (meta as { t?: unknown }).t !== 'string') return undefined;
  return { meta, body: payload.subarray(4 + metaLen), end: pos + HEADER_BYTES + len };
}

export interface ScanResult {
  frames: Frame[];
  /** End of the last valid frame (relative to the buffer, plus base). */
  validEnd: number;
  /** Bad regions skipped between valid frames. */
  corrupt: { off: number; bytes: number }[];
  /** Bytes after the last valid frame that are not a frame (a torn or garbage tail), 0 if none. */
  tornTailBytes: number;
}

/** Splits a buffer of frames; never throws on bad bytes. Offsets reported are `base + index`. */
export function scanFrames(buf: Buffer, base = 0): ScanResult {
  const frames: Frame[] = [];
  const corrupt: { off: number; bytes: number }[] = [];
  let pos = 0;
  let validEnd = 0;
  while (pos < buf.length) {
    const f = frameAt(buf, pos);
    if (f) {
      frames.push({ meta: f.meta, body: f.body, off: base + pos, end: base + f.end });
      pos = f.end;
      validEnd = pos;
      continue;
    }
    // Resynchronise: the next magic that starts a valid frame.
    let next = -1;
    for (let i = buf.indexOf(MAGIC_BYTES, pos + 1); i >= 0; i = buf.indexOf(MAGIC_BYTES, i + 1)) {
      if (frameAt(buf, i)) {
        next = i;
        break;
      }
    }
    if (next < 0) break;
    corrupt.push({ off: base + pos, bytes: next - pos });
    pos = next;
  }
  return { frames, validEnd: base + validEnd, corrupt, tornTailBytes: buf.length - validEnd };
}

const MAGIC_BYTES = (() => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(MAGIC, 0);
  return b;
})();
