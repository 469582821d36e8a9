// Wrong-password throttle per source address, shared by the listeners that check passwords (MQTT,
// HJ 212). After `maxFailures` wrong passwords (or unknown devices) from one address within `windowMs`,
// that address is blocked for `blockMs`: its logins are refused without looking at the password — even a
// right one — so a guesser learns nothing more until the block ends. Keyed by source only, never by
// device: keying by device would let anyone lock a real device out by guessing against its id.
// rate-limiter-flexible's in-memory limiter does the counting (a well-kept library: expiry, blocking and
// fixed windows are its core, and its memory per key is one small record with an unref'd timer).
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

export interface ThrottleLimits {
  /** Wrong passwords from one source within windowMs before it is blocked. */
  maxFailures: number;
  windowMs: number;
  /** How long a blocked source is refused. */
  blockMs: number;
}

export class LoginThrottle {
  private readonly limiter: RateLimiterMemory;

  constructor(private readonly limits: ThrottleLimits) {
    this.limiter = new RateLimiterMemory({ points: limits.maxFailures, duration: limits.windowMs / 1000, blockDuration: limits.blockMs / 1000 });
  }

  /** Ms until the source may try again; 0 when it is not blocked. */
  async blockedFor(source: string): Promise<number> {
    const r = await this.limiter.get(source);
    return r !== null && r.consumedPoints > this.limits.maxFailures ? Math.max(1, r.msBeforeNext) : 0;
  }

  /** Counts a failed login; true when this failure blocked the source. */
  async failed(source: string): Promise<boolean> {
    try {
      await this.limiter.consume(source);
      return false;
    } catch (r) {
      if (r instanceof RateLimiterRes) return true;
      throw r;
    }
  }
}
