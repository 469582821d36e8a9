// Operator tokens (issue 11, item 3): the Authorization header only (a token in the URL is refused),
// no credential in any log line, logout and an admin's revocation (persisted in the store), the role of
// the operator's current record on every request, alert streams that end with their token and are capped
// per operator, and Cache-Control: no-store on API answers.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { freePort, waitFor } from '../../scripts/influxd.ts';
import { buildApp } from '../src/app.ts';
import { Revocations } from '../src/auth/revocations.ts';
import type { CloudConfigInput } from '../src/config/schema.ts';
import { createLogger } from '../src/log.ts';
import { openCloudStore } from '../src/store/db.ts';
import { AUTH_ENV, OPERATORS, PASSWORDS, alertApp, login } from './alerts-fixtures.ts';
import { testConfig } from './helpers.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
let influx: TestInflux;
const cleanup: (() => Promise<void> | void)[] = [];
const dir = mkdtempSync(join(tmpdir(), 'citysense-auth-tokens-'));

beforeAll(async () => {
  influx = await testInflux('cloud-auth-tokens');
});
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

async function makeApp(extra: CloudConfigInput = {}, o: { storePath?: string } = {}): Promise<FastifyInstance> {
  const app = alertApp(influx, { extra, ...o });
  cleanup.push(() => app.close());
  await app.ready();
  return app;
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const call = (app: FastifyInstance, method: 'GET' | 'POST', url: string, token?: string) =>
  app.inject({ method, url, headers: token === undefined ? {} : bearer(token) });

describe('where a token may be', () => {
  it('refuses a token in the URL, even a valid one, and takes it from the Authorization header', async () => {
    const app = await makeApp();
    const t = await login(app, 'viewer');
    for (const url of [`/v1/alerts?access_token=${t}`, `/v1/alerts/stream?access_token=${t}`, `/v1/devices?access_token=${t}`]) {
      const res = await call(app, 'GET', url);
      expect(res.statusCode, url).toBe(401);
      expect(res.json()).toEqual({ error: 'AUTH_TOKEN_IN_URL', message: expect.stringContaining('Authorization header') });
    }
    // Also when the header is there too: the URL has leaked the token already, the client must stop.
    expect((await call(app, 'GET', `/v1/alerts?access_token=${t}`, t)).json()).toMatchObject({ error: 'AUTH_TOKEN_IN_URL' });
    expect((await call(app, 'GET', '/v1/alerts', t)).statusCode).toBe(200);
  });
});

describe('logs', () => {
  it('no log line carries a token or a password, whatever the request', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const config = testConfig(influx, { store: { path: ':memory:' }, operators: { users: OPERATORS }, alerts: { rulesFiles: [] }, log: { level: 'trace' } });
    const app = buildApp(config, { logger: createLogger(config.log, sink), env: AUTH_ENV });
    cleanup.push(() => app.close());
    await app.ready();
    const wrongPassword = 'hunter2-never-in-a-log';
    const viewer = await login(app, 'viewer');
    // A wrong password (logged as a refusal), a token in the URL of a route the role may not use, a
    // malformed and a forged bearer header, a token for a deleted path: each is logged, none with the secret.
    expect((await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'duty', password: wrongPassword } })).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: `/v1/webhooks/deliveries/1/retry?access_token=${viewer}` })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: `/v1/nowhere?token=${viewer}` })).statusCode).toBe(404);
    expect((await call(app, 'GET', '/v1/alerts', `${viewer}x`)).statusCode).toBe(401);
    // The accidents redaction is for: a request's headers or a body logged by some future code path.
    app.log.warn({ req: { headers: { authorization: `Bearer ${viewer}` } }, body: { username: 'duty', password: wrongPassword } }, 'accident');
    app.log.error({ headers: { authorization: `Bearer ${viewer}` }, password: wrongPassword, token: viewer }, 'another accident');
    await new Promise((r) => setImmediate(r));
    const text = lines.join('');
    expect(lines.length).toBeGreaterThanOrEqual(5);
    expect(text).toContain('[redacted]');
    expect(text).toContain('LOGIN_FAILED');
    expect(text).not.toContain(wrongPassword);
    expect(text).not.toContain(viewer.slice(0, 40));
    expect(text).not.toContain(viewer.split('.')[1]!);
  });
});

describe('logout and revocation', () => {
  it('logout ends the token it is called with, and only that one', async () => {
    const app = await makeApp();
    const a = await login(app, 'duty');
    const b = await login(app, 'duty');
    expect((await call(app, 'POST', '/v1/auth/logout')).statusCode).toBe(401);
    const out = await call(app, 'POST', '/v1/auth/logout', a);
    expect(out.statusCode).toBe(204);
    expect((await call(app, 'GET', '/v1/alerts', a)).json()).toMatchObject({ error: 'AUTH_INVALID' });
    expect((await call(app, 'POST', '/v1/auth/logout', a)).statusCode).toBe(401);
    expect((await call(app, 'GET', '/v1/alerts', b)).statusCode).toBe(200);
  });

  it('an admin revokes every token of an operator; a new login works; the revocation is audited', async () => {
    const app = await makeApp();
    const d1 = await login(app, 'duty');
    const d2 = await login(app, 'duty');
    const v = await login(app, 'viewer');
    const admin = await login(app, 'admin');
    expect((await call(app, 'POST', '/v1/operators/duty/revoke', v)).statusCode).toBe(403);
    expect((await call(app, 'POST', '/v1/operators/nobody/revoke', admin)).json()).toMatchObject({ error: 'OPERATOR_NOT_FOUND' });
    const res = await call(app, 'POST', '/v1/operators/duty/revoke', admin);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ operator: 'duty', revoked_before: expect.any(Number) });
    for (const t of [d1, d2]) expect((await call(app, 'GET', '/v1/alerts', t)).json()).toMatchObject({ error: 'AUTH_INVALID' });
    expect((await call(app, 'GET', '/v1/alerts', v)).statusCode).toBe(200);
    const d3 = await login(app, 'duty');
    expect((await call(app, 'GET', '/v1/alerts', d3)).statusCode).toBe(200);
    const audit = await call(app, 'GET', '/v1/audit?action=operator.revoke_tokens', admin);
    expect(audit.json().entries).toMatchObject([{ actor: 'admin', action: 'operator.revoke_tokens', target: 'operator:duty' }]);
  });

  it('revocations survive a restart of the cloud (same store, same key)', async () => {
    const storePath = join(dir, 'restart.db');
    const first = await makeApp({}, { storePath });
    const t = await login(first, 'viewer');
    const kept = await login(first, 'viewer');
    expect((await call(first, 'POST', '/v1/auth/logout', t)).statusCode).toBe(204);
    await first.close();
    const second = await makeApp({}, { storePath });
    expect((await call(second, 'GET', '/v1/alerts', t)).json()).toMatchObject({ error: 'AUTH_INVALID' });
    expect((await call(second, 'GET', '/v1/alerts', kept)).statusCode).toBe(200);
  });

  it('entries of tokens that have expired anyway are swept from the store', () => {
    const store = openCloudStore(':memory:');
    cleanup.push(() => store.close());
    const r = new Revocations(store);
    r.revoke({ sub: 'duty', jti: 'old', iat: 1_000, exp: 2_000 }, 1_500);
    r.revoke({ sub: 'duty', jti: 'live', iat: 1_000, exp: 10_000 }, 1_500);
    expect(r.count()).toBe(2);
    expect(r.sweep(5_000)).toBe(1);
    expect(r.isRevoked({ sub: 'duty', jti: 'live', iat: 1_000, exp: 10_000 })).toBe(true);
  });
});

describe('the role is the current record', () => {
  it('a role change, a password change or a removal applies on the next request, whatever the token was issued with', async () => {
    const app = await makeApp();
    const duty = await login(app, 'duty');
    const retry = () => call(app, 'POST', '/v1/webhooks/deliveries/1/retry', duty);
    expect((await retry()).json()).toMatchObject({ error: 'FORBIDDEN' });
    const users = (dutyRole: 'viewer' | 'operator' | 'admin') => OPERATORS.map((u) => (u.username === 'duty' ? { ...u, role: dutyRole } : u));

    app.operatorAuth.setOperators({ users: users('admin'), demoUsers: false });
    expect((await retry()).json()).toMatchObject({ error: 'DELIVERY_NOT_FOUND' }); // admin now: past the role check
    app.operatorAuth.setOperators({ users: users('viewer'), demoUsers: false });
    expect((await call(app, 'POST', '/v1/alerts/al_0/ack', duty)).json()).toMatchObject({ error: 'FORBIDDEN' });
    expect((await call(app, 'GET', '/v1/alerts', duty)).statusCode).toBe(200);
    app.operatorAuth.setOperators({ users: users('viewer').filter((u) => u.username !== 'duty'), demoUsers: false });
    expect((await call(app, 'GET', '/v1/alerts', duty)).json()).toMatchObject({ error: 'AUTH_INVALID' });

    // A new password ends the tokens got with the old one.
    app.operatorAuth.setOperators({ users: OPERATORS, demoUsers: false });
    const viewer = await login(app, 'viewer');
    expect((await call(app, 'GET', '/v1/alerts', viewer)).statusCode).toBe(200);
    const rehashed = OPERATORS.map((u) => (u.username === 'viewer' ? { ...u, passwordHash: OPERATORS[0]!.passwordHash } : u));
    app.operatorAuth.setOperators({ users: rehashed, demoUsers: false });
    expect((await call(app, 'GET', '/v1/alerts', viewer)).json()).toMatchObject({ error: 'AUTH_INVALID' });
    expect((await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'viewer', password: PASSWORDS.admin } })).statusCode).toBe(200);
  });
});

describe('the role is the current record: the real cloud process', () => {
  it('after the config file changes, SIGHUP makes the new role apply to a token issued before', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const file = join(dir, 'sighup.json');
    const write = (dutyRole: string) =>
      writeFileSync(
        file,
        JSON.stringify({
          listen: { host: '127.0.0.1', port },
          store: { path: join(dir, 'sighup.db') },
          influx: { url: influx.url, database: influx.db, retention: { manage: false } },
          log: { level: 'warn' },
          alerts: { rulesFiles: [] },
          operators: { users: OPERATORS.map((u) => (u.username === 'duty' ? { ...u, role: dutyRole } : u)) },
        }),
      );
    write('operator');
    const c = spawn(join(ROOT, 'node_modules', '.bin', 'node'), ['--import', 'tsx', 'cloud/src/main.ts', '--config', file], {
      cwd: ROOT,
      env: { ...process.env, ...AUTH_ENV },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = new Promise((r) => c.once('exit', r));
    cleanup.push(async () => {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      await exited;
    });
    await waitFor('the cloud to listen', async () => {
      if (c.exitCode !== null) throw new Error(`the cloud exited with ${c.exitCode}`);
      return (await fetch(`${url}/healthz`).catch(() => undefined)) !== undefined;
    }, 60_000);
    const res = await fetch(`${url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'duty', password: PASSWORDS.duty }) });
    const token = ((await res.json()) as { token: string }).token;
    const retry = async () => ((await (await fetch(`${url}/v1/webhooks/deliveries/1/retry`, { method: 'POST', headers: bearer(token) })).json()) as { error: string }).error;
    expect(await retry()).toBe('FORBIDDEN');
    write('admin');
    c.kill('SIGHUP');
    await waitFor('the new role to apply', async () => (await retry()) === 'DELIVERY_NOT_FOUND', 10_000);
    expect(c.exitCode).toBeNull();
  }, 90_000);
});

describe('alert streams', () => {
  async function listen(extra: CloudConfigInput = {}) {
    const app = await makeApp(extra);
    await app.listen({ port: 0, host: '127.0.0.1' });
    return { app, base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
  }
  const open = (base: string, token: string) => fetch(`${base}/v1/alerts/stream`, { headers: bearer(token) });

  /** Resolves when the server ends the stream (false if it is still open at the deadline). */
  async function ended(res: Response, timeoutMs: number): Promise<boolean> {
    const reader = res.body!.getReader();
    const deadline = setTimeout(() => void reader.cancel(), timeoutMs);
    try {
      for (;;) {
        const { done } = await reader.read();
        if (done) return true;
      }
    } catch {
      return false;
    } finally {
      clearTimeout(deadline);
    }
  }

  it('ends when its token expires; the reconnect is refused', async () => {
    const { app, base } = await listen({ operators: { tokenTtl: 3000 } });
    const t = await login(app, 'viewer');
    const res = await open(base, t);
    expect(res.status).toBe(200);
    const closing = ended(res, 15_000);
    // Still streaming right after opening; then the server ends it at expiry (not the client's timeout).
    let result: boolean | undefined;
    void closing.then((r) => (result = r));
    await new Promise((r) => setTimeout(r, 200));
    expect(result).toBeUndefined();
    expect(await closing).toBe(true);
    expect((await open(base, t)).status).toBe(401);
  });

  it('ends on logout, on an admin revocation, and when the operator is removed', async () => {
    const { app, base } = await listen();
    const admin = await login(app, 'admin');
    const v1 = await login(app, 'viewer');
    const d1 = await login(app, 'duty');
    const s1 = await open(base, v1);
    const s2 = await open(base, d1);
    const s3 = await open(base, admin);
    expect([s1.status, s2.status, s3.status]).toEqual([200, 200, 200]);
    const e1 = ended(s1, 10_000);
    const e2 = ended(s2, 10_000);
    const e3 = ended(s3, 10_000);
    expect((await call(app, 'POST', '/v1/auth/logout', v1)).statusCode).toBe(204);
    expect(await e1).toBe(true);
    expect((await call(app, 'POST', '/v1/operators/duty/revoke', admin)).statusCode).toBe(200);
    expect(await e2).toBe(true);
    app.operatorAuth.setOperators({ users: OPERATORS.filter((u) => u.username !== 'admin'), demoUsers: false });
    expect(await e3).toBe(true);
  });

  it('caps the streams of one operator with 429 and Retry-After; other operators and a freed slot go on', async () => {
    const { app, base } = await listen({ alerts: { rulesFiles: [], stream: { maxClientsPerOperator: 2 } } });
    const v = await login(app, 'viewer');
    const d = await login(app, 'duty');
    const a = await open(base, v);
    const b = await open(base, v);
    expect([a.status, b.status]).toEqual([200, 200]);
    const c = await open(base, v);
    expect(c.status).toBe(429);
    expect(Number(c.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await c.json()).toMatchObject({ error: 'STREAM_OPERATOR_FULL' });
    const other = await open(base, d);
    expect(other.status).toBe(200);
    await a.body!.cancel();
    // The server notices the closed socket and frees the slot.
    const deadline = Date.now() + 10_000;
    let again = await open(base, v);
    while (again.status === 429 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      again = await open(base, v);
    }
    expect(again.status).toBe(200);
    for (const r of [b, other, again]) await r.body!.cancel();
  });
});

describe('caching', () => {
  it('API answers carry Cache-Control: no-store, errors and the login too', async () => {
    const app = await makeApp();
    const loginRes = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'viewer', password: PASSWORDS.viewer } });
    const t = loginRes.json().token as string;
    const answers = [
      loginRes,
      await call(app, 'GET', '/v1/alerts', t),
      await call(app, 'GET', '/v1/alerts'),
      await call(app, 'GET', '/v1/no-such-route', t),
      await call(app, 'GET', '/v1/devices', t),
    ];
    for (const res of answers) expect(res.headers['cache-control'], `${res.statusCode} ${res.body.slice(0, 80)}`).toBe('no-store');
  });
});
