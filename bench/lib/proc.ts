// Processes of the benchmark: started as `node --import tsx <script>` (not through the tsx CLI, which
// would put a wrapper process between us and the one whose CPU we read), optionally with a raised
// file-descriptor limit, and measured from /proc/<pid>: CPU time (utime+stime) and RSS.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
} catch {
  /* 100 on every Linux we run on */
}

/** CPU seconds (user + system) the process has used so far; NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.system;
}

/** User and system CPU seconds (system includes the loopback TCP work the kernel does for a writer). */
export function cpuTimes(pid: number): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / clkTck, system: Number(f[12]) / clkTck };
  } catch {
    return { user: NaN, system: NaN };
  }
}

export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU seconds of several processes, read at one moment. */
export class CpuMeter {
  private start = new Map<string, { user: number; system: number }>();
  private t0 = 0;
  constructor(private readonly pids: Record<string, number>) {}
  begin(): this {
    this.t0 = performance.now();
    for (const [k, pid] of Object.entries(this.pids)) this.start.set(k, cpuTimes(pid));
    return this;
  }
  /** CPU seconds used per process since begin() (and the system part of them), and the wall seconds. */
  end(): { wallS: number; cpuS: Record<string, number>; systemS: Record<string, number> } {
    const cpuS: Record<string, number> = {};
    const systemS: Record<string, number> = {};
    for (const [k, pid] of Object.entries(this.pids)) {
      const a = this.start.get(k) ?? { user: NaN, system: NaN };
      const b = cpuTimes(pid);
      cpuS[k] = b.user + b.system - a.user - a.system;
      systemS[k] = b.system - a.system;
    }
    return { wallS: (performance.now() - this.t0) / 1000, cpuS, systemS };
  }
}

export interface NodeProcOptions {
  name: string;
  script: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  logFile: string;
  /** Raise the soft (and, as root, hard) open-files limit of the child to this. */
  nofile?: number;
  ipc?: boolean;
  nodeOptions?: string;
}

/** A Node/TypeScript process of ours, as `node --import tsx`. */
export class NodeProc {
  child: ChildProcess;
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined;
  constructor(readonly o: NodeProcOptions) {
    const node = process.execPath;
    const argv = ['--import', 'tsx', o.script, ...(o.args ?? [])];
    const env = { ...process.env, ...o.env, ...(o.nodeOptions ? { NODE_OPTIONS: o.nodeOptions } : {}) };
    const stdio: ('ignore' | 'pipe' | 'ipc')[] = o.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'];
    if (o.nofile) {
      // `exec` keeps the pid: the pid we measure is node's own.
      const sh = `ulimit -Hn ${o.nofile} 2>/dev/null; ulimit -n ${o.nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
      this.child = spawn('sh', ['-c', sh, 'sh', node, ...argv], { cwd: ROOT, env, stdio });
    } else {
      this.child = spawn(node, argv, { cwd: ROOT, env, stdio });
    }
    const log = createWriteStream(o.logFile, { flags: 'a' });
    this.child.stdout!.pipe(log, { end: false });
    this.child.stderr!.pipe(log, { end: false });
    this.exited = new Promise((r) =>
      this.child.once('exit', (code) => {
        this.exitCode = code;
        r(code);
      }),
    );
  }
  get pid(): number {
    return this.child.pid!;
  }
  get alive(): boolean {
    return this.exitCode === undefined;
  }
  async stop(timeoutMs = 15_000): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(t);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
