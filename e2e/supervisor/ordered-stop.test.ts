// Issue 12 item 3: Ctrl-C stops the demo in order. The terminal sends SIGINT to its foreground process
// group; here that group is the supervisor's (spawned detached, as a shell starts a job) and the signal
// goes to the whole group, as Ctrl-C does. Each child must be in a group of its own, so only the
// supervisor gets it and stops them one after the other: simulators, edge (whose slow exit stands for
// its flush), cloud, InfluxDB — and none of them is reported as "died … restart".
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { waitFor } from '../../scripts/influxd.ts';

const dir = mkdtempSync(join(tmpdir(), 'citysense-sup-'));
const log = join(dir, 'order.log');
let sup: ChildProcess | undefined;
const pids: number[] = [];

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const lines = () => {
  try {
    return readFileSync(log, 'utf8').trim().split('\n');
  } catch {
    return [];
  }
};

afterAll(() => {
  // Whatever happened, no process of this test outlives it.
  for (const pid of [...pids, ...(sup?.pid ? [sup.pid] : [])]) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

it('a Ctrl-C to the supervisor\'s group stops sim, edge, cloud, InfluxDB in that order, each after the one before has exited', async () => {
  sup = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'supervise.ts'), log], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  sup.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  sup.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => sup!.on('exit', (code) => resolve(code)));

  await waitFor('four children and the supervisor up', () => lines().filter((l) => l.startsWith('start ')).length === 4 && out.includes('supervising'), 20_000);
  for (const l of lines()) pids.push(Number(l.split(' ')[2]));

  process.kill(-sup.pid!, 'SIGINT'); // what the terminal does on Ctrl-C
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
  expect(code, out).toBe(0);

  const events = lines().filter((l) => !l.startsWith('start ')).map((l) => l.split(' ').slice(0, 2).join(' '));
  expect(events).toEqual(['term sim', 'exit sim', 'term edge', 'exit edge', 'term cloud', 'exit cloud', 'term influxdb', 'exit influxdb']);
  expect(out).not.toMatch(/died|restart/);
  expect(out).toMatch(/\[sim +\].*stopped[\s\S]*\[edge +\].*stopped[\s\S]*\[cloud +\].*stopped[\s\S]*\[influxdb\].*stopped[\s\S]*stopped\./);
  for (const pid of pids) expect(alive(pid), `child ${pid} still running`).toBe(false);
});
