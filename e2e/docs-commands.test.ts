// Issue 12 item 5: every shell block of README.md and docs/**/*.md runs as written against the demo.
// The test starts `scripts/demo.ts` on ports of its own (every port moved by its environment variable,
// a temporary data folder), so it never meets a developer's running demo, and rewrites the demo's fixed
// ports and `.data/` in the extracted commands to match. A block is a fence tagged sh/bash/shell; one
// preceded by `<!-- docs-commands: skip (why) -->` is not run (it starts a demo, runs benchmarks, writes
// outside the project). A page's blocks run in order in one bash (`set -eo pipefail`), as a reader
// pastes them: a variable set by one block is there for the next. Then: the Grafana dashboard's queries
// return rows from the demo's data, the CLIs' --help print help, and Ctrl-C stops the demo.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backfillStatement } from '../cloud/src/influx-admin/retention.ts';
import { freePort, waitFor } from '../scripts/influxd.ts';
import { dashboardQueries, expandQuery, runQuery } from './setup/grafana.ts';
import { isLoopback, listenAddresses } from './setup/listeners.ts';

const ROOT = resolve(import.meta.dirname, '..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');
/** The demo's fixed ports (scripts/demo.ts) and the variables that move them. */
const DEMO_PORTS = {
  8086: 'CITYSENSE_INFLUX_PORT',
  8080: 'CITYSENSE_CLOUD_PORT',
  1883: 'CITYSENSE_EDGE_MQTT_PORT',
  8081: 'CITYSENSE_EDGE_HTTP_PORT',
  6212: 'CITYSENSE_EDGE_HJ212_PORT',
  6213: 'CITYSENSE_EDGE_GB26875_PORT',
  8082: 'CITYSENSE_EDGE_PUSH_PORT',
  4840: 'CITYSENSE_SIM_OPCUA_PORT',
  8090: 'CITYSENSE_DEMO_WEBHOOK_PORT',
} as const;
const port: Record<number, number> = {};
let dataDir: string;
let demo: ChildProcess | undefined;
let out = '';
let exit: Promise<number | null>;

interface Block {
  file: string;
  line: number;
  code: string;
}

function markdownFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? walk(p) : n.endsWith('.md') ? [p] : [];
    });
  return [join(ROOT, 'README.md'), ...walk(join(ROOT, 'docs')).sort()];
}

/** The runnable blocks of a Markdown file, and the skipped ones (with the reason given). */
function shellBlocks(file: string): { run: Block[]; skipped: (Block & { why: string })[] } {
  const lines = readFileSync(file, 'utf8').split('\n');
  const run: Block[] = [];
  const skipped: (Block & { why: string })[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```\s*(sh|bash|shell)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    const b = { file: relative(ROOT, file), line: start + 1, code: body.join('\n') };
    const skip = /<!--\s*docs-commands:\s*skip\s*\(([^)]*)\)\s*-->/.exec(lines[start - 1] ?? '');
    if (skip) skipped.push({ ...b, why: skip[1]! });
    else run.push(b);
  }
  return { run, skipped };
}

/** The block as it must run against this test's demo: its ports, its data folder, a bounded live stream. */
function adapt(code: string, tmp: string): string {
  return code
    .replace(/\b(127\.0\.0\.1|localhost):(\d{4})\b/g, (m, host: string, p: string) => (port[Number(p)] ? `${host}:${port[Number(p)]}` : m))
    .replace(/(-p\s+)(\d{4})\b/g, (m, flag: string, p: string) => (port[Number(p)] ? `${flag}${port[Number(p)]}` : m))
    .replace(/(^|[\s'"=])\.data\//gm, `$1${dataDir}/`)
    .replace(/\/tmp\//g, `${tmp}/`)
    // A live stream never ends by itself: watched for 3 s (curl's exit 28 is that timeout).
    .replace(/^(.*curl -sN .*?)(\s+#.*)?$/gm, (_m, cmd: string) => `${cmd.replace('curl -sN ', 'curl -sN --max-time 3 ')} || [ $? -eq 28 ]`);
}

function runPage(blocks: Block[], tmp: string, timeoutMs: number): { status: number | null; output: string } {
  const script = ['set -eo pipefail', 'trap \'echo "FAILED at line $LINENO of the block above" >&2\' ERR']
    .concat(blocks.flatMap((b) => [`echo "### ${b.file}:${b.line}"`, adapt(b.code, tmp)]))
    .join('\n');
  const r = spawnSync('bash', ['-c', script], { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', env: { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` } });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'citysense-docs-'));
  const env: NodeJS.ProcessEnv = { ...process.env, CITYSENSE_DATA_DIR: dataDir };
  for (const [p, name] of Object.entries(DEMO_PORTS)) env[name] = String((port[Number(p)] = await freePort()));
  for (const v of ['INFLUX_URL', 'CITYSENSE_WEBHOOK_URL', 'CITYSENSE_AUTH_SECRET', 'CITYSENSE_DEMO_HOST']) delete env[v];
  demo = spawn(TSX, ['scripts/demo.ts', '--sim-devices', '1', '--interval-ms', '1000'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  demo.stdout!.on('data', (c) => (out += String(c)));
  demo.stderr!.on('data', (c) => (out += String(c)));
  exit = new Promise((r) => demo!.once('exit', (code) => r(code)));
  await waitFor('the demo banner', () => out.includes('citysense demo is running') || demo!.exitCode !== null, 120_000, 200);
  if (!out.includes('citysense demo is running')) throw new Error(`the demo did not start:\n${out.slice(-4000)}`);
  // Some data of every kind before the pages are followed (the elevator controller starts after the banner).
  const influx = `http://127.0.0.1:${port[8086]}`;
  await waitFor('readings of every family', async () => {
    for (const m of ['environment', 'fire', 'nbiot', 'elevator']) if ((await runQuery(influx, 'citysense', `SELECT count(*) FROM ${m}`)).rows === 0) return false;
    return true;
  }, 60_000, 500);
}, 180_000);

afterAll(async () => {
  // The demo's children are in process groups of their own: only its own ordered stop reaches them.
  if (demo && demo.exitCode === null) {
    demo.kill('SIGTERM');
    await Promise.race([exit, new Promise((r) => setTimeout(r, 45_000))]);
    if (demo.exitCode === null) demo.kill('SIGKILL');
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

const plain = () => out.replace(/\x1b\[[0-9;]*m/g, ''); // eslint-disable-line no-control-regex

describe('every shell block of README.md and docs/ against the demo', () => {
  const pages = markdownFiles().map((f) => ({ file: f, ...shellBlocks(f) }));

  it('finds the blocks, and every skipped one says why', () => {
    expect(pages.flatMap((p) => p.run).length).toBeGreaterThanOrEqual(10);
    for (const p of pages) for (const s of p.skipped) expect(s.why.trim(), `${s.file}:${s.line}`).not.toBe('');
  });

  // README first: it plays the fire scenario whose alerts the later checks look for.
  for (const page of pages.filter((p) => p.run.length > 0)) {
    const name = relative(ROOT, page.file);
    it(`${name}: ${page.run.length} block(s) run as written`, () => {
      const tmp = mkdtempSync(join(tmpdir(), 'citysense-docs-page-'));
      try {
        const r = runPage(page.run, tmp, 150_000);
        expect(r.status, r.output.slice(-4000)).toBe(0);
        if (name === 'README.md') {
          // The resolve loop found the scenario's alerts and resolved each.
          expect(r.output.match(/"state":"resolved"/g)?.length ?? 0, r.output.slice(-3000)).toBeGreaterThanOrEqual(1);
          expect(r.output).toContain('demo-env-001'); // the query block
        }
        if (name === 'docs/architecture.md') expect(r.output).toMatch(/"pm25"\]?.*35\.2|35\.2/);
        if (name === 'docs/alert-rules.md') expect(r.output).toContain('"id":"fire-alarm"');
        if (name === 'docs/operations.md') expect(r.output).toMatch(/citysense_edge_queue_items[\s\S]*citysense_cloud_influx_up 1/);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    }, 170_000);
  }

  it('after the README: no alert of the fire scenario is left open, and the demo receiver printed each resolution naming the fire system', async () => {
    const base = `http://127.0.0.1:${port[8080]}`;
    const login = await fetch(`${base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'viewer', password: 'viewer-demo' }) });
    const { token } = (await login.json()) as { token: string };
    const open = await fetch(`${base}/v1/alerts?state=firing,acknowledged&device=demo-fire-002`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await open.json()) as { alerts: unknown[] }).alerts).toEqual([]);
    await waitFor('the resolution at the demo receiver', () => /to fire-system, signature ok: RESOLVED .*demo-fire-002/.test(plain()), 30_000);
  }, 40_000);
});

describe('the demo as documented', () => {
  it('every Grafana dashboard query returns rows from the demo\'s data (hourly roll-ups backfilled as docs/retention.md says)', async () => {
    const influx = `http://127.0.0.1:${port[8086]}`;
    const hour = 3_600_000;
    for (const family of ['environment', 'elevator', 'fire', 'nbiot']) {
      const q = backfillStatement('citysense', 'autogen', family, '1h', (Math.floor(Date.now() / hour) - 1) * hour, (Math.floor(Date.now() / hour) + 1) * hour);
      expect((await runQuery(influx, 'citysense', q)).error, q).toBeUndefined();
    }
    const empty: string[] = [];
    for (const { where, q } of dashboardQueries()) {
      const r = await runQuery(influx, 'citysense', expandQuery(q, 'time > now() - 1h'));
      expect(r.error, `${where}: ${q}`).toBeUndefined();
      if (r.rows === 0) empty.push(where);
    }
    expect(empty).toEqual([]);
  }, 60_000);

  it('every listener, the webhook receiver too, is on loopback', async () => {
    for (const [p, name] of Object.entries(DEMO_PORTS)) {
      const addrs = await listenAddresses(port[Number(p)]!);
      expect(addrs.length, `${name}: nothing listens`).toBeGreaterThan(0);
      expect(addrs.filter((a) => !isLoopback(a)), name).toEqual([]);
    }
  });

  it('npm start -- --help lists every port variable; edge, cloud and sim --help print help, not a stack trace', () => {
    const demoSrc = readFileSync(join(ROOT, 'scripts/demo.ts'), 'utf8');
    const vars = [...new Set(demoSrc.match(/env\.CITYSENSE_[A-Z0-9_]+_PORT/g)!.map((v) => v.slice(4)))];
    expect(vars.sort()).toEqual(Object.values(DEMO_PORTS).sort());
    const run = (args: string[]) => spawnSync('npm', args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, npm_config_loglevel: 'error' } });
    const start = spawnSync(TSX, ['scripts/demo.ts', '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(start.status).toBe(0);
    for (const v of vars) expect(start.stdout).toContain(v);
    for (const what of ['edge', 'cloud', 'sim']) {
      const r = run(['run', '--silent', what, '--', '--help']);
      expect(r.status, `${what}: ${r.stderr}`).toBe(0);
      expect(r.stdout.toLowerCase()).toContain('usage');
      expect(`${r.stdout}${r.stderr}`).not.toMatch(/\n\s+at /);
    }
  }, 120_000);

  it('Ctrl-C stops the demo in order, none reported dead', async () => {
    demo!.kill('SIGINT');
    expect(await exit).toBe(0);
    const text = plain();
    expect(text).not.toMatch(/died \(code/);
    const at = ['sim', 'edge', 'cloud', 'influxdb'].map((n) => text.search(new RegExp(`\\[${n} *\\] stopped`)));
    expect(at.every((i) => i >= 0), text.slice(-2000)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
  }, 60_000);
});
