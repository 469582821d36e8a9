// The broker reference step (`brokers`): what a bare MQTT broker does on the same box with the same load
// as the end-to-end step, measured in the same run, so the end-to-end figure can be read against it.
// For (a) Debian's mosquitto and (b) a bare aedes 1.2 (bench/workers/aedes-broker.ts), each on a free
// loopback port, the same load generator with the same options as the e2e step (same devices/topics,
// connection count, window, QoS 1, as fast as PUBACKs allow) runs for the given seconds; the first
// seconds are skipped and the rest measured: PUBACKed messages/s (from the generator's snapshots), the
// broker's CPU-µs per message and the load generator's.
//
// Nobody subscribes: the brokers only take in and PUBACK, as our edge does (it has no subscriber
// either). docs' anchors (/work/shared/anchors.md) measured brokers with one subscriber (fan-out
// included), so their figures are not the same measurement as these.
//
// Bounded: every wait has a deadline; broker and generator are killed at the end, also on failure
// (and the mosquitto child when this process exits). Loopback only.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadOptions, LoadSnapshot } from '../device-sim/src/load/generator.ts';
import { freePort, portInUse, waitFor } from '../scripts/influxd.ts';
import { LoadGen } from './lib/loadgen.ts';
import { CpuMeter, NodeProc, ROOT, sleep } from './lib/proc.ts';
import { ensureMosquitto, mosquittoConfig } from './peers.ts';

export interface BrokerRefOptions {
  /** Where the mosquitto config goes. */
  dir: string;
  logs: string;
  say: (s: string) => void;
  progress: (s: string) => void;
  /** Seconds of load per broker; the first `skipS` of them are not measured. */
  seconds: number;
  skipS: number;
  window: number;
  /** The e2e step's load options, pointed at `port`, bounded at `maxDurationMs`. */
  load: (port: number, maxDurationMs: number) => LoadOptions;
  /** Other processes on the box (the idle stack): their CPU during the window is reported as background. */
  background?: Record<string, number>;
}

interface Measured {
  msgs_per_s: number;
  cpu_us_per_msg: number;
  loadgen_cpu_us_per_msg: number;
  measured_seconds: number;
  acked_in_window: number;
  connected: number;
  refused: number;
  lost: number;
  puback_ms_last_interval: { p50: number; p99: number };
  cores: Record<string, number>;
  system_share_of_cpu: Record<string, number>;
}

const r2 = (n: number, d = 2) => (Number.isFinite(n) ? Math.round(n * 10 ** d) / 10 ** d : NaN);
const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : 'n/a');

/** Drives one broker (already listening on `port`) with the e2e load and measures it. */
async function measure(name: string, brokerPid: number, port: number, o: BrokerRefOptions): Promise<Measured> {
  const runMs = o.seconds * 1000;
  let startedAt = 0;
  let first: LoadSnapshot | undefined;
  let a: LoadSnapshot | undefined;
  let b: LoadSnapshot | undefined;
  let prev: LoadSnapshot | undefined;
  let meter: CpuMeter | undefined;
  let m: ReturnType<CpuMeter['end']> | undefined;
  // 1.5 s more than the run: the generator is still at full load when the last snapshot is taken.
  const gen: LoadGen = new LoadGen(
    o.logs,
    `load-broker-${name}`,
    o.load(port, runMs + 1500),
    (s) => {
      first ??= s;
      const el = s.t - (startedAt || s.t);
      if (!a && el >= o.skipS * 1000) {
        a = s;
        meter = new CpuMeter({ broker: brokerPid, loadgen: gen.proc.pid, ...o.background }).begin();
      } else if (a && !b && el >= runMs) {
        m = meter!.end();
        b = s;
      }
      const perS = prev && s.t > prev.t ? ((s.acked - prev.acked) * 1000) / (s.t - prev.t) : NaN;
      prev = s;
      o.progress(`${name}: ${fmt(perS)} msgs/s PUBACKed, ${s.connected} connected, ack p99 ${fmt(s.ackP99Ms, 1)} ms`);
    },
    500,
  );
  try {
    await Promise.race([gen.started(), sleep(30_000).then(() => Promise.reject(new Error('the load generator did not start within 30 s')))]);
    startedAt = Date.now();
    const deadline = startedAt + runMs + 20_000;
    while (!b && gen.proc.alive && Date.now() < deadline) await sleep(100);
    gen.stop();
    await Promise.race([gen.done.catch(() => undefined), sleep(15_000)]);
    if (!a || !b || !m) throw new Error(`no measurement window (generator ${gen.proc.alive ? 'still running' : `exited with ${gen.proc.exitCode}`}; last snapshot: ${JSON.stringify(gen.last ?? first ?? null)}); see logs/load-broker-${name}.log`);
    const acked = b.acked - a.acked;
    const wallS = (b.t - a.t) / 1000;
    if (acked <= 0) throw new Error(`nothing was PUBACKed in the window (${b.connected} connected, ${b.refused} refused)`);
    return {
      msgs_per_s: Math.round(acked / wallS),
      cpu_us_per_msg: r2((m.cpuS.broker! * 1e6) / acked),
      loadgen_cpu_us_per_msg: r2((m.cpuS.loadgen! * 1e6) / acked),
      measured_seconds: r2(wallS, 1),
      acked_in_window: acked,
      connected: b.connected,
      refused: b.refused,
      lost: b.lost,
      puback_ms_last_interval: { p50: r2(b.ackP50Ms, 1), p99: r2(b.ackP99Ms, 1) },
      cores: Object.fromEntries(Object.entries(m.cpuS).map(([k, v]) => [k, r2(v / m!.wallS)])),
      system_share_of_cpu: Object.fromEntries(Object.entries(m.systemS).map(([k, v]) => [k, r2(v / m!.cpuS[k]!)])),
    };
  } finally {
    await gen.proc.stop(5000);
  }
}

function report(o: BrokerRefOptions, name: string, r: Measured): void {
  const bg = Object.keys(o.background ?? {});
  o.say(
    `  ${name}: ${fmt(r.msgs_per_s)} msgs/s PUBACKed (${r.connected} connections, ${fmt(r.measured_seconds, 1)} s measured); broker ${fmt(r.cpu_us_per_msg, 1)} CPU-µs/msg (${fmt(r.cores.broker!, 2)} cores), load generator ${fmt(r.loadgen_cpu_us_per_msg, 1)} CPU-µs/msg (${fmt(r.cores.loadgen!, 2)} cores)` +
      (bg.length ? `; idle stack ${fmt(bg.reduce((s, k) => s + (r.cores[k] ?? 0), 0), 2)} cores` : ''),
  );
}

async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 3000);
  await Promise.race([gone, sleep(5000)]);
  clearTimeout(t);
}

async function runMosquitto(o: BrokerRefOptions): Promise<{ version: string; result: Measured }> {
  const bin = ensureMosquitto(o.say);
  const vs = spawnSync(bin, ['-h'], { encoding: 'utf8', timeout: 5000 });
  const version = /mosquitto version (\S+)/.exec(`${vs.stdout}${vs.stderr}`)?.[1] ?? 'unknown';
  const port = await freePort();
  mkdirSync(o.dir, { recursive: true });
  const conf = join(o.dir, 'mosquitto-broker-ref.conf');
  writeFileSync(conf, mosquittoConfig(port, Math.max(100, o.window)));
  const child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(join(o.logs, 'broker-mosquitto.log'));
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  try {
    await waitFor('mosquitto to listen', async () => {
      if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}; see logs/broker-mosquitto.log`);
      return portInUse(port);
    }, 10_000, 100);
    return { version, result: await measure('mosquitto', child.pid!, port, o) };
  } finally {
    await stopChild(child);
    process.off('exit', killOnExit);
  }
}

async function runAedes(o: BrokerRefOptions): Promise<{ version: string; result: Measured }> {
  const version = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'aedes', 'package.json'), 'utf8')) as { version: string }).version;
  const p = new NodeProc({ name: 'broker-aedes', script: 'bench/workers/aedes-broker.ts', logFile: join(o.logs, 'broker-aedes.log'), ipc: true });
  try {
    const port = await Promise.race([
      new Promise<number>((r) => p.child.on('message', (m: { type: string; port: number }) => m.type === 'ready' && r(m.port))),
      p.exited.then((c) => Promise.reject(new Error(`the aedes broker exited with ${c}; see logs/broker-aedes.log`))),
      sleep(30_000).then(() => Promise.reject(new Error('the aedes broker did not listen within 30 s'))),
    ]);
    return { version, result: await measure('aedes', p.pid, port, o) };
  } finally {
    await p.stop(5000);
  }
}

/** Runs both brokers one after the other; a broker that fails gets null figures and an error in the details. */
export async function runBrokers(o: BrokerRefOptions): Promise<{ summary: Record<string, number | null>; details: Record<string, unknown> }> {
  const summary: Record<string, number | null> = {};
  const details: Record<string, unknown> = {
    subscribers: 0,
    note: 'bare brokers, nobody subscribed (as our edge); the anchors doc measured with one subscriber',
    load_seconds_each: o.seconds,
    skipped_seconds: o.skipS,
    window: o.window,
    qos: 1,
  };
  for (const [name, run] of [
    ['mosquitto', runMosquitto],
    ['aedes', runAedes],
  ] as const) {
    try {
      const { version, result } = await run(o);
      summary[`broker_${name}_msgs_per_s`] = result.msgs_per_s;
      summary[`broker_${name}_cpu_us_per_msg`] = result.cpu_us_per_msg;
      details[name] = { version, ...result };
      report(o, `${name} ${version}`, result);
    } catch (err) {
      summary[`broker_${name}_msgs_per_s`] = null;
      summary[`broker_${name}_cpu_us_per_msg`] = null;
      details[name] = { error: err instanceof Error ? err.message : String(err) };
      o.say(`  ${name}: failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { summary, details };
}
