// Every vector of the shared HJ 212 set (and our extra ones) decodes, or is refused, as documented there.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  HJ212_ERRORS,
  answerFor,
  checkPassword,
  dataAnswer,
  encodeFrame,
  frameToReadings,
  hj212CrcHex,
  parseFrame,
  requestAnswer,
  QN_RTN,
  type Hj212Frame,
} from '../src/decoders/hj212/index.ts';

interface SharedVector {
  name: string;
  frame: string;
  valid: boolean;
  crc?: string;
  cn?: string;
  mn?: string;
  data_time?: string;
  ack_required?: boolean;
  values?: Record<string, number>;
  flags?: Record<string, string>;
  rejected_values?: string[];
  error?: string;
}
const shared = JSON.parse(readFileSync(new URL('../../../shared/testdata/hj212/vectors.json', import.meta.url), 'utf8')) as {
  vectors: SharedVector[];
};
const byName = (n: string) => shared.vectors.find((v) => v.name === n)!;
const PASSWORD = '123456';
// The shared set names errors in words; these are our codes for them.
const ERROR_CODE: Record<string, string> = { crc: 'HJ212_BAD_CRC', length: 'HJ212_BAD_LENGTH', password: 'HJ212_BAD_PASSWORD' };

function parsed(text: string): Hj212Frame {
  const r = parseFrame(text);
  if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  return r.frame;
}

describe('HJ 212 Appendix A CRC', () => {
  it("gives 1C80 on the standard's example segment", () => {
    expect(hj212CrcHex('QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&')).toBe('1C80');
  });
  it('differs from CRC-16/MODBUS on the same bytes', () => {
    // CRC-16/MODBUS folds the byte into the low byte; Appendix A shifts first. Guard against "fixing" it.
    let reg = 0xffff;
    for (const b of Buffer.from('QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&')) {
      reg ^= b;
      for (let i = 0; i < 8; i++) reg = reg & 1 ? (reg >> 1) ^ 0xa001 : reg >> 1;
    }
    expect(reg.toString(16).toUpperCase().padStart(4, '0')).not.toBe('1C80');
  });
});

describe('shared vectors (testdata/hj212/vectors.json)', () => {
  for (const v of shared.vectors) {
    it(v.name, () => {
      const r = parseFrame(v.frame);
      if (v.error === 'password') {
        expect(r.ok).toBe(true);
        const check = checkPassword(parsed(v.frame), PASSWORD);
        expect(check).toMatchObject({ ok: false, code: ERROR_CODE[v.error] });
        // protocols.md / vectors.json: QnRtn=3 when an answer is owed.
        const answer = answerFor(r, { code: 'HJ212_BAD_PASSWORD' });
        expect(answer).toBeDefined();
        expect(parsed(answer!).params).toEqual({ QnRtn: '3' });
        return;
      }
      if (!v.valid) {
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expect(ERROR_CODE[v.error!], `unmapped error ${v.error}`).toBeDefined();
        expect(r.code).toBe(ERROR_CODE[v.error!]);
        expect(r.message.length).toBeGreaterThan(20);
        return;
      }
      expect(r.ok, r.ok ? '' : r.message).toBe(true);
      if (!r.ok) return;
      const f = r.frame;
      if (v.crc) expect(f.crc).toBe(v.crc);
      if (v.cn) expect(f.cn).toBe(v.cn);
      if (v.mn) expect(f.mn).toBe(v.mn);
      if (v.ack_required !== undefined) expect(f.ackWanted).toBe(v.ack_required);
      if (v.data_time) expect(f.dataTimeMs).toBe(Date.parse(v.data_time));
      // The standard's own example uses PW=100000; every other vector the station password.
      if (v.name !== 'standard-appendix-a') expect(checkPassword(f, PASSWORD).ok).toBe(true);
      if (!v.values) return;
      const { readings, refusals } = frameToReadings(f);
      expect(readings).toHaveLength(1);
      const reading = readings[0]!;
      if (v.data_time) expect(reading.ts).toBe(Date.parse(v.data_time));
      for (const [name, value] of Object.entries(v.values)) expect(reading.values[name], name).toBe(value);
      if (v.values && !v.name.includes('2051')) expect(Object.keys(reading.values).sort()).toEqual(Object.keys(v.values).sort());
      for (const [name, flag] of Object.entries(v.flags ?? {})) expect(reading.flags[name], name).toBe(flag);
      expect(refusals.map((x) => x.item)).toEqual(v.rejected_values ?? []);
      for (const x of refusals) expect(x.code).toBe('HJ212_BAD_VALUE');
    });
  }

  it('answers realtime-air-2011 with the data-answer-9014 vector, byte for byte', () => {
    const r = parseFrame(byName('realtime-air-2011').frame);
    expect(answerFor(r)).toBe(byName('data-answer-9014').frame);
    expect(dataAnswer(parsed(byName('realtime-air-2011').frame))).toBe(byName('data-answer-9014').frame);
  });

  it('owes no answer when the A bit is clear', () => {
    expect(answerFor(parseFrame(byName('realtime-flags-no-ack').frame))).toBeUndefined();
  });

  it('answers a bad-CRC frame that asked for an answer with 9011 QnRtn=9', () => {
    const r = parseFrame(byName('bad-crc').frame);
    const a = parsed(answerFor(r)!);
    expect(a).toMatchObject({ cn: '9011', st: '91', qn: '20240115103000123', mn: '010000A8900016F000169DC0', flag: 4, params: { QnRtn: '9' } });
  });

  it('owes nothing to a frame whose length is wrong (its header cannot be trusted)', () => {
    expect(answerFor(parseFrame(byName('wrong-length').frame))).toBeUndefined();
  });

  it('carries T and D as per-value flags and D as the quality', () => {
    const { readings } = frameToReadings(parsed(byName('realtime-flags-no-ack').frame), { metricNames: { a34004: 'pm25' } });
    expect(readings[0]).toEqual({
      ts: Date.parse('2024-01-15T11:00:00+08:00'),
      values: { pm25: 512, a34002: 0, a01001: 13 },
      flags: { pm25: 'T', a34002: 'D', a01001: 'N' },
      quality: 'D',
    });
  });

  it('uses the profile names, with .avg for interval data', () => {
    const { readings } = frameToReadings(parsed(byName('minute-air-2051').frame), { metricNames: { a34004: 'pm25', LA: 'noise_la' } });
    expect(readings[0]!.values).toMatchObject({ 'pm25.avg': 34.8, 'pm25.min': 30.1, 'noise_la.avg': 55.0, 'a34002.avg': 66.9 });
    expect(readings[0]!.values['a34004.avg']).toBeUndefined();
    expect(readings[0]!.quality).toBeUndefined();
  });

  it('does not take names from Object.prototype', () => {
    const f = parsed(encodeFrame('QN=20240115110000001;ST=22;CN=2011;PW=1;MN=A;Flag=4;CP=&&DataTime=20240115110000;constructor-Rtd=1&&'));
    expect(frameToReadings(f, { metricNames: {} }).readings[0]!.values).toEqual({ constructor: 1 });
  });
});

interface ExtraVector {
  name: string;
  frame: string;
  expect: {
    ok: boolean;
    code?: string;
    field?: string;
    version?: string;
    ackWanted?: boolean;
    split?: boolean;
    cn?: string;
    mn?: string;
    pnum?: number;
    pno?: number;
    data_time?: string;
    values?: Record<string, number>;
    flags?: Record<string, string>;
    quality?: string;
    rejected_values?: string[];
  };
}
const extra = JSON.parse(readFileSync(new URL('./vectors/hj212-extra.json', import.meta.url), 'utf8')) as { vectors: ExtraVector[] };

describe('extra vectors (edge/test/vectors/hj212-extra.json)', () => {
  for (const v of extra.vectors) {
    it(v.name, () => {
      const e = v.expect;
      const r = parseFrame(v.frame);
      if (!e.ok) {
        expect(r).toMatchObject({ ok: false, code: e.code, ...(e.field ? { field: e.field } : {}) });
        return;
      }
      expect(r.ok, r.ok ? '' : r.message).toBe(true);
      if (!r.ok) return;
      const f = r.frame;
      for (const k of ['version', 'ackWanted', 'split', 'cn', 'mn', 'pnum', 'pno'] as const) if (e[k] !== undefined) expect(f[k], k).toBe(e[k]);
      if (e.data_time) expect(f.dataTimeMs).toBe(Date.parse(e.data_time));
      const { readings, refusals } = frameToReadings(f);
      if (e.values) expect(readings[0]!.values).toEqual(e.values);
      if (e.flags) expect(readings[0]!.flags).toEqual(e.flags);
      if ('quality' in e) expect(readings[0]!.quality).toBe(e.quality);
      expect(refusals.map((x) => x.item)).toEqual(e.rejected_values ?? []);
    });
  }
});

describe('answers', () => {
  const station = parsed(byName('realtime-air-2011').frame);
  it('every answer parses back with its own length and CRC', () => {
    for (const rtn of Object.values(QN_RTN)) {
      const a = parsed(requestAnswer(station, rtn));
      expect(a).toMatchObject({ cn: '9011', st: '91', qn: station.qn, mn: station.mn, pw: station.pw, ackWanted: false, params: { QnRtn: String(rtn) } });
    }
    expect(parsed(dataAnswer(station))).toMatchObject({ cn: '9014', items: {}, params: {} });
  });
  it('keeps the version bits of the station it answers', () => {
    expect(parsed(dataAnswer({ ...station, version: '2025' })).version).toBe('2025');
    expect(parsed(dataAnswer({ ...station, version: '2005' })).version).toBe('2005');
  });
  it('maps refusals to QnRtn', () => {
    const r = parseFrame(encodeFrame('QN=20240115103000123;ST=22;CN=2011;PW=123456;MN=;Flag=5;CP=&&&&'));
    expect(r).toMatchObject({ ok: false, code: 'HJ212_BAD_FIELD', field: 'MN' });
    // No MN to address: no answer.
    expect(answerFor(r)).toBeUndefined();
  });
});

describe('password', () => {
  it('accepts the right one and refuses others, whatever their length', () => {
    expect(checkPassword({ pw: '123456', mn: 'X' }, '123456')).toEqual({ ok: true });
    for (const pw of ['', '12345', '1234567', '123457', '999999'])
      expect(checkPassword({ pw, mn: 'X' }, '123456')).toMatchObject({ ok: false, code: 'HJ212_BAD_PASSWORD' });
  });
});

describe('frame refusals', () => {
  const good = byName('realtime-air-2011').frame;
  it.each([
    ['', 'HJ212_BAD_HEADER'],
    ['#0101', 'HJ212_BAD_HEADER'],
    ['##01a1QN=1', 'HJ212_BAD_HEADER'],
    [good.replace('##0467', '##1467'), 'HJ212_TOO_LONG'],
    [good.replace('##0467', '##0466'), 'HJ212_BAD_LENGTH'],
    [good.slice(0, 100), 'HJ212_BAD_LENGTH'],
    [good.replace('DEC1\r\n', 'DEXX\r\n'), 'HJ212_BAD_CRC'],
    [good.replace('DEC1\r\n', 'DEC1\n\n'), 'HJ212_BAD_LENGTH'],
  ])('%#: %j → %s', (text, code) => {
    expect(parseFrame(text)).toMatchObject({ ok: false, code });
  });
  it('accepts a frame without its final CRLF and with a lower-case CRC', () => {
    expect(parseFrame(good.replace('DEC1\r\n', 'dec1')).ok).toBe(true);
  });
  it('refuses a segment that is not UTF-8 even when length and CRC fit', () => {
    const seg = Buffer.concat([Buffer.from('QN=20240115103000123;ST=22;CN=2011;PW=1;MN=A;Flag=4;CP=&&x=\xff'), Buffer.from([0xff]), Buffer.from('&&')]);
    const bytes = Buffer.concat([Buffer.from(`##${String(seg.length).padStart(4, '0')}`), seg, Buffer.from(hj212CrcHex(seg) + '\r\n')]);
    return import('../src/decoders/hj212/index.ts').then(({ parseFrameBytes }) => {
      expect(parseFrameBytes(bytes)).toMatchObject({ ok: false, code: 'HJ212_BAD_ENCODING' });
    });
  });
  it('refuses unknown structure in the segment', () => {
    const bad = (seg: string) => parseFrame(encodeFrame(seg));
    expect(bad('QN=20240115103000123;ST=22;CN=2011;PW=1;MN=A;Flag=4')).toMatchObject({ code: 'HJ212_BAD_FIELD', field: 'CP' });
    expect(bad('QN=20240115103000123;ST=22;CN=2011;PW=1;MN=A;Flag=4;CP=&&a-Rtd=1')).toMatchObject({ code: 'HJ212_BAD_FIELD', field: 'CP' });
    expect(bad('QN=20240115103000123;ST=22;CN=2011;PW=1;MN=A;Flag=400;CP=&&&&')).toMatchObject({ code: 'HJ212_BAD_FIELD', field: 'Flag' });
    expect(bad('QN=20240115103000123;QN=20240115103000123;ST=22;CN=2011;PW=1;MN=A;Flag=4;CP=&&&&')).toMatchObject({ code: 'HJ212_BAD_FIELD', field: 'QN' });
    expect(bad('QN=20240115103000123;ST=22;CN=2011;PW=1;MN=A;Flag=4;CP=&&a-Rtd=1;a-Rtd=2&&')).toMatchObject({ code: 'HJ212_BAD_FIELD', field: 'CP' });
    expect(bad('QN=20240115103000123;ST=22;CN=2011;PW=1;MN=A;Flag=4;CP=&&a-Rtd&&')).toMatchObject({ code: 'HJ212_BAD_FIELD', field: 'CP' });
    expect(bad('QN=20240115103000123;ST=22;CN=2011;PW=1;MN=A;Flag=4;CP=&&DataTime=20241301000000&&')).toMatchObject({ code: 'HJ212_BAD_DATATIME' });
  });
  it('refuses data frames without DataTime, and CNs without readings, in frameToReadings', () => {
    const f = parsed(encodeFrame('QN=20240115103000123;ST=22;CN=2011;PW=1;MN=A;Flag=4;CP=&&a34004-Rtd=1&&'));
    expect(frameToReadings(f)).toMatchObject({ readings: [], refusals: [{ code: 'HJ212_BAD_DATATIME' }] });
    expect(frameToReadings(parsed(byName('standard-appendix-a').frame))).toMatchObject({ readings: [], refusals: [{ code: 'HJ212_UNSUPPORTED_CN' }] });
  });
});

describe('docs/protocols/hj212.md', () => {
  it('lists every refusal code, and no code that does not exist', () => {
    const doc = readFileSync(new URL('../../docs/protocols/hj212.md', import.meta.url), 'utf8');
    const inDoc = new Set(doc.match(/HJ212_[A-Z_]+/g));
    expect([...inDoc].sort()).toEqual(Object.keys(HJ212_ERRORS).sort());
  });
});
