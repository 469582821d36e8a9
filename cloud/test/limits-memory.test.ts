// Issue 11 item 1 against the real cloud process: a small gzip body that declares tens of millions of
// empty readings is refused with 413 and a reason while the process's memory stays bounded, and a
// neighbour's batch sent at the same time is written. Memory is the kernel's own figure for the cloud
// process (VmHWM, its peak resident set), so this is a memory assertion, not a timing one.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/influxd.ts';
import { testInflux, waitFor, type TestInflux } from '../../e2e/setup/influx.ts';
import { batch, batchHeaders, EDGE_A, EDGE_B, envReading, protobuf, sha256Hex, T0 } from './helpers.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const MiB = 1024 * 1024;

/** Peak and current resident set of a process, from /proc (Linux). */
function memory(pid: number): { peak: number; rss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(/^(\w+):\s+(\d+) kB$/m.exec(status.split('\n').find((l) => l.startsWith(`${name}:`)) ?? '')?.[2] ?? NaN) * 1024;
  return { peak: kb('VmHWM'), rss: kb('VmRSS') };
}

/** Resets the process's VmHWM to its current RSS (Linux ≥ 4.0, our own child), so a peak is this test's. */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** What a 58 KB gzip body can declare: `3a 00` (an empty Reading, field 7) n times after a valid head. */
function readingsBomb(n: number): Buffer {
  const head = Buffer.from(protobuf(batch(EDGE_A.id, [envReading('bomb-1', T0, { pm25: 1 })])));
  const body = Buffer.alloc(head.length + 2 * n);
  head.copy(body);
  for (let i = head.length; i < body.length; i += 2) body[i] = 0x3a;
  return gzipSync(body);
}

/** One series (field 9) whose packed ts_deltas (field 2) hold n zero deltas: n readings in n bytes. */
function seriesBomb(n: number): Buffer {
  const head = Buffer.from(protobuf(batch(EDGE_A.id, [envReading('bomb-2', T0, { pm25: 1 })])));
  const len = (x: number) => {
    const out: number[] = [];
    while (x > 0x7f) {
      out.push((x & 0x7f) | 0x80);
      x = Math.floor(x / 128);
    }
    out.push(x);
    return Buffer.from(out);
  };
  const deltas = Buffer.concat([Buffer.from([0x12]), len(n), Buffer.alloc(n)]);
  const series = Buffer.concat([Buffer.from([0x4a]), len(deltas.length + 2), Buffer.from([0x08, 0x00]), deltas]);
  return gzipSync(Buffer.concat([head, series]));
}

describe('the cloud process under a decode bomb', () => {
  let influx: TestInflux;
  let dir: string;
  let child: ChildProcess | undefined;
  let url: string;

  beforeAll(async () => {
    influx = await testInflux('limits_memory');
    dir = mkdtempSync(join(tmpdir(), 'citysense-limits-'));
  });

  afterAll(async () => {
    await stopCloud();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh cloud process per test: memory freed by one test stays resident and would hide the next one's. */
  async function startCloud(): Promise<void> {
    await stopCloud();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const file = join(dir, `cloud-${port}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        listen: { host: '127.0.0.1', port },
        store: { path: join(dir, `cloud-${port}.db`) },
        influx: { url: influx.url, database: influx.db, retention: { manage: false } },
        auth: { edges: [{ id: EDGE_A.id, tokenSha256: sha256Hex(EDGE_A.token) }, { id: EDGE_B.id, tokenSha256: sha256Hex(EDGE_B.token) }] },
        log: { level: 'warn' },
      }),
    );
    const c = spawn(join(ROOT, 'node_modules', '.bin', 'node'), ['--import', 'tsx', 'cloud/src/main.ts', '--config', file], {
      cwd: ROOT,
      env: { ...process.env, CITYSENSE_AUTH_SECRET: 'limits-test-operator-token-key' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child = c;
    await waitFor('the cloud to listen', async () => {
      if (c.exitCode !== null) throw new Error(`the cloud exited with ${c.exitCode}`);
      return (await fetch(`${url}/healthz`).catch(() => undefined))?.ok === true;
    }, 60_000);
    // Warm up: one good batch, so the baseline holds the loaded code, the store and the InfluxDB client.
    expect((await post(protobuf(batch(EDGE_B.id, [envReading('warm-1', T0, { pm25: 1 })]), true), EDGE_B.token, true)).status).toBe(200);
    resetPeak(c.pid!);
  }

  async function stopCloud(): Promise<void> {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  }

  const post = (body: Buffer, token: string, gzip: boolean) =>
    fetch(`${url}/v1/batches`, { method: 'POST', body, headers: batchHeaders(token, gzip) }).then(async (r) => ({ status: r.status, body: Buffer.from(await r.arrayBuffer()) }));

  it('refuses 10M+ declared readings with 413 and a reason, heap bounded, and writes the neighbour', async () => {
    const bombs = [readingsBomb(30_000_000), seriesBomb(60_000_000)];
    for (const b of bombs) expect(b.length).toBeLessThan(128 * 1024);
    await startCloud();
    const base = memory(child!.pid!);

    const neighbour = batch(EDGE_B.id, [envReading('neighbour-1', T0 + 1000, { pm25: 42.5 })]);
    const [r1, r2, r3, ok] = await Promise.all([
      post(bombs[0]!, EDGE_A.token, true),
      post(bombs[1]!, EDGE_A.token, true),
      post(bombs[0]!, EDGE_A.token, true),
      post(protobuf(neighbour, true), EDGE_B.token, true),
    ]);
    for (const r of [r1, r2, r3]) {
      expect(r.status).toBe(413);
      expect(JSON.parse(r.body.toString()).error).toBe('BATCH_TOO_MANY_READINGS');
    }
    expect(ok.status).toBe(200);

    // Three bombs at once, each inflating to 60 MB (under limits.inflatedBytes, 64 MiB): the buffers are
    // the whole cost, at most twice inflatedBytes each while gunzip joins its chunks (docs/security.md).
    // Decoded, the first alone would be 30 M objects (several GB).
    const after = memory(child!.pid!);
    expect(after.peak - base.rss).toBeLessThan(3 * 2 * 64 * MiB + 64 * MiB);
    await waitFor('the neighbour reading in InfluxDB', async () => (await influx.query(`SELECT pm25 FROM environment WHERE device_id = 'neighbour-1'`)).length === 1);
    expect(child!.exitCode).toBeNull();
  });

  it('stops inflating a zero bomb at limits.inflatedBytes while streaming', async () => {
    const zeros = gzipSync(Buffer.alloc(512 * MiB));
    await startCloud();
    const base = memory(child!.pid!);
    const r = await post(zeros, EDGE_A.token, true);
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body.toString()).error).toBe('INFLATED_TOO_LARGE');
    // Inflated whole, the body would take 512 MiB; the inflater stops at 64 MiB (+ one chunk), joined once.
    const grew = memory(child!.pid!).peak - base.rss;
    expect(grew).toBeLessThan(2 * 64 * MiB + 32 * MiB);
  });
});
