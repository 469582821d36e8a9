// Property-based fuzzing of the GB/T 26875.3 decoder: random bytes, random frames with a valid checksum
// (so the data-unit parsers are reached), mutated simulator frames with and without a repaired checksum,
// random profile sections. Nothing throws; every refusal is coded GB26875_*; every value is finite.
// CITYSENSE_FUZZ_RUNS sets the runs per property (default 10,000); CITYSENSE_FUZZ_SEED the seed.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Gb26875Decoder, decodeGb26875, loadGb26875Profile, parseFrame, type Gb26875Decoded, type Gb26875Profile } from '../src/decoders/gb26875/index.ts';
import { FirePanelModel } from '../../device-sim/src/fire-panel/panel.ts';

const numRuns = Number(process.env.CITYSENSE_FUZZ_RUNS ?? 10_000);
const seed = Number(process.env.CITYSENSE_FUZZ_SEED ?? 26875);

function section(input: unknown): Gb26875Profile {
  const r = loadGb26875Profile(input);
  if (!r.ok) throw new Error(r.refusal.message);
  return r.profile;
}
const plain = section({});
const configured = section({
  building: 'b',
  components: { '1:65793': { zone: 'F1-Z1', floor: 1 }, '7': { name: 'x', metric: 'custom' } },
  stateEvents: { component: { '9': { type: 'reserved_bit', priority: 'routine' } }, system: { '1': false } },
  analogTypes: { '128': { metric: 'smoke_obscuration', unit: '%/m', scale: 0.01, min: 0, max: 100 } },
  analogMetrics: [{ analogType: 5, componentType: 99, metric: 'pipe' }],
  maxTrackedStates: 16,
});

// A pool of real frames: every hook of a simulated panel.
const pool: Uint8Array[] = (() => {
  const p = new FirePanelModel({ id: 'fuzz', seed: 1, now: () => Date.UTC(2026, 0, 1) });
  return [...p.startup(), ...p.smoke('F1-Z1-D1'), ...p.fireAlarm('F2-Z2'), ...p.sprinklerPressureDrop(0.1), ...p.fault('water-tank'), ...p.reset()].map((f) => f.bytes);
})();

/** Plain checks rather than expect() per value: the properties run tens of thousands of times. */
function check(r: Gb26875Decoded): void {
  const fail = (what: string) => {
    throw new Error(`${what}: ${JSON.stringify(r)}`);
  };
  for (const x of r.refusals) {
    if (!/^GB26875_[A-Z_]+$/.test(x.code)) fail(`uncoded refusal ${x.code}`);
    // Only an unvalidated section may cause GB26875_BAD_PROFILE, i.e. an exception caught inside.
    if (x.code === 'GB26875_BAD_PROFILE') fail('an exception escaped the parsers');
    if (x.message.length <= 20) fail('refusal without a message');
  }
  for (const s of r.samples) {
    for (const v of Object.values(s.values)) if (typeof v === 'number' && !Number.isFinite(v)) fail('non-finite value');
    if (s.ts !== undefined && !Number.isFinite(s.ts)) fail('non-finite ts');
  }
  for (const e of r.events) {
    if (!['routine', 'warning', 'alarm'].includes(e.priority)) fail('bad priority');
    if (!/^[a-z][a-z0-9_]*$/.test(e.type)) fail('bad event type');
    for (const v of Object.values(e.attrs)) if (typeof v !== 'string') fail('non-string attr');
  }
}

function withChecksum(b: Uint8Array): Uint8Array {
  const out = b.slice();
  if (out.length < 30) return out;
  const n = out[24]! | (out[25]! << 8);
  if (27 + n + 3 !== out.length) return out;
  let sum = 0;
  for (let i = 2; i < 27 + n; i++) sum += out[i]!;
  out[27 + n] = sum & 0xff;
  return out;
}

/** A frame with a correct length, end marker and checksum around arbitrary application data. */
const frameArb = fc
  .record({
    header: fc.uint8Array({ minLength: 22, maxLength: 22 }),
    command: fc.oneof(fc.constantFrom(2, 5), fc.nat(255)),
    type: fc.oneof(fc.constantFrom(1, 2, 3, 4, 21, 24), fc.nat(255)),
    count: fc.nat(255),
    body: fc.oneof(fc.uint8Array({ maxLength: 120 }), fc.nat(8).chain((k) => fc.uint8Array({ minLength: k * 16, maxLength: k * 16 }))),
  })
  .map(({ header, command, type, count, body }) => {
    const data = [type, count, ...body];
    return withChecksum(Uint8Array.from([0x40, 0x40, ...header, data.length & 0xff, data.length >> 8, command, ...data, 0, 0x23, 0x23]));
  });

/** Object-shaped data: a count that matches, timed objects of the right size, with random fields. */
const objectsArb = fc.constantFrom(1, 2, 3, 4, 21, 24).chain((type) => {
  const size = { 1: 10, 2: 46, 3: 16, 4: 10, 21: 7, 24: 8 }[type]!;
  return fc.integer({ min: 1, max: 12 }).chain((k) => fc.uint8Array({ minLength: k * size, maxLength: k * size }).map((objs) => {
    const data = [type, k, ...objs];
    const time = [0, 30, 8, 23, 11, 26];
    return withChecksum(Uint8Array.from([0x40, 0x40, 1, 0, 1, 0, ...time, ...new Array(12).fill(0), data.length & 0xff, data.length >> 8, 2, ...data, 0, 0x23, 0x23]));
  }));
});

const mutate = fc
  .record({
    frame: fc.constantFrom(...pool),
    edits: fc.array(fc.record({ kind: fc.constantFrom('set', 'flip', 'insert', 'delete', 'cut'), at: fc.nat(2000), value: fc.nat(255) }), { minLength: 1, maxLength: 4 }),
    repair: fc.boolean(),
  })
  .map(({ frame, edits, repair }) => {
    const b = [...frame];
    for (const e of edits) {
      const at = b.length === 0 ? 0 : e.at % b.length;
      if (e.kind === 'set') b[at] = e.value;
      else if (e.kind === 'flip') b[at] = (b[at] ?? 0) ^ (1 << (e.value % 8));
      else if (e.kind === 'insert') b.splice(at, 0, e.value);
      else if (e.kind === 'delete') b.splice(at, 1);
      else b.length = at;
    }
    const out = Uint8Array.from(b);
    return repair ? withChecksum(out) : out;
  });

describe('GB/T 26875.3 fuzzing', () => {
  it('the simulator pool decodes cleanly (the mutations start from good frames)', () => {
    for (const f of pool) expect(decodeGb26875(f, configured).refusals).toEqual([]);
  });

  it(`random bytes, alone and behind '@@' (${numRuns} runs)`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, prefix) => {
        const b = prefix ? Uint8Array.from([0x40, 0x40, ...bytes]) : bytes;
        check(decodeGb26875(b, plain));
      }),
      { seed, numRuns },
    );
  });

  it(`random frames with a valid checksum reach the data-unit parsers (${numRuns} runs)`, () => {
    const dec = new Gb26875Decoder(configured);
    fc.assert(
      fc.property(fc.oneof(frameArb, objectsArb), fc.boolean(), (frame, useConfigured) => {
        if (!parseFrame(frame).ok) throw new Error('the generator made a frame that does not parse');
        const r = useConfigured ? dec.decode('fuzz', frame) : decodeGb26875(frame, plain);
        check(r);
        if (r.frame === undefined) throw new Error('a well-formed frame was refused whole');
      }),
      { seed, numRuns },
    );
    expect(dec.stateOf('fuzz')!.size).toBeLessThanOrEqual(16);
  });

  it(`mutated simulator frames, checksum repaired or not (${numRuns} runs)`, () => {
    const dec = new Gb26875Decoder(configured);
    fc.assert(
      fc.property(mutate, (frame) => {
        check(dec.decode('fuzz', frame));
        check(decodeGb26875(frame, plain));
      }),
      { seed, numRuns },
    );
  });

  it(`random and mutated profile sections never make loadGb26875Profile throw (${numRuns} runs)`, () => {
    const mutated = fc.tuple(fc.constantFrom('timezoneOffsetMinutes', 'components', 'stateEvents', 'analogTypes', 'analogMetrics', 'building', 'nope'), fc.anything()).map(([k, v]) => ({ components: { '1:2': { zone: 'A' } }, [k]: v }));
    fc.assert(
      fc.property(fc.oneof(fc.anything(), mutated), (input) => {
        const r = loadGb26875Profile(input);
        if (!r.ok) {
          expect(r.refusal.code).toBe('GB26875_BAD_PROFILE');
          expect(r.issues.length).toBeGreaterThan(0);
        }
      }),
      { seed, numRuns },
    );
  });
});
