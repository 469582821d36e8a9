// GET /v1/alerts/stream: every alert state change as a server-sent event, `id:` = the change's durable
// sequence number. A client that reconnects with Last-Event-ID (or ?lastEventId=) gets every change after
// it from the store, then the live ones; without it, only changes from now on (?lastEventId=0 replays all).
// The stream is read from the store, never from a per-client queue, so a slow client costs no memory:
// when its unsent bytes pass alerts.stream.maxBufferedBytes it is disconnected (counted) and resumes.
import type { FastifyPluginAsync } from 'fastify';
import type { CloudConfig } from '../../config/schema.ts';
import { CloudError } from '../../errors.ts';

export const alertStream: FastifyPluginAsync<{ stream: CloudConfig['alerts']['stream'] }> = async (app, opts) => {
  const cfg = opts.stream;
  let clients = 0;
  const open = new Set<(reason?: 'slow') => void>();

  app.get('/v1/alerts/stream', { preHandler: app.requireRole('viewer') }, (req, reply) => {
    if (clients >= cfg.maxClients) {
      app.alertMetrics.streamDisconnected.inc({ reason: 'too_many' });
      throw new CloudError('STREAM_FULL', `${cfg.maxClients} clients`);
    }
    const header = req.headers['last-event-id'] ?? (req.query as Record<string, unknown>).lastEventId;
    const asked = header === undefined ? NaN : Number(header);
    let sent = Number.isInteger(asked) && asked >= 0 ? asked : app.alerts.state.lastSeq();

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    clients++;
    let closed = false;
    let waitingDrain = false;

    const close = (reason?: 'slow') => {
      if (closed) return;
      closed = true;
      clients--;
      clearInterval(heartbeat);
      unsubscribe();
      open.delete(close);
      if (reason) {
        app.log.warn({ reason, sent }, 'alert stream client disconnected');
        app.alertMetrics.streamDisconnected.inc({ reason });
      }
      app.alertMetrics.streamClients.set(clients);
      res.end();
    };

    const pump = () => {
      if (closed || waitingDrain) return;
      for (;;) {
        const rows = app.alerts.changesAfter(sent, cfg.replayChunk);
        for (const r of rows) {
          const ok = res.write(`id: ${r.seq}\nevent: alert\ndata: ${r.body}\n\n`);
          sent = r.seq;
          if (res.writableLength > cfg.maxBufferedBytes) return close('slow');
          if (!ok) {
            waitingDrain = true;
            res.once('drain', () => {
              waitingDrain = false;
              pump();
            });
            return;
          }
        }
        if (rows.length < cfg.replayChunk) return;
      }
    };

    const heartbeat = setInterval(() => {
      if (res.writableLength > cfg.maxBufferedBytes) return close('slow');
      res.write(': heartbeat\n\n');
    }, cfg.heartbeatMs);
    heartbeat.unref();
    const unsubscribe = app.alerts.subscribe(pump);
    req.raw.on('close', () => close());
    res.on('error', () => close());
    open.add(close);
    app.alertMetrics.streamClients.set(clients);
    pump();
  });

  // Streams end when the app closes, or the server would wait for them for ever.
  app.addHook('preClose', async () => {
    for (const close of [...open]) close();
  });
};
