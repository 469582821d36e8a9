// Edge → cloud through a TCP proxy of the benchmark: it counts the bytes on the wire in each direction
// (the uplink's real size, HTTP headers included), keeps a few request bodies (the gzip'd protobuf
// batches, to compare with line protocol of the very same readings), and can be cut (an outage: open
// connections reset, new ones refused) and restored.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class CountingLink {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  cut = false;
  bytesUp = 0;
  bytesDown = 0;
  requests = 0;
  /** Request bodies kept while `sampleBodies` > 0 (each taken body decrements it). */
  sampleBodies = 0;
  readonly bodies: Buffer[] = [];

  constructor(
    readonly port: number,
    private readonly targetPort: number,
  ) {}

  async open(): Promise<void> {
    this.server = createServer((client) => {
      if (this.cut) return client.destroy();
      const upstream = createConnection({ host: '127.0.0.1', port: this.targetPort });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      const splitter = new RequestSplitter((body) => {
        this.requests++;
        if (this.sampleBodies > 0 && body) {
          this.sampleBodies--;
          this.bodies.push(body);
        }
      });
      client.on('data', (b: Buffer) => {
        this.bytesUp += b.length;
        splitter.push(b);
        if (!upstream.write(b)) client.pause();
      });
      upstream.on('drain', () => client.resume());
      upstream.on('data', (b: Buffer) => {
        this.bytesDown += b.length;
        if (!client.write(b)) upstream.pause();
      });
      client.on('drain', () => upstream.resume());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }

  setCut(cut: boolean): void {
    if (cut) for (const s of this.sockets) s.destroy();
    this.cut = cut;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** Splits HTTP/1.1 requests with Content-Length bodies; calls back with each body (undefined if chunked). */
class RequestSplitter {
  private buf: Buffer = Buffer.alloc(0);
  private need = -1;
  private broken = false;
  constructor(private readonly onRequest: (body: Buffer | undefined) => void) {}
  push(b: Buffer): void {
    if (this.broken) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, b]) : b;
    for (;;) {
      if (this.need < 0) {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (this.buf.length > 65536) this.broken = true;
          return;
        }
        const head = this.buf.subarray(0, end).toString('latin1');
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (!m) {
          this.broken = true; // chunked or no body: stop sampling this connection
          this.onRequest(undefined);
          return;
        }
        this.need = Number(m[1]);
        this.buf = this.buf.subarray(end + 4);
      }
      if (this.buf.length < this.need) return;
      this.onRequest(Buffer.from(this.buf.subarray(0, this.need)));
      this.buf = this.buf.subarray(this.need);
      this.need = -1;
    }
  }
}
