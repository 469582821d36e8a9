// Which reports were already stored, so that a platform's retry (same device, same sequence numbers or
// push id) is answered 200 without storing it twice. Bounded in count and age; the oldest keys go first.
// A key is remembered only once its report is durable: a push that failed is stored when retried.
export class DedupeWindow {
  private readonly seen = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<unknown>>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  has(key: string): boolean {
    const at = this.seen.get(key);
    if (at === undefined) return false;
    if (this.now() - at > this.ttlMs) {
      this.seen.delete(key);
      return false;
    }
    return true;
  }

  remember(key: string): void {
    this.seen.delete(key);
    while (this.seen.size >= this.maxEntries) {
      const oldest = this.seen.keys().next().value as string;
      this.seen.delete(oldest);
    }
    this.seen.set(key, this.now());
  }

  /** The same key pushed twice at once (a retry racing the original) is stored by the first, awaited by the second. */
  pending(key: string): Promise<unknown> | undefined {
    return this.inFlight.get(key);
  }

  track<T>(key: string, p: Promise<T>): Promise<T> {
    this.inFlight.set(key, p);
    const done = () => this.inFlight.delete(key);
    p.then(done, done);
    return p;
  }

  get size(): number {
    return this.seen.size;
  }
}
