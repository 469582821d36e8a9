// `--peers`: the same readings through the usual do-it-yourself stack — mosquitto (Debian's package)
// and a Node-RED flow (mqtt in → function → influxdb out) — into the same kind of private influxd.
// Node-RED is installed at run time into a throwaway folder under bench-results/ (never a dependency of
// the product); mosquitto is installed with apt-get when missing, as root. Loopback only; bounded.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { freePort, influxQuery, rows, startInfluxd, waitFor } from '../scripts/influxd.ts';
import { LoadGen } from './lib/loadgen.ts';
import { CpuMeter, sleep } from './lib/proc.ts';
import type { BenchDevice } from './lib/stack.ts';

export interface PeerOptions {
  dir: string;
  logs: string;
  quick: boolean;
  say: (s: string) => void;
  progress: (s: string) => void;
  devices: BenchDevice[];
  tsBase: number;
}

/** The path of Debian's mosquitto binary, installed with apt-get (as root) when missing. Also used by bench/brokers.ts. */
export function ensureMosquitto(say: (s: string) => void): string {
  const bin = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find(existsSync);
  if (bin) return bin;
  if (process.getuid?.() !== 0) throw new Error('mosquitto is not installed and this is not root: apt-get install mosquitto');
  say('  installing Debian\'s mosquitto (apt-get) ...');
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'mosquitto'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  const after = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find(existsSync);
  if (!after) throw new Error('apt-get install mosquitto did not give a mosquitto binary');
  return after;
}

/** A mosquitto config: one loopback listener, anonymous, no persistence, errors to stderr. Also used by bench/brokers.ts. */
export function mosquittoConfig(port: number, maxInflight = 100): string {
  return `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages ${maxInflight}\nmax_queued_messages 1000000\nlog_dest stderr\nlog_type error\n`;
}

function ensureNodeRed(dir: string, say: (s: string) => void): string {
  const red = join(dir, 'node_modules', 'node-red', 'red.js');
  if (existsSync(red) && existsSync(join(dir, 'node_modules', 'node-red-contrib-influxdb'))) return red;
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'package.json'))) writeFileSync(join(dir, 'package.json'), '{"name":"bench-peer-nodered","private":true}\n');
  say('  installing node-red and node-red-contrib-influxdb into bench-results/peers/nodered (npm, a minute or two) ...');
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', 'node-red', 'node-red-contrib-influxdb'], { cwd: dir, stdio: 'ignore' });
  if (!existsSync(red)) throw new Error('npm install node-red did not give node_modules/node-red/red.js');
  return red;
}

/** The flow: one reading per MQTT message → one InfluxDB write per message, as the palette suggests. */
function flow(mqttPort: number, influxPort: number, db: string) {
  return [
    { id: 'tab1', type: 'tab', label: 'bench' },
    { id: 'broker1', type: 'mqtt-broker', name: 'mosquitto', broker: '127.0.0.1', port: String(mqttPort), clientid: 'nodered-bench', autoConnect: true, usetls: false, protocolVersion: '4', keepalive: '60', cleansession: true },
    { id: 'influx1', type: 'influxdb', hostname: '127.0.0.1', port: String(influxPort), protocol: 'http', database: db, name: 'influx', usetls: false, influxdbVersion: '1.x' },
    { id: 'in1', type: 'mqtt in', z: 'tab1', name: '', topic: 'devices/+/telemetry', qos: '1', datatype: 'json', broker: 'broker1', nl: false, rap: false, inputs: 0, x: 100, y: 100, wires: [['fn1']] },
    {
      id: 'fn1',
      type: 'function',
      z: 'tab1',
      name: 'to point',
      func: "const m = msg.payload; const fields = Object.assign({}, m.metrics); fields.time = new Date(m.ts); msg.payload = [fields, { device_id: msg.topic.split('/')[1] }]; return msg;",
      outputs: 1,
      x: 300,
      y: 100,
      wires: [['out1']],
    },
    { id: 'out1', type: 'influxdb out', z: 'tab1', influxdb: 'influx1', name: '', measurement: 'environment', precision: 'ms', retentionPolicy: '', x: 500, y: 100, wires: [] },
  ];
}

export async function runPeers(o: PeerOptions): Promise<{ summary: Record<string, number>; details: Record<string, unknown> }> {
  const mosq = ensureMosquitto(o.say);
  const red = ensureNodeRed(join(o.dir, 'nodered'), o.say);
  const influx = await startInfluxd({ dir: join(o.dir, 'influxdb'), removeOnStop: true });
  const db = 'peer';
  await fetch(`${influx.url}/query?q=${encodeURIComponent(`CREATE DATABASE ${db}`)}`, { method: 'POST' });
  const mqttPort = await freePort();
  const uiPort = await freePort();
  writeFileSync(join(o.dir, 'mosquitto.conf'), mosquittoConfig(mqttPort));
  const procs: ChildProcess[] = [];
  const start = (name: string, cmd: string, args: string[], cwd?: string) => {
    const c = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const log = createWriteStream(join(o.logs, `${name}.log`));
    c.stdout!.pipe(log);
    c.stderr!.pipe(log);
    procs.push(c);
    return c;
  };
  const userDir = join(o.dir, 'nodered', 'user');
  mkdirSync(userDir, { recursive: true });
  writeFileSync(join(userDir, 'flows.json'), JSON.stringify(flow(mqttPort, influx.port, db)));
  writeFileSync(join(userDir, 'settings.js'), `module.exports = { uiHost: '127.0.0.1', uiPort: ${uiPort}, flowFile: 'flows.json', httpAdminRoot: '/admin', httpNodeRoot: false, logging: { console: { level: 'warn' } }, editorTheme: { tours: false } };\n`);
  try {
    const m = start('mosquitto', mosq, ['-c', join(o.dir, 'mosquitto.conf')]);
    const nr = start('nodered', process.execPath, [red, '--userDir', userDir, '--settings', join(userDir, 'settings.js')], join(o.dir, 'nodered'));
    await waitFor('Node-RED to start', async () => (await fetch(`http://127.0.0.1:${uiPort}/admin/flows`).catch(() => undefined))?.ok ?? false, 90_000, 250);
    await sleep(3000); // its MQTT subscription
    const total = o.quick ? 20_000 : 100_000;
    const maxS = o.quick ? 30 : 90;
    const gen = new LoadGen(o.logs, 'load-peer', {
      host: '127.0.0.1',
      port: mqttPort,
      devices: o.devices.map((d) => ({ id: d.id, secret: d.secret })),
      window: 32,
      qos: 1,
      total,
      maxDurationMs: maxS * 1000,
      tsBase: o.tsBase,
      drainTimeoutMs: 20_000,
    });
    const meter = new CpuMeter({ nodered: nr.pid!, mosquitto: m.pid!, influxd: influx.pid }).begin();
    const t0 = Date.now();
    const count = async () => Number(rows(await influxQuery(influx.url, db, 'SELECT count("pm25") FROM environment'))[0]?.count ?? 0);
    let landed = 0;
    const tick = setInterval(() => o.progress(`Node-RED: ${landed} readings landed, ${gen.last?.acked ?? 0} published`), 1000);
    const final = await gen.done;
    // Until the count stops growing for 5 s (or 60 s), what Node-RED wrote.
    let lastChange = Date.now();
    let lastAt = Date.now();
    const deadline = Date.now() + 60_000;
    while (Date.now() - lastChange < 5000 && Date.now() < deadline) {
      const c = await count();
      if (c !== landed) {
        landed = c;
        lastChange = Date.now();
        lastAt = lastChange;
      }
      await sleep(500);
    }
    clearInterval(tick);
    const cpu = meter.end();
    const seconds = (lastAt - t0) / 1000;
    const perS = landed / seconds;
    const lost = Math.max(0, final.acked - landed);
    o.say(`  Node-RED: ${landed} of ${final.acked} published readings landed in ${seconds.toFixed(1)} s = ${Math.round(perS)} readings/s; lost ${lost}; Node-RED ${(cpu.cpuS.nodered! / cpu.wallS).toFixed(2)} cores`);
    return {
      summary: { peer_nodered_readings_per_s: Math.round(perS), peer_nodered_lost_readings: lost },
      details: {
        flow: 'mqtt in (QoS 1, json) → function → influxdb out (one write per message)',
        published: final.acked,
        landed,
        seconds: Math.round(seconds * 10) / 10,
        cores: Object.fromEntries(Object.entries(cpu.cpuS).map(([k, v]) => [k, Math.round((v / cpu.wallS) * 100) / 100])),
        nodered_cpu_us_per_landed_reading: landed ? Math.round((cpu.cpuS.nodered! * 1e6) / landed) : null,
      },
    };
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await sleep(500);
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    await influx.stop();
  }
}
