// One TCP connection's bytes, cut anywhere: good frames come out whole, bad ones as coded refusals,
// and a bad frame never takes a good neighbour with it.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Hj212StreamSplitter, encodeFrame, parseFrame, type Hj212StreamItem } from '../src/decoders/hj212/index.ts';

const shared = JSON.parse(readFileSync(new URL('../../../shared/testdata/hj212/vectors.json', import.meta.url), 'utf8')) as {
  vectors: Array<{ name: string; frame: string }>;
};
const vector = (n: string) => shared.vectors.find((v) => v.name === n)!.frame;
const GOOD1 = vector('realtime-air-2011');
const BAD_CRC = vector('bad-crc');
const WRONG_LENGTH = vector('wrong-length');
const GOOD2 = vector('minute-air-2051');

type Outcome = { ok: string } | { refused: string };

/** Splitter + parseFrame, as the TCP input will run them. */
function run(bytes: Buffer, cuts: number[], opts?: { maxSegmentBytes?: number }): Outcome[] {
  const s = new Hj212StreamSplitter(opts);
  const items: Hj212StreamItem[] = [];
  let at = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)) {
    items.push(...s.push(bytes.subarray(at, cut)));
    at = cut;
  }
  items.push(...s.push(bytes.subarray(at)));
  items.push(...s.end());
  return items.map((it): Outcome => {
    if ('garbage' in it) return { refused: it.code };
    const r = parseFrame(it.frame);
    return r.ok ? { ok: r.frame.qn } : { refused: r.code };
  });
}

const seed = Number(process.env.CITYSENSE_FUZZ_SEED ?? 212);

describe('Hj212StreamSplitter', () => {
  const stream = Buffer.from(GOOD1 + BAD_CRC + WRONG_LENGTH + GOOD2);
  const expected: Outcome[] = [
    { ok: '20240115103000123' },
    { refused: 'HJ212_BAD_CRC' },
    { refused: 'HJ212_BAD_LENGTH' },
    { ok: '20240115103000456' },
  ];

  it('gives the two good frames around a bad-CRC and a wrong-length frame, in one piece', () => {
    expect(run(stream, [])).toEqual(expected);
  });

  it('gives the same byte by byte', () => {
    expect(run(stream, Array.from({ length: stream.length }, (_, i) => i))).toEqual(expected);
  });

  it('gives the same for any chunking', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: stream.length }), { maxLength: 40 }), (cuts) => {
        expect(run(stream, cuts)).toEqual(expected);
      }),
      { seed, numRuns: 2_000 },
    );
  });

  it('does not let a frame that declares too much swallow the next one', () => {
    const longer = GOOD1.replace('##0467', '##0999');
    expect(run(Buffer.from(longer + GOOD2), [])).toEqual([{ refused: 'HJ212_BAD_LENGTH' }, { ok: '20240115103000456' }]);
  });

  it('finds the next frame after a frame cut off in the middle', () => {
    expect(run(Buffer.from(GOOD1.slice(0, 200) + GOOD2), [])).toEqual([{ refused: 'HJ212_BAD_LENGTH' }, { ok: '20240115103000456' }]);
  });

  it('skips junk between frames and a frame over the maximum without buffering it', () => {
    const big = encodeFrame('QN=20240115103000999;ST=22;CN=2011;PW=1;MN=A;Flag=4;CP=&&' + 'x'.repeat(1500) + '=1&&');
    const s = new Hj212StreamSplitter();
    const out: Hj212StreamItem[] = [];
    for (const part of ['hello\r\n', GOOD1, big, '\x00\xff', GOOD2]) {
      for (let i = 0; i < part.length; i += 100) {
        out.push(...s.push(Buffer.from(part.slice(i, i + 100), 'latin1')));
        expect(s.buffered).toBeLessThanOrEqual(6 + 1024 + 6);
      }
    }
    out.push(...s.end());
    expect(out.map((o) => ('frame' in o ? 'frame' : o.code))).toEqual(['HJ212_BAD_HEADER', 'frame', 'HJ212_TOO_LONG', 'frame']);
    const skipped = out.filter((o) => 'garbage' in o).map((o) => ('garbage' in o ? o.length : 0));
    expect(skipped).toEqual([7, big.length + 2]);
  });

  it('reports a flood without ## once per maximal frame, holding almost nothing', () => {
    const s = new Hj212StreamSplitter({ maxSegmentBytes: 100 });
    const out: Hj212StreamItem[] = [];
    for (let i = 0; i < 100; i++) {
      out.push(...s.push(Buffer.alloc(50, 0x41)));
      expect(s.buffered).toBeLessThanOrEqual(1);
    }
    out.push(...s.end());
    expect(out.every((o) => 'garbage' in o && o.code === 'HJ212_BAD_HEADER')).toBe(true);
    expect(out.reduce((n, o) => n + ('garbage' in o ? o.length : 0), 0)).toBe(5000);
    // Reported at the first push that reaches a maximal frame (112 bytes here) of junk: every 150 bytes.
    expect(out.length).toBe(Math.ceil(5000 / 150));
  });

  it('accepts frames whose CRLF is left out, between frames and at the end', () => {
    const noCrlf = (f: string) => f.slice(0, -2);
    expect(run(Buffer.from(noCrlf(GOOD1) + noCrlf(GOOD2)), [])).toEqual([{ ok: '20240115103000123' }, { ok: '20240115103000456' }]);
  });

  it('reports a frame cut off by the end of the connection', () => {
    expect(run(Buffer.from(GOOD1 + GOOD2.slice(0, 50)), [])).toEqual([{ ok: '20240115103000123' }, { refused: 'HJ212_TRUNCATED' }]);
  });

  it('keeps a # split across chunks', () => {
    expect(run(Buffer.from('junk#' + GOOD1), [4, 5])).toEqual([{ refused: 'HJ212_BAD_HEADER' }, { ok: '20240115103000123' }]);
  });

  it('refuses a frame whose bytes are not UTF-8 and goes on', () => {
    const seg = Buffer.concat([Buffer.from('QN=20240115103000777;ST=22;CN=2011;PW=1;MN=A;Flag=4;CP=&&x='), Buffer.from([0xc3, 0x28]), Buffer.from('&&')]);
    const bad = Buffer.concat([Buffer.from(`##${String(seg.length).padStart(4, '0')}`), seg, Buffer.from('0000\r\n')]);
    expect(run(Buffer.concat([bad, Buffer.from(GOOD2)]), [])).toEqual([{ refused: 'HJ212_BAD_ENCODING' }, { ok: '20240115103000456' }]);
  });
});
