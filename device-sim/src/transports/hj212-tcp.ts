// An HJ 212-2017 station's data logger talking to the edge: over TCP to the edge's HJ 212 listener
// (default port 6212), or through a DTU that publishes each frame as an MQTT message (QoS 1) on
// devices/{id}/telemetry. Over TCP a frame that asks for an answer (Flag A bit) waits for the 9014 data
// answer with the same QN; none within the timeout means the frame is sent again, same QN, up to the
// retry count (HJ 212-2017 defaults: 10 s, 3 retries; CN 1000 sets them on a real logger).
import { connect as netConnect, type Socket } from 'node:net';
import type { MqttClient } from 'mqtt';
import { CN_DATA_ANSWER, CN_REQUEST_ANSWER, FrameSplitter, readAnswer, type BuiltFrame } from '../protocols/hj212.ts';
import { telemetryTopic, type ConnectOutcome, type MqttDevice, type Qos } from './mqtt.ts';

export const DEFAULT_HJ212_PORT = 6212;
export const DEFAULT_HJ212_HOST = '127.0.0.1';
/** HJ 212-2017 default answer timeout and retry count. */
export const DEFAULT_ANSWER_TIMEOUT_MS = 10_000;
export const DEFAULT_RETRIES = 3;

export interface Hj212Counts {
  /** Distinct frames written (first attempts). */
  sent: number;
  /** Frames answered with 9014. */
  answered: number;
  /** Re-sends after a timeout or a dropped connection. */
  retried: number;
  /** Frames given up after all retries. */
  failed: number;
  /** Frames the edge refused with a 9011 answer (QnRtn ≠ 1), e.g. 9 = bad CRC. Not retried. */
  refused: number;
  /** Frames sent without asking for an answer (Flag=4). */
  unanswered: number;
}

export class Hj212Refused extends Error {
  readonly qnRtn: number;
  constructor(qn: string, qnRtn: number) {
    super(`frame QN=${qn} refused by the edge: 9011 QnRtn=${qnRtn}`);
    this.qnRtn = qnRtn;
  }
}

/** What the runner needs of any station link, TCP or DTU. */
export interface Hj212Link {
  readonly id: string;
  readonly counts: Hj212Counts;
  readonly disconnects: number;
  readonly refusedLater: { code: number; reason: string } | undefined;
  connect(): Promise<ConnectOutcome>;
  /** Resolves when the frame is answered (9014) or, for a frame that wants no answer, written. */
  send(frame: BuiltFrame): Promise<void>;
  close(force?: boolean): Promise<void>;
}

function newCounts(): Hj212Counts {
  return { sent: 0, answered: 0, retried: 0, failed: 0, refused: 0, unanswered: 0 };
}

export interface Hj212TcpOptions {
  id: string;
  host?: string;
  port?: number;
  answerTimeoutMs?: number;
  retries?: number;
  /** Pause between connection attempts (first connect and after a drop). */
  reconnectDelayMs?: number;
  /** How long the first connection may take before the station counts as unreachable. */
  connectTimeoutMs?: number;
}

type Waiter = (outcome: { kind: 'answer' } | { kind: 'refused'; qnRtn: number } | { kind: 'dropped' }) => void;

interface Job {
  frame: BuiltFrame;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class Hj212TcpClient implements Hj212Link {
  readonly id: string;
  readonly counts: Hj212Counts = newCounts();
  disconnects = 0;
  refusedLater: { code: number; reason: string } | undefined = undefined;
  /** Frames from the edge that were not an answer to what we were waiting for (commands, stale answers). */
  ignored = 0;
  lastError: string | undefined;
  private readonly host: string;
  private readonly port: number;
  private readonly answerTimeoutMs: number;
  private readonly retries: number;
  private readonly reconnectDelayMs: number;
  private readonly connectTimeoutMs: number;
  private socket: Socket | undefined;
  private connecting: Promise<Socket | undefined> | undefined;
  private closing = false;
  private readonly queue: Job[] = [];
  private pumping = false;
  private waiting: { qn: string; done: Waiter } | undefined;
  private readonly wake = new Set<() => void>();

  constructor(options: Hj212TcpOptions) {
    this.id = options.id;
    this.host = options.host ?? DEFAULT_HJ212_HOST;
    this.port = options.port ?? DEFAULT_HJ212_PORT;
    this.answerTimeoutMs = options.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
    this.retries = options.retries ?? DEFAULT_RETRIES;
    this.reconnectDelayMs = options.reconnectDelayMs ?? 1000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  }

  get connected(): boolean {
    return this.socket !== undefined;
  }

  async connect(): Promise<ConnectOutcome> {
    const deadline = Date.now() + this.connectTimeoutMs;
    const sock = await this.ensureSocket(deadline);
    if (sock) return { ok: true };
    const reason = `${this.host}:${this.port}: ${this.lastError ?? 'no connection'} (gave up after ${this.connectTimeoutMs} ms)`;
    return { ok: false, kind: 'unreachable', reason };
  }

  send(frame: BuiltFrame): Promise<void> {
    if (this.closing) return Promise.reject(new Error(`${this.id}: the station link is closed`));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame, resolve, reject });
      void this.pump();
    });
  }

  /** Frames queued or in flight. */
  get backlog(): number {
    return this.queue.length + (this.pumping ? 1 : 0);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const w of this.wake) w();
    this.waiting?.done({ kind: 'dropped' });
    for (const job of this.queue.splice(0)) job.reject(new Error(`${this.id}: closed before the frame was sent`));
    const sock = this.socket;
    this.socket = undefined;
    if (sock && !sock.destroyed) {
      await new Promise<void>((resolve) => {
        sock.once('close', () => resolve());
        sock.destroy();
      });
    }
  }

  /** Stop-and-wait, as data loggers do: one frame in flight, the next goes when it is answered or given up. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.closing) {
        const job = this.queue[0]!;
        try {
          await this.deliver(job.frame);
          this.queue.shift();
          job.resolve();
        } catch (err) {
          this.queue.shift();
          job.reject(err as Error);
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private async deliver(frame: BuiltFrame): Promise<void> {
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (this.closing) throw new Error(`${this.id}: closed while sending QN=${frame.qn}`);
      const sock = await this.ensureSocket(Infinity);
      if (!sock) throw new Error(`${this.id}: closed while reconnecting`);
      if (attempt === 0) this.counts.sent += 1;
      else this.counts.retried += 1;
      if (!frame.ackWanted) {
        await new Promise<void>((resolve, reject) => sock.write(frame.text, 'utf8', (err) => (err ? reject(err) : resolve())));
        this.counts.unanswered += 1;
        return;
      }
      const outcome = await new Promise<Parameters<Waiter>[0] | { kind: 'timeout' }>((resolve) => {
        const timer = setTimeout(() => {
          this.waiting = undefined;
          resolve({ kind: 'timeout' });
        }, this.answerTimeoutMs);
        this.waiting = {
          qn: frame.qn,
          done: (o) => {
            clearTimeout(timer);
            this.waiting = undefined;
            resolve(o);
          },
        };
        sock.write(frame.text, 'utf8');
      });
      if (outcome.kind === 'answer') {
        this.counts.answered += 1;
        return;
      }
      if (outcome.kind === 'refused') {
        this.counts.refused += 1;
        throw new Hj212Refused(frame.qn, outcome.qnRtn);
      }
      // timeout or dropped: go round again with the same frame (same QN).
    }
    this.counts.failed += 1;
    throw new Error(`${this.id}: no 9014 answer to QN=${frame.qn} after ${this.retries + 1} attempt(s) (timeout ${this.answerTimeoutMs} ms)`);
  }

  private onFrame(text: string): void {
    const a = readAnswer(text);
    const w = this.waiting;
    if (!a || !a.crcOk || !w || a.qn !== w.qn) {
      this.ignored += 1;
      return;
    }
    if (a.cn === CN_DATA_ANSWER) w.done({ kind: 'answer' });
    else if (a.cn === CN_REQUEST_ANSWER && a.qnRtn !== undefined && a.qnRtn !== 1) w.done({ kind: 'refused', qnRtn: a.qnRtn });
    else this.ignored += 1;
  }

  /** The connected socket, connecting (and re-connecting after a pause) until `deadline` or close. */
  private ensureSocket(deadline: number): Promise<Socket | undefined> {
    if (this.socket) return Promise.resolve(this.socket);
    this.connecting ??= (async () => {
      try {
        for (;;) {
          if (this.closing) return undefined;
          const sock = await this.tryConnect();
          if (sock) return sock;
          if (Date.now() + this.reconnectDelayMs > deadline) return undefined;
          await new Promise<void>((resolve) => {
            const t = setTimeout(() => {
              this.wake.delete(resolve);
              resolve();
            }, this.reconnectDelayMs);
            this.wake.add(() => {
              clearTimeout(t);
              resolve();
            });
          });
        }
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  private tryConnect(): Promise<Socket | undefined> {
    return new Promise((resolve) => {
      const sock = netConnect({ host: this.host, port: this.port });
      sock.setNoDelay(true);
      const splitter = new FrameSplitter();
      let up = false;
      sock.once('connect', () => {
        up = true;
        this.socket = sock;
        resolve(sock);
      });
      sock.on('data', (chunk: Buffer) => {
        for (const f of splitter.push(chunk)) this.onFrame(f);
      });
      sock.on('error', (err: NodeJS.ErrnoException) => {
        this.lastError = `${err.code ? `${err.code}: ` : ''}${err.message}`;
      });
      sock.once('close', () => {
        if (!up) {
          resolve(undefined);
          return;
        }
        if (this.socket === sock) this.socket = undefined;
        if (!this.closing) this.disconnects += 1;
        this.waiting?.done({ kind: 'dropped' });
      });
    });
  }
}

/**
 * MqttDevice (transports/mqtt.ts) publishes only the JSON profile and keeps its mqtt.js client private;
 * a DTU (and an NB-IoT device, and a faulty JSON device) must send its own bytes. Until MqttDevice grows
 * a public raw publish, this reaches the client it holds; it fails loudly if that ever moves.
 */
export function publishRaw(conn: MqttDevice, topic: string, payload: string | Buffer, qos: Qos): Promise<void> {
  const inner = conn as unknown as { client?: MqttClient; closing?: boolean };
  const client = inner.client;
  if (!client || typeof client.publish !== 'function') {
    return Promise.reject(new Error(`${conn.id}: MqttDevice has no mqtt.js client to publish raw payloads with`));
  }
  if (inner.closing) return Promise.reject(new Error(`${conn.id}: connection is closed`));
  return new Promise<void>((resolve, reject) => {
    client.publish(topic, payload, { qos }, (err) => (err ? reject(err) : resolve()));
  });
}

/** DTU mode: the same frames, each one MQTT message on devices/{id}/telemetry at QoS 1 (PUBACK = delivered). */
export class Hj212DtuLink implements Hj212Link {
  readonly id: string;
  readonly counts: Hj212Counts = newCounts();
  private readonly conn: MqttDevice;

  constructor(conn: MqttDevice) {
    this.conn = conn;
    this.id = conn.id;
  }

  get disconnects(): number {
    return this.conn.disconnects;
  }

  get refusedLater(): { code: number; reason: string } | undefined {
    return this.conn.refusedLater;
  }

  connect(): Promise<ConnectOutcome> {
    return this.conn.connect();
  }

  async send(frame: BuiltFrame): Promise<void> {
    this.counts.sent += 1;
    try {
      await publishRaw(this.conn, telemetryTopic(this.id), frame.text, 1);
    } catch (err) {
      this.counts.failed += 1;
      throw err;
    }
    // The broker's PUBACK is the DTU's answer; HJ 212 answers do not travel back over MQTT.
    this.counts.answered += 1;
  }

  close(force = false): Promise<void> {
    return this.conn.close(force);
  }
}
