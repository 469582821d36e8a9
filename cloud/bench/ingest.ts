// Cloud ingest micro-benchmark: CPU the cloud spends per reading on POST /v1/batches, apart from
// influxd's and from the load generator's (this process).
//
//   npx tsx cloud/bench/ingest.ts [--batches 120] [--warmup 20] [--inflight 3] [--no-rules] [--profile] [--keep]
//
// Starts a private influxd (scripts/influxd.ts) and the cloud as a child process (cloud/src/main.ts with
// a generated config: store file on disk, default alert rules, log level info), pre-encodes realistic
// batches (5,000 readings: 1,000 environment devices × 5 readings of 4 float fields, device tags,
// deviceSeq, gzip) and POSTs them over loopback HTTP with --inflight batches in flight. CPU is read
// from /proc/<pid>/stat over the measured batches only (after --warmup). Every Ack is checked.
// --no-rules replaces the default alert rules with the benchmark stack's one event rule (bench/lib/stack.ts),
// so what is measured is ingest itself rather than rule evaluation.
// --profile runs the cloud with --cpu-prof and prints where its time went (bench/profile-summary.ts).
// On a shared box wrap it: flock /tmp/citysense-bench.lock npx tsx cloud/bench/ingest.ts
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { decodeAck, encodeBatch, type Batch, type Reading } from '@citysense/proto';
import { freePort, startInfluxd, waitFor } from '../../scripts/influxd.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const EDGE = { id: 'bench-edge', token: 'bench-edge-token-0123456789' };
const DEVICES = 1000;
const PER_DEVICE = 5;
const READINGS = DEVICES * PER_DEVICE;
const DISTRICTS = ['jinshui', 'zhongyuan', 'erqi', 'guancheng', 'huiji'];

const { values: args } = parseArgs({
  options: {
    batches: { type: 'string', default: '120' },
    warmup: { type: 'string', default: '20' },
    inflight: { type: 'string', default: '3' },
    profile: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'no-rules': { type: 'boolean', default: false },
  },
});
const MEASURED = Number(args.batches);
const WARMUP = Number(args.warmup);
const INFLIGHT = Number(args.inflight);

const clkTck = 100; // USER_HZ: 100 on every Linux this runs on
function cpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / clkTck, system: Number(f[12]) / clkTck };
}

const say = (s: string) => process.stdout.write(`${s}\n`);

/** Deterministic noise, so runs compare. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function makeBatches(n: number, t0: number): Buffer[] {
  const rand = rng(42);
  const devices = Array.from({ length: DEVICES }, (_, i) => ({
    id: `benv-${String(i).padStart(6, '0')}`,
    // One tags object per device, as the edge stamps them.
    tags: { district: DISTRICTS[i % DISTRICTS.length]!, site: `station-${i % 97}`, model: 'AQ-2000' },
    seq: 0,
    pm25: 20 + rand() * 30,
  }));
  const out: Buffer[] = [];
  for (let b = 0; b < n; b++) {
    const readings: Reading[] = [];
    for (const d of devices) {
      for (let k = 0; k < PER_DEVICE; k++) {
        const tick = b * PER_DEVICE + k;
        // Wanders but stays under the alert thresholds (a quiet city: rules evaluate, nothing fires).
        d.pm25 = Math.min(60, Math.max(5, d.pm25 + (rand() - 0.5) * 2));
        readings.push({
          deviceId: d.id,
          family: 'environment',
          ts: t0 + tick * 1000,
          values: {
            pm25: Math.round(d.pm25 * 10) / 10,
            pm10: Math.round((d.pm25 * 1.6 + rand() * 5) * 10) / 10,
            no2: Math.round((30 + rand() * 20) * 10) / 10,
            temperature: Math.round((18 + rand() * 4) * 100) / 100,
          },
          deviceSeq: ++d.seq,
          tags: d.tags,
        });
      }
    }
    const batch: Batch = { edgeId: EDGE.id, seq: b + 1, createdMs: t0 + (b + 1) * PER_DEVICE * 1000, readings, events: [] };
    out.push(gzipSync(Buffer.from(encodeBatch(batch))));
  }
  return out;
}

function post(agent: http.Agent, port: number, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolvePost, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/batches',
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/x-protobuf',
          'content-encoding': 'gzip',
          authorization: `Bearer ${EDGE.token}`,
          'content-length': body.length,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolvePost({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Sends batches[from, to) with INFLIGHT in flight; every one must be acknowledged whole, first time. */
async function send(agent: http.Agent, port: number, batches: Buffer[], from: number, to: number): Promise<void> {
  let next = from;
  const worker = async () => {
    while (next < to) {
      const i = next++;
      const res = await post(agent, port, batches[i]!);
      if (res.status !== 200) throw new Error(`batch ${i + 1}: HTTP ${res.status} ${res.body.toString().slice(0, 300)}`);
      const ack = decodeAck(res.body);
      if (ack.seq !== i + 1 || ack.accepted !== READINGS || ack.rejected !== 0 || ack.duplicate) {
        throw new Error(`batch ${i + 1}: unexpected Ack ${JSON.stringify({ ...ack, rejections: ack.rejections.slice(0, 3) })}`);
      }
    }
  };
  await Promise.all(Array.from({ length: INFLIGHT }, worker));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'citysense-ingest-bench-'));
  const total = WARMUP + MEASURED;
  // Old enough that every batch is in the past, recent enough for the plausibility check.
  const t0 = Math.floor(Date.now() / 1000) * 1000 - (total * PER_DEVICE + 600) * 1000;
  say(`encoding ${total} batches of ${READINGS} readings (${DEVICES} devices × ${PER_DEVICE}, 4 fields) ...`);
  const batches = makeBatches(total, t0);
  say(`  ${(batches[0]!.length / 1024).toFixed(0)} KiB gzip per batch`);

  const influx = await startInfluxd({ dir: join(dir, 'influxdb'), removeOnStop: !args.keep, startTimeoutMs: 60_000 });
  const port = await freePort();
  const config = join(dir, 'cloud.yaml');
  writeFileSync(
    config,
    `listen: { host: 127.0.0.1, port: ${port} }
store: { path: ${join(dir, 'cloud.db')} }
influx: { url: ${influx.url}, database: bench }
auth:
  mode: token
  edges: [{ id: ${EDGE.id}, tokenSha256: ${createHash('sha256').update(EDGE.token).digest('hex')} }]
metrics: { process: false }
${
  args['no-rules']
    ? `alerts:
  rulesFiles: []
  rules:
    - { id: bench-fire-alarm, kind: event, category: fire, severity: critical, types: [fire_alarm] }
`
    : ''
}`,
  );
  const profDir = join(dir, 'profile');
  mkdirSync(profDir);
  const nodeArgs = ['--import', 'tsx', ...(args.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), join(ROOT, 'cloud/src/main.ts'), '--config', config];
  const cloudLog = join(dir, 'cloud.log');
  const cloud: ChildProcess = spawn(process.execPath, nodeArgs, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
  const logChunks: Buffer[] = [];
  cloud.stdout!.on('data', (c: Buffer) => logChunks.push(c));
  cloud.stderr!.on('data', (c: Buffer) => logChunks.push(c));
  let exited = false;
  const exit = new Promise<void>((r) => cloud.once('exit', () => ((exited = true), r())));
  const agent = new http.Agent({ keepAlive: true, maxSockets: INFLIGHT });
  try {
    await waitFor('the cloud /healthz', async () => {
      if (exited) throw new Error(`the cloud exited: ${Buffer.concat(logChunks).toString().slice(-2000)}`);
      const res = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
      return res?.ok === true;
    }, 60_000);

    say(`warm-up: ${WARMUP} batches, ${INFLIGHT} in flight`);
    await send(agent, port, batches, 0, WARMUP);

    const c0 = cpuTimes(cloud.pid!);
    const i0 = cpuTimes(influx.pid);
    const b0 = process.cpuUsage();
    const w0 = process.hrtime.bigint();
    say(`measuring: ${MEASURED} batches (${(MEASURED * READINGS).toLocaleString('en')} readings), ${INFLIGHT} in flight`);
    await send(agent, port, batches, WARMUP, total);
    const wallS = Number(process.hrtime.bigint() - w0) / 1e9;
    const c1 = cpuTimes(cloud.pid!);
    const i1 = cpuTimes(influx.pid);
    const b1 = process.cpuUsage(b0);

    const n = MEASURED * READINGS;
    const us = (s: number) => ((s * 1e6) / n).toFixed(2);
    const cloudUser = c1.user - c0.user;
    const cloudSys = c1.system - c0.system;
    const influxS = i1.user - i0.user + (i1.system - i0.system);
    const result = {
      readings: n,
      wall_s: +wallS.toFixed(2),
      readings_per_s: Math.round(n / wallS),
      cloud_cpu_us_per_reading: +us(cloudUser + cloudSys),
      cloud_user_us: +us(cloudUser),
      cloud_system_us: +us(cloudSys),
      influxd_cpu_us_per_reading: +us(influxS),
      loadgen_cpu_us_per_reading: +us((b1.user + b1.system) / 1e6),
      cloud_cores: +((cloudUser + cloudSys) / wallS).toFixed(2),
      influxd_cores: +(influxS / wallS).toFixed(2),
    };
    say(
      `cloud ${result.cloud_cpu_us_per_reading} CPU-µs/reading (user ${result.cloud_user_us}, system ${result.cloud_system_us}); ` +
        `influxd ${result.influxd_cpu_us_per_reading}; load generator ${result.loadgen_cpu_us_per_reading}; ` +
        `${result.readings_per_s.toLocaleString('en')} readings/s, cloud ${result.cloud_cores} cores, influxd ${result.influxd_cores} cores`,
    );
    say(JSON.stringify(result));

    const q = await fetch(`${influx.url}/query?db=bench&q=${encodeURIComponent('SELECT count(pm25) FROM environment')}`);
    const stored = ((await q.json()) as { results: { series?: { values: [string, number][] }[] }[] }).results[0]?.series?.[0]?.values[0]?.[1];
    if (stored !== total * READINGS) throw new Error(`InfluxDB holds ${stored} pm25 points, expected ${total * READINGS}`);
    say(`InfluxDB holds all ${stored!.toLocaleString('en')} readings`);
  } finally {
    agent.destroy();
    if (!exited) cloud.kill('SIGTERM');
    await exit;
    await influx.stop();
    if (args.profile) {
      const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
      if (files.length) {
        // Kept outside the temporary folder; summarise with bench/profile-summary.ts.
        const kept = join(tmpdir(), 'citysense-ingest-bench.cpuprofile');
        writeFileSync(kept, readFileSync(join(profDir, files[0]!)));
        say(`cloud profile: ${kept} (npx tsx bench/profile-summary.ts ${kept})`);
      }
    }
    if (args.keep) say(`kept ${dir} (cloud.log, cloud.db)`);
    else rmSync(dir, { recursive: true, force: true });
    writeFileSync(join(tmpdir(), 'citysense-ingest-bench-cloud.log'), Buffer.concat(logChunks));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
