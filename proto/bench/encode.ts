// CPU and allocations of encodeBatch: the hand-written encoder (src/encode-batch.ts) against the protobufjs
// path it replaced (test/encode-batch-reference.ts), in the same process, in alternating rounds.
//   npx tsx proto/bench/encode.ts [rounds]
// On a shared machine: flock /tmp/citysense-bench.lock npx tsx proto/bench/encode.ts
//
// Cases: the uplink's 5,000-reading batch from 1,000 environment stations (4 one-decimal fields,
// district/model tags shared per device as the edge's registry hands them out, so 5 readings per station:
// column series); the durable queue's 20-reading parts of the same stream (20 stations, row form); and
// sampleEnvironmentBatch's 5,000 readings of 100 stations with 9 metrics (50-reading series).
import { PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { encodeBatch, sampleEnvironmentBatch, type Batch, type Reading } from '../src/index.ts';
import { encodeBatchReference } from '../test/encode-batch-reference.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const rounds = Number(process.argv[2] ?? 7);

function stations(count: number, devices: number): Reading[] {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
  const tags = Array.from({ length: devices }, (_, d) => ({ district: ['jinshui', 'zhongyuan', 'erqi', 'guancheng', 'huiji'][d % 5]!, model: 'AQM-9' }));
  const r1 = (v: number) => Math.round(v * 10) / 10;
  const out: Reading[] = [];
  for (let i = 0; i < count; i++) {
    const d = i % devices;
    out.push({
      deviceId: `env-${String(d).padStart(5, '0')}`,
      family: 'environment',
      ts: 1763900000000 + Math.floor(i / devices) * 10_000 + d * 7,
      values: { pm25: r1(20 + rnd() * 60), pm10: r1(40 + rnd() * 80), temperature: r1(5 + rnd() * 20), humidity: r1(40 + rnd() * 30) },
      tags: tags[d]!,
    });
  }
  return out;
}

const stream = stations(5000, 1000);
const batch = (readings: Reading[], seq: number): Batch => ({ edgeId: 'edge-bench', seq, createdMs: 1763900100000, readings, events: [] });
const uplink = batch(stream, 1);
const parts: Batch[] = [];
for (let i = 0; i < stream.length; i += 20) parts.push(batch(stream.slice(i, i + 20), i / 20 + 1));
const series9 = sampleEnvironmentBatch(5000, 100);

interface Case {
  name: string;
  batches: Batch[];
  readings: number;
  iterations: number;
}
const cases: Case[] = [
  { name: 'uplink 5,000 readings / 1,000 stations, 4 fields', batches: [uplink], readings: 5000, iterations: 40 },
  { name: 'queue parts of 20 readings (250 parts)', batches: parts, readings: 5000, iterations: 40 },
  { name: '5,000 readings / 100 stations, 9 fields (sample)', batches: [series9], readings: 5000, iterations: 40 },
];
const impls = [
  { name: 'protobufjs (old)', encode: encodeBatchReference },
  { name: 'hand-written (new)', encode: encodeBatch },
];

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });
const tick = () => new Promise((r) => setImmediate(r)); // lets the gc observer deliver

/** Heap growth of one pass over the batches right after a full GC: a lower bound of what it allocates. */
function allocatedBytes(encode: (b: Batch) => Uint8Array, batches: Batch[]): number {
  let best = 0;
  for (let k = 0; k < 5; k++) {
    gc();
    const h0 = process.memoryUsage().heapUsed;
    for (const b of batches) encode(b);
    best = Math.max(best, process.memoryUsage().heapUsed - h0);
  }
  return best;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const c of cases) {
  const bytes = impls.map((im) => c.batches.reduce((n, b) => n + im.encode(b).length, 0));
  const same = c.batches.every((b) => Buffer.compare(Buffer.from(impls[0]!.encode(b)), Buffer.from(impls[1]!.encode(b))) === 0);
  for (const im of impls) for (let i = 0; i < 5; i++) for (const b of c.batches) im.encode(b); // warm up
  const us: number[][] = impls.map(() => []);
  const gcShare: number[][] = impls.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < impls.length; k++) {
      const im = impls[(k + r) % impls.length]!; // alternate which one runs first
      const idx = impls.indexOf(im);
      await tick();
      gc();
      await tick();
      const gc0 = gcMs;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < c.iterations; i++) for (const b of c.batches) im.encode(b);
      const ns = Number(process.hrtime.bigint() - t0);
      await tick();
      us[idx]!.push(ns / 1000 / (c.iterations * c.readings));
      gcShare[idx]!.push((gcMs - gc0) / (ns / 1e6));
    }
  }
  console.log(`\n${c.name}${same ? '' : '  !! BYTES DIFFER !!'}`);
  impls.forEach((im, k) => {
    const alloc = allocatedBytes(im.encode, c.batches);
    const runs = us[k]!.map((x) => x.toFixed(3)).join(' ');
    console.log(
      `  ${im.name.padEnd(19)} ${median(us[k]!).toFixed(3)} µs/reading (min ${Math.min(...us[k]!).toFixed(3)}; rounds: ${runs})  ` +
        `gc ${(median(gcShare[k]!) * 100).toFixed(0)}% of wall  ~${(alloc / c.readings).toFixed(0)} B allocated/reading  ${bytes[k]} B out (${(bytes[k]! / c.readings).toFixed(2)} B/reading)`,
    );
  });
  console.log(`  speed-up (median): ${(median(us[0]!) / median(us[1]!)).toFixed(1)}x`);
}
