// Password guessing (issue 11, item 2): POST /v1/auth/login is throttled per source address, per account
// from one address and per account from unknown addresses, answering 429 + Retry-After in the API's error
// shape; the real operator still gets in from elsewhere while an attacker is throttled; hashing runs off
// the event loop, bounded, so a burst of logins does not hold up an alarm-lane batch.
import { readdirSync, readFileSync } from 'node:fs';
import type { Batch } from '@citysense/proto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { hashPassword, hashPasswordSync, SCRYPT_PARAMS, verifyPassword } from '../src/auth/passwords.ts';
import { parseCloudConfig } from '../src/config/load.ts';
import type { CloudConfigInput } from '../src/config/schema.ts';
import { alertApp, FIXTURE_SCRYPT, PASSWORDS } from './alerts-fixtures.ts';
import { EDGE_A, batchHeaders, protobuf, T0 } from './helpers.ts';

let influx: TestInflux;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  influx = await testInflux('cloud-auth-guessing');
});
afterAll(async () => {
  for (const a of apps) await a.close();
});

async function makeApp(login: NonNullable<NonNullable<CloudConfigInput['operators']>['login']>): Promise<FastifyInstance> {
  const app = alertApp(influx, { extra: { operators: { login } } });
  apps.push(app);
  await app.ready();
  return app;
}

const attempt = (app: FastifyInstance, from: string, username: string, password: string) =>
  app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username, password }, remoteAddress: from });

function expectThrottled(res: Awaited<ReturnType<typeof attempt>>, maxWaitS: number) {
  expect(res.statusCode, res.body).toBe(429);
  expect(res.json()).toEqual({ error: 'LOGIN_THROTTLED', message: expect.stringMatching(/^Too many login attempts/) });
  const after = Number(res.headers['retry-after']);
  expect(Number.isInteger(after) && after >= 1 && after <= maxWaitS, `Retry-After ${res.headers['retry-after']}`).toBe(true);
}

describe('throttling', () => {
  it('per source: past perSource.max attempts from one address, 429 with Retry-After; other addresses go on', async () => {
    const app = await makeApp({ perSource: { max: 5, windowMs: 60_000 } });
    // Different usernames, so only the per-source window counts.
    for (let i = 0; i < 5; i++) expect((await attempt(app, '192.0.2.10', `guess-${i}`, 'x')).statusCode).toBe(401);
    expectThrottled(await attempt(app, '192.0.2.10', 'guess-5', 'x'), 60);
    // Even the right password from the throttled address waits: the window counts attempts, not names.
    expectThrottled(await attempt(app, '192.0.2.10', 'duty', PASSWORDS.duty), 60);
    expect((await attempt(app, '192.0.2.11', 'duty', PASSWORDS.duty)).statusCode).toBe(200);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/citysense_cloud_operator_logins_total\{result="throttled"\} 2/);
  });

  it('per account and source: wrong passwords for one account from one address; the real operator elsewhere is not locked out', async () => {
    const app = await makeApp({ perAccountSource: { max: 3, windowMs: 60_000 } });
    for (let i = 0; i < 3; i++) expect((await attempt(app, '198.51.100.7', 'duty', `wrong-${i}`)).statusCode).toBe(401);
    expectThrottled(await attempt(app, '198.51.100.7', 'duty', 'wrong-3'), 60);
    expectThrottled(await attempt(app, '198.51.100.7', 'duty', PASSWORDS.duty), 60);
    // The same address may still try other accounts (that is the per-source window's job).
    expect((await attempt(app, '198.51.100.7', 'viewer', PASSWORDS.viewer)).statusCode).toBe(200);
    // The real duty officer, from their own address, logs in while the attacker is throttled.
    expect((await attempt(app, '203.0.113.5', 'duty', PASSWORDS.duty)).statusCode).toBe(200);
  });

  it('per account from many addresses: throttled for new addresses only; a known address gets in at once, a new one after the window', async () => {
    const app = await makeApp({ perAccount: { max: 4, windowMs: 2_000 } });
    // The real viewer logged in from their desk before the attack.
    expect((await attempt(app, '10.20.0.1', 'viewer', PASSWORDS.viewer)).statusCode).toBe(200);
    // A guesser spreads over addresses: each has 1 failure, the account 4.
    for (let i = 1; i <= 4; i++) expect((await attempt(app, `10.66.0.${i}`, 'viewer', `guess-${i}`)).statusCode).toBe(401);
    expectThrottled(await attempt(app, '10.66.0.5', 'viewer', 'guess-5'), 2);
    // From a new address, the real viewer is throttled too, for at most the window ...
    const fresh = await attempt(app, '10.20.0.2', 'viewer', PASSWORDS.viewer);
    expectThrottled(fresh, 2);
    // ... but from the desk, where they logged in before, at once;
    expect((await attempt(app, '10.20.0.1', 'viewer', PASSWORDS.viewer)).statusCode).toBe(200);
    // and failures from a known address do not count against the account.
    expect((await attempt(app, '10.20.0.1', 'viewer', 'typo')).statusCode).toBe(401);
    // After the stated Retry-After, the new address gets in.
    const deadline = Date.now() + 10_000;
    let res = fresh;
    while (res.statusCode === 429 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      res = await attempt(app, '10.20.0.2', 'viewer', PASSWORDS.viewer);
    }
    expect(res.statusCode).toBe(200);
  });
});

describe('hashing', () => {
  // One fire alarm on the alarm lane, as the edge sends it.
  let seq = 5_000_000;
  const alarm = (): Batch => {
    const s = ++seq;
    return {
      edgeId: EDGE_A.id,
      seq: s,
      createdMs: T0,
      lane: 'alarm',
      readings: [],
      events: [{ deviceId: 'guess-fire', family: 'fire', ts: T0 + (s % 1000), type: 'fire_alarm', attrs: { zone: 'B1' }, priority: 'alarm', id: `guess-${s}`, tags: { district: 'jinshui' } }],
    };
  };

  it('a burst of wrong logins does not hold up an alarm-lane batch: it is answered while the logins still hash', async () => {
    const app = await makeApp({ maxConcurrentHashes: 1, maxQueuedHashes: 16 });
    const done: string[] = [];
    // Unknown usernames from different addresses: no window applies; each costs a hash at OWASP's cost.
    const logins = Array.from({ length: 6 }, (_, i) =>
      attempt(app, `172.16.0.${i + 1}`, `nobody-${i}`, 'wrong').then((r) => {
        done.push(`login-${r.statusCode}`);
        return r;
      }),
    );
    const upload = app
      .inject({ method: 'POST', url: '/v1/batches', payload: protobuf(alarm()), headers: { ...batchHeaders(EDGE_A.token), 'x-citysense-lane': 'alarm' } })
      .then((r) => {
        done.push(`alarm-${r.statusCode}`);
        return r;
      });
    expect((await upload).statusCode).toBe(200);
    // Ordering, not timing: when the alarm's answer came, most of the logins were still waiting for a hash.
    const loginsBefore = done.filter((d) => d.startsWith('login')).length;
    expect(loginsBefore, done.join(', ')).toBeLessThan(3);
    const answers = await Promise.all(logins);
    expect(answers.map((r) => r.statusCode)).toEqual([401, 401, 401, 401, 401, 401]);
  });

  it('logins beyond maxConcurrentHashes + maxQueuedHashes are refused at once with 503 LOGIN_BUSY and Retry-After', async () => {
    const app = await makeApp({ maxConcurrentHashes: 1, maxQueuedHashes: 1, busyRetryAfterSeconds: 3 });
    const answers = await Promise.all(Array.from({ length: 4 }, (_, i) => attempt(app, `172.17.0.${i + 1}`, `nobody-${i}`, 'wrong')));
    const busy = answers.filter((r) => r.statusCode === 503);
    expect(answers.filter((r) => r.statusCode === 401)).toHaveLength(2);
    expect(busy).toHaveLength(2);
    expect(busy[0]!.json()).toMatchObject({ error: 'LOGIN_BUSY' });
    expect(busy[0]!.headers['retry-after']).toBe('3');
  });

  it('a full hashing queue refuses new addresses, but the operator at an address they logged in from before gets in', async () => {
    const app = await makeApp({ maxConcurrentHashes: 1, maxQueuedHashes: 1 });
    expect((await attempt(app, '10.30.0.1', 'viewer', PASSWORDS.viewer)).statusCode).toBe(200);
    const busy: number[] = [];
    const flood = Array.from({ length: 6 }, (_, i) =>
      attempt(app, `172.18.0.${i + 1}`, `nobody-${i}`, 'wrong').then((r) => {
        if (r.statusCode === 503) busy.push(i);
        return r;
      }),
    );
    // The queue is full once four of the six have been turned away (one hashing, one waiting).
    const deadline = Date.now() + 10_000;
    while (busy.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const [known, fresh] = await Promise.all([attempt(app, '10.30.0.1', 'viewer', PASSWORDS.viewer), attempt(app, '10.30.0.2', 'viewer', PASSWORDS.viewer)]);
    expect(known.statusCode).toBe(200);
    expect(fresh.json()).toMatchObject({ error: 'LOGIN_BUSY' });
    expect((await Promise.all(flood)).map((r) => r.statusCode).sort()).toEqual([401, 401, 503, 503, 503, 503]);
  });

  it('hashes in a thread of its own at the lowest CPU priority (Linux nice 19), not on the event loop or libuv\'s pool', async () => {
    const nices = () =>
      readdirSync('/proc/self/task').map((tid) => {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
      });
    const before = nices().filter((n) => n === 19).length;
    const app = await makeApp({ hashNice: 19 });
    expect((await attempt(app, '10.40.0.1', 'duty', PASSWORDS.duty)).statusCode).toBe(200);
    expect(nices().filter((n) => n === 19).length).toBe(before + 1);
    expect(nices()[0]).toBe(0); // the main thread (the event loop) keeps its priority
  });

  it('new hashes use OWASP scrypt parameters off the event loop; hashes made with the old ones still verify', async () => {
    const pending = hashPassword('s3cret');
    expect(pending).toBeInstanceOf(Promise);
    const h = await pending;
    expect(h).toMatch(new RegExp(`^scrypt\\$${SCRYPT_PARAMS.N}\\$8\\$1\\$`));
    expect(SCRYPT_PARAMS.N).toBe(2 ** 17);
    expect(await verifyPassword('s3cret', h)).toBe(true);
    expect(await verifyPassword('s3cret ', h)).toBe(false);
    const old = hashPasswordSync('s3cret', FIXTURE_SCRYPT);
    expect(old).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword('s3cret', old)).toBe(true);
    expect(await verifyPassword('s3cret', 'md5$abc')).toBe(false);
    // A stored hash that would ask for gigabytes is refused by the config, not computed.
    const huge = old.replace('$16384$', `$${2 ** 24}$`);
    expect(await verifyPassword('s3cret', huge)).toBe(false);
    expect(() => parseCloudConfig({ operators: { users: [{ username: 'x', role: 'viewer', passwordHash: huge }] } })).toThrow(/scrypt parameters out of bounds/);
  });
});
