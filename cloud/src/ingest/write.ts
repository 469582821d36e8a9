// Posts line protocol to InfluxDB's v1 /write endpoint over keep-alive connections and says what became
// of it. Only the v1 HTTP API is used, so InfluxDB 1.8 and the v1 compatibility API of 2.x/3.x both work.
import http from 'node:http';
import https from 'node:https';
import { WRITE_PRECISION } from './line-protocol.ts';

export interface InfluxWriterOptions {
  url: string;
  database: string;
  username?: string | undefined;
  password?: string | undefined;
  timeoutMs: number;
  /** Immediate extra attempts after a 5xx or a connection failure. */
  retries: number;
  maxSockets: number;
  /** Creates the database (idempotent); called once when a write finds it missing. */
  createDatabase: () => Promise<void>;
}

export type WriteOutcome =
  /** InfluxDB answered 204: every line is stored. */
  | { kind: 'written'; attempts: number }
  /** InfluxDB answered 400: some or all lines were refused (see partial-write.ts), retrying will not help. */
  | { kind: 'refused'; status: number; message: string; attempts: number }
  /** Not stored, or not known to be: retry later. `auth` = InfluxDB refused our credentials. */
  | { kind: 'unavailable'; status?: number; message: string; auth: boolean; attempts: number };

interface RawAnswer {
  status: number;
  body: string;
}

/** Bodies of InfluxDB errors are short JSON; a proxy's HTML page is cut rather than buffered whole. */
const MAX_ERROR_BODY = 64 * 1024;

export class InfluxWriter {
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly writeUrl: URL;
  private readonly authHeader: string | undefined;

  constructor(private readonly opts: InfluxWriterOptions) {
    const base = new URL(opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
    this.writeUrl = new URL('write', base);
    this.writeUrl.searchParams.set('db', opts.database);
    // Nanoseconds: events and alert changes sit at an offset inside their millisecond (line-protocol.ts).
    this.writeUrl.searchParams.set('precision', WRITE_PRECISION);
    const secure = base.protocol === 'https:';
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets };
    this.agent = secure ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
    this.request = secure ? https.request : http.request;
    // A header rather than u=/p= query parameters, so the password never appears in an access log.
    this.authHeader =
      opts.username !== undefined
        ? `Basic ${Buffer.from(`${opts.username}:${opts.password ?? ''}`).toString('base64')}`
        : undefined;
  }

  async write(lines: string): Promise<WriteOutcome> {
    const body = Buffer.from(lines);
    let createdDatabase = false;
    let attempts = 0;
    for (;;) {
      attempts++;
      let answer: RawAnswer;
      try {
        answer = await this.post(body);
      } catch (err) {
        if (attempts <= this.opts.retries) continue;
        return { kind: 'unavailable', message: `InfluxDB at ${this.opts.url}: ${describeError(err)}`, auth: false, attempts };
      }
      const { status } = answer;
      if (status === 204 || status === 200) return { kind: 'written', attempts };
      const message = errorMessage(answer);
      if (status === 404 && /database not found/i.test(message) && !createdDatabase) {
        createdDatabase = true;
        try {
          await this.opts.createDatabase();
        } catch (err) {
          return { kind: 'unavailable', status, message: `database ${this.opts.database} is missing and could not be created: ${(err as Error).message}`, auth: false, attempts };
        }
        continue;
      }
      if (status === 400) return { kind: 'refused', status, message, attempts };
      if (status === 401 || status === 403) return { kind: 'unavailable', status, message, auth: true, attempts };
      // 5xx, including 500 "engine: error syncing wal" under load, which often follows a write that was
      // stored: writing the same points again overwrites them with themselves, so retrying is safe.
      if (status >= 500 && attempts <= this.opts.retries) continue;
      return { kind: 'unavailable', status, message: `InfluxDB answered ${status}: ${message}`, auth: false, attempts };
    }
  }

  private post(body: Buffer): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = {
        'content-type': 'text/plain; charset=utf-8',
        'content-length': body.length,
      };
      if (this.authHeader) headers.authorization = this.authHeader;
      const req = this.request(this.writeUrl, { method: 'POST', agent: this.agent, headers, timeout: this.opts.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < MAX_ERROR_BODY) chunks.push(c);
          size += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.opts.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Connection errors to a dual-stack name come as an AggregateError with an empty message. */
export function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.message || e?.code || String(err);
}

function errorMessage(a: RawAnswer): string {
  try {
    const parsed = JSON.parse(a.body) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
  } catch {
    // not JSON: a proxy or an unexpected server; its text is the best message there is
  }
  return a.body.trim().slice(0, 500) || `HTTP ${a.status}`;
}
