// The HJ 212 frames the simulator builds, checked against the edge's decoder (a separate
// implementation tested against the standard's vectors) and the shared vectors.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { answerFor, dataAnswer, frameToReadings, hj212CrcHex, parseFrame, requestAnswer } from '@citysense/edge/hj212';
import { buildDataFrame, chinaTime, crc212Hex, FrameSplitter, frameText, qnOf, readAnswer } from '../src/protocols/hj212.ts';
import { createStation, STATION_CODES, STATION_PARAMS } from '../src/stations/station.ts';
import { generateMn, StationFramer } from '../src/stations/framer.ts';
import { createRng } from '../src/rng.ts';

const vectors = JSON.parse(readFileSync(new URL('../../../shared/testdata/hj212/vectors.json', import.meta.url), 'utf8')) as {
  vectors: Array<{ name: string; frame: string; valid: boolean; crc?: string }>;
};
const START = Date.parse('2026-01-15T10:00:00+08:00');
const ID = { mn: '010000A8900016F000169DC0', password: '123456' };

describe('HJ 212 frame building', () => {
  it("computes the standard's Appendix A CRC (1C80) and agrees with the edge on every shared vector", () => {
    const std = 'QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&';
    expect(crc212Hex(std)).toBe('1C80');
    for (const v of vectors.vectors) {
      const m = /^##(\d{4})/.exec(v.frame);
      if (!m) continue;
      const seg = v.frame.slice(6, 6 + Number(m[1]));
      expect(crc212Hex(seg)).toBe(hj212CrcHex(seg));
      // A valid vector rebuilt from its segment is byte for byte the vector.
      if (v.valid) expect(frameText(seg)).toBe(v.frame);
    }
  });

  it('formats QN and DataTime in China time', () => {
    const t = Date.parse('2024-01-15T02:30:00.123Z');
    expect(chinaTime(t)).toBe('20240115103000');
    expect(qnOf(t)).toBe('20240115103000123');
  });

  it('real-time frames parse with the edge and decode to the generated values, flags and DataTime', () => {
    const station = createStation('st-1', { seed: 5, startTs: START, stepMs: 30_000 });
    const framer = new StationFramer(ID);
    for (let i = 0; i < 200; i++) {
      const reading = station.next();
      const [rt] = framer.frames(reading);
      const parsed = parseFrame(rt!.text);
      if (!parsed.ok) throw new Error(parsed.message);
      const f = parsed.frame;
      expect(f).toMatchObject({ cn: '2011', st: '22', pw: '123456', mn: ID.mn, flag: 5, ackWanted: true, version: '2017', qn: rt!.qn });
      expect(f.dataTimeMs).toBe(Math.floor(reading.ts / 1000) * 1000);
      expect(Buffer.byteLength(rt!.text) - 12).toBeLessThanOrEqual(1024);
      const { readings, refusals } = frameToReadings(f);
      expect(refusals).toEqual([]);
      expect(readings[0]!.values).toEqual(reading.values);
      expect(Object.keys(readings[0]!.values).sort()).toEqual([...STATION_CODES].sort());
      for (const [code, flag] of Object.entries(reading.flags)) expect(f.items[code]!['Flag']).toBe(flag);
    }
  });

  it('values are realistic in the station units: gases in mg/m³, PM in µg/m³, mostly flag N', () => {
    const station = createStation('st-2', { seed: 9, startTs: START, stepMs: 60_000 });
    let flagged = 0;
    let n = 0;
    for (let i = 0; i < 3000; i++) {
      const r = station.next();
      for (const [code, v] of Object.entries(r.values)) {
        const p = STATION_PARAMS[code]!;
        expect(v).toBeGreaterThanOrEqual(p.min);
        expect(v).toBeLessThanOrEqual(p.max);
        expect(Number(v.toFixed(p.decimals))).toBe(v);
        n += 1;
        if (r.flags[code] !== 'N') flagged += 1;
      }
      expect(r.values['a21004']!).toBeLessThan(0.5); // NO2 in mg/m³, not µg/m³
      expect(r.values['a34002']!).toBeGreaterThanOrEqual(r.values['a34004']!);
      expect(r.values['a01006']!).toBeGreaterThan(95);
      expect(r.values['a01006']!).toBeLessThan(106);
    }
    expect(flagged / n).toBeLessThan(0.05);
  });

  it('sends minute data (2051) for each completed simulated minute and hour data (2061) for each hour', () => {
    const station = createStation('st-3', { seed: 1, startTs: START, stepMs: 10_000 });
    const framer = new StationFramer(ID);
    const byCn: Record<string, number> = {};
    const realtime: number[] = [];
    for (let i = 0; i < 6 * 70 + 1; i++) {
      const reading = station.next();
      for (const fr of framer.frames(reading)) {
        byCn[fr.cn] = (byCn[fr.cn] ?? 0) + 1;
        const p = parseFrame(fr.text);
        if (!p.ok) throw new Error(p.message);
        if (fr.cn === '2011') {
          realtime.push(reading.values['a34004']!);
          continue;
        }
        const { readings, refusals } = frameToReadings(p.frame);
        expect(refusals).toEqual([]);
        const v = readings[0]!.values;
        expect(v['a34004.min']!).toBeLessThanOrEqual(v['a34004.avg']!);
        expect(v['a34004.avg']!).toBeLessThanOrEqual(v['a34004.max']!);
        if (fr.cn === '2051') {
          // DataTime is the start of the minute; the six readings before this one are its samples.
          expect(p.frame.dataTimeMs! % 60_000).toBe(0);
          const samples = realtime.slice(-7, -1);
          expect(v['a34004.min']).toBe(Math.min(...samples));
          expect(v['a34004.max']).toBe(Math.max(...samples));
        } else expect(p.frame.dataTimeMs! % 3_600_000).toBe(0);
      }
    }
    expect(byCn).toEqual({ '2011': 421, '2051': 70, '2061': 1 });
  });

  it('a frame with a bad CRC is refused by the edge, which owes a 9011 QnRtn=9 the station can read', () => {
    const fr = buildDataFrame({ cn: '2011', sentMs: START, dataTimeMs: START, ...ID, params: { a34004: { rtd: 35.2 } }, badCrc: true });
    const parsed = parseFrame(fr.text);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.code).toBe('HJ212_BAD_CRC');
    const answer = readAnswer(answerFor(parsed)!);
    expect(answer).toEqual({ qn: fr.qn, cn: '9011', crcOk: true, qnRtn: 9 });
  });

  it("reads the edge's answers and splits them under any chunking", () => {
    const to = { qn: '20260115100000000', pw: '123456', mn: ID.mn, version: '2017' as const };
    const stream = Buffer.from(`junk${dataAnswer(to)}${requestAnswer({ ...to, qn: '20260115100000001' }, 3)}`);
    const rng = createRng('split');
    for (let round = 0; round < 50; round++) {
      const splitter = new FrameSplitter();
      const out: string[] = [];
      let at = 0;
      while (at < stream.length) {
        const n = rng.int(1, 20);
        out.push(...splitter.push(stream.subarray(at, at + n)));
        at += n;
      }
      expect(out.map(readAnswer)).toEqual([
        { qn: to.qn, cn: '9014', crcOk: true },
        { qn: '20260115100000001', cn: '9011', crcOk: true, qnRtn: 3 },
      ]);
    }
  });

  it('generates 24-hex-digit MNs that the edge accepts', () => {
    const mn = generateMn(createRng('mn', 1, 'x'));
    expect(mn).toMatch(/^[0-9A-F]{24}$/);
    const fr = buildDataFrame({ cn: '2011', sentMs: START, dataTimeMs: START, mn, password: 'pw', params: { LA: { rtd: 55.3 } } });
    expect(parseFrame(fr.text)).toMatchObject({ ok: true, frame: { mn } });
  });
});
