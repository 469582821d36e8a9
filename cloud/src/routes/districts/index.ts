// Per-district summaries (viewer+): devices total / online / offline / never heard from, per family too,
// and alerts firing or acknowledged.
//   GET /v1/districts                      every district with devices or open alerts
//   GET /v1/districts/{district}/summary   one district (zeros for a district with nothing in it)
import type { FastifyPluginAsync } from 'fastify';
import { CloudError } from '../../errors.ts';

export const districtRoutes: FastifyPluginAsync = async (app) => {
  const viewer = { preHandler: app.requireRole('viewer') };
  app.get('/v1/districts', viewer, async () => ({ districts: app.districts.summaries() }));
  app.get('/v1/districts/:district/summary', viewer, async (req) => {
    const d = (req.params as { district: string }).district;
    if (!d || d.length > 64) throw new CloudError('BAD_REQUEST', 'a district name is 1-64 characters');
    return (
      app.districts.summaries(d)[0] ?? {
        district: d,
        devices: { total: 0, online: 0, offline: 0, never_seen: 0 },
        families: {},
        alerts: { firing: 0, acknowledged: 0 },
      }
    );
  });
};
