// The edge's configuration: the only truth about what can be configured. Unknown keys are refused,
// every limit has a default; README.md documents what happens at each limit.
import { z } from 'zod';
import { FAMILIES, VERIFIER_DESCRIPTION, parseVerifier } from '@citysense/proto';
// Edge-local alerting (issue 5, item 5): its schema lives with it in edge/src/alerts/config.ts.
import { localAlertsSchema } from '../alerts/config.ts';
// The HTTP push receivers (issue 18): their schema and the registry's platform identities live with them.
import { ctwingIdentitySchema, httpPushSchema, onenetIdentitySchema } from '../inputs/http-push/config.ts';

const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().positive();

/** MQTT topic levels must not contain wildcards or separators, so ids are kept to a safe alphabet. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const tagKey = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'tag names are letters, digits and _');
// YAML reads an unquoted all-digit secret or hash as a number; say how to fix it.
const text = () => z.string({ error: (iss) => (iss.input === undefined ? undefined : 'must be text (quote it in YAML)') });
const RESERVED_TAGS = ['device_id', 'district', 'family'];

export const deviceSchema = z
  .strictObject({
    id: z.string().regex(DEVICE_ID_PATTERN, 'device ids are 1-128 letters, digits, . _ : - (no / + #)'),
    family: z.enum(FAMILIES),
    secret: text().min(8, 'secrets are at least 8 characters').optional(),
    /** Old registries: the unsalted sha256 of the secret; still accepted, secretHash is what to keep. */
    secretSha256: text()
      .regex(/^[0-9a-fA-F]{64}$/, 'secretSha256 is 64 hex digits (sha256 of the secret)')
      .optional(),
    /** A salted scrypt verifier of the secret (what the cloud's slice carries; docs/security.md). */
    secretHash: text().refine((v) => parseVerifier(v) !== undefined, VERIFIER_DESCRIPTION).optional(),
    district: z.string().min(1),
    tags: z
      .record(tagKey, z.string())
      .refine((t) => !RESERVED_TAGS.some((k) => k in t), { message: `tags may not set ${RESERVED_TAGS.join(', ')}` })
      .optional(),
    /** The device's model: how its data arrives and decodes (edge/profiles/, docs/profiles.md). */
    profile: z.string().min(1).default('generic-json'),
    /** For HJ 212 stations: the station's MN and its access password (PW). */
    hj212: z
      .strictObject({
        mn: z.string().regex(/^[0-9A-Za-z]{1,24}$/, 'an MN is 1-24 letters and digits (24 hex in HJ 212-2017, 14 digits in 2005)'),
        password: z.string().min(1).max(64).optional(),
        passwordSha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'passwordSha256 is 64 hex digits').optional(),
        passwordHash: z.string().refine((v) => parseVerifier(v) !== undefined, VERIFIER_DESCRIPTION).optional(),
      })
      .refine((h) => [h.password, h.passwordSha256, h.passwordHash].filter((x) => x !== undefined).length <= 1, {
        message: 'give one of password, passwordSha256, passwordHash',
      })
      .optional(),
    /**
     * For GB/T 26875.3 transmission devices: the device's 6-byte source address as the frames carry it,
     * 12 hex digits in wire order (low byte first), e.g. `790300000000`.
     */
    gb26875: z
      .strictObject({
        address: z
          .string()
          .regex(/^[0-9a-fA-F]{12}$/, 'a GB/T 26875.3 address is 6 bytes: 12 hex digits, in the order the frame carries them')
          .transform((a) => a.toLowerCase()),
      })
      .optional(),
    /** For devices read over OPC-UA: which server, and the values of the profile's NodeId placeholders. */
    opcua: z
      .strictObject({
        server: z.string().min(1),
        vars: z.record(z.string(), z.string()).default({}),
      })
      .optional(),
    /** Devices reporting through China Telecom's CTWing AEP (pushed to httpPush.ctwing). */
    ctwing: ctwingIdentitySchema.optional(),
    /** Devices reporting through China Mobile's OneNET or OneNET Studio (pushed to httpPush.onenet / onenetStudio). */
    onenet: onenetIdentitySchema.optional(),
  })
  .refine((d) => [d.secret, d.secretSha256, d.secretHash].filter((x) => x !== undefined).length <= 1, {
    message: 'give one of secret, secretSha256, secretHash',
  });

export const registryFileSchema = z.strictObject({ devices: z.array(deviceSchema) });

const tlsFiles = z.strictObject({
  ca: z.string().min(1).optional(),
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
});

/** The connection guard's limits (edge/src/inputs/guard/, docs/security.md "Listeners"), per listener. */
const guardKeys = {
  /** Unauthenticated connections at once; default maxConnections / 10. The rest is kept for devices that logged in. */
  maxUnauthenticated: positiveInt.optional(),
  /** Connections from one source address (devices behind one NAT share an address). */
  maxConnectionsPerSource: positiveInt.default(1_000),
  /** Unauthenticated connections from one source address. */
  maxUnauthenticatedPerSource: positiveInt.default(32),
  /** Wrong passwords (or unknown devices) from one source within windowMs before it is blocked for blockMs. */
  loginThrottle: z
    .strictObject({ maxFailures: positiveInt.default(10), windowMs: positiveInt.default(60_000), blockMs: positiveInt.default(300_000) })
    .prefault({}),
};

export const edgeConfigSchema = z
  .strictObject({
    edgeId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'edgeId is 1-64 letters, digits, . _ -'),
    dataDir: z.string().min(1).default('.data/edge'),
    mqtt: z
      .strictObject({
        host: z.string().default('0.0.0.0'),
        port: port.default(1883),
        maxConnections: positiveInt.default(10_000),
        maxPacketBytes: positiveInt.default(65_536),
        /** A connection that has not sent CONNECT and logged in within this is closed (pre-authentication timeout). */
        connectTimeoutMs: positiveInt.default(10_000),
        ...guardKeys,
        maxConnectsPerSecond: positiveInt.default(500),
        connectBurst: positiveInt.default(2_000),
        /**
         * Telemetry messages taken into the pipeline per event-loop turn; more wait for the next turns
         * (their PUBACK comes later). Keeps uplink, timers and alarms served under a flood. Events are never held.
         */
        messagesPerTurn: positiveInt.default(64),
        /** Messages of one connection awaiting durability (no PUBACK yet) before its socket stops being read. */
        maxInflightPerConnection: positiveInt.max(65_535).default(64),
        /**
         * What an MQTT 3.1/3.1.1 device gets for a message refused whole (undecodable payload, foreign
         * topic, no acceptable value): `puback` (acknowledged and dropped, counted) or `disconnect` (no
         * PUBACK, the connection closes). MQTT 5 devices get a PUBACK with the reason code instead.
         */
        v3RefusalPolicy: z.enum(['puback', 'disconnect']).default('puback'),
        /** MQTT 5: the highest Topic Alias a device may use (advertised in CONNACK); 0 = none. */
        topicAliasMaximum: z.number().int().min(0).max(65_535).default(16),
        /** MQTT 5: a keep-alive (s) the edge imposes in CONNACK (Server Keep Alive); unset = the device's own. */
        serverKeepAliveS: z.number().int().min(1).max(65_535).optional(),
        tls: z
          .strictObject({
            host: z.string().default('0.0.0.0'),
            port: port.default(8883),
            cert: z.string().min(1),
            key: z.string().min(1),
            ca: z.string().min(1).optional(),
            requireClientCert: z.boolean().default(false),
          })
          .optional(),
      })
      .prefault({}),
    hj212: z
      .strictObject({
        enabled: z.boolean().default(true),
        host: z.string().default('0.0.0.0'),
        port: port.default(6212),
        maxConnections: positiveInt.default(2_000),
        idleTimeoutMs: positiveInt.default(2 * 3600_000),
        /** A connection without a valid frame (right MN and PW) within this is closed; stations send on connect. */
        preAuthTimeoutMs: positiveInt.default(60_000),
        ...guardKeys,
        /** A frame complete by its length and CRC but without CRLF is taken after the station is quiet this long (0: wait for the CRLF). */
        crlfIdleMs: z.number().int().min(0).max(60_000).default(200),
        /** HJ 212-2017 allows 1024 bytes of data segment; some stations send longer minute data. */
        maxSegmentBytes: positiveInt.default(1024),
        tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
      })
      .prefault({}),
    /** The GB/T 26875.3 listener for fire-alarm transmission devices (docs/protocols/fire-gb26875.md). */
    gb26875: z
      .strictObject({
        /** Off unless asked for (the demo turns it on): a listener nobody uses is one more open port. */
        enabled: z.boolean().default(false),
        host: z.string().default('0.0.0.0'),
        port: port.default(6213),
        maxConnections: positiveInt.default(2_000),
        /** A device sends a heartbeat every 20–30 s; one silent this long is disconnected (it reconnects). */
        idleTimeoutMs: positiveInt.default(300_000),
        /** A connection without a frame of a registered device within this is closed (devices send on connect, and a heartbeat every 20–30 s). */
        preAuthTimeoutMs: positiveInt.default(60_000),
        ...guardKeys,
        /** GB/T 26875.3-2011: the application data unit is at most 1024 bytes. */
        maxAppData: positiveInt.max(65_535).default(1024),
        /** Per device, the serial numbers (and content) of the last frames stored: a resend of one is answered, not stored again. */
        rememberedSerials: positiveInt.max(65_536).default(256),
        /**
         * Heartbeats keep a device "online" in the cloud: at most one `heartbeat` reading per device per
         * this many ms is stored (0: none; the heartbeats are still counted and answered).
         */
        heartbeatReadingIntervalMs: z.number().int().min(0).default(60_000),
        tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
      })
      .prefault({}),
    opcua: z
      .strictObject({
        pki: z
          .strictObject({
            /** The edge's OPC-UA client PKI (own certificate, trusted/, rejected/); default dataDir/opcua-pki. */
            dir: z.string().min(1).optional(),
            certificateFile: z.string().min(1).optional(),
            privateKeyFile: z.string().min(1).optional(),
            /** Server certificates the edge trusts, explicitly (copied into trusted/ at start). */
            trustedServerCertificates: z.array(z.string().min(1)).default([]),
            /** Trust any server: a lab only, never a city. */
            automaticallyAcceptUnknownCertificate: z.boolean().default(false),
          })
          .prefault({}),
        servers: z
          .array(
            z.strictObject({
              id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a server id is letters, digits, . _ -'),
              endpoint: z.string().regex(/^opc\.tcp:\/\//, 'an OPC-UA endpoint starts with opc.tcp://'),
              securityMode: z.enum(['None', 'Sign', 'SignAndEncrypt']).default('SignAndEncrypt'),
              securityPolicy: z.enum(['None', 'Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss']).default('Basic256Sha256'),
              username: z.string().min(1).optional(),
              /** Name of the environment variable holding the user's password (never in the file). */
              passwordEnv: z.string().min(1).optional(),
              reconnect: z
                .strictObject({ initialDelayMs: positiveInt.default(1_000), maxDelayMs: positiveInt.default(30_000) })
                .prefault({}),
              requestTimeoutMs: positiveInt.default(10_000),
              sessionTimeoutMs: positiveInt.default(60_000),
              /** Not healthy again this long after a drop (or after falling silent): start from scratch. */
              recoveryTimeoutMs: positiveInt.default(30_000),
              /** Nothing from the server, not even a keep-alive, for this long: health degraded. */
              maxSilenceMs: positiveInt.default(30_000),
            }),
          )
          .default([]),
      })
      .prefault({}),
    http: z
      .strictObject({
        host: z.string().default('0.0.0.0'),
        port: port.default(8081),
      })
      .prefault({}),
    /** HTTP push receivers for the operators' IoT platforms (CTWing, OneNET); absent = no listener. */
    httpPush: httpPushSchema.optional(),
    registry: z
      .strictObject({
        file: z.string().min(1).optional(),
        devices: z.array(deviceSchema).optional(),
        /** The edge's slice of the cloud's registry (GET /v1/edges/{edgeId}/registry), cached in dataDir. */
        cloud: z
          .strictObject({
            intervalMs: positiveInt.default(30_000),
            cacheFile: z.string().min(1).optional(),
          })
          .optional(),
      })
      .refine((r) => [r.file, r.devices, r.cloud].filter((x) => x !== undefined).length === 1, {
        message: 'give exactly one of registry.file, registry.devices or registry.cloud',
      }),
    cloud: z
      .strictObject({
        url: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:8080'),
        token: z.string().min(1).optional(),
      })
      .prefault({}),
    uplink: z
      .strictObject({
        requestTimeoutMs: positiveInt.default(10_000),
        keepAliveTimeoutMs: positiveInt.default(30_000),
        /** Telemetry batches in flight to the cloud at once (the alarm lane always has its own). */
        maxInFlight: positiveInt.max(64).default(4),
        tls: tlsFiles.optional(),
        retry: z
          .strictObject({
            initialDelayMs: positiveInt.default(200),
            maxDelayMs: positiveInt.default(30_000),
            factor: z.number().min(1).default(2),
          })
          .prefault({}),
      })
      .prefault({}),
    batch: z
      .strictObject({
        maxReadings: positiveInt.default(5000),
        maxAgeMs: positiveInt.default(100),
      })
      .prefault({}),
    /** Decoder limits, checked before a payload's per-item structures are built (docs/security.md). */
    decoders: z
      .strictObject({
        json: z
          .strictObject({
            /** Payload bytes of a JSON message. */
            maxBytes: positiveInt.default(65_536),
            /** Nesting of objects and arrays (the contract's payloads need 3). */
            maxDepth: positiveInt.max(1000).default(8),
            /** Members of all objects and elements of all arrays of one payload. */
            maxMembers: positiveInt.default(1024),
          })
          .prefault({}),
        binary: z.strictObject({ maxFrameBytes: positiveInt.default(1024) }).prefault({}),
        hj212: z.strictObject({ maxCpPairs: positiveInt.default(512) }).prefault({}),
      })
      .prefault({}),
    normalise: z
      .strictObject({
        maxFutureSkewMs: positiveInt.default(5 * 60_000),
        maxPastAgeMs: positiveInt.default(7 * 24 * 3600_000),
        maxMetricsPerMessage: positiveInt.default(256),
        maxStringValueLength: positiveInt.default(1024),
        /**
         * A timestamp outside the window: `reject` the reading, or `flag` it: keep it at the edge's receive
         * time with quality `clock_skew` and the device's own time as the field `device_ts`.
         */
        clockSkew: z.enum(['reject', 'flag']).default('reject'),
      })
      .prefault({}),
    events: z
      .strictObject({
        alarmTypes: z
          .array(z.string().min(1))
          .default(['fire_alarm', 'smoke_alarm', 'gas_alarm', 'entrapment', 'heat_alarm', 'water_leak', 'flood_alarm']),
        warningTypes: z.array(z.string().min(1)).default(['fault', 'supervisory']),
      })
      .prefault({}),
    profiles: z
      .strictObject({
        /** Folders of extra profile files, besides the built-in edge/profiles/. */
        dirs: z.array(z.string().min(1)).default([]),
      })
      .prefault({}),
    queue: z
      .strictObject({
        /** Disk quota for routine telemetry: beyond it the oldest telemetry not yet sent is dropped (counted, reported). */
        telemetryQuotaBytes: positiveInt.default(1024 * 1024 * 1024),
        /** A separate reserve for alarm events, which are never dropped: beyond it alarm accepts wait. */
        alarmQuotaBytes: positiveInt.default(64 * 1024 * 1024),
        /** Alarm events travel in small batches of at most this many, ahead of telemetry. */
        maxAlarmBatchItems: positiveInt.default(100),
        segmentBytes: positiveInt.default(8 * 1024 * 1024),
        /**
         * Queued readings/events also kept in memory (about 400 bytes each), so a batch is sent without
         * reading it back from disk; a backlog beyond it is read back when its turn comes. 0: always read back.
         */
        memoryCacheItems: z.number().int().min(0).default(100_000),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        warnLinesPerInterval: positiveInt.default(10),
        warnIntervalMs: positiveInt.default(60_000),
      })
      .prefault({}),
    shutdown: z.strictObject({ flushTimeoutMs: positiveInt.default(10_000) }).prefault({}),
    /** Edge-local alerting (issue 5): critical event rules alerted from the edge when the cloud is away; absent = off. */
    localAlerts: localAlertsSchema.optional(),
  })
  .superRefine((c, ctx) => {
    if (c.uplink.retry.maxDelayMs < c.uplink.retry.initialDelayMs) {
      ctx.addIssue({ code: 'custom', path: ['uplink', 'retry', 'maxDelayMs'], message: 'must be at least uplink.retry.initialDelayMs' });
    }
    const tls = c.uplink.tls;
    if (tls && (tls.cert === undefined) !== (tls.key === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['uplink', 'tls'], message: 'a client certificate needs both cert and key' });
    }
    if (!c.cloud.token && !tls?.cert) {
      ctx.addIssue({
        code: 'custom',
        path: ['cloud', 'token'],
        message: 'required (or set CITYSENSE_EDGE_TOKEN) unless uplink.tls.cert presents a client certificate',
      });
    }
  });

export type EdgeConfigInput = z.input<typeof edgeConfigSchema>;
export type EdgeConfig = z.output<typeof edgeConfigSchema>;
export type DeviceEntry = z.output<typeof deviceSchema>;
