// One suite, two queues: the in-memory reference and the disk queue must behave the same
// (edge/src/queue/contract.ts lists the guarantees checked here).
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Batch } from '@citysense/proto';
import { QueueError, type DurableQueue, type QueueOptions } from '../src/queue/contract.ts';
import { createMemoryQueue } from '../src/queue/memory.ts';
import { openDiskQueue } from '../src/queue/disk.ts';
import { alarmEvent, queueOptions, reading, routineEvent, stillPending, tempDir, within } from '../src/queue/testkit.ts';

interface Impl {
  name: string;
  open(o?: Partial<QueueOptions>): Promise<DurableQueue>;
  deadLetters(q: DurableQueue, dir: string): number;
}

const dirs: string[] = [];
const queues: DurableQueue[] = [];
afterEach(async () => {
  for (const q of queues.splice(0)) await q.close().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

let lastDir = '';
const impls: Impl[] = [
  {
    name: 'memory',
    async open(o) {
      const q = createMemoryQueue(queueOptions('/nonexistent', o));
      queues.push(q);
      return q;
    },
    deadLetters: (q) => (q as ReturnType<typeof createMemoryQueue>).deadLetters.length,
  },
  {
    name: 'disk',
    async open(o) {
      lastDir = tempDir();
      dirs.push(lastDir);
      const q = await openDiskQueue(queueOptions(lastDir, o));
      queues.push(q);
      return q;
    },
    deadLetters: (_q, dir) => readdirSync(join(dir, 'dead-letter')).filter((n) => n.endsWith('.pb')).length,
  },
  {
    // Batches read back from the log and decoded (as for a backlog past the item cache, or after a restart).
    name: 'disk, no item cache',
    async open(o) {
      lastDir = tempDir();
      dirs.push(lastDir);
      const q = await openDiskQueue(queueOptions(lastDir, { ...o, cacheItems: 0 }));
      queues.push(q);
      return q;
    },
    deadLetters: (_q, dir) => readdirSync(join(dir, 'dead-letter')).filter((n) => n.endsWith('.pb')).length,
  },
];

const values = (b: Batch | null) => b!.readings.map((r) => r.values.v);
/** Sealed batches wait for a seq. */
const waiting = (q: DurableQueue) => {
  const s = q.stats();
  return s.batchesQueued.telemetry + s.batchesQueued.alarm > 0;
};
const next = (q: DurableQueue) => within(q.next(), 5000, 'next()');

describe.each(impls)('queue conformance: $name', (impl) => {
  it('cuts batches by count, hands them out with increasing seq, in order', async () => {
    const q = await impl.open({ maxBatchItems: 2 });
    await q.accept([reading('a', 0), reading('a', 1), reading('a', 2), reading('a', 3), reading('a', 4)], []);
    const b1 = await next(q);
    expect(values(b1)).toEqual([0, 1]);
    expect(b1!.lane).toBe('telemetry');
    expect(b1!.edgeId).toBe('edge-test');
    await q.ack(b1!.seq);
    const b2 = await next(q);
    expect(values(b2)).toEqual([2, 3]);
    await q.flush();
    const b3 = await next(q);
    expect(values(b3)).toEqual([4]);
    expect(b2!.seq).toBeGreaterThan(b1!.seq);
    expect(b3!.seq).toBeGreaterThan(b2!.seq);
  });

  it('seals a forming batch by age', async () => {
    const q = await impl.open({ maxBatchAgeMs: 20 });
    await q.accept([reading('a', 7)], []);
    expect(values(await next(q))).toEqual([7]);
  });

  it('sends an alarm ahead of a telemetry backlog, in its own lane, without waiting for age', async () => {
    const q = await impl.open({ maxBatchItems: 5 });
    for (let i = 0; i < 200; i++) await q.accept([reading(`d${i % 7}`, i)], []);
    await q.accept([reading('p', 1000)], [alarmEvent('panel-1', 'fire-1'), routineEvent('panel-1', 'door-1')]);
    const b = await next(q);
    expect(b!.lane).toBe('alarm');
    expect(b!.events.map((e) => e.id)).toEqual(['fire-1']);
    expect(b!.readings).toEqual([]);
    // The routine event travels with the telemetry.
    let found = false;
    await q.flush();
    for (let i = 0; i < 100 && !found; i++) {
      const t = await next(q);
      expect(t!.lane).toBe('telemetry');
      found = t!.events.some((e) => e.id === 'door-1');
      await q.ack(t!.seq);
    }
    expect(found).toBe(true);
  });

  it('splits many alarms into small alarm batches', async () => {
    const q = await impl.open({ maxAlarmBatchItems: 3 });
    await q.accept([], Array.from({ length: 7 }, (_, i) => alarmEvent('p', `a${i}`)));
    const sizes = [];
    for (let i = 0; i < 3; i++) sizes.push((await next(q))!.events.length);
    expect(sizes).toEqual([3, 3, 1]);
  });

  it('alternates backlog (oldest) and live (newest) telemetry', async () => {
    const q = await impl.open({ maxBatchItems: 5 });
    for (let i = 0; i < 30; i++) await q.accept([reading('a', i)], []);
    const firsts = [];
    for (let i = 0; i < 6; i++) {
      const b = await next(q);
      firsts.push(values(b)[0]);
      await q.ack(b!.seq);
    }
    expect(firsts).toEqual([0, 25, 5, 20, 10, 15]);
  });

  it('forgets an acked batch; acking an unknown seq is harmless', async () => {
    const q = await impl.open({ maxBatchItems: 2 });
    await q.accept([reading('a', 0), reading('a', 1)], []);
    expect(q.stats().telemetry.readings).toBe(2);
    const b = await next(q);
    await q.ack(b!.seq);
    await q.ack(b!.seq);
    await q.ack(9999);
    const s = q.stats();
    expect(s.telemetry).toEqual({ readings: 0, events: 0, bytes: 0 });
    expect(s.batchesOpen).toBe(0);
    expect(s.acked).toEqual({ batches: 1, readings: 2, events: 0 });
    expect(s.oldestAcceptedMs).toBeNull();
    await within(q.drained(), 1000, 'drained()');
    const ac = new AbortController();
    const pending = q.next(ac.signal);
    expect(await stillPending(pending)).toBe(true);
    ac.abort();
    expect(await pending).toBeNull();
  });

  it('moves a refused batch to the dead letters and forgets it', async () => {
    const q = await impl.open({ maxBatchItems: 2 });
    await q.accept([reading('a', 0), reading('a', 1)], []);
    const b = await next(q);
    await q.refuse(b!.seq, 'BATCH_BAD_VALUE');
    expect(q.stats().deadLettered).toEqual({ batches: 1, readings: 2, events: 0 });
    expect(q.stats().batchesOpen).toBe(0);
    expect(impl.deadLetters(q, lastDir)).toBe(1);
    await within(q.drained(), 1000, 'drained()');
  });

  it('stamps a per-device sequence in call order', async () => {
    const q = await impl.open();
    await q.accept([reading('a', 0), reading('b', 0), reading('a', 1)], [routineEvent('a', 'e1')]);
    await q.accept([reading('a', 2)], [alarmEvent('b', 'x')]);
    await q.flush();
    const items = [];
    for (let i = 0; i < 2; i++) {
      const b = await next(q);
      items.push(...b!.readings.map((r) => `${r.deviceId}:${r.values.v}:${r.deviceSeq}`), ...b!.events.map((e) => `${e.deviceId}:${e.id}:${e.deviceSeq}`));
    }
    expect(items.sort()).toEqual(['a:0:1', 'a:1:2', 'a:e1:3', 'a:2:4', 'b:0:1', 'b:x:2'].sort());
  });

  it('drops the oldest telemetry over quota, with exact per-device counts, and reports them once', async () => {
    const dropped: Record<string, number> = {};
    const q = await impl.open({
      maxBatchItems: 1,
      quotaBytes: { telemetry: 3000, alarm: 100_000 },
      onDrop: (d) => (dropped[d.deviceId] = (dropped[d.deviceId] ?? 0) + d.count),
    });
    const accepted: Record<string, number> = {};
    for (let i = 0; i < 200; i++) {
      const dev = `d${i % 3}`;
      await q.accept([reading(dev, i)], []);
      accepted[dev] = (accepted[dev] ?? 0) + 1;
    }
    await q.accept([], [alarmEvent('panel', 'never-dropped')]);
    const s = q.stats();
    expect(s.telemetry.bytes).toBeLessThanOrEqual(3000);
    expect(s.droppedByDevice).toEqual(dropped);
    const totalDropped = Object.values(dropped).reduce((a, b) => a + b, 0);
    expect(totalDropped).toBeGreaterThan(100);
    expect(s.droppedByClassReason).toEqual({ 'telemetry/QUEUE_FULL': totalDropped });
    // Everything left comes out; together with the drops it is exactly what was accepted.
    const delivered: Record<string, number> = {};
    const seen: number[] = [];
    let reported = 0;
    let alarms = 0;
    await q.flush();
    while (waiting(q)) {
      const b = (await next(q))!;
      for (const d of b.drops ?? []) {
        reported += d.count;
        expect(d).toMatchObject({ dataClass: 'telemetry', reason: 'QUEUE_FULL' });
      }
      alarms += b.events.length;
      for (const r of b.readings) {
        delivered[r.deviceId] = (delivered[r.deviceId] ?? 0) + 1;
        seen.push(r.values.v as number);
      }
      await q.ack(b.seq);
    }
    expect(alarms).toBe(1);
    expect(reported).toBe(totalDropped);
    for (const dev of Object.keys(accepted)) expect((delivered[dev] ?? 0) + (dropped[dev] ?? 0)).toBe(accepted[dev]);
    // Oldest first: what survived is the newest.
    expect(Math.min(...seen)).toBe(200 - seen.length);
    expect(q.stats().dropsPendingReport).toBe(0);
  });

  it('keeps a drop report until its batch is acked; a refused batch gives it back', async () => {
    const q = await impl.open({ maxBatchItems: 1, quotaBytes: { telemetry: 1500, alarm: 100_000 } });
    for (let i = 0; i < 50; i++) await q.accept([reading('a', i)], []);
    const total = q.stats().droppedByDevice.a!;
    expect(total).toBeGreaterThan(0);
    const b1 = await next(q);
    expect(b1!.drops?.reduce((n, d) => n + d.count, 0)).toBe(total);
    const b2 = await next(q);
    expect(b2!.drops ?? []).toEqual([]); // in flight with b1, not counted twice
    await q.ack(b2!.seq);
    await q.refuse(b1!.seq, 'http_413');
    const b3 = await next(q);
    expect(b3!.drops?.reduce((n, d) => n + d.count, 0)).toBe(total);
    await q.ack(b3!.seq);
    expect(q.stats().dropsPendingReport).toBe(0);
  });

  it('never drops alarms: accept() waits while the alarm reserve is full and resumes after an ack', async () => {
    const q = await impl.open({ quotaBytes: { telemetry: 1_000_000, alarm: 1 } });
    await q.accept([], [alarmEvent('p', 'a1')]);
    const second = q.accept([], [alarmEvent('p', 'a2')]);
    expect(await stillPending(second)).toBe(true);
    expect(q.stats().waitingAccepts).toBe(1);
    // Telemetry is not held up by the waiting alarm.
    await within(q.accept([reading('t', 1)], []), 1000, 'telemetry accept');
    const b = await next(q);
    expect(b!.events.map((e) => e.id)).toEqual(['a1']);
    await q.ack(b!.seq);
    await within(second, 2000, 'the waiting alarm accept');
    const b2 = await next(q);
    expect(b2!.events.map((e) => e.id)).toEqual(['a2']);
    expect(Object.keys(q.stats().droppedByClassReason)).toEqual([]);
  });

  it('refuses data (no acknowledgement) while the disk refuses writes, and recovers', async () => {
    let full = false;
    const q = await impl.open({
      injectWriteFault: () => {
        if (full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      },
    });
    await q.accept([reading('a', 0)], []);
    full = true;
    await expect(q.accept([reading('a', 1)], [])).rejects.toMatchObject({ code: 'QUEUE_WRITE_FAILED' });
    await expect(q.accept([reading('a', 2)], [])).rejects.toBeInstanceOf(QueueError);
    expect(q.stats().writeErrors).toBeGreaterThanOrEqual(1);
    expect(q.stats().rejectedAccepts).toBeGreaterThanOrEqual(2);
    full = false;
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        await q.accept([reading('a', 3)], []);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    await q.flush();
    const b = await next(q);
    // The refused write was kept and retried: its reading may arrive (the device also resends it).
    expect(values(b)).toContain(0);
    expect(values(b)).toContain(3);
  });

  it('close(): next() resolves null, accept() rejects', async () => {
    const q = await impl.open();
    const waiting = q.next();
    await q.close();
    expect(await within(waiting, 1000, 'next() after close')).toBeNull();
    await expect(q.accept([reading('a', 0)], [])).rejects.toMatchObject({ code: 'QUEUE_CLOSED' });
  });

  it('compacts: acked segments are removed', async () => {
    const q = await impl.open({ maxBatchItems: 10, segmentBytes: 2048 });
    for (let i = 0; i < 300; i++) await q.accept([reading('a', i)], []);
    await q.flush();
    expect(q.stats().segments).toBeGreaterThan(5);
    while (waiting(q)) await q.ack((await next(q))!.seq);
    expect(q.stats().segments).toBeLessThanOrEqual(2);
  });

  it('stays within its disk budget while one batch is stuck in flight', async () => {
    const quota = 8000;
    const seg = 2048;
    const q = await impl.open({ maxBatchItems: 5, segmentBytes: seg, quotaBytes: { telemetry: quota, alarm: 4000 } });
    await q.accept([reading('a', -1)], []);
    await q.flush();
    const stuck = await next(q); // never acked: it pins the oldest segment
    let maxDisk = 0;
    for (let i = 0; i < 2000; i++) {
      await q.accept([reading(`d${i % 5}`, i)], []);
      if (i % 50 === 49) await q.next().then((b) => q.ack(b!.seq));
      maxDisk = Math.max(maxDisk, q.stats().diskBytes);
    }
    expect(q.stats().batchesOpen).toBeGreaterThanOrEqual(1);
    expect(q.stats().droppedByClassReason['telemetry/QUEUE_FULL']).toBeGreaterThan(0);
    expect(maxDisk).toBeLessThan(quota + 4000 + 6 * seg);
    await q.ack(stuck!.seq);
  });
});
