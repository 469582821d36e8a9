// The hand-written Batch encoder (src/encode-batch.ts) must write exactly the bytes of the protobufjs path
// it replaced (encode-batch-reference.ts): same tables, same row/series choice, same decimal scales, same
// field order and varint forms. Random batches cover what the edge sends and more: shapes shared, mixed or
// changing within a device, decimals up to 9 digits, plain doubles, -0, ±Infinity, huge and negative numbers,
// strings of every length class (lone surrogates included), tags beyond the device's, events, drops, lanes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch, FAMILIES, PRIORITIES, sampleEnvironmentBatch, type Batch, type DeviceEvent, type DropReport, type MetricValue, type Reading } from '../src/index.ts';
import { encodeBatchReference } from './encode-batch-reference.ts';
import { goldenBatch, goldenBatchDrops, goldenBatchTags } from './golden-batch.ts';

const RUNS = Number(process.env.CITYSENSE_FUZZ_RUNS ?? 5_000);

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function expectSameBytes(b: Batch): void {
  const got = encodeBatch(b);
  const want = encodeBatchReference(b);
  // Compare quickly; on a difference let vitest show both in hex.
  if (Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(want.buffer, want.byteOffset, want.byteLength)) !== 0) {
    expect(hex(got)).toBe(hex(want));
  }
}

// ---- arbitraries -----------------------------------------------------------------------------------------

/** Any string: short (< 40 units: protobufjs's own UTF-8 writer), medium, long (> 127), lone surrogates. */
const anyString = fc.oneof(
  { arbitrary: fc.string({ maxLength: 8 }), weight: 6 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 45 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'grapheme', minLength: 35, maxLength: 140 }), weight: 1 },
  { arbitrary: fc.string({ unit: 'binary', minLength: 120, maxLength: 300 }), weight: 1 },
);

const decimal = fc.tuple(fc.integer({ min: -2_000_000_000, max: 2_000_000_000 }), fc.integer({ min: 0, max: 9 })).map(([n, d]) => n / 10 ** d);
const number = fc.oneof(
  { arbitrary: decimal, weight: 6 },
  { arbitrary: fc.integer(), weight: 2 },
  { arbitrary: fc.integer({ min: -1e6, max: 1e6 }).map((n) => n / 10), weight: 4 },
  // big mantissas: a column scale that makes another value's mantissa unsafe falls back to doubles
  { arbitrary: fc.integer({ min: -1e15, max: 1e15 }).map((n) => n / 10), weight: 1 },
  { arbitrary: fc.maxSafeInteger(), weight: 1 },
  { arbitrary: fc.double({ noNaN: true }), weight: 2 },
  { arbitrary: fc.constantFrom(-0, 0, Infinity, -Infinity, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 1e20, 1e300, 5e-324, 0.1 + 0.2, 1e-10, 123456789.123456789), weight: 1 },
);
const metricValueWith = (text: fc.Arbitrary<string>): fc.Arbitrary<MetricValue> =>
  fc.oneof({ arbitrary: number, weight: 8 }, { arbitrary: fc.boolean(), weight: 1 }, { arbitrary: text, weight: 1 });
const metricValue = metricValueWith(anyString);

// Metric names: what the edge allows (letters, digits, _) and more (unicode, long, empty, __proto__).
// Names never hold \u0000 or \u0001: the old encoder's series signature used them as separators (see
// encode-batch.ts), and the edge's metric-name check rejects control characters anyway.
const metricName = fc.oneof(
  { arbitrary: fc.constantFrom('pm25', 'pm10', 'temperature', 'humidity', 'door_open', 'state', 'floor', 'x y', 'ü', '__proto__', '', 'a'.repeat(50)), weight: 8 },
  { arbitrary: fc.string({ maxLength: 6 }).filter((s) => !/[\u0000\u0001]/.test(s)), weight: 1 },
);
const SHAPES = [['pm25', 'pm10', 'temperature', 'humidity'], ['pm25', 'pm10'], ['pm10', 'pm25'], ['door_open', 'floor'], ['state'], []];
const valuesWith = (mv: fc.Arbitrary<MetricValue>): fc.Arbitrary<Record<string, MetricValue>> =>
  fc.oneof(
    { arbitrary: fc.constantFrom(...SHAPES).chain((names) => fc.tuple(...names.map(() => mv)).map((vs) => Object.fromEntries(names.map((n, i) => [n, vs[i]!])))), weight: 4 },
    // a station whose values keep their kinds (decimal columns) is the common case
    { arbitrary: fc.tuple(decimal, decimal, number, fc.integer({ min: 0, max: 100 })).map(([a, b, c, d]) => ({ pm25: a, pm10: b, temperature: c, humidity: d })), weight: 4 },
    { arbitrary: fc.dictionary(metricName, mv, { maxKeys: 5 }), weight: 2 },
  );
const values = valuesWith(metricValue);

const DEVICE_IDS = ['env-1', 'env-2', 'fire-1', 'dév-4', '', 'x'.repeat(45)];
const TAG_SETS: (Record<string, string> | undefined)[] = [
  undefined,
  { district: 'jinshui', model: 'AQM-9' },
  { district: 'erqi' },
  {},
  JSON.parse('{"__proto__":"p","district":"jinshui"}') as Record<string, string>,
  Object.assign(Object.create(null) as Record<string, string>, { '1': 'one', district: 'jinshui' }),
  // an inherited enumerable key: map fields skip it (Object.keys), extra tags see it (for...in)
  Object.assign(Object.create({ inherited: 'i' }) as Record<string, string>, { district: 'erqi' }),
];
const tags: fc.Arbitrary<Record<string, string> | undefined> = fc.oneof(
  { arbitrary: fc.constantFrom(...TAG_SETS), weight: 4 }, // shared objects, as the edge's registry hands them out
  { arbitrary: fc.constantFrom(...TAG_SETS).map((t) => (t ? { ...t } : t)), weight: 2 }, // equal copies
  { arbitrary: fc.tuple(fc.constantFrom(...TAG_SETS), fc.dictionary(fc.constantFrom('component', 'zone', 'district', '__proto__', '2'), fc.oneof(fc.constantFrom('x', 'y', 'jinshui'), anyString), { maxKeys: 3 })).map(([t, x]) => ({ ...t, ...x })), weight: 2 },
);

const ts = fc.oneof(
  { arbitrary: fc.integer({ min: 1_763_900_000_000, max: 1_763_900_100_000 }), weight: 8 },
  { arbitrary: fc.integer({ min: -1e13, max: 1e13 }), weight: 1 },
  { arbitrary: fc.constantFrom(0, 1.5, -2.25, 2 ** 53, -(2 ** 53), 2 ** 31, -(2 ** 31), 2 ** 32), weight: 1 },
);
const seqNumber = fc.oneof(fc.nat(), fc.maxSafeInteger(), fc.constantFrom(0, 1, 2 ** 32 + 5, -1, -(2 ** 40), 1.5));

const reading: fc.Arbitrary<Reading> = fc
  .record({
    deviceId: fc.constantFrom(...DEVICE_IDS),
    family: fc.constantFrom(...FAMILIES),
    ts,
    values,
    quality: fc.option(fc.constantFrom('', 'N', 'F', 'M', 'Ä'), { nil: undefined }),
    deviceSeq: fc.option(seqNumber, { nil: undefined }),
    tags,
  })
  .map((r) => {
    const out: Reading = { deviceId: r.deviceId, family: r.family, ts: r.ts, values: r.values };
    if (r.quality !== undefined) out.quality = r.quality;
    if (r.deviceSeq !== undefined) out.deviceSeq = r.deviceSeq;
    if (r.tags !== undefined) out.tags = r.tags;
    return out;
  });

const event: fc.Arbitrary<DeviceEvent> = fc
  .record({
    deviceId: fc.constantFrom(...DEVICE_IDS, 'fire-9'),
    family: fc.constantFrom(...FAMILIES),
    ts,
    type: fc.oneof(fc.constantFrom('fire_alarm', 'entrapment', ''), anyString),
    attrs: fc.oneof(fc.dictionary(fc.oneof(fc.constantFrom('zone', 'floor', ''), anyString), anyString, { maxKeys: 3 }), fc.constant(Object.assign(Object.create({ inherited: 'i' }) as Record<string, string>, { zone: 'B2' }))),
    priority: fc.constantFrom(...PRIORITIES),
    id: fc.oneof(fc.constantFrom('ev-1', ''), anyString),
    deviceSeq: fc.option(seqNumber, { nil: undefined }),
    tags,
  })
  .map((e) => {
    const out: DeviceEvent = { deviceId: e.deviceId, family: e.family, ts: e.ts, type: e.type, attrs: e.attrs, priority: e.priority, id: e.id };
    if (e.deviceSeq !== undefined) out.deviceSeq = e.deviceSeq;
    if (e.tags !== undefined) out.tags = e.tags;
    return out;
  });

const drop: fc.Arbitrary<DropReport> = fc.record({
  deviceId: fc.oneof(fc.constantFrom('env-1', ''), anyString),
  dataClass: fc.constantFrom('telemetry' as const, 'alarm' as const),
  reason: fc.constantFrom('QUEUE_FULL', 'QUOTA', ''),
  count: seqNumber,
  oldestTsMs: ts,
});

const batch = (maxReadings: number): fc.Arbitrary<Batch> =>
  fc
    .record({
      edgeId: fc.oneof(fc.constantFrom('edge-1', ''), anyString),
      seq: seqNumber,
      createdMs: ts,
      readings: fc.array(reading, { maxLength: maxReadings }),
      events: fc.array(event, { maxLength: 4 }),
      drops: fc.option(fc.array(drop, { maxLength: 3 }), { nil: undefined }),
      lane: fc.option(fc.constantFrom('telemetry' as const, 'alarm' as const), { nil: undefined }),
    })
    .map((b) => {
      const out: Batch = { edgeId: b.edgeId, seq: b.seq, createdMs: b.createdMs, readings: b.readings, events: b.events };
      if (b.drops !== undefined) out.drops = b.drops;
      if (b.lane !== undefined) out.lane = b.lane;
      return out;
    });

// ---- byte equality with the protobufjs path ----------------------------------------------------------

describe('hand-written Batch encoder: the same bytes as protobufjs', () => {
  it('the golden batches', () => {
    for (const b of [goldenBatch, goldenBatchTags, goldenBatchDrops]) expectSameBytes(b);
  });

  it('empty batches, with and without drops and lane', () => {
    expectSameBytes({ edgeId: 'e', seq: 1, createdMs: 1763900000000, readings: [], events: [] });
    expectSameBytes({ edgeId: '', seq: 0, createdMs: 0, readings: [], events: [] });
    expectSameBytes({ edgeId: 'e', seq: 2, createdMs: -5, readings: [], events: [], drops: [], lane: 'telemetry' });
    expectSameBytes({ edgeId: 'e', seq: 2, createdMs: 7, readings: [], events: [], drops: [{ deviceId: 'd', dataClass: 'alarm', reason: 'QUEUE_FULL', count: 0, oldestTsMs: 0 }], lane: 'alarm' });
  });

  it('realistic batches: 5,000 readings of 100 and 1,000 stations, 20-reading parts', () => {
    expectSameBytes(sampleEnvironmentBatch(5000, 100));
    expectSameBytes(sampleEnvironmentBatch(5000, 1000, 3));
    expectSameBytes(sampleEnvironmentBatch(20, 20, 4));
    expectSameBytes(sampleEnvironmentBatch(20, 4, 5));
  });

  it('lengths of 2 and 3 bytes: a series of 3,000 readings, a string of 20,000 characters', () => {
    const big = sampleEnvironmentBatch(3000, 1);
    expectSameBytes(big);
    const r = big.readings[0]!;
    expectSameBytes({ ...big, readings: [{ ...r, values: { note: 'ä'.repeat(20_000), pm25: 1.5 }, quality: 'q'.repeat(200) }] });
    expectSameBytes({ ...big, readings: big.readings.map((x, i) => ({ ...x, values: { ...x.values, note: `${i}`.repeat(i % 50) } })) });
  });

  it('series split by tags beyond the device\'s: other key, same value; same entries in another order; __proto__', () => {
    const r = (ts: number, tags: Record<string, string>): Reading => ({ deviceId: 'p', family: 'fire', ts, values: { v: ts / 10 }, tags });
    const dev = { district: 'a' };
    const proto = JSON.parse('{"district":"a","__proto__":"x"}') as Record<string, string>;
    const readings = [r(1, dev), r(2, { ...dev, component: 'x' }), r(3, { ...dev, zone: 'x' }), r(4, { ...dev, component: 'x' }), r(5, { ...dev, k: '1', j: '2' }), r(6, { ...dev, j: '2', k: '1' }), r(7, proto), r(8, dev), r(9, proto)];
    expectSameBytes({ edgeId: 'e', seq: 1, createdMs: 1, readings, events: [] });
    expect(decodeBatch(encodeBatch({ edgeId: 'e', seq: 1, createdMs: 1, readings, events: [] })).readings.map((x) => x.ts)).toEqual([1, 8, 2, 4, 3, 5, 6, 7, 9]);
  });

  it('messages whose length sits on a varint boundary (127/128, 16383/16384 bytes)', () => {
    const at = (lengths: number[]) => lengths.flatMap((l) => [l - 4, l - 3, l - 2, l - 1, l, l + 1, l + 2]);
    for (const len of at([128, 16384])) {
      const r: Reading = { deviceId: 'd', family: 'fire', ts: 1, values: { t: 'a'.repeat(len) } };
      expectSameBytes({ edgeId: 'e', seq: 1, createdMs: 1, readings: [r], events: [] });
      expectSameBytes({ edgeId: 'e', seq: 1, createdMs: 1, readings: [r, { ...r, ts: 2 }], events: [] });
    }
  });

  it(`${RUNS} random batches (up to 40 readings)`, () => {
    fc.assert(fc.property(batch(40), expectSameBytes), { seed: 20261124, numRuns: RUNS });
  });

  it(`${Math.ceil(RUNS / 20)} random batches of up to 400 readings (long series, multi-byte lengths)`, () => {
    fc.assert(fc.property(batch(400), expectSameBytes), { seed: 424242, numRuns: Math.ceil(RUNS / 20) });
  });
});

// ---- round trip -------------------------------------------------------------------------------------------

/** Batches the pipeline builds: a device keeps one family and its registry tags; ids and strings are valid text. */
const validBatch: fc.Arbitrary<Batch> = fc
  .record({
    readings: fc.array(
      fc.record({
        dev: fc.nat({ max: 5 }),
        ts: fc.integer({ min: 1_763_900_000_000, max: 1_763_900_100_000 }),
        values: valuesWith(metricValueWith(fc.string({ unit: 'grapheme', maxLength: 60 }))),
        quality: fc.option(fc.constantFrom('N', 'F', 'M'), { nil: undefined }),
        deviceSeq: fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: undefined }),
        component: fc.option(fc.constantFrom('1:3001', '1:4001'), { nil: undefined }),
      }),
      { maxLength: 40 },
    ),
    events: fc.array(fc.record({ dev: fc.nat({ max: 6 }), ts: fc.integer({ min: 1_763_900_000_000, max: 1_763_900_100_000 }), type: fc.constantFrom('fire_alarm', 'fault'), attrs: fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }), priority: fc.constantFrom(...PRIORITIES), deviceSeq: fc.option(fc.integer({ min: 1, max: 1e9 }), { nil: undefined }) }), { maxLength: 4 }),
    drops: fc.option(fc.array(fc.record({ deviceId: fc.constantFrom('env-1', 'env-9'), dataClass: fc.constantFrom('telemetry' as const, 'alarm' as const), reason: fc.constantFrom('QUEUE_FULL'), count: fc.integer({ min: 1, max: 1e9 }), oldestTsMs: fc.integer({ min: 1, max: 2e12 }) }), { minLength: 1, maxLength: 3 }), { nil: undefined }),
    lane: fc.option(fc.constantFrom('telemetry' as const, 'alarm' as const), { nil: undefined }),
  })
  .map((b) => {
    const dev = (i: number) => ({ deviceId: `dev-${i}`, family: FAMILIES[i % FAMILIES.length]!, tags: i === 0 ? undefined : { district: `d${i % 2}` } });
    const seen = new Set<number>();
    const readings = b.readings.map((r): Reading => {
      const d = dev(r.dev);
      const out: Reading = { deviceId: d.deviceId, family: d.family, ts: r.ts, values: r.values };
      // The first reading's tags become the device's: a component tag only on later ones stays the reading's.
      const first = !seen.has(r.dev);
      seen.add(r.dev);
      const tagsOut = r.component && !first ? { ...d.tags, component: r.component } : d.tags;
      if (tagsOut) out.tags = tagsOut;
      if (r.quality) out.quality = r.quality;
      if (r.deviceSeq) out.deviceSeq = r.deviceSeq;
      return out;
    });
    const events = b.events.map((e, i): DeviceEvent => {
      const d = dev(e.dev);
      const out: DeviceEvent = { deviceId: d.deviceId, family: d.family, ts: e.ts, type: e.type, attrs: e.attrs, priority: e.priority, id: `ev-${i}` };
      if (d.tags) out.tags = d.tags;
      if (e.deviceSeq) out.deviceSeq = e.deviceSeq;
      return out;
    });
    const out: Batch = { edgeId: 'edge-1', seq: 7, createdMs: 1_763_900_200_000, readings, events };
    if (b.drops) out.drops = b.drops;
    if (b.lane) out.lane = b.lane;
    return out;
  });

/** What decoding gives back for a reading: values bit-exact (-0 stays -0), tags at least the device's. */
const readingKey = (r: Reading) =>
  JSON.stringify([r.deviceId, r.family, r.ts, r.quality ?? null, r.deviceSeq ?? null, Object.entries(r.tags ?? {}).sort(), Object.entries(r.values).map(([k, v]) => [k, typeof v, Object.is(v, -0) ? '-0' : String(v)])]);

describe('hand-written Batch encoder: decodeBatch reads back what was encoded', () => {
  it(`${Math.ceil(RUNS / 5)} random batches round-trip`, () => {
    fc.assert(
      fc.property(validBatch, (b) => {
        const back = decodeBatch(encodeBatch(b));
        expect(back.edgeId).toBe(b.edgeId);
        expect(back.seq).toBe(b.seq);
        expect(back.createdMs).toBe(b.createdMs);
        expect(back.readings.map(readingKey).sort()).toEqual(b.readings.map(readingKey).sort());
        // Readings of one device keep their order within each series (and rows come first).
        expect(back.events).toEqual(b.events.map((e) => ({ ...e, tags: e.tags ?? {} })));
        expect(back.drops).toEqual(b.drops?.length ? b.drops : undefined);
        expect(back.lane).toBe(b.lane);
      }),
      { seed: 99, numRuns: Math.ceil(RUNS / 5) },
    );
  });
});
