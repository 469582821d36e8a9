// The cloud's batch decoding behind POST /v1/batches, fed random and mutated bodies (raw and gzip):
// the process answers every one, with a stable error code for each refusal, and stays up.
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { encodeBatch, sampleEnvironmentBatch } from '@citysense/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { EDGE_A, batchHeaders, testApp, testConfig } from './helpers.ts';

const RUNS = Number(process.env.CITYSENSE_FUZZ_RUNS ?? 10_000);
let app: FastifyInstance;
beforeAll(async () => {
  // An InfluxDB that is not there: a body that decodes gets 503, so no fuzz point is ever written.
  app = testApp(testConfig({ url: 'http://127.0.0.1:9', db: 'fuzz' }, { influx: { timeoutMs: 200, writeRetries: 0 } }));
  await app.ready();
});
afterAll(async () => {
  await app?.close();
});

describe('POST /v1/batches fuzzing', () => {
  it(`answers ${RUNS} random and mutated bodies with a status and, when refusing, a stable code`, async () => {
    const good = Buffer.from(encodeBatch({ ...sampleEnvironmentBatch(20, 4), edgeId: EDGE_A.id }));
    const mutated = fc.tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.nat()).map(([flips, cut]) => {
      const b = Buffer.from(good);
      for (const [at, byte] of flips) b[at % b.length] = byte;
      return cut % 3 === 0 ? b.subarray(0, cut % b.length) : b;
    });
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated, fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a))), fc.boolean(), async (body, gzip) => {
        const res = await app.inject({ method: 'POST', url: '/v1/batches', payload: gzip ? gzipSync(body) : body, headers: batchHeaders(EDGE_A.token, gzip) });
        expect([200, 400, 403, 413, 503]).toContain(res.statusCode);
        if (res.statusCode !== 200) expect(res.json().error).toMatch(/^[A-Z][A-Z0-9_]+$/);
      }),
      { seed: 11, numRuns: RUNS },
    );
    // Still serving.
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(503);
  }, 180_000);
});
