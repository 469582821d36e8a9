// CPU per message of the edge's own pipeline without MQTT: JSON payload → ingest (decode, profile,
// normalise) → disk queue (group commit) → batches handed out, encoded, gzip'd and acked as the uplink
// does. What is left of the edge's per-reading CPU in `npm run bench` beyond this is the broker.
//   npx tsx edge/bench/pipeline.ts [seconds] [concurrent messages]
import { rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { encodeBatch } from '@citysense/proto';
import pino from 'pino';
import { createIngest } from '../src/agent/ingest.ts';
import { createEdgeMetrics } from '../src/metrics.ts';
import { rateLimitedWarn } from '../src/log.ts';
import { loadProfiles } from '../src/profiles/load.ts';
import { buildRegistry } from '../src/registry/registry.ts';
import { openDiskQueue } from '../src/queue/disk.ts';
import { queueOptions, tempDir } from '../src/queue/testkit.ts';

const seconds = Number(process.argv[2] ?? 5);
const concurrency = Number(process.argv[3] ?? 3200);
const DEVICES = 1000;

const log = pino({ level: 'silent' });
const metrics = createEdgeMetrics();
const warn = rateLimitedWarn(log, { linesPerInterval: 10, intervalMs: 60_000 });
const profiles = loadProfiles([]);
const entries = Array.from({ length: DEVICES }, (_, i) => ({ id: `bench-env-${String(i).padStart(5, '0')}`, family: 'environment', secret: 'x'.repeat(16), district: 'jinshui', profile: 'generic-json' }));
const registry = buildRegistry(entries as never, 'bench', profiles);
const devices = entries.map((e) => registry.get(e.id)!);
const dir = tempDir('cs-pipeline-bench-');
const queue = await openDiskQueue(queueOptions(dir, { maxBatchItems: 5000, maxBatchAgeMs: 100, quotaBytes: { telemetry: 1e10, alarm: 1e8 } }));
const ingest = createIngest({ sink: queue, metrics, warn, normalise: { maxFutureSkewMs: 3e11, maxPastAgeMs: 3e11, maxMetricsPerMessage: 256, maxStringValueLength: 1024, clockSkew: 'reject', alarmTypes: ['fire_alarm'], warningTypes: ['fault'] } });

let stop = false;
let acked = 0;
const uplink = async () => {
  while (!stop) {
    const b = await queue.next(undefined, 'telemetry');
    if (!b) return;
    gzipSync(encodeBatch(b));
    acked += b.readings.length;
    await queue.ack(b.seq);
  }
};
const senders = [uplink(), uplink(), uplink(), uplink()];

const t0 = Date.now();
let sent = 0;
const cpu0 = process.cpuUsage();
const producer = async (p: number) => {
  let i = 0;
  while (Date.now() - t0 < seconds * 1000) {
    const d = (p * 7 + i) % DEVICES;
    const payload = Buffer.from(`{"ts":${t0 + i * 1000 + p},"metrics":{"pm25":${30 + (i % 9)}.5,"pm10":51.2,"temperature":20.${i % 10},"humidity":55.1}}`);
    await ingest.mqtt(devices[d]!, 'telemetry', payload, Date.now());
    sent++;
    i++;
  }
};
await Promise.all(Array.from({ length: concurrency }, (_, p) => producer(p)));
await queue.flush();
while (acked < sent) await new Promise((r) => setTimeout(r, 10));
const cpu = process.cpuUsage(cpu0);
const wall = (Date.now() - t0) / 1000;
stop = true;
await queue.close();
await Promise.all(senders);
rmSync(dir, { recursive: true, force: true });
const us = (cpu.user + cpu.system) / sent;
console.log(`${sent} messages in ${wall.toFixed(1)} s = ${Math.round(sent / wall)}/s; CPU ${us.toFixed(2)} µs per message (user ${(cpu.user / sent).toFixed(2)}, system ${(cpu.system / sent).toFixed(2)})`);
