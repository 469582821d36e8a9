// The listeners' guard against a hostile network (issue 11, items 4 and 5), against the real edge over
// TCP: silent sockets cannot hold the slots, per-source caps, the wrong-password throttle, an unknown MN
// answered as a wrong PW, and client ids bound to the device that logged in.
import { connect, type Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeFrame } from '../src/decoders/hj212/index.ts';
import { DEVICES, metricValue, startFakeCloud, startTestEdge, waitFor, type FakeCloud, type TestEdge } from './helpers.ts';

let cloud: FakeCloud;
let t: TestEdge | undefined;
const sockets: Socket[] = [];
const clients: MqttClient[] = [];

beforeEach(async () => {
  cloud = await startFakeCloud();
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
  await t?.stop();
  t = undefined;
  await cloud.close();
});

/** A raw TCP connection from a given loopback source address (127.0.0.0/8 all reach 127.0.0.1). */
type Raw = Socket & { rx: Buffer[] };
async function rawSocket(port: number, from = '127.0.0.1'): Promise<Raw> {
  const s = connect({ port, host: '127.0.0.1', localAddress: from }) as Raw;
  s.rx = [];
  s.on('data', (d: Buffer) => s.rx.push(d));
  s.on('error', () => undefined);
  sockets.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return s;
}

function mqttConnect(port: number, username: string, password: string, clientId: string): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username, password, clientId, reconnectPeriod: 0, connectTimeout: 5_000 }).then((c) => {
    clients.push(c);
    return c;
  });
}

const refusalCode = (p: Promise<unknown>) => p.then(() => 0, (e: { code?: number }) => e.code ?? -1);

/** 'closed' when the edge closed the connection without any CONNACK (a guard refusal). */
function attempt(port: number, username: string, password: string, clientId: string): Promise<number | 'closed'> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { username, password, clientId, reconnectPeriod: 0, connectTimeout: 5_000 });
  clients.push(c);
  return new Promise((resolve) => {
    c.once('connect', () => resolve(0));
    c.once('error', (e) => resolve((e as { code?: number }).code ?? -1));
    c.once('close', () => resolve('closed'));
  });
}

const guardCount = (te: TestEdge, listener: string, reason: string) => metricValue(te.edge.metrics, 'citysense_edge_listener_refused_total', { listener, reason });

const MN = '010000A8900016F000169DC0';
const STATION = { id: 'hj-1', family: 'environment', district: 'jinshui', profile: 'hj212-air-station', hj212: { mn: MN, password: 'right-pw-1' } };
const frame = (mn: string, pw: string, qn = '20240115120000001') =>
  encodeFrame(`QN=${qn};ST=22;CN=2011;PW=${pw};MN=${mn};Flag=5;CP=&&DataTime=20240115120000;a34004-Rtd=41.5,a34004-Flag=N&&`);
// The frames carry a 2024 DataTime: accept it, since a 9014 is only sent for readings actually stored.
const withStation = (over: Record<string, unknown> = {}) =>
  ({ registry: { devices: [...DEVICES.map((d) => ({ ...d })), STATION] }, normalise: { maxPastAgeMs: 20 * 365 * 24 * 3600_000 }, ...over }) as Parameters<typeof startTestEdge>[1];

/** Sends a frame and waits for its answer (a whole frame, ending in CRLF). */
async function ask(s: Raw, text: string): Promise<string> {
  const before = Buffer.concat(s.rx).length;
  s.write(text);
  await waitFor(() => Buffer.concat(s.rx).subarray(before).toString().endsWith('\r\n') || s.closed, 5_000, 'an HJ 212 answer');
  return Buffer.concat(s.rx).subarray(before).toString();
}

describe('MQTT connection slots', () => {
  it('silent sockets in every slot are closed to make room, then by the pre-auth timeout; a real device connects', async () => {
    t = await startTestEdge(cloud.url, { mqtt: { host: '127.0.0.1', port: 0, maxConnections: 4, maxUnauthenticated: 4, connectTimeoutMs: 60_000 } });
    const port = t.edge.mqttPort;
    const silent: Raw[] = [];
    for (let i = 0; i < 4; i++) silent.push(await rawSocket(port, '127.0.0.2'));
    // Every slot is held by a socket that never sent CONNECT; a real device still gets in.
    const c = await mqttConnect(port, 'env-1', 'env-1-secret-value', 'env-1');
    await c.publishAsync('devices/env-1/telemetry', JSON.stringify({ metrics: { pm25: 1 } }), { qos: 1 });
    await waitFor(() => silent[0]!.closed, 5_000, 'the oldest silent socket closed');
    expect(await guardCount(t, 'mqtt', 'preauth_evicted')).toBeGreaterThanOrEqual(1);
  });

  it('a socket that sends no CONNECT is closed after mqtt.connectTimeoutMs and counted', async () => {
    t = await startTestEdge(cloud.url, { mqtt: { host: '127.0.0.1', port: 0, connectTimeoutMs: 300 } });
    const s = await rawSocket(t.edge.mqttPort, '127.0.0.2');
    // Half a CONNECT: a fixed header that never gets its body.
    s.write(Buffer.from([0x10, 40, 0, 4]));
    await waitFor(() => s.closed, 5_000, 'the silent socket closed by the guard');
    expect(await guardCount(t, 'mqtt', 'preauth_timeout')).toBe(1);
  });

  it('caps unauthenticated connections per source address; other sources still connect', async () => {
    t = await startTestEdge(cloud.url, { mqtt: { host: '127.0.0.1', port: 0, maxUnauthenticatedPerSource: 2, connectTimeoutMs: 60_000 } });
    const port = t.edge.mqttPort;
    const a = await rawSocket(port, '127.0.0.2');
    const b = await rawSocket(port, '127.0.0.2');
    const third = await rawSocket(port, '127.0.0.2');
    await waitFor(() => third.closed, 5_000, 'the third socket from 127.0.0.2 closed');
    expect(a.closed || b.closed).toBe(false);
    expect(await guardCount(t, 'mqtt', 'max_unauthenticated_per_source')).toBe(1);
    await mqttConnect(port, 'env-1', 'env-1-secret-value', 'env-1');
  });

  it('caps all connections per source address', async () => {
    t = await startTestEdge(cloud.url, { mqtt: { host: '127.0.0.1', port: 0, maxConnectionsPerSource: 2 } });
    const port = t.edge.mqttPort;
    await mqttConnect(port, 'env-1', 'env-1-secret-value', 'env-1/a');
    await mqttConnect(port, 'env-1', 'env-1-secret-value', 'env-1/b');
    expect(await attempt(port, 'env-1', 'env-1-secret-value', 'env-1/c')).toBe('closed');
    expect(await guardCount(t, 'mqtt', 'max_per_source')).toBe(1);
  });
});

describe('MQTT wrong-password throttle', () => {
  it('blocks a source after repeated wrong passwords: even the right one is refused until the block ends', async () => {
    t = await startTestEdge(cloud.url, { mqtt: { host: '127.0.0.1', port: 0, loginThrottle: { maxFailures: 3, windowMs: 60_000, blockMs: 1_500 } } });
    const port = t.edge.mqttPort;
    for (let i = 0; i < 4; i++) expect(await refusalCode(mqttConnect(port, 'env-1', `guess-${i}-xxxx`, 'env-1'))).toBe(4);
    // Blocked: "not authorized", without the password being looked at.
    expect(await refusalCode(mqttConnect(port, 'env-1', 'env-1-secret-value', 'env-1'))).toBe(5);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_connect_refused_total', { reason: 'throttled' })).toBe(1);
    expect(await guardCount(t, 'mqtt', 'throttled')).toBe(1);
    // After the block the right password works again.
    let ok: MqttClient | undefined;
    await waitFor(async () => (ok = await mqttConnect(port, 'env-1', 'env-1-secret-value', 'env-1').catch(() => undefined)) !== undefined, 10_000, 'the device back in after the block');
    expect(ok!.connected).toBe(true);
  });
});

describe('MQTT client ids', () => {
  it('refuses another device\'s client id with "identifier rejected"; the victim stays connected; the device itself may take over', async () => {
    t = await startTestEdge(cloud.url);
    const port = t.edge.mqttPort;
    const victim = await mqttConnect(port, 'env-1', 'env-1-secret-value', 'env-1');
    let victimClosed = false;
    victim.on('close', () => (victimClosed = true));
    // env-2 logs in with its own right secret but env-1's client id.
    expect(await refusalCode(mqttConnect(port, 'env-2', 'env-2-secret-value', 'env-1'))).toBe(2);
    expect(await refusalCode(mqttConnect(port, 'env-2', 'env-2-secret-value', 'env-1/x'))).toBe(2);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_connect_refused_total', { reason: 'client_id_rejected' })).toBe(2);
    await victim.publishAsync('devices/env-1/telemetry', JSON.stringify({ metrics: { pm25: 2 } }), { qos: 1 });
    expect(victimClosed).toBe(false);
    expect(victim.connected).toBe(true);
    // Its own client ids: env-2 and env-2/<anything>.
    await mqttConnect(port, 'env-2', 'env-2-secret-value', 'env-2/logger');
    // The device itself takes its session over: the old connection is closed.
    const again = await mqttConnect(port, 'env-1', 'env-1-secret-value', 'env-1');
    await waitFor(() => victimClosed, 5_000, 'the old env-1 connection closed by the takeover');
    await again.publishAsync('devices/env-1/telemetry', JSON.stringify({ metrics: { pm25: 3 } }), { qos: 1 });
  });
});

describe('HJ 212 connection slots and throttle', () => {
  it('a connection without a valid frame is closed after hj212.preAuthTimeoutMs; a station with frames stays', async () => {
    t = await startTestEdge(cloud.url, withStation({ hj212: { host: '127.0.0.1', port: 0, preAuthTimeoutMs: 400 } }));
    const port = t.edge.hj212Port!;
    const silent = await rawSocket(port, '127.0.0.2');
    const partial = await rawSocket(port, '127.0.0.2');
    partial.write('##0200QN=2024'); // a frame that is never finished
    const station = await rawSocket(port);
    expect(await ask(station, frame(MN, 'right-pw-1'))).toContain('CN=9014');
    await waitFor(() => silent.closed && partial.closed, 5_000, 'the silent and the partial connection closed');
    expect(await guardCount(t, 'hj212', 'preauth_timeout')).toBe(2);
    expect(station.closed).toBe(false);
    expect(await ask(station, frame(MN, 'right-pw-1', '20240115120000002'))).toContain('CN=9014');
  });

  it('silent connections in every slot make room for a station', async () => {
    t = await startTestEdge(cloud.url, withStation({ hj212: { host: '127.0.0.1', port: 0, maxConnections: 3, maxUnauthenticated: 3 } }));
    const port = t.edge.hj212Port!;
    for (let i = 0; i < 3; i++) await rawSocket(port, '127.0.0.2');
    const station = await rawSocket(port);
    expect(await ask(station, frame(MN, 'right-pw-1'))).toContain('CN=9014');
    expect(await guardCount(t, 'hj212', 'preauth_evicted')).toBeGreaterThanOrEqual(1);
  });

  it('answers an unknown MN byte for byte as a wrong PW', async () => {
    t = await startTestEdge(cloud.url, withStation());
    const wrongPw = await ask(await rawSocket(t.edge.hj212Port!), frame(MN, 'guess-1'));
    await t.stop();
    // The same frame to an edge where that MN is not registered at all.
    t = await startTestEdge(cloud.url);
    const unknownMn = await ask(await rawSocket(t.edge.hj212Port!), frame(MN, 'guess-1'));
    expect(wrongPw).toContain('QnRtn=3');
    expect(Buffer.from(unknownMn).equals(Buffer.from(wrongPw))).toBe(true);
  });

  it('blocks a source after repeated wrong PWs or unknown MNs: its connection is closed, the right PW refused until the block ends', async () => {
    t = await startTestEdge(cloud.url, withStation({ hj212: { host: '127.0.0.1', port: 0, loginThrottle: { maxFailures: 3, windowMs: 60_000, blockMs: 1_500 } } }));
    const port = t.edge.hj212Port!;
    const s = await rawSocket(port);
    for (let i = 0; i < 2; i++) expect(await ask(s, frame(MN, `guess-${i}`, `2024011512000000${i}`))).toContain('QnRtn=3');
    expect(await ask(s, frame('FFFF0000', 'guess-x', '20240115120000005'))).toContain('QnRtn=3');
    await ask(s, frame(MN, 'guess-3', '20240115120000006'));
    await waitFor(() => s.closed, 5_000, 'the guessing connection closed');
    const again = await rawSocket(port);
    expect(await ask(again, frame(MN, 'right-pw-1', '20240115120000007'))).toBe('');
    expect(again.closed).toBe(true);
    expect(await guardCount(t, 'hj212', 'throttled')).toBe(1);
    await waitFor(
      async () => {
        const s2 = await rawSocket(port);
        return (await ask(s2, frame(MN, 'right-pw-1', '20240115120000008'))).includes('CN=9014');
      },
      10_000,
      'the station back in after the block',
    );
  });
});
