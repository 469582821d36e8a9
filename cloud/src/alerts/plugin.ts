// The alert engine and webhook delivery as app.alerts and app.webhooks: rules loaded and validated at
// build, state and outbox in app.store, started when the app is ready, stopped when it closes.
import type { CloudConfig } from '../config/schema.ts';
import { WebhookOutbox } from '../delivery/outbox.ts';
import { resolveTargets } from '../delivery/targets.ts';
import { shared } from '../plugins/shared.ts';
import { AlertEngine } from './engine.ts';
import { createActiveGauge, createAlertMetrics, type AlertMetrics } from './metrics.ts';
import { DEFAULT_RULES_DIR, loadRules } from './rules.ts';

declare module 'fastify' {
  interface FastifyInstance {
    alerts: AlertEngine;
    webhooks: WebhookOutbox;
    alertMetrics: AlertMetrics;
  }
}

export interface AlertsPluginOptions extends Record<string, unknown> {
  config: CloudConfig;
  env: Record<string, string | undefined>;
  now: () => number;
  /** Jitter source for webhook backoff (tests). */
  random?: () => number;
}

export const alertsPlugin = shared<AlertsPluginOptions>('citysense-alerts', async (app, opts) => {
  const { config } = opts;
  const rules = config.alerts.enabled ? loadRules(config.alerts.rulesFiles ?? [DEFAULT_RULES_DIR], config.alerts.rules) : [];
  const targets = resolveTargets(config.webhooks.targets, config.webhooks.demoTargetsFromEnv, opts.env);
  let outbox: WebhookOutbox | undefined;
  const metrics = createAlertMetrics(app.metrics.registry, { outboxPending: () => outbox?.pendingCount() ?? 0 });
  const log = app.log.child({ module: 'alerts' });
  outbox = new WebhookOutbox(app.store, targets, metrics, config.webhooks, log, opts.now, opts.random);
  const engine = new AlertEngine({
    store: app.store,
    outbox,
    metrics,
    rules,
    config: config.alerts,
    log,
    now: opts.now,
    writeInflux: (lines) => app.influx.writer.write(lines),
  });
  createActiveGauge(app.metrics.registry, () => engine.state.active());
  app.decorate('alerts', engine);
  // The integration point with ingestion: called once per first-time batch, inside the transaction that
  // marks it processed (cloud/src/ingest/plugin.ts), so alert state commits with the seq mark.
  app.ingest.onBatchStored((batch, info) => engine.onStoredBatch(batch, info));
  app.decorate('webhooks', outbox);
  app.decorate('alertMetrics', metrics);
  app.addHook('onReady', async () => {
    engine.start();
    outbox.start();
  });
  app.addHook('preClose', async () => {
    await engine.close();
    await outbox.close();
  });
  log.info({ rules: rules.length, targets: targets.map((t) => t.id) }, 'alert engine ready');
});
