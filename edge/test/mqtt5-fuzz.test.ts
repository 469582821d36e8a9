// Fuzzing the MQTT 5 session (v5-session.ts) over real sockets: well-formed v5 packets with random
// properties (mqtt-packet generates them), then mutated and cut, and random bytes, after a valid or a
// mutated CONNECT. The guarantee is the decoders': no crash, every connection either answers (a PINGREQ
// sent last gets its PINGRESP), is closed, or waits for the rest of a packet it was promised; and
// afterwards a good device is served as before.
import { connect } from 'node:net';
import fc from 'fast-check';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMqttBroker, type MqttBroker } from '../src/inputs/mqtt-broker/server.ts';
import { createEdgeMetrics } from '../src/metrics.ts';
import type { Device, DeviceRegistry } from '../src/registry/registry.ts';
import { testBrokerOptions } from './helpers.ts';
import { credentialFromPlain } from '../src/registry/credentials.ts';

const RUNS = 200;
const secret = 'dev-1-secret-value';
const device = { id: 'dev-1', family: 'env', district: 'd', tags: {}, secret: credentialFromPlain(secret) } as unknown as Device;
const registry: DeviceRegistry = { get: (id) => (id === device.id ? device : undefined), byMn: () => undefined, byPushKey: () => undefined, byGbAddress: () => undefined, all: () => [device], size: 1 };
const V5 = { protocolVersion: 5 } as const;
const TELEMETRY = `devices/${device.id}/telemetry`;

let broker: MqttBroker;
let taken = 0;
beforeAll(async () => {
  broker = await startMqttBroker(
    testBrokerOptions(
      {
        registry,
        metrics: createEdgeMetrics(),
        onMessage: async (_d, _k, payload) => {
          taken++;
          return payload.length % 3 === 0 ? { refused: 'malformed_json', kind: 'payload' } : undefined;
        },
      },
      {
        maxPacketBytes: 2048,
        maxConnections: 100,
        maxConnectsPerSecond: 100_000,
        connectBurst: 100_000,
        topicAliasMaximum: 4,
        maxInflightPerConnection: 8,
        // Mutated CONNECTs carry wrong passwords: the loopback source must not get blocked for them.
        loginThrottle: { maxFailures: 1_000_000, windowMs: 1000, blockMs: 1000 },
      },
    ),
  );
});
afterAll(async () => {
  await broker?.close();
});

const goodConnect = (clientId: string) =>
  mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId, clean: true, keepalive: 30, username: device.id, password: Buffer.from(secret) } as mqttPacket.IConnectPacket, V5);

const str = fc.string({ maxLength: 12 });
const props = fc.record(
  {
    payloadFormatIndicator: fc.boolean(),
    messageExpiryInterval: fc.nat(),
    topicAlias: fc.integer({ min: 0, max: 8 }),
    contentType: str,
    responseTopic: str,
    correlationData: fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)),
    userProperties: fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), str, { maxKeys: 3 }),
    subscriptionIdentifier: fc.integer({ min: 1, max: 1000 }),
  },
  { requiredKeys: [] },
);
const topic = fc.constantFrom(TELEMETRY, `devices/${device.id}/events`, 'devices/dev-2/telemetry', `devices/${device.id}/x`, '', 'a/+/b');
const publish = fc.record({ topic, payload: fc.uint8Array({ maxLength: 40 }), qos: fc.constantFrom(0, 1, 2), id: fc.integer({ min: 1, max: 20 }), properties: props }).map((p) => {
  try {
    return mqttPacket.generate({ cmd: 'publish', topic: p.topic, payload: Buffer.from(p.payload), qos: p.qos as 0 | 1 | 2, messageId: p.id, retain: false, dup: false, properties: p.properties }, V5);
  } catch {
    return Buffer.from([0x30, 0x00]); // a combination mqtt-packet will not write: an empty PUBLISH instead
  }
});
const other = fc.constantFrom<mqttPacket.Packet>(
  { cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: `devices/${device.id}/cmd`, qos: 1 }], properties: { subscriptionIdentifier: 7 } } as mqttPacket.ISubscribePacket,
  { cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['x'] } as mqttPacket.IUnsubscribePacket,
  { cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM' } } as mqttPacket.IAuthPacket,
  { cmd: 'puback', messageId: 5, reasonCode: 0 } as mqttPacket.IPubackPacket,
  { cmd: 'disconnect', reasonCode: 0x04 } as mqttPacket.IDisconnectPacket,
).map((p) => mqttPacket.generate(p, V5));
/** Flip a few bytes, maybe cut it short. */
const mutate = (b: fc.Arbitrary<Buffer>) =>
  fc.tuple(b, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.option(fc.nat())).map(([buf, flips, cut]) => {
    const out = Buffer.from(buf);
    for (const [at, v] of flips) if (out.length > 0) out[at % out.length] = v;
    return cut === null ? out : out.subarray(0, cut % (out.length + 1));
  });
/** A valid PUBLISH to the device's own telemetry, with valid random properties: the good traffic the garbage follows. */
const goodPublish = fc
  .record({ payload: fc.uint8Array({ maxLength: 40 }), qos: fc.constantFrom(0, 1), alias: fc.option(fc.integer({ min: 1, max: 4 })), users: fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), str, { maxKeys: 3 }) })
  .map((p) =>
    mqttPacket.generate(
      { cmd: 'publish', topic: TELEMETRY, payload: Buffer.from(p.payload), qos: p.qos as 0 | 1, messageId: 1, retain: false, dup: false, properties: { ...(p.alias === null ? {} : { topicAlias: p.alias }), userProperties: p.users, messageExpiryInterval: 60 } },
      V5,
    ),
  );
const packet = fc.oneof({ weight: 4, arbitrary: publish }, { weight: 1, arbitrary: other }, { weight: 3, arbitrary: mutate(publish) }, { weight: 1, arbitrary: mutate(other) }, {
  weight: 1,
  arbitrary: fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b)),
});
const connectBytes = fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: mutate(fc.constant(goodConnect('dev-1/f'))) });

type Outcome = 'answered' | 'closed' | 'waiting';
function exchange(bytes: Buffer, deadlineMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = connect(broker.port, '127.0.0.1');
    let rx = Buffer.alloc(0);
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve(o);
    };
    const t = setTimeout(() => finish('waiting'), deadlineMs);
    s.on('error', () => undefined);
    s.on('close', () => finish('closed'));
    s.on('data', (d: Buffer) => {
      rx = Buffer.concat([rx, d]);
      if (rx.length >= 2 && rx[rx.length - 2] === 0xd0 && rx[rx.length - 1] === 0) finish('answered');
    });
    s.on('connect', () => s.write(bytes));
  });
}

describe('MQTT 5 fuzzing', () => {
  it(`survives ${RUNS} connections of random, mutated and cut v5 packets with properties`, async () => {
    const outcomes: Record<Outcome, number> = { answered: 0, closed: 0, waiting: 0 };
    let n = 0;
    await fc.assert(
      fc.asyncProperty(connectBytes, goodPublish, fc.array(packet, { minLength: 1, maxLength: 6 }), async (conn, first, packets) => {
        const bytes = Buffer.concat([conn ?? goodConnect(`dev-1/f${n++}`), first, ...packets, Buffer.from([0xc0, 0x00])]);
        outcomes[await exchange(bytes, 500)]++;
      }),
      { seed: 2121, numRuns: RUNS },
    );
    // Every kind of ending happened, and most connections ended or answered rather than waiting.
    expect(outcomes.answered).toBeGreaterThan(0);
    expect(outcomes.closed).toBeGreaterThan(0);
    expect(outcomes.waiting).toBeLessThan(RUNS / 4);
    expect(taken).toBeGreaterThan(0);

    // A good device is served as before.
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { username: device.id, password: secret, protocolVersion: 5, reconnectPeriod: 0, clientId: 'dev-1/after' });
    const before = taken;
    await c.publishAsync(TELEMETRY, 'ok', { qos: 1 });
    expect(taken).toBe(before + 1);
    await c.endAsync();
  }, 300_000);
});
