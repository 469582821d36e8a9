// The edge's Prometheus metrics. Each Edge owns its Registry so several edges in one process (tests,
// a multi-site host) never share or collide on counters.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import type { QueueStats } from './queue/index.ts';

/**
 * The durable queue's state as metrics, read from its stats() at scrape time: depth (readings, events,
 * bytes) per class, oldest queued age, drained (acked) totals, drops by class/reason and by device,
 * torn records, disk bytes, accepts waiting or refused.
 */
export function registerQueueMetrics(registry: Registry, stats: () => QueueStats): void {
  const r = [registry];
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, s: QueueStats) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: r,
      collect() {
        this.reset();
        fill(this, stats());
      },
    });
  gauge('citysense_edge_queue_items', 'Readings and events queued on disk (not yet acknowledged by the cloud), by class and kind', ['class', 'kind'], (g, s) => {
    for (const c of ['telemetry', 'alarm'] as const) {
      g.set({ class: c, kind: 'readings' }, s[c].readings);
      g.set({ class: c, kind: 'events' }, s[c].events);
    }
  });
  gauge('citysense_edge_queue_bytes', 'Bytes of queued items on disk, by class (what the quota counts)', ['class'], (g, s) => {
    g.set({ class: 'telemetry' }, s.telemetry.bytes);
    g.set({ class: 'alarm' }, s.alarm.bytes);
  });
  gauge('citysense_edge_queue_oldest_age_seconds', 'Age of the oldest item not yet acknowledged (0 when empty)', [], (g, s) => g.set(s.oldestAcceptedMs === null ? 0 : (Date.now() - s.oldestAcceptedMs) / 1000));
  gauge('citysense_edge_queue_batches', 'Batches sealed and waiting (by lane) or handed out and not yet acknowledged (lane="open")', ['lane'], (g, s) => {
    g.set({ lane: 'telemetry' }, s.batchesQueued.telemetry);
    g.set({ lane: 'alarm' }, s.batchesQueued.alarm);
    g.set({ lane: 'open' }, s.batchesOpen);
  });
  gauge('citysense_edge_queue_disk_bytes', 'Bytes of queue segment files on disk', [], (g, s) => g.set(s.diskBytes));
  gauge('citysense_edge_queue_drained_total', 'Items acknowledged by the cloud and forgotten (rate() of it is the drain rate), by kind', ['kind'], (g, s) => {
    g.set({ kind: 'readings' }, s.acked.readings);
    g.set({ kind: 'events' }, s.acked.events);
  });
  gauge('citysense_edge_queue_dropped_total', 'Items the queue dropped (quota), by class and reason', ['class', 'reason'], (g, s) => {
    for (const [k, v] of Object.entries(s.droppedByClassReason)) {
      const [cls, reason] = k.split('/');
      g.set({ class: cls ?? 'unknown', reason: reason ?? 'unknown' }, v);
    }
  });
  gauge('citysense_edge_queue_dropped_by_device_total', 'Items the queue dropped, by device', ['device'], (g, s) => {
    for (const [d, v] of Object.entries(s.droppedByDevice)) g.set({ device: d }, v);
  });
  gauge('citysense_edge_queue_dead_lettered_total', 'Items in batches the cloud refused for good, kept in the dead-letter folder', [], (g, s) => g.set(s.deadLettered.readings + s.deadLettered.events));
  gauge('citysense_edge_queue_torn_records_total', 'Torn or corrupt queue records detected and skipped (after a crash)', [], (g, s) => g.set(s.tornRecords));
  gauge('citysense_edge_queue_write_errors_total', 'Queue writes the disk refused (ENOSPC, EIO)', [], (g, s) => g.set(s.writeErrors));
  gauge('citysense_edge_queue_waiting_accepts', 'Device messages waiting for room in the queue (their PUBACK is held back)', [], (g, s) => g.set(s.waitingAccepts));
}

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
    gb26875Heartbeats: new Counter({
      name: 'citysense_edge_gb26875_heartbeats_total',
      help: 'GB/T 26875.3 heartbeats (send-data frames without application data) received, by input (mqtt, tcp)',
      labelNames: ['input'] as const,
      registers: r,
    }),
    batchesSent: new Counter({ name: 'citysense_edge_batches_sent_total', help: 'Batch POST attempts', registers: r }),
    batchesAcked: new Counter({ name: 'citysense_edge_batches_acked_total', help: 'Batches the cloud acknowledged, by lane', labelNames: ['lane'] as const, registers: r }),
    batchesRefused: new Counter({
      name: 'citysense_edge_batches_refused_total',
      help: 'Batches the cloud refused for good (400, 413), kept in the dead-letter folder, by reason',
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
      help: 'Duration of batch POSTs, whatever their outcome, by lane',
      labelNames: ['lane'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
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
