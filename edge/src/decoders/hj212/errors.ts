// The HJ 212 decoder's refusal catalogue. Codes are stable: metrics, logs and docs/protocols/hj212.md
// match on them (a test keeps the doc in step). Each entry says what an installer should look at.

export const HJ212_ERRORS = {
  HJ212_BAD_HEADER: 'the bytes do not start with ## and a 4-digit decimal length',
  HJ212_TOO_LONG: 'the declared data-segment length is over the accepted maximum (1024 bytes by default)',
  HJ212_BAD_LENGTH: 'the declared length does not match the data segment actually sent',
  HJ212_TRUNCATED: 'the connection ended in the middle of a frame',
  HJ212_BAD_CRC: 'the CRC (Appendix A) does not match the data segment, or is not 4 hex digits',
  HJ212_BAD_ENCODING: 'the data segment is not valid UTF-8',
  HJ212_BAD_FIELD: 'a field of the data segment (QN, ST, CN, PW, MN, Flag, PNUM, PNO, CP) is missing or malformed',
  HJ212_TOO_MANY_ITEMS: 'the CP holds more key=value pairs than decoders.hj212.maxCpPairs',
  HJ212_BAD_DATATIME: 'DataTime is missing or not a real YYYYMMDDhhmmss instant',
  HJ212_BAD_VALUE: 'a value that must be a number is not one; the other items of the frame went on',
  HJ212_UNSUPPORTED_CN: 'the command code carries no readings (only 2011, 2051, 2061 and 2031 do)',
  HJ212_BAD_PASSWORD: "the frame's PW does not match the password configured for the station",
  HJ212_UNKNOWN_MN: 'no station with this MN is registered for the HJ 212 listener',
  HJ212_WRONG_MN: "an MQTT device sent a frame with another station's MN",
  HJ212_BUSY: "too many password checks were waiting (they share the edge's credential checker); the station retries",
} as const;

export type Hj212ErrorCode = keyof typeof HJ212_ERRORS;
