// The ordered-stop test's supervisor: scripts/supervisor.ts running four real child processes named
// and ordered as the demo's (InfluxDB, cloud, edge, simulators), stopped on SIGINT as demo.ts does.
import { join } from 'node:path';
import { Supervisor } from '../../scripts/supervisor.ts';

const log = process.argv[2]!;
const sup = new Supervisor();
// The edge takes longest to stop (its flush): the cloud and InfluxDB must still be there meanwhile.
for (const [name, delay] of [['influxdb', 50], ['cloud', 50], ['edge', 400], ['sim', 20]] as const) {
  sup.add({ name, command: process.execPath, args: [join(import.meta.dirname, 'child.mjs'), name, log, String(delay)], stopTimeoutMs: 5_000 }).start();
}
sup.stopOnSignals({ before: () => process.stdout.write('stopping\n'), after: () => void process.stdout.write('stopped.\n') });
process.stdout.write('supervising\n');
