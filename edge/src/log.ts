// Logging. Bad input must not flood the log: warnings about it go through a limiter that prints at most
// N lines per reason per interval and then reports how many it held back.
import { pino, type Logger, type DestinationStream } from 'pino';

// Secrets must never reach a log line, even when an object carrying one is logged whole.
const REDACT = ['password', '*.password', 'secret', '*.secret', 'token', '*.token', 'authorization', '*.authorization', 'headers.authorization'];

export function createLogger(opts: { level: string; edgeId: string }, destination?: DestinationStream): Logger {
  return pino(
    { level: opts.level, base: { edgeId: opts.edgeId }, redact: { paths: REDACT, censor: '[redacted]' } },
    destination,
  );
}

export type RateLimitedWarn = (reason: string, obj: Record<string, unknown>, msg: string) => void;

export function rateLimitedWarn(
  log: Logger,
  opts: { linesPerInterval: number; intervalMs: number; now?: () => number },
): RateLimitedWarn {
  const now = opts.now ?? Date.now;
  const windows = new Map<string, { start: number; lines: number; suppressed: number }>();
  return (reason, obj, msg) => {
    const t = now();
    let w = windows.get(reason);
    if (!w || t - w.start >= opts.intervalMs) {
      const suppressed = w?.suppressed ?? 0;
      w = { start: t, lines: 0, suppressed: 0 };
      windows.set(reason, w);
      if (suppressed > 0) obj = { ...obj, suppressed };
    }
    if (w.lines < opts.linesPerInterval) {
      w.lines++;
      log.warn({ reason, ...obj }, msg);
    } else {
      w.suppressed++;
    }
  };
}
