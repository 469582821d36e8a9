// The load generator as its own process, so that its CPU is measured apart from what it loads and it
// never shares an event loop with the benchmark's clocks. Driven over IPC (child_process.fork):
//   → {type:'start', options: LoadOptions, progressMs?}   ← {type:'progress', snapshot} ... {type:'done', snapshot}
//   → {type:'rate', perS}  → {type:'connections', n}  → {type:'stop'}
// It exits by itself when the run's bounds are reached, and when its parent goes away.
import { LoadGenerator, type LoadOptions } from './generator.ts';

type Command =
  | { type: 'start'; options: LoadOptions; progressMs?: number }
  | { type: 'rate'; perS: number }
  | { type: 'connections'; n: number }
  | { type: 'stop' };

if (!process.send) {
  process.stderr.write('device-sim/src/load/worker.ts is started by the benchmark over IPC (child_process.fork); see bench/\n');
  process.exit(2);
}
const send = (m: unknown) => process.send?.(m);
let gen: LoadGenerator | undefined;

process.on('disconnect', () => process.exit(0));
process.on('message', (m: Command) => {
  if (m.type === 'start' && !gen) {
    gen = new LoadGenerator(m.options);
    gen
      .run((snapshot) => send({ type: 'progress', snapshot }), m.progressMs ?? 1000)
      .then((snapshot) => {
        send({ type: 'done', snapshot });
        setTimeout(() => process.exit(0), 200);
      })
      .catch((err: unknown) => {
        send({ type: 'error', message: String(err) });
        setTimeout(() => process.exit(1), 200);
      });
  } else if (m.type === 'rate') gen?.setRate(m.perS);
  else if (m.type === 'connections') gen?.setConnections(m.n);
  else if (m.type === 'stop') gen?.stopNow();
});
send({ type: 'ready' });
