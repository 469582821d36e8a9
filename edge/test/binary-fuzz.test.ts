// Property-based fuzzing of the binary-layout decoder: random frames against the samples and against
// random valid layouts, random hex text, random layout objects. Nothing throws; every refusal is coded.
// CITYSENSE_FUZZ_RUNS sets the number of runs per property (default 10,000); CITYSENSE_FUZZ_SEED the seed.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FIELD_TYPES,
  decodeBinary,
  decodeBinaryAny,
  loadBinaryLayout,
  requiredLength,
  type BinaryDecoded,
  type BinaryLayout,
} from '../src/decoders/binary/index.ts';

const numRuns = Number(process.env.CITYSENSE_FUZZ_RUNS ?? 10_000);
const seed = Number(process.env.CITYSENSE_FUZZ_SEED ?? 2017);

const samples = ['smoke-detector', 'manhole-cover', 'gas-detector'].map((n) => {
  const r = loadBinaryLayout(JSON.parse(readFileSync(new URL(`../src/decoders/binary/samples/${n}.json`, import.meta.url), 'utf8')));
  if (!r.ok) throw new Error(r.message);
  return r.layout;
});

const INTEGER = new Set(['u8', 'i8', 'u16', 'i16', 'u24', 'u32', 'i32']);
const SIZE: Record<string, number> = { u8: 1, i8: 1, u16: 2, i16: 2, u24: 3, u32: 4, i32: 4, f32: 4, f64: 8 };
const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const scaleArb = fc.oneof(fc.constantFrom(0.1, 0.01, 0.001, 10, -1, 0.5), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }).filter((x) => x !== 0));
const bound = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 });

/** One field, valid by construction; its name is fixed later so names stay unique. */
type RawField = Record<string, unknown>;
const fieldArb = fc.constantFrom(...FIELD_TYPES).chain((type): fc.Arbitrary<RawField> => {
  const common = { offset: fc.nat({ max: 40 }) };
  if (type === 'hex' || type === 'ascii') return fc.record({ ...common, type: fc.constant(type), length: fc.integer({ min: 1, max: 16 }) });
  if (type === 'bits') {
    return fc.constantFrom(1, 2, 4).chain((length) =>
      fc.record({
        ...common,
        type: fc.constant(type),
        length: fc.constant(length),
        byteOrder: length > 1 ? optional(fc.constantFrom('big' as const, 'little' as const)) : fc.constant(undefined),
        bits: fc.uniqueArray(fc.nat({ max: 8 * length - 1 }), { minLength: 1, maxLength: 6 }).map((bs) => bs.map((bit) => ({ name: 'b', bit }))),
      }),
    );
  }
  const byteOrder = SIZE[type]! > 1 ? optional(fc.constantFrom('big' as const, 'little' as const)) : fc.constant(undefined);
  const numeric = fc
    .record({ scale: optional(scaleArb), add: optional(bound), decimals: optional(fc.integer({ min: 0, max: 12 })), lo: optional(bound), hi: optional(bound), unit: optional(fc.constantFrom('%', 'dBm', 'mm')) })
    .map(({ lo, hi, ...rest }) => ({ ...rest, min: lo !== undefined && hi !== undefined ? Math.min(lo, hi) : lo, max: lo !== undefined && hi !== undefined ? Math.max(lo, hi) : hi }));
  const withEnum = fc.dictionary(fc.integer({ min: -200, max: 300 }).map(String), fc.constantFrom('normal', 'alarm', 'fault'), { minKeys: 1, maxKeys: 5 }).map((e) => ({ enum: e }));
  return fc.record({ ...common, type: fc.constant(type), byteOrder, extra: INTEGER.has(type) ? fc.oneof(numeric, withEnum) : numeric }).map(({ extra, ...f }) => ({ ...f, ...extra }));
});

const layoutArb = fc
  .record({
    byteOrder: optional(fc.constantFrom('big' as const, 'little' as const)),
    minLength: optional(fc.nat({ max: 60 })),
    match: optional(fc.record({ byte: fc.nat({ max: 8 }), equals: fc.nat({ max: 255 }) })),
    fields: fc.array(fieldArb, { minLength: 1, maxLength: 8 }),
  })
  .map((l) => {
    // Drop undefined keys (the schema is strict about keys, not about their absence) and name everything uniquely.
    const clean = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
    return clean({
      ...l,
      match: l.match,
      fields: l.fields.map((f, i) => {
        const bits = f['bits'] as Array<{ bit: number }> | undefined;
        return clean({ ...f, name: `f${i}`, bits: bits?.map((b, j) => ({ name: `f${i}_b${j}`, bit: b.bit })) });
      }),
    });
  });

function check(r: BinaryDecoded, layout: BinaryLayout, length: number | undefined): void {
  for (const x of r.refusals) {
    expect(x.code).toMatch(/^BINARY_/);
    expect(x.message.length).toBeGreaterThan(10);
  }
  const names = new Set(layout.fields.flatMap((f) => (f.type === 'bits' ? (f.bits ?? []).map((b) => b.name) : [f.name])));
  for (const [k, v] of Object.entries(r.values)) {
    expect(names.has(k), k).toBe(true);
    if (typeof v === 'number') expect(Number.isFinite(v)).toBe(true);
  }
  if (length === undefined) return;
  const short = length < requiredLength(layout);
  expect(r.refusals.some((x) => x.code === 'BINARY_TOO_SHORT')).toBe(short);
  if (short) expect(Object.keys(r.values)).toHaveLength(0);
}

describe('binary fuzzing', () => {
  it(`random frames against the sample layouts (${numRuns} runs)`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), fc.nat({ max: 2 }), (bytes, i) => {
        check(decodeBinary(bytes, samples[i]!), samples[i]!, bytes.length);
        const any = decodeBinaryAny(bytes, samples);
        for (const x of any.refusals) expect(x.code).toMatch(/^BINARY_/);
      }),
      { seed, numRuns },
    );
  });

  it(`random frames against random valid layouts (${numRuns} runs)`, () => {
    fc.assert(
      fc.property(layoutArb, fc.uint8Array({ maxLength: 80 }), fc.boolean(), (input, bytes, asHex) => {
        const loaded = loadBinaryLayout(input);
        expect(loaded.ok, loaded.ok ? '' : loaded.message).toBe(true);
        if (!loaded.ok) return;
        const payload = asHex ? Buffer.from(bytes).toString('hex').replace(/(..)/g, '$1 ') : bytes;
        check(decodeBinary(payload, loaded.layout), loaded.layout, bytes.length);
      }),
      { seed, numRuns },
    );
  });

  it(`random text as hex (${numRuns} runs)`, () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.stringMatching(/^(0x)?([0-9a-fA-F]{2} ?){0,12}[0-9a-fA-F]?$/)), fc.nat({ max: 2 }), (text, i) => {
        check(decodeBinary(text, samples[i]!), samples[i]!, undefined);
      }),
      { seed, numRuns },
    );
  });

  it(`random and mutated layout objects never make loadBinaryLayout throw (${numRuns} runs)`, () => {
    const mutated = fc.tuple(layoutArb, fc.constantFrom('offset', 'type', 'name', 'length', 'bits', 'scale', 'min', 'enum', 'nope'), fc.anything()).map(([l, key, v]) => {
      const fields = (l as { fields: Array<Record<string, unknown>> }).fields;
      fields[0] = { ...fields[0], [key]: v };
      return l;
    });
    fc.assert(
      fc.property(fc.oneof(fc.anything(), mutated), (input) => {
        const r = loadBinaryLayout(input);
        if (!r.ok) {
          expect(r.code).toBe('BINARY_BAD_LAYOUT');
          expect(r.issues.length).toBeGreaterThan(0);
        }
      }),
      { seed, numRuns },
    );
  });
});
