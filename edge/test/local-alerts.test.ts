// Edge-local alerting, unit level: config, rule matching, the cloud-compatible ids and body, signing
// (checked with the cloud's verifier and the receiver of docs/receiving-webhooks.md), the durable outbox
// across restarts, and the decision logic against the uplink's hooks (no real uplink: the hooks are
// called as the uplink calls them). Receivers are real node:http servers.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Batch, DeviceEvent } from '@citysense/proto';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../../cloud/src/delivery/sign.ts';
import { receiver, type Receiver } from '../../cloud/test/alerts-fixtures.ts';
import { LocalAlerts } from '../src/alerts/local-alerts.ts';
import { localAlertsSchema, type LocalAlertsConfig } from '../src/alerts/config.ts';
import { LocalOutbox } from '../src/alerts/outbox.ts';
import { EDGE_NOTIFIED_ATTR, cloudIds, firingBody, loadLocalRules, rulesFor, targetMatches } from '../src/alerts/rules.ts';
import { signatureHeader } from '../src/alerts/sign.ts';
import { parseEdgeConfig } from '../src/config/load.ts';
import { metricValue, waitFor } from './helpers.ts';

const REPO = new URL('../../', import.meta.url).pathname;
const SECRET = 'fire-system-secret-1';
const FIRE_RULE = { id: 'fire-alarm', types: ['fire_alarm'], category: 'fire' as const, keyAttrs: ['zone'], description: 'Fire alarm at a building\'s fire-alarm panel (one alert per zone)' };

let n = 0;
function fireEvent(attrs: Record<string, string> = { zone: 'F2-Z1' }, ts = Date.now()): DeviceEvent {
  return { deviceId: 'panel-1', family: 'fire', ts, type: 'fire_alarm', attrs, priority: 'alarm', id: `evt-${process.pid}-${++n}`, tags: { district: 'zhongyuan', site: 'mall' } };
}
const batchOf = (...events: DeviceEvent[]): Batch => ({ edgeId: 'edge-t', seq: ++n, createdMs: Date.now(), readings: [], events, lane: 'alarm' });

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'citysense-local-alerts-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('config', () => {
  it('is strict, critical only, needs a target and a secret, and sits in the edge config under localAlerts', () => {
    const ok = { rules: [FIRE_RULE], targets: [{ id: 'fire-system', url: 'http://127.0.0.1:9/hook', secret: SECRET }] };
    const c = localAlertsSchema.parse(ok);
    expect(c).toMatchObject({ cloudDownAfterMs: 3000, maxEventAgeMs: 3_600_000, rules: [{ severity: 'critical', keyAttrs: ['zone'] }] });
    expect(c.targets[0]).toMatchObject({ timeoutMs: 5000, maxAttempts: 10, backoff: { initialMs: 1000, maxMs: 60_000 }, match: {} });
    const bad = (x: unknown) => localAlertsSchema.safeParse(x).success;
    expect(bad({ ...ok, rules: [{ ...FIRE_RULE, severity: 'major' }] })).toBe(false);
    expect(bad({ ...ok, surprise: 1 })).toBe(false);
    expect(bad({ ...ok, targets: [] })).toBe(false);
    expect(bad({ ...ok, targets: [{ id: 'fire-system', url: 'http://x/' }] })).toBe(false);
    expect(bad({ ...ok, targets: [{ id: 'Fire System', url: 'http://x/', secret: SECRET }] })).toBe(false);
    expect(bad({ targets: ok.targets })).toBe(false);
    expect(() => parseEdgeConfig({ edgeId: 'e1', registry: { devices: [] }, cloud: { token: 't' }, localAlerts: { ...ok, rules: [{ ...FIRE_RULE, kind: 'event' }] } })).toThrow(/localAlerts.*rules/s);
    expect(parseEdgeConfig({ edgeId: 'e1', registry: { devices: [] }, cloud: { token: 't' }, localAlerts: ok }).localAlerts?.targets[0]?.id).toBe('fire-system');
    expect(parseEdgeConfig({ edgeId: 'e1', registry: { devices: [] }, cloud: { token: 't' } }).localAlerts).toBeUndefined();
  });

  it('rulesFiles: the cloud\'s own rule files give their enabled critical event rules, under the same ids', () => {
    const rules = loadLocalRules({ rules: [], rulesFiles: [join(REPO, 'cloud/rules')] });
    const ids = rules.map((r) => r.id);
    expect(ids).toEqual(expect.arrayContaining(['fire-alarm', 'fire-manual-call', 'smoke-alarm', 'elevator-entrapment', 'gas-alarm']));
    expect(ids).not.toContain('fire-panel-fault'); // an event rule, not critical
    expect(ids).not.toContain('gas-lel-high'); // critical, but a threshold rule: the cloud's alone
    expect(rules.find((r) => r.id === 'fire-alarm')).toMatchObject({ types: ['fire_alarm'], keyAttrs: ['zone'], category: 'fire' });
    expect(() => loadLocalRules({ rules: [{ ...FIRE_RULE, severity: 'critical', match: {} }], rulesFiles: [join(REPO, 'cloud/rules/fire.yaml')] })).toThrow(/defined twice/);
    expect(() => loadLocalRules({ rules: [], rulesFiles: ['/nonexistent/rules.yaml'] })).toThrow(/cannot read/);
  });
});

describe('rule matching and routing', () => {
  const rules = localAlertsSchema.parse({
    rules: [FIRE_RULE, { id: 'mall-gas', types: ['gas_alarm', 'gas_leak'], category: 'safety', match: { district: 'zhongyuan', tags: { site: 'mall' } } }],
    targets: [{ id: 'x', url: 'http://x/', secret: SECRET }],
  }).rules;
  it('by type and the cloud\'s match keys', () => {
    expect(rulesFor(rules, fireEvent()).map((r) => r.id)).toEqual(['fire-alarm']);
    expect(rulesFor(rules, { ...fireEvent(), type: 'fire_alarm_cleared' })).toEqual([]);
    expect(rulesFor(rules, { ...fireEvent(), type: 'gas_leak' }).map((r) => r.id)).toEqual(['mall-gas']);
    expect(rulesFor(rules, { ...fireEvent(), type: 'gas_leak', tags: { district: 'zhongyuan', site: 'station' } })).toEqual([]);
    expect(rulesFor(rules, { ...fireEvent(), type: 'gas_leak', tags: { district: 'erqi', site: 'mall' } })).toEqual([]);
  });
  it('targets by category and district', () => {
    expect(targetMatches({ match: {} }, { category: 'fire', district: 'a' })).toBe(true);
    expect(targetMatches({ match: { categories: ['fire'] } }, { category: 'safety', district: 'a' })).toBe(false);
    expect(targetMatches({ match: { categories: ['fire'], districts: ['a'] } }, { category: 'fire', district: 'a' })).toBe(true);
    expect(targetMatches({ match: { districts: ['b'] } }, { category: 'fire', district: 'a' })).toBe(false);
  });
});

describe('signing', () => {
  it('the cloud\'s verifier and the receiver of docs/receiving-webhooks.md accept what the edge signs', async () => {
    const body = firingBody({ ...FIRE_RULE, severity: 'critical', match: {} }, fireEvent()).body;
    const t = Math.floor(Date.now() / 1000);
    const header = signatureHeader(SECRET, body, t);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, Buffer.from(body), header, t)).toEqual({ ok: true, t });
    expect(verifySignature('another-secret', Buffer.from(body), header, t)).toMatchObject({ ok: false });
    // The docs' Node receiver, taken from the page as written.
    const md = readFileSync(join(REPO, 'docs/receiving-webhooks.md'), 'utf8');
    const fn = /^export function verify\([\s\S]*?^}$/m.exec(md)?.[0];
    expect(fn).toBeTruthy();
    const file = join(tmp(), 'verify.mjs');
    writeFileSync(file, `import { createHmac, timingSafeEqual } from 'node:crypto';\n${/^const TOLERANCE_S = .*$/m.exec(md)?.[0]}\n${fn}\n`);
    const { verify } = (await import(pathToFileURL(file).href)) as { verify: (s: string, raw: Buffer, h: string, now?: number) => boolean };
    expect(verify(SECRET, Buffer.from(body), header, t)).toBe(true);
    expect(verify(SECRET, Buffer.from(body.replace('F2-Z1', 'F3-Z1')), header, t)).toBe(false);
  });
});

describe('the same alert id, Idempotency-Key and body as the cloud', () => {
  it('computed like cloud/src/alerts/engine.ts, checked against the real engine', async () => {
    const { alertApp, alertBatch, target } = await import('../../cloud/test/alerts-fixtures.ts');
    const { testInflux } = await import('../../e2e/setup/influx.ts');
    const r = await receiver();
    const app = alertApp(await testInflux('edge-local-alert-ids'), {
      rules: [{ ...FIRE_RULE, kind: 'event', severity: 'critical' }],
      targets: [target('fire-system', r.url, { match: { categories: ['fire'] } })],
    });
    try {
      await app.ready();
      const e = fireEvent({ zone: 'F2-Z1', floor: '2' });
      app.alerts.onBatch(alertBatch([], [e]));
      const [d] = await r.waitFor(1);
      const edge = firingBody({ ...FIRE_RULE, severity: 'critical', match: {} }, e);
      expect(d!.headers['idempotency-key']).toBe(edge.eventId);
      expect(d!.body.id).toBe(cloudIds(FIRE_RULE, e).alertId);
      expect(d!.raw.toString('utf8')).toBe(edge.body);
    } finally {
      await app.close();
      await r.close();
    }
  });
});

describe('outbox', () => {
  it('survives a restart: pending entries come back, finished ones stay finished, a torn line is skipped', async () => {
    const file = join(tmp(), 'local-alerts.jsonl');
    let ob = await LocalOutbox.open(file, { retainMs: 60_000 });
    const item = (source: string, target: string) => ({ source, target, rule: 'fire-alarm', key: `ev_${source}`, body: `{"s":"${source}"}` });
    await ob.notify([item('e1', 'fire-system'), item('e1', 'emergency'), item('e2', 'fire-system'), item('e2', 'fire-system')]);
    await ob.done('e1|fire-alarm|fire-system', 'delivered');
    await ob.close();
    appendFileSync(file, '{"op":"done","k":"e2|fire-alarm|fire-sy'); // a crash mid-append
    ob = await LocalOutbox.open(file, { retainMs: 60_000 });
    expect(ob.skippedLines).toBe(1);
    expect(ob.pending().map((e) => e.k).sort()).toEqual(['e1|fire-alarm|emergency', 'e2|fire-alarm|fire-system']);
    expect(ob.get('e1|fire-alarm|fire-system')?.status).toBe('delivered');
    expect(ob.get('e2|fire-alarm|fire-system')?.body).toBe('{"s":"e2"}');
    await ob.close();
    // Finished entries are forgotten after retainMs; pending ones never are.
    ob = await LocalOutbox.open(file, { retainMs: 1, now: () => Date.now() + 10_000 });
    expect(ob.has('e1')).toBe(true);
    expect(ob.get('e1|fire-alarm|fire-system')).toBeUndefined();
    expect(ob.pending()).toHaveLength(2);
    await ob.close();
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(2);
  });
});

describe('deciding and delivering (the uplink\'s hooks called by hand)', () => {
  let r: Receiver;
  const open: LocalAlerts[] = [];
  beforeAll(async () => {
    r = await receiver();
  });
  afterEach(async () => {
    for (const la of open.splice(0)) await la.close();
    r.deliveries.length = 0;
    r.attempts.length = 0;
    r.script.length = 0;
    r.otherwise = 200;
  });
  afterAll(async () => {
    await r.close();
  });

  async function start(o: { state?: () => 'up' | 'down' | 'unknown'; dataDir?: string; config?: Partial<LocalAlertsConfig> } = {}) {
    const registry = new Registry();
    const config = localAlertsSchema.parse({
      rules: [FIRE_RULE],
      targets: [
        { id: 'fire-system', url: r.url, secret: SECRET, match: { categories: ['fire'] }, timeoutMs: 1000, maxAttempts: 3, backoff: { initialMs: 10, maxMs: 50 } },
        { id: 'environment-bureau', url: r.url, secret: SECRET, match: { categories: ['environment'] } },
      ],
      ...o.config,
    });
    const la = await LocalAlerts.start({ config, dataDir: o.dataDir ?? tmp(), edgeId: 'edge-t', uplinkState: o.state ?? (() => 'up'), registry, log: pino({ level: 'silent' }) });
    open.push(la);
    return { la, registry };
  }

  it('the cloud acks in time: nothing is sent from the edge', async () => {
    const { la, registry } = await start();
    const e = fireEvent();
    const b = batchOf(e);
    la.accepted([e]);
    expect(await la.beforeAttempt(b)).toBe(b);
    la.afterAttempt(b, 'acked');
    // A late failure report of the same event (an overlapping resend) changes nothing either.
    la.afterAttempt(b, 'failed');
    expect(await metricValue(registry, 'citysense_edge_local_alert_decisions_total', { rule: 'fire-alarm', decision: 'cloud_acked' })).toBe(1);
    expect(await metricValue(registry, 'citysense_edge_local_alert_decisions_total', { decision: 'notified' })).toBe(0);
    expect(la.pendingCount()).toBe(0);
    expect(r.attempts).toHaveLength(0);
  });

  it('uplink down at accept: one signed delivery at once, to the matching target only; later attempts carry edge_notified', async () => {
    const { la, registry } = await start({ state: () => 'down' });
    const e = fireEvent({ zone: 'B2-07' });
    la.accepted([e]);
    const [d] = await r.waitFor(1);
    expect(d!.headers['idempotency-key']).toBe(cloudIds(FIRE_RULE, e).eventId);
    expect(d!.headers['x-citysense-origin']).toBe('edge:edge-t');
    expect(verifySignature(SECRET, d!.raw, d!.headers['x-citysense-signature'] as string, Math.floor(Date.now() / 1000))).toMatchObject({ ok: true });
    expect(d!.body).toMatchObject({ rule: 'fire-alarm', state: 'firing', severity: 'critical', category: 'fire', device_id: 'panel-1', district: 'zhongyuan', type: 'fire_alarm', attrs: { zone: 'B2-07' }, source_event_id: e.id });
    await waitFor(async () => (await metricValue(registry, 'citysense_edge_local_alerts_total', { rule: 'fire-alarm', target: 'fire-system', outcome: 'delivered' })) === 1, 5000, 'delivered counted');
    const b = batchOf(e, fireEvent({ zone: 'other' }));
    const sent = await la.beforeAttempt(b);
    expect(sent).not.toBe(b);
    expect(sent.events[0]!.attrs).toEqual({ zone: 'B2-07', [EDGE_NOTIFIED_ATTR]: 'fire-system' });
    expect(sent.events[1]!.attrs).toEqual({ zone: 'other' });
    expect(b.events[0]!.attrs).toEqual({ zone: 'B2-07' }); // the queue's batch is left as it was
    expect(r.attempts).toHaveLength(1);
  });

  it('a failed upload attempt decides at once; no ack within cloudDownAfterMs decides too', async () => {
    const { la } = await start({ config: { cloudDownAfterMs: 30 } });
    const e1 = fireEvent();
    la.accepted([e1]);
    la.afterAttempt(batchOf(e1), 'failed');
    await r.waitFor(1);
    const e2 = fireEvent();
    la.accepted([e2]); // never acked
    await r.waitFor(2);
    expect(r.deliveries.map((d) => d.body.source_event_id)).toEqual([e1.id, e2.id]);
  });

  it('an event older than maxEventAgeMs is not alerted locally (counted once)', async () => {
    const { la, registry } = await start({ config: { maxEventAgeMs: 60_000 } });
    const old = fireEvent({ zone: 'Z9' }, Date.now() - 3_600_000);
    la.afterAttempt(batchOf(old), 'failed');
    la.afterAttempt(batchOf(old), 'failed');
    expect(await metricValue(registry, 'citysense_edge_local_alert_decisions_total', { rule: 'fire-alarm', decision: 'too_old' })).toBe(1);
    expect(la.pendingCount()).toBe(0);
    expect(r.attempts).toHaveLength(0);
  });

  it('the cloud acks while the target still fails: the edge stops (superseded), edge_notified is not claimed', async () => {
    r.otherwise = 503;
    const { la, registry } = await start();
    const e = fireEvent();
    const b = batchOf(e);
    la.afterAttempt(b, 'failed');
    await waitFor(() => r.attempts.length >= 1, 5000, 'a first attempt');
    expect((await la.beforeAttempt(b)).events[0]!.attrs[EDGE_NOTIFIED_ATTR]).toBeUndefined();
    la.afterAttempt(b, 'acked');
    await waitFor(async () => (await metricValue(registry, 'citysense_edge_local_alerts_total', { outcome: 'superseded' })) === 1, 5000, 'superseded');
    expect(la.pendingCount()).toBe(0);
  });

  it('gives up after maxAttempts (dead), and then does not claim the target either', async () => {
    r.otherwise = 500;
    const { la, registry } = await start();
    const e = fireEvent();
    la.afterAttempt(batchOf(e), 'failed');
    await waitFor(async () => (await metricValue(registry, 'citysense_edge_local_alerts_total', { outcome: 'dead' })) === 1, 5000, 'dead');
    expect(r.attempts).toHaveLength(3);
    expect(la.notifiedTargets(e.id)).toEqual([]);
    expect(await metricValue(registry, 'citysense_edge_local_alert_attempts_total', { target: 'fire-system', outcome: 'http_error' })).toBe(3);
  });

  it('an edge restart neither loses a pending notification nor forgets the targets it notified', async () => {
    const dataDir = tmp();
    r.otherwise = 'hang';
    const first = await start({ dataDir });
    const e = fireEvent();
    const b = batchOf(e);
    first.la.afterAttempt(b, 'failed');
    await waitFor(() => r.attempts.length === 1, 5000, 'an attempt in flight');
    await first.la.close(); // cut short: not delivered
    open.splice(open.indexOf(first.la), 1);
    r.otherwise = 200;
    const second = await start({ dataDir });
    expect(second.la.pendingCount()).toBe(1);
    const [d] = await r.waitFor(1);
    expect(d!.headers['idempotency-key']).toBe(r.attempts[0]!.headers['idempotency-key']);
    expect(d!.raw.equals(r.attempts[0]!.raw)).toBe(true);
    await waitFor(() => second.la.pendingCount() === 0, 5000, 'delivered recorded');
    await second.la.close();
    open.splice(open.indexOf(second.la), 1);
    const third = await start({ dataDir });
    expect((await third.la.beforeAttempt(b)).events[0]!.attrs[EDGE_NOTIFIED_ATTR]).toBe('fire-system');
    third.la.afterAttempt(b, 'failed'); // decided before the restart: not notified again
    expect(third.la.pendingCount()).toBe(0);
    expect(r.deliveries).toHaveLength(1);
  });
});
