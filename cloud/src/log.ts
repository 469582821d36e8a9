// The cloud's logger, and a bound on how many lines bad input may cost: a misbehaving edge sending the
// same bad batch a thousand times a second must not drown the log (or the disk) in identical lines.
import { pino, type DestinationStream, type Logger } from 'pino';
import type { CloudConfig } from './config/schema.ts';

export type { Logger };

/**
 * Credentials never reach a log line. The code logs none on purpose; these paths catch the accidents
 * (a `log.info({ req })`, an error carrying a request's headers or body). fast-redact paths: one level
 * of `*` each, so the common nestings are listed.
 */
export const REDACT_PATHS = [
  'authorization',
  'cookie',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'request.headers.authorization',
  'err.headers.authorization',
  '*.authorization',
  'token',
  '*.token',
  'access_token',
  '*.access_token',
  'password',
  '*.password',
  'body.password',
  'req.body.password',
  'passwordHash',
  '*.passwordHash',
  'secret',
  '*.secret',
];

export function createLogger(cfg: CloudConfig['log'], destination?: DestinationStream): Logger {
  const options = {
    name: 'citysense-cloud',
    level: cfg.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // fastify's request serializer (used if request logging is ever turned on) logs the URL: without
    // the values of credential-like query parameters.
    serializers: { req: (r: { method?: string; url?: string; ip?: string }) => ({ method: r.method, url: r.url === undefined ? undefined : safeUrl(r.url), ip: r.ip }) },
  };
  return destination ? pino(options, destination) : pino(options);
}

const SECRET_PARAM = /token|passw|secret|key|auth|sig|credential/i;

/** A URL for logs and error messages: the values of credential-like query parameters replaced. */
export function safeUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url
    .slice(q + 1)
    .split('&')
    .map((kv) => {
      const eq = kv.indexOf('=');
      const k = eq < 0 ? kv : kv.slice(0, eq);
      let name = k;
      try {
        name = decodeURIComponent(k.replace(/\+/g, ' '));
      } catch {
        /* a malformed escape: match on the raw text */
      }
      return SECRET_PARAM.test(name) && eq >= 0 ? `${k}=[redacted]` : kv;
    });
  return `${url.slice(0, q)}?${parts.join('&')}`;
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
