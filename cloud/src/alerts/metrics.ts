// Metrics of the alert engine and webhook delivery, on the app's registry (plugins/metrics.ts).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const PREFIX = 'citysense_cloud_';
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export interface AlertMetrics {
  fired: Counter<'rule' | 'category' | 'severity'>;
  stateChanges: Counter<'state'>;
  flapping: Counter<'rule'>;
  seriesDropped: Counter;
  influxWriteFailures: Counter;
  streamClients: Gauge;
  streamDisconnected: Counter<'reason'>;
  edgeNotifiedSkipped: Counter<'target'>;
  webhookAttempts: Counter<'target' | 'outcome'>;
  webhookDelivered: Counter<'target'>;
  webhookDeadLetter: Counter<'target'>;
  webhookDeferred: Counter<'target'>;
  outboxPending: Gauge;
  enqueueLatency: Histogram;
  deliveryLatency: Histogram<'target'>;
}

export function createAlertMetrics(registry: Registry, collect: { outboxPending(): number }): AlertMetrics {
  const registers = [registry];
  return {
    fired: new Counter({ name: `${PREFIX}alerts_fired_total`, help: 'Alerts that went to firing', labelNames: ['rule', 'category', 'severity'], registers }),
    stateChanges: new Counter({ name: `${PREFIX}alerts_state_changes_total`, help: 'Alert state changes, by new state', labelNames: ['state'], registers }),
    flapping: new Counter({ name: `${PREFIX}alerts_flapping_total`, help: 'Alerts marked flapping (they then resolve only after alerts.flapping.quietMs of calm)', labelNames: ['rule'], registers }),
    seriesDropped: new Counter({ name: `${PREFIX}alerts_series_dropped_total`, help: 'Pending conditions and rate windows not tracked because alerts.maxSeries was reached', registers }),
    influxWriteFailures: new Counter({ name: `${PREFIX}alerts_influx_write_failures_total`, help: 'Writes of alert state changes to the alerts measurement that failed (retried)', registers }),
    streamClients: new Gauge({ name: `${PREFIX}alerts_stream_clients`, help: 'Connected GET /v1/alerts/stream clients', registers }),
    streamDisconnected: new Counter({ name: `${PREFIX}alerts_stream_disconnected_total`, help: 'Stream clients the cloud disconnected or refused, by reason (slow, too_many, too_many_per_operator, expired, revoked)', labelNames: ['reason'], registers }),
    edgeNotifiedSkipped: new Counter({ name: `${PREFIX}alerts_edge_notified_skipped_total`, help: 'Webhooks not sent because the edge had already notified the target of that event', labelNames: ['target'], registers }),
    webhookAttempts: new Counter({ name: `${PREFIX}webhook_attempts_total`, help: 'Webhook POST attempts, by target and outcome (delivered, http_error, timeout, network_error)', labelNames: ['target', 'outcome'], registers }),
    webhookDelivered: new Counter({ name: `${PREFIX}webhook_delivered_total`, help: 'State changes a target acknowledged with 2xx', labelNames: ['target'], registers }),
    webhookDeadLetter: new Counter({ name: `${PREFIX}webhook_dead_letter_total`, help: 'Deliveries that failed their last attempt and went to the dead-letter list', labelNames: ['target'], registers }),
    webhookDeferred: new Counter({ name: `${PREFIX}webhook_deferred_total`, help: 'Deliveries postponed by a target\'s rate limit (storm bound; never dropped)', labelNames: ['target'], registers }),
    outboxPending: new Gauge({
      name: `${PREFIX}webhook_outbox_pending`,
      help: 'Deliveries waiting in the durable outbox',
      registers,
      collect() {
        this.set(collect.outboxPending());
      },
    }),
    enqueueLatency: new Histogram({
      name: `${PREFIX}alerts_enqueue_latency_seconds`,
      help: 'Batch received by the cloud → its alert state change enqueued for webhooks',
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    deliveryLatency: new Histogram({
      name: `${PREFIX}alerts_delivery_latency_seconds`,
      help: 'Batch received by the cloud → its alert state change delivered to a target (retries included)',
      labelNames: ['target'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
  };
}

export function createActiveGauge(registry: Registry, active: () => Record<string, number>): Gauge<'state'> {
  return new Gauge({
    name: `${PREFIX}alerts_active`,
    help: 'Alerts not resolved, by state (firing, acknowledged)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const a = active();
      this.set({ state: 'firing' }, a.firing ?? 0);
      this.set({ state: 'acknowledged' }, a.acknowledged ?? 0);
    },
  });
}
