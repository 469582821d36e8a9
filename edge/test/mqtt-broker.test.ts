// The MQTT input's socket handling on its own (no queue, no uplink): the packet size guard sits on the
// socket itself, and the PUBACKs one group commit releases leave in one socket write, never before it.
import { readFileSync } from 'node:fs';
import { connect, Socket } from 'node:net';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { authorizeTopic, deviceTopics } from '../src/inputs/mqtt-broker/auth.ts';
import { startMqttBroker, type MqttBroker, type MqttBrokerOptions } from '../src/inputs/mqtt-broker/server.ts';
import { createEdgeMetrics, type EdgeMetrics } from '../src/metrics.ts';
import type { Device, DeviceRegistry } from '../src/registry/registry.ts';
import { makeTestPki, metricValue, waitFor, testBrokerOptions } from './helpers.ts';
import { credentialFromPlain } from '../src/registry/credentials.ts';

const secret = 'dev-1-secret-value';
const device = { id: 'dev-1', family: 'env', district: 'd', tags: {}, secret: credentialFromPlain(secret) } as unknown as Device;
const registry: DeviceRegistry = { get: (id) => (id === device.id ? device : undefined), byMn: () => undefined, byPushKey: () => undefined, byGbAddress: () => undefined, all: () => [device], size: 1 };

let broker: MqttBroker | undefined;
let metrics: EdgeMetrics;
const clients: mqtt.MqttClient[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of clients.splice(0)) c.end(true);
  await broker?.close();
  broker = undefined;
});

async function start(onMessage: MqttBrokerOptions['onMessage'], over: Partial<MqttBrokerOptions> = {}): Promise<MqttBroker> {
  metrics = createEdgeMetrics();
  broker = await startMqttBroker(testBrokerOptions({ registry, onMessage, metrics }, over));
  return broker;
}

let pki = '';
beforeAll(() => {
  pki = makeTestPki('citysense-mqtt-broker-');
}, 30_000);

/** Resolves when the client's connection closes; rejects after `ms`. */
function closedWithin(c: mqtt.MqttClient, ms = 5000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`connection not closed within ${ms} ms`)), ms);
    c.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

const tooLarge = () => metricValue(metrics.registry, 'citysense_edge_publish_refused_total', { reason: 'packet_too_large' });

describe('packet size guard', () => {
  it('cuts the connection on a fixed header declaring too much, before the body arrives', async () => {
    const b = await start(() => Promise.reject(new Error('must not be reached')));
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.port}`, { username: device.id, password: secret, clientId: device.id, reconnectPeriod: 0 });
    clients.push(c);
    const closed = closedWithin(c);
    // PUBLISH QoS 0 declaring 256 MB (Remaining Length 0xff 0xff 0xff 0x7f), then only a few bytes of it:
    // aedes' parser would wait for the rest; the guard refuses on the header alone.
    (c.stream as Socket).write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x03, 0x61]));
    await closed;
    await waitFor(async () => (await tooLarge()) === 1, 5000, 'packet_too_large counted');
  });

  it('works the same over TLS', async () => {
    const b = await start(() => Promise.reject(new Error('must not be reached')), {
      tls: { host: '127.0.0.1', port: 0, cert: join(pki, 'edge.crt'), key: join(pki, 'edge.key'), requireClientCert: false },
    });
    const ca = readFileSync(join(pki, 'ca.crt'));
    const c = await mqtt.connectAsync(`mqtts://127.0.0.1:${b.tlsPort}`, { username: device.id, password: secret, clientId: device.id, ca, rejectUnauthorized: true, reconnectPeriod: 0 });
    clients.push(c);
    const closed = closedWithin(c);
    c.publish(`devices/${device.id}/telemetry`, 'x'.repeat(4096), { qos: 1 });
    await closed;
    await waitFor(async () => (await tooLarge()) === 1, 5000, 'packet_too_large counted');
  });

  it('lets packets up to the limit through, split across reads', async () => {
    const got: Buffer[] = [];
    const b = await start(async (_d, _k, payload) => {
      got.push(payload);
    });
    const s = connect(b.port, '127.0.0.1');
    s.setNoDelay(true);
    await new Promise<void>((r) => s.once('connect', () => r()));
    const acks: Buffer[] = [];
    s.on('data', (d: Buffer) => acks.push(d));
    const str = (v: string) => Buffer.concat([Buffer.from([0, Buffer.byteLength(v)]), Buffer.from(v)]);
    const connectBody = Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2, 0, 60]), str(`${device.id}/c1`), str(device.id), str(secret)]);
    s.write(Buffer.concat([Buffer.from([0x10, connectBody.length]), connectBody]));
    // A QoS 1 PUBLISH of exactly 1024 bytes: 1 type byte + 2 length bytes + 1021.
    const topic = str(`devices/${device.id}/telemetry`);
    const payload = Buffer.alloc(1021 - topic.length - 2, 0x61);
    const pkt = Buffer.concat([Buffer.from([0x32, 1021 & 0x7f | 0x80, 1021 >> 7]), topic, Buffer.from([0, 7]), payload]);
    expect(pkt.length).toBe(1024);
    s.write(pkt.subarray(0, 2)); // the Remaining Length itself split across reads
    await waitFor(() => acks.length > 0, 5000, 'CONNACK'); // a round trip in between makes a separate read likely
    s.write(pkt.subarray(2));
    await waitFor(() => Buffer.concat(acks).includes(Buffer.from([0x40, 0x02, 0x00, 0x07])), 5000, 'PUBACK');
    expect(got).toHaveLength(1);
    expect(got[0]!.length).toBe(payload.length);
    expect(await tooLarge()).toBe(0);
    s.destroy();
  });
});

describe('PUBACKs', () => {
  it('none before the sink holds the message; all that one commit releases leave in one socket write', async () => {
    const pending: (() => void)[] = [];
    const b = await start(() => new Promise<void>((resolve) => pending.push(resolve)));
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.port}`, { username: device.id, password: secret, clientId: device.id, reconnectPeriod: 0 });
    clients.push(c);
    const acked: number[] = [];
    c.on('packetreceive', (p) => {
      if (p.cmd === 'puback') acked.push(p.messageId!);
    });

    // Count the broker side's socket writes from here on (net.Socket sends through _write or _writev).
    const writes = { n: 0 };
    const local = (c.stream as Socket).localPort;
    const count = (s: Socket) => {
      if (s.localPort === b.port && s.remotePort === local) writes.n++;
    };
    const proto = Socket.prototype as unknown as Record<'_write' | '_writev', (...a: unknown[]) => unknown>;
    for (const m of ['_write', '_writev'] as const) {
      const orig = proto[m];
      vi.spyOn(proto, m).mockImplementation(function (this: Socket, ...a: unknown[]) {
        count(this);
        return orig.apply(this, a);
      });
    }

    const n = 32;
    const published = Promise.all(Array.from({ length: n }, (_, i) => c.publishAsync(`devices/${device.id}/telemetry`, `{"i":${i}}`, { qos: 1 })));
    // Commit rounds: each releases everything pending at once. Normally one round holds all 32 (one read).
    let released = 0;
    let rounds = 0;
    while (released < n) {
      await waitFor(() => pending.length > 0, 5000, 'messages reaching the sink');
      expect(acked.length).toBe(released); // nothing is acknowledged before its commit
      rounds++;
      const batch = pending.splice(0);
      released += batch.length;
      for (const r of batch) r();
      await waitFor(() => acked.length === released, 5000, 'PUBACKs of the commit');
    }
    await published;
    expect(new Set(acked).size).toBe(n);
    expect(rounds).toBeLessThan(n);
    expect(writes.n).toBe(rounds);
  });
});

describe('topic check', () => {
  it('own telemetry and events only; prefixes of other ids are foreign', () => {
    const t = deviceTopics('dev-1');
    expect(authorizeTopic('dev-1', 'devices/dev-1/telemetry', t)).toEqual({ ok: true, kind: 'telemetry' });
    expect(authorizeTopic('dev-1', 'devices/dev-1/events')).toEqual({ ok: true, kind: 'events' });
    expect(authorizeTopic('dev-1', 'devices/dev-1/telemetry/x', t)).toEqual({ ok: false, reason: 'unknown_topic' });
    expect(authorizeTopic('dev-1', 'devices/dev-1/', t)).toEqual({ ok: false, reason: 'unknown_topic' });
    expect(authorizeTopic('dev-1', 'devices/dev-10/telemetry', t)).toEqual({ ok: false, reason: 'foreign_topic' });
    expect(authorizeTopic('dev-1', 'devices/dev-1', t)).toEqual({ ok: false, reason: 'foreign_topic' });
  });
});

describe('a sink that refuses', () => {
  it('gets no PUBACK even when it rejects without an Error', async () => {
    let calls = 0;
    const b = await start(() => {
      calls++;
      return Promise.reject(undefined);
    });
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.port}`, { username: device.id, password: secret, clientId: device.id, reconnectPeriod: 0 });
    clients.push(c);
    let acked = 0;
    c.on('packetreceive', (p) => {
      if (p.cmd === 'puback') acked++;
    });
    const closed = closedWithin(c);
    c.publish(`devices/${device.id}/telemetry`, '{}', { qos: 1 });
    await closed;
    expect(calls).toBe(1);
    expect(acked).toBe(0);
  });
});
