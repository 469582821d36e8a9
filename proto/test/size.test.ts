import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { encodeBatch, sampleEnvironmentBatch } from '../src/index.ts';
import { lineProtocolOf } from './line-protocol-reference.ts';

describe('uplink size', () => {
  it('a 5,000-reading batch gzips to at most half of the same readings as gzipped line protocol', () => {
    const batch = sampleEnvironmentBatch(5000, 100);
    const pb = gzipSync(encodeBatch(batch)).length;
    const lp = gzipSync(lineProtocolOf(batch)).length;
    expect(pb / lp).toBeLessThanOrEqual(0.5);
  });
});
