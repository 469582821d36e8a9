// The cloud's configuration: the only truth about what can be set. Every key has a default, unknown keys
// are refused (a typo must not silently fall back to a default), and the parsed result is frozen.
import { z } from 'zod';
import { Duration } from '../alerts/duration.ts';
import { RuleSchema, SEVERITIES, CATEGORIES } from '../alerts/rules.ts';
import { parseHash, SCRYPT_BOUNDS } from '../auth/passwords.ts';

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

// --- alerts, webhooks, operators (issue 5; owner: alert engine) ---

const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

/** Where an alert state change is sent. */
export const WebhookTargetSchema = z
  .strictObject({
    /** Stable id: metrics labels, the outbox, and the edge's `edge_notified` attribute name it. */
    id: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'a target id is lower-case letters, digits, _ . - (at most 64)'),
    url: z.url({ protocol: /^https?$/ }),
    /** HMAC-SHA256 key of X-Citysense-Signature; prefer secretEnv. */
    secret: z.string().min(8).optional(),
    secretEnv: EnvName.optional(),
    /** Which state changes go here; an absent list matches all. */
    match: z
      .strictObject({
        categories: z.array(z.enum(CATEGORIES)).min(1).optional(),
        severities: z.array(z.enum(SEVERITIES)).min(1).optional(),
        districts: z.array(z.string().min(1)).min(1).optional(),
        states: z.array(z.enum(['firing', 'acknowledged', 'resolved'])).min(1).optional(),
      })
      .prefault({}),
    /** One attempt: no complete answer within this is a failed attempt. */
    timeoutMs: z.number().int().min(100).max(120_000).default(5_000),
    /** Attempts before the delivery goes to the dead-letter list. */
    maxAttempts: z.number().int().min(1).max(100).default(10),
    backoff: z
      .strictObject({ initialMs: z.number().int().min(1).default(1_000), maxMs: z.number().int().min(1).default(300_000) })
      .prefault({}),
    /** Storm bound: token bucket per target; deliveries over it wait (never dropped). */
    rateLimit: z
      .strictObject({ perMinute: z.number().positive().default(120), burst: z.number().int().min(1).default(30) })
      .prefault({}),
  })
  .refine((t) => (t.secret === undefined) !== (t.secretEnv === undefined), { message: 'give secret or secretEnv (one of them)' });

export const OperatorSchema = z.strictObject({
  username: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'a username is 1-64 letters, digits, _ . @ -'),
  role: z.enum(['viewer', 'operator', 'admin']),
  /** scrypt$N$r$p$<salt b64>$<hash b64>, made by `npx tsx cloud/src/auth/hash-password.ts <password>`. */
  passwordHash: z
    .string()
    .regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/, 'must be scrypt$N$r$p$salt$hash (see cloud/README.md)')
    .refine((h) => parseHash(h) !== undefined, {
      message: `scrypt parameters out of bounds: N a power of two up to ${SCRYPT_BOUNDS.maxN}, r up to ${SCRYPT_BOUNDS.maxR}, p up to ${SCRYPT_BOUNDS.maxP}, a 16-64 byte hash`,
    }),
});

const Window = (max: number, windowMs: number) =>
  z.strictObject({ max: z.number().int().min(1).max(1_000_000).default(max), windowMs: Duration.default(windowMs) }).prefault({});

const LoginSchema = z
  .strictObject({
    /** Every login attempt from one address (IPv6: its /64), right or wrong. */
    perSource: Window(30, 60_000),
    /** Wrong passwords for one username from one address. */
    perAccountSource: Window(5, 60_000),
    /** Wrong passwords for one username from addresses it has never logged in from (known sources are exempt). */
    perAccount: Window(20, 300_000),
    /** An address an operator logged in from stays known (exempt from perAccount) this long; in memory only. */
    knownSourceTtlMs: Duration.default(30 * 86_400_000),
    maxKnownSources: z.number().int().min(1).max(10_000_000).default(10_000),
    /** Keys (addresses, usernames) each window remembers, least recently used forgotten first. */
    trackedKeys: z.number().int().min(100).max(10_000_000).default(10_000),
    /** Password hashes computed at once, each in a thread of its own (a core and ~128 MiB at the default scrypt cost). */
    maxConcurrentHashes: z.number().int().min(1).max(64).default(1),
    /** CPU priority of the hashing threads (Linux nice, per thread): 19 = only what ingestion leaves; 0 = as the process. */
    hashNice: z.number().int().min(0).max(19).default(19),
    /** Logins waiting for a hash slot; more are refused at once with 503 LOGIN_BUSY. */
    maxQueuedHashes: z.number().int().min(0).max(10_000).default(16),
    /** Retry-After of LOGIN_BUSY, seconds. */
    busyRetryAfterSeconds: z.number().int().min(1).max(3600).default(2),
  })
  .prefault({});

// --- registry, query API, retention (issue 7; owner: registry/query) ---

/** An InfluxDB retention duration: a whole number of h, d or w (at least 1h), or INF. */
const RetentionDuration = z
  .string()
  .regex(/^(INF|inf|[1-9][0-9]{0,5}[hdw])$/, 'a retention is a whole number of h, d or w (e.g. 30d, 26w), or INF');
/** A RESAMPLE FOR window: a whole number of m, h or d. */
const ResampleFor = z.string().regex(/^[1-9][0-9]{0,4}[mhd]$/, 'a window is a whole number of m, h or d (e.g. 10m, 2h)');

const RetentionSchema = z
  .strictObject({
    /** Create the policies and CQs that are missing at start-up; false leaves InfluxDB's as they are. */
    manage: z.boolean().default(true),
    /** Opt-in: change the DURATION of retention policies that already exist (the database's default RP,
     * rollup_1m, rollup_1h) to the values below. Off (default): an existing policy is never shortened,
     * lengthened or replaced; the difference is logged. A database the cloud creates gets `raw` at once. */
    alterExistingPolicies: z.boolean().default(false),
    /** Raw readings: the database's default retention policy (normally autogen) gets this DURATION. */
    raw: RetentionDuration.default('30d'),
    /** Per-minute roll-ups (retention policy rollup_1m, CQs cq_1m_<family>). */
    rollup1m: RetentionDuration.default('180d'),
    /** Per-hour roll-ups (retention policy rollup_1h, CQs cq_1h_<family>). */
    rollup1h: RetentionDuration.default('1095d'),
    /** The 1-minute CQs recompute this far back each run, so readings arriving late (an edge's backlog) are rolled up too. */
    resample1mFor: ResampleFor.default('10m'),
    resample1hFor: ResampleFor.default('2h'),
  })
  .prefault({});

const EdgeIdText = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'an edge id is 1-64 letters, digits, . _ -');

const RegistrySchema = z
  .strictObject({
    /** Folders of device profile files the registry checks devices against (default: the edge's edge/profiles/). */
    profilesDirs: z.array(z.string().min(1)).min(1).optional(),
    /** district → edge: the edge whose registry slice holds a district's devices that name no edge. */
    districtEdges: z.record(z.string().min(1), EdgeIdText).default({}),
    /** The edge for devices that name none and whose district is not in districtEdges. */
    defaultEdge: EdgeIdText.optional(),
    /** A device is online when heard from within this many expected intervals. */
    offlineAfterIntervals: z.number().min(1).max(1000).default(3),
    /** Rows in one POST /v1/devices/import. */
    maxImportRows: z.number().int().min(1).max(1_000_000).default(100_000),
    /** Bytes of one CSV import body. */
    maxImportBytes: z.number().int().min(1024).default(32 * MiB),
    /** GET /v1/devices and GET /v1/audit: most rows per page. */
    maxPageSize: z.number().int().min(1).max(100_000).default(1000),
    /** How often last-heard times are saved to the store. */
    lastSeenFlushMs: z.number().int().min(100).default(10_000),
    /** Devices whose last-heard time is tracked (district summaries). */
    maxTrackedDevices: z.number().int().min(1).default(1_000_000),
    /**
     * The key that seals device verifiers in the store (made with mode 0600 on first start; default: beside
     * the store's database, as registry.key). CITYSENSE_REGISTRY_KEY overrides it. docs/security.md.
     */
    keyFile: z.string().min(1).optional(),
  })
  .prefault({});

const QuerySchema = z
  .strictObject({
    /** Rows of a history query without downsampling (more → truncated: true). */
    maxRows: z.number().int().min(1).max(1_000_000).default(10_000),
    /** Intervals of a downsampled history query (more → 400 QUERY_INVALID). */
    maxBuckets: z.number().int().min(1).max(1_000_000).default(10_000),
    /** Longest range of a history query without `every`. */
    maxRawRangeMs: Duration.default(7 * 86_400_000),
    /** Metrics in one history query. */
    maxMetrics: z.number().int().min(1).max(100).default(16),
    /** /latest looks this far back. */
    latestWindowMs: Duration.default(30 * 86_400_000),
    /** /latest reads at most this many fields of a measurement. */
    maxLatestFields: z.number().int().min(1).max(1000).default(200),
    /** SHOW FIELD KEYS answers are reused this long (a miss refreshes at most every 5 s). */
    fieldCacheMs: Duration.default(60_000),
  })
  .prefault({});

const FAMILY_INTERVALS = { environment: 60_000, fire: 300_000, elevator: 60_000, nbiot: 4 * 3_600_000 };

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
        /** No default (issue 11): a cloud started on an empty config must not write into, or change the
         * retention of, an InfluxDB that happens to listen on 127.0.0.1:8086. */
        url: z.url({
          protocol: /^https?$/,
          error: (iss) =>
            iss.input === undefined
              ? 'no InfluxDB is named: set influx.url (or INFLUX_URL) to the InfluxDB 1.x HTTP API this cloud writes to, e.g. http://127.0.0.1:8086; there is no default, so the cloud never writes into an InfluxDB nobody chose'
              : 'must be an http:// or https:// URL of an InfluxDB 1.x HTTP API',
        }),
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
        /** Retention policies and roll-up continuous queries, applied at start-up (docs/retention.md; owner: registry/query). */
        retention: RetentionSchema,
      })
      // A missing section is parsed as {} so that the missing url is reported with its path and sentence.
      .prefault({} as { url: string }),
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
        // Decode limits (proto/src/wire-limits.ts): checked while the body is scanned, before anything is
        // allocated per item; over any of them the batch is refused whole with 413 and the limit's code.
        /** Readings: row form plus every series' rows. */
        maxReadingsPerBatch: z.number().int().min(1).default(50_000),
        maxEventsPerBatch: z.number().int().min(1).default(10_000),
        /** Entries of the batch's device table. */
        maxDevicesPerBatch: z.number().int().min(1).default(10_000),
        /** Column-form series. */
        maxSeriesPerBatch: z.number().int().min(1).default(10_000),
        /** Entries of the batch's metric-name table. */
        maxKeysPerBatch: z.number().int().min(1).default(1_000),
        /** Every repeated scalar: row values, column entries, series timestamps, quality flags, device_seq deltas. */
        maxValuesPerBatch: z.number().int().min(1).default(1_000_000),
        /** Values of one reading, columns of one series. */
        maxMetricsPerReading: z.number().int().min(1).default(256),
        /** Tags of one device, reading or series; attrs of one event. */
        maxTagsPerItem: z.number().int().min(1).default(64),
        maxDropReportsPerBatch: z.number().int().min(1).default(10_000),
        /** Any one string on the wire (ids, names, tags, text values), in bytes; per-value checks use maxStringBytes. */
        maxWireStringBytes: z.number().int().min(256).default(65_536),
        /** Longest text metric, quality flag or event attrs (as JSON); InfluxDB allows 64 KiB per string. */
        maxStringBytes: z.number().int().min(16).max(65_536).default(16_384),
        /** Earliest plausible reading time (default 2000-01-01T00:00:00Z). */
        minTimestampMs: z.number().int().default(946_684_800_000),
        /** How far past the cloud's clock a reading's time may be. */
        maxFutureSkewMs: z.number().int().min(0).default(10 * 60_000),
        /** Uploads held beyond the ones writing (being read, decoded, waiting for a write slot); more → 503 INGEST_BUSY. */
        maxQueuedBatches: z.number().int().min(0).max(10_000).default(8),
        /** Extra uploads and InfluxDB writes only alarm-lane batches may use, so alarms never queue behind telemetry. */
        alarmReservedBatches: z.number().int().min(0).max(1_000).default(4),
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
    alerts: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Rule files or directories (YAML/JSON); default: the rules shipped in cloud/rules/. */
        rulesFiles: z.array(z.string().min(1)).optional(),
        /** Rules written into the config itself, after those of the files. */
        rules: z.array(RuleSchema).default([]),
        /** Expected reporting interval per family, for offline rules that give neither after nor expectedInterval. */
        expectedIntervalMs: z
          .strictObject({
            environment: z.number().int().min(1000).default(FAMILY_INTERVALS.environment),
            fire: z.number().int().min(1000).default(FAMILY_INTERVALS.fire),
            elevator: z.number().int().min(1000).default(FAMILY_INTERVALS.elevator),
            nbiot: z.number().int().min(1000).default(FAMILY_INTERVALS.nbiot),
          })
          .prefault({}),
        /** How often offline rules and autoResolveAfter are checked (wall clock). */
        checkIntervalMs: z.number().int().min(100).default(10_000),
        /** Flapping: this many firings of one rule × device within windowMs mark the alert flapping; it then
         * resolves only after its clear condition held for quietMs. */
        flapping: z
          .strictObject({
            maxFirings: z.number().int().min(2).default(4),
            windowMs: Duration.default(3_600_000),
            quietMs: Duration.default(900_000),
          })
          .prefault({}),
        /** Rule × device series tracked in memory and the store (pending, firing, rate windows). */
        maxSeries: z.number().int().min(100).default(200_000),
        /** Devices remembered for offline rules. */
        maxDevices: z.number().int().min(100).default(200_000),
        /** Samples kept per series for rate rules (thinned beyond it). */
        maxRateSamples: z.number().int().min(4).max(10_000).default(120),
        /** GET /v1/alerts: most rows per page. */
        maxPageSize: z.number().int().min(1).max(10_000).default(500),
        stream: z
          .strictObject({
            heartbeatMs: z.number().int().min(1000).default(15_000),
            /** A client whose unsent bytes exceed this is disconnected (it resumes with Last-Event-ID). */
            maxBufferedBytes: z.number().int().min(1024).default(1024 * 1024),
            maxClients: z.number().int().min(1).default(100),
            /** Streams one operator may hold at once (tabs, wall screens); more get 429 STREAM_OPERATOR_FULL. */
            maxClientsPerOperator: z.number().int().min(1).default(5),
            /** Most state changes replayed per read of the store. */
            replayChunk: z.number().int().min(1).default(500),
          })
          .prefault({}),
      })
      .prefault({}),
    webhooks: z
      .strictObject({
        targets: z.array(WebhookTargetSchema).default([]),
        /** With CITYSENSE_WEBHOOK_URL set, the four demo targets post there (contracts.md). */
        demoTargetsFromEnv: z.boolean().default(true),
        /** Deliveries in flight at once, all targets together. */
        maxConcurrent: z.number().int().min(1).max(1000).default(16),
        /** How often the outbox is polled for due deliveries (new ones start at once). */
        pollIntervalMs: z.number().int().min(10).default(1_000),
        /** Delivered rows older than this are deleted from the outbox (dead letters are kept). */
        retainDeliveredMs: Duration.default(7 * 86_400_000),
      })
      .prefault({}),
    /** The device registry (issue 7). */
    registry: RegistrySchema,
    /** The query API (issue 7). */
    query: QuerySchema,
    operators: z
      .strictObject({
        users: z.array(OperatorSchema).default([]),
        /** Adds the demo operators of contracts.md (admin, duty, viewer): for the demo stack only. */
        demoUsers: z.boolean().default(false),
        /** Environment variable with the HMAC key of operator tokens; unset: a random key per process. */
        tokenSecretEnv: EnvName.default('CITYSENSE_AUTH_SECRET'),
        tokenTtl: Duration.default(12 * 3_600_000),
        /** How often revocations of tokens that have expired anyway are deleted from the store. */
        revocationSweepMs: Duration.default(3_600_000),
        /** Password guessing (docs/security.md § Operator authentication). */
        login: LoginSchema,
      })
      .prefault({}),
    /** The operator web console (issue 7; cloud/src/console/, docs/console.md). */
    console: z
      .strictObject({
        /** Serve the console at / and /console/ (the JSON API is there either way). */
        enabled: z.boolean().default(true),
        /** GET /v1/edges shows an edge's link as down after this long without a batch from it. */
        edgeStaleAfterMs: Duration.default(120_000),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    const targetIds = new Set<string>();
    c.webhooks.targets.forEach((t, i) => {
      if (targetIds.has(t.id)) ctx.addIssue({ code: 'custom', path: ['webhooks', 'targets', i, 'id'], message: `target id ${t.id} is listed twice` });
      targetIds.add(t.id);
    });
    const users = new Set<string>();
    c.operators.users.forEach((u, i) => {
      if (users.has(u.username)) ctx.addIssue({ code: 'custom', path: ['operators', 'users', i, 'username'], message: `operator ${u.username} is listed twice` });
      users.add(u.username);
    });
    if (c.limits.maxWireStringBytes < c.limits.maxStringBytes) {
      ctx.addIssue({ code: 'custom', path: ['limits', 'maxWireStringBytes'], message: `must be at least limits.maxStringBytes (${c.limits.maxStringBytes}): a text value the validator would accept must not refuse the whole batch` });
    }
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

type SchemaInput = z.input<typeof CloudConfigSchema>;
/** What a config file may contain (every key optional; influx.url may come from INFLUX_URL instead,
 * and the cloud refuses to start when neither names an InfluxDB). */
export type CloudConfigInput = Omit<SchemaInput, 'influx'> & { influx?: Partial<NonNullable<SchemaInput['influx']>> };
/** The validated, defaulted configuration. */
export type CloudConfig = Readonly<z.output<typeof CloudConfigSchema>>;
export type EdgeConfig = z.output<typeof EdgeSchema>;
export type WebhookTargetConfig = z.output<typeof WebhookTargetSchema>;
export type OperatorConfig = z.output<typeof OperatorSchema>;
