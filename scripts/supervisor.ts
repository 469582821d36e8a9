// Supervises the demo stack's processes as systemd would in production (docs/operations.md has the unit
// files): restarts a component that dies, with exponential backoff and a log line, and stops them all
// in reverse order on Ctrl-C.
//
// Each child runs in a process group of its own (detached), so the terminal's Ctrl-C — a SIGINT to the
// terminal's foreground group — reaches only the supervisor, which then stops the children one after
// the other (the last started first: simulators, the edge with its flush, the cloud, InfluxDB). In one
// shared group every child got the SIGINT at once: InfluxDB and the cloud went away while the edge
// was still flushing to them, and the supervisor logged their exits as deaths to restart.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ComponentSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Turns one output line into what the terminal shows (undefined hides it). */
  format?: (line: string) => string | undefined;
  /** Restart when it exits (default true). */
  restart?: boolean;
  /** How long stop() waits after SIGTERM before SIGKILL (default 10 s). */
  stopTimeoutMs?: number;
}

const COLORS = [36, 35, 33, 32, 34, 31];

export class Component {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restarts = 0;
  private backoffMs = 1_000;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private exitWaiters: (() => void)[] = [];
  readonly color: number;

  constructor(
    readonly spec: ComponentSpec,
    index: number,
  ) {
    this.color = COLORS[index % COLORS.length]!;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  say(line: string): void {
    process.stdout.write(`\x1b[${this.color}m[${this.spec.name.padEnd(8)}]\x1b[0m ${line}\n`);
  }

  start(): void {
    this.stopping = false;
    this.startedAt = Date.now();
    const child = spawn(this.spec.command, this.spec.args, {
      cwd: this.spec.cwd,
      env: { ...process.env, ...this.spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    if (child.pid !== undefined) running.add(child.pid);
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        const shown = this.spec.format ? this.spec.format(line) : line;
        if (shown !== undefined) this.say(shown);
      });
    }
    child.on('error', (err) => this.say(`could not start: ${err.message}`));
    child.on('exit', (code, signal) => {
      this.child = undefined;
      if (child.pid !== undefined) running.delete(child.pid);
      const waiters = this.exitWaiters.splice(0);
      waiters.forEach((w) => w());
      if (this.stopping) {
        this.say(`stopped (code ${code}, signal ${signal})`);
        return;
      }
      if (this.spec.restart === false) {
        this.say(`exited (code ${code}, signal ${signal})`);
        return;
      }
      // A component that ran for a minute earns a fresh backoff; one that keeps dying waits longer each time.
      if (Date.now() - this.startedAt > 60_000) this.backoffMs = 1_000;
      this.restarts++;
      this.say(`\x1b[31mdied (code ${code}, signal ${signal}); restart #${this.restarts} in ${this.backoffMs} ms\x1b[0m`);
      this.timer = setTimeout(() => this.start(), this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
    });
  }

  async stop(timeoutMs = 10_000): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => this.exitWaiters.push(resolve));
    signalGroup(child, 'SIGTERM');
    const killer = setTimeout(() => {
      this.say(`did not stop within ${timeoutMs} ms: SIGKILL`);
      signalGroup(child, 'SIGKILL');
    }, timeoutMs);
    await exited;
    clearTimeout(killer);
  }
}

/** pids of the children running now, so a supervisor that exits leaves none behind. */
const running = new Set<number>();

/** A signal to the child's whole group (it leads its own): a wrapper's children get it too. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

// Children in groups of their own no longer die with the supervisor's group: whatever way the supervisor
// exits (an error, process.exit), it takes them down. Only a SIGKILL of the supervisor leaves them.
process.on('exit', () => {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export class Supervisor {
  readonly components: Component[] = [];

  add(spec: ComponentSpec): Component {
    const c = new Component(spec, this.components.length);
    this.components.push(c);
    return c;
  }

  /** Stops the components one at a time, the last added first, each waited for before the next. */
  async stopAll(): Promise<void> {
    for (const c of [...this.components].reverse()) await c.stop(c.spec.stopTimeoutMs);
  }

  /**
   * On SIGINT or SIGTERM (once): `before`, then stopAll, then `after`, then exit 0. A second Ctrl-C while
   * stopping is ignored: the children are being stopped in order and will be killed past their timeout.
   */
  stopOnSignals(hooks: { before?: () => void; after?: () => Promise<void> | void } = {}): void {
    let stopping = false;
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      hooks.before?.();
      await this.stopAll();
      await hooks.after?.();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop());
    process.on('SIGTERM', () => void stop());
  }
}
