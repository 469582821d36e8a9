// The binary-layout decoder's public surface: layouts as data (layout.ts), frames → values (decode.ts).
export { BINARY_ERRORS, type BinaryErrorCode } from './errors.ts';
export {
  binaryLayoutSchema,
  loadBinaryLayout,
  requiredLength,
  fieldSize,
  formatPath,
  FIELD_TYPES,
  type BinaryLayout,
  type BinaryLayoutInput,
  type BinaryField,
  type FieldType,
  type LayoutIssue,
  type LayoutResult,
} from './layout.ts';
export { decodeBinary, decodeBinaryAny, hexToBytes, DEFAULT_BINARY_LIMITS, type BinaryLimits, type BinaryDecoded, type BinaryRefusal, type BinaryValue } from './decode.ts';
