// The cloud's logger, and a bound on how many lines bad input may cost: a misbehaving edge sending the
// same bad batch a thousand times a second must not drown the log (or the disk) in identical lines.
import { pino, type Logger } from 'pino';
import type { CloudConfig } from './config/schema.ts';

export type { Logger };

export function createLogger(cfg: CloudConfig['log']): Logger {
  return pino({
    name: 'citysense-cloud',
    level: cfg.level,
    // Belt and braces: no code path logs these, but a future `log.info({ req })` must not leak a token.
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'token', '*.token', 'password', '*.password'],
      censor: '[redacted]',
    },
  });
}

interface ReasonWindow {
  start: number;
  logged: number;
  suppressed: number;
}

/**
 * Warns at most `perInterval` times per reason per interval. The first line of a new interval carries how
 * many were suppressed in the last one, so the count is never lost, only folded.
 */
export class RateLimitedWarnings {
  private readonly windows = new Map<string, ReasonWindow>();

  constructor(
    private readonly log: Logger,
    private readonly perInterval: number,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  warn(reason: string, fields: Record<string, unknown>, msg: string): void {
    const now = this.now();
    let w = this.windows.get(reason);
    let suppressedBefore = 0;
    if (!w || now - w.start >= this.intervalMs) {
      suppressedBefore = w?.suppressed ?? 0;
      w = { start: now, logged: 0, suppressed: 0 };
      this.windows.set(reason, w);
    }
    if (w.logged >= this.perInterval) {
      w.suppressed++;
      return;
    }
    w.logged++;
    const extra = suppressedBefore ? { suppressed: suppressedBefore, suppressedIntervalMs: this.intervalMs } : {};
    this.log.warn({ reason, ...fields, ...extra }, msg);
  }

  /** Lines suppressed so far in the current interval of `reason` (for tests and shutdown). */
  suppressed(reason: string): number {
    return this.windows.get(reason)?.suppressed ?? 0;
  }

  /** Logs what is still folded, e.g. at shutdown. */
  flush(): void {
    for (const [reason, w] of this.windows) {
      if (w.suppressed) this.log.warn({ reason, suppressed: w.suppressed }, 'bad-input warnings suppressed');
      w.suppressed = 0;
    }
  }
}
