// Fixtures for the queue's tests (edge/test/queue-*.test.ts): items, deadlines, a fresh directory.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceEvent, Reading } from '@citysense/proto';
import type { QueueOptions } from './contract.ts';

export const reading = (deviceId: string, v: number): Reading => ({ deviceId, family: 'environment', ts: 1_700_000_000_000 + v, values: { v } });

export const alarmEvent = (deviceId: string, id: string): DeviceEvent => ({
  deviceId,
  family: 'fire',
  ts: 1_700_000_000_000,
  type: 'fire_alarm',
  attrs: { zone: '1' },
  priority: 'alarm',
  id,
});

export const routineEvent = (deviceId: string, id: string): DeviceEvent => ({ ...alarmEvent(deviceId, id), type: 'door_open', priority: 'routine' });

export function tempDir(prefix = 'cs-queue-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function queueOptions(dir: string, o: Partial<QueueOptions> = {}): QueueOptions {
  return {
    dir,
    edgeId: 'edge-test',
    quotaBytes: { telemetry: 64 * 1024 * 1024, alarm: 8 * 1024 * 1024 },
    maxBatchItems: 100,
    maxAlarmBatchItems: 10,
    maxBatchAgeMs: 600_000,
    writeRetryMs: 10,
    ...o,
  };
}

/** Rejects when `p` has not settled within `ms` (a deadline, not a timing assertion). */
export function within<T>(p: Promise<T>, ms = 5000, what = 'operation'): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what} did not complete within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

/** True when `p` is still pending after the event loop ran a few turns. */
export async function stillPending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return !settled;
}

export async function waitUntil(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
