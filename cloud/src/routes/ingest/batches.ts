// POST /v1/batches: the edge uplink. One batch's path through the cloud, step by step:
//   authenticate (edge-auth, onRequest, before the body is read)
//   → read the body (content-type parser: limits.bodyBytes, gunzip capped at limits.inflatedBytes)
//   → decode (@citysense/proto; batch limits enforced while the wire is scanned, before allocation)
//   → check it is the authenticated edge's batch
//   → validate each reading and event → write to InfluxDB (holding a write slot: ingest/backpressure.ts)
//   → mark (edge, seq) processed, with continuity, drops and the alert engine, in one store transaction
//     (ingest/plugin.ts) → Ack (duplicate: true when the seq was already processed).
// Admission comes first of all, right after authentication: when the cloud already holds as many uploads
// as it may, the answer is 503 INGEST_BUSY before the body is read.
import { decodeBatch, encodeAck, type DecodeLimits } from '@citysense/proto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { CloudConfig } from '../../config/schema.ts';
import { CloudError } from '../../errors.ts';
import { inflateGzip } from '../../ingest/inflate.ts';
import { countStored, storeBatch } from '../../ingest/store-batch.ts';
import { BatchValidator } from '../../ingest/validate.ts';
import type { RateLimitedWarnings } from '../../log.ts';
import { edgeAuthPlugin } from '../../plugins/edge-auth.ts';

export const BATCH_CONTENT_TYPE = 'application/x-protobuf';

export interface BatchesRouteOptions extends Record<string, unknown> {
  config: CloudConfig;
  env: Record<string, string | undefined>;
  warnings: RateLimitedWarnings;
  now: () => number;
}

async function readBody(req: FastifyRequest, raw: Buffer, limits: CloudConfig['limits']): Promise<Buffer> {
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return raw;
  if (encoding === 'gzip' || encoding === 'x-gzip') return inflateGzip(raw, limits.inflatedBytes);
  throw new CloudError('UNSUPPORTED_ENCODING', `got ${encoding.slice(0, 40)}`);
}

/** The config's batch limits as the decoder's (enforced while scanning the wire, before allocation). */
export function decodeLimits(limits: CloudConfig['limits']): DecodeLimits {
  return {
    maxReadings: limits.maxReadingsPerBatch,
    maxEvents: limits.maxEventsPerBatch,
    maxDevices: limits.maxDevicesPerBatch,
    maxSeries: limits.maxSeriesPerBatch,
    maxKeys: limits.maxKeysPerBatch,
    maxValues: limits.maxValuesPerBatch,
    maxMetricsPerReading: limits.maxMetricsPerReading,
    maxTagsPerItem: limits.maxTagsPerItem,
    maxDrops: limits.maxDropReportsPerBatch,
    maxStringBytes: limits.maxWireStringBytes,
  };
}

export const batchesRoutes: FastifyPluginAsync<BatchesRouteOptions> = async (app, opts) => {
  const { limits } = opts.config;
  const validator = new BatchValidator(limits, opts.now);
  const wireLimits = decodeLimits(limits);

  await app.register(edgeAuthPlugin, { auth: opts.config.auth, env: opts.env });

  // Backpressure, step one: admission (after edge-auth's onRequest, before the body is read).
  const admitted = new WeakSet<FastifyRequest>();
  const leave = (req: FastifyRequest) => {
    if (!admitted.delete(req)) return;
    app.ingest.gate.leave();
  };
  app.addHook('onRequest', async (req) => {
    // The edge's lane hint (the body is not read yet); the batch's own lane decides its write slot.
    if (!app.ingest.gate.tryAdmit(req.headers['x-citysense-lane'] === 'alarm')) {
      app.metrics.ingestBusy.inc({ stage: 'admission' });
      throw new CloudError('INGEST_BUSY', `${app.ingest.gate.admitted} uploads already in progress`);
    }
    admitted.add(req);
  });
  app.addHook('onRequestAbort', async (req) => leave(req));

  // Only protobuf is parsed here: any other Content-Type is refused with 415 by fastify before the body
  // is read, and the JSON parser cannot be made to buffer a large body on this route.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(BATCH_CONTENT_TYPE, { parseAs: 'buffer', bodyLimit: limits.bodyBytes }, (req, body, done) => {
    readBody(req, body as Buffer, limits).then(
      (b) => done(null, b),
      (err: Error) => done(err, undefined),
    );
  });

  app.addHook('onResponse', async (req, reply) => {
    leave(req);
    const lane = req.headers['x-citysense-lane'] === 'alarm' ? 'alarm' : 'telemetry';
    app.metrics.ingestSeconds.observe({ status: String(reply.statusCode), lane }, reply.elapsedTime / 1000);
  });

  app.post('/v1/batches', async (req, reply) => {
    const body = req.body;
    if (!Buffer.isBuffer(body)) throw new CloudError('UNSUPPORTED_MEDIA_TYPE', 'no Content-Type: application/x-protobuf body');
    if (body.length === 0) throw new CloudError('BODY_EMPTY');
    // Every count limit is checked while the bytes are scanned, before protobufjs allocates per item.
    const batch = decodeBatch(body, wireLimits);
    if (batch.edgeId !== req.edgeId) {
      throw new CloudError('EDGE_ID_MISMATCH', `authenticated as ${req.edgeId}, batch says ${batch.edgeId.slice(0, 128)}`);
    }
    app.metrics.batchesReceived.inc({ edge: req.edgeId });

    const validated = validator.validate(batch);
    for (const r of validated.rejections) {
      opts.warnings.warn(r.code, { edge: req.edgeId, seq: batch.seq, kind: r.kind, index: r.index }, r.message);
    }
    // Alarms first: for an alarm-lane batch the seq mark, continuity and the alert engine's evaluation
    // commit BEFORE the InfluxDB write, so a fire alarm reaches its targets without waiting behind
    // InfluxDB (busy with telemetry backlogs, or down). If the write then fails the edge gets 503 and
    // sends the batch again: the replay is written and answered as a duplicate, never alerted twice.
    // Telemetry keeps the order write → commit (alerts on what InfluxDB stored).
    const alarmFirst = batch.lane === 'alarm';
    let duplicate = false;
    if (alarmFirst) {
      const ack = { seq: batch.seq, accepted: validated.readings.length + validated.events.length, rejected: validated.rejections.length, rejections: validated.rejections, duplicate: false };
      duplicate = app.ingest.commit(req.edgeId, batch, { ack, stored: validated }).duplicate;
    }
    // A replay is written again too: it overwrites its own points, and repairs a write InfluxDB stored
    // only in part before it failed.
    let result;
    try {
      result = await app.ingest.gate.withWriteSlot(() => storeBatch(batch, validated, { writer: app.influx.writer, metrics: app.metrics }), alarmFirst);
    } catch (err) {
      if (err instanceof CloudError && err.code === 'INGEST_BUSY') app.metrics.ingestBusy.inc({ stage: 'write_slot' });
      throw err;
    }
    // The written/rejected counters of an alarm batch are counted here, after its write; when that write
    // failed, its replay is a duplicate and is not counted (the points are in InfluxDB all the same).
    if (alarmFirst) {
      if (!duplicate) countStored(app.metrics, result.tally);
    } else duplicate = app.ingest.commit(req.edgeId, batch, result).duplicate;
    const { ack, influxMessage } = result;
    ack.duplicate = duplicate;
    if (influxMessage !== undefined && !duplicate) {
      opts.warnings.warn('INFLUX_REJECTED', { edge: req.edgeId, seq: batch.seq, rejected: ack.rejected }, `InfluxDB refused points: ${influxMessage.slice(0, 500)}`);
    }
    reply.type(BATCH_CONTENT_TYPE);
    return Buffer.from(encodeAck(ack));
  });
};
