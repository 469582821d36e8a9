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
  EDGE_CLOSED: 'the edge is shutting down and accepts no more data',
  QUEUE_CLOSED: 'the durable queue is closed (the edge is shutting down): the message was not acknowledged',
  QUEUE_WRITE_FAILED: 'the durable queue could not write to disk (full? read-only?): messages are not acknowledged until it can',
  QUEUE_UNREADABLE: 'the durable queue folder cannot be opened (permissions? another process using it?)',
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
