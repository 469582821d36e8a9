// GET /v1/audit (viewer+): who changed what, when; newest first.
//   ?actor=&action= (exact, or a prefix: device.* / alert.*)&target=&device=<id>&from=&to=&before=<seq>&limit=
import type { FastifyPluginAsync } from 'fastify';
import type { CloudConfig } from '../../config/schema.ts';
import { CloudError } from '../../errors.ts';
import { parseTime } from '../../query/influxql.ts';

export const auditRoutes: FastifyPluginAsync<{ config: CloudConfig }> = async (app, opts) => {
  const max = opts.config.registry.maxPageSize;
  app.get('/v1/audit', { preHandler: app.requireRole('viewer') }, async (req) => {
    const q = req.query as Record<string, unknown>;
    const s = (k: string) => {
      const v = q[k];
      if (v === undefined || v === '') return undefined;
      if (typeof v !== 'string') throw new CloudError('BAD_REQUEST', `${k} must be given once`);
      return v;
    };
    const limit = s('limit') === undefined ? 100 : Number(s('limit'));
    if (!Number.isInteger(limit) || limit < 1 || limit > max) throw new CloudError('BAD_REQUEST', `limit must be 1..${max}`);
    const beforeText = s('before');
    if (beforeText !== undefined && !/^\d{1,15}$/.test(beforeText)) throw new CloudError('BAD_REQUEST', 'before is the `next` cursor of a previous page');
    const device = s('device');
    const entries = app.audit.list({
      actor: s('actor'),
      action: s('action'),
      target: device !== undefined ? `device:${device}` : s('target'),
      from: parseTime('from', q.from),
      to: parseTime('to', q.to),
      before: beforeText === undefined ? undefined : Number(beforeText),
      limit,
    });
    const last = entries[entries.length - 1];
    return { entries, next: entries.length === limit && last ? String(last.seq) : null };
  });
};
