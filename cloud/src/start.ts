// Starts the cloud: build the app, make sure the database exists, listen. Used by main.ts and the demo.
import type { FastifyInstance } from 'fastify';
import { buildApp, type BuildAppOptions } from './app.ts';
import type { CloudConfig } from './config/schema.ts';

export interface RunningCloud {
  /** Base URL, e.g. http://127.0.0.1:8080 (https with listen.tls). */
  url: string;
  port: number;
  app: FastifyInstance;
  /** Stops accepting, finishes in-flight requests (their writes and Acks), closes InfluxDB sockets. */
  close(): Promise<void>;
}

export async function startCloud(config: CloudConfig, opts: BuildAppOptions = {}): Promise<RunningCloud> {
  const app = buildApp(config, opts);
  try {
    await app.ready();
    try {
      await app.influx.ensureDatabase();
    } catch (err) {
      // Not fatal: the cloud answers 503 until InfluxDB is back, and the first write creates the database.
      app.log.warn({ err: (err as Error).message, influx: config.influx.url }, 'InfluxDB is not reachable at start; batches get 503 until it is');
    }
    await app.listen({ host: config.listen.host, port: config.listen.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.listen.port;
  const scheme = config.listen.tls ? 'https' : 'http';
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  const url = `${scheme}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
  app.log.info({ url, influx: config.influx.url, database: config.influx.database, auth: config.auth.mode }, 'citysense cloud listening');
  return { url, port, app, close: () => app.close() };
}
