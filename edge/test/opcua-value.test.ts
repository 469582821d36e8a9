// The OPC-UA value mapping: unit cases on node-opcua's own DataValue and on plain shapes, the grouping
// of one notification into samples, and property-based fuzzing: nothing escapes, every refusal is coded.
// CITYSENSE_FUZZ_RUNS sets the number of runs per property (default 10,000); CITYSENSE_FUZZ_SEED the seed.
import fc from 'fast-check';
import { DataType, DataValue, LocalizedText, StatusCodes, Variant, VariantArrayType } from 'node-opcua';
import { describe, expect, it } from 'vitest';
import { MAX_STRING_LENGTH, OPCUA_VALUE_REJECT, mapDataValue } from '../src/decoders/opcua/index.ts';
import { groupNotification } from '../src/inputs/opcua/samples.ts';

const numRuns = Number(process.env.CITYSENSE_FUZZ_RUNS ?? 10_000);
const seed = Number(process.env.CITYSENSE_FUZZ_SEED ?? 24476);
const CODES = new Set<string>(Object.values(OPCUA_VALUE_REJECT));
const T0 = new Date('2024-01-15T10:30:00.000Z');

const dv = (dataType: DataType, value: unknown, statusCode = StatusCodes.Good) =>
  new DataValue({ value: new Variant({ dataType, arrayType: VariantArrayType.Scalar, value }), statusCode, sourceTimestamp: T0, serverTimestamp: T0 });

describe('mapDataValue on node-opcua DataValues', () => {
  it.each([
    [DataType.Boolean, true, true],
    [DataType.SByte, -5, -5],
    [DataType.Byte, 200, 200],
    [DataType.Int16, -12, -12],
    [DataType.UInt16, 65535, 65535],
    [DataType.Int32, 3, 3],
    [DataType.UInt32, 4294967295, 4294967295],
    [DataType.Double, 612.5, 612.5],
    [DataType.String, 'E07', 'E07'],
  ] as const)('%s', (type, value, expected) => {
    expect(mapDataValue(dv(type, value))).toEqual({ ok: true, value: expected, ts: T0.getTime() });
  });

  it('Float keeps the float32 value', () => {
    const r = mapDataValue(dv(DataType.Float, 0.5));
    expect(r).toEqual({ ok: true, value: 0.5, ts: T0.getTime() });
  });

  it('64-bit integers: as numbers when exact, refused beyond 2^53', () => {
    expect(mapDataValue(dv(DataType.UInt64, [0, 42]))).toMatchObject({ ok: true, value: 42 });
    expect(mapDataValue(dv(DataType.Int64, [0xffffffff, 0xfffffffe]))).toMatchObject({ ok: true, value: -2 });
    expect(mapDataValue(dv(DataType.UInt64, [0x001fffff, 0xffffffff]))).toMatchObject({ ok: true, value: Number.MAX_SAFE_INTEGER });
    expect(mapDataValue(dv(DataType.UInt64, [0x00200000, 0]))).toMatchObject({ ok: false, code: 'OPCUA_OUT_OF_RANGE' });
    expect(mapDataValue({ value: { dataType: DataType.Int64, value: -(2n ** 60n) } })).toMatchObject({ ok: false, code: 'OPCUA_OUT_OF_RANGE' });
    expect(mapDataValue({ value: { dataType: DataType.Int64, value: -123n } })).toMatchObject({ ok: true, value: -123 });
  });

  it('LocalizedText gives its text', () => {
    expect(mapDataValue(dv(DataType.LocalizedText, new LocalizedText({ text: '检修', locale: 'zh-CN' })))).toMatchObject({ ok: true, value: '检修' });
    expect(mapDataValue(dv(DataType.LocalizedText, new LocalizedText({ locale: 'en' })))).toMatchObject({ ok: false, code: 'OPCUA_NO_VALUE' });
  });

  it('Uncertain keeps the value with quality U; Bad is refused with the status named', () => {
    expect(mapDataValue(dv(DataType.Double, 1, StatusCodes.UncertainLastUsableValue))).toEqual({ ok: true, value: 1, ts: T0.getTime(), quality: 'U' });
    const bad = mapDataValue(dv(DataType.Double, 1, StatusCodes.BadNodeIdUnknown));
    expect(bad).toMatchObject({ ok: false, code: 'OPCUA_BAD_STATUS' });
    expect(!bad.ok && bad.message).toContain('BadNodeIdUnknown');
    expect(mapDataValue(new DataValue({ statusCode: StatusCodes.BadCommunicationError }))).toMatchObject({ ok: false, code: 'OPCUA_BAD_STATUS' });
  });

  it('refuses what is not a reading', () => {
    expect(mapDataValue(dv(DataType.Double, Number.NaN))).toMatchObject({ ok: false, code: 'OPCUA_NOT_FINITE' });
    expect(mapDataValue(dv(DataType.Float, Number.POSITIVE_INFINITY))).toMatchObject({ ok: false, code: 'OPCUA_NOT_FINITE' });
    expect(mapDataValue(dv(DataType.DateTime, T0))).toMatchObject({ ok: false, code: 'OPCUA_UNSUPPORTED_TYPE' });
    expect(mapDataValue(dv(DataType.ByteString, Buffer.from('x')))).toMatchObject({ ok: false, code: 'OPCUA_UNSUPPORTED_TYPE' });
    expect(
      mapDataValue(new DataValue({ value: new Variant({ dataType: DataType.Double, arrayType: VariantArrayType.Array, value: [1, 2] }) })),
    ).toMatchObject({ ok: false, code: 'OPCUA_UNSUPPORTED_TYPE' });
    expect(mapDataValue(new DataValue({}))).toMatchObject({ ok: false, code: 'OPCUA_NO_VALUE' });
    expect(mapDataValue(dv(DataType.String, 'x'.repeat(MAX_STRING_LENGTH + 1)))).toMatchObject({ ok: false, code: 'OPCUA_STRING_TOO_LONG' });
    expect(mapDataValue({ value: { dataType: DataType.Int16, value: 40000 } })).toMatchObject({ ok: false, code: 'OPCUA_OUT_OF_RANGE' });
    expect(mapDataValue({ value: { dataType: DataType.Boolean, value: 1 } })).toMatchObject({ ok: false, code: 'OPCUA_MALFORMED' });
    expect(mapDataValue(null)).toMatchObject({ ok: false, code: 'OPCUA_MALFORMED' });
    const hostile = { get value(): never { throw new Error('boom'); } };
    expect(mapDataValue(hostile)).toMatchObject({ ok: false, code: 'OPCUA_MALFORMED' });
  });

  it('timestamps: source time, absent when missing or at the OPC-UA minimum', () => {
    expect(mapDataValue({ value: { dataType: DataType.Int32, value: 1 } })).toEqual({ ok: true, value: 1 });
    expect(mapDataValue({ value: { dataType: DataType.Int32, value: 1 }, sourceTimestamp: new Date(Date.UTC(1601, 0, 1)) })).toEqual({ ok: true, value: 1 });
    expect(mapDataValue({ value: { dataType: DataType.Int32, value: 1 }, sourceTimestamp: new Date(Number.NaN) })).toEqual({ ok: true, value: 1 });
  });
});

describe('groupNotification', () => {
  const at = (ms: number) => new Date(T0.getTime() + ms);
  const v = (deviceId: string, metric: string, dataType: DataType, value: unknown, ms?: number, statusCode = StatusCodes.Good) => ({
    deviceId,
    metric,
    dataValue: new DataValue({ value: new Variant({ dataType, value }), statusCode, ...(ms !== undefined ? { sourceTimestamp: at(ms) } : {}) }),
  });

  it('one sample per device, ts = newest source timestamp', () => {
    const g = groupNotification(
      [v('e1', 'floor', DataType.Int16, 3, 10), v('e2', 'floor', DataType.Int16, 7, 5), v('e1', 'running', DataType.Boolean, false, 30), v('e1', 'direction', DataType.Int32, 0, 20)],
      999,
    );
    expect(g.rejected).toEqual([]);
    expect(g.samples).toEqual([
      { deviceId: 'e1', sample: { ts: T0.getTime() + 30, values: { floor: 3, running: false, direction: 0 } } },
      { deviceId: 'e2', sample: { ts: T0.getTime() + 5, values: { floor: 7 } } },
    ]);
  });

  it('a metric queued twice opens a second sample instead of overwriting (a fault that came and went)', () => {
    const g = groupNotification([v('e1', 'fault_code', DataType.UInt16, 1, 10), v('e1', 'fault_code', DataType.UInt16, 0, 60)], 999);
    expect(g.samples.map((s) => s.sample.values)).toEqual([{ fault_code: 1 }, { fault_code: 0 }]);
  });

  it('refused values are left out and reported; uncertain ones go apart with quality U; no timestamp → receive time', () => {
    const g = groupNotification(
      [v('e1', 'floor', DataType.Int16, 3), v('e1', 'load', DataType.Double, Number.NaN), v('e1', 'door_open', DataType.Boolean, true, undefined, StatusCodes.UncertainInitialValue), v('e1', 'x', DataType.Int16, 1, undefined, StatusCodes.BadOutOfService)],
      4242,
    );
    expect(g.samples).toEqual([
      { deviceId: 'e1', sample: { ts: 4242, values: { floor: 3 } } },
      { deviceId: 'e1', sample: { ts: 4242, values: { door_open: true }, quality: 'U' } },
    ]);
    expect(g.rejected.map((r) => [r.metric, r.code])).toEqual([
      ['load', 'OPCUA_NOT_FINITE'],
      ['x', 'OPCUA_BAD_STATUS'],
    ]);
  });
});

// --- fuzzing ---------------------------------------------------------------------------------------

const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.bigInt(),
  fc.boolean(),
  fc.string({ maxLength: 20 }),
  fc.string({ minLength: MAX_STRING_LENGTH - 2, maxLength: MAX_STRING_LENGTH + 2 }),
  fc.constantFrom(null, undefined, Number.NaN, Infinity, -Infinity, -0, 2 ** 53, -(2 ** 53), 2 ** 64),
  fc.tuple(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff })).map(([a, b]) => [a, b]),
  fc.array(fc.anything(), { maxLength: 3 }),
  fc.record({ text: fc.oneof(fc.string(), fc.constant(null), fc.integer()), locale: fc.string() }, { requiredKeys: [] }),
  fc.anything(),
);
const statusArb = fc.oneof(
  fc.constantFrom(undefined, null, StatusCodes.Good, StatusCodes.UncertainLastUsableValue, StatusCodes.BadNodeIdUnknown, StatusCodes.BadOutOfService),
  fc.nat({ max: 0xffffffff }),
  fc.nat({ max: 0xffffffff }).map((value) => ({ value, name: 'Fuzzed' })),
  fc.anything(),
);
const tsArb = fc.oneof(fc.constant(undefined), fc.date({ noInvalidDate: false }), fc.double(), fc.anything());
const plainDataValue = fc.record(
  {
    value: fc.oneof(
      fc.record({ dataType: fc.oneof(fc.integer({ min: -1, max: 30 }), fc.anything()), arrayType: fc.oneof(fc.constant(undefined), fc.constantFrom(0, 1, 2), fc.anything()), value: anyValue }, { requiredKeys: [] }),
      fc.anything(),
    ),
    statusCode: statusArb,
    sourceTimestamp: tsArb,
    serverTimestamp: tsArb,
  },
  { requiredKeys: [] },
);
// Real node-opcua DataValues of the types the mapping handles, with values the Variant accepts.
const realDataValue = fc
  .oneof(
    fc.boolean().map((v) => [DataType.Boolean, v] as const),
    fc.integer({ min: -32768, max: 32767 }).map((v) => [DataType.Int16, v] as const),
    fc.integer({ min: 0, max: 65535 }).map((v) => [DataType.UInt16, v] as const),
    fc.integer({ min: -2147483648, max: 2147483647 }).map((v) => [DataType.Int32, v] as const),
    fc.double().map((v) => [DataType.Double, v] as const),
    fc.float().map((v) => [DataType.Float, v] as const),
    fc.string({ maxLength: 30 }).map((v) => [DataType.String, v] as const),
    fc.tuple(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff })).map((v) => [DataType.UInt64, v] as const),
    fc.tuple(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff })).map((v) => [DataType.Int64, v] as const),
  )
  .chain(([type, value]) =>
    fc.constantFrom(StatusCodes.Good, StatusCodes.UncertainSensorNotAccurate, StatusCodes.BadSensorFailure).map((statusCode) => dv(type, value, statusCode)),
  );

function checkResult(r: ReturnType<typeof mapDataValue>): void {
  if (r.ok) {
    expect(['number', 'boolean', 'string']).toContain(typeof r.value);
    if (typeof r.value === 'number') {
      expect(Number.isFinite(r.value)).toBe(true);
      if (Number.isInteger(r.value)) expect(Number.isSafeInteger(r.value) || Math.abs(r.value) > 2 ** 53).toBe(true);
    }
    if (typeof r.value === 'string') expect(r.value.length).toBeLessThanOrEqual(MAX_STRING_LENGTH);
    if (r.ts !== undefined) expect(Number.isInteger(r.ts)).toBe(true);
    if (r.quality !== undefined) expect(r.quality).toBe('U');
  } else {
    expect(CODES.has(r.code)).toBe(true);
    expect(typeof r.message).toBe('string');
    expect(r.message.length).toBeGreaterThan(0);
  }
}

describe('mapDataValue fuzzing', () => {
  it(`never throws; every refusal is coded (${numRuns} runs, plain shapes)`, () => {
    fc.assert(
      fc.property(fc.oneof(plainDataValue, fc.anything()), (input) => {
        checkResult(mapDataValue(input));
      }),
      { numRuns, seed },
    );
  });

  it(`real DataValues: Good/Uncertain keep their value exactly when representable, Bad is refused (${numRuns} runs)`, () => {
    fc.assert(
      fc.property(realDataValue, (d) => {
        const r = mapDataValue(d);
        checkResult(r);
        const severity = d.statusCode.value >>> 30;
        if (severity >= 2) {
          expect(r).toMatchObject({ ok: false, code: 'OPCUA_BAD_STATUS' });
          return;
        }
        const raw = d.value.value as unknown;
        if (r.ok) {
          expect(r.quality).toBe(severity === 1 ? 'U' : undefined);
          if (typeof raw !== 'object') expect(r.value).toBe(raw);
        } else {
          expect(['OPCUA_NOT_FINITE', 'OPCUA_OUT_OF_RANGE']).toContain(r.code);
        }
      }),
      { numRuns, seed },
    );
  });

  it(`groupNotification: every value ends up in a sample or in the refusals (${numRuns} runs)`, () => {
    const entry = fc.record({ deviceId: fc.constantFrom('e1', 'e2', '__proto__'), metric: fc.constantFrom('floor', 'load', 'constructor', '__proto__'), dataValue: fc.oneof(realDataValue, plainDataValue) });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 12 }), (entries) => {
        const g = groupNotification(entries, 1);
        const delivered = g.samples.reduce((n, s) => n + Object.keys(s.sample.values).length, 0);
        expect(delivered + g.rejected.length).toBe(entries.length);
        for (const r of g.rejected) expect(CODES.has(r.code)).toBe(true);
      }),
      { numRuns, seed },
    );
  });
});
