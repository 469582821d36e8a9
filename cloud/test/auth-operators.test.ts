// Operator login and roles: the right credential gets a token, a wrong one is refused, tokens expire and
// cannot be forged, and each role may do exactly what it should.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { DEMO_OPERATORS } from '../src/auth/demo.ts';
import { verifyPassword } from '../src/auth/passwords.ts';
import { signToken, verifyToken } from '../src/auth/tokens.ts';
import { parseCloudConfig } from '../src/config/load.ts';
import { AUTH_ENV, PASSWORDS, alertApp, alertBatch, clock, event, login } from './alerts-fixtures.ts';

let influx: TestInflux;
let app: FastifyInstance;
const now = clock();

beforeAll(async () => {
  influx = await testInflux('cloud-auth');
  app = alertApp(influx, { now, rules: [{ id: 'entrapment', kind: 'event', category: 'elevator', severity: 'critical', types: 'entrapment' }] });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
});

const loginAs = (username: string, password: string) => app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username, password } });

describe('POST /v1/auth/login', () => {
  it('answers a token for the right password and refuses a wrong one or an unknown user alike', async () => {
    const ok = await loginAs('duty', PASSWORDS.duty);
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ token: expect.any(String), role: 'operator' });

    for (const [u, p] of [['duty', 'duty-pw-2'], ['duty', ''], ['nobody', PASSWORDS.duty], ['DUTY', PASSWORDS.duty]]) {
      const res = await loginAs(u!, p!);
      expect(res.statusCode, `${u}/${p}`).toBe(401);
      expect(res.json()).toMatchObject({ error: 'LOGIN_FAILED' });
    }
    expect((await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'duty' } })).statusCode).toBe(400);
  });

  it('tokens expire, and a token signed with another key or edited is refused', async () => {
    const token = await login(app, 'viewer');
    const get = (t: string) => app.inject({ method: 'GET', url: '/v1/alerts', headers: { authorization: `Bearer ${t}` } });
    expect((await get(token)).statusCode).toBe(200);

    const [payload, mac] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    expect(Object.keys(claims).sort()).toEqual(['exp', 'iat', 'jti', 'sub']); // no role: it is read from the record
    const promoted = `${Buffer.from(JSON.stringify({ ...claims, sub: 'admin' })).toString('base64url')}.${mac}`;
    expect((await get(promoted)).json()).toMatchObject({ error: 'AUTH_INVALID' });
    const forged = signToken(Buffer.from('not-the-key'), { sub: 'admin', jti: 'x', iat: claims.iat, exp: claims.exp });
    expect((await get(forged)).statusCode).toBe(401);
    const ghost = signToken(Buffer.from(AUTH_ENV.CITYSENSE_AUTH_SECRET), { sub: 'ghost', jti: 'y', iat: claims.iat, exp: claims.exp });
    expect((await get(ghost)).statusCode).toBe(401);

    now.add(12 * 3_600_000 + 1000);
    expect((await get(token)).json()).toMatchObject({ error: 'AUTH_INVALID' });
    now.set(Date.now());
  });
});

describe('roles', () => {
  it('viewer reads, operator acknowledges and resolves, admin retries deliveries', async () => {
    app.alerts.onBatch(alertBatch([], [event('lift-1', Date.now(), 'entrapment', {}, 'elevator')]));
    const [alert] = app.alerts.list({ limit: 1 });
    const tokens = { viewer: await login(app, 'viewer'), duty: await login(app, 'duty'), admin: await login(app, 'admin') };
    const call = (method: 'GET' | 'POST', url: string, who: keyof typeof tokens) => app.inject({ method, url, headers: { authorization: `Bearer ${tokens[who]}` } });

    expect((await call('GET', '/v1/alerts', 'viewer')).statusCode).toBe(200);
    expect((await call('GET', `/v1/alerts/${alert!.id}`, 'viewer')).statusCode).toBe(200);
    expect((await call('GET', '/v1/webhooks/deliveries', 'viewer')).statusCode).toBe(200);
    expect((await call('POST', `/v1/alerts/${alert!.id}/ack`, 'viewer')).statusCode).toBe(403);
    expect((await call('POST', `/v1/alerts/${alert!.id}/resolve`, 'viewer')).statusCode).toBe(403);
    expect((await call('POST', '/v1/webhooks/deliveries/1/retry', 'duty')).statusCode).toBe(403);
    expect((await call('POST', '/v1/webhooks/deliveries/1/retry', 'admin')).json()).toMatchObject({ error: 'DELIVERY_NOT_FOUND' });
    expect((await call('POST', `/v1/alerts/${alert!.id}/ack`, 'duty')).json()).toMatchObject({ state: 'acknowledged', acked_by: 'duty' });
    expect((await call('POST', `/v1/alerts/${alert!.id}/resolve`, 'admin')).json()).toMatchObject({ state: 'resolved', resolved_by: 'admin' });
  });
});

describe('passwords and config', () => {
  it('the written-out demo hashes are scrypt at OWASP\'s parameters and verify their passwords', async () => {
    const pw: Record<string, string> = { admin: 'admin-demo', duty: 'duty-demo', viewer: 'viewer-demo' };
    for (const d of DEMO_OPERATORS) {
      expect(d.passwordHash).toMatch(/^scrypt\$131072\$8\$1\$/);
      expect(await verifyPassword(pw[d.username]!, d.passwordHash), d.username).toBe(true);
    }
  });

  it('the demo operators of contracts.md log in with operators.demoUsers', async () => {
    const demo = alertApp(influx, { extra: { operators: { users: [], demoUsers: true } } });
    await demo.ready();
    try {
      for (const [u, p, role] of [['admin', 'admin-demo', 'admin'], ['duty', 'duty-demo', 'operator'], ['viewer', 'viewer-demo', 'viewer']]) {
        const res = await demo.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: u, password: p } });
        expect(res.json(), u).toMatchObject({ role });
      }
      expect((await demo.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'admin', password: 'admin' } })).statusCode).toBe(401);
    } finally {
      await demo.close();
    }
  });

  it('a token key from the environment outlives the process; without it tokens are per process', () => {
    const key = Buffer.from('k');
    const t = signToken(key, { sub: 'a', jti: 'j', iat: Date.now(), exp: Date.now() + 60_000 });
    expect(verifyToken(key, t, Date.now())).toMatchObject({ sub: 'a' });
    expect(verifyToken(Buffer.from('other'), t, Date.now())).toBeUndefined();
  });

  it('refuses a malformed operator entry with its path', () => {
    expect(() => parseCloudConfig({ operators: { users: [{ username: 'x', role: 'root', passwordHash: 'plain' }] } })).toThrow(/operators\.users\[0\]\.role[\s\S]*operators\.users\[0\]\.passwordHash/);
  });
});
