// HJ 212-2017 answers over a real TCP connection to the edge's listener (issue 13, items 6, 7 and 9):
// a 9014 only for a frame whose readings the edge queue holds, 9011 with the QnRtn the standard's table
// gives for a refused request that asked for an answer, no answer to an answer, and a frame without
// CRLF answered after a short quiet gap. Frames and expected answers are written out here from the
// standard's text, with the Appendix A CRC computed below (never with the edge's own encoder), and every
// answer is compared byte for byte.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, startFakeCloud, startTestEdge, waitFor, type FakeCloud, type TestEdge } from './helpers.ts';

/** HJ 212-2017 Appendix A, as protocols.md gives it: only the register's high byte carries over. */
function crc(segment: string): string {
  let reg = 0xffff;
  for (const b of Buffer.from(segment, 'utf8')) {
    reg = (reg >> 8) ^ b;
    for (let i = 0; i < 8; i++) {
      const lsb = reg & 1;
      reg >>= 1;
      if (lsb) reg ^= 0xa001;
    }
  }
  return reg.toString(16).toUpperCase().padStart(4, '0');
}
/** `##` + 4-digit byte length + segment + CRC (+ CRLF unless left out). */
const frame = (segment: string, crlf = true) => `##${String(Buffer.byteLength(segment)).padStart(4, '0')}${segment}${crc(segment)}${crlf ? '\r\n' : ''}`;

const MN = '010000A8900016F000169DC0';
const PW = 'pw-212-ok';
const STATION = { id: 'hj-ans', family: 'environment', district: 'jinshui', profile: 'hj212-air-station', hj212: { mn: MN, password: PW } };

let cloud: FakeCloud;
let t: TestEdge;
beforeAll(async () => {
  cloud = await startFakeCloud();
  t = await startTestEdge(cloud.url, { registry: { devices: [STATION] }, hj212: { host: '127.0.0.1', port: 0, crlfIdleMs: 100 } } as Parameters<typeof startTestEdge>[1]);
});
afterAll(async () => {
  await t?.stop();
  await cloud?.close();
});

/** China time (UTC+8) of now, YYYYMMDDhhmmss, so readings are within the edge's time window. */
function chinaNow(offsetS = 0): string {
  const d = new Date(Date.now() + 8 * 3600_000 + offsetS * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}
let qnSeq = 100;
/** A fresh 17-digit QN (YYYYMMDDhhmmsszzz). */
const nextQn = () => `${chinaNow()}${String(qnSeq++ % 1000).padStart(3, '0')}`;

type Station = Socket & { rx: string };
const open: Socket[] = [];
async function station(): Promise<Station> {
  const s = connect({ host: '127.0.0.1', port: t.edge.hj212Port! }) as Station;
  s.rx = '';
  s.setEncoding('utf8');
  s.on('data', (d: string) => (s.rx += d));
  s.on('error', () => undefined);
  open.push(s);
  await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
  return s;
}
/** Waits until the station has received `n` answer frames (each ends in CRLF) and returns them. */
async function answers(s: Station, n: number): Promise<string[]> {
  await waitFor(() => s.rx.split('\r\n').length - 1 >= n, 5_000, `${n} HJ 212 answers`);
  return s.rx.split('\r\n').slice(0, -1).map((a) => `${a}\r\n`);
}

const data = (qn: string, cp: string, over: { cn?: string; flag?: number; pw?: string; mn?: string; st?: string } = {}) =>
  `QN=${qn};ST=${over.st ?? '22'};CN=${over.cn ?? '2011'};PW=${over.pw ?? PW};MN=${over.mn ?? MN};Flag=${over.flag ?? 5};CP=&&${cp}&&`;
/** The answers as HJ 212-2017 writes them: same QN, ST=91, Flag=4 (2017, no A bit). */
const a9014 = (qn: string, pw = PW, mn = MN) => frame(`QN=${qn};ST=91;CN=9014;PW=${pw};MN=${mn};Flag=4;CP=&&&&`);
const a9011 = (qn: string, rtn: number, pw = PW, mn = MN) => frame(`QN=${qn};ST=91;CN=9011;PW=${pw};MN=${mn};Flag=4;CP=&&QnRtn=${rtn}&&`);

const readingsOf = () => cloud.acked.flatMap((b) => b.readings).filter((r) => r.deviceId === STATION.id);

describe('HJ 212 answers mean stored (item 6)', () => {
  it('answers a data upload 9014 once its reading is held, and it reaches the cloud', async () => {
    const s = await station();
    const qn = nextQn();
    s.write(frame(data(qn, `DataTime=${chinaNow()};a34004-Rtd=41.5,a34004-Flag=N`)));
    expect(await answers(s, 1)).toEqual([a9014(qn)]);
    await waitFor(() => readingsOf().some((r) => JSON.stringify(r).includes('41.5')), 5_000, 'the reading at the cloud');
  });

  it('refuses with 9011 QnRtn 2, never 9014, a real-time frame without DataTime and a frame whose every value is refused', async () => {
    const s = await station();
    const noTime = nextQn();
    const allBad = nextQn();
    const good = nextQn();
    s.write(frame(data(noTime, 'a34004-Rtd=33.3,a34004-Flag=N')) + frame(data(allBad, `DataTime=${chinaNow(-1)};a34004-Rtd=abc,a34004-Flag=N`)) + frame(data(good, `DataTime=${chinaNow(-2)};a34004-Rtd=42.25,a34004-Flag=N`)));
    expect(await answers(s, 3)).toEqual([a9011(noTime, 2), a9011(allBad, 2), a9014(good)]);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_hj212_frames_refused_total', { reason: 'HJ212_BAD_DATATIME' })).toBeGreaterThanOrEqual(1);
  });

  it('never answers an answer: 9011, 9012, 9013 and 9014 from a station, even with the A bit, get nothing', async () => {
    const s = await station();
    const echoes = ['9011', '9012', '9013', '9014'].map((cn) => frame(data(nextQn(), cn === '9011' ? 'QnRtn=1' : cn === '9012' ? 'ExeRtn=1' : '', { cn, st: '91' })));
    const after = nextQn();
    // Frames of a connection are handled in order: the first answer is the one for the data frame after them.
    s.write(echoes.join('') + frame(data(after, `DataTime=${chinaNow(-3)};a34004-Rtd=43.5,a34004-Flag=N`)));
    expect(await answers(s, 1)).toEqual([a9014(after)]);
  });

  it('refuses a command the profile does not store (2081 boot notice) with QnRtn 2, not 9014', async () => {
    const s = await station();
    const qn = nextQn();
    s.write(frame(data(qn, `RestartTime=${chinaNow()}`, { cn: '2081' })));
    expect(await answers(s, 1)).toEqual([a9011(qn, 2)]);
  });
});

describe('HJ 212 refusals the station can act on (item 7)', () => {
  it('answers wrong PW and unknown MN both with QnRtn 3', async () => {
    const s = await station();
    const wrongPw = nextQn();
    const unknown = nextQn();
    const otherMn = '010000A8900016F000169DFF';
    s.write(frame(data(wrongPw, `DataTime=${chinaNow()};a34004-Rtd=1`, { pw: 'guess' })) + frame(data(unknown, `DataTime=${chinaNow()};a34004-Rtd=1`, { pw: 'guess', mn: otherMn })));
    expect(await answers(s, 2)).toEqual([a9011(wrongPw, 3, 'guess'), a9011(unknown, 3, 'guess', otherMn)]);
  });

  it('answers a bad CRC with QnRtn 9 when its QN, MN and A bit read; not at all when the QN does not', async () => {
    const s = await station();
    const qn = nextQn();
    const seg = data(qn, `DataTime=${chinaNow()};a34004-Rtd=12.5`);
    const badCrc = (sg: string) => `##${String(Buffer.byteLength(sg)).padStart(4, '0')}${sg}${crc(sg) === '0000' ? '0001' : '0000'}\r\n`;
    const unreadableQn = data('2024011512', `DataTime=${chinaNow()};a34004-Rtd=12.5`);
    const good = nextQn();
    s.write(badCrc(seg) + badCrc(unreadableQn) + frame(data(good, `DataTime=${chinaNow(-4)};a34004-Rtd=44.5`)));
    expect(await answers(s, 2)).toEqual([a9011(qn, 9), a9014(good)]);
  });

  it('answers a wrong ST with 5, a wrong CN with 8, a wrong PNUM with 6, a bad DataTime with 100; a wrong QN cannot be answered', async () => {
    const s = await station();
    const [st, cn, pnum, dt, good] = [nextQn(), nextQn(), nextQn(), nextQn(), nextQn()];
    s.write(
      frame(data(st, `DataTime=${chinaNow()};a34004-Rtd=1`, { st: 'X2' })) +
        frame(data(cn, `DataTime=${chinaNow()};a34004-Rtd=1`, { cn: '20A1' })) +
        // Flag=7: split (D bit) with answer wanted, but no PNUM/PNO.
        frame(data(pnum, `DataTime=${chinaNow()};a34004-Rtd=1`, { flag: 7 })) +
        frame(data(dt, 'DataTime=20241399250000;a34004-Rtd=1')) +
        frame(data('1234567890123456', `DataTime=${chinaNow()};a34004-Rtd=1`)) +
        frame(data(good, `DataTime=${chinaNow(-5)};a34004-Rtd=45.5`)),
    );
    expect(await answers(s, 5)).toEqual([a9011(st, 5), a9011(cn, 8), a9011(pnum, 6), a9011(dt, 100), a9014(good)]);
  });

  it('does not answer a 2005 upload without QN (an answer must carry the QN), even with the A bit (Flag=1)', async () => {
    const s = await station();
    const good = nextQn();
    s.write(frame(`ST=22;CN=2011;PW=${PW};MN=${MN};Flag=1;CP=&&DataTime=${chinaNow(-11)};a34004-Rtd=51.5&&`) + frame(data(good, `DataTime=${chinaNow(-12)};a34004-Rtd=52.5`)));
    expect(await answers(s, 1)).toEqual([a9014(good)]);
  });

  it('does not answer a refused frame that did not ask for an answer (Flag=4)', async () => {
    const s = await station();
    const good = nextQn();
    s.write(frame(data(nextQn(), `DataTime=${chinaNow()};a34004-Rtd=1`, { pw: 'guess', flag: 4 })) + frame(data(good, `DataTime=${chinaNow(-6)};a34004-Rtd=46.5`)));
    expect(await answers(s, 1)).toEqual([a9014(good)]);
  });
});

describe('HJ 212 frame without CRLF (item 9)', () => {
  it('is answered after the quiet gap without the station writing again; a late CRLF is not counted as garbage', async () => {
    const s = await station();
    const before = await metricValue(t.edge.metrics, 'citysense_edge_hj212_frames_refused_total', { reason: 'HJ212_BAD_HEADER' });
    const qn = nextQn();
    s.write(frame(data(qn, `DataTime=${chinaNow(-7)};a34004-Rtd=47.5`), false));
    expect(await answers(s, 1)).toEqual([a9014(qn)]);
    // The CRLF that was only late, then the next frame: answered, and no stray bytes reported.
    const next = nextQn();
    s.write('\r');
    s.write('\n' + frame(data(next, `DataTime=${chinaNow(-8)};a34004-Rtd=48.5`)));
    expect(await answers(s, 2)).toEqual([a9014(qn), a9014(next)]);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_hj212_frames_refused_total', { reason: 'HJ212_BAD_HEADER' })).toBe(before);
  });

  it('a held frame whose CRC fails is not taken at the gap: it is judged (QnRtn 9) when its CRLF comes', async () => {
    const s = await station();
    const qn = nextQn();
    const seg = data(qn, `DataTime=${chinaNow(-9)};a34004-Rtd=49.5`);
    s.write(`##${String(Buffer.byteLength(seg)).padStart(4, '0')}${seg}${crc(seg) === 'FFFF' ? 'FFFE' : 'FFFF'}`);
    const good = nextQn();
    s.write('\r\n' + frame(data(good, `DataTime=${chinaNow(-10)};a34004-Rtd=50.5`)));
    expect(await answers(s, 2)).toEqual([a9011(qn, 9), a9014(good)]);
  });
});

afterAll(() => {
  for (const s of open) s.destroy();
});

describe('the test CRC is the standard\'s', () => {
  it('gives 1C80 on the example segment of protocols.md', () => {
    expect(crc('QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&')).toBe('1C80');
  });
});
