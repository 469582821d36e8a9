// Prometheus metrics of the cloud, on a registry of the app's own (several apps in one process, as in the
// tests, must not collide in prom-client's global registry), served at GET /metrics.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { shared } from './shared.ts';

const PREFIX = 'citysense_cloud_';

export interface CloudMetrics {
  registry: Registry;
  batchesReceived: Counter<'edge'>;
  batchesRefused: Counter<'reason'>;
  readingsWritten: Counter<'family'>;
  readingsRejected: Counter<'reason'>;
  eventsWritten: Counter<'type'>;
  eventsRejected: Counter<'reason'>;
  influxWriteSeconds: Histogram<'outcome'>;
  ingestSeconds: Histogram<'status' | 'lane'>;
  influxUp: Gauge;
  httpErrors: Counter<'code' | 'status'>;
  /** Label values that come from edges (event types) pass through here to keep cardinality bounded. */
  eventTypeLabel(type: string): string;
  // Ingestion: dedupe, continuity, drops, backpressure (src/ingest/).
  batchesDuplicate: Counter<'edge'>;
  seqMarksAssumed: Counter<'edge'>;
  deviceGaps: Counter<'device'>;
  deviceDuplicates: Counter<'device'>;
  deviceLate: Counter<'device'>;
  devicesWithGaps: Gauge;
  edgeDropped: Counter<'edge' | 'device' | 'class' | 'reason'>;
  influxWritesInFlight: Gauge;
  ingestWaiting: Gauge;
  ingestBusy: Counter<'stage'>;
  /** Device ids as label values: the first metrics.maxDeviceLabels distinct ones, then "other". */
  deviceLabel(device: string): string;
  /** Drop reasons reported by edges: the first 100 distinct ones, then "other". */
  dropReasonLabel(reason: string): string;
}

/** Keeps the first `max` distinct values; later ones are counted under "other". */
function boundedLabel(max: number): (v: string) => string {
  const seen = new Set<string>();
  return (v) => {
    if (seen.has(v)) return v;
    if (seen.size >= max) return 'other';
    seen.add(v);
    return v;
  };
}

export interface CloudMetricsOptions extends Record<string, unknown> {
  process: boolean;
  /** Distinct device label values before "other" (default 10000). */
  maxDeviceLabels?: number;
}

export function createCloudMetrics(opts: CloudMetricsOptions): CloudMetrics {
  const registry = new Registry();
  if (opts.process) collectDefaultMetrics({ register: registry, prefix: PREFIX });
  const registers = [registry];
  return {
    registry,
    batchesReceived: new Counter({ name: `${PREFIX}batches_received_total`, help: 'Batches from authenticated edges with a readable body', labelNames: ['edge'], registers }),
    batchesRefused: new Counter({ name: `${PREFIX}batches_refused_total`, help: 'Batch uploads answered with an error, by error code', labelNames: ['reason'], registers }),
    readingsWritten: new Counter({ name: `${PREFIX}readings_written_total`, help: 'Readings InfluxDB accepted', labelNames: ['family'], registers }),
    readingsRejected: new Counter({ name: `${PREFIX}readings_rejected_total`, help: 'Readings left out of the write (validation or InfluxDB), by reason', labelNames: ['reason'], registers }),
    eventsWritten: new Counter({ name: `${PREFIX}events_written_total`, help: 'Events InfluxDB accepted', labelNames: ['type'], registers }),
    eventsRejected: new Counter({ name: `${PREFIX}events_rejected_total`, help: 'Events left out of the write, by reason', labelNames: ['reason'], registers }),
    influxWriteSeconds: new Histogram({
      name: `${PREFIX}influx_write_seconds`,
      help: 'One batch write to InfluxDB /write, retries included',
      labelNames: ['outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    ingestSeconds: new Histogram({
      name: `${PREFIX}ingest_seconds`,
      help: 'Whole POST /v1/batches request, from arrival to answer, by status and lane (the edge\'s x-citysense-lane)',
      labelNames: ['status', 'lane'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    influxUp: new Gauge({ name: `${PREFIX}influx_up`, help: '1 if the last write or ping reached InfluxDB, else 0', registers }),
    httpErrors: new Counter({ name: `${PREFIX}http_errors_total`, help: 'Error answers by code and HTTP status', labelNames: ['code', 'status'], registers }),
    eventTypeLabel: boundedLabel(200),
    batchesDuplicate: new Counter({ name: `${PREFIX}batches_duplicate_total`, help: 'Batches whose (edge, seq) was already processed: written again, not counted or alerted on again', labelNames: ['edge'], registers }),
    seqMarksAssumed: new Counter({
      name: `${PREFIX}seq_marks_assumed_total`,
      help: 'Batch seqs never received that were taken as processed to keep the seq marks within ingest.seqRangesPerEdge',
      labelNames: ['edge'],
      registers,
    }),
    deviceGaps: new Counter({ name: `${PREFIX}device_gaps_total`, help: 'Readings/events a device sent (by deviceSeq) that had not arrived after ingest.gapGraceMs', labelNames: ['device'], registers }),
    deviceDuplicates: new Counter({ name: `${PREFIX}device_duplicates_total`, help: 'deviceSeq numbers that arrived again in a new batch', labelNames: ['device'], registers }),
    deviceLate: new Counter({ name: `${PREFIX}device_late_total`, help: 'deviceSeq numbers that arrived after being counted as a gap (gaps - late = still missing)', labelNames: ['device'], registers }),
    devicesWithGaps: new Gauge({ name: `${PREFIX}devices_with_open_gaps`, help: 'Devices with deviceSeq numbers missing below their highest (pending or counted)', registers }),
    edgeDropped: new Counter({
      name: `${PREFIX}edge_dropped_total`,
      help: 'Readings/events the edges reported they had to drop, by device, data class and reason',
      labelNames: ['edge', 'device', 'class', 'reason'],
      registers,
    }),
    influxWritesInFlight: new Gauge({ name: `${PREFIX}influx_writes_in_flight`, help: 'Batch writes to InfluxDB in progress (at most influx.maxConcurrentWrites)', registers }),
    ingestWaiting: new Gauge({ name: `${PREFIX}ingest_batches_waiting`, help: 'Admitted uploads holding no write slot: being read, decoded or waiting for a slot', registers }),
    ingestBusy: new Counter({
      name: `${PREFIX}ingest_busy_total`,
      help: 'Uploads refused with 503 INGEST_BUSY, by stage (admission: before the body; write_slot: waited too long or too many waiting)',
      labelNames: ['stage'],
      registers,
    }),
    deviceLabel: boundedLabel(opts.maxDeviceLabels ?? 10_000),
    dropReasonLabel: boundedLabel(100),
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: CloudMetrics;
  }
}

export const metricsPlugin = shared<CloudMetricsOptions>('citysense-metrics', async (app, opts) => {
  const metrics = createCloudMetrics(opts);
  app.decorate('metrics', metrics);
  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
});
