// The edge's GB/T 26875.3 listener with a real TCP client and the edge's real disk queue (the cloud is a
// fake speaking the protobuf contract): frames assembled by hand from the standard, written split and
// joined at seeded random points with noise between; every answer checked (confirm after the queue holds
// the data, deny where the standard's checks fail), resends stored once, heartbeats counted, not refused.
// The same frames as one MQTT message (a DTU) are all taken.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, startFakeCloud, startTestEdge, waitFor, type FakeCloud, type TestEdge } from './helpers.ts';

const DEVICE = [0x79, 0x03, 0, 0, 0, 0];
const CENTRE = [0x38, 0x5b, 0x01, 0, 0, 0];
/** Time label (§8.2.2): s, min, h, day, month, year − 2000, China time; now, so the edge's clock-skew policy keeps the readings. */
function timeLabel(ms: number): number[] {
  const d = new Date(ms + 8 * 3600_000);
  return [d.getUTCSeconds(), d.getUTCMinutes(), d.getUTCHours(), d.getUTCDate(), d.getUTCMonth() + 1, d.getUTCFullYear() - 2000];
}
const T = timeLabel(Date.now() - 60_000);
/** A frame per GB/T 26875.3 (layout §6.6), checksum = sum of bytes 3..27+n mod 256, added up here. */
function frame(serial: number, command: number, data: number[] = [], source = DEVICE, time = T): Buffer {
  const body = [serial & 0xff, serial >> 8, 1, 1, ...time, ...source, ...CENTRE, data.length & 0xff, data.length >> 8, command, ...data];
  const sum = body.reduce((a, b) => a + b, 0) % 256;
  return Buffer.from([0x40, 0x40, ...body, sum, 0x23, 0x23]);
}
const description = Array.from({ length: 31 }, () => 0);
/** Component state (type 2): smoke detector (40) of system 1 at 1, component `addr`, state word `state`. */
const componentState = (serial: number, addr: number, state: number) =>
  frame(serial, 2, [2, 1, 1, 1, 40, addr & 0xff, (addr >> 8) & 0xff, 0, 0, state & 0xff, state >> 8, ...description, ...T]);
/** Analog value (type 3): sprinkler system (12) at 2, pressure switch (99) at 1, type 5 (0.1 kPa), raw count. */
const pressure = (serial: number, raw: number) => frame(serial, 2, [3, 1, 12, 2, 99, 1, 0, 0, 0, 5, raw & 0xff, (raw >> 8) & 0xff, ...T]);
const heartbeat = (serial: number) => frame(serial, 2);

interface Answer {
  serial: number;
  command: number;
  source: string;
  destination: string;
  n: number;
}
/** Reads the edge's answers (each a 30-byte frame without data) off a socket. */
function answers(sock: Socket): Answer[] {
  const got: Answer[] = [];
  let buf = Buffer.alloc(0);
  sock.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 30) {
      const n = buf.readUInt16LE(24);
      const sum = [...buf.subarray(2, 27 + n)].reduce((a, b) => a + b, 0) % 256;
      expect(buf[0]).toBe(0x40);
      expect(buf[27 + n]).toBe(sum);
      expect(buf.subarray(28 + n, 30 + n).toString('latin1')).toBe('##');
      got.push({ serial: buf.readUInt16LE(2), command: buf[26]!, source: buf.toString('hex', 12, 18), destination: buf.toString('hex', 18, 24), n });
      buf = buf.subarray(30 + n);
    }
  });
  return got;
}

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

let cloud: FakeCloud;
let t: TestEdge;
const open: Socket[] = [];

async function client(): Promise<{ sock: Socket; got: Answer[] }> {
  const sock = connect(t.edge.gb26875Port!, '127.0.0.1');
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  open.push(sock);
  return { sock, got: answers(sock) };
}

beforeAll(async () => {
  cloud = await startFakeCloud();
  t = await startTestEdge(cloud.url, {
    gb26875: { enabled: true, host: '127.0.0.1', port: 0, heartbeatReadingIntervalMs: 3_600_000 },
    registry: {
      devices: [
        { id: 'uitd-tcp-1', family: 'fire', district: 'zhongyuan', profile: 'fire-panel-gb26875-tcp', gb26875: { address: '790300000000' } },
        { id: 'uitd-mqtt-1', family: 'fire', district: 'zhongyuan', profile: 'fire-panel-gb26875', secret: 'uitd-mqtt-1-secret' },
      ],
    },
  });
});
afterAll(async () => {
  for (const s of open) s.destroy();
  await t?.stop();
  await cloud?.close();
});

const readingsOf = (id: string) => cloud.acked.flatMap((b) => b.readings).filter((r) => r.deviceId === id);
const eventsOf = (id: string) => cloud.acked.flatMap((b) => b.events).filter((e) => e.deviceId === id);

describe('GB/T 26875.3 listener', () => {
  it('frames split and joined at seeded random points, noise between: each confirmed with its serial, each value stored once', async () => {
    const { sock, got } = await client();
    const rnd = prng(26875);
    const sent: Buffer[] = [];
    const raws: number[] = [];
    for (let i = 0; i < 40; i++) {
      const raw = 3000 + i * 10; // 0.3 MPa + i kPa
      raws.push(raw);
      sent.push(i % 5 === 4 ? heartbeat(100 + i) : pressure(100 + i, raw));
    }
    const parts: Buffer[] = [];
    for (const f of sent) {
      parts.push(f);
      if (rnd() < 0.5) parts.push(Buffer.from([0x0d, 0x0a, 0x00, 0x23].slice(0, 1 + Math.floor(rnd() * 4))));
    }
    const stream = Buffer.concat(parts);
    for (let at = 0; at < stream.length; ) {
      const len = 1 + Math.floor(rnd() * 120);
      sock.write(stream.subarray(at, at + len));
      at += len;
    }
    await waitFor(() => got.length >= 40, 10_000, '40 answers');
    expect(got.map((a) => a.serial)).toEqual(sent.map((_, i) => 100 + i));
    expect(got.every((a) => a.command === 3 && a.n === 0 && a.source === '385b01000000' && a.destination === '790300000000')).toBe(true);
    await t.edge.flush(10_000);
    const pressures = readingsOf('uitd-tcp-1').filter((r) => 'sprinkler_pressure' in r.values).map((r) => r.values['sprinkler_pressure']);
    const expected = raws.filter((_, i) => i % 5 !== 4).map((raw) => Number((raw / 10_000).toFixed(4)));
    expect([...new Set(pressures)].sort()).toEqual([...new Set(expected)].sort());
    expect(await metricValue(t.edge.metrics, 'citysense_edge_gb26875_heartbeats_total', { input: 'tcp' })).toBe(8);
    // Heartbeats are not refusals: nothing of this device was refused.
    expect(await metricValue(t.edge.metrics, 'citysense_edge_messages_rejected_total', { device: 'uitd-tcp-1' })).toBe(0);
    // One heartbeat reading per interval keeps the device online in the cloud.
    expect(readingsOf('uitd-tcp-1').filter((r) => r.values['heartbeat'] === true)).toHaveLength(1);
  });

  it('a fire alarm is confirmed only once the queue holds it; its resend (same serial, new time) is confirmed and stored once', async () => {
    const { sock, got } = await client();
    const before = eventsOf('uitd-tcp-1').filter((e) => e.type === 'fire_alarm').length;
    sock.write(componentState(500, 7, 0b11));
    await waitFor(() => got.length >= 1, 5000, 'the confirm');
    // Confirmed means durable: the edge's queue (or the cloud already) holds the event.
    const h = t.edge.health();
    const held = h.queue!.alarm.events + eventsOf('uitd-tcp-1').filter((e) => e.type === 'fire_alarm').length - before;
    expect(held).toBeGreaterThanOrEqual(1);
    // The device missed the confirm and resends: same serial and data, its send time moved on.
    sock.write(frame(500, 2, [2, 1, 1, 1, 40, 7, 0, 0, 0, 0b11, 0, ...description, ...T], DEVICE, timeLabel(Date.now())));
    await waitFor(() => got.length >= 2, 5000, 'the second confirm');
    expect(got.map((a) => [a.serial, a.command])).toEqual([
      [500, 3],
      [500, 3],
    ]);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_gb26875_resent_total')).toBe(1);
    await t.edge.flush(10_000);
    expect(eventsOf('uitd-tcp-1').filter((e) => e.type === 'fire_alarm').length - before).toBe(1);
  });

  it('denies (command 6) a wrong checksum, an unregistered source and a command the centre does not take; ignores noise', async () => {
    const { sock, got } = await client();
    const refused = (reason: string) => metricValue(t.edge.metrics, 'citysense_edge_gb26875_frames_refused_total', { reason });
    const noiseBefore = await refused('GB26875_BAD_START');
    const bad = pressure(600, 4000);
    bad[bad.length - 3] = (bad[bad.length - 3]! + 1) & 0xff;
    sock.write(Buffer.concat([Buffer.from('noise\r\n'), bad, frame(601, 2, [], [1, 1, 1, 1, 1, 1]), frame(602, 4, [81, 1, 0]), heartbeat(603)]));
    await waitFor(() => got.length >= 4, 5000, 'four answers');
    expect(got.map((a) => [a.serial, a.command])).toEqual([
      [600, 6],
      [601, 6],
      [602, 6],
      [603, 3],
    ]);
    expect(got[1]!.destination).toBe('010101010101');
    expect(await refused('GB26875_BAD_CHECKSUM')).toBe(1);
    expect(await refused('GB26875_UNKNOWN_SOURCE')).toBe(1);
    expect(await refused('GB26875_UNSUPPORTED_COMMAND')).toBe(1);
    expect((await refused('GB26875_BAD_START')) - noiseBefore).toBe(1);
  });

  it('over MQTT, one message with two joined frames, a heartbeat and a CRLF: both frames stored, the heartbeat counted, not refused', async () => {
    const c = await t.connect('uitd-mqtt-1', 'uitd-mqtt-1-secret');
    const payload = Buffer.concat([pressure(1, 4000), componentState(2, 9, 0b11), heartbeat(3), Buffer.from('\r\n')]);
    await c.publishAsync('devices/uitd-mqtt-1/telemetry', payload, { qos: 1 });
    await t.edge.flush(10_000);
    expect(readingsOf('uitd-mqtt-1').map((r) => r.values['sprinkler_pressure'])).toContain(0.4);
    expect(eventsOf('uitd-mqtt-1').map((e) => [e.type, e.attrs['component']])).toContainEqual(['fire_alarm', '9']);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_gb26875_heartbeats_total', { input: 'mqtt' })).toBe(1);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_messages_rejected_total', { device: 'uitd-mqtt-1', reason: 'GB26875_BAD_START' })).toBe(1);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_messages_rejected_total', { device: 'uitd-mqtt-1', reason: 'GB26875_BAD_OBJECT_COUNT' })).toBe(0);
  });
});
