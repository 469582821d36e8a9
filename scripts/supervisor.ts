// Supervises the demo stack's processes as systemd would in production (docs/operations.md has the unit
// files): restarts a component that dies, with exponential backoff and a log line, and stops them all
// in reverse order on Ctrl-C.
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
    });
    this.child = child;
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        const shown = this.spec.format ? this.spec.format(line) : line;
        if (shown !== undefined) this.say(shown);
      });
    }
    child.on('error', (err) => this.say(`could not start: ${err.message}`));
    child.on('exit', (code, signal) => {
      this.child = undefined;
      const waiters = this.exitWaiters.splice(0);
      waiters.forEach((w) => w());
      if (this.stopping) return;
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
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(killer);
  }
}

export class Supervisor {
  readonly components: Component[] = [];

  add(spec: ComponentSpec): Component {
    const c = new Component(spec, this.components.length);
    this.components.push(c);
    return c;
  }

  async stopAll(): Promise<void> {
    for (const c of [...this.components].reverse()) await c.stop();
  }
}
