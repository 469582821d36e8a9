// A stand-in for one demo process in the ordered-stop test: logs its start, any SIGINT (which it must
// never get: the supervisor keeps Ctrl-C to itself), its SIGTERM and, after a delay that stands for the
// edge's flush, its exit. One shared log file, appended line by line, gives the order across processes.
import { appendFileSync } from 'node:fs';

const [name, log, delayMs] = process.argv.slice(2);
const say = (what) => appendFileSync(log, `${what} ${name} ${process.pid}\n`);
say('start');
process.on('SIGINT', () => {
  say('sigint');
  process.exit(130);
});
process.on('SIGTERM', () => {
  say('term');
  setTimeout(() => {
    say('exit');
    process.exit(0);
  }, Number(delayMs));
});
setInterval(() => undefined, 60_000);
