// The batcher alone: count, alarm, bounded memory with FIFO backpressure, flush, close.
import { describe, expect, it } from 'vitest';
import type { DeviceEvent, Reading } from '@citysense/proto';
import { Batcher } from '../src/batcher/batcher.ts';

const r = (v: number): Reading => ({ deviceId: 'd', family: 'environment', ts: 1, values: { v } });
const alarm: DeviceEvent = { deviceId: 'd', family: 'fire', ts: 1, type: 'fire_alarm', attrs: {}, priority: 'alarm', id: 'x' };

function make(o: Partial<ConstructorParameters<typeof Batcher>[0]> = {}) {
  let n = 0;
  return new Batcher({ edgeId: 'e', maxReadings: 3, maxAgeMs: 600_000, maxQueuedReadings: 10, seq: { next: () => ++n }, ...o });
}

const pending = async (p: Promise<unknown>) => {
  let settled = false;
  void p.then(() => (settled = true), () => (settled = true));
  await new Promise((res) => setImmediate(res));
  return !settled;
};

describe('Batcher', () => {
  it('cuts by count, in order, with increasing seq', async () => {
    const b = make();
    await b.accept([r(0), r(1), r(2), r(3)], []);
    const first = await b.take();
    expect(first!.readings.map((x) => x.values.v)).toEqual([0, 1, 2]);
    b.seal();
    const second = await b.take();
    expect(second!.readings.map((x) => x.values.v)).toEqual([3]);
    expect(second!.seq).toBe(first!.seq + 1);
    b.close();
  });

  it('seals at once on an alarm event', async () => {
    const b = make();
    await b.accept([r(0)], []);
    await b.accept([], [alarm]);
    const batch = await b.take();
    expect(batch!.readings).toHaveLength(1);
    expect(batch!.events).toHaveLength(1);
    b.close();
  });

  it('waits instead of dropping when full, and admits in arrival order on release', async () => {
    const b = make({ maxQueuedReadings: 4, maxReadings: 2 });
    await b.accept([r(0), r(1), r(2), r(3)], []);
    const fifth = b.accept([r(4)], []);
    const sixth = b.accept([r(5)], []);
    expect(await pending(fifth)).toBe(true);
    b.release((await b.take())!);
    await fifth;
    await sixth;
    expect(b.queued).toBe(4);
    b.close();
  });

  it('admits an oversized message into an empty queue', async () => {
    const b = make({ maxQueuedReadings: 3 });
    await b.accept([r(0), r(1), r(2), r(3), r(4)], []);
    expect(b.queued).toBe(5);
    b.close();
  });

  it('flush resolves when everything is released; close rejects waiters', async () => {
    const b = make({ maxQueuedReadings: 3 });
    await b.accept([r(0)], []);
    const flushed = b.flush();
    expect(await pending(flushed)).toBe(true);
    b.release((await b.take())!);
    await flushed;
    await b.accept([r(1), r(2), r(3)], []);
    const waiting = b.accept([r(4)], []);
    b.close();
    await expect(waiting).rejects.toThrow(/EDGE_CLOSED/);
    await expect(b.accept([r(5)], [])).rejects.toThrow(/EDGE_CLOSED/);
  });
});
