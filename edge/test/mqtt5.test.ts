// MQTT 5 at the edge (v5-session.ts) with real clients: mqtt.js in v5 mode and Debian's mosquitto_pub
// -V mqttv5. CONNACK properties, QoS 0/1, topic aliases, Receive Maximum, every refusal's reason code,
// enhanced authentication refused, and the MQTT 3.1.1 refusal policy beside it.
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { startMqttBroker, type MqttBroker, type MqttBrokerOptions } from '../src/inputs/mqtt-broker/server.ts';
import { connectLevel } from '../src/inputs/mqtt-broker/server.ts';
import { createEdgeMetrics, type EdgeMetrics } from '../src/metrics.ts';
import type { Device, DeviceRegistry } from '../src/registry/registry.ts';
import { metricValue, waitFor, testBrokerOptions } from './helpers.ts';
import { credentialFromPlain } from '../src/registry/credentials.ts';

const run = promisify(execFile);
const secret = 'dev-1-secret-value';
const device = {
  id: 'dev-1',
  family: 'env',
  district: 'd',
  tags: {},
  secret: credentialFromPlain(secret),
  profile: { profile: { userProperties: { tags: ['floor'], maxValueLength: 128 } } },
} as unknown as Device;
const registry: DeviceRegistry = { get: (id) => (id === device.id ? device : undefined), byMn: () => undefined, byPushKey: () => undefined, byGbAddress: () => undefined, all: () => [device], size: 1 };
const TELEMETRY = `devices/${device.id}/telemetry`;

let broker: MqttBroker | undefined;
let metrics: EdgeMetrics;
const clients: mqtt.MqttClient[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
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

async function v5(b: MqttBroker, opts: mqtt.IClientOptions = {}): Promise<{ c: mqtt.MqttClient; connack: mqtt.IConnackPacket }> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${b.port}`, { username: device.id, password: secret, protocolVersion: 5, reconnectPeriod: 0, clientId: `${device.id}/t`, ...opts });
  clients.push(c);
  const connack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
    c.once('connect', resolve);
    c.once('error', reject);
  });
  return { c, connack };
}

/** PUBACKs as [messageId, reasonCode] (reason 0 when omitted). */
function pubacks(c: mqtt.MqttClient): [number, number][] {
  const acked: [number, number][] = [];
  c.on('packetreceive', (p) => {
    if (p.cmd === 'puback') acked.push([p.messageId!, p.reasonCode ?? 0]);
  });
  return acked;
}

function disconnected(c: mqtt.MqttClient, ms = 5000): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no DISCONNECT within ${ms} ms`)), ms);
    c.once('disconnect', (p) => {
      clearTimeout(t);
      resolve(p.reasonCode);
    });
  });
}

const refused = (reason: string) => metricValue(metrics.registry, 'citysense_edge_publish_refused_total', { reason });

describe('MQTT 5 connect', () => {
  it('CONNACK advertises the limits; QoS 0 and 1 reach the pipeline, PUBACK after it holds them', async () => {
    const got: string[] = [];
    const pending: (() => void)[] = [];
    const b = await start((_d, kind, payload) => {
      got.push(`${kind}:${payload.toString()}`);
      return new Promise<void>((r) => pending.push(r));
    }, { maxInflightPerConnection: 8, topicAliasMaximum: 4, serverKeepAliveS: 30 });
    const { c, connack } = await v5(b, { properties: { sessionExpiryInterval: 600 } });
    expect(connack.reasonCode).toBe(0);
    expect(connack.sessionPresent).toBe(false);
    expect(connack.properties).toMatchObject({
      receiveMaximum: 8,
      maximumPacketSize: 4096,
      topicAliasMaximum: 4,
      maximumQoS: 1,
      serverKeepAlive: 30,
      sessionExpiryInterval: 0,
    });
    expect(b.connections()).toBe(1);
    const acked = pubacks(c);
    c.publish(TELEMETRY, 'q0', { qos: 0 });
    const p1 = c.publishAsync(TELEMETRY, 'q1', { qos: 1 });
    const p2 = c.publishAsync(`devices/${device.id}/events`, 'e1', { qos: 1 });
    await waitFor(() => pending.length === 3, 5000, 'three messages at the sink');
    expect(got).toEqual(['telemetry:q0', 'telemetry:q1', 'events:e1']);
    expect(acked).toEqual([]);
    for (const r of pending.splice(0)) r();
    await Promise.all([p1, p2]);
    expect(acked.map(([, rc]) => rc)).toEqual([0, 0]);
  });

  it('assigns a client id when the device sends none', async () => {
    const b = await start(async () => undefined);
    const { connack } = await v5(b, { clientId: '' });
    expect(connack.properties?.assignedClientIdentifier).toMatch(/^dev-1\//);
  });

  it('wrong password: CONNACK 0x86; enhanced authentication: CONNACK 0x8C', async () => {
    const b = await start(async () => undefined);
    await expect(v5(b, { password: 'wrong' })).rejects.toMatchObject({ code: 0x86 });
    await expect(v5(b, { properties: { authenticationMethod: 'SCRAM-SHA-256' } })).rejects.toMatchObject({ code: 0x8c });
    expect(await metricValue(metrics.registry, 'citysense_edge_connect_refused_total', { reason: 'bad_password' })).toBe(1);
    expect(await metricValue(metrics.registry, 'citysense_edge_connect_refused_total', { reason: 'bad_auth_method' })).toBe(1);
  });

  it('a second connection with the same client id takes over (DISCONNECT 0x8E)', async () => {
    const b = await start(async () => undefined);
    const { c: first } = await v5(b);
    const gone = disconnected(first);
    await v5(b);
    expect(await gone).toBe(0x8e);
  });
});

describe('MQTT 5 topic aliases', () => {
  it('an alias set with a topic is used by later PUBLISHes with an empty topic', async () => {
    const got: string[] = [];
    const b = await start(async (_d, kind, payload) => {
      got.push(`${kind}:${payload.toString()}`);
    });
    const { c } = await v5(b);
    await c.publishAsync(TELEMETRY, 'a', { qos: 1, properties: { topicAlias: 1 } });
    // mqtt.js sends an empty topic when the alias is known to it and the topic is ''.
    await c.publishAsync('', 'b', { qos: 1, properties: { topicAlias: 1 } });
    await c.publishAsync(`devices/${device.id}/events`, 'c', { qos: 1, properties: { topicAlias: 2 } });
    await c.publishAsync('', 'd', { qos: 1, properties: { topicAlias: 2 } });
    expect(got).toEqual(['telemetry:a', 'telemetry:b', 'events:c', 'events:d']);
  });

  it('an alias above the maximum, or never set: DISCONNECT 0x94', async () => {
    const b = await start(async () => undefined, { topicAliasMaximum: 2 });
    // mqtt.js checks aliases itself: the bad PUBLISHes are written raw on its socket.
    const raw = (topic: string, topicAlias: number) =>
      mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 1, messageId: 7, retain: false, dup: false, properties: { topicAlias } }, { protocolVersion: 5 });
    const { c } = await v5(b);
    const gone = disconnected(c);
    (c.stream as Socket).write(raw(TELEMETRY, 3));
    expect(await gone).toBe(0x94);
    const { c: c2 } = await v5(b);
    const gone2 = disconnected(c2);
    (c2.stream as Socket).write(raw('', 1));
    expect(await gone2).toBe(0x94);
  });
});

describe('MQTT 5 Receive Maximum', () => {
  it('a device that keeps to it gets everything acknowledged; one more in flight: DISCONNECT 0x93', async () => {
    const pending: (() => void)[] = [];
    const b = await start(() => new Promise<void>((r) => pending.push(r)), { maxInflightPerConnection: 4 });
    const { c } = await v5(b);
    const acked = pubacks(c);
    // Four in flight, released, four more: within the window every time.
    for (let round = 0; round < 2; round++) {
      const ps = Array.from({ length: 4 }, (_, i) => c.publishAsync(TELEMETRY, `r${round}-${i}`, { qos: 1 }));
      await waitFor(() => pending.length === 4, 5000, 'a window of messages');
      for (const r of pending.splice(0)) r();
      await Promise.all(ps);
    }
    expect(acked).toHaveLength(8);
    // Five while none is acknowledged: the fifth exceeds Receive Maximum.
    const gone = disconnected(c);
    for (let i = 0; i < 5; i++) c.publish(TELEMETRY, `x${i}`, { qos: 1 });
    expect(await gone).toBe(0x93);
  });
});

describe('MQTT 5 refusals: a PUBACK with the reason, the connection stays', () => {
  it('0x87 foreign topic, 0x90 unknown topic, 0x99 undecodable payload, 0x83 nothing acceptable, 0x97 queue refused', async () => {
    const b = await start(async (_d, _k, payload) => {
      const s = payload.toString();
      if (s === 'garbage') return { refused: 'malformed_json', kind: 'payload' as const };
      if (s === 'skewed') return { refused: 'clock_skew_future', kind: 'content' as const };
      if (s === 'disk-full') throw Object.assign(new Error('QUEUE_WRITE_FAILED: disk full'), { name: 'QueueError', code: 'QUEUE_WRITE_FAILED' });
      return undefined;
    });
    const { c } = await v5(b);
    const reasons: (string | undefined)[] = [];
    c.on('packetreceive', (p) => {
      if (p.cmd === 'puback') reasons.push(p.properties?.reasonString);
    });
    const acked = pubacks(c);
    const send = (topic: string, payload: string) => c.publishAsync(topic, payload, { qos: 1 }).catch((err: { code?: number }) => err.code);
    const codes = [
      await send('devices/dev-2/telemetry', 'spoof'),
      await send(`devices/${device.id}/other`, 'x'),
      await send(TELEMETRY, 'garbage'),
      await send(TELEMETRY, 'skewed'),
      await send(TELEMETRY, 'disk-full'),
      await send(TELEMETRY, 'good'),
    ];
    expect(acked.map(([, rc]) => rc)).toEqual([0x87, 0x90, 0x99, 0x83, 0x97, 0]);
    expect(codes.slice(0, 5)).toEqual([0x87, 0x90, 0x99, 0x83, 0x97]);
    expect(reasons.slice(0, 5)).toEqual(['foreign_topic', 'unknown_topic', 'malformed_json', 'clock_skew_future', 'queue_refused']);
    expect(await refused('foreign_topic')).toBe(1);
    expect(await refused('unknown_topic')).toBe(1);
    expect(await refused('queue_refused')).toBe(1);
    expect(c.connected).toBe(true);
  });

  it('a device asking for no problem information gets the codes without reason strings', async () => {
    const b = await start(async () => ({ refused: 'malformed_json', kind: 'payload' as const }));
    const { c } = await v5(b, { properties: { requestProblemInformation: false } });
    const raw: Buffer[] = [];
    (c.stream as Socket).on('data', (d: Buffer) => raw.push(d));
    await c.publishAsync(TELEMETRY, 'garbage', { qos: 1 }).catch(() => undefined);
    await waitFor(() => Buffer.concat(raw).length >= 5, 5000, 'PUBACK');
    const ack = Buffer.concat(raw);
    expect(ack.length).toBe(5);
    expect([ack[0], ack[1], ack[4]]).toEqual([0x40, 3, 0x99]);
  });

  it('QoS 2 (Maximum QoS is 1): DISCONNECT 0x9B; a packet over the limit: DISCONNECT 0x95', async () => {
    const b = await start(async () => undefined);
    const { c } = await v5(b);
    const gone = disconnected(c);
    c.publish(TELEMETRY, 'q2', { qos: 2 });
    expect(await gone).toBe(0x9b);
    const { c: c2 } = await v5(b);
    const gone2 = disconnected(c2);
    c2.publish(TELEMETRY, 'x'.repeat(5000), { qos: 1 });
    expect(await gone2).toBe(0x95);
    expect(await refused('packet_too_large')).toBe(1);
  });
});

describe('MQTT 5 user properties and Will', () => {
  it('user properties reach onMessage; a Will on the own topic is taken when the connection drops', async () => {
    const got: { payload: string; meta: unknown }[] = [];
    const b = await start(async (_d, _k, payload, _t, meta) => {
      got.push({ payload: payload.toString(), meta });
    });
    const { c } = await v5(b, { will: { topic: `devices/${device.id}/events`, payload: Buffer.from('offline'), qos: 1, retain: false } });
    await c.publishAsync(TELEMETRY, 'p', { qos: 1, properties: { userProperties: { floor: '3', other: 'x' } } });
    expect(got[0]).toEqual({ payload: 'p', meta: { userProperties: [['floor', '3'], ['other', 'x']] } });
    (c.stream as Socket).destroy();
    await waitFor(() => got.length === 2, 5000, 'the Will');
    expect(got[1]!.payload).toBe('offline');
  });
});

describe('mosquitto_pub -V mqttv5', () => {
  it('publishes at QoS 1 and QoS 0; a wrong password is refused', async () => {
    const got: string[] = [];
    const b = await start(async (_d, _k, payload) => {
      got.push(payload.toString());
    });
    const pub = (qos: string, msg: string, password = secret) =>
      run('mosquitto_pub', ['-V', 'mqttv5', '-h', '127.0.0.1', '-p', String(b.port), '-i', `${device.id}/m`, '-u', device.id, '-P', password, '-q', qos, '-t', TELEMETRY, '-m', msg, '-D', 'publish', 'user-property', 'floor', '2'], { timeout: 10_000 });
    await pub('1', '{"metrics":{"pm25":1}}');
    await pub('0', '{"metrics":{"pm25":2}}');
    await waitFor(() => got.length === 2, 5000, 'both messages');
    expect(got).toEqual(['{"metrics":{"pm25":1}}', '{"metrics":{"pm25":2}}']);
    await expect(pub('1', 'x', 'wrong')).rejects.toThrow();
    expect(await metricValue(metrics.registry, 'citysense_edge_connect_refused_total', { reason: 'bad_password' })).toBe(1);
  });
});

describe('MQTT 3.1.1 refusal policy (mqtt.v3RefusalPolicy)', () => {
  const refusing: MqttBrokerOptions['onMessage'] = async (_d, _k, payload) => (payload.toString() === 'bad' ? { refused: 'malformed_json', kind: 'payload' } : undefined);

  it('puback (default): the refused message and a foreign topic are acknowledged, the connection stays', async () => {
    const b = await start(refusing);
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.port}`, { username: device.id, password: secret, clientId: device.id, reconnectPeriod: 0 });
    clients.push(c);
    await c.publishAsync(TELEMETRY, 'bad', { qos: 1 });
    await c.publishAsync('devices/dev-2/telemetry', 'spoof', { qos: 1 });
    await c.publishAsync(TELEMETRY, 'good', { qos: 1 });
    expect(c.connected).toBe(true);
  });

  for (const [what, topic] of [['a refused payload', TELEMETRY], ['a foreign topic', 'devices/dev-2/telemetry']] as const) {
    it(`disconnect: ${what} gets no PUBACK and closes the connection`, async () => {
      const b = await start(refusing, { v3RefusalPolicy: 'disconnect' });
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.port}`, { username: device.id, password: secret, clientId: device.id, reconnectPeriod: 0 });
      clients.push(c);
      let acked = 0;
      c.on('packetreceive', (p) => {
        if (p.cmd === 'puback') acked++;
      });
      const closed = new Promise<void>((r) => c.once('close', () => r()));
      c.publish(topic, 'bad', { qos: 1 });
      await closed;
      expect(acked).toBe(0);
    });
  }
});

describe('protocol routing', () => {
  it('reads the protocol level of a CONNECT arriving in pieces', () => {
    const v5c = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'x', clean: true, keepalive: 0 } as mqttPacket.IConnectPacket, { protocolVersion: 5 });
    for (let n = 0; n < 9; n++) expect(connectLevel(v5c.subarray(0, n))).toBe(-1);
    expect(connectLevel(v5c)).toBe(5);
    expect(connectLevel(Buffer.from([0xc0, 0]))).toBe(0);
  });

  it('a v5 CONNECT sent byte by byte is served', async () => {
    const b = await start(async () => undefined);
    const s = connect(b.port, '127.0.0.1');
    sockets.push(s);
    s.setNoDelay(true);
    await new Promise<void>((r) => s.once('connect', () => r()));
    const rx: Buffer[] = [];
    s.on('data', (d: Buffer) => rx.push(d));
    const pkt = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'dev-1/raw', clean: true, keepalive: 0, username: device.id, password: Buffer.from(secret) } as mqttPacket.IConnectPacket, { protocolVersion: 5 });
    for (const byte of pkt) {
      s.write(Buffer.from([byte]));
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => Buffer.concat(rx).length >= 3, 5000, 'CONNACK');
    const all = Buffer.concat(rx);
    expect(all[0]).toBe(0x20);
    expect(all[3]).toBe(0); // reason code Success
  });
});
