// A cloud restart in the middle of a firing alert: nothing lost, nothing fired twice. The store is a
// file; the app is built, fires, is closed and is built again on the same file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { alertApp, alertBatch, changeStates, reading, receiver, target, type Receiver } from './alerts-fixtures.ts';

let influx: TestInflux;
let dir: string;
let app: FastifyInstance | undefined;
let r: Receiver;
beforeAll(async () => {
  influx = await testInflux('cloud-alerts-restart');
  dir = mkdtempSync(join(tmpdir(), 'citysense-alerts-'));
});
afterEach(async () => {
  await app?.close();
  app = undefined;
  await r?.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RULE = { id: 'pm25', kind: 'threshold' as const, category: 'environment' as const, severity: 'major' as const, metric: 'pm25', above: 75, for: '10m', clear: { below: 60 } };
const MIN = 60_000;

describe('restart', () => {
  it('a firing alert survives: the outbox resumes, the continuing condition fires nothing new, the clear resolves it', async () => {
    const storePath = join(dir, 'restart.db');
    r = await receiver(503); // the target is down while the alert fires
    const build = async () => {
      app = alertApp(influx, { storePath, rules: [RULE], targets: [target('env-bureau', r.url, { backoff: { initialMs: 20, maxMs: 50 }, maxAttempts: 50 })] });
      await app.ready();
      return app;
    };
    const T = Date.now() - 60 * MIN;
    let a = await build();
    for (let m = 0; m <= 10; m += 5) a.alerts.onBatch(alertBatch([reading('env-1', T + m * MIN, { pm25: 90 })]));
    expect(changeStates(a).map((c) => c.state)).toEqual(['firing']);
    const alertId = changeStates(a)[0]!.id;
    while (r.attempts.length < 2) await new Promise((res) => setTimeout(res, 10));
    await a.close();
    const attemptsBefore = r.attempts.length;
    expect(r.deliveries).toHaveLength(0);

    // Back up; the target answers now.
    r.otherwise = 200;
    a = await build();
    await r.waitFor(1);
    expect(r.deliveries[0]!.body).toMatchObject({ id: alertId, state: 'firing' });
    expect(r.deliveries[0]!.headers['idempotency-key']).toBe(r.attempts[0]!.headers['idempotency-key']);
    expect(r.attempts.length).toBeGreaterThan(attemptsBefore);

    // The condition goes on after the restart: no second firing.
    for (let m = 15; m <= 30; m += 5) a.alerts.onBatch(alertBatch([reading('env-1', T + m * MIN, { pm25: 95 })]));
    expect(changeStates(a).map((c) => c.state)).toEqual(['firing']);
    expect(a.alerts.get(alertId)!.state).toBe('firing');

    // A pending condition (`for` not yet reached) survives a restart too.
    a.alerts.onBatch(alertBatch([reading('env-2', T, { pm25: 80 })]));
    await a.close();
    a = await build();
    a.alerts.onBatch(alertBatch([reading('env-2', T + 10 * MIN, { pm25: 80 })]));
    expect(changeStates(a).map((c) => `${c.device_id}:${c.state}`)).toEqual(['env-1:firing', 'env-2:firing']);

    // The clear condition after another restart resolves the very same alert.
    await a.close();
    a = await build();
    a.alerts.onBatch(alertBatch([reading('env-1', T + 40 * MIN, { pm25: 50 })]));
    expect(changeStates(a).map((c) => `${c.device_id}:${c.state}`)).toEqual(['env-1:firing', 'env-2:firing', 'env-1:resolved']);
    await r.waitFor(3);
    // Delivery is at least once: an attempt cut short by a close is made again, under the same key. What the
    // receiver gets, deduplicated by Idempotency-Key, is each state change exactly once.
    const byKey = new Map(r.deliveries.map((d) => [d.headers['idempotency-key'], d.body]));
    const changes = changeStates(a);
    expect([...byKey.keys()].sort()).toEqual(changes.map((c) => (c as unknown as { event_id: string }).event_id).sort());
    const firings = [...byKey.values()].filter((b) => b.state === 'firing');
    expect(firings.map((b) => b.device_id).sort()).toEqual(['env-1', 'env-2']);
    expect([...byKey.values()].find((b) => b.state === 'resolved')!.id).toBe(alertId);
  });
});
