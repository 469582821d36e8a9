// Replays, out-of-order batches, per-device continuity and drop reports, against the run's real influxd:
// a batch already processed is written again but answered duplicate, not counted and not handed to the
// alert engine twice; all of it survives a cloud restart on the same store file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeAck, type Batch, type DeviceEvent, type DropReport, type Reading } from '@citysense/proto';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { buildApp } from '../src/app.ts';
import type { CloudConfigInput } from '../src/config/schema.ts';
import type { BatchStoredInfo } from '../src/ingest/plugin.ts';
import { EDGE_A, EDGE_B, T0, batchHeaders, envReading, protobuf, silentLogger, testConfig } from './helpers.ts';

let influx: TestInflux;
let dir: string;
const apps: FastifyInstance[] = [];
/** The cloud clock of every app in this file: moved by hand to pass ingest.gapGraceMs, never slept on. */
let clock = Date.now();
const GRACE = 60_000;

beforeAll(async () => {
  influx = await testInflux('cloud-dedupe');
  dir = mkdtempSync(join(tmpdir(), 'citysense-dedupe-'));
});
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function makeApp(extra: CloudConfigInput = {}): Promise<FastifyInstance> {
  const app = buildApp(testConfig(influx, { ingest: { gapGraceMs: GRACE }, ...extra }), { logger: silentLogger(), env: {}, now: () => clock });
  apps.push(app);
  await app.ready();
  return app;
}

function mk(edgeId: string, seq: number, readings: Reading[], events: DeviceEvent[] = [], drops?: DropReport[]): Batch {
  return { edgeId, seq, createdMs: T0, readings, events, ...(drops ? { drops } : {}) };
}

async function post(app: FastifyInstance, b: Batch, token = b.edgeId === EDGE_B.id ? EDGE_B.token : EDGE_A.token) {
  const res = await app.inject({ method: 'POST', url: '/v1/batches', payload: protobuf(b), headers: batchHeaders(token) });
  expect(res.statusCode, res.body).toBe(200);
  return decodeAck(res.rawPayload);
}

/** One sample of /metrics: the value of `name{labels}` (0 when the series does not exist). */
async function metric(app: FastifyInstance, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const have = (m[1] ?? '').split(',').filter(Boolean);
    if (want.length === have.length && want.every((w) => have.includes(w))) return Number(m[2]);
  }
  return 0;
}

const seqReading = (device: string, deviceSeq: number, ts = T0 + deviceSeq) => envReading(device, ts, { pm25: deviceSeq }, { deviceSeq });

describe('replayed batches', () => {
  it('are written again but answered duplicate, not counted, and not handed to onBatchStored', async () => {
    const app = await makeApp();
    const seen: [Batch, BatchStoredInfo][] = [];
    app.ingest.onBatchStored((b, info) => seen.push([b, info]));
    const b = mk(EDGE_A.id, 100, [envReading('replay-1', T0 + 1, { pm25: 10 }), envReading('replay-1', T0 + 2, { pm25: 11 })]);

    expect(await post(app, b)).toMatchObject({ seq: 100, accepted: 2, duplicate: false });
    const before = await influx.query(`SELECT * FROM environment WHERE device_id = 'replay-1' ORDER BY time`);
    expect(before).toHaveLength(2);
    expect(await metric(app, 'citysense_cloud_readings_written_total', { family: 'environment' })).toBe(2);

    expect(await post(app, b)).toMatchObject({ seq: 100, accepted: 2, rejected: 0, duplicate: true });
    expect(await post(app, b)).toMatchObject({ seq: 100, duplicate: true });
    expect(await influx.query(`SELECT * FROM environment WHERE device_id = 'replay-1' ORDER BY time`)).toEqual(before);
    expect(await metric(app, 'citysense_cloud_readings_written_total', { family: 'environment' })).toBe(2);
    expect(await metric(app, 'citysense_cloud_batches_duplicate_total', { edge: EDGE_A.id })).toBe(2);
    expect(await metric(app, 'citysense_cloud_batches_received_total', { edge: EDGE_A.id })).toBe(3);

    expect(seen).toHaveLength(1);
    expect(seen[0]![0].seq).toBe(100);
    expect(seen[0]![1]).toMatchObject({ duplicate: false, ack: { seq: 100, accepted: 2 } });
    expect(seen[0]![1].readings.map((r) => r.reading.values.pm25)).toEqual([10, 11]);
  });

  it('out of order (5, 3, 4, 3): only the second 3 is a duplicate, per edge', async () => {
    const app = await makeApp();
    const acks = [];
    for (const seq of [5, 3, 4, 3]) acks.push(await post(app, mk(EDGE_A.id, seq, [envReading('ooo-1', T0 + seq, { pm25: seq })])));
    expect(acks.map((a) => [a.seq, a.duplicate])).toEqual([
      [5, false],
      [3, false],
      [4, false],
      [3, true],
    ]);
    expect(app.ingest.marks.ranges(EDGE_A.id)).toEqual([{ lo: 3, hi: 5 }]);
    // Another edge's seq 3 is its own.
    expect(await post(app, mk(EDGE_B.id, 3, [envReading('ooo-2', T0 + 3, { pm25: 3 })]))).toMatchObject({ duplicate: false });
  });

  it('a failing onBatchStored leaves the batch unmarked: 500, and the retry is first-time', async () => {
    const app = await makeApp();
    let fail = true;
    const seen: number[] = [];
    app.ingest.onBatchStored((b) => {
      if (fail) throw new Error('alert store unavailable');
      seen.push(b.seq);
    });
    const b = mk(EDGE_A.id, 7, [envReading('hook-1', T0 + 7, { pm25: 7 })], [], [{ deviceId: 'hook-1', dataClass: 'telemetry', reason: 'QUEUE_FULL', count: 2, oldestTsMs: T0 }]);
    const res = await app.inject({ method: 'POST', url: '/v1/batches', payload: protobuf(b), headers: batchHeaders(EDGE_A.token) });
    expect(res.statusCode).toBe(500);
    expect(app.ingest.marks.has(EDGE_A.id, 7)).toBe(false);
    expect(app.ingest.drops.totals('hook-1')).toEqual([]);
    fail = false;
    expect(await post(app, b)).toMatchObject({ duplicate: false });
    expect(seen).toEqual([7]);
    expect(app.ingest.drops.totals('hook-1').map((d) => d.count)).toEqual([2]);
  });

  it('keeps at most ingest.seqRangesPerEdge ranges: the lowest hole is then taken as processed', async () => {
    const app = await makeApp({ ingest: { seqRangesPerEdge: 16, gapGraceMs: GRACE } });
    for (let i = 0; i < 17; i++) await post(app, mk(EDGE_A.id, 1000 + 2 * i, [envReading('bound-1', T0 + i, { pm25: i })]));
    const ranges = app.ingest.marks.ranges(EDGE_A.id);
    expect(ranges).toHaveLength(16);
    expect(ranges[0]).toEqual({ lo: 1000, hi: 1002 });
    expect(await metric(app, 'citysense_cloud_seq_marks_assumed_total', { edge: EDGE_A.id })).toBe(1);
    // 1001 never came, and is now answered as a duplicate; 1003 is still a hole.
    expect(await post(app, mk(EDGE_A.id, 1001, [envReading('bound-1', T0 + 100, { pm25: 1 })]))).toMatchObject({ duplicate: true });
    expect(await post(app, mk(EDGE_A.id, 1003, [envReading('bound-1', T0 + 101, { pm25: 1 })]))).toMatchObject({ duplicate: false });
  });
});

describe('concurrent batches from one edge (several in flight, over real HTTP)', () => {
  it('each seq is first-time once, a copy sent at the same time is the duplicate, and continuity sees no gap or duplicate', async () => {
    const app = await makeApp();
    const seen: number[] = [];
    app.ingest.onBatchStored((b) => seen.push(b.seq));
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const devices = ['conc-1', 'conc-2', 'conc-3'];
    // Batch 300 + k carries deviceSeq k of every device: a later batch committing first opens holes
    // that the earlier one fills.
    const batches = [1, 2, 3, 4, 5, 6].map((k) => mk(EDGE_A.id, 300 + k, devices.map((d) => seqReading(d, k, T0 + 1000 * k))));
    const sends = [batches[5]!, batches[2]!, batches[0]!, batches[2]!, batches[4]!, batches[1]!, batches[3]!];
    const acks = await Promise.all(
      sends.map(async (b) => {
        const res = await fetch(`${url}/v1/batches`, { method: 'POST', body: protobuf(b, true), headers: batchHeaders(EDGE_A.token, true) });
        expect(res.status, await res.clone().text()).toBe(200);
        return decodeAck(new Uint8Array(await res.arrayBuffer()));
      }),
    );
    expect(acks.every((a) => a.accepted === devices.length && a.rejected === 0)).toBe(true);
    const copies = acks.filter((a) => a.seq === 303);
    expect(copies.map((a) => a.duplicate).sort()).toEqual([false, true]);
    expect(acks.filter((a) => a.seq !== 303).every((a) => !a.duplicate)).toBe(true);
    expect(seen.sort()).toEqual([301, 302, 303, 304, 305, 306]);
    expect(app.ingest.marks.ranges(EDGE_A.id)).toEqual([{ lo: 301, hi: 306 }]);

    clock += GRACE;
    app.ingest.sweepGaps();
    for (const d of devices) {
      expect(app.ingest.continuity.get(d)).toMatchObject({ max: 6, holes: [], gaps: 0, duplicates: 0, late: 0 });
      expect(await metric(app, 'citysense_cloud_device_duplicates_total', { device: d })).toBe(0);
    }
    expect(await metric(app, 'citysense_cloud_readings_written_total', { family: 'environment' })).toBe(6 * devices.length);
    expect(await metric(app, 'citysense_cloud_batches_duplicate_total', { edge: EDGE_A.id })).toBe(1);
    const stored = await influx.query(`SELECT count(pm25) FROM environment WHERE device_id =~ /^conc-/`);
    expect(stored[0]?.count).toBe(6 * devices.length);
  });
});

describe('per-device continuity', () => {
  it('deviceSeq 1,2,3,5: a hole that becomes one gap after the grace period; a late 4 closes it; 3 again is a duplicate', async () => {
    const app = await makeApp();
    await post(app, mk(EDGE_A.id, 1, [1, 2, 3, 5].map((s) => seqReading('cont-1', s))));
    expect(app.ingest.continuity.get('cont-1')).toMatchObject({ max: 5, holes: [{ lo: 4, hi: 4, counted: false }], gaps: 0 });
    expect(await metric(app, 'citysense_cloud_devices_with_open_gaps')).toBe(1);
    expect(await metric(app, 'citysense_cloud_device_gaps_total', { device: 'cont-1' })).toBe(0);

    clock += GRACE;
    app.ingest.sweepGaps();
    expect(await metric(app, 'citysense_cloud_device_gaps_total', { device: 'cont-1' })).toBe(1);

    await post(app, mk(EDGE_A.id, 2, [seqReading('cont-1', 4)]));
    expect(await metric(app, 'citysense_cloud_device_late_total', { device: 'cont-1' })).toBe(1);
    expect(await metric(app, 'citysense_cloud_devices_with_open_gaps')).toBe(0);
    expect(app.ingest.continuity.get('cont-1')).toMatchObject({ max: 5, holes: [], gaps: 1, late: 1, duplicates: 0 });

    await post(app, mk(EDGE_A.id, 3, [seqReading('cont-1', 3, T0 + 33)]));
    expect(await metric(app, 'citysense_cloud_device_duplicates_total', { device: 'cont-1' })).toBe(1);
    expect(await metric(app, 'citysense_cloud_device_gaps_total', { device: 'cont-1' })).toBe(1);
  });

  it('a hole filled within the grace period is no gap; events share the device sequence; a replayed batch is no device duplicate', async () => {
    const app = await makeApp();
    const alarm: DeviceEvent = { deviceId: 'cont-2', family: 'environment', ts: T0 + 3, type: 'threshold', attrs: {}, priority: 'alarm', id: 'ev-3', deviceSeq: 3 };
    await post(app, mk(EDGE_A.id, 11, [seqReading('cont-2', 1)], [alarm]));
    const telemetry = mk(EDGE_A.id, 10, [seqReading('cont-2', 2)]);
    await post(app, telemetry);
    await post(app, telemetry);
    clock += GRACE;
    app.ingest.sweepGaps();
    expect(app.ingest.continuity.get('cont-2')).toMatchObject({ max: 3, holes: [], gaps: 0, duplicates: 0, late: 0 });
    expect(await metric(app, 'citysense_cloud_device_gaps_total', { device: 'cont-2' })).toBe(0);
    expect(await metric(app, 'citysense_cloud_device_duplicates_total', { device: 'cont-2' })).toBe(0);
  });

  it('a deviceSeq below the first one seen moves the start of history down: no duplicate, the numbers between are a hole', async () => {
    const app = await makeApp();
    await post(app, mk(EDGE_A.id, 21, [seqReading('cont-low', 5)]));
    await post(app, mk(EDGE_A.id, 20, [seqReading('cont-low', 2)]));
    expect(app.ingest.continuity.get('cont-low')).toMatchObject({ min: 2, max: 5, holes: [{ lo: 3, hi: 4, counted: false }], duplicates: 0 });
    await post(app, mk(EDGE_A.id, 22, [seqReading('cont-low', 2, T0 + 22)]));
    expect(app.ingest.continuity.get('cont-low')).toMatchObject({ min: 2, duplicates: 1 });
  });

  it('a batch arriving after the grace period counts the older holes of the devices it touches', async () => {
    const app = await makeApp();
    await post(app, mk(EDGE_A.id, 1, [seqReading('cont-3', 1), seqReading('cont-3', 4)]));
    clock += GRACE;
    await post(app, mk(EDGE_A.id, 2, [seqReading('cont-3', 5)]));
    expect(await metric(app, 'citysense_cloud_device_gaps_total', { device: 'cont-3' })).toBe(2);
  });

  it('remembers at most ingest.gapRangesPerDevice holes: the lowest is counted and forgotten', async () => {
    const app = await makeApp({ ingest: { gapRangesPerDevice: 2, gapGraceMs: GRACE } });
    await post(app, mk(EDGE_A.id, 1, [1, 3, 5, 7].map((s) => seqReading('cont-4', s))));
    expect(app.ingest.continuity.get('cont-4')!.holes.map((h) => h.lo)).toEqual([4, 6]);
    expect(await metric(app, 'citysense_cloud_device_gaps_total', { device: 'cont-4' })).toBe(1);
  });
});

describe('drops reported by edges', () => {
  it('are counted per edge, device, class and reason once, also when the batch is replayed, and kept durably', async () => {
    const app = await makeApp();
    const drops: DropReport[] = [
      { deviceId: 'drop-1', dataClass: 'telemetry', reason: 'QUEUE_FULL', count: 7, oldestTsMs: T0 - 5000 },
      { deviceId: 'drop-1', dataClass: 'alarm', reason: 'DISK_FAILED', count: 1, oldestTsMs: T0 - 100 },
    ];
    const b = mk(EDGE_A.id, 50, [], [], drops);
    expect(await post(app, b)).toMatchObject({ accepted: 0, duplicate: false });
    expect(await post(app, b)).toMatchObject({ duplicate: true });
    const labels = { edge: EDGE_A.id, device: 'drop-1', class: 'telemetry', reason: 'QUEUE_FULL' };
    expect(await metric(app, 'citysense_cloud_edge_dropped_total', labels)).toBe(7);
    await post(app, mk(EDGE_A.id, 51, [], [], [{ deviceId: 'drop-1', dataClass: 'telemetry', reason: 'QUEUE_FULL', count: 3, oldestTsMs: T0 - 9000 }]));
    expect(await metric(app, 'citysense_cloud_edge_dropped_total', labels)).toBe(10);
    expect(await metric(app, 'citysense_cloud_edge_dropped_total', { ...labels, class: 'alarm', reason: 'DISK_FAILED' })).toBe(1);
    expect(app.ingest.drops.totals('drop-1')).toMatchObject([
      { edge: EDGE_A.id, dataClass: 'alarm', reason: 'DISK_FAILED', count: 1, oldestTsMs: T0 - 100 },
      { edge: EDGE_A.id, dataClass: 'telemetry', reason: 'QUEUE_FULL', count: 10, oldestTsMs: T0 - 9000 },
    ]);
  });
});

describe('after a cloud restart on the same store file', () => {
  it('replays are still duplicates, continuity goes on without false gaps or duplicates, drop totals stay', async () => {
    const store = { path: join(dir, 'restart.db') };
    const first = await makeApp({ store });
    await post(first, mk(EDGE_A.id, 20, [1, 2, 3].map((s) => seqReading('restart-1', s)), [], [{ deviceId: 'restart-1', dataClass: 'telemetry', reason: 'QUEUE_FULL', count: 4, oldestTsMs: T0 }]));
    await post(first, mk(EDGE_A.id, 22, [seqReading('restart-1', 5)]));
    await first.close();
    apps.splice(apps.indexOf(first), 1);

    const second = await makeApp({ store });
    const seen: number[] = [];
    second.ingest.onBatchStored((b) => seen.push(b.seq));
    expect(await post(second, mk(EDGE_A.id, 20, [1, 2, 3].map((s) => seqReading('restart-1', s))))).toMatchObject({ duplicate: true });
    expect(await post(second, mk(EDGE_A.id, 22, [seqReading('restart-1', 5)]))).toMatchObject({ duplicate: true });
    expect(await metric(second, 'citysense_cloud_devices_with_open_gaps')).toBe(1);
    await post(second, mk(EDGE_A.id, 21, [seqReading('restart-1', 4)]));
    await post(second, mk(EDGE_A.id, 23, [seqReading('restart-1', 6)]));
    expect(seen).toEqual([21, 23]);
    expect(second.ingest.marks.ranges(EDGE_A.id)).toEqual([{ lo: 20, hi: 23 }]);
    clock += GRACE;
    second.ingest.sweepGaps();
    expect(await metric(second, 'citysense_cloud_device_gaps_total', { device: 'restart-1' })).toBe(0);
    expect(await metric(second, 'citysense_cloud_device_duplicates_total', { device: 'restart-1' })).toBe(0);
    expect(await metric(second, 'citysense_cloud_readings_written_total', { family: 'environment' })).toBe(2);
    expect(second.ingest.continuity.get('restart-1')).toMatchObject({ max: 6, holes: [] });
    expect(second.ingest.drops.totals('restart-1').map((d) => d.count)).toEqual([4]);
    await post(second, mk(EDGE_A.id, 24, [seqReading('restart-1', 2)]));
    expect(await metric(second, 'citysense_cloud_device_duplicates_total', { device: 'restart-1' })).toBe(1);
  });

  it('a hole counted as a gap before the restart is recognised as late after it', async () => {
    const store = { path: join(dir, 'restart-gap.db') };
    const first = await makeApp({ store });
    await post(first, mk(EDGE_A.id, 1, [seqReading('restart-2', 1), seqReading('restart-2', 3)]));
    clock += GRACE;
    first.ingest.sweepGaps();
    expect(await metric(first, 'citysense_cloud_device_gaps_total', { device: 'restart-2' })).toBe(1);
    await first.close();
    apps.splice(apps.indexOf(first), 1);

    const second = await makeApp({ store });
    await post(second, mk(EDGE_A.id, 2, [seqReading('restart-2', 2)]));
    expect(await metric(second, 'citysense_cloud_device_late_total', { device: 'restart-2' })).toBe(1);
    expect(second.ingest.continuity.get('restart-2')).toMatchObject({ gaps: 1, late: 1, holes: [] });
  });
});
