// A lean MQTT load generator: many raw TCP connections (node:net), each one device, each with a window
// of QoS 1 PUBLISH packets in flight; a packet id is reused only after its PUBACK (the broker's flow
// control is honoured, nothing is fire-and-forget). Packets are encoded once per in-flight slot and
// patched in place (packets.ts says why this is not mqtt.js).
//
// Every run is bounded: at most `total` messages and at most `maxDurationMs`, then it waits at most
// `drainTimeoutMs` for outstanding PUBACKs, disconnects and stops by itself.
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  BrokerParser,
  DISCONNECT,
  encodeConnect,
  encodePublishTemplate,
  PINGREQ,
  writeTenths4,
  writeTs13,
  type BrokerPacket,
} from './packets.ts';

export interface LoadDevice {
  id: string;
  secret: string;
}

export interface LoadMetric {
  name: string;
  /** Values are random walks between lo and hi (10.0 ≤ lo < hi ≤ 99.9), written as "dd.d". */
  lo: number;
  hi: number;
}

export interface LoadOptions {
  host: string;
  port: number;
  /** One connection per device, in this order. */
  devices: LoadDevice[];
  /** How many of `devices` to connect at start (default all); `setConnections` changes it later. */
  connections?: number;
  /** Source addresses to spread connections over (127.0.0.x): one address has ~28k ephemeral ports. */
  localAddresses?: string[];
  /** PUBLISH packets in flight per connection (QoS 1). */
  window: number;
  qos?: 0 | 1;
  /** MQTT protocol level: 4 (3.1.1, default) or 5. */
  mqttVersion?: 4 | 5;
  /** Messages in all (a bound, not a target). */
  total: number;
  maxDurationMs: number;
  drainTimeoutMs?: number;
  /** Messages per second over all connections, round-robin across devices; 0 = as fast as the windows allow. */
  ratePerS?: number;
  /** Timestamp of each device's first message; each next one is `tsStepMs` later (unique series+time). */
  tsBase: number;
  tsStepMs?: number;
  metrics?: LoadMetric[];
  /** New connections per second (the edge rate-limits CONNECTs). */
  connectRatePerS?: number;
  keepaliveS?: number;
  /** Reconnect attempts per connection after a refused or lost connection. */
  maxReconnects?: number;
  seed?: number;
}

export interface LoadSnapshot {
  t: number;
  sent: number;
  acked: number;
  resent: number;
  inflight: number;
  connected: number;
  connecting: number;
  refused: number;
  lost: number;
  /** Messages the schedule wanted sent but no window had room for (paced mode). */
  owed: number;
  /** PUBACK latency of messages acknowledged since the last snapshot. */
  ackP50Ms: number;
  ackP99Ms: number;
  ackMaxMs: number;
}

export const DEFAULT_METRICS: LoadMetric[] = [
  { name: 'pm25', lo: 12, hi: 60 },
  { name: 'pm10', lo: 20, hi: 90 },
  { name: 'temperature', lo: 10, hi: 30 },
  { name: 'humidity', lo: 30, hi: 80 },
];

/** The JSON payload of one reading (what the generator sends), e.g. for computing sizes elsewhere. */
export function readingPayload(ts: number, values: Record<string, number>): string {
  return `{"ts":${ts},"metrics":{${Object.entries(values)
    .map(([k, v]) => `"${k}":${v.toFixed(1)}`)
    .join(',')}}}`;
}

const TS_MARK = '9999999999999';
const VAL_MARK = '88.8';

class Conn {
  socket: Socket | undefined;
  connected = false;
  connecting = false;
  reconnects = 0;
  /** Slot i ↔ packet id i+1; each slot has its own copy of the packet so a write never sees a later patch. */
  readonly packets: Buffer[] = [];
  readonly free: number[] = [];
  readonly sentAt: Float64Array;
  /** Slots whose message was written but the connection died before its PUBACK: resent on reconnect. */
  readonly toResend: number[] = [];
  inflight = 0;
  nextTs: number;
  lastSend = 0;
  readonly vals: number[];
  parser: BrokerParser;

  constructor(
    readonly idx: number,
    readonly device: LoadDevice,
    readonly g: LoadGenerator,
    window: number,
    tsBase: number,
  ) {
    const tpl = g.template(device.id);
    for (let i = 0; i < window; i++) {
      const p = Buffer.from(tpl.packet);
      if (tpl.idOffset >= 0) p.writeUInt16BE(i + 1, tpl.idOffset);
      this.packets.push(p);
      this.free.push(window - 1 - i);
    }
    this.sentAt = new Float64Array(window);
    this.nextTs = tsBase;
    this.vals = g.metrics.map((m) => Math.round((m.lo + g.rand() * (m.hi - m.lo)) * 10));
    this.parser = new BrokerParser(
      (id) => this.onPuback(id),
      (p) => this.onPacket(p),
    );
  }

  open(): void {
    const g = this.g;
    this.connecting = true;
    const local = g.localAddresses.length ? g.localAddresses[this.idx % g.localAddresses.length] : undefined;
    const s = connect({ host: g.o.host, port: g.o.port, ...(local ? { localAddress: local } : {}), noDelay: true });
    this.socket = s;
    s.on('connect', () => {
      s.write(encodeConnect({ clientId: this.device.id, username: this.device.id, password: this.device.secret, keepaliveS: g.keepaliveS, version: g.mqttVersion }));
    });
    s.on('data', (chunk: Buffer) => {
      g.now = performance.now();
      this.parser.push(chunk);
      if (this.connected) g.markDirty(this);
    });
    s.on('error', () => undefined);
    s.on('close', () => this.onClose(s));
  }

  private onPacket(p: BrokerPacket): void {
    if (p.type === 'connack') {
      this.connecting = false;
      if (p.returnCode !== 0) {
        this.g.refused++;
        this.socket?.destroy();
        return;
      }
      this.connected = true;
      this.reconnects = 0;
      this.g.connectedCount++;
      while (this.toResend.length) {
        const slot = this.toResend.pop()!;
        this.sentAt[slot] = performance.now();
        this.out.push(this.packets[slot]!);
        this.inflight++;
        this.g.resent++;
      }
      this.g.markDirty(this);
    }
  }

  private onPuback(id: number): void {
    const slot = id - 1;
    if (slot < 0 || slot >= this.packets.length) return;
    this.inflight--;
    this.free.push(slot);
    this.g.onAck(this.g.now - this.sentAt[slot]!);
  }

  send(): boolean {
    const slot = this.free.pop();
    if (slot === undefined) return false;
    const g = this.g;
    const p = this.packets[slot]!;
    if (g.tpl.tsOffset >= 0) writeTs13(p, g.tpl.tsOffset, this.nextTs);
    this.nextTs += g.tsStep;
    const vo = g.tpl.valueOffsets;
    for (let i = 0; i < vo.length; i++) {
      const m = g.bounds[i]!;
      let v = this.vals[i]! + ((g.rand() * 7) | 0) - 3;
      if (v < m[0]) v = m[0];
      else if (v > m[1]) v = m[1];
      this.vals[i] = v;
      writeTenths4(p, vo[i]!, v);
    }
    this.sentAt[slot] = this.g.now;
    this.inflight++;
    this.lastSend = this.g.nowMs;
    this.out.push(p);
    return true;
  }

  /** Packets prepared by send() since the last flush, written as one buffer (one stream write). */
  readonly out: Buffer[] = [];
  flush(): void {
    if (this.out.length === 0) return;
    const b = this.out.length === 1 ? Buffer.from(this.out[0]!) : Buffer.concat(this.out);
    this.out.length = 0;
    this.socket!.write(b);
  }

  private onClose(s: Socket): void {
    if (s !== this.socket) return;
    if (this.connected) this.g.connectedCount--;
    this.connected = false;
    this.out.length = 0;
    this.connecting = false;
    // Everything in flight is unacknowledged: a device keeps such messages and sends them again.
    const inFree = new Set(this.free);
    for (let slot = 0; slot < this.packets.length; slot++) if (!inFree.has(slot) && !this.toResend.includes(slot)) this.toResend.push(slot);
    this.inflight = 0;
    if (this.g.stopping || this.g.active <= this.idx) return;
    if (this.reconnects++ >= this.g.maxReconnects) {
      this.g.lost += this.toResend.length;
      this.g.gaveUp++;
      return;
    }
    this.g.reconnectQueue.push(this);
  }
}

export class LoadGenerator {
  readonly o: LoadOptions;
  readonly metrics: LoadMetric[];
  readonly bounds: [number, number][];
  readonly tpl: ReturnType<typeof encodePublishTemplate>;
  readonly localAddresses: string[];
  readonly keepaliveS: number;
  readonly mqttVersion: 4 | 5;
  readonly maxReconnects: number;
  readonly tsStep: number;
  private readonly conns: Conn[] = [];
  readonly reconnectQueue: Conn[] = [];
  active = 0;
  connectedCount = 0;
  sent = 0;
  acked = 0;
  resent = 0;
  refused = 0;
  lost = 0;
  gaveUp = 0;
  stopping = false;
  /** Clocks read once per I/O burst, not per message. */
  now = performance.now();
  nowMs = Date.now();
  private readonly dirty = new Set<Conn>();
  private flushScheduled = false;
  private owed = 0;
  private scheduled = 0;
  private rrCursor = 0;
  private startedAt = 0;
  private nextToOpen = 0;
  private latencies: number[] = [];
  private latSeen = 0;
  private latMax = 0;
  private seed: number;
  private timers: NodeJS.Timeout[] = [];
  private rate: number;
  private readonly refillAt: number;

  constructor(o: LoadOptions) {
    this.o = o;
    this.metrics = o.metrics ?? DEFAULT_METRICS;
    this.bounds = this.metrics.map((m) => [Math.round(m.lo * 10), Math.round(m.hi * 10)]);
    this.localAddresses = o.localAddresses ?? [];
    this.keepaliveS = o.keepaliveS ?? 120;
    this.mqttVersion = o.mqttVersion ?? 4;
    this.maxReconnects = o.maxReconnects ?? 20;
    this.tsStep = o.tsStepMs ?? 1;
    this.seed = o.seed ?? 1;
    this.rate = o.ratePerS ?? 0;
    this.refillAt = Math.max(1, Math.ceil(o.window / 2));
    this.tpl = this.template(o.devices[0]?.id ?? 'x');
  }

  /** mulberry32 */
  rand(): number {
    this.seed = (this.seed + 0x6d2b79f5) >>> 0;
    let t = this.seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  template(deviceId: string): ReturnType<typeof encodePublishTemplate> {
    const payload = `{"ts":${TS_MARK},"metrics":{${this.metrics.map((m) => `"${m.name}":${VAL_MARK}`).join(',')}}}`;
    // Offsets depend only on the topic's length; each device's template is built for its own topic.
    return encodePublishTemplate(`devices/${deviceId}/telemetry`, payload, this.o.qos ?? 1, { ts: TS_MARK, values: this.metrics.map(() => VAL_MARK) }, this.o.mqttVersion ?? 4);
  }

  /** Runs until the bounds are reached; resolves with the final snapshot. */
  run(onProgress?: (s: LoadSnapshot) => void, progressMs = 1000): Promise<LoadSnapshot> {
    const ids = new Set(this.o.devices.map((d) => d.id.length));
    if (ids.size > 1) throw new Error('all device ids of one load run must have the same length (the packet template offsets depend on it)');
    this.startedAt = Date.now();
    this.setConnections(this.o.connections ?? this.o.devices.length);
    const connectRate = this.o.connectRatePerS ?? 1000;
    const tickMs = 10;
    let last = Date.now();
    let connectBudget = 0;
    this.timers.push(
      setInterval(() => {
        const now = Date.now();
        const dt = now - last;
        last = now;
        // Open connections at the configured rate.
        connectBudget = Math.min(connectBudget + (connectRate * dt) / 1000, connectRate);
        while (connectBudget >= 1 && (this.reconnectQueue.length || this.nextToOpen < this.active)) {
          connectBudget--;
          const c = this.reconnectQueue.shift() ?? this.conns[this.nextToOpen++]!;
          c.open();
        }
        if (this.rate > 0 && !this.stopping) this.pace(now);
        this.pingIdle(now);
      }, tickMs),
    );
    return new Promise((resolve) => {
      const progress = setInterval(() => onProgress?.(this.snapshot()), progressMs);
      this.timers.push(progress);
      const check = setInterval(() => {
        const elapsed = Date.now() - this.startedAt;
        const done = this.sent >= this.o.total && this.inflightTotal() === 0 && this.reconnectQueueEmpty();
        if (!this.stopping && (done || elapsed >= this.o.maxDurationMs)) this.stopping = true;
        if (this.stopping) {
          clearInterval(check);
          void this.finish().then(resolve);
        }
      }, 50);
      this.timers.push(check);
      this.stopNow = () => {
        this.stopping = true;
      };
    });
  }

  /** Ends the run early (the remaining bounds still apply to the drain). */
  stopNow: () => void = () => {
    this.stopping = true;
  };

  setRate(r: number): void {
    this.rate = r;
    this.scheduled = 0;
    this.owed = 0;
    this.paceStart = Date.now();
  }

  /** Connects devices[0..n) (n only grows). */
  setConnections(n: number): void {
    n = Math.min(n, this.o.devices.length);
    while (this.conns.length < n) {
      const i = this.conns.length;
      this.conns.push(new Conn(i, this.o.devices[i]!, this, this.o.window, this.o.tsBase));
    }
    this.active = Math.max(this.active, n);
  }

  private reconnectQueueEmpty(): boolean {
    return this.reconnectQueue.length === 0;
  }

  private inflightTotal(): number {
    let n = 0;
    for (const c of this.conns) n += c.inflight + c.toResend.length;
    return n;
  }

  private paceStart = 0;

  private pace(now: number): void {
    if (!this.paceStart) this.paceStart = now;
    const want = Math.floor((this.rate * (now - this.paceStart)) / 1000);
    this.owed += want - this.scheduled;
    this.scheduled = want;
    const n = this.conns.length;
    if (n === 0) return;
    let tries = 0;
    this.now = performance.now();
    this.nowMs = now;
    const touched = new Set<Conn>();
    while (this.owed > 0 && this.sent < this.o.total && tries < n) {
      const c = this.conns[this.rrCursor]!;
      this.rrCursor = (this.rrCursor + 1) % n;
      if (c.connected && c.free.length > 0) {
        c.send();
        touched.add(c);
        this.sent++;
        this.owed--;
        tries = 0;
      } else tries++;
    }
    for (const c of touched) c.flush();
    // A schedule that cannot be kept is not kept forever: bounded by total.
    if (this.sent >= this.o.total) this.owed = 0;
  }

  /** A connection got PUBACKs (or just connected): refill it once this I/O burst is over. */
  markDirty(c: Conn): void {
    this.dirty.add(c);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushDirty);
    }
  }

  private readonly flushDirty = () => {
    this.flushScheduled = false;
    this.now = performance.now();
    this.nowMs = Date.now();
    for (const c of this.dirty) {
      if (!c.connected) continue;
      this.refill(c);
      c.flush();
    }
    this.dirty.clear();
  };

  /** Fills a connection's window (as-fast-as-possible mode). */
  refill(c: Conn): void {
    if (this.rate > 0 || this.stopping) return;
    // Refill only once half the window is free: one write then carries many packets, where refilling
    // each single PUBACK would cost a syscall (and the loopback's TCP work, charged to the sender) per message.
    if (c.free.length < this.refillAt && c.inflight > 0) return;
    while (this.sent < this.o.total && c.free.length > 0) {
      c.send();
      this.sent++;
    }
  }

  private pingIdle(now: number): void {
    // A connection that has not sent for half its keepalive sends PINGREQ (checked for a slice per tick).
    const limit = (this.keepaliveS * 1000) / 2;
    const n = this.conns.length;
    const slice = Math.min(n, 500);
    for (let k = 0; k < slice; k++) {
      const c = this.conns[this.pingCursor]!;
      this.pingCursor = (this.pingCursor + 1) % n;
      if (c.connected && now - c.lastSend > limit) {
        c.lastSend = now;
        c.socket!.write(PINGREQ);
      }
    }
  }
  private pingCursor = 0;

  onAck(ms: number): void {
    this.acked++;
    this.latSeen++;
    if (ms > this.latMax) this.latMax = ms;
    if (this.latencies.length < 4000) this.latencies.push(ms);
    else {
      const j = Math.floor(this.rand() * this.latSeen);
      if (j < 4000) this.latencies[j] = ms;
    }
  }

  snapshot(): LoadSnapshot {
    const lat = this.latencies.sort((a, b) => a - b);
    const q = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! : 0);
    const s: LoadSnapshot = {
      t: Date.now(),
      sent: this.sent,
      acked: this.acked,
      resent: this.resent,
      inflight: this.inflightTotal(),
      connected: this.connectedCount,
      connecting: this.conns.filter((c) => c.connecting).length,
      refused: this.refused,
      lost: this.lost,
      owed: this.owed,
      ackP50Ms: q(0.5),
      ackP99Ms: q(0.99),
      ackMaxMs: this.latMax,
    };
    this.latencies = [];
    this.latSeen = 0;
    this.latMax = 0;
    return s;
  }

  private async finish(): Promise<LoadSnapshot> {
    const deadline = Date.now() + (this.o.drainTimeoutMs ?? 30_000);
    while (this.inflightTotal() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const t of this.timers) clearInterval(t);
    const final = this.snapshot();
    for (const c of this.conns) {
      c.toResend.length = 0;
      if (c.socket && !c.socket.destroyed) {
        c.socket.end(DISCONNECT);
        c.socket.destroySoon();
      }
    }
    return final;
  }
}
