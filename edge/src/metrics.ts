// The edge's Prometheus metrics. Each Edge owns its Registry so several edges in one process (tests,
// a multi-site host) never share or collide on counters.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createEdgeMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'citysense_edge_process_' });
  const r = [registry];
  return {
    registry,
    connections: new Gauge({ name: 'citysense_edge_connections', help: 'Authenticated MQTT connections', registers: r }),
    connectRefused: new Counter({
      name: 'citysense_edge_connect_refused_total',
      help: 'MQTT connections refused, by reason',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    publishRefused: new Counter({
      name: 'citysense_edge_publish_refused_total',
      help: 'MQTT publishes refused by the topic ACL, by reason',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    subscribeRefused: new Counter({
      name: 'citysense_edge_subscribe_refused_total',
      help: 'MQTT subscriptions refused by the topic ACL',
      registers: r,
    }),
    readingsReceived: new Counter({
      name: 'citysense_edge_readings_received_total',
      help: 'Readings accepted into the pipeline, by family',
      labelNames: ['family'] as const,
      registers: r,
    }),
    valuesRejected: new Counter({
      name: 'citysense_edge_values_rejected_total',
      help: 'Single metric values refused (their neighbours went on), by device and reason',
      labelNames: ['device', 'reason'] as const,
      registers: r,
    }),
    messagesRejected: new Counter({
      name: 'citysense_edge_messages_rejected_total',
      help: 'Whole messages refused, by device and reason',
      labelNames: ['device', 'reason'] as const,
      registers: r,
    }),
    eventsReceived: new Counter({
      name: 'citysense_edge_events_received_total',
      help: 'Events accepted into the pipeline, by type',
      labelNames: ['type'] as const,
      registers: r,
    }),
    batchesSent: new Counter({ name: 'citysense_edge_batches_sent_total', help: 'Batch POST attempts', registers: r }),
    batchesAcked: new Counter({ name: 'citysense_edge_batches_acked_total', help: 'Batches the cloud acknowledged', registers: r }),
    batchesRefused: new Counter({
      name: 'citysense_edge_batches_refused_total',
      help: 'Batches the cloud refused for good (400, 413) and the edge dropped, by reason',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    readingsAcked: new Counter({
      name: 'citysense_edge_readings_acked_total',
      help: 'Readings in batches the cloud acknowledged',
      registers: r,
    }),
    uplinkErrors: new Counter({
      name: 'citysense_edge_uplink_errors_total',
      help: 'Failed batch POST attempts, by reason',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    uplinkRequestSeconds: new Histogram({
      name: 'citysense_edge_uplink_request_seconds',
      help: 'Duration of batch POSTs, whatever their outcome',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    }),
    queuedReadings: new Gauge({
      name: 'citysense_edge_queued_readings',
      help: 'Readings and events held in memory, not yet acknowledged by the cloud',
      registers: r,
    }),
    lastAckTimestamp: new Gauge({
      name: 'citysense_edge_last_ack_timestamp_seconds',
      help: 'Unix time of the last Ack from the cloud',
      registers: r,
    }),
  };
}

export type EdgeMetrics = ReturnType<typeof createEdgeMetrics>;
