export * from './types.ts';
export * from './errors.ts';
export { encodeBatch, decodeBatch, encodeAck, decodeAck } from './codec.ts';
export { sampleEnvironmentBatch } from './sample.ts';
