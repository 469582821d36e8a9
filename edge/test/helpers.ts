// Test helpers: a fake cloud (real node:http server speaking the protobuf contract), an edge on
// ephemeral ports with captured logs, MQTT clients, metric reads, and waitFor with a deadline.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import mqtt, { type MqttClient } from 'mqtt';
import type { Registry } from 'prom-client';
import { decodeBatch, encodeAck, type Batch } from '@citysense/proto';
import { startEdge, type Edge, type EdgeConfigInput } from '../src/index.ts';
import type { MqttBrokerOptions } from '../src/inputs/mqtt-broker/server.ts';
import pino from 'pino';

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`waitFor: ${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface CloudRequest {
  headers: IncomingMessage['headers'];
  batch: Batch;
  status: number;
}

export interface FakeCloud {
  url: string;
  requests: CloudRequest[];
  /** Batches answered 200 with an Ack. */
  acked: Batch[];
  /** Answer for the next request; default 200 + Ack. Return a status and optional JSON to refuse. */
  answer: (batch: Batch, n: number) => { status: number; json?: unknown } | undefined;
  close(): Promise<void>;
}

export async function startFakeCloud(): Promise<FakeCloud> {
  const cloud: FakeCloud = {
    url: '',
    requests: [],
    acked: [],
    answer: () => undefined,
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const batch = decodeBatch(body);
      const a = cloud.answer(batch, cloud.requests.length);
      const status = a?.status ?? 200;
      cloud.requests.push({ headers: req.headers, batch, status });
      if (status !== 200) {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(a?.json ?? { error: 'unavailable', message: 'try later' }));
        return;
      }
      cloud.acked.push(batch);
      const n = batch.readings.length + batch.events.length;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end(encodeAck({ seq: batch.seq, accepted: n, rejected: 0, rejections: [], duplicate: false }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cloud.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cloud.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return cloud;
}

export const DEVICES = [
  { id: 'env-1', family: 'environment', district: 'jinshui', secret: 'env-1-secret-value', tags: { site: 'station-3', model: 'AQM-65' } },
  { id: 'env-2', family: 'environment', district: 'erqi', secret: 'env-2-secret-value' },
  { id: 'fire-1', family: 'fire', district: 'zhongyuan', secret: 'fire-1-secret-value', tags: { site: 'mall' } },
] as const;

export interface TestEdge {
  edge: Edge;
  dataDir: string;
  logs: string[];
  clients: MqttClient[];
  connect(id: string, password: string): Promise<MqttClient>;
  stop(): Promise<void>;
}

type Overrides = Omit<Partial<EdgeConfigInput>, 'batch' | 'uplink'> & {
  batch?: EdgeConfigInput['batch'];
  uplink?: EdgeConfigInput['uplink'];
};

export async function startTestEdge(cloudUrl: string, overrides: Overrides = {}, dataDir?: string): Promise<TestEdge> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'citysense-edge-test-'));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  const config: EdgeConfigInput = {
    edgeId: 'edge-test',
    dataDir: dir,
    mqtt: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    hj212: { host: '127.0.0.1', port: 0 },
    registry: { devices: DEVICES.map((d) => ({ ...d })) as EdgeConfigInput['registry']['devices'] },
    cloud: { url: cloudUrl, token: 'test-edge-token' },
    log: { level: 'debug' },
    ...overrides,
    batch: { maxAgeMs: 20, ...overrides.batch },
    uplink: { requestTimeoutMs: 2000, retry: { initialDelayMs: 5, maxDelayMs: 20, factor: 2 }, ...overrides.uplink },
  };
  const edge = await startEdge(config, { logDestination: sink });
  const clients: MqttClient[] = [];
  const t: TestEdge = {
    edge,
    dataDir: dir,
    logs,
    clients,
    async connect(id, password) {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${edge.mqttPort}`, {
        username: id,
        password,
        clientId: `${id}/${clients.length}`,
        reconnectPeriod: 0,
      });
      clients.push(c);
      return c;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
      await edge.close();
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return t;
}

/** The value of one metric series (0 when the series does not exist yet). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  const data = await m.get();
  const hit = data.values.find(
    (v) => ((v as { metricName?: string }).metricName ?? name) === name && Object.entries(labels).every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val),
  );
  return hit?.value ?? 0;
}

export function allReadings(batches: readonly Batch[]) {
  return batches.flatMap((b) => b.readings);
}

/**
 * A throwaway CA and a server certificate for 127.0.0.1 (ca.crt, edge.crt, edge.key in the returned
 * folder), made with the openssl CLI (Debian ships it). Slow-ish: call it from beforeAll.
 */
export function makeTestPki(prefix: string): string {
  const pki = mkdtempSync(join(tmpdir(), prefix));
  const env = { ...process.env };
  delete env.OPENSSL_CONF;
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: pki, env, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=citysense-test-ca');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'edge.key', '-out', 'edge.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(pki, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', 'edge.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'edge.crt', '-days', '2', '-extfile', 'san.ext');
  return pki;
}

/** Options for a broker under test on a free loopback port: small limits, silent logs; `over` wins. */
export function testBrokerOptions(base: Pick<MqttBrokerOptions, 'registry' | 'onMessage' | 'metrics'>, over: Partial<MqttBrokerOptions> = {}): MqttBrokerOptions {
  return {
    host: '127.0.0.1',
    port: 0,
    maxConnections: 10,
    maxPacketBytes: 1024,
    connectTimeoutMs: 5000,
    maxConnectsPerSecond: 100,
    connectBurst: 100,
    log: pino({ level: 'silent' }),
    warn: () => undefined,
    ...base,
    ...over,
  };
}
