// The alerts API (contracts.md):
//   GET  /v1/alerts                    list, filtered by state, category, district, rule, device, time (viewer+)
//   GET  /v1/alerts/rules              the rules in force (viewer+)
//   GET  /v1/alerts/stream             server-sent events, every state change, resumable (viewer+)
//   GET  /v1/alerts/:id                one alert with its state changes and deliveries (viewer+)
//   POST /v1/alerts/:id/ack            firing → acknowledged (operator+)
//   POST /v1/alerts/:id/resolve        → resolved (operator+)
//   GET  /v1/webhooks/deliveries       the outbox: ?status=pending|delivered|dead|edge&target= (viewer+)
//   POST /v1/webhooks/deliveries/:id/retry   a dead letter back into the outbox (admin)
import type { FastifyPluginAsync } from 'fastify';
import type { CloudConfig } from '../../config/schema.ts';
import type { AlertRow } from '../../alerts/state.ts';
import type { DeliveryRow, DeliveryStatus } from '../../delivery/outbox.ts';
import { CloudError } from '../../errors.ts';
import { alertStream } from './stream.ts';

export interface AlertRoutesOptions extends Record<string, unknown> {
  config: CloudConfig;
}

const list = (v: unknown) => (typeof v === 'string' && v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);

/** ms since the epoch, or an ISO 8601 time. */
function time(name: string, v: unknown): number | undefined {
  if (v === undefined || v === '') return undefined;
  const s = String(v);
  const n = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
  if (!Number.isFinite(n)) throw new CloudError('BAD_REQUEST', `${name} must be milliseconds since the epoch or an ISO 8601 time`);
  return n;
}

function delivery(d: DeliveryRow) {
  return {
    id: d.id,
    target: d.target_id,
    event_id: d.event_id,
    status: d.status,
    attempts: d.attempts,
    next_attempt_at: d.status === 'pending' ? d.next_attempt_at : null,
    delivered_at: d.delivered_at,
    last_status: d.last_status,
    last_error: d.last_error,
  };
}

export const alertRoutes: FastifyPluginAsync<AlertRoutesOptions> = async (app, opts) => {
  const viewer = { preHandler: app.requireRole('viewer') };
  const operator = { preHandler: app.requireRole('operator') };
  const admin = { preHandler: app.requireRole('admin') };
  const cfg = opts.config.alerts;

  const withDeliveries = (a: AlertRow) => ({ ...a, deliveries: app.webhooks.deliveriesOf(a.id).map(delivery) });

  app.get('/v1/alerts', viewer, async (req) => {
    const q = req.query as Record<string, unknown>;
    const limit = Math.min(cfg.maxPageSize, q.limit === undefined ? 100 : Number(q.limit));
    if (!Number.isInteger(limit) || limit < 1) throw new CloudError('BAD_REQUEST', `limit must be 1..${cfg.maxPageSize}`);
    let before: { startedAt: number; id: string } | undefined;
    if (typeof q.before === 'string' && q.before) {
      const m = /^(\d+):(al_[0-9a-f]+)$/.exec(q.before);
      if (!m) throw new CloudError('BAD_REQUEST', 'before is the `next` cursor of a previous page');
      before = { startedAt: Number(m[1]), id: m[2]! };
    }
    const rows = app.alerts.list({
      states: list(q.state),
      categories: list(q.category),
      districts: list(q.district),
      rule: typeof q.rule === 'string' ? q.rule : undefined,
      device: typeof q.device === 'string' ? q.device : undefined,
      from: time('from', q.from),
      to: time('to', q.to),
      before,
      limit,
    });
    const last = rows[rows.length - 1];
    return { alerts: rows.map(withDeliveries), next: rows.length === limit && last ? `${last.started_at}:${last.id}` : null };
  });

  app.get('/v1/alerts/rules', viewer, async () => ({ rules: app.alerts.ruleList }));

  app.register(alertStream, { stream: cfg.stream });

  app.get('/v1/alerts/:id', viewer, async (req) => {
    const { id } = req.params as { id: string };
    const a = app.alerts.get(id);
    if (!a) throw new CloudError('ALERT_NOT_FOUND', id.slice(0, 100));
    return { ...withDeliveries(a), changes: app.alerts.changesOf(id) };
  });

  const audit = (actor: string, action: string, a: { id: string; rule: string; device_id: string; state: string }) =>
    app.audit?.record({ actor, action, target: `alert:${a.id}`, details: { rule: a.rule, device: a.device_id, from: a.state } });

  app.post('/v1/alerts/:id/ack', operator, async (req) => {
    const { id } = req.params as { id: string };
    // The audit entry commits with the state change, or neither does (issue 7: who, when, what).
    return withDeliveries(app.alerts.acknowledge(id, req.operator!.sub, (a) => audit(req.operator!.sub, 'alert.ack', a)));
  });

  app.post('/v1/alerts/:id/resolve', operator, async (req) => {
    const { id } = req.params as { id: string };
    return withDeliveries(app.alerts.resolve(id, req.operator!.sub, (a) => audit(req.operator!.sub, 'alert.resolve', a)));
  });

  app.get('/v1/webhooks/deliveries', viewer, async (req) => {
    const q = req.query as Record<string, unknown>;
    const status = q.status as DeliveryStatus | undefined;
    if (status !== undefined && !['pending', 'delivered', 'dead', 'edge'].includes(status)) {
      throw new CloudError('BAD_REQUEST', 'status is pending, delivered, dead or edge');
    }
    const limit = Math.min(cfg.maxPageSize, q.limit === undefined ? 100 : Number(q.limit));
    if (!Number.isInteger(limit) || limit < 1) throw new CloudError('BAD_REQUEST', `limit must be 1..${cfg.maxPageSize}`);
    const before = q.before === undefined ? undefined : Number(q.before);
    const rows = app.webhooks.list({ status, target: typeof q.target === 'string' ? q.target : undefined, limit, before });
    return { deliveries: rows.map((d) => ({ ...delivery(d), alert_id: d.alert_id, created_at: d.created_at })) };
  });

  app.post('/v1/webhooks/deliveries/:id/retry', admin, async (req) => {
    const id = Number((req.params as { id: string }).id);
    if (!Number.isInteger(id) || !app.webhooks.retry(id)) throw new CloudError('DELIVERY_NOT_FOUND', String((req.params as { id: string }).id).slice(0, 40));
    return { id, status: 'pending' };
  });
};
