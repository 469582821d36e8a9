// citysense's benchmark suite (issue 6): `npm run bench` (full, < 15 min) or `npm run bench -- --quick`
// (< 3 min); `--peers` adds Node-RED + mosquitto. Each run starts its own InfluxDB, cloud and edge on
// loopback, drives them with the lean load generator (device-sim/src/load), and measures, side by side
// in the same run: the InfluxDB ceiling, end-to-end throughput and its ratio to the ceiling, the CPU cost
// of edge and cloud per reading, alert latency, edge memory with 10k/50k idle devices, uplink bytes per
// reading, backlog drain after a cloud outage, data loss, and bare brokers (mosquitto, aedes) under the
// e2e load. Output: a table, bench-results/summary.json, bench-results/chart.svg (docs/performance.md
// explains every figure).
import { execFileSync, execSync } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { decodeBatch, encodeBatch, type Batch } from '@citysense/proto';
import { readingLine, SeriesPrefixes } from '../cloud/src/ingest/line-protocol.ts';
import { readingPayload, type LoadOptions, type LoadSnapshot } from '../device-sim/src/load/generator.ts';
import { FirePanelModel } from '../device-sim/src/fire-panel/panel.ts';
import { GbTcpLink } from '../device-sim/src/transports/gb26875-tcp.ts';
import { influxQuery, rows } from '../scripts/influxd.ts';
import { chartSvg, type Series } from './lib/chart.ts';
import { LoadGen } from './lib/loadgen.ts';
import { RawPublisher } from './lib/mqtt-client.ts';
import { cpuSeconds, CpuMeter, NodeProc, ROOT, rssMiB, sleep } from './lib/proc.ts';
import { histogramQuantile, scrape } from './lib/prom.ts';
import { DB, EDGE_ID, EDGE_TOKEN, makeDevices, PUSH_TOKEN, pushDeviceId, Stack, WEBHOOK_SECRET, type BenchDevice } from './lib/stack.ts';
import { summariseProfiles } from './profile-summary.ts';
import { runPeers } from './peers.ts';
import { runBrokers } from './brokers.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    peers: { type: 'boolean', default: false },
    profile: { type: 'boolean' },
    only: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(`usage: npm run bench [-- --quick] [--peers] [--profile|--no-profile] [--only steps]
  --quick    short steps (< 3 min); the full run takes < 15 min
  --peers    also Node-RED (mqtt in -> influxdb out) against mosquitto, same readings
  --profile  CPU-profile edge and cloud under load (default: on in the full run)
  --only     comma list of: ceiling,e2e,brokers,alert,alert-tcp,push,login-flood,backlog,conns,profile (for working on one step)
Results: bench-results/summary.json, bench-results/chart.svg, bench-results/logs/. Loopback only.
Do not run it while the tests run: the machine has 2 cores.
`);
  process.exit(0);
}
const QUICK = args.quick;
const only = args.only ? new Set(args.only.split(',')) : undefined;
const want = (s: string) => !only || only.has(s);
const PROFILE = args.profile ?? (!QUICK && !only);

// Sizes of each step: full / quick.
const P = QUICK
  ? { ceilingPoints: 300_000, ceilingMaxS: 15, e2eS: 20, alertEvents: 30, floodPosts: 150, outageS: 20, liveS: 5, connHoldS: 6, idleConns: [10_000, 50_000], profileS: 15, drainMaxS: 60 }
  : { ceilingPoints: 2_000_000, ceilingMaxS: 90, e2eS: 60, alertEvents: 200, floodPosts: 400, outageS: 120, liveS: 15, connHoldS: 60, idleConns: [10_000, 50_000], profileS: 30, drainMaxS: 240 };
const ENV_DEVICES = 100;
/** The push step: CTWing smoke detectors, reports pushed, alarms timed to the webhook. */
const PUSH = QUICK ? { devices: 50, reports: 2_000, alarms: 20, concurrency: 8 } : { devices: 200, reports: 10_000, alarms: 50, concurrency: 8 };
const WINDOW = 32;

const OUT = join(ROOT, 'bench-results');
const WORK = join(OUT, 'work');
const LOGS = join(OUT, 'logs');
const PROFILES = join(OUT, 'profiles');
const tty = process.stdout.isTTY;
const t0run = Date.now();

function say(s: string): void {
  if (tty) process.stdout.write('\r\x1b[K');
  process.stdout.write(`${s}\n`);
}
let lastProgress = 0;
function progress(s: string): void {
  const el = `[${((Date.now() - t0run) / 1000).toFixed(0).padStart(4)} s] `;
  if (tty) process.stdout.write(`\r\x1b[K${el}${s}`);
  else if (Date.now() - lastProgress > 5000) {
    lastProgress = Date.now();
    process.stdout.write(`${el}${s}\n`);
  }
}
const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : 'n/a');

// ---------------------------------------------------------------------------------------------------
const summary: Record<string, unknown> = {};
const details: Record<string, unknown> = {};
const timeline: { t: number; phase: string; landedPerS?: number; offeredPerS?: number; ackP99Ms?: number; alertMs?: number; edgeRssMiB?: number }[] = [];
let phase = 'start';
const phaseSpans: { phase: string; from: number; to: number }[] = [];
function enter(p: string): void {
  const now = Date.now();
  const last = phaseSpans.at(-1);
  if (last) last.to = now;
  phaseSpans.push({ phase: p, from: now, to: now });
  phase = p;
  say(`\n== ${p}`);
}
let lostTotal = 0;
const lostByStep: Record<string, number> = {};

function machine() {
  let influxVersion = 'unknown';
  try {
    influxVersion = execFileSync('influxd', ['version']).toString().trim();
  } catch {
    /* reported as unknown */
  }
  return {
    nproc: cpus().length,
    cpu_model: cpus()[0]?.model ?? 'unknown',
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    influxd: influxVersion,
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    ephemeral_ports: readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().replace(/\s+/, '-'),
  };
}

function checkQuietMachine(): string[] {
  const warnings: string[] = [];
  try {
    const out = execSync('pgrep -af vitest || true').toString().trim();
    const mine = out.split('\n').filter((l) => l && !l.includes('pgrep'));
    if (mine.length) warnings.push(`vitest is running (${mine.length} process(es)): the figures of this run are NOT comparable (2 cores shared)`);
  } catch {
    /* no pgrep */
  }
  const load = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  if (load > 0.7) warnings.push(`load average is ${load} before the start: something else is using the CPU`);
  return warnings;
}

// ---------------------------------------------------------------------------------------------------
// Sampling: the cloud's written counter, the edge's queue, every 500 ms during load steps.
interface Sample {
  t: number;
  written: number;
  edgeReceived: number;
  edgeQueued: number;
  edgeAcked: number;
  edgeDropped: number;
}
async function sampleStack(stack: Stack): Promise<Sample> {
  const [c, e] = await Promise.all([scrape(`${stack.cloudUrl}/metrics`).catch(() => undefined), scrape(`${stack.edgeUrl}/metrics`).catch(() => undefined)]);
  return {
    t: Date.now(),
    written: c?.sum('citysense_cloud_readings_written_total') ?? NaN,
    edgeReceived: e?.sum('citysense_edge_readings_received_total') ?? NaN,
    // The durable disk queue exports queue_items; the in-memory batcher before it queued_readings.
    edgeQueued: e ? (e.has('citysense_edge_queue_items') ? e.sum('citysense_edge_queue_items') : e.sum('citysense_edge_queued_readings')) : NaN,
    edgeDropped: e?.sum('citysense_edge_queue_dropped_total') ?? 0,
    edgeAcked: e?.sum('citysense_edge_readings_acked_total') ?? NaN,
  };
}

class Sampler {
  readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  gen: LoadGen | undefined;
  private lastGen: LoadSnapshot | undefined;
  constructor(
    private readonly stack: Stack,
    private readonly label: (s: Sample, perS: number) => string,
    everyMs = 500,
  ) {
    this.timer = setInterval(() => void this.tick(), everyMs);
    void this.tick();
  }
  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const s = await sampleStack(this.stack);
      const prev = this.samples.at(-1);
      this.samples.push(s);
      if (prev && s.t > prev.t && Number.isFinite(s.written)) {
        const perS = ((s.written - prev.written) * 1000) / (s.t - prev.t);
        const g = this.gen?.last;
        let offered: number | undefined;
        if (g && this.lastGen && g.t > this.lastGen.t) offered = ((g.acked - this.lastGen.acked) * 1000) / (g.t - this.lastGen.t);
        if (g) this.lastGen = g;
        timeline.push({ t: s.t, phase, landedPerS: perS, ...(offered !== undefined ? { offeredPerS: offered } : {}), ...(g ? { ackP99Ms: g.ackP99Ms } : {}) });
        progress(this.label(s, perS));
      }
    } finally {
      this.busy = false;
    }
  }
  stop(): void {
    clearInterval(this.timer);
  }
  /** Readings written per second between two times (from the samples nearest to them). */
  rate(from: number, to: number): number {
    const a = this.samples.find((s) => s.t >= from);
    const b = [...this.samples].reverse().find((s) => s.t <= to);
    if (!a || !b || b.t <= a.t) return NaN;
    return ((b.written - a.written) * 1000) / (b.t - a.t);
  }
}

/** Waits until the cloud's written counter has caught up with what the edge received and the edge holds nothing. */
async function waitQuiet(stack: Stack, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  let stableSince = 0;
  let last = -1;
  while (Date.now() < deadline) {
    const s = await sampleStack(stack);
    const settled = s.edgeQueued === 0 && s.written === last;
    if (settled) {
      if (!stableSince) stableSince = Date.now();
      if (Date.now() - stableSince > 1000) return;
    } else stableSince = 0;
    last = s.written;
    progress(`waiting for the pipeline to drain: edge holds ${fmt(s.edgeQueued)} readings, cloud wrote ${fmt(s.written)}`);
    await sleep(250);
  }
  say(`  (the pipeline did not settle within ${maxMs / 1000} s)`);
}

async function countLanded(stack: Stack, measurement: string, field: string, fromMs: number, toMs: number): Promise<number> {
  const r = rows(await influxQuery(stack.influx.url, DB, `SELECT count("${field}") FROM "${measurement}" WHERE time >= ${fromMs}ms AND time < ${toMs}ms`));
  return Number(r[0]?.count ?? 0);
}

// Each step's readings get their own hour of timestamps: counting what landed is a time-range count.
const TS_BASE = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 12 * 3_600_000;
const stepTs = (k: number) => TS_BASE + k * 3_600_000;

function loadOptions(stack: Stack, devices: BenchDevice[], o: Partial<LoadOptions> & { total: number; maxDurationMs: number; tsBase: number }): LoadOptions {
  return {
    host: '127.0.0.1',
    port: stack.ports.mqtt,
    devices: devices.map((d) => ({ id: d.id, secret: d.secret })),
    window: WINDOW,
    qos: 1,
    connectRatePerS: 2000,
    drainTimeoutMs: 60_000,
    ...o,
  };
}

/** Lost readings of one step: acknowledged to the device (PUBACK) but not in InfluxDB. */
async function account(stack: Stack, step: string, gen: LoadSnapshot, measurement: string, fromMs: number): Promise<number> {
  const ackedUnique = gen.acked - gen.resent;
  let landed = await countLanded(stack, measurement, 'pm25', fromMs, fromMs + 3_600_000);
  // A slow pipeline may still be writing: look again for a while before calling anything lost.
  for (let i = 0; i < 15 && landed < ackedUnique; i++) {
    progress(`accounting ${step}: ${fmt(landed)} of ${fmt(ackedUnique)} acknowledged readings in InfluxDB, waiting`);
    await sleep(2000);
    landed = await countLanded(stack, measurement, 'pm25', fromMs, fromMs + 3_600_000);
  }
  const lost = Math.max(0, ackedUnique - landed);
  lostByStep[step] = lost;
  lostTotal += lost;
  details[`${step}_accounting`] = { sent: gen.sent, acked: gen.acked, resent: gen.resent, landed_in_influxdb: landed, lost };
  say(`  accounting: ${fmt(gen.sent)} sent, ${fmt(gen.acked)} PUBACKed, ${fmt(landed)} in InfluxDB → lost ${fmt(lost)}`);
  return landed;
}

// ---------------------------------------------------------------------------------------------------
async function stepCeiling(stack: Stack): Promise<void> {
  enter('InfluxDB ceiling: raw line protocol, 5,000-point batches, 2 writers');
  await influxQuery(stack.influx.url, DB, 'SELECT 1').catch(() => undefined);
  await fetch(`${stack.influx.url}/query?q=${encodeURIComponent('CREATE DATABASE bench_ceiling')}`, { method: 'POST' });
  const w = new NodeProc({ name: 'ceiling-writer', script: 'bench/workers/ceiling.ts', logFile: join(LOGS, 'ceiling-writer.log'), ipc: true });
  await new Promise<void>((r) => w.child.once('message', () => r()));
  const meter = new CpuMeter({ influxd: stack.influx.pid, writer: w.pid }).begin();
  const done = new Promise<{ points: number; ms: number; errors: number; batchMs: number[] }>((r) => w.child.on('message', (m: { type: string }) => m.type === 'done' && r(m as never)));
  w.child.send({ type: 'start', url: stack.influx.url, db: 'bench_ceiling', points: P.ceilingPoints, batch: 5000, writers: 2, devices: 1000, tsBase: stepTs(0), maxDurationMs: P.ceilingMaxS * 1000 });
  const started = Date.now();
  const tick = setInterval(() => progress(`writing ${fmt(P.ceilingPoints)} points ... ${((Date.now() - started) / 1000).toFixed(0)} s, influxd ${fmt(cpuSeconds(stack.influx.pid), 1)} CPU-s so far`), 500);
  const r = await done;
  clearInterval(tick);
  const m = meter.end();
  await w.exited;
  const pps = r.points / (r.ms / 1000);
  const usPerPoint = (m.cpuS.influxd! * 1e6) / r.points;
  const lat = r.batchMs.sort((a, b) => a - b);
  summary.influx_ceiling_points_per_s = Math.round(pps);
  summary.influx_cpu_us_per_point = round(usPerPoint, 2);
  details.ceiling = {
    points: r.points,
    seconds: round(r.ms / 1000, 2),
    errors: r.errors,
    influxd_cores: round(m.cpuS.influxd! / m.wallS, 2),
    writer_cores: round(m.cpuS.writer! / m.wallS, 2),
    batch_ms_p50: round(lat[Math.floor(lat.length / 2)] ?? NaN, 1),
    batch_ms_p99: round(lat[Math.floor(lat.length * 0.99)] ?? NaN, 1),
  };
  timeline.push({ t: Date.now(), phase, landedPerS: pps });
  say(`  ${fmt(r.points)} points in ${fmt(r.ms / 1000, 1)} s = ${fmt(pps)} points/s; influxd ${fmt(usPerPoint, 1)} CPU-µs/point (${fmt(m.cpuS.influxd! / m.wallS, 2)} cores), writer ${fmt(m.cpuS.writer! / m.wallS, 2)} cores, ${r.errors} failed batches`);
}

function round(n: number, d: number): number {
  return Number.isFinite(n) ? Math.round(n * 10 ** d) / 10 ** d : NaN;
}

// ---------------------------------------------------------------------------------------------------
async function stepE2E(stack: Stack, env: BenchDevice[]): Promise<void> {
  enter(`end to end: MQTT QoS 1 → edge → cloud → InfluxDB, ${P.e2eS} s as fast as PUBACKs allow (${env.length} connections × window ${WINDOW})`);
  const tsBase = stepTs(1);
  const bytes0 = stack.link.bytesUp;
  const req0 = stack.link.requests;
  stack.link.sampleBodies = 0;
  const s0 = await sampleStack(stack);
  const whole = new CpuMeter({ edge: stack.edge.pid, cloud: stack.cloud.pid }).begin();
  const gen = new LoadGen(LOGS, 'load-e2e', loadOptions(stack, env, { total: 50_000_000, maxDurationMs: P.e2eS * 1000, tsBase }));
  const sampler = new Sampler(stack, (s, perS) => `e2e: ${fmt(perS)} readings/s landed, edge holds ${fmt(s.edgeQueued)}, ack p99 ${fmt(gen.last?.ackP99Ms ?? NaN, 1)} ms`);
  sampler.gen = gen;
  await gen.started();
  // Steady state: skip the first 3 s (connections, JIT), measure until the generator stops.
  await sleep(3000);
  stack.link.sampleBodies = 20;
  const meter = new CpuMeter({ edge: stack.edge.pid, cloud: stack.cloud.pid, influxd: stack.influx.pid, loadgen: gen.proc.pid, bench: process.pid }).begin();
  const sA = await sampleStack(stack);
  const steadyUntil = Date.now() + (P.e2eS - 4) * 1000;
  while (Date.now() < steadyUntil && gen.proc.alive) await sleep(200);
  const sB = await sampleStack(stack);
  const m = meter.end();
  const final = await gen.done;
  sampler.stop();
  await waitQuiet(stack, 120_000);
  const s1 = await sampleStack(stack);
  const mWhole = whole.end();
  const landedSteady = sB.written - sA.written;
  const ingestPerS = ((sB.edgeReceived - sA.edgeReceived) * 1000) / (sB.t - sA.t);
  const landedWhole = s1.written - s0.written;
  const wallS = (sB.t - sA.t) / 1000;
  const perS = landedSteady / wallS;
  summary.e2e_readings_per_s = Math.round(perS);
  const ceiling = summary.influx_ceiling_points_per_s as number | undefined;
  summary.e2e_ratio_to_ceiling = ceiling ? round(perS / ceiling, 3) : null;
  // Per-reading cost over the whole step (load start → everything landed): with a disk queue the edge
  // may accept faster than it lands, so CPU and readings are both counted over the same whole interval.
  const edgeUs = (mWhole.cpuS.edge! * 1e6) / landedWhole;
  const cloudUs = (mWhole.cpuS.cloud! * 1e6) / landedWhole;
  summary.pipeline_cpu_us_per_reading = round(edgeUs + cloudUs, 1);
  summary.e2e_ingest_puback_per_s = Math.round(ingestPerS);
  details.e2e = {
    steady_seconds: round(wallS, 1),
    readings_landed_steady: landedSteady,
    cores: Object.fromEntries(Object.entries(m.cpuS).map(([k, v]) => [k, round(v / m.wallS, 2)])),
    system_share_of_cpu: Object.fromEntries(Object.entries(m.systemS).map(([k, v]) => [k, round(v / m.cpuS[k]!, 2)])),
    whole_step: { seconds: round(mWhole.wallS, 1), readings_landed: landedWhole, edge_cpu_s: round(mWhole.cpuS.edge!, 2), cloud_cpu_s: round(mWhole.cpuS.cloud!, 2) },
    ingest_puback_per_s_steady: Math.round(ingestPerS),
    edge_queue_dropped: s1.edgeDropped,
    cpu_us_per_reading_steady_window: { edge: round((m.cpuS.edge! * 1e6) / landedSteady, 1), cloud: round((m.cpuS.cloud! * 1e6) / landedSteady, 1), influxd: round((m.cpuS.influxd! * 1e6) / landedSteady, 1), load_generator_per_message: round((m.cpuS.loadgen! * 1e6) / Math.max(1, sB.edgeReceived - sA.edgeReceived), 1), bench_process: round((m.cpuS.bench! * 1e6) / landedSteady, 1) },
    puback_latency_ms_last_interval: { p50: final.ackP50Ms, p99: final.ackP99Ms },
    uplink_batches: stack.link.requests - req0,
    readings_per_batch: round((s1.edgeAcked - s0.edgeAcked) / Math.max(1, stack.link.requests - req0), 0),
  };
  // Per message it published (PUBACKed by the edge in the window), not per landed reading.
  summary.e2e_load_generator_cpu_us_per_msg = round((m.cpuS.loadgen! * 1e6) / Math.max(1, sB.edgeReceived - sA.edgeReceived), 2);
  say(`  steady window: ${fmt(ingestPerS)} readings/s PUBACKed by the edge; whole step: ${fmt(landedWhole)} readings landed, edge ${fmt(edgeUs, 1)} + cloud ${fmt(cloudUs, 1)} CPU-µs per reading`);
  say(`  ${fmt(perS)} readings/s landed (${fmt((perS / (ceiling ?? NaN)) * 100, 0)}% of the ceiling); steady-window CPU per landed reading: edge ${fmt((m.cpuS.edge! * 1e6) / landedSteady, 1)} µs, cloud ${fmt((m.cpuS.cloud! * 1e6) / landedSteady, 1)} µs, influxd ${fmt((m.cpuS.influxd! * 1e6) / landedSteady, 1)} µs; load generator ${fmt(summary.e2e_load_generator_cpu_us_per_msg as number, 1)} µs per message it published`);
  say(`  cores (kernel share): ${Object.entries(m.cpuS).map(([k, v]) => `${k} ${fmt(v / m.wallS, 2)} (${fmt((m.systemS[k]! / v) * 100, 0)}%)`).join(', ')}`);

  // Uplink size: the bytes that crossed the link for this step's readings, and the same readings' line protocol.
  const readingsAcked = s1.edgeAcked - s0.edgeAcked;
  const wire = stack.link.bytesUp - bytes0;
  let pbGz = 0;
  let lpGz = 0;
  let n = 0;
  for (const body of stack.link.bodies.splice(0)) {
    try {
      const batch = decodeBatch(gunzipSync(body));
      const prefixes = new SeriesPrefixes();
      let lp = '';
      for (const r of batch.readings) lp += `${readingLine(r, prefixes)}\n`;
      pbGz += body.length;
      lpGz += gzipSync(lp).length;
      n += batch.readings.length;
    } catch (err) {
      say(`  (an uplink body could not be decoded: ${String(err)})`);
    }
  }
  summary.uplink_bytes_per_reading = round(wire / readingsAcked, 2);
  summary.line_protocol_gzip_bytes_per_reading = n ? round(lpGz / n, 2) : null;
  details.uplink = {
    wire_bytes_up: wire,
    readings: readingsAcked,
    sampled_batches_readings: n,
    sampled_protobuf_gzip_body_bytes_per_reading: n ? round(pbGz / n, 2) : null,
    sampled_line_protocol_gzip_bytes_per_reading: n ? round(lpGz / n, 2) : null,
    mqtt_json_payload_bytes_per_reading: readingPayload(Date.now(), { pm25: 35.2, pm10: 61.3, temperature: 21.5, humidity: 45.1 }).length,
  };
  say(`  uplink: ${fmt(wire / readingsAcked, 2)} B/reading on the wire (HTTP included); sampled bodies ${fmt(pbGz / n, 2)} B/reading vs gzip'd line protocol of the same readings ${fmt(lpGz / n, 2)} B/reading`);
  await account(stack, 'e2e', final, 'environment', tsBase);
}

// ---------------------------------------------------------------------------------------------------
interface Hook {
  server: Server;
  url: string;
  arrivals: Map<string, number>;
  badSignatures: number;
  received: number;
}
async function startHookReceiver(): Promise<Hook> {
  const arrivals = new Map<string, number>();
  const hook: Hook = { server: undefined as unknown as Server, url: '', arrivals, badSignatures: 0, received: 0 };
  hook.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      const raw = Buffer.concat(chunks);
      hook.received++;
      const sig = String(req.headers['x-citysense-signature'] ?? '');
      const m = /t=(\d+),v1=([0-9a-f]+)/.exec(sig);
      const expect = m ? createHmac('sha256', WEBHOOK_SECRET).update(`${m[1]}.`).update(raw).digest() : undefined;
      const got = m ? Buffer.from(m[2]!, 'hex') : undefined;
      if (!expect || !got || got.length !== expect.length || !timingSafeEqual(got, expect)) hook.badSignatures++;
      try {
        const body = JSON.parse(raw.toString('utf8')) as { device_id?: string; state?: string };
        if (body.device_id && (body.state ?? 'firing') === 'firing' && !arrivals.has(body.device_id)) arrivals.set(body.device_id, at);
      } catch {
        /* counted as received; no device */
      }
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => hook.server.listen(0, '127.0.0.1', r));
  const addr = hook.server.address();
  hook.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/hook`;
  return hook;
}

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : NaN;
};

async function stepAlert(stack: Stack, env: BenchDevice[], fire: BenchDevice[], hook: Hook): Promise<void> {
  const e2e = summary.e2e_readings_per_s as number | undefined;
  const bg = Math.round((e2e ?? 4000) / 2);
  enter(`alert latency: fire_alarm published → ${stack.webhooks ? 'signed webhook received' : "`events` point queryable in InfluxDB (stand-in: the cloud has no webhooks yet)"}, background load ${fmt(bg)} readings/s`);
  const tsBase = stepTs(2);
  const gen = new LoadGen(LOGS, 'load-alert-bg', loadOptions(stack, env, { total: bg * (P.alertEvents / 4 + 60), maxDurationMs: (P.alertEvents / 4 + 60) * 1000, ratePerS: bg, tsBase }));
  const sampler = new Sampler(stack, (s, perS) => `alert: background ${fmt(perS)} readings/s landed; ${influxLat.length}/${P.alertEvents} alarms measured, last ${fmt(influxLat.at(-1) ?? NaN, 1)} ms`);
  sampler.gen = gen;
  const influxLat: number[] = [];
  const hookLat: number[] = [];
  // PUBACK: the alarm is on the edge's disk. Splits the latency into the edge's part and the rest.
  const ackLat: number[] = [];
  await gen.started();
  const pubs: RawPublisher[] = [];
  for (const d of fire.slice(0, P.alertEvents)) {
    const p = new RawPublisher(stack.ports.mqtt, d.id, d.secret);
    await p.connect();
    pubs.push(p);
  }
  await sleep(3000);
  let hookMissing = 0;
  for (let i = 0; i < pubs.length; i++) {
    const p = pubs[i]!;
    const started = performance.now();
    const payload = JSON.stringify({ ts: Date.now(), type: 'fire_alarm', attrs: { zone: `B2-${String(i).padStart(2, '0')}` } });
    const sentAt = performance.now();
    void p.publish('events', payload).then(() => ackLat.push(performance.now() - sentAt));
    // Stand-in: poll InfluxDB for this device's event point every 5 ms.
    let found = NaN;
    while (performance.now() - sentAt < 10_000) {
      const r = rows(await influxQuery(stack.influx.url, DB, `SELECT count("id") FROM events WHERE device_id='${p.deviceId}'`));
      if (Number(r[0]?.count ?? 0) > 0) {
        found = performance.now() - sentAt;
        break;
      }
      await sleep(5);
    }
    if (Number.isFinite(found)) influxLat.push(found);
    if (stack.webhooks) {
      const deadline = sentAt + (hookLat.length === 0 && hookMissing < 3 ? 10_000 : 3_000);
      while (!hook.arrivals.has(p.deviceId) && performance.now() < deadline) await sleep(2);
      const at = hook.arrivals.get(p.deviceId);
      if (at !== undefined) hookLat.push(at - sentAt);
      else hookMissing++;
    }
    timeline.push({ t: Date.now(), phase, alertMs: stack.webhooks && hookLat.length ? (hookLat.at(-1) ?? found) : found });
    const wait = 250 - (performance.now() - started);
    if (wait > 0) await sleep(wait);
  }
  for (const p of pubs) p.close();
  gen.stop();
  const final = await gen.done;
  sampler.stop();
  const useHook = stack.webhooks && hookLat.length >= 0.9 * pubs.length;
  const lat = useHook ? hookLat : influxLat;
  summary.alert_latency_ms_p50 = round(pct(lat, 0.5), 1);
  summary.alert_latency_ms_p99 = round(pct(lat, 0.99), 1);
  summary.alert_latency_ms_max = round(Math.max(...lat), 1);
  summary.alert_latency_source = useHook ? 'webhook' : 'standin_events_point_in_influxdb';
  details.alert = {
    events: pubs.length,
    background_readings_per_s: bg,
    webhook_configured: stack.webhooks,
    webhook: { samples: hookLat.length, p50: round(pct(hookLat, 0.5), 1), p99: round(pct(hookLat, 0.99), 1), max: round(Math.max(...hookLat), 1), bad_signatures: hook.badSignatures, deliveries_received: hook.received },
    puback: { samples: ackLat.length, p50: round(pct(ackLat, 0.5), 1), p99: round(pct(ackLat, 0.99), 1), max: round(Math.max(...ackLat), 1) },
    influx_events_point: { samples: influxLat.length, p50: round(pct(influxLat, 0.5), 1), p99: round(pct(influxLat, 0.99), 1), max: round(Math.max(...influxLat), 1), poll_interval_ms: 5 },
  };
  say(`  PUBACK (on the edge's disk): p50 ${fmt(pct(ackLat, 0.5), 1)} ms, p99 ${fmt(pct(ackLat, 0.99), 1)} ms, max ${fmt(Math.max(...ackLat), 1)} ms`);
  say(`  events point in InfluxDB: p50 ${fmt(pct(influxLat, 0.5), 1)} ms, p99 ${fmt(pct(influxLat, 0.99), 1)} ms, max ${fmt(Math.max(...influxLat), 1)} ms (${influxLat.length}/${pubs.length})`);
  // Where the time after the PUBACK goes: the alarm lane's POSTs as the edge times them, and the cloud's
  // handling of them (both Prometheus histograms, so bucketed: an estimate).
  const [em, cm] = await Promise.all([scrape(`${stack.edgeUrl}/metrics`).catch(() => undefined), scrape(`${stack.cloudUrl}/metrics`).catch(() => undefined)]);
  const alarmLane = (l: string) => l.includes('lane="alarm"');
  const q = (m: typeof em, name: string, p: number) => (m ? round(histogramQuantile(m, name, p, alarmLane) * 1000, 1) : null);
  const lane = {
    edge_post_ms: { p50: q(em, 'citysense_edge_uplink_request_seconds', 0.5), p99: q(em, 'citysense_edge_uplink_request_seconds', 0.99) },
    cloud_handling_ms: { p50: q(cm, 'citysense_cloud_ingest_seconds', 0.5), p99: q(cm, 'citysense_cloud_ingest_seconds', 0.99) },
  };
  (details.alert as Record<string, unknown>).alarm_lane_histograms = lane;
  say(`  alarm-lane POST as the edge times it: p50 ≈ ${fmt(lane.edge_post_ms.p50 ?? NaN, 1)} ms, p99 ≈ ${fmt(lane.edge_post_ms.p99 ?? NaN, 1)} ms; the cloud's handling of it: p50 ≈ ${fmt(lane.cloud_handling_ms.p50 ?? NaN, 1)} ms, p99 ≈ ${fmt(lane.cloud_handling_ms.p99 ?? NaN, 1)} ms (bucketed)`);
  if (stack.webhooks) say(`  signed webhook: p50 ${fmt(pct(hookLat, 0.5), 1)} ms, p99 ${fmt(pct(hookLat, 0.99), 1)} ms, max ${fmt(Math.max(...hookLat), 1)} ms (${hookLat.length}/${pubs.length}; ${hook.badSignatures} bad signatures)`);
  await waitQuiet(stack, 30_000);
  await account(stack, 'alert_background', final, 'environment', tsBase);
}

// ---------------------------------------------------------------------------------------------------
// Login flood (issue 11): the alarm lane's latency with and without a flood of wrong operator logins, in
// the same run. Alarm-lane POST /v1/batches straight to the cloud process (as the edge sends them: one
// fire alarm, `x-citysense-lane: alarm`), one at a time every 25 ms; the flood comes from its own process
// (bench/workers/login-flood.ts) at a fixed rate from 200 loopback addresses, so that most attempts pass
// the per-address windows and reach the password hash: the worst case for the cloud.
const FLOOD = { ratePerS: 100, sources: 200, maxInFlight: 256, gapMs: 25, warmupMs: 2_000 };
let floodSeq = 900_000_000_000;

async function alarmLaneLatencies(stack: Stack, n: number): Promise<{ ms: number[]; failed: number }> {
  const ms: number[] = [];
  let failed = 0;
  for (let i = 0; i < n; i++) {
    const seq = ++floodSeq;
    const b: Batch = {
      edgeId: EDGE_ID,
      seq,
      createdMs: Date.now(),
      lane: 'alarm',
      readings: [],
      events: [{ deviceId: 'bench-flood-panel', family: 'fire', ts: Date.now(), type: 'fire_alarm', attrs: { zone: 'B1' }, priority: 'alarm', id: `flood-${seq}`, tags: { district: 'jinshui' } }],
    };
    const body = Buffer.from(encodeBatch(b));
    const t = performance.now();
    const res = await fetch(`${stack.cloudUrl}/v1/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${EDGE_TOKEN}`, 'x-citysense-lane': 'alarm' },
      body,
    });
    await res.arrayBuffer();
    if (res.status === 200) ms.push(performance.now() - t);
    else failed++;
    await sleep(FLOOD.gapMs);
  }
  return { ms, failed };
}

async function stepLoginFlood(stack: Stack): Promise<void> {
  enter(`login flood: alarm-lane POSTs to the cloud, ${P.floodPosts} without and ${P.floodPosts} with ${FLOOD.ratePerS} wrong logins/s from ${FLOOD.sources} addresses`);
  await alarmLaneLatencies(stack, 20); // warm the connection and the code paths
  const base = await alarmLaneLatencies(stack, P.floodPosts);
  say(`  without the flood: p50 ${fmt(pct(base.ms, 0.5), 2)} ms, p99 ${fmt(pct(base.ms, 0.99), 2)} ms (${base.ms.length} answered 200, ${base.failed} not)`);
  const loginsBefore = await scrape(`${stack.cloudUrl}/metrics`).catch(() => undefined);
  const w = new NodeProc({ name: 'login-flood', script: 'bench/workers/login-flood.ts', logFile: join(LOGS, 'login-flood.log'), ipc: true });
  await new Promise<void>((r) => w.child.once('message', () => r()));
  const done = new Promise<{ sent: number; byStatus: Record<string, number>; errors: number; ms: number }>((r) => w.child.on('message', (m: { type: string }) => m.type === 'done' && r(m as never)));
  const meter = new CpuMeter({ cloud: stack.cloud.pid }).begin();
  w.child.send({ type: 'start', url: stack.cloudUrl, ratePerS: FLOOD.ratePerS, sources: FLOOD.sources, maxInFlight: FLOOD.maxInFlight, maxRequests: FLOOD.ratePerS * 600, maxDurationMs: 600_000 });
  // Let the hashing queue fill before measuring.
  await sleep(FLOOD.warmupMs);
  const flood = await alarmLaneLatencies(stack, P.floodPosts);
  w.child.send({ type: 'stop' });
  const f = await done;
  const m = meter.end();
  await w.exited;
  const loginsAfter = await scrape(`${stack.cloudUrl}/metrics`).catch(() => undefined);
  const loginCount = (s: typeof loginsAfter, result: string) => s?.sum('citysense_cloud_operator_logins_total', (l) => l.includes(`result="${result}"`)) ?? 0;
  const hashed = loginCount(loginsAfter, 'failed') - loginCount(loginsBefore, 'failed');
  const p99Base = pct(base.ms, 0.99);
  const p99Flood = pct(flood.ms, 0.99);
  summary.login_flood_alarm_p99_ms_without = round(p99Base, 2);
  summary.login_flood_alarm_p99_ms_with = round(p99Flood, 2);
  summary.login_flood_alarm_p99_ratio = round(p99Flood / p99Base, 2);
  details.login_flood = {
    alarm_posts_each_phase: P.floodPosts,
    gap_ms: FLOOD.gapMs,
    without: { answered: base.ms.length, failed: base.failed, p50: round(pct(base.ms, 0.5), 2), p99: round(p99Base, 2), max: round(Math.max(...base.ms), 2) },
    with: { answered: flood.ms.length, failed: flood.failed, p50: round(pct(flood.ms, 0.5), 2), p99: round(p99Flood, 2), max: round(Math.max(...flood.ms), 2) },
    flood: {
      rate_per_s: FLOOD.ratePerS,
      sources: FLOOD.sources,
      sent: f.sent,
      seconds: round(f.ms / 1000, 1),
      answers_by_status: f.byStatus,
      errors: f.errors,
      hashed_wrong_passwords: hashed,
      cloud_cores: round(m.cpuS.cloud! / m.wallS, 2),
    },
  };
  say(`  with the flood:    p50 ${fmt(pct(flood.ms, 0.5), 2)} ms, p99 ${fmt(p99Flood, 2)} ms (${flood.ms.length} answered 200, ${flood.failed} not)`);
  say(`  flood: ${fmt(f.sent)} logins in ${fmt(f.ms / 1000, 1)} s, answers ${JSON.stringify(f.byStatus)}, ${fmt(hashed)} hashed; cloud ${fmt(m.cpuS.cloud! / m.wallS, 2)} cores; p99 ratio ${fmt(p99Flood / p99Base, 2)} (target ≤ 1.5)`);
}

// ---------------------------------------------------------------------------------------------------
/**
 * The same alarm from a GB/T 26875.3 transmission device over TCP (the edge's listener): the device
 * model and link of device-sim (its own encoder), a zone's fire alarm (component state frames, then the
 * system's) → the signed webhook. Also the confirm latency (the frame durable in the edge's queue).
 * Without background load: compare with the MQTT path's PUBACK and webhook figures of the alert step.
 */
async function stepAlertTcp(stack: Stack, fireTcp: BenchDevice[], hook: Hook): Promise<void> {
  enter(`alert latency over GB/T 26875.3 TCP: a zone's fire alarm sent by a transmission device → ${stack.webhooks ? 'signed webhook received' : '`events` point in InfluxDB'}`);
  const hookLat: number[] = [];
  const confirmLat: number[] = [];
  const influxLat: number[] = [];
  const links: { link: GbTcpLink; model: FirePanelModel; id: string }[] = [];
  for (const d of fireTcp.slice(0, P.alertEvents)) {
    const link = new GbTcpLink({ host: '127.0.0.1', port: stack.ports.gb26875, answerTimeoutMs: 10_000, retries: 3 });
    await link.open();
    const model = new FirePanelModel({ id: d.id, address: d.gb26875!, seed: 1, floors: 1, zonesPerFloor: 1, detectorsPerZone: 1 });
    for (const f of model.startup()) await link.send(f.bytes);
    links.push({ link, model, id: d.id });
  }
  await sleep(2000);
  for (const { link, model, id } of links) {
    const started = performance.now();
    const frames = model.fireAlarm(model.zones[0]!);
    const sentAt = performance.now();
    for (const [k, f] of frames.entries()) {
      await link.send(f.bytes);
      if (k === 0) confirmLat.push(performance.now() - sentAt);
    }
    let found = NaN;
    if (stack.webhooks) {
      const deadline = sentAt + 10_000;
      while (!hook.arrivals.has(id) && performance.now() < deadline) await sleep(2);
      const at = hook.arrivals.get(id);
      if (at !== undefined) hookLat.push(at - sentAt);
    } else {
      while (performance.now() - sentAt < 10_000) {
        const r = rows(await influxQuery(stack.influx.url, DB, `SELECT count("id") FROM events WHERE device_id='${id}' AND type='fire_alarm'`));
        if (Number(r[0]?.count ?? 0) > 0) {
          found = performance.now() - sentAt;
          break;
        }
        await sleep(5);
      }
      if (Number.isFinite(found)) influxLat.push(found);
    }
    const wait = 250 - (performance.now() - started);
    if (wait > 0) await sleep(wait);
  }
  for (const l of links) l.link.close();
  const lat = stack.webhooks ? hookLat : influxLat;
  summary.alert_tcp_latency_ms_p50 = round(pct(lat, 0.5), 1);
  summary.alert_tcp_latency_ms_p99 = round(pct(lat, 0.99), 1);
  summary.alert_tcp_latency_source = stack.webhooks ? 'webhook' : 'standin_events_point_in_influxdb';
  details.alert_tcp = {
    events: links.length,
    webhook: { samples: hookLat.length, p50: round(pct(hookLat, 0.5), 1), p99: round(pct(hookLat, 0.99), 1), max: round(Math.max(...hookLat), 1) },
    confirm: { samples: confirmLat.length, p50: round(pct(confirmLat, 0.5), 1), p99: round(pct(confirmLat, 0.99), 1), max: round(Math.max(...confirmLat), 1) },
    influx_events_point: { samples: influxLat.length, p50: round(pct(influxLat, 0.5), 1), p99: round(pct(influxLat, 0.99), 1) },
  };
  say(`  confirm (command 3: on the edge's disk): p50 ${fmt(pct(confirmLat, 0.5), 1)} ms, p99 ${fmt(pct(confirmLat, 0.99), 1)} ms`);
  say(`  ${stack.webhooks ? 'signed webhook' : 'events point in InfluxDB'}: p50 ${fmt(pct(lat, 0.5), 1)} ms, p99 ${fmt(pct(lat, 0.99), 1)} ms (${lat.length}/${links.length})`);
  const mq = details.alert as { webhook?: { p50: number; p99: number }; puback?: { p50: number; p99: number } } | undefined;
  if (mq?.webhook) say(`  beside the MQTT path (alert step, under background load): webhook p50 ${fmt(mq.webhook.p50, 1)} ms, p99 ${fmt(mq.webhook.p99, 1)} ms; PUBACK p50 ${fmt(mq.puback?.p50 ?? NaN, 1)} ms, p99 ${fmt(mq.puback?.p99 ?? NaN, 1)} ms`);
}

// ---------------------------------------------------------------------------------------------------
async function stepBacklog(stack: Stack, env: BenchDevice[]): Promise<void> {
  const e2e = (summary.e2e_readings_per_s as number | undefined) ?? 4000;
  const live = Math.round(e2e / 4);
  enter(`backlog: ${P.outageS} s cloud outage (edge→cloud link cut) under a live load of ${fmt(live)} readings/s (a quarter of the e2e rate), then drain`);
  const tsBase = stepTs(3);
  const maxS = P.liveS + P.outageS + P.drainMaxS + 10;
  const gen = new LoadGen(LOGS, 'load-backlog', loadOptions(stack, env, { total: live * maxS, maxDurationMs: maxS * 1000, ratePerS: live, tsBase }), undefined, 250);
  let state = 'live';
  const sampler = new Sampler(stack, (s, perS) => `backlog (${state}): ${fmt(perS)} readings/s landed, edge holds ${fmt(s.edgeQueued)}, devices owe ${fmt(gen.last?.owed ?? 0)}`, 250);
  sampler.gen = gen;
  const writtenAtStart = (await sampleStack(stack)).written;
  await gen.started();
  await sleep(P.liveS * 1000);
  // Readings the devices have produced (sent, or owed while their windows were full) minus what landed.
  const lag = () => {
    const g = gen.last;
    const s = sampler.samples.at(-1);
    return g && s ? g.sent + g.owed - (s.written - writtenAtStart) : NaN;
  };
  const preLags: number[] = [];
  for (let i = 0; i < 8; i++) {
    preLags.push(lag());
    await sleep(250);
  }
  const baseLag = Math.max(pct(preLags.filter(Number.isFinite), 0.5), live * 0.5);
  state = 'outage';
  const cutAt = Date.now();
  stack.link.setCut(true);
  let peakQueued = 0;
  let peakOwed = 0;
  while (Date.now() - cutAt < P.outageS * 1000) {
    await sleep(250);
    peakQueued = Math.max(peakQueued, sampler.samples.at(-1)?.edgeQueued ?? 0);
    peakOwed = Math.max(peakOwed, gen.last?.owed ?? 0);
  }
  const backlogAtRestore = lag();
  const writtenAtRestore = sampler.samples.at(-1)!.written;
  state = 'draining';
  const restoreAt = Date.now();
  stack.link.setCut(false);
  let firstLandAt = 0;
  let writtenAtFirstLand = 0;
  let drainedAt = 0;
  while (Date.now() - restoreAt < P.drainMaxS * 1000) {
    await sleep(250);
    const s = sampler.samples.at(-1)!;
    if (!firstLandAt && s.written > writtenAtRestore) {
      // The drain began after the previous sample: start its clock there.
      const before = sampler.samples.at(-2);
      firstLandAt = before && before.t >= restoreAt ? before.t : restoreAt;
      writtenAtFirstLand = before?.written ?? writtenAtRestore;
    }
    if (firstLandAt && lag() <= baseLag) {
      drainedAt = s.t;
      break;
    }
  }
  state = 'after';
  const writtenAtDrained = sampler.samples.at(-1)!.written;
  await sleep(3000);
  gen.stop();
  const final = await gen.done;
  sampler.stop();
  await waitQuiet(stack, 60_000);
  const drainS = drainedAt ? (drainedAt - restoreAt) / 1000 : NaN;
  const pipeS = drainedAt ? (drainedAt - firstLandAt) / 1000 : NaN;
  const drainRate = pipeS > 0 ? (writtenAtDrained - writtenAtFirstLand) / pipeS : NaN;
  summary.backlog_drain_ratio = round(drainRate / live, 2);
  summary.backlog_time_to_drain_s = round(drainS, 1);
  details.backlog = {
    outage_s: P.outageS,
    live_readings_per_s: live,
    backlog_readings_at_restore: backlogAtRestore,
    edge_queue_peak: peakQueued,
    device_side_backlog_peak: peakOwed,
    first_write_after_restore_s: firstLandAt ? round((firstLandAt - restoreAt) / 1000, 1) : null,
    time_to_drain_s: round(drainS, 1),
    drain_readings_per_s: Math.round(drainRate),
    drained: Boolean(drainedAt),
  };
  say(`  backlog at restore ${fmt(backlogAtRestore)} readings (edge held ≤ ${fmt(peakQueued)}, devices owed ≤ ${fmt(peakOwed)}); first write ${fmt((firstLandAt - restoreAt) / 1000, 1)} s after restore; drained ${drainedAt ? `in ${fmt(drainS, 1)} s` : 'NOT within the bound'}; drain ${fmt(drainRate)} readings/s = ${fmt(drainRate / live, 2)} × live`);
  await account(stack, 'backlog', final, 'environment', tsBase);
}

function fdHardLimit(): number {
  return Number(execSync('sh -c "ulimit -Hn"').toString().trim()) || 1024;
}

// ---------------------------------------------------------------------------------------------------
async function stepConnections(stack: Stack, nb: BenchDevice[]): Promise<void> {
  enter(`connections: edge RSS with ${P.idleConns.map((n) => fmt(n)).join(' and ')} mostly idle devices (one message per device per minute)`);
  if (!QUICK) {
    say('  restarting the edge for a clean RSS baseline');
    await stack.edge.stop(30_000);
    await stack.startEdge();
    await sleep(2000);
  }
  const baseRss = rssMiB(stack.edge.pid);
  details.connections = { edge_rss_mib_idle_no_connections: round(baseRss, 1) } as Record<string, unknown>;
  const addrs = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];
  // One process cannot hold more sockets than its open-files limit, and only a process with
  // CAP_SYS_RESOURCE can raise the hard limit: the edge (and each load generator) gets what is allowed.
  const hard = fdHardLimit();
  const fdCap = hard - 1000;
  const targets = P.idleConns.map((n) => Math.min(n, fdCap));
  if (targets.some((n, i) => n < P.idleConns[i]!)) say(`  !! the open-files hard limit is ${fmt(hard)} and cannot be raised here (no CAP_SYS_RESOURCE): one edge process can hold at most ~${fmt(fdCap)} connections; larger counts are capped and extrapolated`);
  const maxN = Math.max(...targets);
  const tsBase = stepTs(4);
  const periodS = 60;
  const maxS = P.idleConns.length * (P.connHoldS + 60) + 60;
  const gen = new LoadGen(
    LOGS,
    'load-idle',
    loadOptions(stack, nb.slice(0, maxN), { connections: targets[0]!, window: 2, total: maxN * Math.ceil(maxS / periodS + 1), maxDurationMs: maxS * 1000, ratePerS: targets[0]! / periodS, tsBase, localAddresses: addrs, connectRatePerS: 4000, keepaliveS: 120, drainTimeoutMs: 10_000 }),
    undefined,
    1000,
    Math.min(hard, maxN + 10_000),
  );
  const sampler = new Sampler(stack, () => `connections: ${fmt(gen.last?.connected ?? 0)} connected, edge RSS ${fmt(rssMiB(stack.edge.pid))} MiB, ${fmt(gen.last?.refused ?? 0)} refused`, 1000);
  sampler.gen = gen;
  await gen.started();
  const results: Record<string, number> = {};
  const measured: [number, number][] = [];
  for (const [i, n] of targets.entries()) {
    const wanted = P.idleConns[i]!;
    gen.setConnections(n);
    gen.setRate(n / periodS);
    const deadline = Date.now() + 120_000;
    while ((gen.last?.connected ?? 0) < n * 0.995 && Date.now() < deadline && gen.proc.alive) await sleep(250);
    const connectedAt = Date.now();
    const meter = new CpuMeter({ edge: stack.edge.pid }).begin();
    let maxRss = 0;
    while (Date.now() - connectedAt < P.connHoldS * 1000) {
      await sleep(500);
      const r = rssMiB(stack.edge.pid);
      maxRss = Math.max(maxRss, r);
      timeline.push({ t: Date.now(), phase, edgeRssMiB: r });
    }
    const m = meter.end();
    const rss = rssMiB(stack.edge.pid);
    const connected = gen.last?.connected ?? 0;
    // The figure is the highest RSS seen while holding (a memory budget is about the peak; RSS at one
    // instant moves with the garbage collector).
    measured.push([connected, maxRss]);
    if (n === wanted && connected >= n * 0.995) results[`edge_rss_mib_${wanted / 1000}k_conns`] = round(maxRss, 1);
    else if (measured.length >= 2) {
      // Not measurable here: extrapolate linearly, and say so. The slope between the two measured points
      // can come out near zero (the heap had room already, the GC moved): take the steeper of that and
      // the slope from the idle baseline, so the figure errs high.
      const [[c1, r1], [c2, r2]] = measured.slice(-2) as [[number, number], [number, number]];
      const between = c2 > c1 ? (r2 - r1) / (c2 - c1) : 0;
      const fromIdle = c2 > 0 ? (r2 - baseRss) / c2 : 0;
      const slope = Math.max(between, fromIdle);
      results[`edge_rss_mib_${wanted / 1000}k_conns_extrapolated`] = round(r2 + slope * (wanted - c2), 0);
      (details.connections as Record<string, unknown>).extrapolation = `${round(slope * 1024, 1)} KiB per connection (the steeper of ${c1} → ${c2} connections: ${round(between * 1024, 1)}, and idle → ${c2}: ${round(fromIdle * 1024, 1)}), linear to ${wanted}`;
    }
    (details.connections as Record<string, unknown>)[`${wanted}`] = {
      target: n, connected: gen.last?.connected, rss_mib_end: round(rss, 1), rss_mib_max: round(maxRss, 1), edge_cores_while_holding: round(m.cpuS.edge! / m.wallS, 3), connect_s: round((connectedAt - (deadline - 120_000)) / 1000, 1) };
    say(`  ${fmt(gen.last?.connected ?? 0)} connected: edge RSS max ${fmt(maxRss, 1)} MiB (at the end ${fmt(rss, 1)}), edge ${fmt(m.cpuS.edge! / m.wallS, 3)} cores while holding`);
  }
  summary.edge_rss_mib_10k_conns = results.edge_rss_mib_10k_conns ?? null;
  summary.edge_rss_mib_50k_conns = results.edge_rss_mib_50k_conns ?? null;
  if (results.edge_rss_mib_50k_conns_extrapolated !== undefined) {
    summary.edge_rss_mib_50k_conns_extrapolated = results.edge_rss_mib_50k_conns_extrapolated;
    summary.edge_rss_50k_note = `not measured: open-files hard limit ${hard} (no CAP_SYS_RESOURCE to raise it); extrapolated from ${measured.map((m) => m[0]).join(' and ')} connections`;
  }
  gen.stop();
  const final = await gen.done;
  sampler.stop();
  await waitQuiet(stack, 30_000);
  await account(stack, 'connections', final, 'nbiot', tsBase);
}

// ---------------------------------------------------------------------------------------------------
async function stepProfile(stack: Stack, env: BenchDevice[]): Promise<void> {
  enter(`profiles: edge and cloud under full load with --cpu-prof (${P.profileS} s; figures of this step are not used, profiling slows them)`);
  rmSync(PROFILES, { recursive: true, force: true });
  mkdirSync(PROFILES, { recursive: true });
  await stack.stopEdgeAndCloud();
  const edgeDir = join(PROFILES, 'edge');
  const cloudDir = join(PROFILES, 'cloud');
  mkdirSync(edgeDir);
  mkdirSync(cloudDir);
  stack.o.nodeOptions = `--cpu-prof --cpu-prof-dir=${cloudDir}`;
  await stack.startCloud();
  stack.o.nodeOptions = `--cpu-prof --cpu-prof-dir=${edgeDir}`;
  await stack.startEdge();
  stack.o.nodeOptions = undefined;
  const gen = new LoadGen(LOGS, 'load-profile', loadOptions(stack, env, { total: 50_000_000, maxDurationMs: P.profileS * 1000, tsBase: stepTs(5) }));
  const sampler = new Sampler(stack, (s, perS) => `profiling: ${fmt(perS)} readings/s landed`);
  sampler.gen = gen;
  const final = await gen.done;
  sampler.stop();
  await waitQuiet(stack, 60_000);
  await stack.stopEdgeAndCloud();
  const out: Record<string, unknown> = {};
  for (const [who, dir] of [['edge', edgeDir], ['cloud', cloudDir]] as const) {
    const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f));
    if (!files.length) {
      say(`  no profile written by the ${who} (did it exit by itself on SIGTERM?)`);
      continue;
    }
    const s = summariseProfiles(files, 15);
    out[who] = s;
    say(`  ${who}: top self time (${files.length} profile(s), ${fmt(s.totalMs / 1000, 1)} s sampled)`);
    for (const g of s.byGroup.slice(0, 8)) say(`    ${g.pct.toFixed(1).padStart(5)}%  ${g.name}`);
  }
  writeFileSync(join(OUT, 'profiles-summary.json'), JSON.stringify(out, null, 2));
  details.profile_load = { acked: final.acked, seconds: P.profileS };
}

// ---------------------------------------------------------------------------------------------------
// Broker reference (bench/brokers.ts): bare mosquitto and aedes under the e2e step's load, on this box in
// this run. No subscriber (our edge has none either); the anchors doc measured brokers with one.
async function stepBrokers(stack: Stack, env: BenchDevice[]): Promise<void> {
  const seconds = Math.max(10, P.e2eS / 2);
  enter(`broker reference: bare mosquitto and aedes, no subscriber, e2e load (${env.length} connections × window ${WINDOW}, QoS 1, as fast as PUBACKs allow), ${seconds} s each, first 2 s skipped`);
  const r = await runBrokers({
    dir: WORK,
    logs: LOGS,
    say,
    progress,
    seconds,
    skipS: 2,
    window: WINDOW,
    load: (port, maxDurationMs) => loadOptions(stack, env, { total: 50_000_000, maxDurationMs, tsBase: stepTs(7), port }),
    background: { edge: stack.edge.pid, cloud: stack.cloud.pid, influxd: stack.influx.pid },
  });
  Object.assign(summary, r.summary);
  details.brokers = r.details;
  const e2e = summary.e2e_readings_per_s as number | undefined;
  const mosq = r.summary.broker_mosquitto_msgs_per_s;
  summary.e2e_ratio_to_mosquitto = e2e && mosq ? round(e2e / mosq, 3) : null;
}

// ---------------------------------------------------------------------------------------------------
function printTable(): void {
  const rowsOut: [string, string, string, string][] = [];
  const t = (key: string, label: string, target: string, ok?: (v: number) => boolean, d = 1) => {
    const v = summary[key];
    const n = typeof v === 'number' ? v : NaN;
    const mark = ok && Number.isFinite(n) ? (ok(n) ? 'ok' : 'MISS') : '';
    rowsOut.push([label, Number.isFinite(n) ? fmt(n, d) : 'n/a', target, mark]);
  };
  t('influx_ceiling_points_per_s', 'InfluxDB ceiling, points/s', 'reference', undefined, 0);
  t('influx_cpu_us_per_point', 'influxd CPU-µs per point', 'reference (~21)', undefined, 1);
  t('e2e_readings_per_s', 'end to end, readings/s landed', '', undefined, 0);
  t('e2e_ingest_puback_per_s', 'edge ingest, readings/s PUBACKed', '', undefined, 0);
  t('e2e_ratio_to_ceiling', 'end to end / ceiling', '≥ 0.4', (v) => v >= 0.4, 3);
  t('pipeline_cpu_us_per_reading', 'edge + cloud CPU-µs per reading', '≤ 20', (v) => v <= 20, 1);
  t('e2e_load_generator_cpu_us_per_msg', 'load generator CPU-µs per message', '(mqtt.js ~27)', undefined, 2);
  if (summary.broker_mosquitto_msgs_per_s !== undefined) {
    t('broker_mosquitto_msgs_per_s', 'bare mosquitto, msgs/s PUBACKed (no sub)', 'reference', undefined, 0);
    t('broker_mosquitto_cpu_us_per_msg', 'mosquitto CPU-µs per message', 'reference', undefined, 1);
    t('broker_aedes_msgs_per_s', 'bare aedes, msgs/s PUBACKed (no sub)', 'reference', undefined, 0);
    t('broker_aedes_cpu_us_per_msg', 'aedes CPU-µs per message', 'reference', undefined, 1);
    t('e2e_ratio_to_mosquitto', 'end to end / bare mosquitto', 'reference', undefined, 3);
  }
  t('alert_latency_ms_p50', `alert latency p50 ms (${summary.alert_latency_source ?? '-'})`, '', undefined, 1);
  t('alert_latency_ms_p99', 'alert latency p99 ms', '≤ 50', (v) => v <= 50, 1);
  t('login_flood_alarm_p99_ms_without', 'alarm-lane POST p99 ms, no login flood', '', undefined, 2);
  t('login_flood_alarm_p99_ms_with', 'alarm-lane POST p99 ms, login flood', '', undefined, 2);
  t('login_flood_alarm_p99_ratio', '  … ratio with / without the flood', '≤ 1.5', (v) => v <= 1.5, 2);
  t('edge_rss_mib_10k_conns', 'edge RSS MiB, 10k connections', '', undefined, 0);
  t('edge_rss_mib_50k_conns', 'edge RSS MiB, 50k connections', '≤ 1536', (v) => v <= 1536, 0);
  if (summary.edge_rss_mib_50k_conns_extrapolated !== undefined) t('edge_rss_mib_50k_conns_extrapolated', '  … extrapolated (fd limit, see summary)', '≤ 1536', (v) => v <= 1536, 0);
  t('uplink_bytes_per_reading', 'uplink bytes/reading (wire)', '≤ ½ line protocol gzip', (v) => v <= ((summary.line_protocol_gzip_bytes_per_reading as number) ?? 0) / 2, 2);
  t('line_protocol_gzip_bytes_per_reading', "gzip'd line protocol bytes/reading", 'reference', undefined, 2);
  t('backlog_drain_ratio', 'backlog drain rate / live rate', '≥ 3', (v) => v >= 3, 2);
  t('backlog_time_to_drain_s', 'backlog time to drain, s', '', undefined, 1);
  t('lost_readings', 'lost readings (PUBACKed, not in InfluxDB)', '= 0', (v) => v === 0, 0);
  if (summary.peer_nodered_readings_per_s !== undefined) {
    t('peer_nodered_readings_per_s', 'Node-RED + mosquitto, readings/s landed', '', undefined, 0);
    t('e2e_ratio_to_nodered', 'citysense / Node-RED', '≥ 5', (v) => v >= 5, 2);
    t('peer_nodered_lost_readings', 'Node-RED lost readings', '', undefined, 0);
  }
  const w = [0, 0, 0, 0];
  for (const r of rowsOut) r.forEach((c, i) => (w[i] = Math.max(w[i]!, c.length)));
  say('');
  for (const r of rowsOut) say(`  ${r[0].padEnd(w[0]!)}  ${r[1].padStart(w[1]!)}  ${r[2].padEnd(w[2]!)}  ${r[3]}`);
}

// ---------------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------------
/** A CTWing dataReport as the platform posts it (docs/protocols/ctwing.md): the smoke detector's frame as APPdata. */
function ctwingReport(device: string, sn: number, alarm: boolean): string {
  const f = Buffer.from([1, 80, 0xff, 0xa1, 10, 0, alarm ? 0xfa : 5, alarm ? 1 : 0]);
  return JSON.stringify({ messageType: 'dataReport', deviceId: device, IMEI: '', productId: '15000001', tenantId: '2000000001', timestamp: Date.now(), upPacketSN: sn, upDataSN: -1, serviceId: '', protocol: 'lwm2m', IMSI: 'undefined', payload: { APPdata: f.toString('base64') } });
}

async function stepPush(stack: Stack, hook: Hook): Promise<void> {
  enter(`NB-IoT through CTWing: ${fmt(PUSH.reports)} pushed reports (${PUSH.concurrency} at a time, as a platform's push pool), then ${PUSH.alarms} smoke alarms timed to the signed webhook`);
  const url = `http://127.0.0.1:${stack.ports.push}/push/ctwing/${PUSH_TOKEN}`;
  const post = async (body: string): Promise<number> => (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status;
  // 1. Reports: the push receiver's answer time (200 = durable in the edge queue) and the edge's CPU per report.
  const answerMs: number[] = [];
  let refused = 0;
  let next = 0;
  const meter = new CpuMeter({ edge: stack.edge.pid, cloud: stack.cloud.pid }).begin();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: PUSH.concurrency }, async () => {
      while (next < PUSH.reports && performance.now() - t0 < 120_000) {
        const i = next++;
        const started = performance.now();
        const status = await post(ctwingReport(pushDeviceId(i % PUSH.devices), 1000 + i, false));
        if (status === 200) answerMs.push(performance.now() - started);
        else refused++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = meter.end();
  const sent = answerMs.length + refused;
  const edgeCpuUs = ((cpu.cpuS.edge ?? NaN) * 1e6) / Math.max(1, answerMs.length);
  const cloudCpuUs = ((cpu.cpuS.cloud ?? NaN) * 1e6) / Math.max(1, answerMs.length);
  summary.push_reports_per_s = round(answerMs.length / seconds, 0);
  summary.push_answer_ms_p50 = round(pct(answerMs, 0.5), 2);
  summary.push_answer_ms_p99 = round(pct(answerMs, 0.99), 2);
  summary.push_edge_cpu_us_per_report = round(edgeCpuUs, 0);
  say(`  ${fmt(answerMs.length)}/${fmt(sent)} reports answered 200 in ${fmt(seconds, 1)} s (${fmt(answerMs.length / seconds)} reports/s); answer (durable in the queue) p50 ${fmt(pct(answerMs, 0.5), 2)} ms, p99 ${fmt(pct(answerMs, 0.99), 2)} ms`);
  say(`  CPU per report: edge ${fmt(edgeCpuUs)} µs (receiver + decode + queue + uplink), cloud ${fmt(cloudCpuUs)} µs`);
  await waitQuiet(stack, 30_000);
  // 2. Alarms: pushed → the fire system's signed webhook, one detector at a time (the alert step's method).
  const alarmMs: number[] = [];
  for (let i = 0; i < PUSH.alarms; i++) {
    const device = pushDeviceId(PUSH.devices - 1 - (i % PUSH.devices));
    const sentAt = performance.now();
    if ((await post(ctwingReport(device, 900_000 + i, true))) !== 200) continue;
    while (!hook.arrivals.has(device) && performance.now() - sentAt < 10_000) await sleep(2);
    const at = hook.arrivals.get(device);
    if (at !== undefined) alarmMs.push(at - sentAt);
    await sleep(100);
  }
  summary.push_alarm_webhook_ms_p50 = round(pct(alarmMs, 0.5), 1);
  summary.push_alarm_webhook_ms_p99 = round(pct(alarmMs, 0.99), 1);
  details.push = {
    reports: { sent, answered_200: answerMs.length, refused, seconds: round(seconds, 2), concurrency: PUSH.concurrency, devices: PUSH.devices },
    answer_ms: { p50: round(pct(answerMs, 0.5), 2), p99: round(pct(answerMs, 0.99), 2), max: round(Math.max(...answerMs), 2) },
    cpu_us_per_report: { edge: round(edgeCpuUs, 0), cloud: round(cloudCpuUs, 0) },
    alarm_to_webhook_ms: { samples: alarmMs.length, of: PUSH.alarms, p50: round(pct(alarmMs, 0.5), 1), p99: round(pct(alarmMs, 0.99), 1), max: round(Math.max(...alarmMs), 1) },
  };
  say(`  smoke alarm pushed by CTWing → signed webhook: p50 ${fmt(pct(alarmMs, 0.5), 1)} ms, p99 ${fmt(pct(alarmMs, 0.99), 1)} ms, max ${fmt(Math.max(...alarmMs), 1)} ms (${alarmMs.length}/${PUSH.alarms})`);
}

async function main(): Promise<void> {
  const warnings = checkQuietMachine();
  for (const w of warnings) say(`\n!!!!!!!! WARNING: ${w} !!!!!!!!\n`);
  rmSync(WORK, { recursive: true, force: true });
  rmSync(LOGS, { recursive: true, force: true });
  rmSync(join(OUT, 'profiles-summary.json'), { force: true });
  mkdirSync(WORK, { recursive: true });
  mkdirSync(LOGS, { recursive: true });
  const mach = machine();
  say(`citysense benchmark (${QUICK ? 'quick' : 'full'}${args.peers ? ', with peers' : ''}) on ${mach.nproc} cores, ${mach.memory_gib} GiB, Node ${mach.node}, ${mach.influxd}`);

  // No more idle devices than one edge process can hold sockets for (a 50k registry costs start time).
  const devs = makeDevices(ENV_DEVICES, Math.max(P.alertEvents, 10), Math.min(Math.max(...P.idleConns), fdHardLimit() - 1000));
  const hook = await startHookReceiver();
  const stack = new Stack({ dir: WORK, devices: [...devs.env, ...devs.fire, ...devs.fireTcp, ...devs.nb], pushDevices: PUSH.devices, webhookUrl: hook.url, log: say });
  let failed: unknown;
  const stopAll = async () => {
    await stack.stop().catch(() => undefined);
    hook.server.close();
  };
  process.on('SIGINT', () => {
    say('\ninterrupted: stopping the stack');
    void stopAll().then(() => process.exit(130));
  });
  try {
    enter('starting a private influxd, the cloud and the edge');
    await stack.startInflux();
    await fetch(`${stack.influx.url}/query?q=${encodeURIComponent(`CREATE DATABASE ${DB}`)}`, { method: 'POST' });
    if (want('ceiling')) await stepCeiling(stack);
    await stack.startCloud();
    // Steps that only talk to InfluxDB or the cloud (ceiling, login-flood) need no edge.
    const needsEdge = !only || ['e2e', 'brokers', 'alert', 'push', 'backlog', 'conns', 'profile'].some((s) => only.has(s));
    if (needsEdge) {
      await stack.startLink();
      const t = Date.now();
      await stack.startEdge();
      say(`  cloud ${stack.webhooks ? 'with' : 'without'} alert webhooks; edge up in ${fmt((Date.now() - t) / 1000, 1)} s with ${fmt(stack.o.devices.length)} registered devices`);
    }
    if (want('e2e')) await stepE2E(stack, devs.env);
    if (want('brokers')) await stepBrokers(stack, devs.env);
    if (want('alert')) await stepAlert(stack, devs.env, devs.fire, hook);
    if (want('alert') || want('alert-tcp')) await stepAlertTcp(stack, devs.fireTcp, hook);
    if (want('push')) await stepPush(stack, hook);
    if (want('login-flood')) await stepLoginFlood(stack);
    if (want('backlog')) await stepBacklog(stack, devs.env);
    if (want('conns')) await stepConnections(stack, devs.nb);
    if (only ? only.has('profile') : PROFILE) await stepProfile(stack, devs.env);
  } catch (err) {
    failed = err;
    say(`\nbenchmark step failed: ${err instanceof Error ? err.stack : String(err)}`);
  }
  await stopAll();
  if (args.peers && !failed) {
    enter('peer: Node-RED (mqtt in → influxdb out) against mosquitto, same readings');
    try {
      const r = await runPeers({ dir: join(OUT, 'peers'), logs: LOGS, quick: QUICK, say, progress, devices: devs.env, tsBase: stepTs(6) });
      Object.assign(summary, r.summary);
      details.peers = r.details;
      const e2e = summary.e2e_readings_per_s as number | undefined;
      if (e2e && r.summary.peer_nodered_readings_per_s) summary.e2e_ratio_to_nodered = round(e2e / r.summary.peer_nodered_readings_per_s, 2);
    } catch (err) {
      say(`  peer step failed: ${err instanceof Error ? err.message : String(err)}`);
      details.peers = { error: String(err) };
    }
  }
  phaseSpans.at(-1)!.to = Date.now();
  summary.lost_readings = lostTotal;
  const result = {
    ...summary,
    run: { mode: QUICK ? 'quick' : 'full', peers: args.peers, only: args.only ?? null, started: new Date(t0run).toISOString(), seconds: Math.round((Date.now() - t0run) / 1000), warnings, failed: failed ? String(failed) : null },
    machine: mach,
    lost_by_step: lostByStep,
    details,
  };
  writeFileSync(join(OUT, 'summary.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(OUT, 'timeline.json'), JSON.stringify({ phaseSpans, timeline }));
  const series: Series[] = [
    { name: 'readings/s landed in InfluxDB', axis: 'left', color: '#1f77b4', points: timeline.filter((p) => p.landedPerS !== undefined).map((p) => [p.t, p.landedPerS!]) },
    { name: 'readings/s PUBACKed to devices', axis: 'left', color: '#aec7e8', points: timeline.filter((p) => p.offeredPerS !== undefined).map((p) => [p.t, p.offeredPerS!]) },
    { name: 'PUBACK latency p99, ms', axis: 'right', color: '#ff7f0e', points: timeline.filter((p) => p.ackP99Ms !== undefined).map((p) => [p.t, p.ackP99Ms!]) },
    { name: `alert latency, ms (${summary.alert_latency_source ?? ''})`, axis: 'right', color: '#d62728', dots: true, points: timeline.filter((p) => p.alertMs !== undefined).map((p) => [p.t, p.alertMs!]) },
  ];
  writeFileSync(join(OUT, 'chart.svg'), chartSvg({ title: `citysense bench (${QUICK ? 'quick' : 'full'}), ${new Date(t0run).toISOString()}`, series, spans: phaseSpans, t0: t0run }));
  printTable();
  say(`\nwrote ${join('bench-results', 'summary.json')}, chart.svg, timeline.json, logs/ (${fmt((Date.now() - t0run) / 1000)} s)`);
  if (existsSync(join(OUT, 'profiles-summary.json'))) say('profiles: bench-results/profiles/, summary in bench-results/profiles-summary.json');
  process.exit(failed ? 1 : 0);
}

void main();
