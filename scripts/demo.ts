// `npm start`: the whole citysense demo on one machine. Supervises InfluxDB (unless INFLUX_URL points at
// one), the cloud, one edge and the device simulators; provisions the demo registry of contracts.md;
// prints where each part listens and how to publish and query; stops everything on Ctrl-C.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import prettyPino from 'pino-pretty';
import YAML from 'yaml';
import mqtt from 'mqtt';
import { generateDevices, registryYaml } from '@citysense/device-sim';
import { makeOpcuaIdentity, type OpcuaIdentity } from './opcua-certs.ts';
import { startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.ts';
import { randomBytes } from 'node:crypto';
import { freePort, influxdConfig, portInUse, waitFor } from './influxd.ts';
import { Supervisor, type Component } from './supervisor.ts';
import { csvCell, quoteCell } from '../cloud/src/csv/cell.ts';

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
Environment:
  INFLUX_URL                   use your InfluxDB instead of a private one
  CITYSENSE_DATA_DIR           where the demo keeps its data (default .data)
  CITYSENSE_DEMO_HOST          the address every demo listener binds to (default 127.0.0.1: this machine
                               only; 0.0.0.0 exposes them, with the published demo passwords, on purpose)
  CITYSENSE_WEBHOOK_URL        send the demo's webhooks there instead of to the demo's receiver
Ports:
  CITYSENSE_INFLUX_PORT        8086  the private InfluxDB (always on 127.0.0.1)
  CITYSENSE_CLOUD_PORT         8080  the cloud: API, console, /metrics
  CITYSENSE_EDGE_MQTT_PORT     1883  the edge's MQTT broker
  CITYSENSE_EDGE_HTTP_PORT     8081  the edge's /healthz and /metrics
  CITYSENSE_EDGE_HJ212_PORT    6212  the edge's HJ 212 TCP listener
  CITYSENSE_EDGE_PUSH_PORT     8082  the edge's HTTP push receivers (CTWing, OneNET)
  CITYSENSE_EDGE_GB26875_PORT  6213  the edge's GB/T 26875.3 TCP listener (fire-alarm transmission devices)
  CITYSENSE_SIM_OPCUA_PORT     4840  the simulated elevator controller (OPC-UA)
  CITYSENSE_DEMO_WEBHOOK_PORT  8090  the demo's webhook receiver
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
  hj212: Number(env.CITYSENSE_EDGE_HJ212_PORT ?? 6212),
  gb26875: Number(env.CITYSENSE_EDGE_GB26875_PORT ?? 6213),
  opcua: Number(env.CITYSENSE_SIM_OPCUA_PORT ?? 4840),
  webhook: Number(env.CITYSENSE_DEMO_WEBHOOK_PORT ?? 8090),
  edgeHttp: Number(env.CITYSENSE_EDGE_HTTP_PORT ?? 8081),
  push: Number(env.CITYSENSE_EDGE_PUSH_PORT ?? 8082),
};
// The demo's push receivers (contracts.md): the path token of every platform, and OneNET's signature token.
const PUSH_TOKEN = 'demo-push-token';
const ONENET_TOKEN = 'demo-onenet-token';
/**
 * Where the demo's listeners bind: loopback unless CITYSENSE_DEMO_HOST says otherwise. The demo's
 * passwords are published (contracts.md), so reaching it from the network must be a choice.
 */
const HOST = env.CITYSENSE_DEMO_HOST?.trim() || '127.0.0.1';
/** The address printed for clients on this machine: a wildcard bind is reached at loopback too. */
const SHOWN = HOST === '0.0.0.0' || HOST === '::' ? '127.0.0.1' : HOST;
const EDGE_ID = 'edge-1';
// The demo edge's credential. Only its SHA-256 goes into the cloud's config; a deployment keeps the
// plain token in its secret store and passes it as CITYSENSE_EDGE_TOKEN.
const EDGE_TOKEN = 'demo-edge-1-token';

/** The demo registry of contracts.md, plus simulated devices so the charts have something to show. */
// One device of each kind, each over its real protocol: JSON over MQTT, an HJ 212 station over TCP,
// NB-IoT binary frames over MQTT, a GB/T 26875.3 fire panel over MQTT, elevator cars over OPC-UA.
const DEMO_DEVICES: Record<string, unknown>[] = [
  { id: 'demo-env-001', family: 'environment', secret: 'demo-env-001-secret', district: 'jinshui', profile: 'environment-station-json', tags: { site: 'jinshui-park' } },
  { id: 'demo-hj212-001', family: 'environment', district: 'jinshui', profile: 'hj212-air-station', hj212: { mn: '010000A8900016F000169DC0', password: '123456' }, tags: { site: 'jinshui-road-station' } },
  { id: 'demo-fire-001', family: 'fire', secret: 'demo-fire-001-secret', district: 'zhongyuan', profile: 'fire-panel-gb26875', tags: { site: 'zhongyuan-tower' } },
  // The same kind of building connected the way real transmission devices are: straight over TCP to the
  // edge's GB/T 26875.3 listener, known by its 6-byte source address (no secret in that standard).
  { id: 'demo-fire-tcp-001', family: 'fire', district: 'zhongyuan', profile: 'fire-panel-gb26875-tcp', gb26875: { address: '790300000000' }, tags: { site: 'zhongyuan-tower' } },
  // A second panel, not simulated by the stack: for playing scenarios by hand (README: the fire scenario).
  { id: 'demo-fire-002', family: 'fire', secret: 'demo-fire-002-secret', district: 'zhongyuan', profile: 'fire-panel-gb26875', tags: { site: 'zhongyuan-mall' } },
  { id: 'demo-nb-001', family: 'nbiot', secret: 'demo-nb-001-secret', district: 'guancheng', profile: 'nb-smoke-detector' },
  { id: 'demo-nb-002', family: 'nbiot', secret: 'demo-nb-002-secret', district: 'guancheng', profile: 'nb-manhole-cover' },
  { id: 'demo-nb-003', family: 'nbiot', secret: 'demo-nb-003-secret', district: 'huiji', profile: 'nb-gas-detector' },
  // NB-IoT devices reporting through the operators' platforms, pushed to the edge's receivers (port 8082).
  { id: 'demo-ctwing-001', family: 'nbiot', district: 'guancheng', profile: 'nb-smoke-detector', ctwing: { device_id: 'demo-ctwing-001', imei: '860000000000001', product_id: '15000001' } },
  { id: 'demo-onenet-001', family: 'nbiot', district: 'huiji', profile: 'onenet-gas-detector', onenet: { product_id: 'onenet-demo-product', device_name: 'demo-onenet-001' } },
  ...[1, 2, 3, 4].map((car) => ({ id: `demo-elev-00${car}`, family: 'elevator', district: 'erqi', profile: 'elevator-opcua', opcua: { server: 'erqi-tower', vars: { car: String(car) } }, tags: { site: 'erqi-tower' } })),
];

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

const kv = (o: Record<string, string> | undefined) => (o ? Object.entries(o).map(([k, v]) => `${k}=${v}`).join(';') : '');

/**
 * Puts the demo devices into the cloud's registry — the one source of truth the edge syncs from — with
 * the demo's known secrets (POST /v1/devices/import as admin). Devices already there are kept.
 */
async function provisionRegistry(base: string, registryFile: string): Promise<string> {
  const login = await fetch(`${base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'admin-demo' }) });
  if (!login.ok) throw new Error(`demo: admin login refused (${login.status}): ${await login.text()}`);
  const { token } = (await login.json()) as { token: string };
  const devices = (YAML.parse(readFileSync(registryFile, 'utf8')) as { devices: Record<string, unknown>[] }).devices;
  const header = 'id,family,district,profile,site,secret,tags,hj212_mn,hj212_password,opcua_server,opcua_vars,ctwing_device_id,ctwing_imei,ctwing_product_id,onenet_product_id,onenet_device_name,gb26875_address';
  const rows = devices.map((d) => {
    const h = d.hj212 as { mn: string; password?: string } | undefined;
    const o = d.opcua as { server: string; vars?: Record<string, string> } | undefined;
    const g = d.gb26875 as { address: string } | undefined;
    // The registry keeps site as a field of its own and takes the model from the profile.
    const { site, model: _model, ...tags } = (d.tags ?? {}) as Record<string, string>;
    const ct = d.ctwing as { device_id?: string; imei?: string; product_id?: string } | undefined;
    const on = d.onenet as { product_id?: string; device_name?: string } | undefined;
    return [d.id, d.family, d.district, d.profile ?? 'generic-json', site, d.secret, kv(tags), h?.mn, h?.password, o?.server, kv(o?.vars), ct?.device_id, ct?.imei, ct?.product_id, on?.product_id, on?.device_name, g?.address]
      // Neutralised against formula injection like every CSV citysense writes; the credential columns
      // (secret, hj212_password) are taken by the import exactly as written, so they are only quoted.
      .map((v, i) => (i === 5 || i === 8 ? quoteCell(v) : csvCell(v)))
      .join(',');
  });
  const res = await fetch(`${base}/v1/devices/import?mode=partial`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' }, body: [header, ...rows].join('\n') + '\n' });
  if (!res.ok) throw new Error(`demo: registry import refused (${res.status}): ${(await res.text()).slice(0, 500)}`);
  const out = (await res.json()) as { results?: { status: string; error?: string }[] };
  const created = out.results?.filter((r) => r.status === 'created').length ?? 0;
  const refused = out.results?.filter((r) => r.status !== 'created' && r.error !== 'DEVICE_EXISTS') ?? [];
  if (refused.length) throw new Error(`demo: registry import refused rows: ${JSON.stringify(refused).slice(0, 500)}`);
  return `registry: ${created} demo devices added, ${devices.length - created} already there`;
}

/**
 * The elevator controller's and the edge's OPC-UA certificates, made once and kept in .data: each side
 * trusts exactly the other's certificate (SignAndEncrypt, Basic256Sha256), as a real site would be set up.
 */
async function demoOpcuaCertificates(dir: string): Promise<{ client: OpcuaIdentity; server: OpcuaIdentity }> {
  const file = join(dir, 'identities.json');
  if (existsSync(file)) {
    const ids = JSON.parse(readFileSync(file, 'utf8')) as { client: OpcuaIdentity; server: OpcuaIdentity; expires: number };
    if (ids.expires > Date.now() + 86400_000 && existsSync(ids.client.certificateFile) && existsSync(ids.server.certificateFile)) return ids;
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const client = await makeOpcuaIdentity(dir, 'edge', 'urn:citysense:edge:demo', 365);
  const server = await makeOpcuaIdentity(dir, 'elevator-controller', 'urn:citysense:elevator-sim:demo', 365);
  writePrivate(file, JSON.stringify({ client, server, expires: Date.now() + 364 * 86400_000 }));
  return { client, server };
}

/** The key that signs operator tokens: kept in .data so a restart of the cloud keeps everyone logged in. */
function demoAuthSecret(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret, { mode: 0o600 });
  return secret;
}

/** Files the demo writes that hold secrets (plain demo secrets, tokens, keys): owner only, also when rewritten. */
function writePrivate(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

async function main(): Promise<void> {
  mkdirSync(DEMO, { recursive: true });
  const busy: string[] = [];
  const webhookPort = env.CITYSENSE_WEBHOOK_URL ? {} : { webhook: ports.webhook };
  for (const [name, port] of Object.entries({ cloud: ports.cloud, mqtt: ports.mqtt, edgeHttp: ports.edgeHttp, hj212: ports.hj212, push: ports.push, gb26875: ports.gb26875, opcua: ports.opcua, ...webhookPort })) {
    if (await portInUse(port)) busy.push(`${name} port ${port}`);
  }
  if (!env.INFLUX_URL && (await portInUse(ports.influx))) busy.push(`InfluxDB port ${ports.influx} (to use that InfluxDB, set INFLUX_URL=http://127.0.0.1:${ports.influx})`);
  if (busy.length) {
    process.stderr.write(`citysense demo: these ports are taken: ${busy.join('; ')}.\nStop what holds them, or move the demo with the environment variables listed by 'npm start -- --help'.\n`);
    process.exit(1);
  }

  const sim = opts['no-sim'] ? [] : generateDevices({ families: ['environment', 'fire', 'nbiot'], perFamily: Number(opts['sim-devices']), seed: 2026 });
  const registryFile = join(DEMO, 'registry.yaml');
  writePrivate(
    registryFile,
    `# Written by npm start (scripts/demo.ts) at each start: the demo devices of contracts.md and simulated ones.\n${YAML.stringify({ devices: [...DEMO_DEVICES, ...YAML.parse(registryYaml(sim, 2026)).devices] })}`,
  );
  const certs = await demoOpcuaCertificates(join(DEMO, 'opcua'));
  // Your own alert rules: every .yaml/.yml/.json file here, read with the shipped ones at each start.
  // Made once and never rewritten by the demo (docs/alert-rules.md § Your own rules in the demo).
  const rulesDir = join(DEMO, 'rules.d');
  if (!existsSync(rulesDir)) {
    mkdirSync(rulesDir, { recursive: true });
    writeFileSync(
      join(rulesDir, 'README'),
      `Your own alert rules for the demo: put .yaml files here (docs/alert-rules.md), e.g. pm25-watch.yaml:

rules:
  - id: my-pm25-watch
    kind: threshold
    category: environment
    severity: minor
    metric: pm25
    above: 50
    match: { district: jinshui }

They are read, with cloud/rules/, each time the demo starts (restart it after a change); npm start never
touches this folder. A mistake stops the cloud with the file, the rule and the key.
`,
    );
  }
  const influxUrl = env.INFLUX_URL ?? `http://127.0.0.1:${ports.influx}`;
  writePrivate(
    join(DEMO, 'cloud.yaml'),
    `# Written by npm start (scripts/demo.ts) at each start.
listen: { host: ${HOST}, port: ${ports.cloud} }
store: { path: ${join(DATA, 'cloud', 'citysense-cloud.db')} }
influx: { url: ${influxUrl}, database: citysense }
auth:
  mode: token
  edges:
    - id: ${EDGE_ID}
      tokenSha256: ${sha256Hex(EDGE_TOKEN)}
# The demo operators of contracts.md: admin/admin-demo, duty/duty-demo, viewer/viewer-demo.
operators: { demoUsers: true }
registry: { defaultEdge: ${EDGE_ID} }
# The shipped rules and yours (${rulesDir}, never rewritten).
alerts: { rulesFiles: [${join(ROOT, 'cloud', 'rules')}, ${rulesDir}] }
`,
  );
  writePrivate(
    join(DEMO, 'edge.yaml'),
    `# Written by npm start (scripts/demo.ts) at each start.
edgeId: ${EDGE_ID}
dataDir: ${join(DATA, 'edge')}
mqtt: { host: ${HOST}, port: ${ports.mqtt} }
http: { host: ${HOST}, port: ${ports.edgeHttp} }
hj212: { host: ${HOST}, port: ${ports.hj212} }
# CTWing and OneNET push here (docs/protocols/ctwing.md, onenet.md); a real deployment adds tls and allowFrom.
httpPush:
  host: ${HOST}
  port: ${ports.push}
  ctwing: { pathToken: ${PUSH_TOKEN} }
  onenet: { pathToken: ${PUSH_TOKEN}, token: ${ONENET_TOKEN} }
  onenetStudio: { pathToken: ${PUSH_TOKEN}, token: ${ONENET_TOKEN} }
gb26875: { enabled: true, host: ${HOST}, port: ${ports.gb26875} }
# One source of truth: the devices come from the cloud's registry (the edge's slice, cached in dataDir).
registry: { cloud: { intervalMs: 5000 } }
cloud: { url: http://${SHOWN}:${ports.cloud} }
opcua:
  pki:
    dir: ${join(DEMO, 'opcua', 'edge-pki')}
    certificateFile: ${certs.client.certificateFile}
    privateKeyFile: ${certs.client.privateKeyFile}
    trustedServerCertificates: [${certs.server.certificateFile}]
  servers:
    - { id: erqi-tower, endpoint: "opc.tcp://${SHOWN}:${ports.opcua}/citysense/elevators", securityMode: SignAndEncrypt, securityPolicy: Basic256Sha256 }
`,
  );

  let webhookUrl = env.CITYSENSE_WEBHOOK_URL;
  let receiver: WebhookReceiver | undefined;
  const sup = new Supervisor();
  // node with tsx as its loader rather than the tsx CLI: the CLI runs the program in a child of its own,
  // and a SIGKILL (the supervisor's last resort) would reach only the wrapper.
  const node = join(ROOT, 'node_modules', '.bin', 'node');
  const logLevel = opts.verbose ? 'info' : 'warn';
  // Ctrl-C: the children are in process groups of their own (supervisor.ts), so only we get it and stop
  // them one after the other, the last started first.
  sup.stopOnSignals({
    before: () => process.stdout.write('\nstopping: simulators, edge (flushes its batches), cloud, InfluxDB ...\n'),
    after: async () => {
      await receiver?.close();
      process.stdout.write('stopped.\n');
    },
  });

  if (!env.INFLUX_URL) {
    const dir = join(DATA, 'influxdb');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'influxdb.conf'), influxdConfig(dir, ports.influx, await freePort()));
    const influxd = sup.add({ name: 'influxdb', command: 'influxd', args: ['run', '-config', join(dir, 'influxdb.conf')], format: (l) => (opts.verbose ? l : undefined) });
    influxd.start();
    await waitFor('InfluxDB to answer /ping', async () => (await fetch(`${influxUrl}/ping`).catch(() => undefined))?.status === 204, 60_000);
    influxd.say(`InfluxDB 1.x on ${influxUrl}, data in ${dir}`);
  }

  // Webhooks: the demo targets (fire system, emergency management, elevator rescue, environment bureau)
  // post to CITYSENSE_WEBHOOK_URL when it is set, else to a small receiver of ours that checks each
  // signature and prints the delivery.
  if (!webhookUrl) {
    receiver = await startWebhookReceiver(ports.webhook, (line) => process.stdout.write(`\x1b[31m[webhook ]\x1b[0m ${line}\n`), undefined, HOST);
    webhookUrl = receiver.url;
  }
  const authSecret = env.CITYSENSE_AUTH_SECRET ?? demoAuthSecret(join(DEMO, 'auth-secret'));

  const cloud = sup.add({
    name: 'cloud',
    command: node,
    args: ['--import', 'tsx', 'cloud/src/main.ts', '--config', join(DEMO, 'cloud.yaml')],
    cwd: ROOT,
    env: { CITYSENSE_CLOUD_LOG_LEVEL: logLevel, CITYSENSE_WEBHOOK_URL: webhookUrl, CITYSENSE_AUTH_SECRET: authSecret },
    format: readable,
  });
  cloud.start();
  await waitFor('the cloud to answer /healthz', () => httpOk(`http://${SHOWN}:${ports.cloud}/healthz`), 60_000);
  cloud.say(`cloud on http://${SHOWN}:${ports.cloud}`);
  const provisioned = await provisionRegistry(`http://${SHOWN}:${ports.cloud}`, registryFile);
  cloud.say(provisioned);

  const edge = sup.add({
    name: 'edge',
    command: node,
    args: ['--import', 'tsx', 'edge/src/main.ts', '--config', join(DEMO, 'edge.yaml')],
    cwd: ROOT,
    env: { CITYSENSE_EDGE_TOKEN: EDGE_TOKEN, CITYSENSE_EDGE_LOG_LEVEL: logLevel },
    format: readable,
    // The edge's shutdown.flushTimeoutMs (10 s) and a margin: its flush is what the ordered stop is for.
    stopTimeoutMs: 15_000,
  });
  edge.start();
  await waitFor('the edge to answer /healthz', () => httpOk(`http://${SHOWN}:${ports.edgeHttp}/healthz`), 60_000);
  // The edge has its slice of the registry once a demo device can log in.
  await waitFor('the edge to know the demo devices', async () => {
    const c = await mqtt.connectAsync(`mqtt://${SHOWN}:${ports.mqtt}`, { username: 'demo-env-001', password: 'demo-env-001-secret', clientId: 'demo-env-001/ready-check', reconnectPeriod: 0, connectTimeout: 2_000 }).catch(() => undefined);
    await c?.endAsync();
    return c !== undefined;
  }, 60_000, 500);
  edge.say(`edge ${EDGE_ID}: MQTT on ${HOST}:${ports.mqtt}, HJ 212 on ${HOST}:${ports.hj212}, health and metrics on http://${SHOWN}:${ports.edgeHttp}`);

  let simulator: Component | undefined;
  if (!opts['no-sim']) {
    simulator = sup.add({
      name: 'sim',
      command: node,
      args: [
        '--import',
        'tsx',
        'device-sim/src/cli.ts',
        '--url',
        `mqtt://${SHOWN}:${ports.mqtt}`,
        '--registry',
        registryFile,
        '--interval-ms',
        String(opts['interval-ms']),
        '--forever',
        '--events',
        '--hj212',
        `${SHOWN}:${ports.hj212}`,
        '--fire-panel',
        'demo-fire-001:demo-fire-001-secret',
        '--fire-panel-tcp',
        `demo-fire-tcp-001:790300000000@${SHOWN}:${ports.gb26875}`,
        '--elevator-port',
        String(ports.opcua),
        '--elevator-host',
        HOST,
        '--elevator-pki',
        join(DEMO, 'opcua', 'sim-pki'),
        '--elevator-cert',
        certs.server.certificateFile,
        '--elevator-key',
        certs.server.privateKeyFile,
        '--elevator-trust',
        certs.client.certificateFile,
        '--progress-ms',
        '30000',
        // One NB-IoT device through each operator platform, pushed to the edge's receivers.
        '--ctwing',
        `demo-ctwing-001:860000000000001:15000001@http://${SHOWN}:${ports.push}/push/ctwing/${PUSH_TOKEN}`,
        '--onenet-studio',
        `demo-onenet-001:onenet-demo-product@http://${SHOWN}:${ports.push}/push/onenet-studio/${PUSH_TOKEN}`,
        '--onenet-token',
        ONENET_TOKEN,
        '--push-interval-ms',
        String(opts['interval-ms']),
      ],
      cwd: ROOT,
      format: readable,
    });
    simulator.start();
  }

  const exposed = HOST === '127.0.0.1' || HOST === '::1' || HOST === 'localhost' ? '' : `
\x1b[31mexposed\x1b[0m         every listener but InfluxDB is bound to ${HOST} (CITYSENSE_DEMO_HOST): anyone who can
                  reach this machine can log in with the published demo passwords
`;
  const now = Date.now();
  process.stdout.write(`
\x1b[1mcitysense demo is running\x1b[0m  (Ctrl-C stops everything)
${exposed}
  InfluxDB        ${influxUrl}  database citysense
  console         http://${SHOWN}:${ports.cloud}/   (log in as duty / duty-demo; also admin, viewer)
  cloud API       http://${SHOWN}:${ports.cloud}   (/healthz, /metrics, /v1/alerts, /v1/devices, POST /v1/batches)
  webhooks        ${webhookUrl}${receiver ? '   (our receiver: each delivery is printed, signature checked)' : ''}
  edge ${EDGE_ID}     mqtt://${SHOWN}:${ports.mqtt}   health/metrics http://${SHOWN}:${ports.edgeHttp}/metrics
  HJ 212          tcp://${SHOWN}:${ports.hj212} (environment stations)
  NB-IoT pushes   http://${SHOWN}:${ports.push}/push/{ctwing,onenet,onenet-studio}/${PUSH_TOKEN} (CTWing: demo-ctwing-001, OneNET Studio: demo-onenet-001)
  GB/T 26875.3    tcp://${SHOWN}:${ports.gb26875} (fire-alarm transmission devices; demo-fire-tcp-001 is connected)
  elevators       opc.tcp://${SHOWN}:${ports.opcua} (simulated controller, 4 cars, SignAndEncrypt)
  simulators      ${DEMO_DEVICES.length} demo devices (every family, each over its own protocol)
                  + ${sim.length} generic JSON devices, a reading each per ${opts['interval-ms']} ms
  registry        the cloud's (GET /v1/devices); the simulators' list in ${registryFile}

Publish a reading as demo-env-001:
  mosquitto_pub -h ${SHOWN} -p ${ports.mqtt} -i demo-env-001 -u demo-env-001 -P demo-env-001-secret -q 1 \\
    -t devices/demo-env-001/telemetry -m '{"ts": ${now}, "metrics": {"pm25": 35.2, "pm10": 61}}'

Play the fire scenario (smoke, a zone's fire alarm, sprinkler pressure drop) with a second panel:
  npm run sim -- --url mqtt://${SHOWN}:${ports.mqtt} --fire-panel demo-fire-002:demo-fire-002-secret --scenario fire --sim-step-ms 5000

Query it:
  curl -sG ${influxUrl}/query --data-urlencode db=citysense \\
    --data-urlencode "q=SELECT * FROM environment WHERE device_id='demo-env-001' ORDER BY time DESC LIMIT 5"

`);
}

main().catch((err: unknown) => {
  process.stderr.write(`citysense demo: ${(err as Error).message ?? String(err)}\n`);
  process.exit(1);
});
