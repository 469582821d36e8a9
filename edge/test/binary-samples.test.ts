// The sample NB-IoT layouts decode their documented frames (big- and little-endian), a sensor defined only
// by a layout object decodes, bad input is refused with codes, and bad layouts with the path of the mistake.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BINARY_ERRORS,
  decodeBinary,
  decodeBinaryAny,
  fieldSize,
  loadBinaryLayout,
  type BinaryLayout,
} from '../src/decoders/binary/index.ts';

const SAMPLES = ['smoke-detector', 'manhole-cover', 'gas-detector'] as const;
function sample(name: string): BinaryLayout {
  const r = loadBinaryLayout(JSON.parse(readFileSync(new URL(`../src/decoders/binary/samples/${name}.json`, import.meta.url), 'utf8')));
  if (!r.ok) throw new Error(r.message);
  return r.layout;
}
function layoutOf(input: unknown): BinaryLayout {
  const r = loadBinaryLayout(input);
  if (!r.ok) throw new Error(r.message);
  return r.layout;
}
const vectors = JSON.parse(readFileSync(new URL('./vectors/binary-samples.json', import.meta.url), 'utf8')) as {
  vectors: Array<{ layout: string; hex: string; values: Record<string, unknown>; refusals?: Array<{ code: string; field: string }> }>;
};

/** The same frame for the same layout made little-endian: every multi-byte number reversed in place. */
function toLittle(frame: Buffer, layout: BinaryLayout): { frame: Buffer; layout: BinaryLayout } {
  const out = Buffer.from(frame);
  for (const f of layout.fields) {
    if (f.type === 'hex' || f.type === 'ascii') continue;
    out.set(Buffer.from(frame.subarray(f.offset, f.offset + fieldSize(f))).reverse(), f.offset);
  }
  return { frame: out, layout: { ...layout, byteOrder: 'little' } };
}

describe('sample layouts', () => {
  it.each(SAMPLES)('%s is a valid layout', (name) => {
    expect(() => sample(name)).not.toThrow();
  });

  for (const v of vectors.vectors) {
    describe(`${v.layout}: ${v.hex}`, () => {
      const layout = sample(v.layout);
      const bytes = Buffer.from(v.hex.replace(/ /g, ''), 'hex');
      const check = (r: ReturnType<typeof decodeBinary>) => {
        expect(r.values).toEqual(v.values);
        expect(r.refusals.map((x) => ({ code: x.code, field: x.field }))).toEqual(v.refusals ?? []);
      };
      it('decodes from bytes', () => check(decodeBinary(bytes, layout)));
      it('decodes from hex text, spaced, packed, 0x-prefixed, lower case', () => {
        for (const text of [v.hex, v.hex.replace(/ /g, ''), '0x' + v.hex.replace(/ /g, ''), v.hex.split(' ').map((b) => '0x' + b).join(' '), v.hex.toLowerCase()]) {
          check(decodeBinary(text, layout));
        }
      });
      it('decodes the little-endian variant with byteOrder little', () => {
        const le = toLittle(bytes, layout);
        check(decodeBinary(le.frame, le.layout));
      });
      it('picks its layout among all samples by the frame-type byte', () => {
        const r = decodeBinaryAny(bytes, SAMPLES.map(sample));
        expect(r.layout).toBe(SAMPLES.indexOf(v.layout as (typeof SAMPLES)[number]));
        check(r);
      });
    });
  }

  it('ignores bytes past the layout', () => {
    expect(decodeBinary('01 5A FF A6 0C 00 7D 01 AA BB', sample('smoke-detector')).refusals).toEqual([]);
  });
});

describe('a new sensor model, defined only by a layout', () => {
  // A made-up NB-IoT water meter: little-endian, every type the decoder has.
  const meter = layoutOf({
    description: 'water meter daily report',
    byteOrder: 'little',
    match: { byte: 0, equals: 0x10 },
    minLength: 32,
    fields: [
      { name: 'volume', offset: 1, type: 'u32', scale: 0.001, unit: 'm3' },
      { name: 'flow', offset: 5, type: 'f32', unit: 'm3/h', decimals: 3 },
      { name: 'temperature', offset: 9, type: 'i16', scale: 0.01, unit: '°C', min: -40, max: 85 },
      { name: 'reports', offset: 11, type: 'u24' },
      { name: 'meter_id', offset: 14, type: 'ascii', length: 8 },
      { name: 'cell_id', offset: 22, type: 'hex', length: 4 },
      { name: 'alarms', offset: 26, type: 'bits', length: 2, bits: [{ name: 'leak', bit: 0 }, { name: 'reverse_flow', bit: 9 }] },
      { name: 'offset_c', offset: 28, type: 'i8', add: -0.5 },
      { name: 'pressure', offset: 29, type: 'u16', byteOrder: 'big', scale: 0.001, add: 0.1, unit: 'MPa' },
      { name: 'valve', offset: 31, type: 'u8', enum: { '0': 'open', '1': 'closed' } },
    ],
  });
  const frame = Buffer.alloc(32);
  frame[0] = 0x10;
  frame.writeUInt32LE(123456, 1);
  frame.writeFloatLE(1.5, 5);
  frame.writeInt16LE(-1234, 9);
  frame.writeUIntLE(70000, 11, 3);
  frame.write('WM000042', 14, 'latin1');
  Buffer.from('0a1b2c3d', 'hex').copy(frame, 22);
  frame.writeUInt16LE((1 << 9) | 0, 26);
  frame.writeInt8(-3, 28);
  frame.writeUInt16BE(250, 29);
  frame[31] = 1;

  it('decodes every field', () => {
    expect(decodeBinary(frame, meter)).toEqual({
      values: {
        volume: 123.456,
        flow: 1.5,
        temperature: -12.34,
        reports: 70000,
        meter_id: 'WM000042',
        cell_id: '0a1b2c3d',
        leak: false,
        reverse_flow: true,
        offset_c: -3.5,
        pressure: 0.35,
        valve: 'closed',
      },
      refusals: [],
    });
  });

  it('refuses NaN, bad text, out-of-range and unknown states one by one', () => {
    const f = Buffer.from(frame);
    f.writeFloatLE(NaN, 5);
    f[15] = 0x07;
    f.writeInt16LE(9000, 9);
    f[31] = 7;
    const r = decodeBinary(f, meter);
    expect(r.refusals.map((x) => [x.code, x.field])).toEqual([
      ['BINARY_NOT_FINITE', 'flow'],
      ['BINARY_OUT_OF_RANGE', 'temperature'],
      ['BINARY_BAD_TEXT', 'meter_id'],
      ['BINARY_BAD_ENUM', 'valve'],
    ]);
    expect(r.values).toMatchObject({ volume: 123.456, reports: 70000, pressure: 0.35 });
    expect(Object.keys(r.values)).not.toContain('flow');
  });
});

describe('refusals', () => {
  const smoke = sample('smoke-detector');
  it('refuses a frame that is too short, saying how long it must be', () => {
    const r = decodeBinary('01 5A FF A6 0C', smoke);
    expect(r.values).toEqual({});
    expect(r.refusals).toEqual([{ code: 'BINARY_TOO_SHORT', message: expect.stringContaining('needs 8 bytes, the frame has 5') }]);
    expect(decodeBinary('', smoke).refusals[0]!.code).toBe('BINARY_TOO_SHORT');
    expect(decodeBinary(Buffer.alloc(0), smoke).refusals[0]!.code).toBe('BINARY_TOO_SHORT');
  });
  it('refuses text that is not hex', () => {
    for (const t of ['01 5A FF A6 0C 00 7D 0', 'zz', '01-5A', '{"a":1}', 'AQID']) expect(decodeBinary(t, smoke).refusals[0]!.code, t).toBe('BINARY_BAD_HEX');
  });
  it('refuses another frame type', () => {
    expect(decodeBinary('02 5A FF A6 0C 00 7D 01', smoke).refusals).toMatchObject([{ code: 'BINARY_NO_MATCH' }]);
    expect(decodeBinaryAny('09 5A FF A6 0C 00 7D 01 00', SAMPLES.map(sample)).refusals).toMatchObject([{ code: 'BINARY_NO_MATCH' }]);
  });
  it('refuses an out-of-range value and lets the others through', () => {
    const r = decodeBinary('01 FF FF A6 0C 27 11 01', smoke);
    expect(r.refusals.map((x) => [x.code, x.field])).toEqual([
      ['BINARY_OUT_OF_RANGE', 'battery'],
      ['BINARY_OUT_OF_RANGE', 'smoke_obscuration'],
    ]);
    expect(r.values).toEqual({ rsrp: -90, snr: 12, alarm: true, tamper: false, fault: false });
  });
  it('refuses what is neither bytes nor text, and an unvalidated layout, without throwing', () => {
    expect(decodeBinary(42 as unknown as string, smoke).refusals[0]!.code).toBe('BINARY_BAD_PAYLOAD');
    const broken = { byteOrder: 'big', fields: [{ name: 'x', offset: 0, type: 'u128' }] } as unknown as BinaryLayout;
    expect(decodeBinary('00 00', broken).refusals[0]!.code).toBe('BINARY_BAD_LAYOUT');
  });
});

describe('layout validation', () => {
  const base = { fields: [{ name: 'battery', offset: 0, type: 'u8' }] };
  const issues = (input: unknown) => {
    const r = loadBinaryLayout(input);
    if (r.ok) throw new Error('accepted');
    expect(r.code).toBe('BINARY_BAD_LAYOUT');
    return r.issues.map((i) => i.path);
  };
  it.each([
    [{ fields: [{ name: 'a', offset: 0, type: 'u8' }, { name: 'b', offset: 0, type: 'u8' }, { name: 'c', offset: -2, type: 'u8' }] }, 'fields[2].offset'],
    [{ fields: [{ name: 'a', offset: 0, type: 'u8', scael: 0.1 }] }, 'fields[0].scael'],
    [{ ...base, bytOrder: 'big' }, 'bytOrder'],
    [{ fields: [{ name: 'a', offset: 0, type: 'u12' }] }, 'fields[0].type'],
    [{ fields: [{ name: '1a', offset: 0, type: 'u8' }] }, 'fields[0].name'],
    [{ fields: [{ name: 'a', offset: 0, type: 'u8' }, { name: 'a', offset: 1, type: 'u8' }] }, 'fields[1].name'],
    [{ fields: [{ name: 'id', offset: 0, type: 'ascii' }] }, 'fields[0].length'],
    [{ fields: [{ name: 's', offset: 0, type: 'bits', bits: [{ name: 'a', bit: 8 }] }] }, 'fields[0].bits[0].bit'],
    [{ fields: [{ name: 's', offset: 0, type: 'bits', length: 3, bits: [{ name: 'a', bit: 1 }] }] }, 'fields[0].length'],
    [{ fields: [{ name: 's', offset: 0, type: 'bits' }] }, 'fields[0].bits'],
    [{ fields: [{ name: 'a', offset: 0, type: 'u16', min: 5, max: 1 }] }, 'fields[0].min'],
    [{ fields: [{ name: 'a', offset: 0, type: 'u16', scale: 0 }] }, 'fields[0].scale'],
    [{ fields: [{ name: 'a', offset: 0, type: 'u8', enum: { '0': 'ok' }, scale: 2 }] }, 'fields[0].scale'],
    [{ fields: [{ name: 'a', offset: 0, type: 'hex', length: 2, unit: 'x' }] }, 'fields[0].unit'],
    [{ fields: [{ name: 'a', offset: 0, type: 'u8', byteOrder: 'little' }] }, 'fields[0].byteOrder'],
    [{ ...base, match: { byte: 0, equals: 256 } }, 'match.equals'],
    [{ fields: [] }, 'fields'],
  ])('%# refuses with the path %s', (input, path) => {
    expect(issues(input)).toContain(path);
  });
  it('says where in its message', () => {
    const r = loadBinaryLayout({ fields: [{ name: 'a', offset: 0, type: 'u8' }, { name: 'b', offset: 'one', type: 'u8' }] });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain('fields[1].offset');
  });
  it('fills in the default byte order', () => {
    expect(layoutOf(base).byteOrder).toBe('big');
  });
  it('never throws on junk', () => {
    for (const junk of [null, undefined, 1, 'x', [], { fields: 'no' }, { fields: [null] }]) expect(loadBinaryLayout(junk).ok).toBe(false);
  });
});

describe('docs/protocols/nbiot-binary.md', () => {
  const doc = readFileSync(new URL('../../docs/protocols/nbiot-binary.md', import.meta.url), 'utf8');
  it('lists every refusal code, and no code that does not exist', () => {
    expect([...new Set(doc.match(/BINARY_[A-Z_]+/g))].sort()).toEqual(Object.keys(BINARY_ERRORS).sort());
  });
  it('shows every example frame of the test vectors', () => {
    for (const v of vectors.vectors) expect(doc).toContain('`' + v.hex + '`');
  });
});
