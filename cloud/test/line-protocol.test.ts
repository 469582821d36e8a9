// Line-protocol building and escaping: exact strings for known cases, and a round trip of hostile
// strings through the real influxd (what InfluxDB reads back must be what the device sent).
import type { DeviceEvent, Reading } from '@citysense/proto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { SeriesPrefixes, escapeKey, escapeMeasurement, eventLine, formatFieldValue, quoteString, readingLine } from '../src/ingest/line-protocol.ts';
import { BatchValidator } from '../src/ingest/validate.ts';
import { InfluxWriter } from '../src/ingest/write.ts';

const reading = (values: Reading['values'], tags: Record<string, string> = {}, extra: Partial<Reading> = {}): Reading => ({
  deviceId: 'dev-1',
  family: 'environment',
  ts: 1_700_000_000_123,
  values,
  tags,
  ...extra,
});

describe('escaping', () => {
  it('escapes measurement names: comma and space', () => {
    expect(escapeMeasurement('a b,c=d"e')).toBe('a\\ b\\,c=d"e');
  });

  it('escapes tag keys, tag values and field keys: comma, equals and space', () => {
    expect(escapeKey('a b,c=d')).toBe('a\\ b\\,c\\=d');
    expect(escapeKey('plain')).toBe('plain');
    expect(escapeKey('"quoted"')).toBe('"quoted"');
  });

  it('quotes string fields, escaping backslash and double quote only', () => {
    expect(quoteString('say "hi"')).toBe('"say \\"hi\\""');
    expect(quoteString('C:\\temp\\')).toBe('"C:\\\\temp\\\\"');
    expect(quoteString('a,b c=d')).toBe('"a,b c=d"');
    expect(quoteString('line\nbreak')).toBe('"line\nbreak"');
    expect(quoteString('\\"')).toBe('"\\\\\\""');
  });

  it('is stable across calls (no regex state carried between them)', () => {
    expect([escapeKey('a b'), escapeKey('a b'), escapeKey('a b')]).toEqual(['a\\ b', 'a\\ b', 'a\\ b']);
    expect([quoteString('"'), quoteString('"')]).toEqual(['"\\""', '"\\""']);
  });
});

describe('field values', () => {
  it('writes every number as a float (never the i suffix), booleans bare, strings quoted', () => {
    expect(formatFieldValue(61)).toBe('61');
    expect(formatFieldValue(61.5)).toBe('61.5');
    expect(formatFieldValue(-0)).toBe('0');
    expect(formatFieldValue(1e21)).toBe('1e+21');
    expect(formatFieldValue(5e-7)).toBe('5e-7');
    expect(formatFieldValue(true)).toBe('true');
    expect(formatFieldValue(false)).toBe('false');
    expect(formatFieldValue('61')).toBe('"61"');
    fc.assert(fc.property(fc.integer(), (n) => !formatFieldValue(n).endsWith('i')));
  });
});

describe('lines', () => {
  it('builds a reading line with sorted tags, device_id, fields, quality and ms time', () => {
    const line = readingLine(reading({ pm25: 35.2, door_open: true, note: 'a "b"' }, { site: 'St 7', district: 'jinshui', model: 'X=1,2' }, { quality: 'N' }), new SeriesPrefixes());
    expect(line).toBe('environment,device_id=dev-1,district=jinshui,model=X\\=1\\,2,site=St\\ 7 pm25=35.2,door_open=true,note="a \\"b\\"",quality="N" 1700000000123000000');
  });

  it('leaves empty tag values out and lets device_id win over a device_id tag', () => {
    const line = readingLine(reading({ v: 1 }, { district: '', device_id: 'spoofed' }), new SeriesPrefixes());
    expect(line).toBe('environment,device_id=dev-1 v=1 1700000000123000000');
  });

  it('reuses the series prefix of a device only while its tags are the same object', () => {
    const p = new SeriesPrefixes();
    const tags = { district: 'a' };
    expect(readingLine(reading({ v: 1 }, tags), p)).toContain(',district=a ');
    expect(readingLine(reading({ v: 2 }, tags), p)).toContain(',district=a ');
    expect(readingLine(reading({ v: 3 }, { district: 'b' }), p)).toContain(',district=b ');
  });

  it('builds an event line in `events` with attrs as JSON and attr_ fields', () => {
    const e: DeviceEvent = {
      deviceId: 'fire 1',
      family: 'fire',
      ts: 1_700_000_000_000,
      type: 'fire_alarm',
      attrs: { zone: 'B2-07', 'loop no': '3 "east"' },
      priority: 'alarm',
      id: 'evt,1',
      deviceSeq: 1_000_042,
      tags: { district: 'zhongyuan', site: 'ignored for events' },
    };
    expect(eventLine(e)).toBe(
      'events,device_id=fire\\ 1,district=zhongyuan,family=fire,type=fire_alarm ' +
        'attrs="{\\"zone\\":\\"B2-07\\",\\"loop no\\":\\"3 \\\\\\"east\\\\\\"\\"}",id="evt,1",priority="alarm",' +
        'attr_loop_no="3 \\"east\\"",attr_zone="B2-07" 1700000000000000042',
    );
  });
});

describe('fast paths and escaping paths give the same text', () => {
  it('escapes keys that need it and leaves the rest as they are, ASCII or not, call after call', () => {
    for (let round = 0; round < 2; round++) {
      expect(escapeKey('a b')).toBe('a\\ b');
      expect(escapeKey('a,b')).toBe('a\\,b');
      expect(escapeKey('a=b')).toBe('a\\=b');
      expect(escapeKey(' ')).toBe('\\ ');
      expect(escapeKey('中文 区域')).toBe('中文\\ 区域');
      expect(escapeKey('😀,=')).toBe('😀\\,\\=');
      expect(escapeKey('中文-区域_1.2')).toBe('中文-区域_1.2');
      expect(escapeKey('tab\there"\\')).toBe('tab\there"\\');
      expect(escapeKey('')).toBe('');
    }
  });

  it('quotes strings with and without quotes and backslashes, unicode included', () => {
    expect(quoteString('中文')).toBe('"中文"');
    expect(quoteString('中 "x" \\')).toBe('"中 \\"x\\" \\\\"');
    expect(quoteString('😀"')).toBe('"😀\\""');
    expect(quoteString('')).toBe('""');
  });

  it('escapes field keys in reading lines, first field and the others, each time they come', () => {
    const p = new SeriesPrefixes();
    for (let round = 0; round < 2; round++) {
      expect(readingLine(reading({ 'a b': 1, 'c,d': 'x', 'e=f': false, plain: 2 }), p)).toBe(
        'environment,device_id=dev-1 a\\ b=1,c\\,d="x",e\\=f=false,plain=2 1700000000123000000',
      );
      expect(readingLine(reading({ plain: 2, 'a b': 1 }), p)).toBe('environment,device_id=dev-1 plain=2,a\\ b=1 1700000000123000000');
    }
  });

  it('writes string fields and quality with quotes, backslashes and unicode escaped as quoteString does', () => {
    const line = readingLine(reading({ note: '中 "x" \\', n: 1 }, { site: '站 7,a=b' }, { quality: 'q"\\' }), new SeriesPrefixes());
    expect(line).toBe('environment,device_id=dev-1,site=站\\ 7\\,a\\=b note="中 \\"x\\" \\\\",n=1,quality="q\\"\\\\" 1700000000123000000');
    expect(readingLine(reading({}, {}, { quality: 'N' }), new SeriesPrefixes())).toBe('environment,device_id=dev-1 quality="N" 1700000000123000000');
  });

  it('keeps each device its own prefix when devices and tags objects alternate', () => {
    const p = new SeriesPrefixes();
    const a = { district: 'a b' };
    const b = { district: 'b,c' };
    const line = (deviceId: string, tags: Record<string, string>, family: Reading['family'] = 'environment') =>
      readingLine(reading({ v: 1 }, tags, { deviceId, family }), p).split(' v=')[0];
    expect(line('d1', a)).toBe('environment,device_id=d1,district=a\\ b');
    expect(line('d1', a)).toBe('environment,device_id=d1,district=a\\ b');
    expect(line('d2', b)).toBe('environment,device_id=d2,district=b\\,c');
    expect(line('d1', a)).toBe('environment,device_id=d1,district=a\\ b');
    expect(line('d1', b)).toBe('environment,device_id=d1,district=b\\,c');
    expect(line('d1', b, 'fire')).toBe('fire,device_id=d1,district=b\\,c');
    expect(line('d 3', { district: '' })).toBe('environment,device_id=d\\ 3');
  });

  it('writes every finite number as String() does', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        expect(readingLine(reading({ v: x }), new SeriesPrefixes())).toBe(`environment,device_id=dev-1 v=${String(x)} 1700000000123000000`);
      }),
    );
    expect(readingLine(reading({ v: -0, w: 1e21, x: 5e-7, y: 61 }), new SeriesPrefixes())).toBe('environment,device_id=dev-1 v=0,w=1e+21,x=5e-7,y=61 1700000000123000000');
  });
});

describe('hostile strings round-trip through the real influxd', () => {
  let influx: TestInflux;
  let writer: InfluxWriter;
  beforeAll(async () => {
    influx = await testInflux('cloud-line-protocol');
    writer = new InfluxWriter({ url: influx.url, database: influx.db, timeoutMs: 5000, retries: 0, maxSockets: 2, createDatabase: async () => undefined });
    return () => writer.close();
  });

  const hostile = ['a b', 'a,b', 'a=b', ' lead', 'trail ', '"q"', "'s'", 'x\\y', 'end\\', '\\', '\\"', 'line\nbreak', 'tab\there', '中文 区域', '😀,=', '#', '', 'a\\ b', '=,', '  '];

  it('keeps every character of string fields, tag values and device ids that validation lets through', async () => {
    const validator = new BatchValidator({ maxStringBytes: 65_536, minTimestampMs: 0, maxFutureSkewMs: 1e12 }, () => 1_700_000_000_000);
    const gen = fc.sample(fc.string({ unit: 'binary', maxLength: 12 }), { numRuns: 60, seed: 42 });
    const texts = [...hostile, ...gen];
    // Half of them carry the text only in the device id, so the id's own check is exercised too.
    const readings: Reading[] = texts.map((t, i) => ({
      deviceId: `dev ${t}`,
      family: 'nbiot',
      ts: 1_600_000_000_000 + i,
      values: { text: t, n: i },
      tags: i % 2 ? { district: t, site: `s,${t}` } : { district: 'd', site: 's,' },
    }));
    const v = validator.validate({ edgeId: 'e', seq: 1, createdMs: 0, readings, events: [] });
    const p = new SeriesPrefixes();
    const res = await writer.write(v.readings.map(({ reading }) => readingLine(reading, p)).join('\n'));
    expect(res).toMatchObject({ kind: 'written' });

    const rows = await influx.query('SELECT * FROM nbiot');
    const byN = new Map(rows.map((r) => [r.n as number, r]));
    for (const { index, reading } of v.readings) {
      const row = byN.get(index);
      expect(row, `reading ${index} ${JSON.stringify(texts[index])}`).toBeDefined();
      expect(row!.text).toBe(texts[index]);
      expect(row!.device_id).toBe(reading.deviceId);
      if (index % 2) {
        // An empty tag value is no tag at all in InfluxDB.
        expect(row!.district ?? '').toBe(texts[index]);
        expect(row!.site).toBe(`s,${texts[index]}`);
      }
    }
    // What validation refused is exactly what InfluxDB 1.x cannot store in a tag: backslashes, control characters.
    for (const r of v.rejections) expect(texts[r.index]).toMatch(/[\\\u0000-\u001f\u007f]/);
    expect(v.readings.length).toBeGreaterThan(40);
  });
});
