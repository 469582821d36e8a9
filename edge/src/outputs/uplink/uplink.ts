// Sends sealed batches to the cloud: protobuf, gzip, POST /v1/batches; one alarm batch and up to
// `maxInFlight` telemetry batches in flight (the cloud takes seqs in any order: dedupe.ts). A batch
// leaves the edge's hands only when the cloud acknowledged its seq, or refused it for good (400, 413).
// Everything else (network, timeout, 5xx, 429, 401/403, a wrong Ack) is retried with backoff, keeping
// the same seq and body, so the cloud can dedupe a retry of a batch it already stored.
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { gzip as gzipCb, gzipSync } from 'node:zlib';
import { Agent, request } from 'undici';
import type { Logger } from 'pino';
import { decodeAck, encodeBatch, type Ack, type Batch } from '@citysense/proto';
import { EdgeError } from '../../errors.ts';
import type { EdgeMetrics } from '../../metrics.ts';
import type { RateLimitedWarn } from '../../log.ts';
import type { DurableQueue } from '../../queue/index.ts';
import { backoffDelay, sleep, type BackoffOptions } from './backoff.ts';
import type { UplinkHooks } from '../../alerts/local-alerts.ts';

const gzipAsync = promisify(gzipCb);
/**
 * Small bodies (an alarm batch) are compressed inline: tens of µs, against a hop through libuv's thread
 * pool, which is busy with fsyncs and telemetry batches under load. Large ones go to the pool.
 */
const INLINE_GZIP_BYTES = 32 * 1024;
const gzip = (b: Uint8Array): Promise<Buffer> | Buffer => (b.length <= INLINE_GZIP_BYTES ? gzipSync(b) : gzipAsync(b));

export interface UplinkOptions {
  cloudUrl: string;
  token: string | undefined;
  tls: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined } | undefined;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /**
   * Telemetry batches in flight at once. One is bounded by the round trip (encode, gzip, HTTP, the
   * cloud's InfluxDB write, the ack's fsync), not by bandwidth; several overlap those waits.
   */
  maxInFlight?: number;
  retry: BackoffOptions;
}

export type UplinkState = 'unknown' | 'up' | 'down';

export interface UplinkStatus {
  state: UplinkState;
  lastAckAt: number | null;
  lastError: string | null;
}

type Outcome =
  | { kind: 'acked'; ack: Ack }
  | { kind: 'retry'; reason: string; detail: string }
  | { kind: 'refused'; reason: string; detail: string };

function readTlsFile(path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new EdgeError('TLS_FILE_UNREADABLE', `${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** The cloud's error code when it is a plain identifier (bounded label values), else the status. */
function refusalReason(status: number, body: { error?: unknown } | undefined): string {
  const code = body?.error;
  return typeof code === 'string' && /^[A-Za-z0-9_]{1,48}$/.test(code) ? code : `http_${status}`;
}

export class Uplink {
  readonly status: UplinkStatus = { state: 'unknown', lastAckAt: null, lastError: null };
  /**
   * Edge-local alerting (edge/src/alerts/): told of every attempt's outcome, and may add the
   * `edge_notified` attribute to a batch's events before an attempt. Unset: batches go as queued.
   */
  hooks: UplinkHooks | undefined;
  private readonly agent: Agent;
  private readonly url: string;
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly o: UplinkOptions,
    private readonly metrics: EdgeMetrics,
    private readonly log: Logger,
    private readonly warn: RateLimitedWarn,
  ) {
    this.url = new URL('/v1/batches', o.cloudUrl.endsWith('/') ? o.cloudUrl : o.cloudUrl + '/').href;
    const tls = o.tls;
    this.agent = new Agent({
      keepAliveTimeout: o.keepAliveTimeoutMs,
      // One connection per telemetry sender plus the alarm lane's, so an alarm never queues behind them.
      connections: (o.maxInFlight ?? 1) + 1,
      connect: tls ? { ca: readTlsFile(tls.ca), cert: readTlsFile(tls.cert), key: readTlsFile(tls.key) } : undefined,
    });
  }

  /**
   * Starts sending the queue's batches until close(): one sender for the alarm lane and `maxInFlight`
   * for telemetry, so a fire alarm never waits behind a telemetry batch in flight or in retry.
   */
  start(queue: DurableQueue): void {
    const guard = (lane: 'alarm' | 'telemetry') =>
      this.run(queue, lane).catch((err: Error) => {
        this.status.state = 'down';
        this.status.lastError = `uplink (${lane}) stopped: ${err.message}`;
        this.log.fatal({ err, lane }, 'an uplink sender stopped; its lane is not sent until the edge restarts');
      });
    const telemetry = Array.from({ length: Math.max(1, this.o.maxInFlight ?? 1) }, () => guard('telemetry'));
    this.loop ??= Promise.all([guard('alarm'), ...telemetry]).then(() => undefined);
  }

  /** Runs a queue operation until it succeeds or the uplink closes: the disk may refuse writes for a while. */
  private async persist<T>(what: string, op: () => Promise<T>): Promise<T | undefined> {
    for (let attempt = 0; ; attempt++) {
      if (this.stop.signal.aborted) return undefined;
      try {
        return await op();
      } catch (err) {
        this.metrics.uplinkErrors.inc({ reason: 'queue' });
        this.warn('uplink_queue', { what, attempt, err: (err as Error).message }, `the queue could not ${what}, will retry`);
        await sleep(backoffDelay(attempt, this.o.retry), this.stop.signal);
      }
    }
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
    await this.agent.close();
  }

  private async run(queue: DurableQueue, lane: 'alarm' | 'telemetry'): Promise<void> {
    while (!this.stop.signal.aborted) {
      const batch = await this.persist('hand out a batch', () => queue.next(this.stop.signal, lane));
      if (!batch) return;
      let body: Buffer;
      try {
        body = await gzip(encodeBatch(batch));
      } catch (err) {
        // Only a bug gets here (normalised items always encode); the batch goes to the dead letters.
        this.metrics.batchesRefused.inc({ reason: 'encode_failed' });
        this.log.error({ err, seq: batch.seq }, `batch ${batch.seq} could not be encoded; kept in the dead-letter folder`);
        await this.persist('dead-letter a batch', () => queue.refuse(batch.seq, 'encode_failed'));
        continue;
      }
      for (let attempt = 0; ; attempt++) {
        // Closing with a batch in hand: it stays open in the queue and is sent again, same seq, after restart.
        if (this.stop.signal.aborted) return;
        // Edge-local alerting: the events the edge already alerted locally carry edge_notified (on the wire
        // only: the queue keeps the batch as it was persisted; the same seq, a superset of its content).
        const sending = this.hooks ? await this.hooks.beforeAttempt(batch) : batch;
        const outcome = await this.attempt(sending, sending === batch ? body : await gzip(encodeBatch(sending)));
        if (outcome.kind !== 'retry' || outcome.reason !== 'closing') this.hooks?.afterAttempt(batch, outcome.kind === 'acked' ? 'acked' : outcome.kind === 'refused' ? 'refused' : 'failed');
        if (outcome.kind === 'acked') {
          const now = Date.now();
          this.status.state = 'up';
          this.status.lastAckAt = now;
          this.status.lastError = null;
          this.metrics.batchesAcked.inc({ lane });
          this.metrics.readingsAcked.inc(batch.readings.length);
          this.metrics.lastAckTimestamp.set(now / 1000);
          await this.persist('forget an acknowledged batch', () => queue.ack(batch.seq));
          break;
        }
        if (outcome.kind === 'refused') {
          this.metrics.batchesRefused.inc({ reason: outcome.reason });
          this.log.error(
            { seq: batch.seq, reason: outcome.reason, readings: batch.readings.length, events: batch.events.length },
            `the cloud refused batch ${batch.seq} for good; kept in the dead-letter folder: ${outcome.detail}`,
          );
          await this.persist('dead-letter a batch', () => queue.refuse(batch.seq, outcome.reason));
          break;
        }
        if (outcome.reason === 'closing') return;
        this.metrics.uplinkErrors.inc({ reason: outcome.reason });
        this.status.state = 'down';
        this.status.lastError = `${outcome.reason}: ${outcome.detail}`;
        this.warn(`uplink_${outcome.reason}`, { seq: batch.seq, attempt, lane }, `batch ${batch.seq} not delivered, will retry: ${outcome.detail}`);
        await sleep(backoffDelay(attempt, this.o.retry), this.stop.signal);
      }
    }
  }

  private async attempt(batch: Batch, body: Buffer): Promise<Outcome> {
    const headers: Record<string, string> = {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'gzip',
      accept: 'application/x-protobuf',
      // Read before the body: lets the cloud admit an alarm batch ahead of queued telemetry (a hint only;
      // the lane inside the batch is what is stored).
      'x-citysense-lane': batch.lane ?? 'telemetry',
    };
    if (this.o.token) headers.authorization = `Bearer ${this.o.token}`;
    const timeout = AbortSignal.timeout(this.o.requestTimeoutMs);
    const end = this.metrics.uplinkRequestSeconds.startTimer({ lane: batch.lane ?? 'telemetry' });
    this.metrics.batchesSent.inc();
    try {
      const res = await request(this.url, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.agent,
        signal: AbortSignal.any([timeout, this.stop.signal]),
      });
      const buf = Buffer.from(await res.body.arrayBuffer());
      const s = res.statusCode;
      if (s >= 200 && s < 300) {
        let ack: Ack;
        try {
          ack = decodeAck(buf);
        } catch (err) {
          return { kind: 'retry', reason: 'bad_ack', detail: (err as Error).message };
        }
        if (ack.seq !== batch.seq) {
          return { kind: 'retry', reason: 'ack_seq_mismatch', detail: `sent seq ${batch.seq}, the Ack names ${ack.seq}` };
        }
        return { kind: 'acked', ack };
      }
      let json: { error?: unknown; message?: unknown } | undefined;
      try {
        json = JSON.parse(buf.toString('utf8')) as typeof json;
      } catch {
        json = undefined;
      }
      const said = json ? `${String(json.error ?? '')}: ${String(json.message ?? '')}` : buf.toString('utf8', 0, 200);
      const detail = `HTTP ${s} ${said}`.trim();
      if (s === 400 || s === 413) return { kind: 'refused', reason: refusalReason(s, json), detail };
      if (s === 401 || s === 403) {
        return { kind: 'retry', reason: 'unauthorized', detail: `${detail} (check cloud.token / CITYSENSE_EDGE_TOKEN or the client certificate)` };
      }
      if (s === 429) return { kind: 'retry', reason: 'http_429', detail };
      if (s >= 500) return { kind: 'retry', reason: 'http_5xx', detail };
      // Other 4xx (404, 415, ...) mean a wrong cloud.url or version skew: an operator fixes it, keep the data.
      return { kind: 'retry', reason: 'http_4xx', detail: `${detail} (check cloud.url)` };
    } catch (err) {
      if (timeout.aborted) return { kind: 'retry', reason: 'timeout', detail: `no answer within ${this.o.requestTimeoutMs} ms` };
      if (this.stop.signal.aborted) return { kind: 'retry', reason: 'closing', detail: 'the edge is closing' };
      const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
      return { kind: 'retry', reason: 'network', detail: `${e.code ?? e.cause?.code ?? e.name}: ${e.message}` };
    } finally {
      end();
    }
  }
}
