// A whole citysense stack in one test process: the cloud (writing to this test file's database on the
// run's private influxd) and one edge, both on ephemeral ports, wired with a real edge token.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parseCloudConfig, startCloud, type RunningCloud } from '@citysense/cloud';
import { startEdge, type Edge, type EdgeConfigInput } from '@citysense/edge';
import { testInflux, type TestInflux } from './setup/influx.ts';

export interface StackDevice {
  id: string;
  family: 'environment' | 'fire' | 'nbiot' | 'elevator';
  secret?: string;
  district: string;
  tags?: Record<string, string>;
  profile?: string;
  hj212?: { mn: string; password?: string };
  opcua?: { server: string; vars?: Record<string, string> };
  gb26875?: { address: string };
  ctwing?: { deviceId?: string; imei?: string; productId?: string };
  onenet?: { deviceId?: string; imei?: string; productId?: string; deviceName?: string };
}

export interface Stack {
  influx: TestInflux;
  cloud: RunningCloud;
  edge: Edge;
  mqttUrl: string;
  /** Everything both services logged (JSON lines). */
  logs: string[];
  close(): Promise<void>;
}

export const EDGE_ID = 'edge-e2e';
export const EDGE_TOKEN = 'e2e-edge-token-7f3a';

export async function startStack(name: string, devices: StackDevice[], edgeOverrides: Partial<EdgeConfigInput> = {}, cloudOverrides: Record<string, unknown> = {}): Promise<Stack> {
  const influx = await testInflux(name);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const cloudConfig = parseCloudConfig({
    listen: { host: '127.0.0.1', port: 0 },
    store: { path: ':memory:' },
    // Retention is cloud/test/retention-rollups' subject; here old test vectors (2024) must still land.
    influx: { url: influx.url, database: influx.db, retention: { manage: false } },
    auth: { mode: 'token', edges: [{ id: EDGE_ID, tokenSha256: createHash('sha256').update(EDGE_TOKEN).digest('hex') }] },
    log: { level: 'info' },
    ...cloudOverrides,
  });
  const cloud = await startCloud(cloudConfig, { logger: pino({ level: 'info' }, sink) });
  const dataDir = mkdtempSync(join(tmpdir(), `citysense-e2e-${name}-`));
  const edge = await startEdge(
    {
      edgeId: EDGE_ID,
      dataDir,
      mqtt: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0 },
      hj212: { host: '127.0.0.1', port: 0 },
      registry: { devices },
      cloud: { url: cloud.url, token: EDGE_TOKEN },
      batch: { maxAgeMs: 50 },
      ...edgeOverrides,
    },
    { logDestination: sink },
  );
  return {
    influx,
    cloud,
    edge,
    mqttUrl: `mqtt://127.0.0.1:${edge.mqttPort}`,
    logs,
    async close() {
      await edge.flush(5_000).catch(() => undefined);
      await edge.close();
      await cloud.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
