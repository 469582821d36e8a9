// The device registry and the query API (contracts.md, docs/registry.md, docs/query-api.md):
//   GET    /v1/devices                      list (?district=&family=&edge=&profile=&after=&limit=)   viewer+
//   POST   /v1/devices                      register one device; its credential is in the answer, once   admin
//   POST   /v1/devices/import               text/csv, thousands at once (?mode=atomic|partial)       admin
//   GET    /v1/devices/export               the registry as CSV (same filters), no credentials       viewer+
//   GET    /v1/devices/{id}                 one device                                                viewer+
// Personal fields (registry/personal.ts) are masked for viewers and operators; admins see them whole and
// each such read is audited (device.personal_read: device ids and fields, never the values).
//   PATCH  /v1/devices/{id}                  change fields (not id, family or credentials)             admin
//   DELETE /v1/devices/{id}                                                                            admin
//   POST   /v1/devices/{id}/rotate-secret   a new secret / HJ 212 password, in the answer, once        admin
//   GET    /v1/devices/{id}/latest          the newest value of each metric                           viewer+
//   GET    /v1/devices/{id}/history         ?metric=&from=&to=&every=&fn=&source=                      viewer+
// Every change is audited with the operator from the token (app.audit).
import { FAMILIES } from '@citysense/proto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { CloudConfig } from '../../config/schema.ts';
import { CloudError } from '../../errors.ts';
import { parseEvery, parseFn, parseMetrics, parseTime } from '../../query/influxql.ts';
import { SOURCES, type Source } from '../../query/service.ts';
import { csvToImportRows } from '../../registry/csv.ts';
import { csvHeader, deviceCsvLine } from '../../registry/csv-export.ts';
import { DEVICE_ID_PATTERN, type DeviceRecord } from '../../registry/model.ts';
import { maskDevice, personalFieldsOf } from '../../registry/personal.ts';

export interface DeviceRoutesOptions extends Record<string, unknown> {
  config: CloudConfig;
  now: () => number;
}

const HISTORY_PARAMS = new Set(['metric', 'from', 'to', 'every', 'fn', 'source', 'family']);

function actor(req: FastifyRequest): string {
  return req.operator?.sub ?? 'unknown';
}

function idParam(req: FastifyRequest): string {
  const id = (req.params as { id: string }).id;
  if (!DEVICE_ID_PATTERN.test(id)) throw new CloudError('DEVICE_NOT_FOUND', 'not a device id (1-128 letters, digits, . _ : -)');
  return id;
}

function str(q: Record<string, unknown>, name: string): string | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw new CloudError('BAD_REQUEST', `${name} must be given once`);
  return v;
}

export const deviceRoutes: FastifyPluginAsync<DeviceRoutesOptions> = async (app, opts) => {
  const { config, now } = opts;
  const rc = config.registry;
  const viewer = { preHandler: app.requireRole('viewer') };
  const admin = { preHandler: app.requireRole('admin') };

  app.addContentTypeParser(['text/csv', 'application/csv'], { parseAs: 'string', bodyLimit: rc.maxImportBytes }, (_req, body, done) => done(null, body));

  /**
   * What this operator may see of these devices: admins the whole values, with one audit entry naming
   * the devices and fields read (never the values); everyone else the masked ones.
   */
  function forReader<T extends DeviceRecord>(req: FastifyRequest, devices: T[], how: string): T[] {
    if (req.operator?.role !== 'admin') return devices.map((d) => maskDevice(d));
    const read = devices.flatMap((d) => {
      const fields = personalFieldsOf(d);
      return fields.length ? [{ id: d.id, fields }] : [];
    });
    if (read.length) {
      app.audit.record({ actor: actor(req), action: 'device.personal_read', target: read.length === 1 ? `device:${read[0]!.id}` : 'registry', details: { via: how, devices: read.slice(0, 1000), count: read.length } });
    }
    return devices;
  }

  app.get('/v1/devices', viewer, async (req) => {
    const q = req.query as Record<string, unknown>;
    const limitText = str(q, 'limit');
    const limit = limitText === undefined ? 100 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > rc.maxPageSize) throw new CloudError('BAD_REQUEST', `limit must be 1..${rc.maxPageSize}`);
    const devices = app.registry.list({
      district: str(q, 'district'),
      family: str(q, 'family'),
      edge: str(q, 'edge'),
      profile: str(q, 'profile'),
      after: str(q, 'after'),
      limit,
    });
    const last = devices[devices.length - 1];
    return { devices: forReader(req, devices, 'GET /v1/devices'), next: devices.length === limit && last ? last.id : null, registry_version: app.registry.version };
  });

  // The registry as CSV, page by page from the store (bounded memory per page); the import's columns
  // without credentials, every cell neutralised against formula injection (csv/cell.ts).
  app.get('/v1/devices/export', viewer, async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const filter = { district: str(q, 'district'), family: str(q, 'family'), edge: str(q, 'edge'), profile: str(q, 'profile') };
    const lines = [csvHeader()];
    let after: string | undefined;
    for (;;) {
      const page = app.registry.list({ ...filter, after, limit: rc.maxPageSize });
      for (const d of forReader(req, page, 'GET /v1/devices/export')) lines.push(deviceCsvLine(d));
      if (page.length < rc.maxPageSize) break;
      after = page[page.length - 1]!.id;
    }
    reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="citysense-devices.csv"').header('cache-control', 'no-store');
    return lines.join('\r\n') + '\r\n';
  });

  app.post('/v1/devices', admin, async (req, reply) => {
    if (!req.body || typeof req.body !== 'object' || Array.isArray(req.body)) {
      throw new CloudError('DEVICE_INVALID', 'send one device as a JSON object (for many, POST text/csv to /v1/devices/import)');
    }
    const out = await app.registry.create(req.body, actor(req));
    reply.code(201).header('cache-control', 'no-store');
    return out;
  });

  app.post('/v1/devices/import', { ...admin, bodyLimit: rc.maxImportBytes }, async (req, reply) => {
    const ct = String(req.headers['content-type'] ?? '');
    if (!/^(text\/csv|application\/csv)\b/i.test(ct) || typeof req.body !== 'string') {
      throw new CloudError('CSV_INVALID', 'send the file as Content-Type: text/csv');
    }
    const q = req.query as Record<string, unknown>;
    const mode = str(q, 'mode') ?? 'atomic';
    if (mode !== 'atomic' && mode !== 'partial') throw new CloudError('BAD_REQUEST', 'mode is atomic (default: all rows or none) or partial (the good rows)');
    const rows = csvToImportRows(req.body, rc.maxImportRows);
    const result = await app.registry.import(rows, mode, actor(req));
    reply.header('cache-control', 'no-store');
    if (mode === 'atomic' && result.refused > 0) {
      const e = new CloudError('IMPORT_REFUSED', `${result.refused} of ${result.rows} rows refused`);
      reply.code(e.status);
      return { error: e.code, message: e.message, ...result };
    }
    reply.code(result.imported > 0 ? 201 : 200);
    return result;
  });

  app.get('/v1/devices/:id', viewer, async (req) => {
    const d = app.registry.get(idParam(req));
    if (!d) throw new CloudError('DEVICE_NOT_FOUND', (req.params as { id: string }).id);
    return forReader(req, [d], 'GET /v1/devices/{id}')[0];
  });

  app.patch('/v1/devices/:id', admin, async (req) => {
    if (!req.body || typeof req.body !== 'object' || Array.isArray(req.body)) throw new CloudError('DEVICE_INVALID', 'send the fields to change as a JSON object');
    return app.registry.update(idParam(req), req.body as Record<string, unknown>, actor(req));
  });

  app.delete('/v1/devices/:id', admin, async (req, reply) => {
    app.registry.remove(idParam(req), actor(req));
    reply.code(204).send();
  });

  app.post('/v1/devices/:id/rotate-secret', admin, async (req, reply) => {
    const body = (req.body ?? {}) as { credential?: unknown };
    if (typeof body !== 'object' || Array.isArray(body)) throw new CloudError('BAD_REQUEST', 'send {} or {"credential": "mqtt" | "hj212"}');
    const which = body.credential;
    if (which !== undefined && which !== 'mqtt' && which !== 'hj212') throw new CloudError('BAD_REQUEST', 'credential is mqtt or hj212');
    reply.header('cache-control', 'no-store');
    return app.registry.rotate(idParam(req), which, actor(req));
  });

  /** A registered device, or (for data from devices the cloud registry does not list) ?family=. */
  const deviceFor = (req: FastifyRequest) => {
    const id = idParam(req);
    const d = app.registry.get(id);
    if (d) return { id, family: d.family as string };
    const family = (req.query as Record<string, unknown>).family;
    if (typeof family === 'string' && (FAMILIES as readonly string[]).includes(family)) return { id, family };
    throw new CloudError('DEVICE_NOT_FOUND', `${id} (for a device that is not registered, give ?family=${FAMILIES.join('|')})`);
  };

  app.get('/v1/devices/:id/latest', viewer, async (req) => app.readings.latest(deviceFor(req)));

  app.get('/v1/devices/:id/history', viewer, async (req) => {
    const q = req.query as Record<string, unknown>;
    const unknown = Object.keys(q).filter((k) => !HISTORY_PARAMS.has(k));
    if (unknown.length) throw new CloudError('QUERY_INVALID', `unknown parameter(s) ${unknown.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}; known: ${[...HISTORY_PARAMS].join(', ')}`);
    const device = deviceFor(req);
    const metrics = parseMetrics(q.metric, config.query.maxMetrics);
    const every = parseEvery(q.every);
    const fn = parseFn(q.fn);
    const to = parseTime('to', q.to) ?? now();
    const from = parseTime('from', q.from) ?? to - 24 * 3_600_000;
    const srcText = q.source;
    if (srcText !== undefined && (typeof srcText !== 'string' || !(SOURCES as readonly string[]).includes(srcText))) {
      throw new CloudError('QUERY_INVALID', `source must be one of ${SOURCES.join(', ')}`);
    }
    return app.readings.history(device, { metrics, from, to, every, fn, source: srcText as Source | undefined });
  });
};
