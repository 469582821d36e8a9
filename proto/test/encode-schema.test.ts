// The hand-written encoder's tags and enum codes (src/encode/schema.ts) against ingest.proto as protobufjs
// reads it, both ways: every field of every message the encoder writes has a tag named MESSAGE_FIELD with
// the field's number and wire type, and every tag names a field that exists. A field added, renumbered or
// retyped in the .proto fails here until the encoder follows (the byte-identity test would only notice
// once its random batches used the field).
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import * as schema from '../src/encode/schema.ts';
import { FAMILIES, PRIORITIES } from '../src/index.ts';

const root = new protobuf.Root();
root.loadSync(fileURLToPath(new URL('../citysense/v1/ingest.proto', import.meta.url)), { keepCase: true });
root.resolveAll();

/** The messages the encoder writes (everything reachable from Batch). */
const ENCODED = ['Batch', 'Device', 'Value', 'Reading', 'Event', 'Series', 'Column', 'DropReport'];

const upperSnake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;
const FIXED64 = new Set(['double', 'fixed64', 'sfixed64']);
const FIXED32 = new Set(['float', 'fixed32', 'sfixed32']);

/** The wire type a proto3 field is written with (repeated scalars packed). */
function wireType(f: protobuf.Field): number {
  if (f instanceof protobuf.MapField) return LEN;
  const isMessage = f.resolvedType instanceof protobuf.Type;
  if (isMessage || f.type === 'string' || f.type === 'bytes') return LEN;
  if (f.repeated) return LEN; // packed
  if (FIXED64.has(f.type)) return I64;
  if (FIXED32.has(f.type)) return I32;
  return VARINT;
}

const tags = Object.entries(schema).filter((e): e is [string, number] => typeof e[1] === 'number');

describe('encoder tags against ingest.proto', () => {
  it('has a tag for every field of every encoded message, with its number and wire type', () => {
    let checked = 0;
    for (const name of ENCODED) {
      const type = root.lookupType(`citysense.v1.${name}`);
      expect(type.fieldsArray.length, name).toBeGreaterThan(0);
      for (const f of type.fieldsArray) {
        const constName = `${upperSnake(name)}_${f.name.toUpperCase()}`;
        const want = (f.id << 3) | wireType(f);
        expect((schema as Record<string, unknown>)[constName], `${constName} (${name}.${f.name} = ${f.id})`).toBe(want);
        expect(want, `${constName} fits in one tag byte`).toBeLessThan(128);
        checked++;
      }
    }
    expect(checked).toBe(tags.length - 2); // the two map-entry tags are checked below
  });

  it('names no field the schema does not have', () => {
    const known = new Set<string>(['MAP_ENTRY_KEY', 'MAP_ENTRY_VALUE']);
    for (const name of ENCODED) for (const f of root.lookupType(`citysense.v1.${name}`).fieldsArray) known.add(`${upperSnake(name)}_${f.name.toUpperCase()}`);
    expect(tags.map(([k]) => k).filter((k) => !known.has(k))).toEqual([]);
  });

  it('writes map entries as {key = 1, value = 2} of strings, as every map of the encoded messages is', () => {
    expect(schema.MAP_ENTRY_KEY).toBe((1 << 3) | LEN);
    expect(schema.MAP_ENTRY_VALUE).toBe((2 << 3) | LEN);
    const maps = ENCODED.flatMap((n) => root.lookupType(`citysense.v1.${n}`).fieldsArray.filter((f) => f instanceof protobuf.MapField)) as protobuf.MapField[];
    expect(maps.map((f) => `${f.parent!.name}.${f.name}`).sort()).toEqual(['Device.tags', 'Event.attrs', 'Reading.tags', 'Series.tags']);
    for (const f of maps) expect([f.keyType, f.type], f.name).toEqual(['string', 'string']);
  });

  it('uses the enum codes of the schema', () => {
    const family = root.lookupEnum('citysense.v1.Family').values;
    const priority = root.lookupEnum('citysense.v1.Priority').values;
    const lane = root.lookupEnum('citysense.v1.Lane').values;
    expect(Object.keys(schema.FAMILY_CODE).sort()).toEqual([...FAMILIES].sort());
    for (const f of FAMILIES) expect(schema.FAMILY_CODE[f], f).toBe(family[f.toUpperCase()]);
    expect(Object.keys(schema.PRIORITY_CODE).sort()).toEqual([...PRIORITIES].sort());
    for (const p of PRIORITIES) expect(schema.PRIORITY_CODE[p], p).toBe(priority[p.toUpperCase()]);
    expect(schema.LANE_CODE).toEqual({ telemetry: lane.TELEMETRY, alarm: lane.ALARM_LANE });
  });
});
