// The fault tests' stage: influxd, the cloud and the edge as real processes that can be killed with
// SIGKILL and started again on the same ports and data, and a TCP proxy between edge and cloud whose
// link can be cut. Everything listens on loopback only, and every loop here is bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { freePort, influxdConfig, waitFor } from '../../scripts/influxd.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
// node itself with tsx as a loader, not the tsx CLI: the CLI runs the program in a child process, so a
// SIGKILL would hit the wrapper and leave the real edge running.
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const LOADER = ['--import', 'tsx'];

/** A process we may kill -9 and start again with the same command line. */
export class Proc {
  child: ChildProcess | undefined;
  kills = 0;
  starts = 0;
  private readonly log: ReturnType<typeof createWriteStream>;

  constructor(
    readonly name: string,
    private readonly cmd: string,
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
    logFile: string,
    private readonly ready: () => Promise<boolean>,
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' });
  }

  async start(): Promise<void> {
    this.starts++;
    const child = spawn(this.cmd, this.args, { cwd: ROOT, env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(this.log, { end: false });
    child.stderr!.pipe(this.log, { end: false });
    this.child = child;
    await waitFor(`${this.name} to be ready`, async () => {
      if (child.exitCode !== null) throw new Error(`${this.name} exited with ${child.exitCode} while starting; see its log`);
      return this.ready();
    }, 60_000);
  }

  /** kill -9: no flush, no close, as a power cut or the OOM killer would. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    this.kills++;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
}

/** Edge → cloud through a proxy whose link can be cut (every connection reset, new ones refused). */
export class CuttableLink {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  cut = false;
  cuts = 0;

  constructor(
    readonly port: number,
    private readonly targetPort: number,
  ) {}

  async open(): Promise<void> {
    this.server = createServer((client) => {
      if (this.cut) return client.destroy();
      const upstream = createConnection({ host: '127.0.0.1', port: this.targetPort });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }

  setCut(cut: boolean): void {
    if (cut) {
      this.cuts++;
      for (const s of this.sockets) s.destroy();
    }
    this.cut = cut;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

export interface StageDevice {
  id: string;
  family: 'environment' | 'fire' | 'nbiot';
  secret: string;
  district: string;
}

export interface Stage {
  influx: Proc;
  cloud: Proc;
  edge: Proc;
  link: CuttableLink;
  influxUrl: string;
  mqttUrl: string;
  cloudUrl: string;
  edgeHttpUrl: string;
  db: string;
  stop(): Promise<void>;
}

const httpOk = async (url: string) => ((await fetch(url).catch(() => undefined))?.status ?? 500) < 300;

export async function startStage(dir: string, devices: StageDevice[], opts: { edgeExtra?: string; webhookUrl?: string } = {}): Promise<Stage> {
  const edgeExtra = opts.edgeExtra ?? '';
  mkdirSync(dir, { recursive: true });
  const ports = { influx: await freePort(), rpc: await freePort(), cloud: await freePort(), link: await freePort(), mqtt: await freePort(), edgeHttp: await freePort(), hj212: await freePort() };
  const influxUrl = `http://127.0.0.1:${ports.influx}`;
  const db = 'citysense_faults';
  const token = 'fault-test-edge-token';

  const influxDir = join(dir, 'influxdb');
  mkdirSync(influxDir, { recursive: true });
  writeFileSync(join(influxDir, 'influxdb.conf'), influxdConfig(influxDir, ports.influx, ports.rpc));
  const influx = new Proc('influxd', 'influxd', ['run', '-config', join(influxDir, 'influxdb.conf')], {}, join(dir, 'influxd.log'), async () => (await fetch(`${influxUrl}/ping`).catch(() => undefined))?.status === 204);

  writeFileSync(
    join(dir, 'cloud.yaml'),
    `listen: { host: 127.0.0.1, port: ${ports.cloud} }
store: { path: ${join(dir, 'cloud', 'cloud.db')} }
influx: { url: ${influxUrl}, database: ${db}, timeoutMs: 3000 }
auth:
  mode: token
  edges: [{ id: edge-faults, tokenSha256: ${createHash('sha256').update(token).digest('hex')} }]
log: { level: info }
operators: { demoUsers: true }
${opts.webhookUrl ? `webhooks:\n  demoTargetsFromEnv: false\n  targets: [{ id: fire-system, url: "${opts.webhookUrl}", secret: fault-test-webhook-secret, match: { categories: [fire] }, timeoutMs: 2000, backoff: { initialMs: 100, maxMs: 1000 } }]\n` : ''}`,
  );
  // The cloud answers /healthz 503 while InfluxDB is down; for "ready" it is enough that it listens.
  const cloud = new Proc('cloud', NODE, [...LOADER, 'cloud/src/main.ts', '--config', join(dir, 'cloud.yaml')], { CITYSENSE_AUTH_SECRET: 'fault-test-operator-token-key' }, join(dir, 'cloud.log'), async () => {
    const res = await fetch(`http://127.0.0.1:${ports.cloud}/healthz`).catch(() => undefined);
    return res !== undefined;
  });

  writeFileSync(join(dir, 'registry.yaml'), `devices:\n${devices.map((d) => `  - { id: ${d.id}, family: ${d.family}, secret: ${d.secret}, district: ${d.district} }`).join('\n')}\n`);
  writeFileSync(
    join(dir, 'edge.yaml'),
    `edgeId: edge-faults
dataDir: ${join(dir, 'edge-data')}
mqtt: { host: 127.0.0.1, port: ${ports.mqtt} }
http: { host: 127.0.0.1, port: ${ports.edgeHttp} }
hj212: { host: 127.0.0.1, port: ${ports.hj212} }
registry: { file: registry.yaml }
cloud: { url: http://127.0.0.1:${ports.link}, token: ${token} }
uplink: { requestTimeoutMs: 5000, retry: { initialDelayMs: 100, maxDelayMs: 2000 } }
log: { level: info }
${edgeExtra}`,
  );
  const edge = new Proc('edge', NODE, [...LOADER, 'edge/src/main.ts', '--config', join(dir, 'edge.yaml')], {}, join(dir, 'edge.log'), () => httpOk(`http://127.0.0.1:${ports.edgeHttp}/healthz`));

  const link = new CuttableLink(ports.link, ports.cloud);
  await influx.start();
  await cloud.start();
  await link.open();
  await edge.start();
  return {
    influx,
    cloud,
    edge,
    link,
    influxUrl,
    mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`,
    cloudUrl: `http://127.0.0.1:${ports.cloud}`,
    edgeHttpUrl: `http://127.0.0.1:${ports.edgeHttp}`,
    db,
    async stop() {
      await edge.stop();
      await link.close();
      await cloud.stop();
      await influx.stop();
    },
  };
}
