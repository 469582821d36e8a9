// Backpressure: an InfluxDB stand-in (node:http) that holds /write until the test lets it answer. The
// cloud holds at most maxConcurrentWrites + maxQueuedBatches uploads, refuses the rest at once with a
// retryable 503 INGEST_BUSY, and drains when InfluxDB answers; InfluxDB slow or down → 503, back → 200.
// No sleeps: every wait is a condition with a deadline.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeAck, type Batch } from '@citysense/proto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { testInflux, waitFor } from '../../e2e/setup/influx.ts';
import type { CloudConfigInput } from '../src/config/schema.ts';
import { EDGE_A, T0, batchHeaders, envReading, protobuf, testApp, testConfig } from './helpers.ts';

interface StandIn {
  url: string;
  port: number;
  /** /write requests waiting for release(). */
  held: http.ServerResponse[];
  writes: number;
  /** Answer every held write (204) and the later ones at once. */
  release(): void;
  close(): Promise<void>;
}

async function standIn(opts: { hold: boolean; port?: number }): Promise<StandIn> {
  let hold = opts.hold;
  const s: StandIn = {
    url: '',
    port: 0,
    held: [],
    writes: 0,
    release() {
      hold = false;
      for (const res of s.held.splice(0)) res.writeHead(204).end();
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (!req.url?.startsWith('/write')) return void res.writeHead(404).end();
      s.writes++;
      if (hold) s.held.push(res);
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  s.port = (server.address() as AddressInfo).port;
  s.url = `http://127.0.0.1:${s.port}`;
  return s;
}

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function makeApp(url: string, extra: CloudConfigInput = {}): Promise<FastifyInstance> {
  const app = testApp(testConfig({ url, db: 'backpressure' }, extra));
  cleanup.push(() => app.close());
  await app.ready();
  return app;
}

let seq = 0;
const mk = (): Batch => ({ edgeId: EDGE_A.id, seq: ++seq, createdMs: T0, readings: [envReading('bp-1', T0 + seq, { pm25: seq })], events: [] });
// One fire alarm as an alarm-lane batch (at T0 + its seq unless `ts` is given), and its upload on the alarm lane.
const mkAlarm = (deviceId: string, zone: string, idPrefix: string, ts?: number): Batch => {
  const s = ++seq;
  return {
    edgeId: EDGE_A.id,
    seq: s,
    createdMs: T0,
    lane: 'alarm',
    readings: [],
    events: [{ deviceId, family: 'fire', ts: ts ?? T0 + s, type: 'fire_alarm', attrs: { zone }, priority: 'alarm', id: `${idPrefix}-${s}`, tags: { district: 'jinshui' } }],
  };
};
const postAlarm = (app: FastifyInstance, batch: Batch) =>
  app.inject({ method: 'POST', url: '/v1/batches', payload: protobuf(batch), headers: { ...batchHeaders(EDGE_A.token), 'x-citysense-lane': 'alarm' } });
const post = (app: FastifyInstance, b: Batch) => app.inject({ method: 'POST', url: '/v1/batches', payload: protobuf(b), headers: batchHeaders(EDGE_A.token) });
const metrics = async (app: FastifyInstance) => (await app.inject({ method: 'GET', url: '/metrics' })).body;

function expectBusy(res: LightMyRequestResponse) {
  expect(res.statusCode, res.body).toBe(503);
  expect(res.json().error).toBe('INGEST_BUSY');
  expect(res.headers['retry-after']).toBe('7');
}

describe('backpressure', () => {
  it('refuses uploads beyond maxConcurrentWrites + maxQueuedBatches at once, and drains when InfluxDB answers', async () => {
    const influx = await standIn({ hold: true });
    cleanup.push(() => influx.close());
    const app = await makeApp(influx.url, { influx: { maxConcurrentWrites: 1, retryAfterSeconds: 7, timeoutMs: 120_000 }, limits: { maxQueuedBatches: 1 } });

    const first = [mk(), mk()];
    const pending = first.map((b) => post(app, b));
    // One write held by InfluxDB, one batch waiting for the write slot.
    await waitFor('one write held and one batch waiting', () => influx.held.length === 1 && app.ingest.gate.writing === 1 && app.ingest.gate.waiting === 1);
    const text = await metrics(app);
    expect(text).toMatch(/^citysense_cloud_influx_writes_in_flight 1$/m);
    expect(text).toMatch(/^citysense_cloud_ingest_batches_waiting 1$/m);

    // These answer while InfluxDB still holds the first write: nothing is buffered for them.
    const refused = [mk(), mk(), mk()];
    for (const b of refused) expectBusy(await post(app, b));
    expect(influx.writes).toBe(1);
    expect(await metrics(app)).toMatch(/^citysense_cloud_ingest_busy_total\{stage="admission"\} 3$/m);
    expect(await metrics(app)).toMatch(/^citysense_cloud_batches_refused_total\{reason="INGEST_BUSY"\} 3$/m);

    influx.release();
    const answered = await Promise.all(pending);
    expect(answered.map((r) => r.statusCode)).toEqual([200, 200]);
    expect(answered.map((r) => decodeAck(r.rawPayload).seq)).toEqual(first.map((b) => b.seq));

    // The edge sends the refused batches again after Retry-After: all stored, first time.
    for (const b of refused) {
      const res = await post(app, b);
      expect(res.statusCode).toBe(200);
      expect(decodeAck(res.rawPayload)).toMatchObject({ seq: b.seq, duplicate: false });
    }
    expect(influx.writes).toBe(5);
    expect(app.ingest.gate.admitted).toBe(0);
    const after = await metrics(app);
    expect(after).toMatch(/^citysense_cloud_influx_writes_in_flight 0$/m);
    expect(after).toMatch(/^citysense_cloud_ingest_batches_waiting 0$/m);
    expect(after).toMatch(/^citysense_cloud_readings_written_total\{family="environment"\} 5$/m);
  });

  it('an alarm-lane upload is admitted and written past telemetry that fills every slot and the queue', async () => {
    const influx = await standIn({ hold: true });
    cleanup.push(() => influx.close());
    const app = await makeApp(influx.url, { influx: { maxConcurrentWrites: 1, retryAfterSeconds: 7, timeoutMs: 120_000 }, limits: { maxQueuedBatches: 1 } });
    const telemetry = [mk(), mk()].map((b) => post(app, b));
    await waitFor('one write held and one batch waiting', () => influx.held.length === 1 && app.ingest.gate.waiting === 1);
    expectBusy(await post(app, mk()));
    // The same kind of upload marked as the alarm lane goes in, and its write goes out at once.
    const alarmBatch = mkAlarm('bp-fire', '3', 'bp-alarm');
    const alarm = postAlarm(app, alarmBatch);
    await waitFor('the alarm batch written while telemetry waits', () => influx.held.length >= 2 && app.ingest.gate.writing === 2 && app.ingest.gate.waiting === 1);
    // Answer every write but the first telemetry one (the alarm's, and the alert engine's own record).
    let answered = false;
    void alarm.then(() => (answered = true));
    await waitFor('the alarm answered while the first telemetry write is still held', () => {
      while (influx.held.length > 1) influx.held.pop()!.writeHead(204).end();
      return answered;
    });
    const res = await alarm;
    expect(res.statusCode, res.body).toBe(200);
    expect(decodeAck(res.rawPayload)).toMatchObject({ seq: alarmBatch.seq, duplicate: false });
    // Telemetry still waits behind the write InfluxDB holds; then everything drains.
    expect(app.ingest.gate.waiting).toBe(1);
    influx.release();
    expect((await Promise.all(telemetry)).map((r) => r.statusCode)).toEqual([200, 200]);
    expect(app.ingest.gate.admitted).toBe(0);
  });

  it('alarms first: an alarm-lane batch is alerted before its InfluxDB write; a failed write is retried as a duplicate, alerted once', async () => {
    const influx = await standIn({ hold: true });
    cleanup.push(() => influx.close());
    const app = await makeApp(influx.url, { influx: { retryAfterSeconds: 7, timeoutMs: 120_000 } });
    const alarmBatch = mkAlarm('af-panel', 'B1', 'af', Date.now());
    const send = () => postAlarm(app, alarmBatch);
    const fireAlerts = () => app.alerts.list({ limit: 10, categories: ['fire'] }).filter((a) => a.device_id === 'af-panel');
    let answered = false;
    const first = send();
    void first.then(() => (answered = true));
    // The alert exists while InfluxDB still holds the batch's write.
    await waitFor('the alert raised while the write is held', () => fireAlerts().length === 1 && influx.held.length >= 1);
    expect(answered).toBe(false);
    // InfluxDB fails the write (and its immediate retries): 503, the edge keeps the batch.
    await waitFor('the upload answered after InfluxDB failed', () => {
      for (const res of influx.held.splice(0)) res.writeHead(500).end('{"error":"engine: shard busy"}');
      return answered;
    });
    expect((await first).statusCode).toBe(503);
    // The edge sends it again: written, answered as a duplicate, not alerted twice.
    influx.release();
    const again = await send();
    expect(again.statusCode, again.body).toBe(200);
    expect(decodeAck(again.rawPayload)).toMatchObject({ seq: alarmBatch.seq, duplicate: true });
    expect(fireAlerts()).toHaveLength(1);
  });

  it('with no queue (maxQueuedBatches 0) a second upload is refused while one is written', async () => {
    const influx = await standIn({ hold: true });
    cleanup.push(() => influx.close());
    const app = await makeApp(influx.url, { influx: { maxConcurrentWrites: 1, retryAfterSeconds: 7, timeoutMs: 120_000 }, limits: { maxQueuedBatches: 0 } });
    const p = post(app, mk());
    await waitFor('one write held', () => influx.held.length === 1);
    expectBusy(await post(app, mk()));
    influx.release();
    expect((await p).statusCode).toBe(200);
  });

  it('InfluxDB slower than influx.timeoutMs: 503 INFLUX_UNAVAILABLE, nothing acknowledged', async () => {
    const influx = await standIn({ hold: true });
    cleanup.push(() => influx.close());
    const app = await makeApp(influx.url, { influx: { timeoutMs: 200, writeRetries: 0, retryAfterSeconds: 7 } });
    const b = mk();
    const res = await post(app, b);
    expect(res.statusCode).toBe(503);
    expect(res.json().error).toBe('INFLUX_UNAVAILABLE');
    expect(res.headers['retry-after']).toBe('7');
    expect(app.ingest.marks.has(EDGE_A.id, b.seq)).toBe(false);
    influx.release();
    const again = await post(app, b);
    expect(again.statusCode).toBe(200);
    expect(decodeAck(again.rawPayload).duplicate).toBe(false);
  });

  it('InfluxDB down then up: 503 then 200 for the same batch, first time', async () => {
    const real = await testInflux('cloud-backpressure');
    // A port nobody listens on, then the real influxd behind a pass-through on that same port.
    const probe = await standIn({ hold: false });
    const port = probe.port;
    await probe.close();
    const app = await makeApp(`http://127.0.0.1:${port}`, { influx: { database: real.db, timeoutMs: 2000, writeRetries: 0, retryAfterSeconds: 7 } });
    const b = mk();
    const down = await post(app, b);
    expect(down.statusCode).toBe(503);
    expect(down.json().error).toBe('INFLUX_UNAVAILABLE');
    expect(down.headers['retry-after']).toBe('7');

    const proxy = http.createServer((req, res) => {
      const target = new URL(req.url ?? '/', real.url);
      const up = http.request(target, { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.writeHead(502).end());
      req.pipe(up);
    });
    await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => (proxy.closeAllConnections(), proxy.close(resolve))));

    const up = await post(app, b);
    expect(up.statusCode).toBe(200);
    expect(decodeAck(up.rawPayload)).toMatchObject({ seq: b.seq, accepted: 1, duplicate: false });
    expect(await real.query(`SELECT pm25 FROM environment WHERE device_id = 'bp-1'`)).toEqual([{ time: T0 + b.seq, pm25: b.seq }]);
  });
});

async function waitUntil(cond: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 5000; !cond(); ) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((r) => setImmediate(r));
  }
}

describe('IngestGate write slots', () => {
  it('hands slots over in arrival order, refuses past maxQueued, and refuses a waiter after waitMs', async () => {
    const { IngestGate } = await import('../src/ingest/backpressure.ts');
    const gate = new IngestGate({ maxWrites: 1, maxQueued: 1, waitMs: 100 });
    let letGo!: () => void;
    const holding = gate.withWriteSlot(() => new Promise<string>((r) => (letGo = () => r('first'))));
    const order: string[] = [];
    const second = gate.withWriteSlot(async () => (order.push('second'), 'second'));
    await expect(gate.withWriteSlot(async () => 'third')).rejects.toMatchObject({ code: 'INGEST_BUSY' });
    letGo();
    expect(await holding).toBe('first');
    expect(await second).toBe('second');
    expect(gate.writing).toBe(0);

    const slow = gate.withWriteSlot(() => new Promise<void>((r) => (letGo = r)));
    await expect(gate.withWriteSlot(async () => 'late')).rejects.toMatchObject({ code: 'INGEST_BUSY' });
    letGo();
    await slow;
    expect([gate.writing, gate.waiting]).toEqual([0, 0]);
    expect(order).toEqual(['second']);
  });

  it('an alarm takes a reserve slot at once, and waits ahead of telemetry when the reserve is taken too', async () => {
    const { IngestGate } = await import('../src/ingest/backpressure.ts');
    const gate = new IngestGate({ maxWrites: 1, maxQueued: 4, waitMs: 5000, alarmReserve: 1 });
    const order: string[] = [];
    const lets: (() => void)[] = [];
    const hold = (name: string, alarm = false) =>
      gate.withWriteSlot(
        () =>
          new Promise<void>((r) => {
            order.push(name);
            lets.push(r);
          }),
        alarm,
      );
    const t1 = hold('t1');
    const t2 = hold('t2');
    const a1 = hold('a1', true);
    expect(order).toEqual(['t1', 'a1']);
    expect(gate.writing).toBe(2);
    const a2 = hold('a2', true);
    // t2 and a2 wait; a2 goes first when a slot frees, telemetry only once back under maxWrites.
    lets.shift()!();
    await t1;
    await waitUntil(() => order.length === 3);
    expect(order).toEqual(['t1', 'a1', 'a2']);
    lets.shift()!();
    await a1;
    expect(order).toEqual(['t1', 'a1', 'a2']);
    lets.shift()!();
    await a2;
    await waitUntil(() => order.length === 4);
    expect(order).toEqual(['t1', 'a1', 'a2', 't2']);
    lets.shift()!();
    await t2;
    expect([gate.writing, gate.waiting]).toEqual([0, 0]);
  });
});
