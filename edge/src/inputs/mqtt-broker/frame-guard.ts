// Enforces mqtt.maxPacketBytes before a packet is buffered: aedes' parser (mqtt-packet) has no size
// limit and would hold a 256 MB PUBLISH in memory. This stream sits between the socket and aedes,
// reads only the fixed header of each packet ([MQTT-2.2]: type byte + 1-4 byte Remaining Length) and
// cuts the connection as soon as a declared length is over the limit.
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/** Tracks MQTT packet boundaries across chunks; returns the first declared packet size over max, else 0. */
export class FrameMeter {
  private state: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private remaining = 0;

  constructor(private readonly max: number) {}

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

/** The socket as aedes sees it, with the size check on the way in. Backpressure is passed through. */
export class GuardedConnection extends Duplex {
  readonly remoteAddress: string | undefined;
  private readonly meter: FrameMeter;

  constructor(
    private readonly socket: Socket,
    maxPacketBytes: number,
    onTooLarge: (declaredBytes: number) => void,
  ) {
    super({ allowHalfOpen: false });
    this.remoteAddress = socket.remoteAddress;
    this.meter = new FrameMeter(maxPacketBytes);
    socket.on('data', (chunk: Buffer) => {
      const tooLarge = this.meter.feed(chunk);
      if (tooLarge > 0) {
        onTooLarge(tooLarge);
        this.destroy();
        return;
      }
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
    socket.on('drain', () => this.emit('socketDrain'));
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.socket.write(chunk)) cb();
    else this.once('socketDrain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.socket.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy();
    cb(err);
  }
}
