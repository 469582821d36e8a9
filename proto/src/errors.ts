// Errors of the proto package. Codes are stable; docs/errors.md lists them.

/** A batch over one of the decode limits (wire-limits.ts); the cloud answers these with 413. */
export const PROTO_LIMIT_ERROR_CODES = [
  'BATCH_TOO_MANY_READINGS',
  'BATCH_TOO_MANY_EVENTS',
  'BATCH_TOO_MANY_DEVICES',
  'BATCH_TOO_MANY_SERIES',
  'BATCH_TOO_MANY_KEYS',
  'BATCH_TOO_MANY_VALUES',
  'BATCH_TOO_MANY_METRICS',
  'BATCH_TOO_MANY_TAGS',
  'BATCH_TOO_MANY_DROPS',
  'BATCH_STRING_TOO_LONG',
] as const;
export type ProtoLimitCode = (typeof PROTO_LIMIT_ERROR_CODES)[number];

/** Every code of the package (the catalogue checked against docs/errors.md). */
export const PROTO_ERROR_CODES = [
  'BATCH_UNDECODABLE',
  'BATCH_NO_EDGE_ID',
  'BATCH_NO_SEQ',
  'BATCH_BAD_FAMILY',
  'BATCH_BAD_DEVICE',
  'BATCH_BAD_DEVICE_REF',
  'BATCH_BAD_KEY_REF',
  'BATCH_BAD_VALUE',
  'BATCH_BAD_SERIES',
  'ACK_UNDECODABLE',
  ...PROTO_LIMIT_ERROR_CODES,
] as const;
export type ProtoErrorCode = (typeof PROTO_ERROR_CODES)[number];

/** A body that is not a well-formed citysense.v1 message. */
export class ProtoDecodeError extends Error {
  override name = 'ProtoDecodeError';
  constructor(
    readonly code: ProtoErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A well-formed body over a decode limit, found before anything was allocated per item. */
export class ProtoLimitError extends ProtoDecodeError {
  override name = 'ProtoLimitError';
  declare readonly code: ProtoLimitCode;
  constructor(code: ProtoLimitCode, message: string) {
    super(code, message);
  }
}
