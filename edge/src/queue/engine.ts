// The queue's logic, shared by the memory and the disk queue: deviceSeq stamping, chunking (a chunk is
// a batch before it has a seq), the alarm lane, the live/backlog interleave, quotas and drops, hand-out
// with a persisted seq, ack/refuse, compaction, and replay of the log after a restart. The storage under
// it is a BufferedLog (log.ts); only the disk queue ever replays one.
import type { Logger } from 'pino';
import { decodeBatch, encodeBatch, UNBOUNDED_DECODE_LIMITS, type Batch, type DeviceEvent, type DropReport, type Reading } from '@citysense/proto';
import { DEFAULTS, QueueError, type DataClass, type DurableQueue, type QueueOptions, type QueueStats } from './contract.ts';
import { encodeFrame, scanFrames, type DropLine, type Frame, type RecordMeta } from './record.ts';
import type { BufferedLog, Loc } from './log.ts';

interface Span extends Loc {
  /** Bytes of this chunk's frames inside [off, end) (other records may sit between them). */
  bytes: number;
}

type ChunkState = 'forming' | 'queued' | 'open' | 'dropping' | 'dead';

interface Chunk {
  id: number;
  cls: DataClass;
  readings: number;
  events: number;
  bytes: number;
  /** Accept time of its first item. */
  at: number;
  /** Oldest item timestamp. */
  ts: number;
  spans: Span[];
  state: ChunkState;
  /** Items admitted but not yet written as a part frame (emitParts() writes them, once per loop turn). */
  unwritten?: { readings: Reading[]; events: DeviceEvent[]; at: number } | undefined;
  /**
   * Every item of the chunk, as stamped, while it fits the cache: the batch is then built from memory
   * instead of read back and decoded. Undefined once any of its items was not cached (or after replay).
   */
  items?: { readings: Reading[]; events: DeviceEvent[] } | undefined;
}

interface Open {
  seq: number;
  chunk: Chunk;
  createdMs: number;
  drops: DropLine[];
  sendSeg: number;
  /** Returned by next() in this process's life. */
  handed: boolean;
}

interface SegInfo {
  live: number;
  chunks: Set<number>;
  sends: Set<number>;
  pins: number;
}

interface RoomWaiter {
  alarm: boolean;
  telemetry: boolean;
  admit: () => void;
  reject: (err: Error) => void;
}

export type DeadLetterWriter = (batch: Batch, encoded: Uint8Array, reason: string) => Promise<void>;

const dropKey = (l: DropLine) => `${l[0]}\u0000${l[1]}\u0000${l[2]}`;

export class QueueEngine implements DurableQueue {
  private readonly now: () => number;
  private readonly segmentBytes: number;
  private lastSeq = 0;
  private lastChunk = 0;
  private readonly devices = new Map<string, number>();
  private readonly pending = new Map<string, DropLine>();
  private readonly chunks = new Map<number, Chunk>();
  private alarmQ: Chunk[] = [];
  private telemQ: Chunk[] = [];
  private forming: Chunk | undefined;
  private formingTimer: NodeJS.Timeout | undefined;
  private readonly open = new Map<number, Open>();
  private readonly segs = new Map<number, SegInfo>();
  private curSeg = -1;
  private droppingBytes = 0;
  private takeNewest = false;
  private closed = false;
  private readonly alarmWait: RoomWaiter[] = [];
  private readonly telemWait: RoomWaiter[] = [];
  private nextWaiters = new Set<() => void>();
  private drainWaiters = new Set<() => void>();
  private compacting: Promise<void> | undefined;
  private compactAgain = false;
  private readonly cls = {
    telemetry: { readings: 0, events: 0, bytes: 0 },
    alarm: { readings: 0, events: 0, bytes: 0 },
  };
  private readonly counters = {
    acked: { batches: 0, readings: 0, events: 0 },
    deadLettered: { batches: 0, readings: 0, events: 0 },
    droppedByClassReason: {} as Record<string, number>,
    droppedByDevice: new Map<string, number>(),
    tornRecords: 0,
    corruptBytesSkipped: 0,
    rejectedAccepts: 0,
  };
  private dropLog = { last: 0, held: 0, heldDevices: new Set<string>() };
  /** Telemetry chunks with admitted items not yet in the log, in admission order. */
  private readonly unwritten = new Set<Chunk>();
  private emitScheduled: { promise: Promise<unknown>; resolve: (p: Promise<unknown>) => void } | undefined;
  private readonly cacheItems: number;
  private cachedItems = 0;
  private emitting = false;
  /** A segment rolled inside emitParts(): its checkpoint goes after the last part of the emission. */
  private stateDue = false;

  constructor(
    private readonly o: QueueOptions,
    private readonly logStore: BufferedLog,
    private readonly deadLetter: DeadLetterWriter,
  ) {
    this.now = o.now ?? Date.now;
    this.segmentBytes = o.segmentBytes ?? DEFAULTS.segmentBytes;
    this.cacheItems = o.cacheItems ?? DEFAULTS.cacheItems;
  }

  private get log(): Logger | undefined {
    return this.o.log;
  }

  // ---------------------------------------------------------------- accept

  async accept(readings: readonly Reading[], events: readonly DeviceEvent[]): Promise<void> {
    if (this.closed) throw new QueueError('QUEUE_CLOSED', 'accept() after close()');
    if (this.logStore.failed) {
      this.counters.rejectedAccepts++;
      throw new QueueError('QUEUE_WRITE_FAILED', this.logStore.failed.message, { cause: this.logStore.failed });
    }
    if (readings.length === 0 && events.length === 0) return;
    let hasAlarm = false;
    let hasTelemetry = readings.length > 0;
    for (const e of events) {
      if (e.priority === 'alarm') hasAlarm = true;
      else hasTelemetry = true;
    }
    if (!this.fits(hasAlarm, hasTelemetry, true)) await this.waitForRoom(hasAlarm, hasTelemetry);
    await this.admit(readings, events);
    try {
      await this.logStore.commit();
    } catch (err) {
      this.counters.rejectedAccepts++;
      throw new QueueError('QUEUE_WRITE_FAILED', (err as Error).message, { cause: err });
    }
  }

  private alarmFits(): boolean {
    return this.cls.alarm.bytes < this.o.quotaBytes.alarm || this.cls.alarm.bytes === 0;
  }

  private telemetryFits(): boolean {
    const t = this.cls.telemetry.bytes - this.droppingBytes;
    return t < this.o.quotaBytes.telemetry || this.telemQ.length > 0 || t <= 0;
  }

  private fits(alarm: boolean, telemetry: boolean, newcomer: boolean): boolean {
    // FIFO: a newcomer queues behind anyone already waiting for the same room.
    if (newcomer && ((alarm && this.alarmWait.length > 0) || (telemetry && this.telemWait.length > 0))) return false;
    return (!alarm || this.alarmFits()) && (!telemetry || this.telemetryFits());
  }

  private waitForRoom(alarm: boolean, telemetry: boolean): Promise<void> {
    return new Promise((admit, reject) => {
      const w: RoomWaiter = { alarm, telemetry, admit, reject };
      (alarm ? this.alarmWait : this.telemWait).push(w);
    });
  }

  private wakeRoom(): void {
    for (const q of [this.alarmWait, this.telemWait]) {
      while (q.length > 0 && this.fits(q[0]!.alarm, q[0]!.telemetry, false)) q.shift()!.admit();
    }
  }

  private stamp<T extends Reading | DeviceEvent>(item: T): T {
    const n = (this.devices.get(item.deviceId) ?? 0) + 1;
    this.devices.set(item.deviceId, n);
    return { ...item, deviceSeq: n };
  }

  /**
   * Synchronous from stamping to placing the items in their chunks: nothing interleaves inside one
   * accept's items. Alarm parts are appended at once; telemetry parts of every accept() of this loop turn
   * are written together by emitParts() (one frame, one encode, one checksum per chunk instead of per
   * message). Resolves once this accept's items are appended to the log (not yet synced).
   */
  private admit(readings: readonly Reading[], events: readonly DeviceEvent[]): Promise<unknown> {
    const at = this.now();
    const rs = readings.map((r) => this.stamp(r));
    const alarms: DeviceEvent[] = [];
    const tev: DeviceEvent[] = [];
    for (const e of events) {
      const s = this.stamp(e);
      (e.priority === 'alarm' ? alarms : tev).push(s);
    }
    for (let i = 0; i < alarms.length; i += this.o.maxAlarmBatchItems) {
      const c = this.newChunk('alarm', at);
      const part = alarms.slice(i, i + this.o.maxAlarmBatchItems);
      this.count(c, [], part);
      this.appendPart(c, [], part, at);
      c.state = 'queued';
      this.alarmQ.push(c);
    }
    let ri = 0;
    let ei = 0;
    while (ri < rs.length || ei < tev.length) {
      if (!this.forming) {
        this.forming = this.newChunk('telemetry', at);
        this.formingTimer = setTimeout(() => this.seal(), this.o.maxBatchAgeMs);
        this.formingTimer.unref?.();
      }
      const f = this.forming;
      let room = this.o.maxBatchItems - (f.readings + f.events);
      const rTake = Math.min(room, rs.length - ri);
      room -= rTake;
      const eTake = Math.min(room, tev.length - ei);
      const pr = rTake === rs.length ? rs : rs.slice(ri, ri + rTake);
      const pe = eTake === tev.length ? tev : tev.slice(ei, ei + eTake);
      this.count(f, pr, pe);
      let u = f.unwritten;
      if (!u) {
        f.unwritten = u = { readings: [], events: [], at };
        this.unwritten.add(f);
      }
      for (const r of pr) u.readings.push(r);
      for (const e of pe) u.events.push(e);
      ri += rTake;
      ei += eTake;
      if (f.readings + f.events >= this.o.maxBatchItems) this.seal();
    }
    if (this.unwritten.size === 0) {
      const drops = this.enforceTelemetryQuota();
      this.wakeNext();
      return drops;
    }
    return this.scheduleEmit();
  }

  /** One emitParts() per loop turn, after the turn's I/O callbacks (setImmediate runs after the poll phase). */
  private scheduleEmit(): Promise<unknown> {
    if (!this.emitScheduled) {
      let resolve!: (p: Promise<unknown>) => void;
      const promise = new Promise<Promise<unknown>>((r) => (resolve = r)).then((p) => p);
      this.emitScheduled = { promise, resolve };
      setImmediate(() => {
        if (this.closed) return this.emitScheduled?.resolve(Promise.reject(new QueueError('QUEUE_CLOSED', 'closed before the items were written')));
        this.emitParts();
      });
    }
    return this.emitScheduled.promise;
  }

  /**
   * Appends every admitted telemetry item not yet in the log, one part frame per chunk, then applies the
   * quota. Every other append calls this first, so the log keeps admission order (a checkpoint never
   * precedes the parts whose deviceSeqs it counts).
   */
  private emitParts(): void {
    const sched = this.emitScheduled;
    this.emitScheduled = undefined;
    if (this.unwritten.size > 0) {
      const chunks = [...this.unwritten];
      this.unwritten.clear();
      this.emitting = true;
      try {
        for (const c of chunks) {
          const u = c.unwritten!;
          c.unwritten = undefined;
          if (c.state === 'dead') continue;
          this.appendPart(c, u.readings, u.events, u.at);
        }
      } finally {
        this.emitting = false;
      }
      if (this.stateDue) {
        this.stateDue = false;
        this.logStore.append(this.stateFrame());
      }
    }
    if (sched) {
      sched.resolve(this.enforceTelemetryQuota());
      this.wakeNext();
    }
  }

  /** Counts admitted items into their chunk and class, and keeps them in the cache while it has room. */
  private count(c: Chunk, rs: Reading[], es: DeviceEvent[]): void {
    const n = rs.length + es.length;
    c.readings += rs.length;
    c.events += es.length;
    for (const r of rs) if (r.ts < c.ts) c.ts = r.ts;
    for (const e of es) if (e.ts < c.ts) c.ts = e.ts;
    const k = this.cls[c.cls];
    k.readings += rs.length;
    k.events += es.length;
    if (c.items && this.cachedItems + n <= this.cacheItems) {
      for (const r of rs) c.items.readings.push(r);
      for (const e of es) c.items.events.push(e);
      this.cachedItems += n;
    } else this.uncache(c);
  }

  private uncache(c: Chunk): void {
    if (!c.items) return;
    this.cachedItems -= c.items.readings.length + c.items.events.length;
    c.items = undefined;
  }

  private newChunk(cls: DataClass, at: number): Chunk {
    const c: Chunk = { id: ++this.lastChunk, cls, readings: 0, events: 0, bytes: 0, at, ts: Infinity, spans: [], state: 'forming', items: { readings: [], events: [] } };
    this.chunks.set(c.id, c);
    return c;
  }

  /** Writes admitted items (already counted by count()) as one part frame of chunk c. */
  private appendPart(c: Chunk, rs: Reading[], es: DeviceEvent[], at: number): void {
    let ts = Infinity;
    for (const r of rs) if (r.ts < ts) ts = r.ts;
    for (const e of es) if (e.ts < ts) ts = e.ts;
    const body = encodeBatch({ edgeId: this.o.edgeId, seq: c.id, createdMs: c.at, readings: rs, events: es });
    const frame = encodeFrame({ t: 'p', c: c.id, k: c.cls, r: rs.length, e: es.length, at, ts: Number.isFinite(ts) ? ts : 0 }, body);
    const loc = this.appendFrame(frame, this.emitting);
    this.addSpan(c, loc, frame.length);
  }

  private seg(id: number): SegInfo {
    let s = this.segs.get(id);
    if (!s) this.segs.set(id, (s = { live: 0, chunks: new Set(), sends: new Set(), pins: 0 }));
    return s;
  }

  private addSpan(c: Chunk, loc: Loc, bytes: number): void {
    const last = c.spans.at(-1);
    if (last && last.seg === loc.seg) {
      last.end = loc.end;
      last.bytes += bytes;
    } else {
      c.spans.push({ seg: loc.seg, off: loc.off, end: loc.end, bytes });
    }
    const s = this.seg(loc.seg);
    s.live += bytes;
    s.chunks.add(c.id);
    c.bytes += bytes;
    this.cls[c.cls].bytes += bytes;
  }

  private releaseSpans(c: Chunk): void {
    for (const sp of c.spans) {
      const s = this.segs.get(sp.seg);
      if (!s) continue;
      s.live -= sp.bytes;
      s.chunks.delete(c.id);
    }
    this.cls[c.cls].bytes -= c.bytes;
    c.bytes = 0;
    c.spans = [];
  }

  /** Appends a frame; the first frame of each new segment is followed by a checkpoint. */
  private appendFrame(frame: Buffer, part = false): Loc {
    if (!part && this.unwritten.size > 0) this.emitParts();
    const loc = this.logStore.append(frame);
    if (loc.seg !== this.curSeg) {
      this.curSeg = loc.seg;
      this.seg(loc.seg);
      if (this.emitting) this.stateDue = true;
      else this.logStore.append(this.stateFrame());
    }
    return loc;
  }

  private stateFrame(): Buffer {
    return encodeFrame({ t: 'S', q: this.lastSeq, c: this.lastChunk, dev: Object.fromEntries(this.devices), pend: [...this.pending.values()] });
  }

  private killChunk(c: Chunk): void {
    if (c.state === 'dead') return;
    this.uncache(c);
    if (c.unwritten) {
      this.unwritten.delete(c);
      c.unwritten = undefined;
    }
    const k = this.cls[c.cls];
    k.readings -= c.readings;
    k.events -= c.events;
    this.releaseSpans(c);
    c.state = 'dead';
    this.chunks.delete(c.id);
    if (this.chunks.size === 0) for (const f of this.drainWaiters) f();
  }

  /** Seals the forming telemetry chunk: it becomes a queued batch waiting for a seq. */
  private seal(): void {
    if (this.formingTimer) clearTimeout(this.formingTimer);
    this.formingTimer = undefined;
    const f = this.forming;
    if (!f) return;
    this.forming = undefined;
    f.state = 'queued';
    this.telemQ.push(f);
    this.wakeNext();
    this.wakeRoom();
  }

  // ---------------------------------------------------------------- quota and drops

  private enforceTelemetryQuota(): Promise<unknown> {
    const drops: Promise<void>[] = [];
    while (this.cls.telemetry.bytes - this.droppingBytes > this.o.quotaBytes.telemetry && this.telemQ.length > 0) {
      drops.push(this.dropChunk(this.telemQ.shift()!, 'QUEUE_FULL'));
    }
    return Promise.all(drops);
  }

  private async dropChunk(c: Chunk, reason: string): Promise<void> {
    c.state = 'dropping';
    const bytes = c.bytes;
    this.droppingBytes += bytes;
    let lines: DropLine[];
    try {
      const { readings, events, lost } = await this.readChunk(c);
      const per = new Map<string, DropLine>();
      for (const it of [...readings, ...events]) {
        let l = per.get(it.deviceId);
        if (!l) per.set(it.deviceId, (l = [it.deviceId, c.cls, reason, 0, it.ts]));
        l[3]++;
        if (it.ts < l[4]) l[4] = it.ts;
      }
      lines = [...per.values()];
      if (lost > 0) lines.push(['', c.cls, 'CORRUPT', lost, 0]);
    } catch (err) {
      this.log?.error({ err, chunk: c.id }, 'a dropped batch could not be read back; its items are reported without device');
      lines = [['', c.cls, reason, c.readings + c.events, Number.isFinite(c.ts) ? c.ts : 0]];
    } finally {
      this.droppingBytes -= bytes;
    }
    // Counted before the record is appended: a checkpoint that follows it must include these drops.
    this.killChunk(c);
    for (const l of lines) this.countDrop(l, c.id);
    this.appendFrame(encodeFrame({ t: 'd', c: c.id, why: reason, dr: lines }));
    this.wakeRoom();
    void this.compact();
  }

  private countDrop(l: DropLine, chunk: number): void {
    this.addPending(l);
    const key = `${l[1]}/${l[2]}`;
    this.counters.droppedByClassReason[key] = (this.counters.droppedByClassReason[key] ?? 0) + l[3];
    this.counters.droppedByDevice.set(l[0], (this.counters.droppedByDevice.get(l[0]) ?? 0) + l[3]);
    this.o.onDrop?.({ deviceId: l[0], dataClass: l[1], reason: l[2], count: l[3], oldestTsMs: l[4], chunk });
    // One line per drop, at most one every 10 s; the next line says how many were held back.
    const t = this.now();
    if (t - this.dropLog.last >= 10_000) {
      this.log?.warn(
        { deviceId: l[0], dataClass: l[1], reason: l[2], count: l[3], oldestTsMs: l[4], heldBackDrops: this.dropLog.held, heldBackDevices: this.dropLog.heldDevices.size },
        `queue dropped ${l[3]} ${l[1]} items of device ${l[0] || '(unknown)'} (${l[2]})`,
      );
      this.dropLog = { last: t, held: 0, heldDevices: new Set() };
    } else {
      this.dropLog.held += l[3];
      this.dropLog.heldDevices.add(l[0]);
    }
  }

  private addPending(l: DropLine): void {
    const k = dropKey(l);
    const p = this.pending.get(k);
    if (!p) this.pending.set(k, [...l] as DropLine);
    else {
      p[3] += l[3];
      if (l[4] < p[4]) p[4] = l[4];
    }
  }

  // ---------------------------------------------------------------- reading chunks

  private pin(c: Chunk, d: 1 | -1): Span[] {
    const spans = [...c.spans];
    for (const sp of spans) this.seg(sp.seg).pins += d;
    return spans;
  }

  /** The raw part frames of a chunk, in order. */
  private async chunkFrames(c: Chunk): Promise<{ frames: Frame[]; corrupt: number }> {
    const spans = this.pin(c, 1);
    try {
      const out: Frame[] = [];
      let corrupt = 0;
      for (const sp of spans) {
        const buf = await this.logStore.read(sp.seg, sp.off, sp.end);
        const scan = scanFrames(buf, sp.off);
        corrupt += scan.corrupt.length + (scan.tornTailBytes > 0 ? 1 : 0);
        for (const f of scan.frames) {
          if (f.meta.t === 'p' && f.meta.c === c.id) out.push(f);
          else if (f.meta.t === 'c' && f.meta.c === c.id) {
            const inner = scanFrames(f.body);
            corrupt += inner.corrupt.length + (inner.tornTailBytes > 0 ? 1 : 0);
            for (const g of inner.frames) if (g.meta.t === 'p') out.push(g);
          }
        }
      }
      return { frames: out, corrupt };
    } finally {
      for (const sp of spans) {
        const s = this.segs.get(sp.seg);
        if (s) s.pins--;
      }
    }
  }

  private async readChunk(c: Chunk): Promise<{ readings: Reading[]; events: DeviceEvent[]; lost: number }> {
    if (this.unwritten.size > 0) this.emitParts();
    if (c.items) return { readings: c.items.readings.slice(), events: c.items.events.slice(), lost: 0 };
    const { frames, corrupt } = await this.chunkFrames(c);
    if (corrupt > 0) {
      this.counters.tornRecords += corrupt;
      this.log?.error({ chunk: c.id, corrupt }, 'corrupt records inside a queued batch; their items are counted as dropped (CORRUPT)');
    }
    const readings: Reading[] = [];
    const events: DeviceEvent[] = [];
    for (const f of frames) {
      try {
        // The edge's own record, checksum verified: the cloud's wire limits are not its business here.
        const b = decodeBatch(f.body, UNBOUNDED_DECODE_LIMITS);
        for (const r of b.readings) readings.push(r);
        for (const e of b.events) events.push(e);
      } catch (err) {
        this.counters.tornRecords++;
        this.log?.error({ err, chunk: c.id }, 'a queued record passed its checksum but does not decode');
      }
    }
    const lost = Math.max(0, c.readings + c.events - readings.length - events.length);
    return { readings, events, lost };
  }

  // ---------------------------------------------------------------- next / ack / refuse

  async next(signal?: AbortSignal, lane: 'alarm' | 'telemetry' | 'any' = 'any'): Promise<Batch | null> {
    for (;;) {
      if (this.closed || signal?.aborted) return null;
      let o: Open | undefined;
      for (const x of this.open.values()) {
        if (!x.handed && (lane === 'any' || x.chunk.cls === lane)) {
          o = x;
          break;
        }
      }
      if (!o) {
        const c = lane === 'alarm' ? this.alarmQ.shift() : lane === 'telemetry' ? this.pickTelemetry() : (this.alarmQ.shift() ?? this.pickTelemetry());
        if (c) o = this.handOut(c);
      }
      if (o) {
        o.handed = true;
        try {
          await this.logStore.commit();
          return await this.buildBatch(o);
        } catch (err) {
          o.handed = false;
          throw err instanceof QueueError ? err : new QueueError('QUEUE_WRITE_FAILED', (err as Error).message, { cause: err });
        }
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          this.nextWaiters.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        this.nextWaiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  private wakeNext(): void {
    const w = [...this.nextWaiters];
    this.nextWaiters.clear();
    for (const f of w) f();
  }

  /** Several telemetry batches waiting: alternate the oldest (backlog) and the newest (live). */
  private pickTelemetry(): Chunk | undefined {
    if (this.telemQ.length <= 1) return this.telemQ.shift();
    const c = this.takeNewest ? this.telemQ.pop() : this.telemQ.shift();
    this.takeNewest = !this.takeNewest;
    return c;
  }

  private handOut(c: Chunk): Open {
    const seq = ++this.lastSeq;
    const drops = [...this.pending.values()];
    this.pending.clear();
    const createdMs = this.now();
    const loc = this.appendFrame(encodeFrame({ t: 's', q: seq, c: c.id, at: createdMs, k: c.cls, dr: drops }));
    c.state = 'open';
    const o: Open = { seq, chunk: c, createdMs, drops, sendSeg: loc.seg, handed: false };
    this.open.set(seq, o);
    this.seg(loc.seg).sends.add(seq);
    return o;
  }

  private async buildBatch(o: Open): Promise<Batch> {
    const { readings, events, lost } = await this.readChunk(o.chunk);
    if (lost > 0) this.countDrop(['', o.chunk.cls, 'CORRUPT', lost, 0], o.chunk.id);
    const b: Batch = { edgeId: this.o.edgeId, seq: o.seq, createdMs: o.createdMs, readings, events, lane: o.chunk.cls };
    if (o.drops.length > 0) {
      b.drops = o.drops.map((l): DropReport => ({ deviceId: l[0], dataClass: l[1], reason: l[2], count: l[3], oldestTsMs: l[4] }));
    }
    return b;
  }

  private forget(o: Open): void {
    this.open.delete(o.seq);
    this.segs.get(o.sendSeg)?.sends.delete(o.seq);
    this.killChunk(o.chunk);
  }

  async ack(seq: number): Promise<void> {
    const o = this.open.get(seq);
    if (!o) return;
    this.forget(o);
    const a = this.counters.acked;
    a.batches++;
    a.readings += o.chunk.readings;
    a.events += o.chunk.events;
    this.appendFrame(encodeFrame({ t: 'a', q: seq }));
    this.wakeRoom();
    try {
      await this.logStore.commit();
    } catch (err) {
      throw new QueueError('QUEUE_WRITE_FAILED', `the ack of batch ${seq} is not durable yet (it will be written on retry; at worst the batch is resent with the same seq): ${(err as Error).message}`, { cause: err });
    }
    await this.compact();
  }

  async refuse(seq: number, reason: string): Promise<void> {
    const o = this.open.get(seq);
    if (!o) return;
    const batch = await this.buildBatch(o);
    await this.deadLetter(batch, encodeBatch(batch), reason);
    if (!this.open.has(seq)) return;
    this.forget(o);
    for (const l of o.drops) this.addPending(l);
    const d = this.counters.deadLettered;
    d.batches++;
    d.readings += o.chunk.readings;
    d.events += o.chunk.events;
    this.log?.error({ seq, reason, readings: o.chunk.readings, events: o.chunk.events }, `batch ${seq} refused for good by the cloud; kept in the dead-letter area`);
    this.appendFrame(encodeFrame({ t: 'r', q: seq, why: reason }));
    this.wakeRoom();
    await this.logStore.commit().catch((err: Error) => {
      throw new QueueError('QUEUE_WRITE_FAILED', err.message, { cause: err });
    });
    await this.compact();
  }

  // ---------------------------------------------------------------- flush / drained / stats / close

  async flush(): Promise<void> {
    this.seal();
    this.emitParts();
    await this.logStore.commit().catch((err: Error) => {
      throw new QueueError('QUEUE_WRITE_FAILED', err.message, { cause: err });
    });
  }

  drained(signal?: AbortSignal): Promise<void> {
    if (this.chunks.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        this.drainWaiters.delete(done);
        resolve();
      };
      this.drainWaiters.add(done);
      signal?.addEventListener(
        'abort',
        () => {
          this.drainWaiters.delete(done);
          reject(signal.reason as Error);
        },
        { once: true },
      );
    });
  }

  stats(): QueueStats {
    let oldest = Infinity;
    for (const o of this.open.values()) if (o.chunk.at < oldest) oldest = o.chunk.at;
    for (const c of [this.alarmQ[0], this.telemQ[0], this.forming]) if (c && c.at < oldest) oldest = c.at;
    for (const c of this.telemQ) if (c.at < oldest) oldest = c.at; // the newest-first picks leave order intact, but a restart may not
    const c = this.counters;
    let pendingCount = 0;
    for (const l of this.pending.values()) pendingCount += l[3];
    for (const o of this.open.values()) for (const l of o.drops) pendingCount += l[3];
    return {
      telemetry: { ...this.cls.telemetry },
      alarm: { ...this.cls.alarm },
      oldestAcceptedMs: Number.isFinite(oldest) ? oldest : null,
      batchesQueued: { telemetry: this.telemQ.length, alarm: this.alarmQ.length },
      batchesOpen: this.open.size,
      lastSeq: this.lastSeq,
      diskBytes: this.logStore.diskBytes(),
      segments: this.logStore.segmentIds().length,
      acked: { ...c.acked },
      deadLettered: { ...c.deadLettered },
      droppedByClassReason: { ...c.droppedByClassReason },
      droppedByDevice: Object.fromEntries(c.droppedByDevice),
      dropsPendingReport: pendingCount,
      tornRecords: c.tornRecords,
      corruptBytesSkipped: c.corruptBytesSkipped,
      syncs: this.logStore.syncs,
      writeErrors: this.logStore.writeErrors,
      rejectedAccepts: c.rejectedAccepts,
      waitingAccepts: this.alarmWait.length + this.telemWait.length,
    };
  }

  private stopAll(): void {
    this.closed = true;
    if (this.formingTimer) clearTimeout(this.formingTimer);
    this.formingTimer = undefined;
    for (const w of [...this.alarmWait.splice(0), ...this.telemWait.splice(0)]) {
      w.reject(new QueueError('QUEUE_CLOSED', 'the queue closed while this message waited for room'));
    }
    this.wakeNext();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.seal();
    this.emitParts();
    this.stopAll();
    while (this.compacting) await this.compacting;
    this.logStore.append(this.stateFrame());
    await this.logStore.close();
  }

  /** Test hook: stop like a killed process (nothing pending is written). */
  async crash(): Promise<void> {
    this.stopAll();
    await this.logStore.abandon();
  }

  // ---------------------------------------------------------------- compaction

  /**
   * Removes the oldest segment once nothing in it is live. When the files exceed the quotas by more than
   * two segments (a batch stuck in flight pins the oldest segment while newer data is dropped), the oldest
   * segment's live chunks and open hand-outs are copied forward first, so the disk stays bounded.
   */
  compact(): Promise<void> {
    if (this.compacting) {
      this.compactAgain = true;
      return this.compacting;
    }
    this.compacting = (async () => {
      do {
        this.compactAgain = false;
        await this.compactOnce();
      } while (this.compactAgain && !this.closed);
    })()
      .catch((err: Error) => this.log?.error({ err }, 'queue compaction failed; will retry after the next ack'))
      .finally(() => (this.compacting = undefined));
    return this.compacting;
  }

  private async compactOnce(): Promise<void> {
    const budget = this.o.quotaBytes.telemetry + this.o.quotaBytes.alarm + 2 * this.segmentBytes;
    for (let guard = 0; guard < 1000 && !this.closed; guard++) {
      const head = this.logStore.segmentIds()[0];
      if (head === undefined || head >= this.logStore.active) return;
      const s = this.seg(head);
      if (s.pins > 0) return;
      if (s.live > 0 || s.sends.size > 0) {
        if (this.logStore.diskBytes() <= budget) return;
        if (!(await this.copyForward(s))) return;
        await this.logStore.commit();
      }
      if (s.live > 0 || s.sends.size > 0 || s.pins > 0) return;
      await this.logStore.remove(head);
      this.segs.delete(head);
    }
  }

  private async copyForward(s: SegInfo): Promise<boolean> {
    for (const id of [...s.chunks]) {
      const c = this.chunks.get(id);
      if (!c) {
        s.chunks.delete(id);
        continue;
      }
      if (c.state === 'dropping' || c.state === 'forming') return false;
      const { frames } = await this.chunkFrames(c);
      if (c.state === 'dead') continue;
      if ((c.state as ChunkState) === 'dropping') return false;
      const raw = frames.map((f) => encodeFrame(f.meta, f.body));
      const frame = encodeFrame({ t: 'c', c: c.id, k: c.cls, r: c.readings, e: c.events, at: c.at, ts: Number.isFinite(c.ts) ? c.ts : 0 }, Buffer.concat(raw));
      this.releaseSpans(c);
      const loc = this.appendFrame(frame);
      this.addSpan(c, loc, frame.length);
    }
    for (const seq of [...s.sends]) {
      const o = this.open.get(seq);
      s.sends.delete(seq);
      if (!o) continue;
      const loc = this.appendFrame(encodeFrame({ t: 's', q: o.seq, c: o.chunk.id, at: o.createdMs, k: o.chunk.cls, dr: o.drops, cp: 1 }));
      o.sendSeg = loc.seg;
      this.seg(loc.seg).sends.add(seq);
    }
    return true;
  }

  // ---------------------------------------------------------------- replay (disk only)

  private replay = {
    dead: new Set<number>(),
    lastState: undefined as { seg: number; off: number } | undefined,
    opens: new Map<number, { c: number; at: number; dr: DropLine[]; seg: number }>(),
  };

  /** Applies one recovered frame, in log order. */
  replayFrame(seg: number, f: Frame): void {
    const m: RecordMeta = f.meta;
    const rp = this.replay;
    const loc = { seg, off: f.off, end: f.end };
    const len = f.end - f.off;
    switch (m.t) {
      case 'p': {
        if (rp.dead.has(m.c)) return;
        let c = this.chunks.get(m.c);
        if (!c) {
          c = { id: m.c, cls: m.k, readings: 0, events: 0, bytes: 0, at: m.at, ts: Infinity, spans: [], state: 'queued' };
          this.chunks.set(m.c, c);
        }
        this.addSpan(c, loc, len);
        c.readings += m.r;
        c.events += m.e;
        this.cls[c.cls].readings += m.r;
        this.cls[c.cls].events += m.e;
        if (m.ts < c.ts) c.ts = m.ts;
        if (m.c > this.lastChunk) this.lastChunk = m.c;
        return;
      }
      case 'c': {
        if (rp.dead.has(m.c)) return;
        let c = this.chunks.get(m.c);
        if (c) {
          this.releaseSpans(c);
          this.cls[c.cls].readings -= c.readings;
          this.cls[c.cls].events -= c.events;
        } else {
          c = { id: m.c, cls: m.k, readings: 0, events: 0, bytes: 0, at: m.at, ts: m.ts, spans: [], state: 'queued' };
          this.chunks.set(m.c, c);
        }
        c.readings = m.r;
        c.events = m.e;
        c.at = m.at;
        c.ts = m.ts;
        this.cls[c.cls].readings += m.r;
        this.cls[c.cls].events += m.e;
        this.addSpan(c, loc, len);
        if (m.c > this.lastChunk) this.lastChunk = m.c;
        return;
      }
      case 's': {
        const prev = rp.opens.get(m.q);
        if (prev) this.segs.get(prev.seg)?.sends.delete(m.q);
        rp.opens.set(m.q, { c: m.c, at: m.at, dr: m.dr, seg });
        this.seg(seg).sends.add(m.q);
        if (!m.cp) this.pending.clear();
        if (m.q > this.lastSeq) this.lastSeq = m.q;
        return;
      }
      case 'a':
      case 'r': {
        const o = rp.opens.get(m.q);
        if (!o) return;
        rp.opens.delete(m.q);
        this.segs.get(o.seg)?.sends.delete(m.q);
        if (m.t === 'r') for (const l of o.dr) this.addPending(l);
        const c = this.chunks.get(o.c);
        if (c) this.killChunk(c);
        rp.dead.add(o.c);
        return;
      }
      case 'd': {
        const c = this.chunks.get(m.c);
        if (c) this.killChunk(c);
        rp.dead.add(m.c);
        for (const l of m.dr) this.addPending(l);
        return;
      }
      case 'S': {
        if (m.q > this.lastSeq) this.lastSeq = m.q;
        if (m.c > this.lastChunk) this.lastChunk = m.c;
        for (const [d, n] of Object.entries(m.dev)) if (n > (this.devices.get(d) ?? 0)) this.devices.set(d, n);
        this.pending.clear();
        for (const l of m.pend) this.addPending(l);
        rp.lastState = { seg, off: f.off };
        return;
      }
    }
  }

  /** Where the parts not covered by the last checkpoint start (their deviceSeqs must be read). */
  replayLastState(): { seg: number; off: number } | undefined {
    return this.replay.lastState;
  }

  /** A part after the last checkpoint: its deviceSeqs move the device counters on. */
  replayDeviceSeqs(body: Buffer): void {
    try {
      const b = decodeBatch(body, UNBOUNDED_DECODE_LIMITS);
      for (const it of [...b.readings, ...b.events]) {
        const n = it.deviceSeq ?? 0;
        if (n > (this.devices.get(it.deviceId) ?? 0)) this.devices.set(it.deviceId, n);
      }
    } catch {
      // its checksum held; a record that does not decode is reported when its batch is read
    }
  }

  countCorrupt(records: number, bytes: number): void {
    this.counters.tornRecords += records;
    this.counters.corruptBytesSkipped += bytes;
  }

  /** Ends replay: open hand-outs come back first (same seq), the rest queue by age. */
  finishReplay(): void {
    const rp = this.replay;
    for (const [seq, r] of [...rp.opens].sort((a, b) => a[0] - b[0])) {
      const c = this.chunks.get(r.c);
      if (!c) {
        this.log?.error({ seq, chunk: r.c }, 'an unacked batch lost its data in the log (corruption); its seq is skipped');
        this.segs.get(r.seg)?.sends.delete(seq);
        for (const l of r.dr) this.addPending(l);
        continue;
      }
      c.state = 'open';
      this.open.set(seq, { seq, chunk: c, createdMs: r.at, drops: r.dr, sendSeg: r.seg, handed: false });
    }
    const rest = [...this.chunks.values()].filter((c) => c.state !== 'open').sort((a, b) => a.id - b.id);
    for (const c of rest) {
      c.state = 'queued';
      (c.cls === 'alarm' ? this.alarmQ : this.telemQ).push(c);
    }
    this.replay = { dead: new Set(), lastState: undefined, opens: new Map() };
    this.curSeg = -1;
    void this.enforceTelemetryQuota();
  }
}
