// Backpressure: the cloud holds a bounded number of batches, and says "later" for the rest at once.
//
//   - admission: at most `influx.maxConcurrentWrites + limits.maxQueuedBatches` uploads are inside the
//     cloud at a time (from authentication to the answer: body being read, decoded, waiting for a write
//     slot, being written). One more is refused with 503 INGEST_BUSY + Retry-After before its body is
//     read; the edge keeps the batch on its disk and sends it again.
//   - write slots: at most `influx.maxConcurrentWrites` writes to InfluxDB at a time; the others wait in
//     arrival order, at most `limits.maxQueuedBatches` of them, each at most `influx.timeoutMs`
//     (then 503 INGEST_BUSY: InfluxDB is too slow for the load).
//   - alarms first: an upload the edge marks `x-citysense-lane: alarm` may be admitted past the bound, and
//     an alarm-lane batch may write past the write slots, each by at most `alarmReserve`: a fire alarm
//     never queues behind telemetry backlogs (they are what fills the slots when edges drain).
// So memory held for uploads is bounded by (maxConcurrentWrites + maxQueuedBatches + alarmReserve) ×
// limits.inflatedBytes, and InfluxDB sees a bounded number of concurrent writes however many edges drain
// their backlog at once.
import { CloudError } from '../errors.ts';

export interface GateOptions {
  maxWrites: number;
  maxQueued: number;
  /** How long a batch may wait for a write slot. */
  waitMs: number;
  /** Extra admissions and write slots only alarm-lane uploads may take (default 4). */
  alarmReserve?: number;
  /** Called whenever the counts change (gauges). */
  onChange?: (writing: number, waiting: number) => void;
}

interface Waiter {
  alarm: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class IngestGate {
  private admittedCount = 0;
  private writingCount = 0;
  private readonly waiters: Waiter[] = [];

  constructor(private readonly opts: GateOptions) {}

  get admitted(): number {
    return this.admittedCount;
  }
  get writing(): number {
    return this.writingCount;
  }
  /** Admitted batches that hold no write slot (being read, decoded, or waiting). */
  get waiting(): number {
    return this.admittedCount - this.writingCount;
  }

  private get reserve(): number {
    return this.opts.alarmReserve ?? 4;
  }

  /** Admits one upload, or false when the cloud already holds as many as it may. Pair with leave(). */
  tryAdmit(alarm = false): boolean {
    if (this.admittedCount >= this.opts.maxWrites + this.opts.maxQueued + (alarm ? this.reserve : 0)) return false;
    this.admittedCount++;
    this.changed();
    return true;
  }

  leave(): void {
    if (this.admittedCount > 0) this.admittedCount--;
    this.changed();
  }

  /**
   * Runs fn holding a write slot; waits for one (bounded in number and time) or throws INGEST_BUSY.
   * An alarm-lane batch may use the reserve slots, and otherwise waits ahead of every telemetry batch.
   */
  async withWriteSlot<T>(fn: () => Promise<T>, alarm = false): Promise<T> {
    if (this.writingCount >= this.opts.maxWrites + (alarm ? this.reserve : 0)) {
      if (!alarm && this.waiters.length >= this.opts.maxQueued) {
        throw new CloudError('INGEST_BUSY', `${this.writingCount} writes in flight and ${this.waiters.length} batches waiting`);
      }
      await new Promise<void>((resolve, reject) => {
        const w: Waiter = {
          alarm,
          resolve,
          reject,
          timer: setTimeout(() => {
            const i = this.waiters.indexOf(w);
            if (i >= 0) this.waiters.splice(i, 1);
            reject(new CloudError('INGEST_BUSY', `no InfluxDB write slot within influx.timeoutMs (${this.opts.waitMs} ms)`));
          }, this.opts.waitMs),
        };
        if (alarm) {
          const i = this.waiters.findIndex((x) => !x.alarm);
          this.waiters.splice(i < 0 ? this.waiters.length : i, 0, w);
        } else this.waiters.push(w);
      });
      // The slot was handed over by release(): writingCount already counts this batch.
    } else {
      this.writingCount++;
      this.changed();
    }
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  private release(): void {
    // Past the ordinary slots (an alarm used the reserve), a freed slot is not handed to telemetry.
    const next = this.writingCount > this.opts.maxWrites && !this.waiters[0]?.alarm ? undefined : this.waiters.shift();
    if (next) {
      clearTimeout(next.timer);
      next.resolve();
    } else {
      this.writingCount--;
    }
    this.changed();
  }

  private changed(): void {
    this.opts.onChange?.(this.writingCount, this.waiting);
  }

  /** Refuses every waiter (app closing). */
  close(): void {
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new CloudError('INGEST_BUSY', 'the cloud is shutting down'));
    }
  }
}
