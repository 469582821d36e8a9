export * from './types.ts';
export * from './errors.ts';
export { encodeBatch, decodeBatch, encodeAck, decodeAck } from './codec.ts';
export { sampleEnvironmentBatch } from './sample.ts';
export { checkBatchWire, DEFAULT_DECODE_LIMITS, UNBOUNDED_DECODE_LIMITS, type DecodeLimits } from './wire-limits.ts';
export { VERIFIER_COST, VERIFIER_DESCRIPTION, makeVerifier, parseVerifier, verifySecret, wrapSha256, type Verifier } from './verifier.ts';
