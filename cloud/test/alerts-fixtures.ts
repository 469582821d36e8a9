// Shared fixtures of the alert and webhook tests: a real HTTP receiver (node:http) that records every
// delivery byte for byte and answers as told, operators, an app with alert rules and targets.
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Batch, DeviceEvent, Reading } from '@citysense/proto';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.ts';
import type { RuleInput } from '../src/alerts/rules.ts';
import { hashPasswordSync } from '../src/auth/passwords.ts';
import type { CloudConfigInput } from '../src/config/schema.ts';
import { silentLogger, testConfig } from './helpers.ts';

export interface Delivery {
  headers: IncomingHttpHeaders;
  raw: Buffer;
  body: Record<string, unknown>;
}

export type Answer = number | 'hang';

export interface Receiver {
  url: string;
  deliveries: Delivery[];
  /** Every request, including those answered with an error. */
  attempts: Delivery[];
  /** Answers for the next requests, in order; then `otherwise`. */
  script: Answer[];
  otherwise: Answer;
  waitFor(n: number, timeoutMs?: number): Promise<Delivery[]>;
  close(): Promise<void>;
}

export async function receiver(otherwise: Answer = 200): Promise<Receiver> {
  const hanging = new Set<import('node:http').ServerResponse>();
  const r: Receiver = {
    url: '',
    deliveries: [],
    attempts: [],
    script: [],
    otherwise,
    async waitFor(n, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      while (r.deliveries.length < n) {
        if (Date.now() > end) throw new Error(`receiver: ${r.deliveries.length} deliveries after ${timeoutMs} ms, wanted ${n} (attempts: ${r.attempts.length})`);
        await new Promise((res) => setTimeout(res, 10));
      }
      return r.deliveries;
    },
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const d: Delivery = { headers: req.headers, raw, body: JSON.parse(raw.toString('utf8')) as Record<string, unknown> };
      r.attempts.push(d);
      const answer = r.script.length ? r.script.shift()! : r.otherwise;
      if (answer === 'hang') {
        hanging.add(res);
        return;
      }
      if (answer >= 200 && answer < 300) r.deliveries.push(d);
      res.writeHead(answer, { 'content-type': 'text/plain' }).end(answer < 300 ? 'ok' : 'no');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return r;
}

export const PASSWORDS = { admin: 'admin-pw-1', duty: 'duty-pw-1', viewer: 'viewer-pw-1' };
// Hashed at the cost of the old default (N=2^14), which keeps the fixtures quick and the hashes made before
// OWASP's parameters verifiable; auth-operators.test.ts checks the current parameters.
export const FIXTURE_SCRYPT = { N: 2 ** 14, r: 8, p: 1 };
export const OPERATORS = [
  { username: 'admin', role: 'admin' as const, passwordHash: hashPasswordSync(PASSWORDS.admin, FIXTURE_SCRYPT) },
  { username: 'duty', role: 'operator' as const, passwordHash: hashPasswordSync(PASSWORDS.duty, FIXTURE_SCRYPT) },
  { username: 'viewer', role: 'viewer' as const, passwordHash: hashPasswordSync(PASSWORDS.viewer, FIXTURE_SCRYPT) },
];
export const AUTH_ENV = { CITYSENSE_AUTH_SECRET: 'test-operator-token-key' };

/** A clock the test moves. */
export function clock(start = Date.now()) {
  let t = start;
  const c = () => t;
  c.set = (v: number) => (t = v);
  c.add = (ms: number) => (t += ms);
  return c as (() => number) & { set(v: number): number; add(ms: number): number };
}

export interface AlertAppOptions {
  rules?: RuleInput[];
  /** Default: no rule files, only `rules`. */
  rulesFiles?: string[];
  targets?: NonNullable<CloudConfigInput['webhooks']>['targets'];
  storePath?: string;
  now?: () => number;
  extra?: CloudConfigInput;
  env?: Record<string, string>;
}

export function alertApp(influx: { url: string; db: string }, o: AlertAppOptions = {}): FastifyInstance {
  const config = testConfig(influx, {
    ...o.extra,
    store: { path: o.storePath ?? ':memory:' },
    alerts: { rulesFiles: o.rulesFiles ?? [], rules: (o.rules ?? []) as never, ...o.extra?.alerts },
    webhooks: { targets: o.targets ?? [], pollIntervalMs: 50, ...o.extra?.webhooks },
    operators: { users: OPERATORS, ...o.extra?.operators },
  });
  return buildApp(config, { logger: silentLogger(), env: { ...AUTH_ENV, ...o.env }, random: () => 0.5, ...(o.now ? { now: o.now } : {}) });
}

export function target(id: string, url: string, extra: Record<string, unknown> = {}) {
  return { id, url, secret: `${id}-secret-123`, timeoutMs: 1000, maxAttempts: 5, backoff: { initialMs: 20, maxMs: 200 }, ...extra };
}

let seq = 1_000_000;
export function alertBatch(readings: Reading[], events: DeviceEvent[] = []): Batch {
  return { edgeId: 'edge-a', seq: ++seq, createdMs: Date.now(), readings, events };
}

export function reading(deviceId: string, ts: number, values: Reading['values'], family: Reading['family'] = 'environment', district = 'jinshui'): Reading {
  return { deviceId, family, ts, values, tags: { district, model: 'AQM-9' } };
}

let ev = 0;
export function event(deviceId: string, ts: number, type: string, attrs: Record<string, string> = {}, family: DeviceEvent['family'] = 'fire', district = 'zhongyuan'): DeviceEvent {
  return { deviceId, family, ts, type, attrs, priority: 'alarm', id: `evt-${process.pid}-${++ev}`, tags: { district } };
}

export async function login(app: FastifyInstance, username: keyof typeof PASSWORDS): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username, password: PASSWORDS[username] } });
  if (res.statusCode !== 200) throw new Error(`login ${username}: ${res.statusCode} ${res.body}`);
  return (res.json() as { token: string }).token;
}

/** States of the alert changes recorded so far, oldest first. */
export function changeStates(app: FastifyInstance): { seq: number; state: string; rule: string; device_id: string; id: string }[] {
  return app.alerts.changesAfter(0, 10_000).map((c) => ({ seq: c.seq, ...(JSON.parse(c.body) as { state: string; rule: string; device_id: string; id: string }) }));
}
