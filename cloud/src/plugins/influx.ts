// InfluxDB for the rest of the app: the hot write path (ingest/write.ts, hand-built line protocol over a
// keep-alive agent) and the `influx` client for everything that is not hot: ping, CREATE DATABASE,
// queries. Both speak only the v1 HTTP API.
import { InfluxDB } from 'influx';
import type { CloudConfig } from '../config/schema.ts';
import { InfluxWriter } from '../ingest/write.ts';
import { shared } from './shared.ts';

export interface InfluxPing {
  reachable: boolean;
  latencyMs?: number;
  version?: string;
  error?: string;
}

export interface InfluxService {
  url: string;
  database: string;
  client: InfluxDB;
  writer: InfluxWriter;
  ping(): Promise<InfluxPing>;
  /** CREATE DATABASE is idempotent in InfluxDB 1.x, so this is safe at every start. */
  ensureDatabase(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    influx: InfluxService;
  }
}

export function createInfluxService(cfg: CloudConfig['influx']): InfluxService {
  const u = new URL(cfg.url);
  const secure = u.protocol === 'https:';
  const client = new InfluxDB({
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: Number(u.port || (secure ? 443 : 80)),
    protocol: secure ? 'https' : 'http',
    path: u.pathname.replace(/\/$/, ''),
    database: cfg.database,
    username: cfg.username ?? 'root',
    password: cfg.password ?? 'root',
  });
  const ensureDatabase = async () => {
    await client.createDatabase(cfg.database);
  };
  const writer = new InfluxWriter({
    url: cfg.url,
    database: cfg.database,
    username: cfg.username,
    password: cfg.password,
    timeoutMs: cfg.timeoutMs,
    retries: cfg.writeRetries,
    maxSockets: cfg.maxSockets,
    createDatabase: ensureDatabase,
  });
  return {
    url: cfg.url,
    database: cfg.database,
    client,
    writer,
    ensureDatabase,
    async ping() {
      const [stats] = await client.ping(cfg.timeoutMs);
      if (stats?.online) return { reachable: true, latencyMs: stats.rtt, version: stats.version };
      const status = stats?.res?.statusCode;
      return {
        reachable: false,
        error: status ? `InfluxDB at ${cfg.url} answered /ping with ${status}` : `no answer from InfluxDB at ${cfg.url} within ${cfg.timeoutMs} ms (refused, unreachable or timed out)`,
      };
    },
  };
}

export const influxPlugin = shared<{ influx: CloudConfig['influx'] }>('citysense-influx', async (app, opts) => {
  const influx = createInfluxService(opts.influx);
  app.decorate('influx', influx);
  app.addHook('onClose', async () => influx.writer.close());
});
