// Micro-benchmark of the MQTT input's CPU per QoS 1 PUBLISH: the real broker (startMqttBroker) with an
// onMessage that settles every pending message together once per setImmediate (a stand-in for the
// queue's group commit), driven from a child process by the lean load generator (raw TCP, windowed
// QoS 1). Reports the broker process' CPU-µs per message over a measured slice after a warm-up.
//
//   flock /tmp/citysense-heavy.lock npx tsx edge/src/inputs/mqtt-broker/bench.ts [--conns 50] [--window 32] [--messages 200000] [--rate 0] [--mqtt-version 4|5]
//
// --mqtt-version 5 measures the MQTT 5 path (v5-session.ts) with the same load in MQTT 5 packets.
//
// Loopback only; every phase is bounded by a message count and a deadline.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { LoadGenerator } from '../../../../device-sim/src/load/generator.ts';
import type { Device, DeviceRegistry } from '../../registry/registry.ts';
import { createEdgeMetrics } from '../../metrics.ts';
import { startMqttBroker } from './server.ts';
import { credentialFromPlain } from '../../registry/credentials.ts';

const { values: args } = parseArgs({
  options: {
    conns: { type: 'string', default: '50' },
    window: { type: 'string', default: '32' },
    messages: { type: 'string', default: '200000' },
    warmup: { type: 'string', default: '50000' },
    rate: { type: 'string', default: '0' },
    'max-seconds': { type: 'string', default: '120' },
    driver: { type: 'string' },
    'mqtt-version': { type: 'string', default: '4' },
  },
});
const conns = Number(args.conns);
const window = Number(args.window);
const measured = Number(args.messages);
const warmup = Number(args.warmup);
const rate = Number(args.rate);
const maxMs = Number(args['max-seconds']) * 1000;
const mqttVersion = args['mqtt-version'] === '5' ? 5 : 4;

// All ids the same length: the generator's packet template offsets depend on it.
const devices = Array.from({ length: conns }, (_, i) => ({ id: `bench-${String(i).padStart(5, '0')}`, secret: `secret-${i}` }));

if (args.driver !== undefined) {
  // Child: the load generator, as fast as the windows allow (or paced with --rate).
  const g = new LoadGenerator({
    host: '127.0.0.1',
    port: Number(args.driver),
    devices,
    window,
    total: warmup + measured + conns * window,
    maxDurationMs: maxMs,
    drainTimeoutMs: 10_000,
    ratePerS: rate,
    tsBase: Date.now(),
    connectRatePerS: 5000,
    maxReconnects: 0,
    mqttVersion,
  });
  const s = await g.run();
  process.send?.({ sent: s.t, acked: g.acked, refused: g.refused });
  process.exit(0);
} else {
  const registry: DeviceRegistry = (() => {
    const m = new Map<string, Device>();
    for (const d of devices) {
      m.set(d.id, { id: d.id, family: 'env', district: 'bench', tags: {}, secret: credentialFromPlain(d.secret) } as unknown as Device);
    }
    return { get: (id) => m.get(id), byMn: () => undefined, byPushKey: () => undefined, byGbAddress: () => undefined, all: () => m.values(), size: m.size };
  })();

  let pending: (() => void)[] = [];
  let scheduled = false;
  const commit = () => {
    scheduled = false;
    const p = pending;
    pending = [];
    for (let i = 0; i < p.length; i++) p[i]!();
  };
  let received = 0;
  let cpu0: NodeJS.CpuUsage | undefined;
  let t0 = 0;
  let result: { us: number; wallMs: number; batches: number } | undefined;
  let commits = 0;
  let finished: () => void = () => undefined;
  const done = new Promise<void>((r) => (finished = r));

  const broker = await startMqttBroker({
    host: '127.0.0.1',
    port: 0,
    maxConnections: conns + 10,
    maxPacketBytes: 65536,
    connectTimeoutMs: 10_000,
    maxConnectsPerSecond: 100_000,
    connectBurst: 100_000,
    registry,
    onMessage: () =>
      new Promise<void>((resolve) => {
        received++;
        if (received === warmup) {
          cpu0 = process.cpuUsage();
          t0 = performance.now();
          commits = 0;
        } else if (received === warmup + measured && cpu0) {
          const c = process.cpuUsage(cpu0);
          result = { us: (c.user + c.system) / measured, wallMs: performance.now() - t0, batches: commits };
          finished();
        }
        pending.push(resolve);
        if (!scheduled) {
          scheduled = true;
          commits++;
          setImmediate(commit);
        }
      }),
    metrics: createEdgeMetrics(),
    log: pino({ level: 'silent' }),
    warn: () => undefined,
  });

  const child = fork(fileURLToPath(import.meta.url), ['--driver', String(broker.port), '--conns', String(conns), '--window', String(window), '--messages', String(measured), '--warmup', String(warmup), '--rate', String(rate), '--max-seconds', String(maxMs / 1000), '--mqtt-version', String(mqttVersion)], {
    stdio: 'inherit',
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = setTimeout(finished, maxMs + 15_000);
  await Promise.race([done, exited]);
  clearTimeout(deadline);
  await exited;
  await broker.close();
  if (!result) {
    console.error(`bench: incomplete, ${received} of ${warmup + measured} messages`);
    process.exit(1);
  }
  console.log(
    JSON.stringify({
      mqttVersion,
      conns,
      window,
      rate,
      messages: measured,
      cpuUsPerMsg: Number(result.us.toFixed(2)),
      msgPerS: Math.round(measured / (result.wallMs / 1000)),
      msgsPerCommit: Number((measured / Math.max(1, result.batches)).toFixed(1)),
    }),
  );
  process.exit(0);
}
