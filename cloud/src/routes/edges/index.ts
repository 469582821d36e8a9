// GET /v1/edges/{edgeId}/registry: an edge's slice of the device registry, in the edge's own registry
// shape ({devices: [...]}, edge/src/config/schema.ts registryFileSchema) plus the slice version.
// Authenticated like POST /v1/batches (plugins/edge-auth.ts: bearer token or client certificate), and
// an edge gets only its own slice. ETag / If-None-Match: 304 while nothing in the slice changed, so
// edges can poll often at the cost of a header.
import type { FastifyPluginAsync } from 'fastify';
import type { CloudConfig } from '../../config/schema.ts';
import { CloudError } from '../../errors.ts';
import { edgeAuthPlugin } from '../../plugins/edge-auth.ts';

export interface EdgeRoutesOptions extends Record<string, unknown> {
  config: CloudConfig;
  env: Record<string, string | undefined>;
}

function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((t) => {
    const tag = t.trim().replace(/^W\//, '');
    return tag === etag || tag === '*';
  });
}

export const edgeRoutes: FastifyPluginAsync<EdgeRoutesOptions> = async (app, opts) => {
  await app.register(edgeAuthPlugin, { auth: opts.config.auth, env: opts.env });

  app.get('/v1/edges/:edgeId/registry', async (req, reply) => {
    const edgeId = (req.params as { edgeId: string }).edgeId;
    if (edgeId !== req.edgeId) throw new CloudError('EDGE_SLICE_FORBIDDEN', `authenticated as ${req.edgeId}`);
    reply.header('cache-control', 'no-cache');
    const etag = app.registry.sliceEtag(edgeId);
    if (matches(req.headers['if-none-match'], etag)) {
      reply.header('etag', etag);
      return reply.code(304).send();
    }
    const slice = app.registry.slice(edgeId);
    // The version read with the devices (same transaction) makes the ETag, not a later one.
    reply.header('etag', `"r${slice.version}-${app.registry.assignmentHash}"`);
    return { edge: edgeId, version: slice.version, devices: slice.devices };
  });
};
