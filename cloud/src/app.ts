// Builds the cloud's fastify app from a validated config. Tests call buildApp and use app.inject();
// startCloud (start.ts) adds listening and the start-up steps.
import { readFileSync } from 'node:fs';
import { ProtoDecodeError, ProtoLimitError } from '@citysense/proto';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { CloudConfig } from './config/schema.ts';
import { CloudConfigError, CloudError, PROTO_DECODE_STATUS, PROTO_LIMIT_CODES } from './errors.ts';
import { createLogger, RateLimitedWarnings, safeUrl, type Logger } from './log.ts';
import { ingestPlugin } from './ingest/plugin.ts';
import { influxPlugin } from './plugins/influx.ts';
import { metricsPlugin } from './plugins/metrics.ts';
import { storePlugin } from './plugins/store.ts';
import { alertsPlugin } from './alerts/plugin.ts';
import { operatorAuthPlugin } from './auth/plugin.ts';
import { alertRoutes } from './routes/alerts/index.ts';
import { batchesRoutes } from './routes/ingest/batches.ts';
import { influxAdminPlugin } from './influx-admin/plugin.ts';
import { registryPlugin } from './registry/plugin.ts';
import { auditRoutes } from './routes/audit/index.ts';
import { deviceRoutes } from './routes/devices/index.ts';
import { districtRoutes } from './routes/districts/index.ts';
import { edgeRoutes } from './routes/edges/index.ts';
import { healthRoutes } from './routes/health.ts';
import { ruleRoutes } from './routes/rules/index.ts';
import { consolePlugin } from './console/plugin.ts';
import { consoleInfoPlugin } from './console/info.ts';

export interface BuildAppOptions {
  /** Defaults to a pino logger at config.log.level. */
  logger?: Logger;
  /** Where tokenEnv secrets are read from (default process.env). */
  env?: Record<string, string | undefined>;
  /** The cloud clock, for timestamp plausibility (tests). */
  now?: () => number;
  /** Jitter source for webhook retry backoff (tests). */
  random?: () => number;
}

/** fastify errors that are the client's doing, mapped to the catalogue. */
const FASTIFY_ERRORS: Record<string, CloudError['code']> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
};

interface ErrorAnswer {
  status: number;
  code: string;
  message: string;
  retryable: boolean;
  retryAfterSeconds?: number | undefined;
}

function toAnswer(err: FastifyError | Error): ErrorAnswer {
  if (err instanceof CloudError) return { status: err.status, code: err.code, message: err.message, retryable: err.retryable, retryAfterSeconds: err.retryAfterSeconds };
  if (err instanceof ProtoLimitError) {
    const ce = new CloudError(PROTO_LIMIT_CODES[err.code], err.message);
    return { status: ce.status, code: ce.code, message: ce.message, retryable: false };
  }
  if (err instanceof ProtoDecodeError) return { status: PROTO_DECODE_STATUS, code: err.code, message: err.message, retryable: false };
  const fe = err as FastifyError;
  const mapped = fe.code ? FASTIFY_ERRORS[fe.code] : undefined;
  if (mapped) {
    const ce = new CloudError(mapped, mapped === 'BAD_REQUEST' ? fe.message : undefined);
    return { status: ce.status, code: ce.code, message: ce.message, retryable: false };
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, code: 'BAD_REQUEST', message: fe.message, retryable: false };
  }
  const ce = new CloudError('INTERNAL');
  return { status: ce.status, code: ce.code, message: ce.message, retryable: false };
}

function tlsOptions(tls: NonNullable<CloudConfig['listen']['tls']>, requestCert: boolean) {
  const read = (what: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new CloudConfigError(`listen.tls.${what}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  return {
    cert: read('cert', tls.cert),
    key: read('key', tls.key),
    ...(tls.ca ? { ca: read('ca', tls.ca) } : {}),
    // Ask for a client certificate but let the handshake finish without one: edge-auth answers 401 as
    // JSON (a reason the installer can read) instead of a bare TLS alert, and /healthz and /metrics stay
    // reachable for probes that hold no edge certificate.
    requestCert,
    rejectUnauthorized: false,
  };
}

export function buildApp(config: CloudConfig, opts: BuildAppOptions = {}): FastifyInstance {
  const log = opts.logger ?? createLogger(config.log);
  const env = opts.env ?? process.env;
  const now = opts.now ?? Date.now;
  const warnings = new RateLimitedWarnings(log, config.log.warnPerInterval, config.log.warnIntervalMs, now);

  const serverOptions: FastifyServerOptions & { https?: object } = {
    loggerInstance: log,
    // One log line per request would be the busiest thing in the log; errors and refusals are logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Slow or stalled uploads must not hold sockets for ever.
    requestTimeout: 120_000,
    bodyLimit: 1024 * 1024,
  };
  if (config.listen.tls) serverOptions.https = tlsOptions(config.listen.tls, config.auth.mode !== 'token');
  // fastify's types pick http or https from the options at compile time; the app is used the same way.
  const app = Fastify(serverOptions) as unknown as FastifyInstance;

  app.register(metricsPlugin, { process: config.metrics.process, maxDeviceLabels: config.metrics.maxDeviceLabels });
  app.register(storePlugin, { path: config.store.path });
  app.register(influxPlugin, { influx: config.influx });
  // app.ingest: seq marks, continuity, drops, backpressure, onBatchStored (the alert engine listens there).
  app.register(ingestPlugin, { config, now });

  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const a = toAnswer(err);
    app.metrics.httpErrors.inc({ code: a.code, status: String(a.status) });
    const onIngest = req.routeOptions.url === '/v1/batches' || req.url.startsWith('/v1/batches');
    if (onIngest) app.metrics.batchesRefused.inc({ reason: a.code });
    // Refusals for load are expected under a backlog: logged at a bounded rate like bad input.
    if (a.code === 'INGEST_BUSY') warnings.warn(a.code, { edge: req.edgeId || undefined }, a.message);
    else if (a.status >= 500) req.log.error({ code: a.code, err: a.code === 'INTERNAL' ? err : undefined, edge: req.edgeId || undefined }, a.message);
    else warnings.warn(a.code, { edge: req.edgeId || undefined, url: safeUrl(req.url).slice(0, 200), ip: req.ip }, a.message);
    if (a.status === 401) reply.header('www-authenticate', `Bearer realm="${onIngest || req.url.startsWith('/v1/edges/') ? 'citysense-edge' : 'citysense'}"`);
    if (a.retryAfterSeconds !== undefined) reply.header('retry-after', String(a.retryAfterSeconds));
    else if (a.retryable) reply.header('retry-after', String(config.influx.retryAfterSeconds));
    reply.code(a.status).type('application/json').send({ error: a.code, message: a.message });
  });
  // API answers are per operator and change with every write: no browser or proxy may keep them (a
  // shared computer's cache would show the next user the last one's data). The console's static files set
  // their own caching (console/plugin.ts); the alert stream writes its own headers.
  app.addHook('onSend', async (req, reply) => {
    if (req.url.startsWith('/v1/')) reply.header('cache-control', 'no-store');
  });
  app.setNotFoundHandler((req, reply) => {
    app.metrics.httpErrors.inc({ code: 'NOT_FOUND', status: '404' });
    const e = new CloudError('NOT_FOUND', `${req.method} ${safeUrl(req.url).slice(0, 200)}`);
    reply.code(404).send({ error: e.code, message: e.message });
  });

  app.register(healthRoutes);
  // app.audit, app.registry, app.readings, app.districts (issue 7) before the alerts: the alert routes record
  // ack/resolve with app.audit.record.
  app.register(registryPlugin, { config, now });
  // Alerts (issue 5): engine + outbox (app.alerts, app.webhooks), operator login, the alerts API.
  app.register(alertsPlugin, { config, env, now, ...(opts.random ? { random: opts.random } : {}) });
  app.register(operatorAuthPlugin, { operators: config.operators, env, now });
  app.register(alertRoutes, { config });
  app.register(batchesRoutes, { config, env, warnings, now });
  // Device registry, query API, audit log, edge registry slices, retention + roll-ups (issue 7).
  app.register(influxAdminPlugin, { config });
  app.register(deviceRoutes, { config, now });
  app.register(districtRoutes);
  app.register(ruleRoutes);
  app.register(auditRoutes, { config });
  app.register(edgeRoutes, { config, env });
  // The operator web console at / and /console/, GET /v1/edges, GET /v1/districts/{d}/devices (docs/console.md).
  app.register(consolePlugin, { config, now });
  // What the login page shows before a login (the demo's accounts, when it is the demo) and /docs/.
  app.register(consoleInfoPlugin, { config });
  app.addHook('onClose', async () => warnings.flush());
  return app;
}
