// Enforces mqtt.maxPacketBytes before a packet is buffered: aedes' parser (mqtt-packet) has no size
// limit and would hold a 256 MB PUBLISH in memory. The meter reads only the fixed header of each
// packet ([MQTT-2.2]: type byte + 1-4 byte Remaining Length) of every chunk the socket receives and
// cuts the connection as soon as a declared length is over the limit.
import type { Socket } from 'node:net';

/** Who takes each chunk after the size check (server.ts' protocol router, then the fast path or an MQTT 5 session). */
export interface ChunkSink {
  onChunk(chunk: Buffer, endsAtBoundary: boolean, push: (b: Buffer) => boolean): boolean;
}

/** Tracks MQTT packet boundaries across chunks; returns the first declared packet size over max, else 0. */
export class FrameMeter {
  private state: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private remaining = 0;

  constructor(private readonly max: number) {}

  /** Everything fed so far ends on a packet boundary. */
  get atBoundary(): boolean {
    return this.state === 'type';
  }

  feed(chunk: Buffer): number {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'type') {
        i++;
        this.state = 'length';
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else if (this.state === 'length') {
        const b = chunk[i++]!;
        this.length += (b & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes++;
        if ((b & 0x80) === 0 || this.lengthBytes === 4) {
          const total = 1 + this.lengthBytes + this.length;
          if (total > this.max) return total;
          this.remaining = this.length;
          this.state = this.remaining === 0 ? 'type' : 'body';
        }
      } else {
        const take = Math.min(this.remaining, chunk.length - i);
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'type';
      }
    }
    return 0;
  }
}

/**
 * Meters every chunk the socket receives, before the socket buffers it for aedes, and destroys the
 * socket at the first packet declared over the limit. The socket itself is what aedes gets: no stream
 * layer in between, so mqtt-packet's cork/uncork around each packet reaches net.Socket's writev and
 * all PUBACKs written in one tick leave in one syscall.
 */
export function guardSocket<S extends Socket>(
  socket: S,
  maxPacketBytes: number,
  /** Returns true when it closes the connection itself (an MQTT 5 DISCONNECT first); else the socket is destroyed. */
  onTooLarge: (declaredBytes: number) => boolean | void,
  fast?: ChunkSink,
): S {
  let cut = false;
  const meter = new FrameMeter(maxPacketBytes);
  const push = socket.push;
  const pushOn = (b: Buffer) => push.call(socket, b) as boolean;
  // net.Socket hands each read to push() (the stream's public producer side); overriding it on this one
  // instance sees every chunk before it is buffered. auth.test.ts ('limits') fails if that stops holding.
  socket.push = function guardedPush(this: S, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (cut) return false;
    if (chunk !== null && !this.destroyed) {
      const tooLarge = meter.feed(chunk as Buffer);
      if (tooLarge > 0) {
        cut = true;
        if (onTooLarge(tooLarge) !== true) this.destroy();
        return false;
      }
      // After the size check, so a packet the fast path holds back is never over the limit.
      if (fast) return fast.onChunk(chunk as Buffer, meter.atBoundary, pushOn);
    }
    return push.call(this, chunk, encoding);
  };
  return socket;
}
