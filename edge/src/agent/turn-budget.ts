// Bounds the ingest work of one event-loop turn. Under a flood (thousands of devices, each with a window
// of unacknowledged messages) one poll phase would otherwise run every message that arrived: hundreds of
// milliseconds in which no timer, uplink response, fsync completion or alarm is looked at. Past the
// budget, work waits (FIFO) for the next turns; the device's PUBACK simply comes later, which is the
// backpressure MQTT already has. Hand-written: it is a dozen lines and sits on the hottest path.
export class TurnBudget {
  private used = 0;
  private waiting: (() => void)[] = [];
  private head = 0;
  private pumping = false;

  constructor(private readonly perTurn: number) {}

  /** Runs fn now if this turn has budget left and nobody waits, else in a later turn. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.head === this.waiting.length && this.used < this.perTurn) {
      this.used++;
      this.schedule();
      return fn();
    }
    return new Promise<T>((resolve, reject) => {
      this.waiting.push(() => fn().then(resolve, reject));
      this.schedule();
    });
  }

  /** Work waiting for a later turn. */
  get backlog(): number {
    return this.waiting.length - this.head;
  }

  private schedule(): void {
    if (this.pumping) return;
    this.pumping = true;
    setImmediate(this.pump);
  }

  // setImmediate runs after the turn's I/O callbacks: a new turn's budget, spent first on who waited.
  private readonly pump = (): void => {
    this.pumping = false;
    const n = Math.min(this.perTurn, this.waiting.length - this.head);
    this.used = n;
    const end = this.head + n;
    while (this.head < end) this.waiting[this.head++]!();
    if (this.head === this.waiting.length) {
      this.waiting = [];
      this.head = 0;
    } else if (this.head > 4096) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    // Until a turn passes with nothing used, the next one must reset the count.
    if (n > 0 || this.backlog > 0) this.schedule();
  };
}
