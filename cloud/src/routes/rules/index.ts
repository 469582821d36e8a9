// The alert rules the cloud runs (viewer+), so an operator can see what raises alerts without reading
// the server's files:
//   GET /v1/rules   { rules: [{ id, kind, category, severity, ..., source }], count }
// Each rule is shown as validated (defaults filled in: what the engine really uses), with `source`, the
// file it came from (relative to the cloud's working directory when inside it) or `alerts.rules[i]`.
import { isAbsolute, relative } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { ruleSource } from '../../alerts/rules.ts';

function shownSource(source: string | undefined): string | null {
  if (!source) return null;
  if (!isAbsolute(source)) return source;
  const rel = relative(process.cwd(), source);
  return rel.startsWith('..') ? source : rel;
}

export const ruleRoutes: FastifyPluginAsync = async (app) => {
  const viewer = { preHandler: app.requireRole('viewer') };
  app.get('/v1/rules', viewer, async () => {
    const rules = app.alerts.ruleList.map((r) => ({ ...r, source: shownSource(ruleSource(r)) }));
    return { rules, count: rules.length };
  });
};
