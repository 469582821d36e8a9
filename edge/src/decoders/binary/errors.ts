// The binary-layout decoder's refusal catalogue. Codes are stable: metrics, logs and
// docs/protocols/nbiot-binary.md match on them (a test keeps the doc in step).

export const BINARY_ERRORS = {
  BINARY_BAD_PAYLOAD: 'the payload is neither bytes nor hex text',
  BINARY_BAD_HEX: 'the payload text is not hex (pairs of 0-9 a-f, spaces and 0x allowed)',
  BINARY_TOO_LONG: 'the frame (or its hex text) is longer than decoders.binary.maxFrameBytes; NB-IoT frames are a few hundred bytes at most',
  BINARY_TOO_SHORT: "the frame is shorter than the device's layout needs",
  BINARY_NO_MATCH: "the frame-type byte does not match the device's layout",
  BINARY_OUT_OF_RANGE: "a value is outside the valid range in the device's layout; the other values went on",
  BINARY_NOT_FINITE: 'a float field holds NaN or infinity; the other values went on',
  BINARY_BAD_ENUM: "a state field holds a raw value the layout's enum does not list; the other values went on",
  BINARY_BAD_TEXT: 'an ascii field holds bytes that are not printable ASCII; the other values went on',
  BINARY_BAD_LAYOUT: "the device's layout is not valid",
} as const;

export type BinaryErrorCode = keyof typeof BINARY_ERRORS;
