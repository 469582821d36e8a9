// Shared fixtures for the cloud tests: a config pointed at the test influxd, edge tokens, batches.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { encodeBatch, type Batch, type DeviceEvent, type Reading } from '@citysense/proto';
import { pino } from 'pino';
import { buildApp } from '../src/app.ts';
import { parseCloudConfig } from '../src/config/load.ts';
import type { CloudConfig, CloudConfigInput } from '../src/config/schema.ts';

export const EDGE_A = { id: 'edge-a', token: 'edge-a-secret-token' };
export const EDGE_B = { id: 'edge-b', token: 'edge-b-secret-token' };

export const sha256Hex = (s: string) => createHash('sha256').update(s).digest('hex');

export const silentLogger = () => pino({ level: 'silent' });

export function testConfig(influx: { url: string; db: string }, extra: CloudConfigInput = {}): CloudConfig {
  return parseCloudConfig({
    ...extra,
    store: { path: ':memory:', ...extra.store },
    listen: { port: 0, ...extra.listen },
    influx: { url: influx.url, database: influx.db, ...extra.influx },
    auth: {
      edges: [
        { id: EDGE_A.id, tokenSha256: sha256Hex(EDGE_A.token) },
        { id: EDGE_B.id, tokenSha256: sha256Hex(EDGE_B.token) },
      ],
      ...extra.auth,
    },
    metrics: { process: false },
  });
}

export function testApp(config: CloudConfig) {
  return buildApp(config, { logger: silentLogger(), env: {} });
}

/** A recent base time, so readings pass the plausibility check, aligned to whole seconds. */
export const T0 = Math.floor(Date.now() / 1000) * 1000 - 60_000;

let seq = 0;
export function batch(edgeId: string, readings: Reading[], events: DeviceEvent[] = []): Batch {
  return { edgeId, seq: ++seq, createdMs: T0, readings, events };
}

export function envReading(deviceId: string, ts: number, values: Reading['values'], extra: Partial<Reading> = {}): Reading {
  return { deviceId, family: 'environment', ts, values, tags: { district: 'jinshui', site: 'station-7', model: 'AQ-2000' }, ...extra };
}

export function protobuf(b: Batch, gzip = false): Buffer {
  const raw = Buffer.from(encodeBatch(b));
  return gzip ? gzipSync(raw) : raw;
}

export function batchHeaders(token: string | undefined, gzip = false): Record<string, string> {
  const h: Record<string, string> = { 'content-type': 'application/x-protobuf' };
  if (token !== undefined) h.authorization = `Bearer ${token}`;
  if (gzip) h['content-encoding'] = 'gzip';
  return h;
}
