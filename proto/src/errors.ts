// Errors of the proto package. Codes are stable; docs/errors.md lists them.

export type ProtoErrorCode =
  | 'BATCH_UNDECODABLE'
  | 'BATCH_NO_EDGE_ID'
  | 'BATCH_NO_SEQ'
  | 'BATCH_BAD_FAMILY'
  | 'BATCH_BAD_DEVICE'
  | 'BATCH_BAD_DEVICE_REF'
  | 'BATCH_BAD_KEY_REF'
  | 'BATCH_BAD_VALUE'
  | 'BATCH_BAD_SERIES'
  | 'ACK_UNDECODABLE';

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
