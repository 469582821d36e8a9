// decodeBatch's limits are enforced while the bytes are scanned, before anything is allocated per item
// (src/wire-limits.ts): every limit has its code, the counts match what decoding yields, and a bomb of
// tens of millions of empty readings costs no heap.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkBatchWire,
  decodeBatch,
  DEFAULT_DECODE_LIMITS,
  encodeBatch,
  FAMILIES,
  ProtoDecodeError,
  ProtoLimitError,
  sampleEnvironmentBatch,
  type Batch,
  type DecodeLimits,
  type Reading,
} from '../src/index.ts';
import { goldenBatch } from './golden-batch.ts';

// ---- a tiny protobuf writer, to build bodies the encoder would never make ----
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const key = (field: number, wire: number) => varint(field * 8 + wire);
const ld = (field: number, body: number[] | Buffer) => Buffer.from([...key(field, 2), ...varint(body.length), ...body]);
const str = (field: number, s: string) => ld(field, [...Buffer.from(s)]);
/** edge_id, seq and one device: what every body below starts with. */
const HEAD = Buffer.concat([str(1, 'edge-a'), Buffer.from([...key(2, 0), 1]), ld(5, [...str(1, 'dev-1'), ...key(2, 0), 1])]);

const limits = (over: Partial<DecodeLimits>): DecodeLimits => ({ ...DEFAULT_DECODE_LIMITS, ...over });

function refusal(body: Uint8Array, lim: DecodeLimits = DEFAULT_DECODE_LIMITS): string {
  try {
    decodeBatch(body, lim);
  } catch (err) {
    expect(err).toBeInstanceOf(ProtoDecodeError);
    return (err as ProtoDecodeError).code + (err instanceof ProtoLimitError ? ' (limit)' : '');
  }
  return 'decoded';
}

describe('decode limits, checked on the wire before allocation', () => {
  it('lets the golden batch and the sample batch through under the defaults', () => {
    expect(decodeBatch(encodeBatch(goldenBatch)).readings).toHaveLength(3);
    const sample = sampleEnvironmentBatch(5000, 100);
    expect(decodeBatch(encodeBatch(sample)).readings).toHaveLength(5000);
  });

  it('refuses 30 million empty readings with BATCH_TOO_MANY_READINGS and a bounded heap', () => {
    // 60 MB of `3a 00` (field 7, empty Reading): what a 58 KB gzip body inflates to.
    const n = 30_000_000;
    const body = Buffer.alloc(HEAD.length + 2 * n);
    HEAD.copy(body);
    for (let i = HEAD.length; i < body.length; i += 2) body[i] = 0x3a;
    const before = process.memoryUsage().heapUsed;
    expect(refusal(body)).toBe('BATCH_TOO_MANY_READINGS (limit)');
    // protobufjs alone would build 30 M objects (GBs); the scan allocates a few counters. A GC in
    // between could only make the difference smaller, and 30 M objects cannot be collected mid-decode.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(16 * 1024 * 1024);
  });

  it('counts a series\' packed timestamps as readings and its columns\' entries as values', () => {
    const zeros = (n: number) => Buffer.alloc(n);
    const seriesTs = ld(9, [...key(1, 0), 0, ...ld(2, zeros(1_001))]);
    expect(refusal(Buffer.concat([HEAD, seriesTs]), limits({ maxReadings: 1_000 }))).toBe('BATCH_TOO_MANY_READINGS (limit)');
    const column = ld(3, [...key(1, 0), 0, ...ld(3, zeros(20_000))]);
    const seriesCol = ld(9, [...key(1, 0), 0, ...ld(2, [0, 0]), ...column]);
    expect(refusal(Buffer.concat([HEAD, str(6, 'pm25'), seriesCol]), limits({ maxValues: 10_000 }))).toBe('BATCH_TOO_MANY_VALUES (limit)');
    // Unpacked entries count too.
    const unpacked = ld(9, [...key(1, 0), 0, ...Array.from({ length: 11 }, () => [...key(2, 0), 0]).flat()]);
    expect(refusal(Buffer.concat([HEAD, unpacked]), limits({ maxReadings: 10 }))).toBe('BATCH_TOO_MANY_READINGS (limit)');
  });

  it('has a code for every other limit', () => {
    const many = (n: number, part: Buffer) => Buffer.concat(Array.from({ length: n }, () => part));
    const cases: [string, Buffer, Partial<DecodeLimits>][] = [
      ['BATCH_TOO_MANY_EVENTS', many(4, ld(8, [...str(3, 'x')])), { maxEvents: 3 }],
      ['BATCH_TOO_MANY_DEVICES', many(4, ld(5, [...str(1, 'd')])), { maxDevices: 4 }],
      ['BATCH_TOO_MANY_SERIES', many(4, ld(9, [])), { maxSeries: 3 }],
      ['BATCH_TOO_MANY_KEYS', many(4, str(6, 'k')), { maxKeys: 3 }],
      ['BATCH_TOO_MANY_METRICS', ld(7, [...many(4, ld(3, [...key(1, 0), 0, ...key(2, 1), 0, 0, 0, 0, 0, 0, 0, 0]))]), { maxMetricsPerReading: 3 }],
      ['BATCH_TOO_MANY_METRICS', ld(9, [...many(4, ld(3, []))]), { maxMetricsPerReading: 3 }],
      ['BATCH_TOO_MANY_TAGS', ld(5, [...str(1, 'd'), ...many(4, ld(3, [...str(1, 'k'), ...str(2, 'v')]))]), { maxTagsPerItem: 3 }],
      ['BATCH_TOO_MANY_TAGS', ld(8, [...many(4, ld(4, [...str(1, 'k'), ...str(2, 'v')]))]), { maxTagsPerItem: 3 }],
      ['BATCH_TOO_MANY_TAGS', ld(7, [...many(4, ld(6, [...str(1, 'k'), ...str(2, 'v')]))]), { maxTagsPerItem: 3 }],
      ['BATCH_TOO_MANY_DROPS', many(4, ld(10, [])), { maxDrops: 3 }],
      ['BATCH_STRING_TOO_LONG', str(6, 'x'.repeat(300)), { maxStringBytes: 256 }],
      ['BATCH_STRING_TOO_LONG', ld(8, [...str(6, 'x'.repeat(300))]), { maxStringBytes: 256 }],
      ['BATCH_STRING_TOO_LONG', ld(7, [...ld(3, [...key(1, 0), 0, ...str(6, 'x'.repeat(300))])]), { maxStringBytes: 256 }],
      ['BATCH_STRING_TOO_LONG', ld(5, [...str(1, 'd'), ...ld(3, [...str(1, 'k'), ...str(2, 'v'.repeat(300))])]), { maxStringBytes: 256 }],
    ];
    for (const [code, part, over] of cases) expect(refusal(Buffer.concat([HEAD, part]), limits(over)), code).toBe(`${code} (limit)`);
  });

  it('refuses groups (the one unknown field protobufjs descends into) and lengths past their message', () => {
    // Field 15 as a start-group, nested 10,000 deep.
    const groups = Buffer.concat([HEAD, Buffer.alloc(10_000, 15 * 8 + 3)]);
    expect(refusal(groups)).toBe('BATCH_UNDECODABLE');
    const overrun = Buffer.concat([HEAD, Buffer.from([...key(7, 2), 5, ...key(4, 2), 10])]);
    expect(refusal(overrun)).toBe('BATCH_UNDECODABLE');
    // An unknown length-delimited field is skipped whole, not descended into.
    const unknown = Buffer.concat([HEAD, ld(99, Buffer.alloc(1000, 0x3a))]);
    expect(refusal(unknown, limits({ maxReadings: 1 }))).toBe('decoded');
  });

  it('counts exactly what decoding yields: a batch at each limit passes, one under it is refused', () => {
    const reading: fc.Arbitrary<Reading> = fc.record({
      deviceId: fc.constantFrom('d1', 'd2', 'd3'),
      family: fc.constantFrom(...FAMILIES),
      ts: fc.integer({ min: 1_600_000_000_000, max: 1_600_000_100_000 }),
      values: fc.dictionary(fc.constantFrom('pm25', 'pm10', 'state', 'door'), fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.string({ maxLength: 4 })), { minKeys: 1 }),
    });
    fc.assert(
      fc.property(fc.array(reading, { minLength: 1, maxLength: 40 }), (readings) => {
        const b: Batch = { edgeId: 'e', seq: 1, createdMs: 1, readings, events: [] };
        const body = encodeBatch(b);
        const n = decodeBatch(body, DEFAULT_DECODE_LIMITS).readings.length;
        expect(n).toBe(readings.length);
        expect(() => checkBatchWire(body, limits({ maxReadings: n }))).not.toThrow();
        expect(refusal(body, limits({ maxReadings: n - 1 }))).toBe('BATCH_TOO_MANY_READINGS (limit)');
        const devices = new Set(readings.map((r) => r.deviceId)).size;
        expect(refusal(body, limits({ maxDevices: devices - 1 }))).toBe('BATCH_TOO_MANY_DEVICES (limit)');
      }),
      { seed: 11, numRuns: 300 },
    );
  });
});
