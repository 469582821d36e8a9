// The edge's own HTTP port: /healthz for probes and operators, /metrics for Prometheus.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

import type { HttpPushStatus } from '../inputs/http-push/server.ts';
import type { OpcuaServerStatus } from '../inputs/opcua/types.ts';

export interface Health {
  status: 'ok' | 'degraded';
  edgeId: string;
  mqtt: { port: number; connections: number };
  hj212: { port: number; connections: number } | null;
  gb26875?: { port: number; connections: number } | null;
  /** The CTWing / OneNET push receivers (null when not configured). */
  push?: HttpPushStatus | null;
  opcua: OpcuaServerStatus[];
  uplink: { state: 'up' | 'down' | 'unknown'; lastAckAt: string | null; lastError: string | null };
  queuedReadings: number;
  queue?: {
    telemetry: { readings: number; events: number; bytes: number };
    alarm: { readings: number; events: number; bytes: number };
    oldestAgeSeconds: number;
    dropped: Record<string, number>;
    tornRecords: number;
  };
}

export async function startHttpServer(o: {
  host: string;
  port: number;
  health: () => Health;
  registry: Registry;
}): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'application/json', allow: 'GET, HEAD' });
      res.end(JSON.stringify({ error: 'method_not_allowed', message: 'only GET and HEAD' }));
      return;
    }
    if (path === '/healthz') {
      const h = o.health();
      // Degraded still answers 200: the edge keeps accepting and holding data while the cloud is away.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(h));
      return;
    }
    if (path === '/metrics') {
      o.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': o.registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: 'metrics_failed', message: err.message }));
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'not_found', message: 'try /healthz or /metrics' }));
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
