// The in-memory reference queue: the same engine and the same record bytes as the disk queue (so quotas,
// drops and batches behave identically), kept in memory. Nothing survives the process; use it in tests
// and where losing the queue on restart is acceptable. Refused batches are kept in `deadLetters` (the
// last 100).
import type { Batch } from '@citysense/proto';
import { DEFAULTS, type QueueOptions } from './contract.ts';
import { BufferedLog } from './log.ts';
import { QueueEngine } from './engine.ts';

class MemoryLog extends BufferedLog {
  private readonly store = new Map<number, { off: number; buf: Buffer }[]>();

  protected async createStored(seg: number): Promise<void> {
    this.store.set(seg, []);
  }
  protected async writeStored(seg: number, bufs: Buffer[], pos: number): Promise<void> {
    const list = this.store.get(seg)!;
    for (const b of bufs) {
      list.push({ off: pos, buf: b });
      pos += b.length;
    }
  }
  protected async syncStored(): Promise<void> {}
  protected async truncateStored(seg: number, size: number): Promise<void> {
    const list = this.store.get(seg);
    if (list) this.store.set(seg, list.filter((e) => e.off + e.buf.length <= size));
  }
  protected async readStored(seg: number, off: number, end: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (const e of this.store.get(seg) ?? []) {
      const eEnd = e.off + e.buf.length;
      if (eEnd <= off || e.off >= end) continue;
      parts.push(e.buf.subarray(Math.max(0, off - e.off), Math.min(e.buf.length, end - e.off)));
    }
    return Buffer.concat(parts);
  }
  protected async removeStored(seg: number): Promise<void> {
    this.store.delete(seg);
  }
  protected async closeStored(): Promise<void> {}
}

export class MemoryQueue extends QueueEngine {
  readonly deadLetters: { batch: Batch; reason: string }[] = [];

  constructor(o: QueueOptions) {
    const log = new MemoryLog({
      segmentBytes: o.segmentBytes ?? DEFAULTS.segmentBytes,
      commitIntervalMs: 0,
      writeRetryMs: o.writeRetryMs ?? DEFAULTS.writeRetryMs,
      injectWriteFault: o.injectWriteFault,
    });
    let self: MemoryQueue | undefined;
    super(o, log, async (batch, _encoded, reason) => {
      self!.deadLetters.push({ batch, reason });
      if (self!.deadLetters.length > 100) self!.deadLetters.shift();
    });
    self = this;
  }
}

export function createMemoryQueue(o: QueueOptions): MemoryQueue {
  return new MemoryQueue(o);
}
