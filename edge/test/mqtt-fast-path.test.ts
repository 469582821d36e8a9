// The hand-written PUBLISH path (fast-path.ts): a device's QoS 0/1 PUBLISH to its own topics is taken
// beside aedes with aedes' guarantees — PUBACK only after onMessage resolved, none and a closed connection
// when it rejects, keepalive refreshed — and everything else reaches aedes unchanged and in order.
import { connect, type Socket } from 'node:net';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FastPath } from '../src/inputs/mqtt-broker/fast-path.ts';
import { startMqttBroker, type MqttBroker, type MqttBrokerOptions } from '../src/inputs/mqtt-broker/server.ts';
import { createEdgeMetrics, type EdgeMetrics } from '../src/metrics.ts';
import type { Device, DeviceRegistry } from '../src/registry/registry.ts';
import { metricValue, waitFor, testBrokerOptions } from './helpers.ts';
import { credentialFromPlain } from '../src/registry/credentials.ts';

const secret = 'dev-1-secret-value';
const device = { id: 'dev-1', family: 'env', district: 'd', tags: {}, secret: credentialFromPlain(secret) } as unknown as Device;
const registry: DeviceRegistry = { get: (id) => (id === device.id ? device : undefined), byMn: () => undefined, byPushKey: () => undefined, byGbAddress: () => undefined, all: () => [device], size: 1 };
const TELEMETRY = `devices/${device.id}/telemetry`;

let broker: MqttBroker | undefined;
let metrics: EdgeMetrics;
const clients: mqtt.MqttClient[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of clients.splice(0)) c.end(true);
  for (const s of sockets.splice(0)) s.destroy();
  await broker?.close();
  broker = undefined;
});

async function start(onMessage: MqttBrokerOptions['onMessage'], over: Partial<MqttBrokerOptions> = {}): Promise<MqttBroker> {
  metrics = createEdgeMetrics();
  broker = await startMqttBroker(testBrokerOptions({ registry, onMessage, metrics }, { maxPacketBytes: 4096, ...over }));
  return broker;
}

/** Counts the packets the fast path takes (the rest went to aedes). */
function countTaken(): { n: number } {
  const taken = { n: 0 };
  const proto = FastPath.prototype as unknown as Record<'take', (...a: unknown[]) => unknown>;
  const orig = proto.take;
  vi.spyOn(proto, 'take').mockImplementation(function (this: unknown, ...a: unknown[]) {
    taken.n++;
    return orig.apply(this, a);
  });
  return taken;
}

async function client(b: MqttBroker, opts: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.port}`, { username: device.id, password: secret, clientId: device.id, reconnectPeriod: 0, ...opts });
  clients.push(c);
  return c;
}

function pubacks(c: mqtt.MqttClient): number[] {
  const acked: number[] = [];
  c.on('packetreceive', (p) => {
    if (p.cmd === 'puback') acked.push(p.messageId!);
  });
  return acked;
}

const str = (v: string) => Buffer.concat([Buffer.from([0, Buffer.byteLength(v)]), Buffer.from(v)]);
/** A PUBLISH (remaining length < 128) as the bytes a device sends. */
function publishPacket(topic: string, payload: string, qos: 0 | 1, id = 0, flags = 0): Buffer {
  const body = Buffer.concat([str(topic), qos ? Buffer.from([id >> 8, id & 0xff]) : Buffer.alloc(0), Buffer.from(payload)]);
  return Buffer.concat([Buffer.from([0x30 | (qos << 1) | flags, body.length]), body]);
}
const PINGREQ = Buffer.from([0xc0, 0x00]);

/** A raw TCP device, logged in; `rx` collects every byte the broker sends after CONNACK. */
async function rawDevice(b: MqttBroker): Promise<{ s: Socket; rx: () => Buffer }> {
  const s = connect(b.port, '127.0.0.1');
  sockets.push(s);
  s.setNoDelay(true);
  await new Promise<void>((r) => s.once('connect', () => r()));
  const got: Buffer[] = [];
  s.on('data', (d: Buffer) => got.push(d));
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2, 0, 60]), str(`${device.id}/raw-1`), str(device.id), str(secret)]);
  s.write(Buffer.concat([Buffer.from([0x10, body.length]), body]));
  await waitFor(() => Buffer.concat(got).length >= 4, 5000, 'CONNACK');
  expect([...Buffer.concat(got).subarray(0, 4)]).toEqual([0x20, 2, 0, 0]);
  got.length = 0;
  return { s, rx: () => Buffer.concat(got) };
}

/** The broker's packets as [type byte, packet id or -1], for the 2- and 4-byte packets these tests get back. */
function packets(b: Buffer): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < b.length; ) {
    const len = b[i + 1]!;
    out.push([b[i]!, len >= 2 ? (b[i + 2]! << 8) | b[i + 3]! : -1]);
    i += 2 + len;
  }
  return out;
}

describe('QoS 1 on the fast path', () => {
  it('no PUBACK until onMessage resolves; then all of them, in one write per release', async () => {
    const taken = countTaken();
    const pending: (() => void)[] = [];
    const got: string[] = [];
    const b = await start((_d, kind, payload) => {
      got.push(`${kind}:${payload.toString()}`);
      return new Promise<void>((resolve) => pending.push(resolve));
    });
    const c = await client(b);
    const acked = pubacks(c);
    const n = 20;
    const published = Promise.all(
      Array.from({ length: n }, (_, i) => c.publishAsync(i % 2 ? `devices/${device.id}/events` : TELEMETRY, `m${i}`, { qos: 1 })),
    );
    await waitFor(() => pending.length === n, 5000, 'all messages at the sink');
    await new Promise((r) => setTimeout(r, 100));
    expect(acked).toEqual([]);
    expect(taken.n).toBe(n);
    expect(got).toEqual(Array.from({ length: n }, (_, i) => `${i % 2 ? 'events' : 'telemetry'}:m${i}`));
    for (const r of pending.splice(0, 5)) r();
    await waitFor(() => acked.length === 5, 5000, 'PUBACKs of the first release');
    await new Promise((r) => setTimeout(r, 50));
    expect(acked.length).toBe(5);
    for (const r of pending.splice(0)) r();
    await published;
    expect(new Set(acked).size).toBe(n);
  });

  it('a rejection: no PUBACK for it or after it, the connection closes; what resolved before is acknowledged', async () => {
    const taken = countTaken();
    let calls = 0;
    const warn = vi.fn();
    const b = await start(
      () => {
        calls++;
        return calls === 3 ? Promise.reject(new Error('queue full')) : Promise.resolve();
      },
      { warn },
    );
    const c = await client(b);
    const acked = pubacks(c);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    for (let i = 0; i < 5; i++) c.publish(TELEMETRY, `m${i}`, { qos: 1 });
    await closed;
    expect(taken.n).toBeGreaterThanOrEqual(3);
    expect(acked.length).toBe(2);
    // The same report as aedes gives for an authorizePublish error.
    expect(warn).toHaveBeenCalledWith('mqtt_client_error', expect.objectContaining({ err: 'queue full' }), expect.any(String));
  });
});

describe('QoS 0 on the fast path', () => {
  it('reaches onMessage, no acknowledgement', async () => {
    const taken = countTaken();
    const got: string[] = [];
    const b = await start(async (_d, _k, payload) => {
      got.push(payload.toString());
    });
    const c = await client(b);
    const acked = pubacks(c);
    for (let i = 0; i < 10; i++) c.publish(TELEMETRY, `q0-${i}`, { qos: 0 });
    await waitFor(() => got.length === 10, 5000, 'QoS 0 messages');
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `q0-${i}`));
    expect(taken.n).toBe(10);
    expect(acked).toEqual([]);
  });
});

describe('what goes to aedes', () => {
  it('PUBLISH, PINGREQ, PUBLISH in one chunk: the first taken, the rest to aedes in order', async () => {
    const taken = countTaken();
    const got: string[] = [];
    const b = await start(async (_d, _k, payload) => {
      got.push(payload.toString());
    });
    const { s, rx } = await rawDevice(b);
    s.write(Buffer.concat([publishPacket(TELEMETRY, 'a', 1, 1), PINGREQ, publishPacket(TELEMETRY, 'b', 1, 2)]));
    await waitFor(() => packets(rx()).length === 3, 5000, 'two PUBACKs and a PINGRESP');
    expect(got).toEqual(['a', 'b']);
    expect(taken.n).toBe(1);
    expect(packets(rx()).sort((x, y) => x[0] - y[0] || x[1] - y[1])).toEqual([[0x40, 1], [0x40, 2], [0xd0, -1]]);

    // PINGREQ first: the whole chunk is aedes'.
    s.write(Buffer.concat([PINGREQ, publishPacket(TELEMETRY, 'c', 1, 3)]));
    await waitFor(() => packets(rx()).length === 5, 5000, 'PINGRESP and PUBACK');
    expect(got).toEqual(['a', 'b', 'c']);
    expect(taken.n).toBe(1);
  });

  it('a packet split across reads: a PUBLISH is reassembled; the tail of an aedes packet stays aedes\'', async () => {
    const taken = countTaken();
    const got: string[] = [];
    const b = await start(async (_d, _k, payload) => {
      got.push(payload.toString());
    });
    const { s, rx } = await rawDevice(b);
    const p1 = publishPacket(TELEMETRY, 'split', 1, 1);
    s.write(p1.subarray(0, 9));
    await new Promise((r) => setTimeout(r, 50));
    s.write(p1.subarray(9));
    await waitFor(() => packets(rx()).length === 1, 5000, 'PUBACK of the split PUBLISH');
    expect(taken.n).toBe(1);

    // SUBSCRIBE to its own subtree, split: the PUBLISH after its tail must wait for aedes.
    const subBody = Buffer.concat([Buffer.from([0, 9]), str(`devices/${device.id}/cmd`), Buffer.from([1])]);
    const sub = Buffer.concat([Buffer.from([0x82, subBody.length]), subBody]);
    s.write(Buffer.concat([publishPacket(TELEMETRY, 'x', 1, 2), sub.subarray(0, 5)]));
    await new Promise((r) => setTimeout(r, 50));
    s.write(Buffer.concat([sub.subarray(5), publishPacket(TELEMETRY, 'y', 1, 3)]));
    await waitFor(() => packets(rx()).length === 4, 5000, 'SUBACK and two PUBACKs');
    expect(got).toEqual(['split', 'x', 'y']);
    expect(taken.n).toBe(2);
    expect(packets(rx()).some(([t, id]) => t === 0x90 && id === 9)).toBe(true);
  });

  it('retain and DUP flags go to aedes, which takes them as before', async () => {
    const taken = countTaken();
    const got: string[] = [];
    const b = await start(async (_d, _k, payload) => {
      got.push(payload.toString());
    });
    const { s, rx } = await rawDevice(b);
    s.write(publishPacket(TELEMETRY, 'r', 1, 1, 0x01));
    await waitFor(() => packets(rx()).length === 1, 5000, 'PUBACK (retain)');
    s.write(publishPacket(TELEMETRY, 'd', 1, 2, 0x08));
    await waitFor(() => packets(rx()).length === 2, 5000, 'PUBACK (dup)');
    expect(got).toEqual(['r', 'd']);
    expect(taken.n).toBe(0);
  });

  it('a publish to a foreign topic is refused and counted as before, the own topic still flows', async () => {
    const got: string[] = [];
    const b = await start(async (_d, _k, payload) => {
      got.push(payload.toString());
    });
    const c = await client(b);
    await c.publishAsync('devices/dev-2/telemetry', 'spoof', { qos: 1 });
    await c.publishAsync(`devices/${device.id}/other`, 'nope', { qos: 1 });
    await c.publishAsync(TELEMETRY, 'real', { qos: 1 });
    expect(got).toEqual(['real']);
    expect(await metricValue(metrics.registry, 'citysense_edge_publish_refused_total', { reason: 'foreign_topic' })).toBe(1);
    expect(await metricValue(metrics.registry, 'citysense_edge_publish_refused_total', { reason: 'unknown_topic' })).toBe(1);
  });
});

describe('keepalive and backpressure', () => {
  it('a device that only publishes (no PINGREQ) stays connected past 1.5 × keepalive', async () => {
    const b = await start(async () => undefined);
    const c = await client(b, { keepalive: 1 });
    let pings = 0;
    c.on('packetsend', (p) => {
      if (p.cmd === 'pingreq') pings++;
    });
    let closed = false;
    c.once('close', () => (closed = true));
    const t = setInterval(() => c.publish(TELEMETRY, 'k', { qos: 1 }), 200);
    const t0 = Date.now();
    try {
      await waitFor(() => closed || Date.now() - t0 > 3200, 6000, '3.2 s elapsed or the connection closed');
    } finally {
      clearInterval(t);
    }
    expect(pings).toBe(0);
    expect(closed).toBe(false);
    expect(b.connections()).toBe(1);
  }, 10_000);

  it('stops reading a connection whose window is full, and resumes as it drains', async () => {
    const pending: (() => void)[] = [];
    const b = await start(() => new Promise<void>((resolve) => pending.push(resolve)), { maxInflightPerConnection: 4 });
    const c = await client(b);
    const acked = pubacks(c);
    const n = 400;
    const payload = 'x'.repeat(900);
    for (let i = 0; i < n; i++) c.publish(TELEMETRY, payload, { qos: 1 });
    await waitFor(() => pending.length > 0, 5000, 'the first messages');
    await new Promise((r) => setTimeout(r, 300));
    // Bounded by the window plus what one read held, not by what the device sent.
    expect(pending.length).toBeLessThan(n / 2);
    let released = 0;
    const deadline = Date.now() + 10_000;
    while (acked.length < n && Date.now() < deadline) {
      const batch = pending.splice(0);
      released += batch.length;
      for (const r of batch) r();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(released).toBe(n);
    await waitFor(() => acked.length === n, 5000, 'all PUBACKs');
  }, 20_000);
});
