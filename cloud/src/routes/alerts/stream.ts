// GET /v1/alerts/stream: every alert state change as a server-sent event, `id:` = the change's durable
// sequence number. A client that reconnects with Last-Event-ID (or ?lastEventId=) gets every change after
// it from the store, then the live ones; without it, only changes from now on (?lastEventId=0 replays all).
// The stream is read from the store, never from a per-client queue, so a slow client costs no memory:
// when its unsent bytes pass alerts.stream.maxBufferedBytes it is disconnected (counted) and resumes.
// A stream lives no longer than the token that opened it: it ends when the token expires, is revoked
// (logout, an admin's revocation) or its operator is removed or loses the viewer role; the client's
// reconnect then gets 401. One operator holds at most alerts.stream.maxClientsPerOperator streams, so a
// single viewer (or a stolen token) cannot take every one of the platform's maxClients slots.
import type { FastifyPluginAsync } from 'fastify';
import type { CloudConfig } from '../../config/schema.ts';
import { CloudError } from '../../errors.ts';

export const alertStream: FastifyPluginAsync<{ stream: CloudConfig['alerts']['stream'] }> = async (app, opts) => {
  const cfg = opts.stream;
  let clients = 0;
  const perOperator = new Map<string, number>();
  type EndReason = 'slow' | 'expired' | 'revoked';
  const open = new Set<(reason?: EndReason) => void>();

  app.get('/v1/alerts/stream', { preHandler: app.requireRole('viewer') }, (req, reply) => {
    const operator = req.operator!;
    if (clients >= cfg.maxClients) {
      app.alertMetrics.streamDisconnected.inc({ reason: 'too_many' });
      throw new CloudError('STREAM_FULL', `${cfg.maxClients} clients`);
    }
    const mine = perOperator.get(operator.sub) ?? 0;
    if (mine >= cfg.maxClientsPerOperator) {
      app.alertMetrics.streamDisconnected.inc({ reason: 'too_many_per_operator' });
      throw new CloudError('STREAM_OPERATOR_FULL', `${operator.sub} has ${mine} open`, Math.ceil(cfg.heartbeatMs / 1000));
    }
    const header = req.headers['last-event-id'] ?? (req.query as Record<string, unknown>).lastEventId;
    const asked = header === undefined ? NaN : Number(header);
    let sent = Number.isInteger(asked) && asked >= 0 ? asked : app.alerts.state.lastSeq();

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    clients++;
    perOperator.set(operator.sub, mine + 1);
    let closed = false;
    let waitingDrain = false;

    const close = (reason?: EndReason) => {
      if (closed) return;
      closed = true;
      clients--;
      const left = (perOperator.get(operator.sub) ?? 1) - 1;
      if (left > 0) perOperator.set(operator.sub, left);
      else perOperator.delete(operator.sub);
      clearInterval(heartbeat);
      unsubscribe();
      unwatch();
      open.delete(close);
      if (reason) {
        if (reason === 'slow') app.log.warn({ reason, sent }, 'alert stream client disconnected');
        else app.log.info({ reason, operator: operator.sub }, 'alert stream ended with its token');
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
    const unwatch = app.operatorAuth.watch(operator, 'viewer', (reason) => close(reason));
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
