// How many password hashes may run at once, and how many logins may wait for one. A scrypt hash at
// OWASP's parameters holds one core and 128 MiB for a few hundred ms; libuv's thread pool (4 threads)
// also runs the gunzip of every uploaded batch. Unbounded, a stream of logins would take every core and
// thread from ingestion. Bounded to `concurrent` (default 1: one core stays with the event loop on a
// two-core box) with at most `queued` waiting; past that a login is refused at once (503 LOGIN_BUSY)
// without costing a hash. A dozen lines of semaphore here rather than a dependency.
import { CloudError } from '../errors.ts';

export class HashPool {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly concurrent: number,
    private readonly queued: number,
    private readonly retryAfterSeconds: number,
  ) {}

  /** Runs `fn` when a slot is free; throws LOGIN_BUSY when the queue is full. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrent) {
      if (this.waiting.length >= this.queued) {
        throw new CloudError('LOGIN_BUSY', `${this.concurrent} hashing, ${this.queued} waiting`, this.retryAfterSeconds);
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await fn();
    } finally {
      // The slot passes straight to the next waiter (running stays the same), or is freed.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  get stats(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}
