// The benchmark's private stack: influxd (scripts/influxd.ts), the cloud and the edge as real processes
// with generated configs (as scripts/demo.ts and e2e/faults/harness.ts start them), and a counting,
// cuttable link between edge and cloud. Loopback only.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startInfluxd, waitFor, type Influxd } from '../../scripts/influxd.ts';
import { CountingLink } from './link.ts';
import { NodeProc } from './proc.ts';

export const EDGE_ID = 'bench-edge';
export const EDGE_TOKEN = 'bench-edge-token-0123456789';
export const WEBHOOK_SECRET = 'bench-webhook-secret';
export const DB = 'citysense';

export interface BenchDevice {
  id: string;
  secret: string;
  family: 'environment' | 'fire' | 'nbiot';
  district: string;
  /** A profile other than the default (generic JSON). */
  profile?: string;
  /** GB/T 26875.3 transmission devices over TCP: the 6-byte source address, 12 hex digits. */
  gb26875?: string;
}

const DISTRICTS = ['jinshui', 'zhongyuan', 'erqi', 'guancheng', 'huiji'];
const pad = (n: number) => String(n).padStart(6, '0');

/**
 * Devices for the run: `env` high-rate stations, `fire` panels (one alarm each, MQTT JSON events),
 * `fireTcp` GB/T 26875.3 transmission devices over TCP (one alarm each), `nb` mostly idle.
 */
export function makeDevices(env: number, fire: number, nb: number): { env: BenchDevice[]; fire: BenchDevice[]; fireTcp: BenchDevice[]; nb: BenchDevice[] } {
  const mk = (prefix: string, family: BenchDevice['family'], n: number) =>
    Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${pad(i)}`, secret: `${prefix}-${pad(i)}-secret`, family, district: DISTRICTS[i % 5]! }));
  const fireTcp = mk('bfit', 'fire', fire).map((d, i) => ({ ...d, profile: 'fire-panel-gb26875-tcp', gb26875: (0xb0000000 + i).toString(16).padStart(12, '0') }));
  return { env: mk('benv', 'environment', env), fire: mk('bfir', 'fire', fire), fireTcp, nb: mk('bnbi', 'nbiot', nb) };
}

export function registryYaml(devices: BenchDevice[], pushDevices = 0): string {
  const mqtt = devices.map(
    (d) =>
      `  - { id: ${d.id}, family: ${d.family}, secret: ${d.secret}, district: ${d.district}${d.profile ? `, profile: ${d.profile}` : ''}${d.gb26875 ? `, gb26875: { address: "${d.gb26875}" }` : ''} }`,
  );
  // NB-IoT smoke detectors behind CTWing (the push step): deviceId = id, no MQTT secret.
  const push = Array.from({ length: pushDevices }, (_, i) => `  - { id: ${pushDeviceId(i)}, family: nbiot, district: guancheng, profile: nb-smoke-detector, ctwing: { deviceId: ${pushDeviceId(i)} } }`);
  return `devices:\n${[...mqtt, ...push].join('\n')}\n`;
}

/** The push step's devices and the edge's CTWing path token. */
export const pushDeviceId = (i: number) => `bpsh-${pad(i)}`;
export const PUSH_TOKEN = 'bench-push-token-0123';

export interface StackOptions {
  dir: string;
  devices: BenchDevice[];
  /** Where the cloud sends alert webhooks (the benchmark's receiver); the cloud may not support them yet. */
  webhookUrl?: string;
  /** NB-IoT devices reporting through the edge's CTWing push receiver (the push step). */
  pushDevices?: number;
  /** NODE_OPTIONS for edge and cloud (profiling). */
  nodeOptions?: string;
  log: (s: string) => void;
}

export class Stack {
  influx!: Influxd;
  cloud!: NodeProc;
  edge!: NodeProc;
  link!: CountingLink;
  ports!: { cloud: number; link: number; mqtt: number; edgeHttp: number; push: number; gb26875: number };
  webhooks = false;
  private edgeStarts = 0;
  private cloudStarts = 0;
  constructor(readonly o: StackOptions) {}

  get cloudUrl(): string {
    return `http://127.0.0.1:${this.ports.cloud}`;
  }
  get edgeUrl(): string {
    return `http://127.0.0.1:${this.ports.edgeHttp}`;
  }

  async startInflux(): Promise<void> {
    this.influx = await startInfluxd({ dir: join(this.o.dir, 'influxdb'), removeOnStop: true, startTimeoutMs: 60_000 });
    this.ports = { cloud: await freePort(), link: await freePort(), mqtt: await freePort(), edgeHttp: await freePort(), push: await freePort(), gb26875: await freePort() };
  }

  private cloudYaml(withAlerts: boolean): string {
    const base = `listen: { host: 127.0.0.1, port: ${this.ports.cloud} }
store: { path: ${join(this.o.dir, 'cloud', `cloud-${this.cloudStarts}.db`)} }
influx: { url: ${this.influx.url}, database: ${DB} }
auth:
  mode: token
  edges: [{ id: ${EDGE_ID}, tokenSha256: ${createHash('sha256').update(EDGE_TOKEN).digest('hex')} }]
log: { level: warn }
`;
    if (!withAlerts || !this.o.webhookUrl) return base;
    // Only the benchmark's own rule: a fire alarm fires at once. The storm bound is lifted for the one
    // target so that the measured latency is the pipeline's, not the rate limiter's.
    return `${base}alerts:
  rulesFiles: []
  rules:
    - { id: bench-fire-alarm, kind: event, category: fire, severity: critical, types: [fire_alarm] }
    - { id: bench-smoke-alarm, kind: event, category: fire, severity: critical, types: [smoke_alarm] }
webhooks:
  demoTargetsFromEnv: false
  targets:
    - { id: bench, url: "${this.o.webhookUrl}", secret: ${WEBHOOK_SECRET}, rateLimit: { perMinute: 1000000, burst: 10000 } }
`;
  }

  /** Starts the cloud; with a webhook URL it first tries the alert/webhook config and falls back without it. */
  async startCloud(): Promise<void> {
    mkdirSync(join(this.o.dir, 'cloud'), { recursive: true });
    for (const withAlerts of this.o.webhookUrl ? [true, false] : [false]) {
      this.cloudStarts++;
      const file = join(this.o.dir, `cloud-${this.cloudStarts}.yaml`);
      writeFileSync(file, this.cloudYaml(withAlerts));
      this.cloud = new NodeProc({
        name: 'cloud',
        script: 'cloud/src/main.ts',
        args: ['--config', file],
        logFile: join(this.o.dir, 'cloud.log'),
        ...(this.o.nodeOptions ? { nodeOptions: this.o.nodeOptions } : {}),
      });
      const cloud = this.cloud;
      try {
        await waitFor('the cloud to answer /healthz', async () => {
          if (!cloud.alive) throw new Error(`cloud exited with ${cloud.exitCode}; see ${join(this.o.dir, 'cloud.log')}`);
          return (await fetch(`${this.cloudUrl}/healthz`).catch(() => undefined)) !== undefined;
        }, 60_000);
        this.webhooks = withAlerts;
        return;
      } catch (err) {
        if (!withAlerts) throw err;
        this.o.log(`  the cloud refused the alerts/webhooks config (not built yet?): running without; see ${join(this.o.dir, 'cloud.log')}`);
        await cloud.stop();
      }
    }
  }

  async startLink(): Promise<void> {
    this.link = new CountingLink(this.ports.link, this.ports.cloud);
    await this.link.open();
  }

  async startEdge(): Promise<void> {
    this.edgeStarts++;
    writeFileSync(join(this.o.dir, 'registry.yaml'), registryYaml(this.o.devices, this.o.pushDevices ?? 0));
    const file = join(this.o.dir, 'edge.yaml');
    writeFileSync(
      file,
      `edgeId: ${EDGE_ID}
dataDir: ${join(this.o.dir, `edge-data-${this.edgeStarts}`)}
mqtt: { host: 127.0.0.1, port: ${this.ports.mqtt}, maxConnections: 60000, maxConnectsPerSecond: 5000, connectBurst: 5000 }
http: { host: 127.0.0.1, port: ${this.ports.edgeHttp} }
hj212: { enabled: false }
httpPush: { host: 127.0.0.1, port: ${this.ports.push}, ctwing: { pathToken: ${PUSH_TOKEN} } }
gb26875: { enabled: true, host: 127.0.0.1, port: ${this.ports.gb26875} }
registry: { file: registry.yaml }
cloud: { url: "http://127.0.0.1:${this.ports.link}", token: ${EDGE_TOKEN} }
log: { level: warn }
`,
    );
    this.edge = new NodeProc({
      name: 'edge',
      script: 'edge/src/main.ts',
      args: ['--config', file],
      logFile: join(this.o.dir, 'edge.log'),
      nofile: 120_000,
      ...(this.o.nodeOptions ? { nodeOptions: this.o.nodeOptions } : {}),
    });
    const edge = this.edge;
    await waitFor('the edge to answer /healthz', async () => {
      if (!edge.alive) throw new Error(`edge exited with ${edge.exitCode}; see ${join(this.o.dir, 'edge.log')}`);
      return ((await fetch(`${this.edgeUrl}/healthz`).catch(() => undefined))?.status ?? 500) < 300;
    }, 120_000, 200);
  }

  async stopEdgeAndCloud(): Promise<void> {
    await this.edge?.stop(30_000);
    await this.cloud?.stop();
  }

  async stop(): Promise<void> {
    await this.stopEdgeAndCloud();
    await this.link?.close();
    await this.influx?.stop();
  }
}
