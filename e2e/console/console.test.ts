// The operator console in headless Chromium (Debian's chromium, driven by playwright-core) against the
// demo stack (`npm start` on free ports, its own influxd): a wrong password is refused on the page; an
// admin imports the demo registry into the cloud through the console's CSV form; the duty operator opens
// a district and a simulated device and sees its value change live, sees the fire scenario's alarm arrive
// in the alert list without a reload, acknowledges it, and the acknowledgement is in the API and the
// audit log; a viewer sees no ack/resolve buttons. Screenshots of every page go to
// test-results/screenshots/ (git-ignored; CI keeps them as artifacts).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { freePort, waitFor } from '../../scripts/influxd.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../../scripts/webhook-receiver.ts';
import { launchChromium, type TestBrowser } from './browser.ts';

// Functions given to page.evaluate / waitForFunction run in the page; the project compiles without the
// DOM library, so the little of it they use is declared here.
interface PageEl {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  querySelector(sel: string): PageEl | null;
}
declare const document: { querySelector(sel: string): PageEl | null; querySelectorAll(sel: string): Iterable<PageEl> & ArrayLike<PageEl> };
declare const window: { __noReload?: number };
declare const sessionStorage: { length: number };

const ROOT = resolve(import.meta.dirname, '..', '..');
const SHOTS = join(ROOT, 'test-results', 'screenshots');
const ports = { influx: 0, cloud: 0, mqtt: 0, http: 0, hj212: 0, opcua: 0 };
let demo: ChildProcess;
let out = '';
let dataDir: string;
let hooks: WebhookReceiver;
let chrome: TestBrowser;
let base: string;
/** Problems the pages reported: CSP violations, uncaught errors, failed requests to our own server. */
const pageProblems: string[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // The browser first: on a fresh machine this is where chromium gets installed.
  chrome = await launchChromium();
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
  dataDir = mkdtempSync(join(tmpdir(), 'citysense-console-test-'));
  hooks = await startWebhookReceiver(0);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CITYSENSE_DATA_DIR: dataDir,
    CITYSENSE_INFLUX_PORT: String(ports.influx),
    CITYSENSE_CLOUD_PORT: String(ports.cloud),
    CITYSENSE_EDGE_MQTT_PORT: String(ports.mqtt),
    CITYSENSE_EDGE_HTTP_PORT: String(ports.http),
    CITYSENSE_EDGE_HJ212_PORT: String(ports.hj212),
    CITYSENSE_SIM_OPCUA_PORT: String(ports.opcua),
    CITYSENSE_WEBHOOK_URL: hooks.url,
  };
  delete env.INFLUX_URL;
  delete env.CITYSENSE_AUTH_SECRET;
  demo = spawn(join(ROOT, 'node_modules/.bin/tsx'), ['scripts/demo.ts', '--sim-devices', '1', '--interval-ms', '1000'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  demo.stdout!.on('data', (c) => (out += String(c)));
  demo.stderr!.on('data', (c) => (out += String(c)));
  await waitFor('the demo banner', () => out.includes('citysense demo is running') || demo.exitCode !== null, 100_000, 200);
  if (!out.includes('citysense demo is running')) throw new Error(`the demo did not start:\n${out.slice(-4000)}`);
  base = `http://127.0.0.1:${ports.cloud}`;
  // The demo puts its devices into the cloud's registry at start; a demo that does not (older
  // scripts/demo.ts) gets them here, as admin, so the console has districts to show.
  const admin = await token('admin', 'admin-demo');
  if ((await api(`/v1/devices/demo-env-001`, admin)).status === 404) {
    const res = await api<{ refused: number }>('/v1/devices/import?mode=partial', admin, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: demoRegistryCsv().csv });
    expect(res.body.refused, JSON.stringify(res.body)).toBe(0);
  }
}, 600_000);

afterAll(async () => {
  await chrome?.close();
  if (demo && demo.exitCode === null) {
    demo.kill('SIGINT');
    await Promise.race([new Promise((r) => demo.once('exit', r)), new Promise((r) => setTimeout(r, 15_000))]);
    if (demo.exitCode === null) demo.kill('SIGKILL');
  }
  await hooks?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

async function newPage(): Promise<Page> {
  const ctx = await chrome.context();
  const page = await ctx.newPage();
  page.setDefaultTimeout(15_000);
  page.on('console', (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to/i.test(t) || (m.type() === 'error' && !/status of 40[13]/.test(t))) pageProblems.push(`console ${m.type()}: ${t}`);
  });
  page.on('pageerror', (e) => pageProblems.push(`page error: ${e.message}`));
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `console-${name}.png`), fullPage: true });
}

async function logIn(page: Page, user: string, password: string): Promise<void> {
  await page.goto(`${base}/`);
  await page.fill('#username', user);
  await page.fill('#password', password);
  await page.click('#login-submit');
  await page.waitForSelector('#whoami');
  expect(await page.textContent('#whoami')).toContain(user);
}

async function api<T>(path: string, token: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } });
  return { status: res.status, body: (await res.json().catch(() => undefined)) as T };
}

async function token(user: string, password: string): Promise<string> {
  const res = await fetch(`${base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: user, password }) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

/** The demo's registry file (what its simulators use) as the cloud's CSV import (for a demo that does not provision the cloud). */
function demoRegistryCsv(): { csv: string; ids: string[] } {
  const reg = YAML.parse(readFileSync(join(dataDir, 'demo', 'registry.yaml'), 'utf8')) as { devices: Record<string, any>[] };
  const cell = (v: unknown) => {
    const s = v === undefined || v === null ? '' : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  // Every demo device is served by the demo's one edge, edge-1.
  const header = ['id', 'family', 'district', 'profile', 'site', 'tags', 'hj212_mn', 'hj212_password', 'opcua_server', 'opcua_vars', 'secret', 'edge'];
  const lines = [header.join(',')];
  for (const d of reg.devices) {
    const tags = Object.entries((d.tags ?? {}) as Record<string, string>).filter(([k]) => k !== 'site' && k !== 'model'); // model: a tag the registry sets itself
    lines.push(
      [
        d.id,
        d.family,
        d.district ?? 'demo',
        d.profile ?? '',
        d.tags?.site ?? '',
        tags.map(([k, v]) => `${k}=${v}`).join(';'),
        d.hj212?.mn ?? '',
        d.hj212?.password ?? '',
        d.opcua?.server ?? '',
        Object.entries((d.opcua?.vars ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(';'),
        d.secret ?? '',
        'edge-1',
      ]
        .map(cell)
        .join(','),
    );
  }
  return { csv: `${lines.join('\n')}\n`, ids: reg.devices.map((d) => String(d.id)) };
}

describe('operator console in headless Chromium, against the demo stack', () => {
  it('refuses a wrong password with a visible message; serves no data without a login', async () => {
    const page = await newPage();
    await page.goto(`${base}/`);
    await page.waitForSelector('#login-form');
    await shot(page, 'login');
    await page.fill('#username', 'duty');
    await page.fill('#password', 'not-the-password');
    await page.click('#login-submit');
    await page.waitForSelector('#login-message.error');
    expect(await page.textContent('#login-message')).toBe('Wrong username or password.');
    expect(await page.locator('#whoami').count()).toBe(0);
    await shot(page, 'login-refused');
    // The console's pages are public files; the data behind them is not.
    expect((await fetch(`${base}/v1/alerts`)).status).toBe(401);
    expect((await fetch(`${base}/v1/edges`)).status).toBe(401);
    await page.context().close();
  }, 60_000);

  it('admin: the registry page lists the devices and imports a CSV, refusing a bad row by its line', async () => {
    const page = await newPage();
    await logIn(page, 'admin', 'admin-demo');
    await page.click('a[href="#/registry"]');
    await page.waitForSelector('#registry-devices tr[data-device="demo-env-001"]');
    const before = await page.locator('#registry-devices tbody tr').count();
    const csv = [
      'id,family,district,profile,site,secret',
      'console-e2e-env-001,environment,jinshui,generic-json,console-test-site,console-e2e-secret-1',
      'console-e2e-bad-001,volcano,jinshui,,,',
    ].join('\n');
    await page.fill('#csv-text', csv);
    await page.selectOption('#csv-mode', 'partial');
    await page.click('#csv-submit');
    await page.waitForSelector('#import-summary');
    expect(await page.textContent('#import-summary')).toContain('1 imported, 1 refused of 2 rows');
    expect(await page.textContent('#import-result table')).toContain('console-e2e-bad-001');
    await page.waitForSelector('#registry-devices tr[data-device="console-e2e-env-001"]');
    expect(await page.locator('#registry-devices tbody tr').count()).toBe(before + 1);
    await shot(page, 'registry');
    // The import is in the audit log under the admin's name.
    const audit = await api<{ entries: { actor: string; action: string; target: string }[] }>('/v1/audit?actor=admin&action=device.*', await token('viewer', 'viewer-demo'));
    expect(audit.body.entries).toContainEqual(expect.objectContaining({ actor: 'admin', action: 'device.create', target: 'device:console-e2e-env-001' }));
    await page.context().close();
  }, 60_000);

  let alertId = '';

  it('duty: districts, a device whose live value changes, the fire alarm arriving live, acknowledged', async () => {
    const page = await newPage();
    await logIn(page, 'duty', 'duty-demo');
    expect(await page.locator('a[href="#/registry"]').count()).toBe(0); // not an admin
    await page.waitForSelector('#stream-state.live');

    // Districts: jinshui has the demo environment station and is heard from.
    await page.waitForSelector('a.district[data-district="jinshui"]');
    await page.waitForFunction(() => Number(document.querySelector('a.district[data-district="jinshui"] .count.online b')?.textContent ?? 0) > 0, undefined, { timeout: 20_000 });
    await shot(page, 'districts');

    await page.click('a.district[data-district="jinshui"]');
    await page.waitForSelector('#devices tr[data-device="demo-env-001"] .status.online', { timeout: 20_000 });
    await shot(page, 'district');

    // A simulated device: its readings change every second (--interval-ms 1000).
    await page.click('#devices tr[data-device="demo-env-001"] a');
    await page.waitForSelector('#latest td.value[data-metric]');
    const values = () =>
      page.$$eval('#latest td.value[data-metric]', (tds) => Object.fromEntries(tds.map((td) => [(td as PageEl).dataset.metric!, td.textContent ?? ''])));
    const before = await values();
    await shot(page, 'device-first');
    // Some metric shows a new value (a new reading with another value) within the deadline.
    await page.waitForFunction(
      (was) => [...document.querySelectorAll('#latest td.value[data-metric]')].some((td) => was[td.dataset.metric!] !== undefined && was[td.dataset.metric!] !== td.textContent),
      before,
      { timeout: 30_000, polling: 250 },
    );
    const after = await values();
    const changed = Object.keys(before).filter((k) => after[k] !== undefined && after[k] !== before[k]);
    expect(changed.length).toBeGreaterThan(0);
    // The chart (uPlot) holds the recent readings.
    await page.waitForSelector('.chart .uplot canvas');
    await page.waitForFunction(() => (document.querySelectorAll('.chart .u-legend .u-series').length ?? 0) >= 2);
    await page.waitForTimeout(2500); // one more poll, so the screenshot shows a line with a few points
    await shot(page, 'device');

    // Alerts: the page stays loaded (a marker on window survives) while the alarm arrives over the stream.
    await page.click('a[href="#/alerts"]');
    await page.waitForSelector('#alerts');
    await page.waitForFunction(() => document.querySelector('#alerts-status')?.textContent === 'updating live');
    await page.evaluate(() => ((window.__noReload = 1)));
    const row = 'tr.alert[data-device="demo-fire-002"][data-rule="fire-alarm"]';
    expect(await page.locator(row).count()).toBe(0);

    const sim = spawn(
      join(ROOT, 'node_modules/.bin/tsx'),
      ['device-sim/src/cli.ts', '--url', `mqtt://127.0.0.1:${ports.mqtt}`, '--fire-panel', 'demo-fire-002:demo-fire-002-secret', '--scenario', 'fire', '--sim-step-ms', '5000', '--interval-ms', '100', '--quiet'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let simOut = '';
    sim.stdout!.on('data', (c) => (simOut += String(c)));
    sim.stderr!.on('data', (c) => (simOut += String(c)));
    const simExit = new Promise<number | null>((r) => sim.once('exit', (code) => r(code)));

    // The panel raises the zone's fire alarm (attrs.zone) and a system-level one; the zone's is the one to act on.
    const zoneRow = await page.waitForFunction(
      (sel) => [...document.querySelectorAll(`${sel}[data-state="firing"]`)].find((tr) => /zone=F\d-Z\d/.test(tr.querySelector('td.detail')?.textContent ?? ''))?.dataset.alertId,
      row,
      { timeout: 45_000, polling: 200 },
    );
    expect(await page.evaluate(() => window.__noReload)).toBe(1);
    alertId = (await zoneRow.jsonValue())!;
    expect(alertId).toMatch(/^al_/);
    const mine = `tr.alert[data-alert-id="${alertId}"]`;
    expect(await page.textContent(`${mine} td.detail`)).toMatch(/^fire_alarm, .*zone=F\d-Z\d/);
    expect(Number(await page.textContent('#alert-badge'))).toBeGreaterThan(0);
    await shot(page, 'alerts-firing');

    await page.click(`${mine} button.ack`);
    await page.waitForSelector(`${mine}[data-state="acknowledged"]`);
    expect(await page.textContent(`${mine} td:nth-child(2)`)).toContain('by duty');
    expect(await page.locator(`${mine} button.ack`).count()).toBe(0);
    expect(await page.locator(`${mine} button.resolve`).count()).toBe(1);
    await shot(page, 'alerts');

    // The acknowledgement in the API and in the audit log.
    const t = await token('viewer', 'viewer-demo');
    const a = await api<{ state: string; acked_by: string; changes: { state: string }[] }>(`/v1/alerts/${alertId}`, t);
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ state: 'acknowledged', acked_by: 'duty' });
    const audit = await api<{ entries: { actor: string; action: string; target: string }[] }>(`/v1/audit?action=alert.*&actor=duty`, t);
    expect(audit.status).toBe(200);
    expect(audit.body.entries).toContainEqual(expect.objectContaining({ actor: 'duty', action: 'alert.ack', target: `alert:${alertId}` }));

    // Edges: the demo edge, heard from a moment ago.
    await page.click('a[href="#/edges"]');
    await page.waitForSelector('#edges tr[data-edge="edge-1"] .status.up');
    expect(Number(await page.textContent('#edges tr[data-edge="edge-1"] td:nth-child(6)'))).toBeGreaterThan(0); // devices it serves
    await shot(page, 'edges');

    expect(await simExit, simOut).toBe(0);
    await page.context().close();
  }, 150_000);

  it('viewer: sees the alerts but no acknowledge or resolve button; the API refuses a viewer anyway', async () => {
    expect(alertId).not.toBe('');
    const page = await newPage();
    await logIn(page, 'viewer', 'viewer-demo');
    await page.click('a[href="#/alerts"]');
    const row = `tr.alert[data-alert-id="${alertId}"]`;
    await page.waitForSelector(row);
    expect(await page.locator('#alerts button').count()).toBe(0);
    expect(await page.locator('#alerts th', { hasText: 'Actions' }).count()).toBe(0);
    await shot(page, 'alerts-viewer');
    const t = await token('viewer', 'viewer-demo');
    expect((await api(`/v1/alerts/${alertId}/resolve`, t, { method: 'POST' })).status).toBe(403);
    // Logging out ends the session in this tab: back to the login form, nothing kept; and the cloud
    // revokes the token, so a copy of it (here: read from the tab before) is refused from then on.
    const stored = await page.evaluate(() => (sessionStorage as unknown as { getItem(k: string): string | null }).getItem('citysense.session'));
    const tabToken = (JSON.parse(stored ?? '{}') as { token?: string }).token ?? '';
    expect((await api('/v1/alerts', tabToken)).status).toBe(200);
    await page.click('#logout');
    await page.waitForSelector('#login-form');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    const deadline = Date.now() + 5000;
    while ((await api('/v1/alerts', tabToken)).status !== 401 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await api<{ error: string }>('/v1/alerts', tabToken)).body).toMatchObject({ error: 'AUTH_INVALID' });
    await page.context().close();
  }, 60_000);

  it('no page reported a CSP violation or a script error', () => {
    expect(pageProblems).toEqual([]);
  });
});
