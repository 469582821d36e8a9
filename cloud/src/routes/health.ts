// GET /healthz: is the cloud up, and can it reach InfluxDB (without which it acknowledges nothing).
import type { FastifyPluginAsync } from 'fastify';

export const healthRoutes: FastifyPluginAsync = async (app) => {
  app.get('/healthz', async (_req, reply) => {
    const ping = await app.influx.ping();
    app.metrics.influxUp.set(ping.reachable ? 1 : 0);
    if (ping.reachable) {
      return { status: 'ok', influx: { reachable: true, latencyMs: ping.latencyMs, version: ping.version, database: app.influx.database } };
    }
    reply.code(503);
    return { status: 'degraded', influx: { reachable: false, error: ping.error, database: app.influx.database } };
  });
};
