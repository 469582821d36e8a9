// Issue 12 item 6: the loaded alert rules in the API (GET /v1/rules, viewer+) and on the console's Rules
// page (headless Chromium), one's own rules from a folder beside the shipped ones, and the login page's
// hints: a link to the documentation, the demo's accounts only when the cloud runs as the demo
// (operators.demoUsers). Screenshots go to test-results/screenshots/.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, login, registryApp } from '../../cloud/test/registry-fixtures.ts';
import { testInflux, type TestInflux } from '../setup/influx.ts';
import { launchChromium, type TestBrowser } from './browser.ts';

declare const document: { querySelectorAll(sel: string): ArrayLike<unknown> };

const ROOT = resolve(import.meta.dirname, '..', '..');
const SHOTS = join(ROOT, 'test-results', 'screenshots');
const own = mkdtempSync(join(tmpdir(), 'citysense-rules-'));
let influx: TestInflux;
let demoApp: FastifyInstance;
let plainApp: FastifyInstance;
let base: string;
let chrome: TestBrowser;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  writeFileSync(join(own, 'mine.yaml'), 'rules:\n  - { id: my-pm25-watch, kind: threshold, category: environment, severity: minor, metric: pm25, above: 50, match: { district: jinshui } }\n');
  influx = await testInflux('console-rules');
  demoApp = registryApp(influx, { alerts: { rulesFiles: [join(ROOT, 'cloud', 'rules'), own] } });
  await demoApp.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(demoApp.server.address() as AddressInfo).port}`;
  plainApp = registryApp(influx, { operators: { demoUsers: false, users: [] } });
  await plainApp.ready();
  chrome = await launchChromium();
}, 300_000);
afterAll(async () => {
  await chrome?.close();
  await demoApp?.close();
  await plainApp?.close();
  rmSync(own, { recursive: true, force: true });
});

describe('GET /v1/rules', () => {
  it('lists every loaded rule, as validated, with the file it came from, to a viewer; nothing without a token', async () => {
    expect((await demoApp.inject({ method: 'GET', url: '/v1/rules' })).statusCode).toBe(401);
    const res = await demoApp.inject({ method: 'GET', url: '/v1/rules', headers: bearer(await login(demoApp, 'viewer')) });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { count: number; rules: { id: string; kind: string; source: string; above?: number; for?: number }[] };
    expect(body.count).toBe(body.rules.length);
    expect(body.rules.map((r) => r.id)).toEqual(demoApp.alerts.ruleList.map((r) => r.id));
    expect(body.rules.find((r) => r.id === 'fire-alarm')).toMatchObject({ kind: 'event', source: 'cloud/rules/fire.yaml' });
    expect(body.rules.find((r) => r.id === 'my-pm25-watch')).toMatchObject({ kind: 'threshold', above: 50, for: 0, source: join(own, 'mine.yaml') });
  });
});

describe('login page hints', () => {
  it('/console/info.json says demo only when the demo accounts exist; /docs/ serves the documentation', async () => {
    expect((await demoApp.inject({ method: 'GET', url: '/console/info.json' })).json()).toEqual({ demo: true, docs: '/docs/' });
    expect((await plainApp.inject({ method: 'GET', url: '/console/info.json' })).json()).toEqual({ demo: false, docs: '/docs/' });
    const index = await demoApp.inject({ method: 'GET', url: '/docs/' });
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.body).toContain('href="/docs/console.md"');
    const page = await demoApp.inject({ method: 'GET', url: '/docs/console.md' });
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/^# Operator console/);
    expect((await demoApp.inject({ method: 'GET', url: '/docs/..%2Fpackage.json' })).statusCode).toBe(404);
  });

  it('in the browser: the login page links to the docs and shows the demo accounts; the Rules page lists the rules', async () => {
    const page = await (await chrome.context()).newPage();
    page.setDefaultTimeout(15_000);
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${base}/`);
    await page.waitForSelector('#demo-users');
    expect(await page.getAttribute('#docs-link', 'href')).toBe('/docs/');
    expect(await page.textContent('#demo-users')).toContain('duty / duty-demo');
    await page.screenshot({ path: join(SHOTS, 'console-login-demo.png'), fullPage: true });

    await page.fill('#username', 'viewer');
    await page.fill('#password', 'viewer-demo');
    await page.click('#login-submit');
    await page.waitForSelector('#whoami');
    await page.click('a[href="#/rules"]');
    await page.waitForSelector('#rules tr[data-rule="my-pm25-watch"]');
    const rows = await page.evaluate(() => document.querySelectorAll('#rules tbody tr[data-rule]').length);
    expect(rows).toBe(demoApp.alerts.ruleList.length);
    const mine = await page.textContent('#rules tr[data-rule="my-pm25-watch"]');
    expect(mine).toContain('pm25 > 50');
    expect(mine).toContain('district: jinshui');
    expect(await page.textContent('#rules tr[data-rule="fire-alarm"]')).toContain('one alert per zone');
    expect(await page.textContent('#rules tr[data-rule="pm25-above-24h-limit"]')).toContain('pm25 > 75 for 60 min');
    await page.screenshot({ path: join(SHOTS, 'console-rules.png'), fullPage: true });
    expect(problems).toEqual([]);
  }, 60_000);
});
