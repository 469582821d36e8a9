// The cloud's configuration: the only truth about what can be set. Every key has a default, unknown keys
// are refused (a typo must not silently fall back to a default), and the parsed result is frozen.
import { z } from 'zod';

const MiB = 1024 * 1024;

const EdgeSchema = z.strictObject({
  /** The edge's id: batches it uploads must carry this edge_id. */
  id: z.string().min(1).max(128),
  /** Hex SHA-256 of the edge's bearer token, so config files hold no plain secret. */
  tokenSha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits (sha256 of the token)')
    .optional(),
  /** Name of an environment variable holding the plain token (for deployments with a secret store). */
  tokenEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional(),
  /** Subject CN of the edge's client certificate, when it is not the edge id itself. */
  certCn: z.string().min(1).optional(),
});

export const CloudConfigSchema = z
  .strictObject({
    /** The cloud's durable state: per-edge seq marks, alert state, webhook outbox (SQLite; ':memory:' for tests). */
    store: z.strictObject({ path: z.string().min(1).default('.data/cloud/citysense-cloud.db') }).prefault({}),
    listen: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        /** 0 picks a free port. */
        port: z.number().int().min(0).max(65535).default(8080),
        /** PEM file paths; with `tls` set the cloud listens on HTTPS only. */
        tls: z
          .strictObject({
            cert: z.string().min(1),
            key: z.string().min(1),
            /** CA that signs edge client certificates (needed for auth.mode mtls / token-or-mtls). */
            ca: z.string().min(1).optional(),
          })
          .optional(),
      })
      .prefault({}),
    influx: z
      .strictObject({
        /** Base URL of an InfluxDB 1.x HTTP API, or the v1 compatibility API of 2.x/3.x. */
        url: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:8086'),
        database: z
          .string()
          .min(1)
          .max(64)
          .regex(/^[^"\\\n\r\t]+$/, 'must not contain quotes, backslashes or control characters')
          .default('citysense'),
        /** Prefer INFLUX_USERNAME / INFLUX_PASSWORD over writing these into the file. */
        username: z.string().optional(),
        password: z.string().optional(),
        /** A write or ping that takes longer counts as InfluxDB unavailable. */
        timeoutMs: z.number().int().min(100).max(600_000).default(10_000),
        /** Immediate extra attempts after a 5xx or a connection error, before answering the edge 503. */
        writeRetries: z.number().int().min(0).max(5).default(1),
        /** Sent as Retry-After (seconds) when InfluxDB is unavailable. */
        retryAfterSeconds: z.number().int().min(1).max(3600).default(5),
        /** Keep-alive sockets to InfluxDB. */
        maxSockets: z.number().int().min(1).max(1024).default(16),
        /** Batch writes to InfluxDB at a time; more batches wait (limits.maxQueuedBatches) or get 503 INGEST_BUSY. */
        maxConcurrentWrites: z.number().int().min(1).max(256).default(4),
      })
      .prefault({}),
    auth: z
      .strictObject({
        mode: z.enum(['token', 'mtls', 'token-or-mtls']).default('token'),
        edges: z.array(EdgeSchema).default([]),
      })
      .prefault({}),
    limits: z
      .strictObject({
        /** Request body as received (compressed size for gzip). */
        bodyBytes: z.number().int().min(1024).default(16 * MiB),
        /** Body after gunzip: the guard against gzip bombs. */
        inflatedBytes: z.number().int().min(1024).default(64 * MiB),
        maxReadingsPerBatch: z.number().int().min(1).default(50_000),
        maxEventsPerBatch: z.number().int().min(1).default(10_000),
        /** Longest text metric, quality flag or event attrs (as JSON); InfluxDB allows 64 KiB per string. */
        maxStringBytes: z.number().int().min(16).max(65_536).default(16_384),
        /** Earliest plausible reading time (default 2000-01-01T00:00:00Z). */
        minTimestampMs: z.number().int().default(946_684_800_000),
        /** How far past the cloud's clock a reading's time may be. */
        maxFutureSkewMs: z.number().int().min(0).default(10 * 60_000),
        /** Uploads held beyond the ones writing (being read, decoded, waiting for a write slot); more → 503 INGEST_BUSY. */
        maxQueuedBatches: z.number().int().min(0).max(10_000).default(8),
      })
      .prefault({}),
    /** Dedupe by (edge, seq) and per-device continuity (src/ingest/dedupe.ts, continuity.ts). */
    ingest: z
      .strictObject({
        /** Processed-seq ranges remembered per edge; past it the lowest hole is taken as processed. */
        seqRangesPerEdge: z.number().int().min(16).max(1_000_000).default(4096),
        /** A deviceSeq hole not filled within this time counts as a gap. */
        gapGraceMs: z.number().int().min(0).default(10 * 60_000),
        /** deviceSeq holes remembered per device; past it the lowest is forgotten (counted as a gap). */
        gapRangesPerDevice: z.number().int().min(1).max(10_000).default(64),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** Bad-input warnings: at most this many lines per reason per interval, then a suppressed count. */
        warnPerInterval: z.number().int().min(1).default(10),
        warnIntervalMs: z.number().int().min(1000).default(60_000),
      })
      .prefault({}),
    metrics: z
      .strictObject({
        /** Node process metrics (CPU, memory, event loop) beside the cloud's own. */
        process: z.boolean().default(true),
        /** Distinct device ids used as label values (gaps, duplicates, drops) before "other". */
        maxDeviceLabels: z.number().int().min(1).default(10_000),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    const needsToken = c.auth.mode === 'token';
    const needsCa = c.auth.mode !== 'token';
    if (needsCa && !c.listen.tls?.ca) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'mode'],
        message: `auth.mode ${c.auth.mode} needs listen.tls with cert, key and ca (the CA that signs edge certificates)`,
      });
    }
    const seen = new Set<string>();
    c.auth.edges.forEach((e, i) => {
      if (seen.has(e.id)) ctx.addIssue({ code: 'custom', path: ['auth', 'edges', i, 'id'], message: `edge id ${e.id} is listed twice` });
      seen.add(e.id);
      if (e.tokenSha256 && e.tokenEnv) {
        ctx.addIssue({ code: 'custom', path: ['auth', 'edges', i], message: 'give tokenSha256 or tokenEnv, not both' });
      }
      if (needsToken && !e.tokenSha256 && !e.tokenEnv) {
        ctx.addIssue({ code: 'custom', path: ['auth', 'edges', i], message: 'auth.mode token needs tokenSha256 or tokenEnv for each edge' });
      }
    });
  });

/** What a config file may contain (every key optional). */
export type CloudConfigInput = z.input<typeof CloudConfigSchema>;
/** The validated, defaulted configuration. */
export type CloudConfig = Readonly<z.output<typeof CloudConfigSchema>>;
export type EdgeConfig = z.output<typeof EdgeSchema>;
