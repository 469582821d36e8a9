// The edge's error catalogue. Codes are stable (scripts and docs match on them); messages tell an
// installer what to change. README.md lists them.

export const EDGE_ERRORS = {
  CONFIG_UNREADABLE: 'the configuration file cannot be read',
  CONFIG_SYNTAX: 'the configuration file is not valid YAML or JSON',
  CONFIG_INVALID: 'the configuration does not match the schema',
  REGISTRY_UNREADABLE: 'the device registry file cannot be read',
  REGISTRY_SYNTAX: 'the device registry file is not valid YAML or JSON',
  REGISTRY_INVALID: 'the device registry does not match the schema',
  PROFILE_UNREADABLE: 'a device profile file cannot be read',
  PROFILE_SYNTAX: 'a device profile file is not valid YAML or JSON',
  PROFILE_INVALID: 'a device profile does not match the profile schema (docs/profiles.md)',
  PROFILE_UNKNOWN: 'a device names a profile that no profile file defines',
  TLS_FILE_UNREADABLE: 'a TLS file named in uplink.tls cannot be read',
  QUEUE_CLOSED: 'the durable queue is closed (the edge is shutting down): the message was not acknowledged',
  QUEUE_WRITE_FAILED: 'the durable queue could not write to disk (full? read-only?): messages are not acknowledged until it can',
  QUEUE_UNREADABLE: 'the durable queue folder cannot be opened (permissions? another process using it?)',
  // HTTP push receivers (edge/src/inputs/http-push/, docs/protocols/ctwing.md and onenet.md): why a push was refused.
  PUSH_UNKNOWN_PATH: 'no push receiver at this path (wrong platform name or path token in the subscription URL)',
  PUSH_ADDRESS_REFUSED: "the push came from an address outside the receiver's allowFrom list",
  PUSH_METHOD_NOT_ALLOWED: 'push receivers take POST (and GET for the OneNET URL check) only',
  PUSH_BODY_TOO_LARGE: 'the push body is larger than httpPush.maxBodyBytes',
  PUSH_BAD_JSON: 'the push body is not a JSON object',
  PUSH_BAD_SIGNATURE: "the push's signature does not match the configured token (OneNET: Base64(MD5(token + nonce + msg)))",
  PUSH_DECRYPT_FAILED: 'an encrypted push could not be decrypted with the configured key (encodeKey / aesKey)',
  PUSH_BAD_MESSAGE: 'the push is JSON but not a message of the platform (missing or mistyped fields)',
  PUSH_UNSUPPORTED_MESSAGE: 'the push is a message type the receiver does not take',
  PUSH_UNKNOWN_DEVICE: 'the push names a device (platform device id or IMEI) that is not in the registry for this platform',
  PUSH_UNDECODABLE: "the push's payload did not decode with the device's profile: nothing of it was kept",
  PUSH_NOT_STORED: 'the report could not be stored in the durable queue (closing, disk failure): the platform should retry',
} as const;

export type EdgeErrorCode = keyof typeof EDGE_ERRORS;

export class EdgeError extends Error {
  override name = 'EdgeError';
  constructor(
    readonly code: EdgeErrorCode,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${EDGE_ERRORS[code]}: ${detail}`, options);
  }
}
