// Where operator passwords are hashed, and how many at once. A scrypt hash at OWASP's parameters holds a
// core and 128 MiB for a few hundred ms. On the event loop (the old scryptSync) a stream of wrong logins
// delayed alarm uploads by half a second; on libuv's thread pool it would still take cores from
// ingestion and a thread from the pool that gunzips uploads. So hashes run in `concurrent` worker threads
// of their own (default 1: on a two-core box one core stays with the event loop), each at the lowest CPU
// priority (Linux nice 19 for that thread only, operators.login.hashNice): when ingestion needs the CPU,
// the kernel gives it to ingestion, and logins wait; when the CPU is idle they run at full speed.
//
// At most `queued` logins wait for a worker; past that a login is refused at once (503 LOGIN_BUSY)
// without costing a hash. Logins from an address the operator has logged in from before (`priority`)
// wait ahead of the others and are not refused for a full queue, so a flood from elsewhere does not keep
// the real operator out.
import { timingSafeEqual } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { CloudError } from '../errors.ts';
import { parseHash, scryptMaxmem } from './passwords.ts';

// Plain JavaScript (eval'd, CommonJS): no TypeScript loader is needed in the thread, however the cloud
// was started. Renicing a thread by its id is Linux's per-thread nice; elsewhere the step is skipped.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { scryptSync } = require('node:crypto');
if (workerData.nice > 0) {
  try {
    const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
    require('node:os').setPriority(tid, workerData.nice);
  } catch {}
}
parentPort.on('message', (m) => {
  try {
    const key = scryptSync(m.password, Buffer.from(m.salt), m.len, { N: m.N, r: m.r, p: m.p, maxmem: m.maxmem });
    parentPort.postMessage({ id: m.id, key });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String(err && err.message) });
  }
});
`;

interface Job {
  id: number;
  password: string;
  salt: Buffer;
  len: number;
  N: number;
  r: number;
  p: number;
  resolve(key: Buffer): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
}

export interface HashPoolOptions {
  concurrent: number;
  queued: number;
  retryAfterSeconds: number;
  /** Nice value of the hashing threads (0: as the process). */
  nice: number;
}

export class HashPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Job[] = [];
  private readonly urgent: Job[] = [];
  private nextId = 0;
  private closed = false;

  constructor(private readonly o: HashPoolOptions) {}

  /**
   * Whether `password` matches the stored hash, computed in a hashing thread. Throws LOGIN_BUSY when
   * the queue is full (never for `priority`).
   */
  async verify(password: string, stored: string, priority = false): Promise<boolean> {
    const h = parseHash(stored);
    if (!h) return false;
    if (this.closed) throw new CloudError('LOGIN_BUSY', 'the cloud is closing', this.o.retryAfterSeconds);
    const key = await new Promise<Buffer>((resolve, reject) => {
      const job: Job = { id: ++this.nextId, password, salt: h.salt, len: h.hash.length, N: h.N, r: h.r, p: h.p, resolve, reject };
      const slot = this.freeSlot();
      if (slot) return this.start(slot, job);
      if (priority) return void this.urgent.push(job);
      if (this.waiting.length >= this.o.queued) {
        return reject(new CloudError('LOGIN_BUSY', `${this.o.concurrent} hashing, ${this.waiting.length} waiting`, this.o.retryAfterSeconds));
      }
      this.waiting.push(job);
    });
    return key.length === h.hash.length && timingSafeEqual(key, h.hash);
  }

  private freeSlot(): Slot | undefined {
    const idle = this.slots.find((s) => !s.job);
    if (idle) return idle;
    if (this.slots.length >= this.o.concurrent) return undefined;
    // Threads start on first use: a cloud nobody logs in to runs none.
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { nice: this.o.nice } });
    worker.unref();
    const slot: Slot = { worker, job: undefined };
    worker.on('message', (m: { id: number; key?: Uint8Array; error?: string }) => {
      const job = slot.job;
      slot.job = undefined;
      if (job && job.id === m.id) {
        if (m.key) job.resolve(Buffer.from(m.key));
        else job.reject(new Error(`scrypt failed: ${m.error}`));
      }
      this.pump(slot);
    });
    worker.on('error', (err) => this.lose(slot, err));
    worker.on('exit', (code) => this.lose(slot, new Error(`hashing thread exited with ${code}`)));
    this.slots.push(slot);
    return slot;
  }

  private start(slot: Slot, job: Job): void {
    slot.job = job;
    const { id, password, len, N, r, p } = job;
    slot.worker.postMessage({ id, password, salt: job.salt, len, N, r, p, maxmem: scryptMaxmem({ N, r, p }) });
  }

  private pump(slot: Slot): void {
    const next = this.urgent.shift() ?? this.waiting.shift();
    if (next) this.start(slot, next);
  }

  /** A thread that died: its job fails, the slot is dropped (the next login starts a new thread). */
  private lose(slot: Slot, err: Error): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    slot.job?.reject(err);
    slot.job = undefined;
    if (this.closed) return;
    const next = this.urgent.length || this.waiting.length ? this.freeSlot() : undefined;
    if (next) this.pump(next);
  }

  get stats(): { threads: number; running: number; waiting: number } {
    return { threads: this.slots.length, running: this.slots.filter((s) => s.job).length, waiting: this.waiting.length + this.urgent.length };
  }

  async close(): Promise<void> {
    this.closed = true;
    const err = new CloudError('LOGIN_BUSY', 'the cloud is closing', this.o.retryAfterSeconds);
    for (const j of [...this.urgent.splice(0), ...this.waiting.splice(0)]) j.reject(err);
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }
}
