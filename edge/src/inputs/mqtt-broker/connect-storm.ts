// Connect storm at the edge (issue 11, item 6): N devices whose secrets the broker holds as salted
// scrypt verifiers (the cloud slice's form) CONNECT at once over loopback; how many CONNECT verifications
// per second the broker completes — cold (first login since start: one scrypt each) and warm (the
// same devices again: remembered, no scrypt). Bounded: N connections (default 400), 60 s at most.
//   npx tsx edge/src/inputs/mqtt-broker/connect-storm.ts [--devices 400]
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import pino from 'pino';
import { makeVerifier, VERIFIER_COST } from '@citysense/proto';
import { CredentialChecker, credentialFromVerifier } from '../../registry/credentials.ts';
import type { Device, DeviceRegistry } from '../../registry/registry.ts';
import { createEdgeMetrics } from '../../metrics.ts';
import { startMqttBroker } from './server.ts';

const { values: args } = parseArgs({ options: { devices: { type: 'string', default: '400' } } });
const n = Math.min(5_000, Number(args.devices));
const m = new Map<string, Device>();
for (let i = 0; i < n; i++) {
  const id = `storm-${i}`;
  m.set(id, { id, family: 'environment', district: 'bench', tags: {}, secret: credentialFromVerifier(await makeVerifier(`${id}-secret`)) } as unknown as Device);
}
const registry = { get: (id: string) => m.get(id), byMn: () => undefined, byPushKey: () => undefined, byGbAddress: () => undefined, all: () => m.values(), size: m.size } as unknown as DeviceRegistry;
const broker = await startMqttBroker({
  host: '127.0.0.1',
  port: 0,
  maxConnections: n + 10,
  maxUnauthenticated: n + 10,
  maxUnauthenticatedPerSource: n + 10,
  maxConnectionsPerSource: n + 10,
  maxPacketBytes: 65_536,
  connectTimeoutMs: 60_000,
  maxConnectsPerSecond: 100_000,
  connectBurst: 100_000,
  registry,
  credentials: new CredentialChecker(),
  onMessage: async () => undefined,
  metrics: createEdgeMetrics(),
  log: pino({ level: 'silent' }),
  warn: () => undefined,
});

async function storm(): Promise<number> {
  const t0 = performance.now();
  const clients = await Promise.all(
    [...m.keys()].map((id) => mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { username: id, password: `${id}-secret`, clientId: id, reconnectPeriod: 0, connectTimeout: 60_000 })),
  );
  const s = (performance.now() - t0) / 1000;
  await Promise.all(clients.map((c) => c.endAsync(true)));
  return n / s;
}
const cold = await storm();
const warm = await storm();
console.log(JSON.stringify({ devices: n, scrypt: VERIFIER_COST, coldConnectsPerS: Math.round(cold), warmConnectsPerS: Math.round(warm) }));
await broker.close();
process.exit(0);
