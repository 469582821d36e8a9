// Runs a private InfluxDB 1.x (Debian's `influxd`) on free loopback ports with its data in a folder of
// ours, for the demo stack, the tests and the benchmarks. Never touches a system-wide InfluxDB.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, createWriteStream, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';

export interface InfluxdOptions {
  /** Folder for meta, data, wal, the generated config and influxd.log. */
  dir: string;
  /** HTTP port; 0 or absent picks a free one. */
  port?: number;
  /** Remove `dir` when stopped (tests). */
  removeOnStop?: boolean;
  /** Give up waiting for /ping after this long. */
  startTimeoutMs?: number;
  /** Log HTTP requests (off: influxd logs every write otherwise). */
  httpLog?: boolean;
}

export interface Influxd {
  url: string;
  port: number;
  pid: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** A port the kernel just gave us for a moment: good enough for a child we start right after. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((done) => {
    const sock = createConnection({ host: '127.0.0.1', port }, () => {
      sock.destroy();
      done(true);
    });
    sock.on('error', () => done(false));
  });
}

/** Polls `probe` until it returns true, or throws after `timeoutMs` with `what` in the message. */
export async function waitFor(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 15_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** influxd's config for a private instance: loopback only, data under `dir`, no reporting, no self-monitoring. */
export function influxdConfig(dir: string, httpPort: number, rpcPort: number, httpLog = false): string {
  return `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"
[meta]
  dir = "${join(dir, 'meta')}"
  logging-enabled = false
[data]
  dir = "${join(dir, 'data')}"
  wal-dir = "${join(dir, 'wal')}"
  query-log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  log-enabled = ${httpLog}
  pprof-enabled = false
  max-body-size = 0
[continuous_queries]
  log-enabled = false
`;
}

export async function startInfluxd(opts: InfluxdOptions): Promise<Influxd> {
  const port = opts.port || (await freePort());
  const rpcPort = await freePort();
  mkdirSync(opts.dir, { recursive: true });
  const confPath = join(opts.dir, 'influxdb.conf');
  writeFileSync(confPath, influxdConfig(opts.dir, port, rpcPort, opts.httpLog ?? false));
  const log = createWriteStream(join(opts.dir, 'influxd.log'), { flags: 'a' });
  const child = spawn('influxd', ['run', '-config', confPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  let exited: string | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `influxd exited (code ${code}, signal ${signal}); see ${join(opts.dir, 'influxd.log')}`;
      resolve();
    });
  });
  child.once('error', (err) => {
    exited = `influxd could not start: ${err.message}. Install InfluxDB 1.x (Debian: apt-get install influxdb).`;
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor('influxd /ping', async () => {
    if (exited) throw new Error(exited);
    const res = await fetch(`${url}/ping`).catch(() => undefined);
    return res?.status === 204;
  }, opts.startTimeoutMs ?? 30_000);

  return {
    url,
    port,
    pid: child.pid!,
    child,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exitPromise;
        clearTimeout(killer);
      }
      log.end();
      if (opts.removeOnStop) rmSync(opts.dir, { recursive: true, force: true });
    },
  };
}

/** Runs an InfluxQL query over the v1 HTTP API; returns the raw JSON. */
export async function influxQuery(url: string, db: string, q: string): Promise<InfluxQueryResult> {
  const res = await fetch(`${url}/query?db=${encodeURIComponent(db)}&epoch=ms&q=${encodeURIComponent(q)}`);
  if (!res.ok) throw new Error(`InfluxDB query failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as InfluxQueryResult;
}

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}
export interface InfluxQueryResult {
  results: { statement_id: number; series?: InfluxSeries[]; error?: string }[];
}

/** Flattens a query result into one object per row (column name → value). */
export function rows(result: InfluxQueryResult): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const r of result.results) {
    if (r.error) throw new Error(`InfluxQL error: ${r.error}`);
    for (const s of r.series ?? []) {
      for (const v of s.values) {
        const row: Record<string, unknown> = { ...(s.tags ?? {}) };
        s.columns.forEach((c, i) => (row[c] = v[i]));
        out.push(row);
      }
    }
  }
  return out;
}
