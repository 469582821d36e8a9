// The operator web console (issue 7; docs/console.md):
//   GET /                                 the console's HTML shell (its script shows the login form when
//                                         the tab holds no token; the data all comes from the JSON API)
//   GET /console/…                        its modules, stylesheet, icon; /console/vendor/uplot.min.{js,css}
//   GET /v1/edges                         what the cloud knows of each edge (viewer+)
//   GET /v1/districts/{district}/devices  a district's devices with last-heard time and online (viewer+)
// The pages are static: nothing in them is secret, and every piece of data behind them is fetched with
// the operator's bearer token, so an unauthenticated visitor gets the login form and nothing else.
// Every console response carries a strict Content-Security-Policy (self only, no inline script or style).
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { CloudConfig } from '../config/schema.ts';
import { CloudError } from '../errors.ts';
import { loadAssets, type Asset } from './assets.ts';
import { EdgeContacts, edgeViews } from './edges.ts';

export interface ConsoleOptions extends Record<string, unknown> {
  config: CloudConfig;
  now: () => number;
  /** Where the front-end files are (tests); default cloud/console/. */
  dir?: string;
}

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

function notModified(ifNoneMatch: string | undefined, etag: string): boolean {
  return !!ifNoneMatch && ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag || t.trim() === '*');
}

export const consolePlugin: FastifyPluginAsync<ConsoleOptions> = async (app, opts) => {
  const { config, now } = opts;
  const viewer = { preHandler: app.requireRole('viewer') };

  // --- edges: recorded with each first-time batch, in its transaction --------------------------------
  const contacts = new EdgeContacts(app.store);
  const off = app.ingest.onBatchStored((batch, info) => {
    contacts.record(batch.edgeId, batch.seq, batch.lane ?? 'telemetry', info.readings.length, info.events.length, info.nowMs);
  });
  app.addHook('onClose', async () => off());

  app.get('/v1/edges', viewer, async () => ({
    edges: edgeViews(
      app.store,
      contacts,
      config.auth.edges.map((e) => e.id),
      (d) => app.registry.edgeFor(d),
      config.console.edgeStaleAfterMs,
      now(),
    ),
    stale_after_ms: config.console.edgeStaleAfterMs,
    now: now(),
  }));

  // --- a district's devices with their status ---------------------------------------------------------
  const familyInterval = config.alerts.expectedIntervalMs as Record<string, number>;
  app.get('/v1/districts/:district/devices', viewer, async (req) => {
    const district = (req.params as { district: string }).district;
    if (!district || district.length > 64) throw new CloudError('BAD_REQUEST', 'a district name is 1-64 characters');
    const t = now();
    const limit = config.registry.maxPageSize;
    const devices = app.registry.list({ district, limit }).map((d) => {
      const interval = d.expected_interval_ms ?? familyInterval[d.family] ?? 60_000;
      const seen = app.lastSeen.get(d.id) ?? null;
      return {
        id: d.id,
        family: d.family,
        profile: d.profile,
        site: d.site,
        edge: d.assigned_edge,
        expected_interval_ms: interval,
        last_seen: seen,
        status: seen === null ? 'never_seen' : t - seen <= config.registry.offlineAfterIntervals * interval ? 'online' : 'offline',
      };
    });
    return { district, devices, truncated: devices.length === limit, now: t };
  });

  // --- the static console -----------------------------------------------------------------------------
  if (!config.console.enabled) return;
  const assets = loadAssets(opts.dir);

  const send = (reply: FastifyReply, a: Asset, ifNoneMatch: string | undefined) => {
    reply.headers(SECURITY_HEADERS).header('cache-control', a.cache).header('etag', a.etag);
    if (notModified(ifNoneMatch, a.etag)) return reply.code(304).send();
    return reply.type(a.type).send(a.body);
  };

  app.get('/', async (req, reply) => send(reply, assets.get('/')!, req.headers['if-none-match']));
  app.get('/console/*', async (req, reply) => {
    const path = req.url.split('?')[0]!;
    const a = assets.get(path);
    if (!a) throw new CloudError('NOT_FOUND', `GET ${path.slice(0, 200)}`);
    return send(reply, a, req.headers['if-none-match']);
  });
  // Browsers ask for it whatever the page says.
  app.get('/favicon.ico', async (req, reply) => {
    const a = assets.get('/console/favicon.svg');
    if (!a) throw new CloudError('NOT_FOUND', 'GET /favicon.ico');
    return send(reply, a, req.headers['if-none-match']);
  });
};
