// The load generator (device-sim/src/load) as a child process driven over IPC.
import { join } from 'node:path';
import type { LoadOptions, LoadSnapshot } from '../../device-sim/src/load/generator.ts';
import { NodeProc } from './proc.ts';

export class LoadGen {
  readonly proc: NodeProc;
  readonly done: Promise<LoadSnapshot>;
  last: LoadSnapshot | undefined;
  private ready: Promise<void>;
  constructor(logDir: string, name: string, options: LoadOptions, onProgress?: (s: LoadSnapshot) => void, progressMs = 1000, nofile?: number) {
    // BENCH_LOADGEN_PROF_DIR=<dir>: CPU-profile the load generator too (to check it stays lean).
    const prof = process.env.BENCH_LOADGEN_PROF_DIR;
    this.proc = new NodeProc({ name, script: 'device-sim/src/load/worker.ts', logFile: join(logDir, `${name}.log`), ipc: true, ...(nofile ? { nofile } : {}), ...(prof ? { nodeOptions: `--cpu-prof --cpu-prof-dir=${prof}` } : {}) });
    let readyResolve!: () => void;
    this.ready = new Promise((r) => (readyResolve = r));
    this.done = new Promise((resolve, reject) => {
      this.proc.child.on('message', (m: { type: string; snapshot?: LoadSnapshot; message?: string }) => {
        if (m.type === 'ready') {
          readyResolve();
          this.proc.child.send({ type: 'start', options, progressMs });
        } else if (m.type === 'progress' && m.snapshot) {
          this.last = m.snapshot;
          onProgress?.(m.snapshot);
        } else if (m.type === 'done' && m.snapshot) {
          this.last = m.snapshot;
          resolve(m.snapshot);
        } else if (m.type === 'error') reject(new Error(`${name}: ${m.message}`));
      });
      void this.proc.exited.then((code) => reject(new Error(`${name} exited with ${code} before it was done; see its log`)));
    });
    this.done.catch(() => undefined);
  }
  async started(): Promise<void> {
    await this.ready;
  }
  setRate(perS: number): void {
    this.proc.child.send({ type: 'rate', perS });
  }
  setConnections(n: number): void {
    this.proc.child.send({ type: 'connections', n });
  }
  stop(): void {
    if (this.proc.alive) this.proc.child.send({ type: 'stop' });
  }
}
