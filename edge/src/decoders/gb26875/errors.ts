// The GB/T 26875.3 decoder's refusal catalogue. Codes are stable: metrics, logs and
// docs/protocols/fire-gb26875.md match on them (a test keeps the doc in step).

export const GB26875_ERRORS = {
  GB26875_BAD_PAYLOAD: 'the payload is not bytes',
  GB26875_BAD_START: "bytes that are not part of a GB/T 26875.3 frame (no '@@', 0x40 0x40, where a frame must start) were skipped",
  GB26875_TRUNCATED: 'a frame is shorter than its header and its application data length say; the message or connection was cut',
  GB26875_BAD_LENGTH: 'the application data length is over the limit (1024), or bytes follow the end of the frame',
  GB26875_BAD_END: "the frame does not end with '##' (0x23 0x23) where its length says it ends",
  GB26875_BAD_CHECKSUM: 'the checksum (sum of bytes 3..27+n mod 256) does not match; the frame was corrupted',
  GB26875_UNSUPPORTED_COMMAND: 'the command byte is not one a panel sends upstream (2 send data, 3 confirm, 5 response, 6 deny)',
  GB26875_UNSUPPORTED_TYPE: 'the data type is not decoded by the edge (supported: 1, 2, 3, 4, 21, 24); the rest of the frame went on',
  GB26875_BAD_OBJECT_COUNT: "the object count does not fit the application data's length; the complete objects went on",
  GB26875_BAD_TIME: "a time label is not a valid date; the frame's own time or the edge's receive time is used instead",
  GB26875_UNKNOWN_ANALOG_TYPE: "an analog value has a type the standard's table and the profile's analogTypes do not list; that value was refused, the others went on",
  GB26875_BAD_ANALOG: 'an analog value is outside what its type can hold; that value was refused, the others went on',
  GB26875_BAD_PROFILE: "the device profile's gb26875 section is not valid",
  GB26875_UNKNOWN_SOURCE: "the frame's source address is not a transmission device registered for the GB/T 26875.3 listener (registry: gb26875.address, profile input gb26875-tcp)",
  GB26875_WRONG_SOURCE: "a frame published over MQTT carries another device's source address",
} as const;

export type Gb26875ErrorCode = keyof typeof GB26875_ERRORS;

export interface Gb26875Refusal {
  code: Gb26875ErrorCode;
  message: string;
  /** Index of the information object refused (from 0), when one object was and the others went on. */
  object?: number;
}

export function refusal(code: Gb26875ErrorCode, detail: string, object?: number): Gb26875Refusal {
  const r: Gb26875Refusal = { code, message: `${GB26875_ERRORS[code]}: ${detail}` };
  if (object !== undefined) r.object = object;
  return r;
}
