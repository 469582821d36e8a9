// POST /v1/batches against the run's real influxd: what lands, what is refused, and that the process
// goes on after every refusal.
import { createServer } from 'node:net';
import { gzipSync } from 'node:zlib';
import { decodeAck, decodeBatch } from '@citysense/proto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { influxQuery, rows } from '../../scripts/influxd.ts';
import { EDGE_A, EDGE_B, T0, batch, batchHeaders, envReading, protobuf, testApp, testConfig } from './helpers.ts';

let influx: TestInflux;
let app: FastifyInstance;

beforeAll(async () => {
  influx = await testInflux('cloud-ingest');
  app = testApp(testConfig(influx, { limits: { bodyBytes: 64 * 1024, inflatedBytes: 256 * 1024, maxReadingsPerBatch: 100 } }));
  await app.ready();
});
afterAll(async () => {
  await app?.close();
});

const post = (body: Buffer, headers: Record<string, string>) => app.inject({ method: 'POST', url: '/v1/batches', payload: body, headers });
const count = async (measurement: string, where = '') => {
  const r = await influx.query(`SELECT count(*) FROM "${measurement}" ${where}`);
  const row = r[0];
  if (!row) return 0;
  return Math.max(...Object.entries(row).filter(([k]) => k.startsWith('count_')).map(([, v]) => Number(v)));
};

describe('a good batch', () => {
  it('lands gzip-compressed with measurement, sorted tags, typed fields, quality and its own timestamps', async () => {
    const b = batch(EDGE_A.id, [
      envReading('env-1', T0 + 1, { pm25: 61, pm10: 80.5, door_open: false, status: 'ok "calm"' }, { quality: 'N' }),
      envReading('env-1', T0 + 2, { pm25: 61.5, pm10: 81, door_open: true, status: 'back\\slash' }),
      { deviceId: 'lift-9', family: 'elevator', ts: T0 + 3, values: { floor: 7, moving: true }, tags: { district: 'erqi', model: 'KONE X' } },
    ]);
    const res = await post(protobuf(b, true), batchHeaders(EDGE_A.token, true));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/x-protobuf/);
    const ack = decodeAck(res.rawPayload);
    expect(ack).toMatchObject({ seq: b.seq, accepted: 3, rejected: 0, duplicate: false });

    const env = await influx.query(`SELECT * FROM environment WHERE device_id = 'env-1' ORDER BY time`);
    expect(env).toEqual([
      { time: T0 + 1, device_id: 'env-1', district: 'jinshui', site: 'station-7', model: 'AQ-2000', pm25: 61, pm10: 80.5, door_open: false, status: 'ok "calm"', quality: 'N' },
      { time: T0 + 2, device_id: 'env-1', district: 'jinshui', site: 'station-7', model: 'AQ-2000', pm25: 61.5, pm10: 81, door_open: true, status: 'back\\slash', quality: null },
    ]);
    const types = Object.fromEntries((await influx.query('SHOW FIELD KEYS FROM environment')).map((r) => [r.fieldKey, r.fieldType]));
    expect(types).toEqual({ pm25: 'float', pm10: 'float', door_open: 'boolean', status: 'string', quality: 'string' });
    const tags = (await influx.query('SHOW TAG KEYS FROM environment')).map((r) => r.tagKey);
    expect(tags).toEqual(['device_id', 'district', 'model', 'site']);

    const lift = await influx.query('SELECT * FROM elevator');
    expect(lift).toEqual([{ time: T0 + 3, device_id: 'lift-9', district: 'erqi', model: 'KONE X', floor: 7, moving: true }]);
    const liftTypes = Object.fromEntries((await influx.query('SHOW FIELD KEYS FROM elevator')).map((r) => [r.fieldKey, r.fieldType]));
    expect(liftTypes.floor).toBe('float');
  });

  it('writes events to `events` with device_id, district, family, type tags and id, priority, attrs fields', async () => {
    const b = batch(
      EDGE_A.id,
      [],
      [
        {
          deviceId: 'fire-1',
          family: 'fire',
          ts: T0 + 10,
          type: 'fire_alarm',
          attrs: { zone: 'B2-07', 'loop no': '3' },
          priority: 'alarm',
          id: 'evt-1',
          tags: { district: 'zhongyuan', site: 'mall' },
        },
      ],
    );
    const res = await post(protobuf(b), batchHeaders(EDGE_A.token));
    expect(res.statusCode).toBe(200);
    expect(decodeAck(res.rawPayload)).toMatchObject({ accepted: 1, rejected: 0 });
    const rows = await influx.query('SELECT * FROM events');
    expect(rows).toEqual([
      {
        time: T0 + 10,
        device_id: 'fire-1',
        district: 'zhongyuan',
        family: 'fire',
        type: 'fire_alarm',
        id: 'evt-1',
        priority: 'alarm',
        attrs: JSON.stringify({ zone: 'B2-07', 'loop no': '3' }),
        attr_zone: 'B2-07',
        attr_loop_no: '3',
      },
    ]);
  });

  it('answers an empty batch with an Ack and writes nothing', async () => {
    const b = batch(EDGE_B.id, []);
    const res = await post(protobuf(b), batchHeaders(EDGE_B.token));
    expect(res.statusCode).toBe(200);
    expect(decodeAck(res.rawPayload)).toMatchObject({ seq: b.seq, accepted: 0, rejected: 0 });
  });
});

describe('authentication', () => {
  it('refuses a wrong token with 401 and writes nothing', async () => {
    const b = batch(EDGE_A.id, [envReading('auth-wrong', T0, { pm25: 1 })]);
    const res = await post(protobuf(b), batchHeaders('not-the-token'));
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: 'EDGE_AUTH_INVALID' });
    expect(res.headers['www-authenticate']).toMatch(/Bearer/);
    expect(await count('environment', `WHERE device_id = 'auth-wrong'`)).toBe(0);
  });

  it('refuses a missing token with 401', async () => {
    const b = batch(EDGE_A.id, [envReading('auth-missing', T0, { pm25: 1 })]);
    const res = await post(protobuf(b), batchHeaders(undefined));
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: 'EDGE_AUTH_MISSING' });
    expect(await count('environment', `WHERE device_id = 'auth-missing'`)).toBe(0);
  });

  it('refuses a non-bearer Authorization as invalid', async () => {
    const res = await post(protobuf(batch(EDGE_A.id, [])), { ...batchHeaders(undefined), authorization: 'Basic ZWRnZTpwdw==' });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: 'EDGE_AUTH_INVALID' });
  });

  it("refuses edge A's token on edge B's batch with 403", async () => {
    const b = batch(EDGE_B.id, [envReading('auth-mismatch', T0, { pm25: 1 })]);
    const res = await post(protobuf(b), batchHeaders(EDGE_A.token));
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ error: 'EDGE_ID_MISMATCH' });
    expect(await count('environment', `WHERE device_id = 'auth-mismatch'`)).toBe(0);
  });

  it('never echoes the token', async () => {
    const res = await post(protobuf(batch(EDGE_A.id, [])), batchHeaders('leaky-secret-123'));
    expect(res.body).not.toContain('leaky-secret-123');
  });
});

describe('bad input costs nothing else', () => {
  it('answers a truncated protobuf 400 with a reason code, then writes the next good batch', async () => {
    const good = protobuf(batch(EDGE_A.id, [envReading('after-bad', T0 + 5, { pm25: 9 })]));
    const truncated = protobuf(batch(EDGE_A.id, [envReading('truncated', T0, { pm25: 1, pm10: 2 })])).subarray(0, 20);
    const bad = await post(truncated, batchHeaders(EDGE_A.token));
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'BATCH_UNDECODABLE' });
    expect(bad.json().message).toEqual(expect.any(String));

    const ok = await post(good, batchHeaders(EDGE_A.token));
    expect(ok.statusCode).toBe(200);
    expect(await count('environment', `WHERE device_id = 'after-bad'`)).toBe(1);
  });

  it('answers a batch without edge_id 400 BATCH_NO_EDGE_ID', async () => {
    const res = await post(protobuf(batch('', [])), batchHeaders(EDGE_A.token));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'BATCH_NO_EDGE_ID' });
  });

  it('refuses a wrong content type with 415', async () => {
    const res = await post(Buffer.from('{"edge_id":"edge-a"}'), { ...batchHeaders(EDGE_A.token), 'content-type': 'application/json' });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toMatchObject({ error: 'UNSUPPORTED_MEDIA_TYPE' });
  });

  it('refuses an unknown content encoding with 415 and a non-gzip "gzip" body with 400', async () => {
    const body = protobuf(batch(EDGE_A.id, []));
    const br = await post(body, { ...batchHeaders(EDGE_A.token), 'content-encoding': 'br' });
    expect(br.statusCode).toBe(415);
    expect(br.json()).toMatchObject({ error: 'UNSUPPORTED_ENCODING' });
    const notGzip = await post(body, batchHeaders(EDGE_A.token, true));
    expect(notGzip.statusCode).toBe(400);
    expect(notGzip.json()).toMatchObject({ error: 'BODY_NOT_GZIP' });
  });

  it('refuses an empty body with 400', async () => {
    const res = await post(Buffer.alloc(0), batchHeaders(EDGE_A.token));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'BODY_EMPTY' });
  });

  it('answers a body over limits.bodyBytes with 413', async () => {
    const res = await post(Buffer.alloc(65 * 1024, 1), batchHeaders(EDGE_A.token));
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ error: 'BODY_TOO_LARGE' });
  });

  it('answers a gzip bomb with 413 without inflating it whole', async () => {
    // 32 MiB of zeros gzip to ~32 KiB: under bodyBytes, far over inflatedBytes (256 KiB).
    const bomb = gzipSync(Buffer.alloc(32 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(64 * 1024);
    const res = await post(bomb, batchHeaders(EDGE_A.token, true));
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ error: 'INFLATED_TOO_LARGE' });
  });

  it('refuses a batch over limits.maxReadingsPerBatch with 413, writing none of it', async () => {
    const readings = Array.from({ length: 101 }, (_, i) => envReading('too-many', T0 + i, { pm25: i }));
    const res = await post(protobuf(batch(EDGE_A.id, readings), true), batchHeaders(EDGE_A.token, true));
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ error: 'BATCH_TOO_MANY_READINGS' });
    expect(await count('environment', `WHERE device_id = 'too-many'`)).toBe(0);
  });

  it('rejects invalid readings with stable codes in the Ack and writes the rest', async () => {
    const b = batch(EDGE_A.id, [
      envReading('val-ok', T0 + 1, { pm25: 1 }),
      envReading('val-nan', T0 + 2, { pm25: Number.NaN }),
      envReading('val-name', T0 + 3, { 'pm 2.5': 1 }),
      envReading('val-future', Date.now() + 86_400_000, { pm25: 1 }),
      envReading('val-past', 1000, { pm25: 1 }),
      envReading('val-tag', T0 + 4, { pm25: 1 }, { tags: { district: 'bad\\' } }),
      envReading('val-time', T0 + 5, { time: 1 }),
      envReading('val-empty', T0 + 6, {}),
      envReading('val-ok', T0 + 7, { pm25: 2 }),
    ]);
    const body = protobuf(b);
    const res = await post(body, batchHeaders(EDGE_A.token));
    expect(res.statusCode).toBe(200);
    const ack = decodeAck(res.rawPayload);
    expect(ack.accepted).toBe(2);
    expect(ack.rejected).toBe(7);
    expect(Object.fromEntries(ack.rejections.map((r) => [rejectedDevice(body, r.index), r.code]))).toEqual({
      'val-nan': 'READING_NOT_FINITE',
      'val-name': 'READING_BAD_METRIC_NAME',
      'val-future': 'READING_BAD_TIMESTAMP',
      'val-past': 'READING_BAD_TIMESTAMP',
      'val-tag': 'READING_BAD_TAG',
      'val-time': 'READING_BAD_METRIC_NAME',
      'val-empty': 'READING_NO_VALUES',
    });
    expect(ack.rejections.every((r) => r.kind === 'reading' && r.message.length > 0)).toBe(true);
    expect(await count('environment', `WHERE device_id =~ /^val-/`)).toBe(2);
  });

  it('rejects an event without type or id and writes the others of the batch', async () => {
    const ev = (id: string, type: string) => ({ deviceId: 'evt-dev', family: 'fire' as const, ts: T0 + 20, type, attrs: {}, priority: 'alarm' as const, id, tags: { district: 'erqi' } });
    const b = batch(EDGE_A.id, [envReading('evt-mix', T0 + 20, { pm25: 3 })], [ev('e-ok', 'gas_alarm'), ev('e-notype', ''), ev('', 'fault'), ev('e-bs', 'bad\\type')]);
    const res = await post(protobuf(b), batchHeaders(EDGE_A.token));
    expect(res.statusCode).toBe(200);
    const ack = decodeAck(res.rawPayload);
    expect(ack).toMatchObject({ accepted: 2, rejected: 3 });
    expect(ack.rejections.map((r) => [r.kind, r.index, r.code])).toEqual([
      ['event', 1, 'EVENT_BAD_TYPE'],
      ['event', 2, 'EVENT_NO_ID'],
      ['event', 3, 'EVENT_BAD_TYPE'],
    ]);
    expect(await influx.query(`SELECT id FROM events WHERE device_id = 'evt-dev'`)).toEqual([{ time: T0 + 20, id: 'e-ok' }]);
  });

  it('reports points InfluxDB refuses for a field type conflict as INFLUX_REJECTED and keeps the rest', async () => {
    const first = batch(EDGE_A.id, [envReading('conflict', T0 + 1, { mode: 'auto' })]);
    expect((await post(protobuf(first), batchHeaders(EDGE_A.token))).statusCode).toBe(200);
    const second = batch(EDGE_A.id, [
      envReading('conflict', T0 + 2, { mode: 'manual' }),
      envReading('conflict-n', T0 + 3, { mode: 3 }),
      envReading('conflict', T0 + 4, { mode: 'auto', pm25: 4 }),
      envReading('conflict-b', T0 + 5, { mode: true }),
    ]);
    const body = protobuf(second);
    const res = await post(body, batchHeaders(EDGE_A.token));
    expect(res.statusCode).toBe(200);
    const ack = decodeAck(res.rawPayload);
    expect(ack.rejected).toBe(2);
    expect(ack.accepted).toBe(2);
    expect(ack.rejections.map((r) => [rejectedDevice(body, r.index), r.code]).sort()).toEqual([
      ['conflict-b', 'INFLUX_REJECTED'],
      ['conflict-n', 'INFLUX_REJECTED'],
    ]);
    expect(ack.rejections[0]!.message).toMatch(/mode/);
    expect(await count('environment', `WHERE device_id =~ /^conflict/`)).toBe(3);
  });
});

describe('InfluxDB unreachable', () => {
  it('answers 503 INFLUX_UNAVAILABLE with Retry-After, healthz says degraded, and nothing is acked', async () => {
    const port = await closedPort();
    const down = testApp(testConfig({ url: `http://127.0.0.1:${port}`, db: influx.db }, { influx: { retryAfterSeconds: 7, timeoutMs: 2000 } }));
    try {
      const res = await down.inject({ method: 'POST', url: '/v1/batches', payload: protobuf(batch(EDGE_A.id, [envReading('down', T0, { pm25: 1 })])), headers: batchHeaders(EDGE_A.token) });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('7');
      expect(res.json()).toMatchObject({ error: 'INFLUX_UNAVAILABLE' });
      const health = await down.inject({ method: 'GET', url: '/healthz' });
      expect(health.statusCode).toBe(503);
      expect(health.json()).toMatchObject({ status: 'degraded', influx: { reachable: false, error: expect.any(String) } });
      const metrics = (await down.inject({ method: 'GET', url: '/metrics' })).body;
      expect(metrics).toMatch(/citysense_cloud_influx_up 0/);
      expect(metrics).toMatch(/citysense_cloud_batches_refused_total\{reason="INFLUX_UNAVAILABLE"\} 1/);
    } finally {
      await down.close();
    }
  });

  it('creates a missing database on the first write and retries it', async () => {
    const db = `${influx.db}_created`;
    const fresh = testApp(testConfig({ url: influx.url, db }));
    try {
      const res = await fresh.inject({ method: 'POST', url: '/v1/batches', payload: protobuf(batch(EDGE_A.id, [envReading('fresh-db', T0, { pm25: 1 })])), headers: batchHeaders(EDGE_A.token) });
      expect(res.statusCode).toBe(200);
      expect(rows(await influxQuery(influx.url, db, 'SELECT count(pm25) FROM environment'))).toEqual([{ time: 0, count: 1 }]);
    } finally {
      await fresh.close();
      await fetch(`${influx.url}/query`, { method: 'POST', body: new URLSearchParams({ q: `DROP DATABASE "${db}"` }) });
    }
  });
});

describe('healthz and metrics', () => {
  it('reports InfluxDB reachable', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ok', influx: { reachable: true, latencyMs: expect.any(Number) } });
  });

  it('counts batches, readings, events and refusals', async () => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/citysense_cloud_batches_received_total\{edge="edge-a"\} \d+/);
    expect(text).toMatch(/citysense_cloud_readings_written_total\{family="environment"\} \d+/);
    expect(text).toMatch(/citysense_cloud_readings_written_total\{family="elevator"\} 1/);
    expect(text).toMatch(/citysense_cloud_events_written_total\{type="fire_alarm"\} 1/);
    expect(text).toMatch(/citysense_cloud_readings_rejected_total\{reason="READING_NOT_FINITE"\} 1/);
    expect(text).toMatch(/citysense_cloud_batches_refused_total\{reason="EDGE_AUTH_INVALID"\} \d+/);
    expect(text).toMatch(/citysense_cloud_batches_refused_total\{reason="BATCH_UNDECODABLE"\} 1/);
    expect(text).toMatch(/citysense_cloud_http_errors_total\{code="BODY_TOO_LARGE",status="413"\} 1/);
    expect(text).toMatch(/citysense_cloud_influx_write_seconds_count\{outcome="written"\} \d+/);
    expect(text).toMatch(/citysense_cloud_ingest_seconds_count\{status="200",lane="telemetry"\} \d+/);
    expect(text).toMatch(/citysense_cloud_influx_up 1/);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await app.inject({ method: 'GET', url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'NOT_FOUND' });
  });
});

/** Ack indices refer to the decoded batch's order (the codec groups a device's readings into series). */
function rejectedDevice(body: Buffer, index: number): string | undefined {
  return decodeBatch(body).readings[index]?.deviceId;
}

/** A loopback port with nothing listening: bound, then released. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}
