// The GB/T 26875.3 stream framer against frames assembled by hand from the standard's layout (its own
// examples: the transmission device 79 03 00 00 00 00 reporting to the centre 38 5B 01 00 00 00), the
// checksum added up here from the rule. Joined, split at every byte, with noise and false starts between.
import { describe, expect, it } from 'vitest';
import { Gb26875StreamFramer, decodeGb26875, loadGb26875Profile, type Gb26875StreamItem } from '../src/decoders/gb26875/index.ts';

const DEVICE = [0x79, 0x03, 0, 0, 0, 0];
const CENTRE = [0x38, 0x5b, 0x01, 0, 0, 0];
/** '@@' serial version(1.1) time(2012-09-26 09:58:32) source destination n command data checksum '##'; checksum = sum of bytes 3..27+n mod 256. */
function frame(serial: number, command: number, data: number[] = []): Uint8Array {
  const body = [serial & 0xff, serial >> 8, 1, 1, 0x20, 0x3a, 0x09, 0x1a, 0x09, 0x0c, ...DEVICE, ...CENTRE, data.length & 0xff, data.length >> 8, command, ...data];
  const sum = body.reduce((a, b) => a + b, 0) % 256;
  return Uint8Array.from([0x40, 0x40, ...body, sum, 0x23, 0x23]);
}
/** The standard's example: a smoke detector (type 40) of system 1 at 1, component 0x0002000A, in fire (state bit 1). */
const description = Array.from({ length: 31 }, (_, i) => (i < 30 ? 0x20 : 0));
const fireAlarm = (serial: number) => frame(serial, 2, [2, 1, 1, 1, 0x28, 0x0a, 0x00, 0x02, 0x00, 0x02, 0x00, ...description, 0x02, 0x3a, 0x09, 0x1a, 0x09, 0x0c]);
/** The standard's heartbeat: send data (2) with no application data. */
const heartbeat = (serial: number) => frame(serial, 2);
/** Device state (type 21): main power fault (bit 3). */
const powerFault = (serial: number) => frame(serial, 2, [21, 1, 0x08, 0x02, 0x3a, 0x09, 0x1a, 0x09, 0x0c]);

const frames = (items: Gb26875StreamItem[]) => items.flatMap((i) => ('frame' in i ? [Buffer.from(i.frame).toString('hex')] : []));
const garbage = (items: Gb26875StreamItem[]) => items.flatMap((i) => ('garbage' in i ? [i.code] : []));
const hex = (u: Uint8Array) => Buffer.from(u).toString('hex');
const cat = (...parts: (Uint8Array | number[])[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

/** A seeded PRNG (mulberry32) so a failure names its seed and replays. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Gb26875StreamFramer', () => {
  it('a frame assembled from the standard delivers as itself', () => {
    const f = new Gb26875StreamFramer();
    expect(frames(f.push(fireAlarm(1)))).toEqual([hex(fireAlarm(1))]);
    expect(f.buffered()).toBe(0);
  });

  it('two joined frames and a trailing CRLF (a DTU) give both frames, the CRLF reported', () => {
    const f = new Gb26875StreamFramer();
    const items = [...f.push(cat(fireAlarm(1), heartbeat(2), [0x0d, 0x0a])), ...f.end()];
    expect(frames(items)).toEqual([hex(fireAlarm(1)), hex(heartbeat(2))]);
    expect(garbage(items)).toEqual(['GB26875_BAD_START']);
  });

  it('split at every byte: each frame is delivered once, when its last byte arrives', () => {
    const stream = cat(fireAlarm(1), heartbeat(2), powerFault(3));
    const f = new Gb26875StreamFramer();
    const got: string[] = [];
    for (const b of stream) got.push(...frames(f.push(Uint8Array.of(b))));
    expect(got).toEqual([hex(fireAlarm(1)), hex(heartbeat(2)), hex(powerFault(3))]);
  });

  it('noise before and between frames is skipped and reported with its length', () => {
    const f = new Gb26875StreamFramer();
    const items = f.push(cat([1, 2, 3, 0x40], fireAlarm(1), [0x23, 0x23, 9, 9], heartbeat(2)));
    expect(frames(items)).toEqual([hex(fireAlarm(1)), hex(heartbeat(2))]);
    const g = items.filter((i) => 'garbage' in i);
    // Every byte that is not a frame is accounted for (the stray '@' next to the start is a false start of its own).
    expect(g.reduce((n, i) => n + ('garbage' in i ? i.length : 0), 0)).toBe(8);
  });

  it('a frame with a wrong checksum is reported with its header (to deny it), the next frame still arrives', () => {
    const bad = fireAlarm(7);
    bad[bad.length - 3] = (bad[bad.length - 3]! + 1) & 0xff;
    const f = new Gb26875StreamFramer();
    const items = f.push(cat(bad, heartbeat(8)));
    expect(frames(items)).toEqual([hex(heartbeat(8))]);
    const g = items.find((i) => 'garbage' in i);
    expect(g).toMatchObject({ code: 'GB26875_BAD_CHECKSUM', header: { serial: 7, source: '790300000000', destination: '385b01000000', command: 2 } });
  });

  it('a length over 1024 is refused from the header alone (with the header), without buffering it', () => {
    const f = new Gb26875StreamFramer();
    const head = frame(9, 2).slice(0, 27);
    head[24] = 0x01;
    head[25] = 0x04; // n = 1025
    const items = f.push(cat(head, heartbeat(10)));
    expect(garbage(items)[0]).toBe('GB26875_BAD_LENGTH');
    expect(items.find((i) => 'garbage' in i)).toMatchObject({ header: { serial: 9, appDataLength: 1025 } });
    expect(frames(items)).toEqual([hex(heartbeat(10))]);
  });

  it("a false '@@' in noise announcing a long frame does not hold back the fire alarm behind it", () => {
    const f = new Gb26875StreamFramer();
    const fake = frame(0, 2).slice(0, 27);
    fake[24] = 0x00;
    fake[25] = 0x03; // announces 768 bytes that never come
    const items = f.push(cat(fake, fireAlarm(5)));
    expect(frames(items)).toEqual([hex(fireAlarm(5))]);
    expect(garbage(items)).toEqual(['GB26875_TRUNCATED']);
    expect(f.buffered()).toBe(0);
  });

  it('a frame cut off by the end of the stream is reported as truncated; a complete one before it is delivered', () => {
    const f = new Gb26875StreamFramer();
    const items = [...f.push(cat(heartbeat(1), fireAlarm(2).slice(0, 40))), ...f.end()];
    expect(frames(items)).toEqual([hex(heartbeat(1))]);
    expect(garbage(items)).toEqual(['GB26875_TRUNCATED']);
    expect(f.buffered()).toBe(0);
  });

  it('memory is bounded: a flood without a start holds at most one byte, a long frame at most one maximal frame', () => {
    const f = new Gb26875StreamFramer();
    for (let i = 0; i < 100; i++) f.push(new Uint8Array(1000).fill(0x41));
    expect(f.buffered()).toBe(0);
    const head = frame(1, 2).slice(0, 27);
    head[24] = 0x00;
    head[25] = 0x04; // 1024: the largest allowed
    f.push(head);
    for (let i = 0; i < 100; i++) {
      f.push(new Uint8Array(10).fill(0x41));
      expect(f.buffered()).toBeLessThanOrEqual(1024 + 30);
    }
  });

  it('seeded: frames split and joined at random points with noise between arrive complete and in order', () => {
    for (const seed of [1, 2, 3, 26875]) {
      const rnd = prng(seed);
      const sent: Uint8Array[] = [];
      const parts: number[] = [];
      for (let i = 0; i < 60; i++) {
        const kind = Math.floor(rnd() * 3);
        const fr = kind === 0 ? fireAlarm(i) : kind === 1 ? heartbeat(i) : powerFault(i);
        sent.push(fr);
        parts.push(...fr);
        // Noise without '@' (a lone '@' is tested above): CRLF, zeros, random bytes.
        const noise = Math.floor(rnd() * 6);
        for (let k = 0; k < noise; k++) parts.push(Math.floor(rnd() * 256) === 0x40 ? 0x41 : Math.floor(rnd() * 256) & 0x3f);
      }
      const stream = Uint8Array.from(parts);
      const f = new Gb26875StreamFramer();
      const got: string[] = [];
      for (let at = 0; at < stream.length; ) {
        const len = 1 + Math.floor(rnd() * 80);
        got.push(...frames(f.push(stream.subarray(at, at + len))));
        at += len;
      }
      got.push(...frames(f.end()));
      expect(got, `seed ${seed}`).toEqual(sent.map(hex));
    }
  });
});

describe('heartbeats', () => {
  const r = loadGb26875Profile({});
  if (!r.ok) throw new Error(r.refusal.message);
  it('a send-data frame without application data is a heartbeat, not a refusal', () => {
    const d = decodeGb26875(heartbeat(3), r.profile);
    expect(d.refusals).toEqual([]);
    expect(d.frame).toMatchObject({ serial: 3, command: 2, heartbeat: true, source: '790300000000' });
    expect(d.samples).toEqual([]);
    expect(d.events).toEqual([]);
  });
  it("the standard's fire-alarm example decodes to a component fire alarm", () => {
    const d = decodeGb26875(fireAlarm(1), r.profile);
    expect(d.refusals).toEqual([]);
    expect(d.events).toEqual([expect.objectContaining({ type: 'fire_alarm', priority: 'alarm', attrs: expect.objectContaining({ component: String(0x0002000a), component_type: 'smoke_detector' }) })]);
  });
});
