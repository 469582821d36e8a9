// Measures the disk queue on this machine: appends/s with fsync (group commit), syncs/s, bytes per
// reading on disk, event-loop delay while appending, and hand-out + ack throughput.
//   npx tsx edge/src/queue/bench.ts [seconds per case]
import { rmSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Reading } from '@citysense/proto';
import { openDiskQueue } from './disk.ts';
import { queueOptions, tempDir } from './testkit.ts';

const seconds = Number(process.argv[2] ?? 3);

function reading(i: number, device: string): Reading {
  return {
    deviceId: device,
    family: 'environment',
    ts: 1_700_000_000_000 + i * 1000,
    values: { pm25: 35.2 + (i % 10), pm10: 61, no2: 18.4, temp: 21.5, humidity: 48 },
    tags: { district: 'xuhui', site: 'station-12' },
  };
}

async function runCase(name: string, producers: number, perAccept: number): Promise<void> {
  const dir = tempDir('cs-queue-bench-');
  const q = await openDiskQueue(queueOptions(dir, { maxBatchItems: 500, quotaBytes: { telemetry: 1e10, alarm: 1e8 } }));
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const end = Date.now() + seconds * 1000;
  let accepts = 0;
  let readings = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: producers }, async (_, p) => {
      let i = 0;
      while (Date.now() < end) {
        const rs = Array.from({ length: perAccept }, () => reading(i++, `dev-${p}`));
        await q.accept(rs, []);
        accepts++;
        readings += rs.length;
      }
    }),
  );
  const dt = (performance.now() - t0) / 1000;
  h.disable();
  await q.flush();
  const s = q.stats();
  // Drain: hand out and ack everything (reads back from disk, decodes, writes the hand-out and the ack).
  const t1 = performance.now();
  let drained = 0;
  while (q.stats().batchesQueued.telemetry > 0) {
    const b = (await q.next())!;
    drained += b.readings.length;
    await q.ack(b.seq);
  }
  const dt2 = (performance.now() - t1) / 1000;
  console.log(
    JSON.stringify({
      case: name,
      producers,
      readingsPerAccept: perAccept,
      acceptsPerSec: Math.round(accepts / dt),
      readingsPerSec: Math.round(readings / dt),
      syncsPerSec: Math.round(s.syncs / dt),
      acceptsPerSync: +(accepts / s.syncs).toFixed(1),
      bytesPerReading: +(s.telemetry.bytes / readings).toFixed(1),
      eventLoopDelayP99Ms: +(h.percentile(99) / 1e6).toFixed(2),
      eventLoopDelayMaxMs: +(h.max / 1e6).toFixed(2),
      drainReadingsPerSec: Math.round(drained / dt2),
    }),
  );
  await q.close();
  rmSync(dir, { recursive: true, force: true });
}

await runCase('one producer, one reading per accept (a sync per accept)', 1, 1);
await runCase('64 producers, one reading per accept (group commit)', 64, 1);
await runCase('64 producers, 10 readings per accept', 64, 10);
