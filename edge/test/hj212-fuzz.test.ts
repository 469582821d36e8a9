// Property-based fuzzing of the HJ 212 decoder: random, mutated and re-framed inputs. Nothing may throw,
// every refusal is coded, and on a stream the good frames always come out whole.
// CITYSENSE_FUZZ_RUNS sets the number of runs per property (default 10,000); CITYSENSE_FUZZ_SEED the seed.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Hj212StreamSplitter,
  answerFor,
  encodeFrame,
  frameToReadings,
  parseFrame,
  type Hj212StreamItem,
} from '../src/decoders/hj212/index.ts';

const numRuns = Number(process.env.CITYSENSE_FUZZ_RUNS ?? 10_000);
const seed = Number(process.env.CITYSENSE_FUZZ_SEED ?? 20170101);
const shared = JSON.parse(readFileSync(new URL('../../../shared/testdata/hj212/vectors.json', import.meta.url), 'utf8')) as {
  vectors: Array<{ name: string; frame: string; valid: boolean }>;
};
const GOOD = shared.vectors.filter((v) => v.valid && v.name !== 'wrong-password').map((v) => v.frame);
const ALL = shared.vectors.map((v) => v.frame);
const segmentOf = (frame: string) => frame.slice(6, frame.length - 6);

// Characters a corrupted frame is likely to contain, weighted towards the ones the grammar cares about.
const frameChar = fc.oneof(
  fc.constantFrom(...'0123456789;=,&-#\r\nABCDEFabcdef.QNSTCPWMFlagRtdz'.split('')),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
);
type Mutation = { at: number; op: 'replace' | 'insert' | 'delete' | 'cut'; ch: string };
const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('replace', 'insert', 'delete', 'cut'),
  ch: frameChar,
});
function mutate(text: string, ms: Mutation[]): string {
  let t = text;
  for (const m of ms) {
    const i = t.length === 0 ? 0 : m.at % t.length;
    if (m.op === 'replace') t = t.slice(0, i) + m.ch + t.slice(i + 1);
    else if (m.op === 'insert') t = t.slice(0, i) + m.ch + t.slice(i);
    else if (m.op === 'delete') t = t.slice(0, i) + t.slice(i + 1);
    else t = t.slice(0, i);
  }
  return t;
}

// A segment built from plausible pieces, then framed with the right length and CRC: these get past
// the CRC and exercise the field and value checks, which random bytes almost never reach.
const piece = fc.oneof(
  fc.constantFrom('QN=20240115103000123', 'ST=22', 'CN=2011', 'CN=2051', 'CN=9014', 'PW=123456', 'MN=010000A8900016F000169DC0', 'Flag=5', 'Flag=7', 'Flag=9', 'PNUM=2', 'PNO=1'),
  fc.tuple(fc.constantFrom('QN', 'ST', 'CN', 'PW', 'MN', 'Flag', 'PNUM', 'PNO', 'X'), fc.string({ maxLength: 30 })).map(([k, v]) => `${k}=${v}`),
);
const cpItem = fc.oneof(
  fc.tuple(fc.constantFrom('a34004', 'a01001', 'LA', 'constructor', '__proto__', 'x'), fc.constantFrom('Rtd', 'Avg', 'Min', 'Max', 'Cou', 'ZsRtd', 'Flag', 'EFlag', 'SampleTime', 'Odd'), fc.oneof(fc.double().map(String), fc.constantFrom('N', 'T', 'D', '', '1e999', '0x10', '-0', ' 1', 'NaN'), fc.string({ maxLength: 8 }))).map(([c, s, v]) => `${c}-${s}=${v}`),
  fc.oneof(fc.constantFrom('DataTime=20240115103000', 'DataTime=20240230103000', 'DataTime=99999999999999', 'RtdInterval=30'), fc.string({ maxLength: 20 })),
);
const framedSegment = fc
  .tuple(fc.array(piece, { maxLength: 10 }), fc.array(fc.array(cpItem, { minLength: 1, maxLength: 4 }).map((xs) => xs.join(',')), { maxLength: 8 }), fc.boolean())
  .map(([head, cp, withCp]) => encodeFrame([...head, ...(withCp ? [`CP=&&${cp.join(';')}&&`] : [])].join(';')));

const anyInput = fc.oneof(
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 1200 }) },
  { weight: 1, arbitrary: fc.tuple(fc.stringMatching(/^\d{4}$/), fc.string({ unit: 'binary', maxLength: 600 })).map(([n, s]) => `##${n}${s}`) },
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...ALL), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([f, ms]) => mutate(f, ms)) },
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...ALL), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([f, ms]) => encodeFrame(mutate(segmentOf(f), ms))) },
  { weight: 4, arbitrary: framedSegment },
);

function checkParse(text: string): void {
  const r = parseFrame(text);
  if (!r.ok) {
    expect(r.code).toMatch(/^HJ212_/);
    expect(r.message.length).toBeGreaterThan(10);
  } else {
    const { readings, refusals } = frameToReadings(r.frame, { metricNames: { a34004: 'pm25' } });
    for (const x of refusals) expect(x.code).toMatch(/^HJ212_/);
    for (const reading of readings) {
      expect(Number.isFinite(reading.ts)).toBe(true);
      for (const v of Object.values(reading.values)) expect(Number.isFinite(v)).toBe(true);
    }
  }
  const answer = answerFor(r);
  if (answer !== undefined) expect(parseFrame(answer).ok).toBe(true);
}

describe('HJ 212 fuzzing', () => {
  it(`parseFrame never throws and codes every refusal (${numRuns} runs)`, () => {
    fc.assert(fc.property(anyInput, checkParse), { seed, numRuns });
  });

  it(`the splitter never throws, stays bounded and accounts for every byte (${numRuns} runs)`, () => {
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 3000 }),
      fc.array(anyInput, { maxLength: 6 }).map((xs) => Buffer.from(xs.join(''), 'utf8')),
    );
    fc.assert(
      fc.property(input, fc.array(fc.nat(), { maxLength: 20 }), fc.constantFrom(undefined, 100, 1024), (bytes, cuts, max) => {
        const s = new Hj212StreamSplitter(max === undefined ? {} : { maxSegmentBytes: max });
        const out: Hj212StreamItem[] = [];
        let at = 0;
        for (const c of [...cuts.map((x) => x % (bytes.length + 1))].sort((a, b) => a - b)) {
          out.push(...s.push(bytes.subarray(at, c)));
          expect(s.buffered).toBeLessThanOrEqual(6 + (max ?? 1024) + 6 + 2);
          at = c;
        }
        out.push(...s.push(bytes.subarray(at)), ...s.end());
        expect(s.buffered).toBe(0);
        let total = 0;
        for (const o of out) {
          total += o.length;
          if ('garbage' in o) {
            expect(o.code).toMatch(/^HJ212_/);
            expect(o.garbage.length).toBeLessThanOrEqual(64);
          } else checkParse(o.frame);
        }
        expect(total).toBe(bytes.length);
      }),
      { seed, numRuns },
    );
  });

  it(`on a stream, good frames come out whole whatever bad parts sit between them (${numRuns} runs)`, () => {
    // Damage that cannot forge a frame boundary: no #, CR or LF is introduced.
    const safeChar = fc.constantFrom(...'0123456789;=,&-ABCDEFxyz. '.split(''));
    const junk = fc.string({ unit: fc.integer({ min: 0, max: 255 }).filter((b) => b !== 0x23).map((b) => String.fromCharCode(b)), minLength: 1, maxLength: 200 });
    const damaged = fc
      .tuple(fc.constantFrom(...GOOD), fc.array(fc.record({ at: fc.nat(), op: fc.constantFrom('replace', 'insert', 'delete'), ch: safeChar }), { minLength: 1, maxLength: 3 }))
      .map(([f, ms]) => {
        // Keep the leading ## and the trailing CRLF; damage the rest (length, segment or CRC).
        const body = mutate(f.slice(2, -2), ms as Mutation[]);
        return '##' + body + '\r\n';
      })
      .filter((f) => !GOOD.includes(f));
    const truncated = fc.tuple(fc.constantFrom(...GOOD), fc.nat()).map(([f, n]) => f.slice(0, 1 + (n % (f.length - 7))));
    const part = fc.oneof(
      fc.constantFrom(...GOOD).map((f) => ({ good: true, text: f })),
      fc.oneof(junk, damaged, truncated).map((text) => ({ good: false, text })),
    );
    fc.assert(
      fc.property(fc.array(part, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (parts, cuts) => {
        const bytes = Buffer.from(parts.map((p) => p.text).join(''), 'latin1');
        const s = new Hj212StreamSplitter();
        const out: Hj212StreamItem[] = [];
        let at = 0;
        for (const c of [...cuts.map((x) => x % (bytes.length + 1))].sort((a, b) => a - b)) {
          out.push(...s.push(bytes.subarray(at, c)));
          at = c;
        }
        out.push(...s.push(bytes.subarray(at)), ...s.end());
        // A damaged frame may still pass: its CRC has 256 values, and a digit swapped for a digit is a
        // well-formed frame. What must never happen is a good frame lost or altered next to it.
        const ok = out.flatMap((o) => ('frame' in o && parseFrame(o.frame).ok ? [o.frame + '\r\n'] : []));
        expect(ok.filter((f) => GOOD.includes(f))).toEqual(parts.filter((p) => p.good).map((p) => p.text));
        const refused = out.filter((o) => 'garbage' in o || !parseFrame(o.frame).ok).length;
        if (parts.some((p) => !p.good)) expect(refused).toBeGreaterThanOrEqual(1);
      }),
      { seed, numRuns },
    );
  });

  it('structure checks refuse about half the corruptions the CRC lets through', () => {
    // Two characters of a real frame changed (length kept): the Appendix A CRC passes about 1 in 256
    // of these; a single changed byte it always catches (its table's high bytes are all distinct).
    const good = GOOD.find((f) => f.includes('CN=2011'))!;
    const chars = '0123456789;=,&-ABCDEFxyz.N'.split('');
    let state = seed;
    const rnd = (n: number) => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) % n);
    let corrupted = 0;
    let passedCrc = 0;
    let accepted = 0;
    for (let i = 0; i < 50_000; i++) {
      let t = good;
      for (let k = 0; k < 2; k++) {
        const at = 6 + rnd(good.length - 12);
        t = t.slice(0, at) + chars[rnd(chars.length)]! + t.slice(at + 1);
      }
      if (t === good) continue;
      corrupted++;
      const r = parseFrame(t);
      if (r.ok || r.code !== 'HJ212_BAD_CRC') passedCrc++;
      if (r.ok && frameToReadings(r.frame).refusals.length === 0) accepted++;
    }
    expect(passedCrc / corrupted).toBeGreaterThan(1 / 400);
    expect(accepted).toBeLessThan(passedCrc * 0.6);
  });
});
