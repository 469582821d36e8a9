// Cuts the stream of readings and events into batches: by count (maxReadings), by age (maxAgeMs since
// the first item of the forming batch), and at once for an alarm event. Holds every item from accept()
// until the uplink releases its batch (acked or refused), within maxQueuedReadings: beyond that
// accept() waits instead of dropping.
import type { Batch, DeviceEvent, Reading } from '@citysense/proto';
import { EdgeError } from '../errors.ts';
import type { Sink } from '../sink.ts';
import type { SeqAllocator } from '../state/seq.ts';

export interface BatcherOptions {
  edgeId: string;
  maxReadings: number;
  maxAgeMs: number;
  maxQueuedReadings: number;
  seq: SeqAllocator;
  now?: () => number;
  /** Told the number of items held whenever it changes (for the queued gauge). */
  onQueued?: (n: number) => void;
  /** A seal by age failed (the seq could not be persisted); the items stay and the next timer retries. */
  onSealError?: (err: Error) => void;
}

/** Where the uplink gets batches from. */
export interface BatchSource {
  /** The oldest sealed batch; waits for one; null once closed. */
  take(): Promise<Batch | null>;
  /** The batch left the edge's hands (acked or refused for good): its items stop counting. */
  release(batch: Batch): void;
}

interface Waiter {
  n: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class Batcher implements Sink, BatchSource {
  private readings: Reading[] = [];
  private events: DeviceEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly sealed: Batch[] = [];
  private readonly takers: ((b: Batch | null) => void)[] = [];
  private readonly waiters: Waiter[] = [];
  private drained: (() => void)[] = [];
  private held = 0;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly o: BatcherOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Items held: forming, sealed and in flight. */
  get queued(): number {
    return this.held;
  }

  accept(readings: readonly Reading[], events: readonly DeviceEvent[]): Promise<void> {
    const n = readings.length + events.length;
    if (this.closed) return Promise.reject(new EdgeError('EDGE_CLOSED', 'accept() after close()'));
    if (n === 0) return Promise.resolve();
    // FIFO: once anyone waits, later callers queue behind them so arrival order is kept.
    if (this.waiters.length === 0 && this.fits(n)) {
      this.add(readings, events);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({
        n,
        resolve: () => {
          this.add(readings, events);
          resolve();
        },
        reject,
      });
    });
  }

  /** Seals the forming batch now, whatever its size or age. */
  seal(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.readings.length === 0 && this.events.length === 0) return;
    const batch: Batch = {
      edgeId: this.o.edgeId,
      seq: this.o.seq.next(),
      createdMs: this.now(),
      readings: this.readings,
      events: this.events,
    };
    this.readings = [];
    this.events = [];
    const taker = this.takers.shift();
    if (taker) taker(batch);
    else this.sealed.push(batch);
  }

  take(): Promise<Batch | null> {
    const b = this.sealed.shift();
    if (b) return Promise.resolve(b);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => this.takers.push(resolve));
  }

  release(batch: Batch): void {
    this.held -= batch.readings.length + batch.events.length;
    this.o.onQueued?.(this.held);
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.n)) this.waiters.shift()!.resolve();
    if (this.held === 0) {
      const d = this.drained;
      this.drained = [];
      for (const f of d) f();
    }
  }

  /** Seals what is forming and resolves when every item accepted so far has been released. */
  flush(): Promise<void> {
    this.seal();
    if (this.held === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  /** Refuses further items; waiting accept() calls reject (their senders get no PUBACK). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.waiters.splice(0)) w.reject(new EdgeError('EDGE_CLOSED', 'the batcher closed while this message waited for room'));
    for (const t of this.takers.splice(0)) t(null);
  }

  private fits(n: number): boolean {
    // An oversized message is admitted into an empty queue, or it could never get in.
    return this.held + n <= this.o.maxQueuedReadings || this.held === 0;
  }

  private add(readings: readonly Reading[], events: readonly DeviceEvent[]): void {
    this.held += readings.length + events.length;
    this.o.onQueued?.(this.held);
    let alarm = false;
    for (const r of readings) {
      this.readings.push(r);
      this.afterAdd();
    }
    for (const e of events) {
      this.events.push(e);
      if (e.priority === 'alarm') alarm = true;
      this.afterAdd();
    }
    // An alarm must not wait for the age limit: it leaves with whatever was forming.
    if (alarm) this.seal();
  }

  private afterAdd(): void {
    const size = this.readings.length + this.events.length;
    if (size >= this.o.maxReadings) this.seal();
    else if (size === 1 && !this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        try {
          this.seal();
        } catch (err) {
          this.o.onSealError?.(err as Error);
          this.timer ??= setTimeout(() => this.afterAdd(), this.o.maxAgeMs);
        }
      }, this.o.maxAgeMs);
    }
  }
}
