// The append-only, segmented log under the queue, with group commit: append() only buffers a frame and
// says where it will live; commit() resolves once every frame appended before the call is durable. One
// write + one sync covers every frame appended while the previous sync ran, so many accept() calls share
// one fdatasync. A failed write or sync (ENOSPC, EIO) rejects the waiting commits, cuts the segment back
// to its last durable size, keeps the frames, and retries them later; until then commit() rejects at once.
// Subclasses supply the storage: files (disk.ts) or memory (memory.ts).

export interface Loc {
  seg: number;
  off: number;
  end: number;
}

interface Pending {
  seg: number;
  off: number;
  buf: Buffer;
}

interface Waiter {
  target: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface LogOptions {
  segmentBytes: number;
  commitIntervalMs: number;
  writeRetryMs: number;
  injectWriteFault?: ((bytes: number) => void) | undefined;
  /** Told of each failed write or sync (for a log line). */
  onWriteError?: (err: Error) => void;
  /** Told when a retry after failures succeeded. */
  onRecovered?: () => void;
}

export abstract class BufferedLog {
  /** Logical size of each segment (durable + pending). */
  protected readonly sizes = new Map<number, number>();
  protected readonly durableSizes = new Map<number, number>();
  private readonly created = new Set<number>();
  private pending: Pending[] = [];
  private appended = 0;
  private durable = 0;
  private waiters: Waiter[] = [];
  private flushing = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Set while the last write or sync failed and its retry has not succeeded. */
  failed: Error | undefined;
  syncs = 0;
  writeErrors = 0;
  active: number;

  constructor(
    protected readonly o: LogOptions,
    /** Segments that already exist (recovered), with their sizes; appends go to a new segment after them. */
    existing: Map<number, number> = new Map(),
  ) {
    let max = 0;
    for (const [seg, size] of existing) {
      this.sizes.set(seg, size);
      this.durableSizes.set(seg, size);
      this.created.add(seg);
      if (seg > max) max = seg;
    }
    this.active = max + 1;
    this.sizes.set(this.active, 0);
    this.durableSizes.set(this.active, 0);
  }

  /** Registers a segment found on disk (recovery), before the first append; appends go after it. */
  adopt(seg: number, size: number): void {
    if (this.appended > 0) throw new Error('adopt() after append()');
    this.sizes.delete(this.active);
    this.durableSizes.delete(this.active);
    this.sizes.set(seg, size);
    this.durableSizes.set(seg, size);
    this.created.add(seg);
    if (seg >= this.active) this.active = seg + 1;
    this.sizes.set(this.active, 0);
    this.durableSizes.set(this.active, 0);
  }

  append(buf: Buffer): Loc {
    if (this.closed) throw new Error('append after close');
    let size = this.sizes.get(this.active)!;
    if (size > 0 && size + buf.length > this.o.segmentBytes) {
      this.active++;
      this.sizes.set(this.active, 0);
      this.durableSizes.set(this.active, 0);
      size = 0;
    }
    const loc = { seg: this.active, off: size, end: size + buf.length };
    this.sizes.set(this.active, loc.end);
    this.pending.push({ seg: this.active, off: size, buf });
    this.appended++;
    return loc;
  }

  commit(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.durable >= this.appended) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ target: this.appended, resolve, reject });
      this.kick();
    });
  }

  /** Bytes [off, end) of a segment, whether durable yet or still pending. */
  async read(seg: number, off: number, end: number): Promise<Buffer> {
    const durable = this.durableSizes.get(seg) ?? this.sizes.get(seg) ?? 0;
    // Snapshot the pending frames now: a flush may move them to the file while we read.
    const tail: Buffer[] = [];
    if (end > durable) {
      for (const p of this.pending) {
        if (p.seg !== seg) continue;
        const pEnd = p.off + p.buf.length;
        if (pEnd <= Math.max(off, durable) || p.off >= end) continue;
        tail.push(p.buf.subarray(Math.max(0, Math.max(off, durable) - p.off), Math.min(p.buf.length, end - p.off)));
      }
    }
    const head = off < durable ? await this.readStored(seg, off, Math.min(end, durable)) : Buffer.alloc(0);
    return tail.length ? Buffer.concat([head, ...tail]) : head;
  }

  segmentIds(): number[] {
    return [...this.sizes.keys()].sort((a, b) => a - b);
  }

  diskBytes(): number {
    let n = 0;
    for (const s of this.sizes.values()) n += s;
    return n;
  }

  async remove(seg: number): Promise<void> {
    if (seg === this.active) throw new Error('cannot remove the active segment');
    if (this.pending.some((p) => p.seg === seg)) return;
    this.sizes.delete(seg);
    this.durableSizes.delete(seg);
    if (this.created.delete(seg)) await this.removeStored(seg);
  }

  /** Writes and syncs what is pending (best effort), then releases the storage. */
  async close(): Promise<void> {
    try {
      await this.commit();
    } catch {
      // already counted and logged; the frames are lost with the process, as after a crash
    }
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const w of this.waiters.splice(0)) w.reject(new Error('log closed'));
    await this.closeStored();
  }

  /** Test hook: stop as a crash would, without writing what is pending. */
  async abandon(): Promise<void> {
    this.closed = true;
    this.pending = [];
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const w of this.waiters.splice(0)) w.reject(new Error('log abandoned'));
    while (this.flushing) await new Promise((r) => setImmediate(r));
    await this.closeStored();
  }

  private kick(): void {
    if (this.flushing || this.failed || this.closed) return;
    this.flushing = true;
    void this.flushLoop();
  }

  private async flushLoop(): Promise<void> {
    try {
      if (this.o.commitIntervalMs > 0) await new Promise((r) => setTimeout(r, this.o.commitIntervalMs));
      while (this.pending.length > 0 && !this.failed && !this.closed) {
        const take = this.pending.length;
        const items = this.pending.slice(0, take);
        const touched = new Map<number, number>(); // seg → new durable size
        try {
          let i = 0;
          while (i < items.length) {
            const seg = items[i]!.seg;
            const pos = items[i]!.off;
            const bufs: Buffer[] = [];
            let bytes = 0;
            while (i < items.length && items[i]!.seg === seg) {
              bufs.push(items[i]!.buf);
              bytes += items[i]!.buf.length;
              i++;
            }
            if (!this.created.has(seg)) {
              await this.createStored(seg);
              this.created.add(seg);
            }
            this.o.injectWriteFault?.(bytes);
            await this.writeStored(seg, bufs, pos);
            touched.set(seg, pos + bytes);
          }
          for (const seg of touched.keys()) await this.syncStored(seg, seg === this.active);
        } catch (err) {
          this.writeErrors++;
          this.failed = err as Error;
          for (const seg of touched.keys()) await this.truncateStored(seg, this.durableSizes.get(seg) ?? 0).catch(() => {});
          // Also the segment whose write failed half-way.
          const segOfFailure = items.find((p) => !touched.has(p.seg))?.seg;
          if (segOfFailure !== undefined && this.created.has(segOfFailure)) {
            await this.truncateStored(segOfFailure, this.durableSizes.get(segOfFailure) ?? 0).catch(() => {});
          }
          this.o.onWriteError?.(err as Error);
          for (const w of this.waiters.splice(0)) w.reject(err as Error);
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.failed = undefined;
            const hadPending = this.pending.length > 0;
            this.kick();
            if (hadPending) void this.commit().then(() => this.o.onRecovered?.(), () => {});
          }, this.o.writeRetryMs);
          this.retryTimer.unref?.();
          return;
        }
        this.pending.splice(0, take);
        for (const [seg, size] of touched) this.durableSizes.set(seg, size);
        this.durable += take;
        this.syncs++;
        const still: Waiter[] = [];
        for (const w of this.waiters) (w.target <= this.durable ? w.resolve() : still.push(w));
        this.waiters = still;
      }
    } finally {
      this.flushing = false;
    }
    // Frames appended during the last sync whose commit() came in after we looked.
    if (this.waiters.length > 0 && !this.failed) this.kick();
  }

  protected abstract createStored(seg: number): Promise<void>;
  protected abstract writeStored(seg: number, bufs: Buffer[], pos: number): Promise<void>;
  /** `active`: the segment still receives appends (a rolled one may be closed after its sync). */
  protected abstract syncStored(seg: number, active: boolean): Promise<void>;
  protected abstract truncateStored(seg: number, size: number): Promise<void>;
  protected abstract readStored(seg: number, off: number, end: number): Promise<Buffer>;
  protected abstract removeStored(seg: number): Promise<void>;
  protected abstract closeStored(): Promise<void>;
}
