// The docs hold working code: every rule example in docs/alert-rules.md validates, and the Node and
// Python receivers of docs/receiving-webhooks.md, run as real processes, accept the cloud's signed
// deliveries and refuse a tampered body.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { parseRules } from '../src/alerts/rules.ts';
import { signatureHeader } from '../src/delivery/sign.ts';
import { alertApp, alertBatch, event, target } from './alerts-fixtures.ts';

const docs = (name: string) => readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8');
const blocks = (md: string, lang: string) => [...md.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);

let influx: TestInflux;
let dir: string;
beforeAll(async () => {
  influx = await testInflux('cloud-webhooks-docs');
  dir = mkdtempSync(join(tmpdir(), 'citysense-receivers-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('docs/alert-rules.md', () => {
  it('has an example of every rule kind, and each validates', async () => {
    const { parse } = await import('yaml');
    const yaml = blocks(docs('alert-rules.md'), 'yaml');
    const kinds = new Set<string>();
    yaml.forEach((b, i) => {
      for (const r of parseRules(parse(b), `alert-rules.md yaml block ${i + 1}`)) kinds.add(r.kind);
    });
    expect([...kinds].sort()).toEqual(['event', 'offline', 'rate', 'threshold']);
  });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function runReceiver(cmd: string, file: string, port: number): Promise<ChildProcess> {
  const child = spawn(cmd, [file], { env: { ...process.env, PORT: String(port), WEBHOOK_SECRET: 'docs-secret-123' }, stdio: ['ignore', 'pipe', 'pipe'] });
  for (let i = 0; i < 200; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{}' });
      return child;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  child.kill();
  throw new Error(`${cmd} ${file} did not listen on ${port}`);
}

async function checkReceiver(cmd: string, code: string, ext: string) {
  const file = join(dir, `receiver.${ext}`);
  writeFileSync(file, code);
  const port = await freePort();
  const child = await runReceiver(cmd, file, port);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  const url = `http://127.0.0.1:${port}/hook`;
  const app = alertApp(influx, {
    rules: [{ id: 'fire-alarm', kind: 'event', category: 'fire', severity: 'critical', types: 'fire_alarm' }],
    targets: [{ ...target('docs', url), secret: 'docs-secret-123', maxAttempts: 1 }],
  });
  await app.ready();
  try {
    app.alerts.onBatch(alertBatch([], [event('panel-1', Date.now(), 'fire_alarm', { zone: 'F2-Z1' })]));
    let rows = app.webhooks.list({ limit: 10 });
    for (let i = 0; i < 100 && rows[0]?.status !== 'delivered' && rows[0]?.status !== 'dead'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      rows = app.webhooks.list({ limit: 10 });
    }
    expect(rows[0]).toMatchObject({ status: 'delivered', last_status: 204 });
    for (let i = 0; i < 40 && !out.includes('firing fire-alarm panel-1'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(out).toContain('firing fire-alarm panel-1');

    const body = '{"state":"firing","rule":"x","device_id":"d"}';
    const t = Math.floor(Date.now() / 1000);
    const send = (b: string, sig: string) => fetch(url, { method: 'POST', body: b, headers: { 'content-type': 'application/json', 'x-citysense-signature': sig, 'idempotency-key': 'k1' } });
    expect((await send(body, signatureHeader('docs-secret-123', body, t))).status).toBe(204);
    expect((await send(body.replace('"d"', '"e"'), signatureHeader('docs-secret-123', body, t))).status).toBe(401);
    expect((await send(body, signatureHeader('wrong-secret', body, t))).status).toBe(401);
    expect((await send(body, signatureHeader('docs-secret-123', body, t - 3600))).status).toBe(401);
  } finally {
    await app.close();
    child.kill();
  }
}

describe('docs/receiving-webhooks.md', () => {
  it('the Node.js receiver verifies real deliveries and refuses tampering', async () => {
    const [js] = blocks(docs('receiving-webhooks.md'), 'js');
    await checkReceiver(process.execPath, js!, 'mjs');
  });

  const python = spawnSync('python3', ['--version']).status === 0;
  it.skipIf(!python)('the Python receiver verifies real deliveries and refuses tampering', async () => {
    const [py] = blocks(docs('receiving-webhooks.md'), 'python');
    await checkReceiver('python3', py!, 'py');
  });
});
