// Fire-alarm transmission devices over TCP end to end: the edge's GB/T 26875.3 listener → the edge's
// queue → cloud → InfluxDB, and a fire alarm → the cloud's alert → the fire system's signed webhook.
// A raw TCP client writes frames assembled by hand from the standard (checksum added up here), split and
// joined at seeded random points with noise between, and checks every answer and every stored value;
// then the simulated transmission device (device-sim, its own encoder and link) raises a fire alarm.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../cloud/src/delivery/sign.ts';
import { receiver, type Receiver } from '../cloud/test/alerts-fixtures.ts';
import { startFirePanelTcp, type FirePanel } from '../device-sim/src/fire-panel/index.ts';
import { startStack, type Stack } from './stack.ts';
import { waitFor } from './setup/influx.ts';

const SECRET = 'e2e-fire-tcp-webhook-secret';
const RAW = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
const SIM = '665544332211';
const CENTRE = [0, 0, 0, 0, 0, 0];

/** Time label (§8.2.2): s, min, h, day, month, year − 2000, China time. */
function timeLabel(ms: number): number[] {
  const d = new Date(ms + 8 * 3600_000);
  return [d.getUTCSeconds(), d.getUTCMinutes(), d.getUTCHours(), d.getUTCDate(), d.getUTCMonth() + 1, d.getUTCFullYear() - 2000];
}
/** '@@' serial version time source destination n command data checksum '##'; checksum = sum of bytes 3..27+n mod 256. */
function frame(serial: number, command: number, data: number[], time: number[]): Buffer {
  const body = [serial & 0xff, serial >> 8, 1, 0, ...time, ...RAW, ...CENTRE, data.length & 0xff, data.length >> 8, command, ...data];
  return Buffer.from([0x40, 0x40, ...body, body.reduce((a, b) => a + b, 0) % 256, 0x23, 0x23]);
}
/** One analog object: sprinkler system (12) at 2, pressure switch (99) at 1, type 5 (0.1 kPa per count). */
const pressure = (serial: number, raw: number, at: number) => frame(serial, 2, [3, 1, 12, 2, 99, 1, 0, 0, 0, 5, raw & 0xff, (raw >> 8) & 0xff, ...timeLabel(at)], timeLabel(at));

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

let stack: Stack;
let fireSystem: Receiver;
let panel: FirePanel | undefined;
const sockets: Socket[] = [];

beforeAll(async () => {
  fireSystem = await receiver();
  stack = await startStack(
    'fire_tcp',
    [
      { id: 'uitd-raw', family: 'fire', district: 'zhongyuan', profile: 'fire-panel-gb26875-tcp', gb26875: { address: Buffer.from(RAW).toString('hex') } },
      { id: 'uitd-sim', family: 'fire', district: 'zhongyuan', profile: 'fire-panel-gb26875-tcp', gb26875: { address: SIM } },
    ],
    { gb26875: { enabled: true, host: '127.0.0.1', port: 0 } },
    {
      webhooks: {
        demoTargetsFromEnv: false,
        pollIntervalMs: 50,
        targets: [{ id: 'fire-system', url: fireSystem.url, secret: SECRET, match: { categories: ['fire'] }, backoff: { initialMs: 50, maxMs: 500 } }],
      },
    },
  );
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await panel?.stop();
  await stack?.close();
  await fireSystem?.close();
});

describe('GB/T 26875.3 over TCP → edge → cloud → InfluxDB and the fire system', () => {
  it('frames split and joined at random points with noise: every answer right, every value in InfluxDB once', async () => {
    const sock = connect(stack.edge.gb26875Port!, '127.0.0.1');
    sockets.push(sock);
    await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
    const answers: [number, number][] = [];
    let buf = Buffer.alloc(0);
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 30) {
        const n = buf.readUInt16LE(24);
        if (buf.length < n + 30) break;
        expect(buf[27 + n]).toBe([...buf.subarray(2, 27 + n)].reduce((a, b) => a + b, 0) % 256);
        answers.push([buf.readUInt16LE(2), buf[26]!]);
        buf = buf.subarray(n + 30);
      }
    });
    const rnd = prng(6213);
    const t0 = Date.now() - 120_000;
    const sent: { serial: number; bytes: Buffer; want: number | null }[] = [];
    for (let i = 0; i < 30; i++) {
      const raw = 3000 + Math.floor(rnd() * 2000); // 0.3–0.5 MPa
      if (i % 7 === 6) sent.push({ serial: 1000 + i, bytes: frame(1000 + i, 2, [], timeLabel(t0 + i * 1000)), want: null }); // heartbeat
      else sent.push({ serial: 1000 + i, bytes: pressure(1000 + i, raw, t0 + i * 1000), want: raw / 10_000 });
    }
    const bad = pressure(2000, 4444, t0);
    bad[bad.length - 3] = (bad[bad.length - 3]! + 1) & 0xff; // a corrupted frame: denied, not stored
    const parts: Buffer[] = [];
    sent.forEach((s, i) => {
      parts.push(s.bytes);
      if (i === 10) parts.push(bad);
      if (rnd() < 0.4) parts.push(Buffer.from('\r\n'));
      if (rnd() < 0.2) parts.push(Buffer.from([0x00, 0xff, 0x23]));
    });
    const stream = Buffer.concat(parts);
    for (let at = 0; at < stream.length; ) {
      const len = 1 + Math.floor(rnd() * 90);
      sock.write(stream.subarray(at, at + len));
      at += len;
    }
    await waitFor('31 answers', async () => answers.length >= 31);
    const expected: [number, number][] = sent.map((s) => [s.serial, 3]);
    expected.splice(11, 0, [2000, 6]);
    expect(answers).toEqual(expected);

    const want = sent.filter((s) => s.want !== null).map((s) => Number(s.want!.toFixed(4)));
    let rows: Record<string, unknown>[] = [];
    await waitFor('every pressure in InfluxDB', async () => {
      rows = await stack.influx.query(`SELECT sprinkler_pressure FROM fire WHERE device_id = 'uitd-raw' AND sprinkler_pressure > 0`);
      return rows.length >= want.length;
    });
    expect(rows.map((r) => r.sprinkler_pressure)).toEqual(want);
    expect(rows.some((r) => r.sprinkler_pressure === 0.4444)).toBe(false);
    // The heartbeats kept the device online: one heartbeat reading (the rest within the minute are only counted).
    const hb = await stack.influx.query(`SELECT heartbeat FROM fire WHERE device_id = 'uitd-raw' AND heartbeat = true`);
    expect(hb).toHaveLength(1);
  });

  it("the simulated transmission device's fire alarm reaches the fire system's webhook, signed, with the zone", async () => {
    panel = await startFirePanelTcp({ id: 'uitd-sim', address: SIM, host: '127.0.0.1', port: stack.edge.gb26875Port!, seed: 13, reportIntervalMs: 0, heartbeatMs: 0, answerTimeoutMs: 5_000 });
    await panel.fireAlarm('F2-Z1');
    const deliveries = await fireSystem.waitFor(1, 20_000);
    const d = deliveries.find((x) => x.body['device_id'] === 'uitd-sim' && x.body['rule'] === 'fire-alarm')!;
    expect(d).toBeDefined();
    expect(d.body).toMatchObject({ state: 'firing', category: 'fire', type: 'fire_alarm' });
    expect((d.body['attrs'] as Record<string, string>)['zone']).toBe('F2-Z1');
    expect(verifySignature(SECRET, d.raw, d.headers['x-citysense-signature'] as string, Math.floor(Date.now() / 1000))).toMatchObject({ ok: true });
  });
});
