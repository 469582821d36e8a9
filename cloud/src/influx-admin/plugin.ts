// app.influxAdmin: applies influx.retention (retention policies + roll-up continuous queries) when the
// cloud starts listening (startCloud, `npm run cloud`), and again every retryMs until it succeeds when
// InfluxDB is not reachable at start. Apps that are only inject()ed (most tests) do not touch InfluxDB's
// policies unless they call app.influxAdmin.ensure().
import type { CloudConfig } from '../config/schema.ts';
import { shared } from '../plugins/shared.ts';
import { ensureRetention, type RetentionReport } from './retention.ts';

export interface InfluxAdmin {
  /** Makes retention policies and CQs match the config; safe to call any number of times. */
  ensure(): Promise<RetentionReport>;
  /** The last successful report (undefined before the first). */
  readonly last: RetentionReport | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    influxAdmin: InfluxAdmin;
  }
}

const RETRY_MS = 30_000;

export const influxAdminPlugin = shared<{ config: CloudConfig }>('citysense-influx-admin', async (app, opts) => {
  const cfg = opts.config.influx;
  const log = app.log.child({ module: 'influx-admin' });
  let last: RetentionReport | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const admin: InfluxAdmin = {
    async ensure() {
      last = await ensureRetention(app.influx.client, cfg.database, cfg.retention);
      return last;
    },
    get last() {
      return last;
    },
  };
  app.decorate('influxAdmin', admin);

  const attempt = async () => {
    timer = undefined;
    if (closed) return;
    try {
      const r = await admin.ensure();
      // What was changed and why, one line each: an installer must be able to see what the cloud did to
      // their InfluxDB (issue 11).
      for (const c of r.created) log.info({ database: cfg.database, created: c }, `InfluxDB: created ${c} (missing; influx.retention.manage)`);
      for (const c of r.replaced) log.info({ database: cfg.database, replaced: c }, `InfluxDB: replaced ${c} (its definition differed from influx.retention)`);
      for (const c of r.altered) log.warn({ database: cfg.database, altered: c }, `InfluxDB: altered ${c}`);
      for (const c of r.kept) log.warn({ database: cfg.database, kept: c }, `InfluxDB: left as it was: ${c}`);
      const changed = [...r.created, ...r.altered, ...r.replaced];
      log.info({ rawPolicy: r.rawPolicy, changed: changed.length, kept: r.kept.length, unchanged: r.unchanged.length }, changed.length ? 'InfluxDB retention and roll-ups updated' : 'InfluxDB retention and roll-ups checked, nothing changed');
    } catch (err) {
      log.warn({ err: (err as Error).message, retryInMs: RETRY_MS }, 'could not apply influx.retention (retention policies, roll-up CQs); retrying');
      if (!closed) {
        timer = setTimeout(attempt, RETRY_MS);
        timer.unref();
      }
    }
  };
  if (cfg.retention.manage) {
    app.addHook('onListen', async () => {
      void attempt();
    });
  }
  app.addHook('preClose', async () => {
    closed = true;
    if (timer) clearTimeout(timer);
  });
});
