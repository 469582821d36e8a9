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
  ingestSeconds: Histogram<'status'>;
  influxUp: Gauge;
  httpErrors: Counter<'code' | 'status'>;
  /** Label values that come from edges (event types) pass through here to keep cardinality bounded. */
  eventTypeLabel(type: string): string;
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

export function createCloudMetrics(opts: { process: boolean }): CloudMetrics {
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
      help: 'Whole POST /v1/batches request, from arrival to answer',
      labelNames: ['status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    influxUp: new Gauge({ name: `${PREFIX}influx_up`, help: '1 if the last write or ping reached InfluxDB, else 0', registers }),
    httpErrors: new Counter({ name: `${PREFIX}http_errors_total`, help: 'Error answers by code and HTTP status', labelNames: ['code', 'status'], registers }),
    eventTypeLabel: boundedLabel(200),
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: CloudMetrics;
  }
}

export const metricsPlugin = shared<{ process: boolean }>('citysense-metrics', async (app, opts) => {
  const metrics = createCloudMetrics(opts);
  app.decorate('metrics', metrics);
  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
});
