// Hand-written PUBLISH path for the one packet that matters: a device's QoS 0/1 PUBLISH to its own
// telemetry or events topic. aedes' per-packet machinery (mqtt-packet's parser and buffer list, Packet
// objects, handler series, a setImmediate per PUBACK) was ~40% of the edge's CPU per reading; here a
// PUBLISH costs a header parse, a topic compare and one promise.
//
// Guarantees kept from the aedes path (server.ts): a QoS 1 PUBACK leaves only after onMessage resolved,
// never when it rejects (the connection is closed as aedes does, through the client's 'error'); keepalive
// is refreshed as aedes' handlers do. Anything else — other packets, other topics, QoS 2, retain, DUP,
// connections aedes has not finished accepting — goes to aedes byte for byte and in order: the fast path
// takes packets only while aedes has nothing pending on the connection, and once one packet of a chunk
// goes to aedes the rest of the chunk goes too.
import type { Socket } from 'node:net';
import type { Device } from '../../registry/registry.ts';
import type { TopicKind } from './auth.ts';

/** The device a connection logged in as, with its two topics as bytes. */
export interface FastSession {
  device: Device;
  telemetry: Buffer;
  events: Buffer;
}

/** What the fast path reads of aedes' Client (aedes 1.2, lib/client.js and lib/handlers/connect.js). */
interface AedesClient {
  closed: boolean;
  connected: boolean;
  connackSent: boolean;
  version: number | null;
  _keepaliveInterval: number;
  _keepaliveTimer: NodeJS.Timeout | null;
  emit(event: 'error', err: Error): boolean;
}

/** Resolves with a refusal (`{ refused }`) when nothing of the message was kept. */
export type FastMessageHandler = (device: Device, kind: TopicKind, payload: Buffer, receivedAt: number) => Promise<{ refused: string } | undefined | void>;

const PUBLISH_QOS0 = 0x30;
const PUBLISH_QOS1 = 0x32;

interface Entry {
  /** Packet identifier to acknowledge, -1 for QoS 0. */
  id: number;
  settled: boolean;
}

/** One connection's fast path; guardSocket hands it every chunk after the size check. */
export class FastPath {
  private session: FastSession | null | undefined; // undefined: not looked up yet; null: not eligible
  private held: Buffer | null = null; // a partial PUBLISH kept back until the rest arrives
  private aedesMidPacket = false; // aedes has been given part of a packet: the rest is its too
  private readonly q: Entry[] = []; // messages in arrival order, acknowledged in that order
  private head = 0;
  private dead = false;
  private flushScheduled = false;
  private paused = false;
  private drainWait = false;

  constructor(
    private readonly socket: Socket,
    private readonly window: number,
    private readonly sessionOf: (client: unknown) => FastSession | undefined,
    private readonly onMessage: FastMessageHandler,
    /** mqtt.v3RefusalPolicy `disconnect`: a refused message closes the connection instead of a PUBACK. */
    private readonly disconnectOnRefusal = false,
  ) {}

  /**
   * Takes what it can of the chunk and pushes the rest to the socket's buffer (for aedes) with `push`.
   * `endsAtBoundary`: the stream up to the end of this chunk ends on a packet boundary. Returns false
   * when reading should stop (the window is full, or aedes' buffer is).
   */
  onChunk(chunk: Buffer, endsAtBoundary: boolean, push: (b: Buffer) => boolean): boolean {
    let buf = chunk;
    if (this.held !== null) {
      buf = Buffer.concat([this.held, chunk]);
      this.held = null;
    }
    if (this.aedesMidPacket || this.socket.readableLength > 0 || !this.eligible()) {
      this.aedesMidPacket = !endsAtBoundary;
      return push(buf);
    }
    const session = this.session!;
    const len = buf.length;
    let off = 0;
    let took = false;
    let now = 0;
    while (off < len) {
      const b0 = buf[off]!;
      if (b0 !== PUBLISH_QOS0 && b0 !== PUBLISH_QOS1) break;
      // Remaining Length [MQTT-2.2.3], at most 4 bytes.
      let i = off + 1;
      let rem = 0;
      let mul = 1;
      let b = 0x80;
      while (i < len && i <= off + 4) {
        b = buf[i++]!;
        rem += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) break;
      }
      if (b & 0x80) {
        if (i - off > 4) break; // malformed: aedes answers it
        this.held = buf.subarray(off); // header split across reads
        off = len;
        break;
      }
      const end = i + rem;
      if (end > len) {
        this.held = buf.subarray(off); // body still arriving (the size guard bounds it)
        off = len;
        break;
      }
      if (rem < 2) break;
      const tlen = (buf[i]! << 8) | buf[i + 1]!;
      const t0 = i + 2;
      const t1 = t0 + tlen;
      const qos1 = b0 === PUBLISH_QOS1;
      const p0 = qos1 ? t1 + 2 : t1;
      if (p0 > end) break;
      let kind: TopicKind;
      if (tlen === session.telemetry.length && session.telemetry.compare(buf, t0, t1) === 0) kind = 'telemetry';
      else if (tlen === session.events.length && session.events.compare(buf, t0, t1) === 0) kind = 'events';
      else break; // refusals (and their counters) stay aedes'
      let id = -1;
      if (qos1) {
        id = (buf[t1]! << 8) | buf[t1 + 1]!;
        if (id === 0) break; // [MQTT-2.3.1-1]: aedes' call
      }
      if (now === 0) now = Date.now();
      this.take(session, kind, id, buf.subarray(p0, end), now);
      took = true;
      off = end;
    }
    if (took) this.refreshKeepalive();
    let ok = true;
    if (off < len) {
      // From the first packet not taken, everything goes to aedes, in order.
      this.aedesMidPacket = !endsAtBoundary;
      ok = push(off === 0 ? buf : buf.subarray(off));
    }
    if (this.q.length - this.head > this.window || this.socket.writableNeedDrain) {
      // Stop reading until the window drains: push() answering false makes net.Socket call readStop()
      // (socket.pause() would not: aedes reads in paused mode already, and we buffer nothing).
      this.paused = true;
      if (this.socket.writableNeedDrain && !this.drainWait) {
        this.drainWait = true;
        this.socket.once('drain', () => {
          this.drainWait = false;
          this.resume();
        });
      }
      return false;
    }
    return ok;
  }

  private eligible(): boolean {
    if (this.dead) return false;
    const client = (this.socket as unknown as { client?: AedesClient }).client;
    if (!client || client.closed || !client.connackSent || !client.connected) return false;
    if (this.session === undefined) {
      // MQTT 3.1 and 3.1.1 only (MQTT 5 connections never reach aedes: v5-session.ts).
      this.session = client.version === 3 || client.version === 4 ? (this.sessionOf(client) ?? null) : null;
    }
    return this.session !== null;
  }

  private refreshKeepalive(): void {
    // What aedes' handle() does after every packet (lib/handlers/index.js).
    const client = (this.socket as unknown as { client: AedesClient }).client;
    if (client._keepaliveInterval > 0) client._keepaliveTimer?.refresh();
  }

  private take(session: FastSession, kind: TopicKind, id: number, payload: Buffer, receivedAt: number): void {
    const e: Entry = { id, settled: false };
    this.q.push(e);
    this.onMessage(session.device, kind, payload, receivedAt).then(
      (outcome) => {
        if (outcome && this.disconnectOnRefusal) return this.fail(new Error(`message refused: ${outcome.refused} (mqtt.v3RefusalPolicy: disconnect)`));
        e.settled = true;
        if (!this.flushScheduled) {
          this.flushScheduled = true;
          // After every resolution of this turn: one socket write for all of them.
          process.nextTick(() => this.flush());
        }
      },
      (err: unknown) => this.fail(err),
    );
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.dead) return;
    const q = this.q;
    let n = 0;
    let h = this.head;
    for (; h < q.length && q[h]!.settled; h++) if (q[h]!.id >= 0) n++;
    if (n > 0) {
      const client = (this.socket as unknown as { client: AedesClient }).client;
      if (client.connected && !client.closed && !this.socket.destroyed) {
        const out = Buffer.allocUnsafe(n * 4);
        let o = 0;
        for (let k = this.head; k < h; k++) {
          const id = q[k]!.id;
          if (id < 0) continue;
          out[o] = 0x40; // PUBACK [MQTT-3.4]
          out[o + 1] = 2;
          out[o + 2] = id >> 8;
          out[o + 3] = id & 0xff;
          o += 4;
        }
        this.socket.write(out);
      }
    }
    if (h === q.length) {
      q.length = 0;
      this.head = 0;
    } else {
      this.head = h;
    }
    this.resume();
  }

  private fail(err: unknown): void {
    if (this.dead) return;
    this.flush(); // what resolved before it is still acknowledged
    this.dead = true;
    // aedes' path: authorizePublish's error reaches client.emit('error') (nextBatch), which destroys the
    // socket and emits 'clientError'. Never a falsy error.
    const client = (this.socket as unknown as { client: AedesClient }).client;
    client.emit('error', err instanceof Error ? err : new Error(`message not taken: ${String(err)}`));
  }

  private resume(): void {
    if (!this.paused || this.q.length - this.head > this.window || this.socket.writableNeedDrain) return;
    this.paused = false;
    // net.Socket's _read() restarts a stopped handle; read(0) would not while the stream's own
    // `reading` flag is still set (it is cleared only by a push that reached the buffer).
    if (!this.socket.destroyed) (this.socket as unknown as { _read(n: number): void })._read(0);
  }
}
