// The durable queue: the engine (engine.ts) over segment files in `dir`, written with fs.promises and
// made durable by fdatasync in libuv's thread pool (the event loop never blocks on a sync), with group
// commit (log.ts). On open every segment is scanned: valid frames are replayed in order, a torn tail (a
// crash mid-write) is counted and cut off, a corrupt region mid-segment is counted and skipped. Appends
// always go to a fresh segment after the recovered ones. docs/queue.md has the format and the window.
import { mkdir, open, readdir, readFile, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULTS, QueueError, type QueueOptions } from './contract.ts';
import { BufferedLog, type LogOptions } from './log.ts';
import { QueueEngine, type DeadLetterWriter } from './engine.ts';
import { scanFrames } from './record.ts';

const SEGMENT = /^seg-(\d{12})\.log$/;
const segName = (seg: number) => `seg-${String(seg).padStart(12, '0')}.log`;

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeDurably(path: string, data: Uint8Array | string): Promise<void> {
  const fh = await open(path, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

class FileLog extends BufferedLog {
  private readonly handles = new Map<number, FileHandle>();

  constructor(
    private readonly dir: string,
    o: LogOptions,
  ) {
    super(o);
  }

  private path(seg: number): string {
    return join(this.dir, segName(seg));
  }

  private async handle(seg: number): Promise<FileHandle> {
    let fh = this.handles.get(seg);
    if (!fh) {
      fh = await open(this.path(seg), 'r+');
      this.handles.set(seg, fh);
    }
    return fh;
  }

  protected async createStored(seg: number): Promise<void> {
    const fh = await open(this.path(seg), 'w', 0o600);
    this.handles.set(seg, fh);
    await fsyncDir(this.dir); // the new file's name is durable before anything in it counts
  }
  protected async writeStored(seg: number, bufs: Buffer[], pos: number): Promise<void> {
    const fh = await this.handle(seg);
    let expected = 0;
    for (const b of bufs) expected += b.length;
    let { bytesWritten } = await fh.writev(bufs, pos);
    if (bytesWritten < expected) {
      // A short write: finish it from where it stopped.
      const all = Buffer.concat(bufs);
      while (bytesWritten < expected) {
        const r = await fh.write(all, bytesWritten, expected - bytesWritten, pos + bytesWritten);
        if (r.bytesWritten === 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
        bytesWritten += r.bytesWritten;
      }
    }
  }
  protected async syncStored(seg: number, active: boolean): Promise<void> {
    const fh = await this.handle(seg);
    await fh.datasync();
    if (!active) {
      this.handles.delete(seg);
      await fh.close();
    }
  }
  protected async truncateStored(seg: number, size: number): Promise<void> {
    await (await this.handle(seg)).truncate(size);
  }
  protected async readStored(seg: number, off: number, end: number): Promise<Buffer> {
    const fh = await open(this.path(seg), 'r');
    try {
      const buf = Buffer.allocUnsafe(end - off);
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, off + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    } finally {
      await fh.close();
    }
  }
  protected async removeStored(seg: number): Promise<void> {
    const fh = this.handles.get(seg);
    this.handles.delete(seg);
    await fh?.close();
    await unlink(this.path(seg));
  }
  protected async closeStored(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(all.map((fh) => fh.close().catch(() => {})));
  }
}

export class DiskQueue extends QueueEngine {
  /** Opens (or creates) the queue in o.dir and replays what is there. */
  static async open(o: QueueOptions): Promise<DiskQueue> {
    const dir = o.dir;
    const deadDir = join(dir, 'dead-letter');
    let names: string[];
    try {
      await mkdir(deadDir, { recursive: true });
      names = await readdir(dir);
    } catch (err) {
      throw new QueueError('QUEUE_UNREADABLE', `${dir}: ${(err as Error).message}`, { cause: err });
    }
    const log = new FileLog(dir, {
      segmentBytes: o.segmentBytes ?? DEFAULTS.segmentBytes,
      commitIntervalMs: o.commitIntervalMs ?? DEFAULTS.commitIntervalMs,
      writeRetryMs: o.writeRetryMs ?? DEFAULTS.writeRetryMs,
      injectWriteFault: o.injectWriteFault,
      onWriteError: (err) => o.log?.error({ err }, 'the queue cannot write to its disk; accept() refuses data (no device acknowledgement) until a retry succeeds'),
      onRecovered: () => o.log?.warn('the queue can write to its disk again'),
    });
    const deadLetter: DeadLetterWriter = async (batch, encoded, reason) => {
      const base = join(deadDir, `seq-${batch.seq}`);
      await writeDurably(`${base}.pb`, encoded);
      const meta = { seq: batch.seq, reason, at: new Date().toISOString(), lane: batch.lane, readings: batch.readings.length, events: batch.events.length, drops: batch.drops ?? [] };
      await writeDurably(`${base}.json`, JSON.stringify(meta) + '\n');
      await fsyncDir(deadDir);
    };
    const q = new DiskQueue(o, log, deadLetter);
    const segs = names
      .map((n) => SEGMENT.exec(n)?.[1])
      .filter((s): s is string => s !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    for (const seg of segs) {
      const path = join(dir, segName(seg));
      const buf = await readFile(path);
      const scan = scanFrames(buf);
      let size = buf.length;
      if (scan.corrupt.length > 0) {
        const bytes = scan.corrupt.reduce((n, c) => n + c.bytes, 0);
        q.countCorrupt(scan.corrupt.length, bytes);
        o.log?.error({ segment: segName(seg), regions: scan.corrupt }, `corrupt records skipped in ${segName(seg)} (${bytes} bytes); what they held cannot be attributed`);
      }
      if (scan.tornTailBytes > 0) {
        q.countCorrupt(1, scan.tornTailBytes);
        o.log?.warn({ segment: segName(seg), bytes: scan.tornTailBytes }, `torn tail of ${segName(seg)} cut off (a write interrupted by a crash; it was never acknowledged)`);
        await truncate(path, scan.validEnd);
        size = scan.validEnd;
      }
      log.adopt(seg, size);
      for (const f of scan.frames) q.replayFrame(seg, f);
    }
    // The deviceSeqs handed out after the last checkpoint are only in the parts written after it.
    const last = q.replayLastState();
    for (const seg of segs) {
      if (last && seg < last.seg) continue;
      const scan = scanFrames(await readFile(join(dir, segName(seg))));
      for (const f of scan.frames) {
        if (f.meta.t !== 'p') continue;
        if (last && seg === last.seg && f.off < last.off) continue;
        q.replayDeviceSeqs(f.body);
      }
    }
    q.finishReplay();
    const s = q.stats();
    o.log?.info(
      { segments: segs.length, telemetry: s.telemetry, alarm: s.alarm, open: s.batchesOpen, lastSeq: s.lastSeq, tornRecords: s.tornRecords },
      'queue opened',
    );
    return q;
  }
}

export function openDiskQueue(o: QueueOptions): Promise<DiskQueue> {
  return DiskQueue.open(o);
}
