// A user-information transmission device's link to the monitoring centre over TCP, as GB/T 26875.3-2011
// §6.3–6.5 describe it (send/confirm): each frame is sent and its confirm (command 3, same serial number)
// awaited; without one within the timeout, or on a deny (command 6), the frame is sent again, at most
// `retries` times, then the send fails. Frames go one at a time, in order. A dropped connection is
// re-made before the next send. Written apart from the edge's decoder: the answer is read here by its
// own few lines (start, length, checksum, end).
import { connect, type Socket } from 'node:net';

export interface GbTcpLinkOptions {
  host: string;
  port: number;
  /** Waiting this long for a confirm before resending (the standard: at most 10 s). Default 10 000. */
  answerTimeoutMs?: number;
  /** Resends after the first try (the standard: 3). Default 3. */
  retries?: number;
  connectTimeoutMs?: number;
}

export interface GbTcpLinkStats {
  sent: number;
  confirmed: number;
  denied: number;
  resent: number;
  failed: number;
  reconnects: number;
}

interface Waiter {
  serial: number;
  settle(command: number): void;
}

export class GbTcpLink {
  readonly stats: GbTcpLinkStats = { sent: 0, confirmed: 0, denied: 0, resent: 0, failed: 0, reconnects: 0 };
  private sock: Socket | undefined;
  private buf = Buffer.alloc(0);
  private waiter: Waiter | undefined;
  private closed = false;

  constructor(private readonly o: GbTcpLinkOptions) {}

  async open(): Promise<void> {
    if (this.sock && !this.sock.destroyed) return;
    const sock = connect({ host: this.o.host, port: this.o.port });
    sock.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`GB/T 26875.3 link: no connection to ${this.o.host}:${this.o.port} within ${this.o.connectTimeoutMs ?? 10_000} ms`));
      }, this.o.connectTimeoutMs ?? 10_000);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      sock.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (this.sock === sock) this.sock = undefined;
    });
    sock.on('data', (c: Buffer) => this.read(c));
    this.buf = Buffer.alloc(0);
    this.sock = sock;
  }

  /** Sends one frame and resolves on its confirm; resends on timeout or deny; rejects after the retries. */
  async send(frame: Uint8Array): Promise<void> {
    const serial = frame[2]! | (frame[3]! << 8);
    const tries = 1 + (this.o.retries ?? 3);
    let last = 'no answer';
    for (let i = 0; i < tries; i++) {
      if (this.closed) throw new Error('GB/T 26875.3 link closed');
      if (i > 0) this.stats.resent++;
      try {
        if (!this.sock || this.sock.destroyed) {
          if (this.stats.sent > 0) this.stats.reconnects++;
          await this.open();
        }
      } catch (err) {
        last = (err as Error).message;
        continue;
      }
      this.stats.sent++;
      const answer = await new Promise<number | undefined>((resolve) => {
        const timer = setTimeout(() => settle(undefined), this.o.answerTimeoutMs ?? 10_000);
        const settle = (command: number | undefined) => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve(command);
        };
        this.waiter = { serial, settle };
        this.sock!.write(frame);
      });
      if (answer === 3) {
        this.stats.confirmed++;
        return;
      }
      if (answer === 6) {
        this.stats.denied++;
        last = 'denied';
      } else last = 'no answer';
    }
    this.stats.failed++;
    throw new Error(`GB/T 26875.3 frame serial ${serial}: ${last} after ${tries} tries`);
  }

  close(): void {
    this.closed = true;
    this.waiter?.settle(0);
    this.sock?.end();
    this.sock?.destroy();
  }

  /** Answers from the centre: '@@' … n … checksum '##'; a confirm or deny for the frame being sent settles it. */
  private read(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const at = this.buf.indexOf('@@', 0, 'latin1');
      if (at < 0) {
        this.buf = this.buf.subarray(Math.max(0, this.buf.length - 1));
        return;
      }
      this.buf = this.buf.subarray(at);
      if (this.buf.length < 27) return;
      const n = this.buf[24]! | (this.buf[25]! << 8);
      if (n > 1024) {
        this.buf = this.buf.subarray(2);
        continue;
      }
      if (this.buf.length < n + 30) return;
      let sum = 0;
      for (let i = 2; i < 27 + n; i++) sum += this.buf[i]!;
      const ok = sum % 256 === this.buf[27 + n] && this.buf[28 + n] === 0x23 && this.buf[29 + n] === 0x23;
      if (!ok) {
        this.buf = this.buf.subarray(2);
        continue;
      }
      const serial = this.buf[2]! | (this.buf[3]! << 8);
      const command = this.buf[26]!;
      this.buf = this.buf.subarray(n + 30);
      if (this.waiter && this.waiter.serial === serial && (command === 3 || command === 6)) this.waiter.settle(command);
    }
  }
}
