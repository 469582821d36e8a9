// `npm start`: the whole citysense demo on one machine. Supervises InfluxDB (unless INFLUX_URL points at
// one), the cloud, one edge and the device simulators; provisions the demo registry of contracts.md;
// prints where each part listens and how to publish and query; stops everything on Ctrl-C.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import prettyPino from 'pino-pretty';
import { generateDevices, registryYaml, type SimDevice } from '@citysense/device-sim';
import { freePort, influxdConfig, waitFor } from './influxd.ts';
import { Supervisor, type Component } from './supervisor.ts';

const ROOT = resolve(import.meta.dirname, '..');
const { values: opts } = parseArgs({
  options: {
    'sim-devices': { type: 'string', default: '5' },
    'interval-ms': { type: 'string', default: '5000' },
    'no-sim': { type: 'boolean', default: false },
    verbose: { type: 'boolean', short: 'v', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  process.stdout.write(`usage: npm start [-- --sim-devices N] [--interval-ms MS] [--no-sim] [--verbose]
Environment: INFLUX_URL (use your InfluxDB instead of a private one), CITYSENSE_DATA_DIR (default .data),
CITYSENSE_INFLUX_PORT (8086), CITYSENSE_CLOUD_PORT (8080), CITYSENSE_EDGE_MQTT_PORT (1883),
CITYSENSE_EDGE_HTTP_PORT (8081).
`);
  process.exit(0);
}

const env = process.env;
const DATA = resolve(ROOT, env.CITYSENSE_DATA_DIR ?? '.data');
const DEMO = join(DATA, 'demo');
const ports = {
  influx: Number(env.CITYSENSE_INFLUX_PORT ?? 8086),
  cloud: Number(env.CITYSENSE_CLOUD_PORT ?? 8080),
  mqtt: Number(env.CITYSENSE_EDGE_MQTT_PORT ?? 1883),
  edgeHttp: Number(env.CITYSENSE_EDGE_HTTP_PORT ?? 8081),
};
const EDGE_ID = 'edge-1';
// The demo edge's credential. Only its SHA-256 goes into the cloud's config; a deployment keeps the
// plain token in its secret store and passes it as CITYSENSE_EDGE_TOKEN.
const EDGE_TOKEN = 'demo-edge-1-token';

/** The demo registry of contracts.md, plus simulated devices so the charts have something to show. */
const DEMO_DEVICES: SimDevice[] = [
  { id: 'demo-env-001', family: 'environment', secret: 'demo-env-001-secret', district: 'jinshui', tags: { site: 'jinshui-park', model: 'AQM-9' } },
  { id: 'demo-fire-001', family: 'fire', secret: 'demo-fire-001-secret', district: 'zhongyuan', tags: { site: 'zhongyuan-tower', model: 'FAC-2' } },
  { id: 'demo-nb-001', family: 'nbiot', secret: 'demo-nb-001-secret', district: 'guancheng', tags: { model: 'SD-NB1' } },
];

async function portInUse(port: number): Promise<boolean> {
  return new Promise((done) => {
    const sock = createConnection({ host: '127.0.0.1', port }, () => {
      sock.destroy();
      done(true);
    });
    sock.on('error', () => done(false));
  });
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url).catch(() => undefined);
  return res !== undefined && res.status < 300;
}

const pretty = prettyPino.prettyFactory({ colorize: process.stdout.isTTY, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' });
/** pino's JSON lines made readable; other lines as they are. */
function readable(line: string): string | undefined {
  if (!line.startsWith('{')) return line;
  try {
    return pretty(line).trimEnd();
  } catch {
    return line;
  }
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

async function main(): Promise<void> {
  mkdirSync(DEMO, { recursive: true });
  const busy: string[] = [];
  for (const [name, port] of Object.entries({ cloud: ports.cloud, mqtt: ports.mqtt, edgeHttp: ports.edgeHttp })) {
    if (await portInUse(port)) busy.push(`${name} port ${port}`);
  }
  if (!env.INFLUX_URL && (await portInUse(ports.influx))) busy.push(`InfluxDB port ${ports.influx} (to use that InfluxDB, set INFLUX_URL=http://127.0.0.1:${ports.influx})`);
  if (busy.length) {
    process.stderr.write(`citysense demo: these ports are taken: ${busy.join('; ')}.\nStop what holds them, or move the demo with the environment variables listed by 'npm start -- --help'.\n`);
    process.exit(1);
  }

  const sim = opts['no-sim'] ? [] : generateDevices({ families: ['environment', 'fire', 'nbiot'], perFamily: Number(opts['sim-devices']), seed: 2026 });
  const devices = [...DEMO_DEVICES, ...sim];
  const registryFile = join(DEMO, 'registry.yaml');
  writeFileSync(registryFile, registryYaml(devices, 2026));
  const influxUrl = env.INFLUX_URL ?? `http://127.0.0.1:${ports.influx}`;
  writeFileSync(
    join(DEMO, 'cloud.yaml'),
    `# Written by npm start (scripts/demo.ts) at each start.
listen: { host: 127.0.0.1, port: ${ports.cloud} }
influx: { url: ${influxUrl}, database: citysense }
auth:
  mode: token
  edges:
    - id: ${EDGE_ID}
      tokenSha256: ${sha256Hex(EDGE_TOKEN)}
`,
  );
  writeFileSync(
    join(DEMO, 'edge.yaml'),
    `# Written by npm start (scripts/demo.ts) at each start.
edgeId: ${EDGE_ID}
dataDir: ${join(DATA, 'edge')}
mqtt: { host: 0.0.0.0, port: ${ports.mqtt} }
http: { host: 127.0.0.1, port: ${ports.edgeHttp} }
registry: { file: registry.yaml }
cloud: { url: http://127.0.0.1:${ports.cloud} }
`,
  );

  const sup = new Supervisor();
  const tsx = join(ROOT, 'node_modules', '.bin', 'tsx');
  const logLevel = opts.verbose ? 'info' : 'warn';
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping: simulators, edge (flushes its batches), cloud, InfluxDB ...\n');
    await sup.stopAll();
    process.stdout.write('stopped.\n');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());

  if (!env.INFLUX_URL) {
    const dir = join(DATA, 'influxdb');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'influxdb.conf'), influxdConfig(dir, ports.influx, await freePort()));
    const influxd = sup.add({ name: 'influxdb', command: 'influxd', args: ['run', '-config', join(dir, 'influxdb.conf')], format: (l) => (opts.verbose ? l : undefined) });
    influxd.start();
    await waitFor('InfluxDB to answer /ping', async () => (await fetch(`${influxUrl}/ping`).catch(() => undefined))?.status === 204, 60_000);
    influxd.say(`InfluxDB 1.x on ${influxUrl}, data in ${dir}`);
  }

  const cloud = sup.add({
    name: 'cloud',
    command: tsx,
    args: ['cloud/src/main.ts', '--config', join(DEMO, 'cloud.yaml')],
    cwd: ROOT,
    env: { CITYSENSE_CLOUD_LOG_LEVEL: logLevel },
    format: readable,
  });
  cloud.start();
  await waitFor('the cloud to answer /healthz', () => httpOk(`http://127.0.0.1:${ports.cloud}/healthz`), 60_000);
  cloud.say(`cloud on http://127.0.0.1:${ports.cloud}`);

  const edge = sup.add({
    name: 'edge',
    command: tsx,
    args: ['edge/src/main.ts', '--config', join(DEMO, 'edge.yaml')],
    cwd: ROOT,
    env: { CITYSENSE_EDGE_TOKEN: EDGE_TOKEN, CITYSENSE_EDGE_LOG_LEVEL: logLevel },
    format: readable,
  });
  edge.start();
  await waitFor('the edge to answer /healthz', () => httpOk(`http://127.0.0.1:${ports.edgeHttp}/healthz`), 60_000);
  edge.say(`edge ${EDGE_ID}: MQTT on 0.0.0.0:${ports.mqtt}, health and metrics on http://127.0.0.1:${ports.edgeHttp}`);

  let simulator: Component | undefined;
  if (!opts['no-sim']) {
    simulator = sup.add({
      name: 'sim',
      command: tsx,
      args: [
        'device-sim/src/cli.ts',
        '--url',
        `mqtt://127.0.0.1:${ports.mqtt}`,
        '--registry',
        registryFile,
        '--interval-ms',
        String(opts['interval-ms']),
        '--forever',
        '--events',
      ],
      cwd: ROOT,
      format: readable,
    });
    simulator.start();
  }

  const now = Date.now();
  process.stdout.write(`
\x1b[1mcitysense demo is running\x1b[0m  (Ctrl-C stops everything)

  InfluxDB        ${influxUrl}  database citysense
  cloud           http://127.0.0.1:${ports.cloud}   (/healthz, /metrics, POST /v1/batches)
  edge ${EDGE_ID}     mqtt://127.0.0.1:${ports.mqtt}   health/metrics http://127.0.0.1:${ports.edgeHttp}/metrics
  simulators      ${sim.length} devices + ${DEMO_DEVICES.length} demo devices, one reading each per ${opts['interval-ms']} ms
  registry        ${registryFile}

Publish a reading as demo-env-001:
  mosquitto_pub -h 127.0.0.1 -p ${ports.mqtt} -u demo-env-001 -P demo-env-001-secret -q 1 \\
    -t devices/demo-env-001/telemetry -m '{"ts": ${now}, "metrics": {"pm25": 35.2, "pm10": 61}}'

Query it:
  curl -sG ${influxUrl}/query --data-urlencode db=citysense \\
    --data-urlencode "q=SELECT * FROM environment WHERE device_id='demo-env-001' ORDER BY time DESC LIMIT 5"

`);
}

main().catch((err: unknown) => {
  process.stderr.write(`citysense demo: ${(err as Error).message ?? String(err)}\n`);
  process.exit(1);
});
