import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch, FAMILIES, ProtoDecodeError, sampleEnvironmentBatch, type Batch, type Reading } from '../src/index.ts';
import { goldenBatch } from './golden-batch.ts';

const FUZZ_RUNS = Number(process.env.CITYSENSE_FUZZ_RUNS ?? 10_000);

const metricValue = fc.oneof(
  fc.double({ noNaN: false }),
  fc.integer(),
  fc.integer({ min: -1e6, max: 1e6 }).map((n) => n / 10),
  fc.integer({ min: -1e9, max: 1e9 }).map((n) => n / 1000),
  fc.boolean(),
  fc.string({ maxLength: 12 }),
);
const reading: fc.Arbitrary<Reading> = fc.record({
  deviceId: fc.constantFrom('d1', 'd2', 'd3', 'dév-4'),
  family: fc.constantFrom(...FAMILIES),
  ts: fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
  values: fc.dictionary(fc.constantFrom('pm25', 'pm10', 'floor', 'door_open', 'state', '__proto__', 'x y'), metricValue, { minKeys: 1 }),
});

describe('batch codec', () => {
  it("decodes values with nothing inherited: __proto__ and toString are metrics like any other", () => {
    const own = JSON.parse('{"__proto__": 3, "toString": 1, "pm25": 2}') as Reading['values'];
    for (const copies of [1, 2]) {
      const readings: Reading[] = [
        ...Array.from({ length: copies }, (_, i) => ({ deviceId: 'p', family: 'nbiot' as const, ts: 5 + i, values: own })),
        { deviceId: 'q', family: 'nbiot', ts: 9, values: { pm25: 1 } },
      ];
      const back = decodeBatch(encodeBatch({ edgeId: 'e', seq: 1, createdMs: 1, readings, events: [] }));
      const p = back.readings.find((r) => r.deviceId === 'p')!.values;
      const q = back.readings.find((r) => r.deviceId === 'q')!.values;
      expect(Object.keys(p).sort()).toEqual(['__proto__', 'pm25', 'toString']);
      expect([Object.hasOwn(p, '__proto__'), p['__proto__'], p.toString]).toEqual([true, 3, 1]);
      expect([q.toString, q.constructor, 'hasOwnProperty' in q, q['__proto__']]).toEqual([undefined, undefined, false, undefined]);
    }
  });

  it('round-trips numbers exactly, whether they travel as decimals or doubles', () => {
    const values = { a: 35.2, b: 61, c: -0.001, d: Math.PI, e: 1e300, f: -7, g: 2147483647, h: 2147483648.5, i: -0, j: 2 ** 53, k: Number.NaN, l: -Infinity };
    for (const copies of [1, 3]) {
      const readings = Array.from({ length: copies }, (_, i) => ({ deviceId: 'd', family: 'nbiot' as const, ts: 5 + i, values }));
      const back = decodeBatch(encodeBatch({ edgeId: 'e', seq: 1, createdMs: 1, readings, events: [] }));
      for (const r of back.readings) {
        for (const [k, v] of Object.entries(values)) expect(Object.is(r.values[k], v), `${copies} copies, ${k}: ${r.values[k]} vs ${v}`).toBe(true);
      }
    }
  });

  it('round-trips any batch: same readings per device in the same order, values bit-exact', () => {
    fc.assert(
      fc.property(fc.array(reading, { maxLength: 30 }), (readings) => {
        // A device keeps one family and one metric-name order within a batch (the encoder tables the first).
        const family = new Map<string, Reading['family']>();
        const norm = readings.map((r) => ({ ...r, family: family.get(r.deviceId) ?? (family.set(r.deviceId, r.family), r.family) }));
        const back = decodeBatch(encodeBatch({ edgeId: 'e', seq: 9, createdMs: 1, readings: norm, events: [] }));
        expect(back.readings).toHaveLength(norm.length);
        const sig = (r: Reading) => `${r.deviceId}|${r.ts}|${Object.keys(r.values).join(',')}`;
        const a = norm.map(sig).sort();
        const b = back.readings.map(sig).sort();
        expect(b).toEqual(a);
        for (const r of back.readings) {
          const orig = norm.find((o) => sig(o) === sig(r) && Object.entries(o.values).every(([k, v]) => Object.is(r.values[k], v)));
          expect(orig, `no original for ${sig(r)}`).toBeDefined();
        }
      }),
      { seed: 20261123, numRuns: 500 },
    );
  });

  it(`survives ${FUZZ_RUNS} random and mutated bodies: only ProtoDecodeError, each with a code`, () => {
    const seeds = [encodeBatch(goldenBatch), encodeBatch(sampleEnvironmentBatch(50, 5))];
    const mutated = fc
      .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat())
      .map(([seed, flips, cut]) => {
        const b = Buffer.from(seed);
        for (const [at, byte] of flips) b[at % b.length] = byte;
        return b.subarray(0, cut % 3 === 0 ? cut % b.length : b.length);
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated), (body) => {
        try {
          const b: Batch = decodeBatch(body);
          expect(b.edgeId.length).toBeGreaterThan(0);
        } catch (err) {
          expect(err).toBeInstanceOf(ProtoDecodeError);
          expect((err as ProtoDecodeError).code).toMatch(/^BATCH_[A-Z_]+$/);
        }
      }),
      { seed: 7, numRuns: FUZZ_RUNS },
    );
  });
});
