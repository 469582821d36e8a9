// The cloud's error catalogue: every error an edge, an operator or an installer can see, declared once
// with a stable code, its HTTP status and a sentence they can act on. Codes never change meaning;
// cloud/README.md lists them and cloud/test/errors.test.ts keeps the two in step.
import type { ProtoErrorCode, ProtoLimitCode } from '@citysense/proto';

export interface ErrorSpec {
  status: number;
  message: string;
  /** The edge should send the same batch again later (503s). */
  retryable?: boolean;
}

export const CLOUD_ERRORS = {
  EDGE_AUTH_MISSING: {
    status: 401,
    message: 'The request carries no edge credential: send "Authorization: Bearer <edge token>" or a client certificate the cloud trusts.',
  },
  EDGE_AUTH_INVALID: {
    status: 401,
    message: 'The edge token is not one the cloud knows: check the edge\'s uplink token against auth.edges in the cloud config.',
  },
  EDGE_CERT_REFUSED: {
    status: 401,
    message: 'The client certificate is missing, not signed by the CA in listen.tls.ca, or its CN is not an edge in auth.edges.',
  },
  EDGE_ID_MISMATCH: {
    status: 403,
    message: 'The batch\'s edge_id is not the edge that authenticated: an edge may only upload its own batches.',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'Batches must be sent as Content-Type: application/x-protobuf.',
  },
  UNSUPPORTED_ENCODING: {
    status: 415,
    message: 'The only Content-Encoding the cloud accepts is gzip (or none).',
  },
  BODY_TOO_LARGE: {
    status: 413,
    message: 'The request body is over limits.bodyBytes: send smaller batches.',
  },
  INFLATED_TOO_LARGE: {
    status: 413,
    message: 'The gzip body inflates to more than limits.inflatedBytes: send smaller batches.',
  },
  BODY_NOT_GZIP: {
    status: 400,
    message: 'The body is declared Content-Encoding: gzip but is not valid gzip data.',
  },
  BODY_EMPTY: {
    status: 400,
    message: 'The request has no body: POST a protobuf citysense.v1.Batch.',
  },
  BATCH_TOO_MANY_READINGS: {
    status: 413,
    message: 'The batch holds more readings than limits.maxReadingsPerBatch: split it.',
  },
  BATCH_TOO_MANY_EVENTS: {
    status: 413,
    message: 'The batch holds more events than limits.maxEventsPerBatch: split it.',
  },
  // The other decode limits (proto/src/wire-limits.ts), checked while the body is scanned, before
  // anything is allocated per item.
  BATCH_TOO_MANY_DEVICES: {
    status: 413,
    message: 'The batch\'s device table has more entries than limits.maxDevicesPerBatch: split it.',
  },
  BATCH_TOO_MANY_SERIES: {
    status: 413,
    message: 'The batch holds more series than limits.maxSeriesPerBatch: split it.',
  },
  BATCH_TOO_MANY_KEYS: {
    status: 413,
    message: 'The batch\'s metric-name table has more entries than limits.maxKeysPerBatch: split it.',
  },
  BATCH_TOO_MANY_VALUES: {
    status: 413,
    message: 'The batch holds more values (metric values, series timestamps, flags) than limits.maxValuesPerBatch: split it.',
  },
  BATCH_TOO_MANY_METRICS: {
    status: 413,
    message: 'A reading or series carries more metrics than limits.maxMetricsPerReading.',
  },
  BATCH_TOO_MANY_TAGS: {
    status: 413,
    message: 'A device, reading or series has more tags, or an event more attrs, than limits.maxTagsPerItem.',
  },
  BATCH_TOO_MANY_DROPS: {
    status: 413,
    message: 'The batch holds more drop reports than limits.maxDropReportsPerBatch: split it.',
  },
  BATCH_STRING_TOO_LONG: {
    status: 413,
    message: 'A string in the batch (id, name, tag, text value) is longer than limits.maxWireStringBytes.',
  },
  INFLUX_UNAVAILABLE: {
    status: 503,
    retryable: true,
    message: 'InfluxDB did not accept the write (unreachable, timed out or failing); nothing is lost, send the batch again after Retry-After.',
  },
  INFLUX_AUTH_FAILED: {
    status: 503,
    retryable: true,
    message: 'InfluxDB refused the cloud\'s credentials: check INFLUX_USERNAME / INFLUX_PASSWORD; send the batch again after Retry-After.',
  },
  INGEST_BUSY: {
    status: 503,
    retryable: true,
    message: 'The cloud holds as many batches as it may (influx.maxConcurrentWrites + limits.maxQueuedBatches) or InfluxDB is too slow for the load; nothing was stored, send the batch again after Retry-After.',
  },
  // Operators and alerts (issue 5).
  AUTH_MISSING: {
    status: 401,
    message: 'This needs an operator token: POST /v1/auth/login, then send "Authorization: Bearer <token>".',
  },
  AUTH_INVALID: {
    status: 401,
    message: 'The operator token is not valid or has expired: log in again (POST /v1/auth/login).',
  },
  LOGIN_FAILED: {
    status: 401,
    message: 'Wrong username or password.',
  },
  LOGIN_THROTTLED: {
    status: 429,
    message: 'Too many login attempts from this address or for this account: wait the Retry-After seconds, or log in from an address this account has logged in from before (docs/security.md).',
  },
  LOGIN_BUSY: {
    status: 503,
    message: 'The cloud is checking as many passwords as operators.login.maxConcurrentHashes and maxQueuedHashes allow: try again after Retry-After.',
  },
  AUTH_TOKEN_IN_URL: {
    status: 401,
    message: 'Operator tokens are accepted only in the Authorization header, never in the URL (?access_token=), where logs and proxies keep them: send "Authorization: Bearer <token>".',
  },
  OPERATOR_NOT_FOUND: {
    status: 404,
    message: 'No operator has this name in operators.users.',
  },
  FORBIDDEN: {
    status: 403,
    message: 'Your role may not do this: viewers may read, operators may acknowledge and resolve, admins may retry deliveries.',
  },
  ALERT_NOT_FOUND: {
    status: 404,
    message: 'No alert has this id: list alerts with GET /v1/alerts.',
  },
  ALERT_RESOLVED: {
    status: 409,
    message: 'The alert is already resolved and cannot be acknowledged; a new occurrence is a new alert.',
  },
  STREAM_FULL: {
    status: 503,
    message: 'The alert stream has as many clients as alerts.stream.maxClients allows: try again later.',
  },
  STREAM_OPERATOR_FULL: {
    status: 429,
    message: 'This operator already has as many alert streams open as alerts.stream.maxClientsPerOperator allows: close one (another tab or screen) or try again after Retry-After.',
  },
  DELIVERY_NOT_FOUND: {
    status: 404,
    message: 'No dead-letter delivery has this id: list them with GET /v1/webhooks/deliveries?status=dead.',
  },
  // Device registry, query API, audit (issue 7).
  DEVICE_NOT_FOUND: {
    status: 404,
    message: 'No device has this id in the registry: list devices with GET /v1/devices.',
  },
  DEVICE_EXISTS: {
    status: 409,
    message: 'A device with this id (or this HJ 212 MN) is already registered: change it with PATCH /v1/devices/{id}, or pick another id.',
  },
  DEVICE_INVALID: {
    status: 400,
    message: 'The device is not valid: fix the fields named below (docs/registry.md lists them).',
  },
  DEVICE_NO_CREDENTIAL: {
    status: 409,
    message: 'The device has no credential of this kind to rotate (devices read over OPC-UA have none; only HJ 212 stations have a PW).',
  },
  CSV_INVALID: {
    status: 400,
    message: 'The CSV cannot be read as a device list: send text/csv with a header line naming known columns (docs/registry.md).',
  },
  IMPORT_REFUSED: {
    status: 422,
    message: 'Some rows are invalid, so nothing was imported: fix the rows listed with their line numbers, or send ?mode=partial to import the good rows.',
  },
  QUERY_INVALID: {
    status: 400,
    message: 'The query parameters are not valid: see docs/query-api.md for metric, from, to, every and fn.',
  },
  EDGE_SLICE_FORBIDDEN: {
    status: 403,
    message: 'An edge may fetch only its own registry slice: the edge id in the path is not the edge that authenticated.',
  },
  NOT_FOUND: { status: 404, message: 'No such route.' },
  BAD_REQUEST: { status: 400, message: 'The request is malformed.' },
  INTERNAL: { status: 500, message: 'The cloud failed unexpectedly; the batch was not acknowledged, send it again.' },
} as const satisfies Record<string, ErrorSpec>;

export type CloudErrorCode = keyof typeof CLOUD_ERRORS;

/** Status for the decode errors of @citysense/proto, which keep their own codes on the wire. */
export const PROTO_DECODE_STATUS = 400;
// A record rather than a list so that a code added to @citysense/proto fails the type check here until
// it is listed (and documented in cloud/README.md).
const PROTO_BATCH_CODES: Record<Exclude<ProtoErrorCode, 'ACK_UNDECODABLE' | ProtoLimitCode>, true> = {
  BATCH_UNDECODABLE: true,
  BATCH_NO_EDGE_ID: true,
  BATCH_NO_SEQ: true,
  BATCH_BAD_FAMILY: true,
  BATCH_BAD_DEVICE: true,
  BATCH_BAD_DEVICE_REF: true,
  BATCH_BAD_KEY_REF: true,
  BATCH_BAD_VALUE: true,
  BATCH_BAD_SERIES: true,
};
export const PROTO_DECODE_CODES = Object.keys(PROTO_BATCH_CODES) as (keyof typeof PROTO_BATCH_CODES)[];
/** A limit code of @citysense/proto that is not in the catalogue fails the type check here. */
export const PROTO_LIMIT_CODES: Record<ProtoLimitCode, CloudErrorCode> = {
  BATCH_TOO_MANY_READINGS: 'BATCH_TOO_MANY_READINGS',
  BATCH_TOO_MANY_EVENTS: 'BATCH_TOO_MANY_EVENTS',
  BATCH_TOO_MANY_DEVICES: 'BATCH_TOO_MANY_DEVICES',
  BATCH_TOO_MANY_SERIES: 'BATCH_TOO_MANY_SERIES',
  BATCH_TOO_MANY_KEYS: 'BATCH_TOO_MANY_KEYS',
  BATCH_TOO_MANY_VALUES: 'BATCH_TOO_MANY_VALUES',
  BATCH_TOO_MANY_METRICS: 'BATCH_TOO_MANY_METRICS',
  BATCH_TOO_MANY_TAGS: 'BATCH_TOO_MANY_TAGS',
  BATCH_TOO_MANY_DROPS: 'BATCH_TOO_MANY_DROPS',
  BATCH_STRING_TOO_LONG: 'BATCH_STRING_TOO_LONG',
};

/** An error the cloud answers with its catalogue status and `{error, message}`. */
export class CloudError extends Error {
  override name = 'CloudError';
  readonly status: number;
  readonly retryable: boolean;
  constructor(
    readonly code: CloudErrorCode,
    /** Specifics appended to the catalogue sentence (never secrets). */
    readonly detail?: string,
    /** Sent as Retry-After (429s and the 503s that know when to come back). */
    readonly retryAfterSeconds?: number,
  ) {
    const spec: ErrorSpec = CLOUD_ERRORS[code];
    super(detail ? `${spec.message} (${detail})` : spec.message);
    this.status = spec.status;
    this.retryable = spec.retryable ?? false;
  }
}

/**
 * Why a single reading or event was left out of the write. These travel in the Ack's `rejections`; the
 * rest of the batch is written.
 */
export const REJECTION_REASONS = {
  READING_NO_VALUES: 'The reading has no metrics.',
  READING_BAD_METRIC_NAME: 'A metric name is not usable as an InfluxDB field (letters, digits, _ . -; starting with a letter; not time/quality or a tag name).',
  READING_NOT_FINITE: 'A metric is NaN or infinite.',
  READING_VALUE_TOO_LONG: 'A text metric or the quality flag is longer than limits.maxStringBytes.',
  READING_BAD_TIMESTAMP: 'The reading\'s timestamp is not plausible (before limits.minTimestampMs or further ahead of the cloud clock than limits.maxFutureSkewMs).',
  READING_BAD_TAG: 'The device id or a device tag has a name or value InfluxDB cannot store faithfully (control characters, backslash, reserved name).',
  EVENT_BAD_TYPE: 'The event type is empty, too long or has control characters or a backslash.',
  EVENT_NO_ID: 'The event has no id.',
  EVENT_BAD_TIMESTAMP: 'The event\'s timestamp is not plausible (before limits.minTimestampMs or further ahead of the cloud clock than limits.maxFutureSkewMs).',
  EVENT_BAD_TAG: 'The device id or a device tag has a name or value InfluxDB cannot store faithfully (control characters, backslash, reserved name).',
  EVENT_TOO_LARGE: 'The event\'s attrs are longer than limits.maxStringBytes as JSON.',
  INFLUX_REJECTED: 'InfluxDB refused this point (for example a field type conflict); the rest of the batch was written.',
} as const;

export type RejectionReason = keyof typeof REJECTION_REASONS;

/** A config file or environment that cannot be used, naming where the mistake is. */
export class CloudConfigError extends Error {
  override name = 'CloudConfigError';
  constructor(
    message: string,
    readonly issues: string[] = [],
  ) {
    super(issues.length ? `${message}:\n  ${issues.join('\n  ')}` : message);
  }
}
