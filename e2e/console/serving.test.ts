// The console plugin without a browser (app.inject): the HTML shell and its assets with their content
// types, caching and security headers, nothing served from outside the console folder, and the two API
// routes the console added (GET /v1/edges, GET /v1/districts/{d}/devices) with their roles.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../setup/influx.ts';
import { EDGE_A, batch, batchHeaders, envReading, protobuf } from '../../cloud/test/helpers.ts';
import { bearer, login, registryApp } from '../../cloud/test/registry-fixtures.ts';
import { CONSOLE_DIR } from '../../cloud/src/console/assets.ts';

let influx: TestInflux;
let a: FastifyInstance;
let viewer: string;
let admin: string;

beforeAll(async () => {
  influx = await testInflux('console-serving');
  a = registryApp(influx, { console: { edgeStaleAfterMs: 60_000 } });
  await a.ready();
  admin = await login(a, 'admin');
  viewer = await login(a, 'viewer');
  for (const d of [
    { id: 'env-c-1', family: 'environment', district: 'jinshui', edge: EDGE_A.id },
    { id: 'env-c-2', family: 'environment', district: 'jinshui', edge: EDGE_A.id },
  ]) {
    const res = await a.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: d });
    expect(res.statusCode, res.body).toBe(201);
  }
});
afterAll(async () => {
  await a?.close();
});

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('console: static files', () => {
  it('serves the HTML shell at / with a strict CSP and no inline script or style', async () => {
    const res = await a.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['cache-control']).toBe('no-cache');
    const html = res.body;
    for (const tag of html.match(/<script\b[^>]*>/g) ?? []) expect(tag).toMatch(/\bsrc="\/console\//);
    expect(html).not.toMatch(/<script\b[^>]*>[^<\s]/); // no inline code
    expect(html).not.toMatch(/\sstyle=|<style\b|\son[a-z]+=/i);
  });

  it('serves modules, CSS and the vendored uPlot with content types, ETags and 304s', async () => {
    const cases = [
      ['/console/js/main.js', 'text/javascript; charset=utf-8', 'no-cache'],
      ['/console/css/console.css', 'text/css; charset=utf-8', 'no-cache'],
      ['/console/favicon.svg', 'image/svg+xml', 'no-cache'],
      ['/console/vendor/uplot.min.js', 'text/javascript; charset=utf-8', 'public, max-age=86400'],
      ['/console/vendor/uplot.min.css', 'text/css; charset=utf-8', 'public, max-age=86400'],
    ] as const;
    for (const [url, type, cache] of cases) {
      const res = await a.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type'], url).toBe(type);
      expect(res.headers['cache-control'], url).toBe(cache);
      expect(res.headers['content-security-policy'], url).toBeDefined();
      const etag = String(res.headers.etag);
      expect(etag).toMatch(/^".+"$/);
      const again = await a.inject({ method: 'GET', url, headers: { 'if-none-match': etag } });
      expect(again.statusCode, url).toBe(304);
      expect(again.body).toBe('');
    }
    const uplot = await a.inject({ method: 'GET', url: '/console/vendor/uplot.min.js' });
    expect(uplot.body).toContain('uPlot');
  });

  it('serves nothing outside the console folder', async () => {
    for (const url of ['/console/../src/app.ts', '/console/%2e%2e/package.json', '/console/js/nope.js', '/console/', '/console/vendor/uPlot.cjs.js', '/index.html']) {
      const res = await a.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(res.json()).toMatchObject({ error: 'NOT_FOUND' });
    }
  });

  it('front-end code builds no markup from strings and sets no inline style attribute', () => {
    for (const file of walk(join(CONSOLE_DIR, 'js'))) {
      const src = readFileSync(file, 'utf8');
      expect(src, file).not.toMatch(/\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML|document\.write|\beval\(|new Function\(/);
      expect(src, file).not.toMatch(/setAttribute\(\s*['"]style['"]/);
    }
  });
});

describe('console: API additions', () => {
  it('GET /v1/edges: configured edges, last contact, seq, devices, drops; viewer+', async () => {
    expect((await a.inject({ method: 'GET', url: '/v1/edges' })).statusCode).toBe(401);
    let r = (await a.inject({ method: 'GET', url: '/v1/edges', headers: bearer(viewer) })).json() as { edges: Record<string, unknown>[] };
    expect(r.edges.map((e) => e.id)).toEqual(['edge-a', 'edge-b']);
    expect(r.edges[0]).toMatchObject({ link: 'never', last_batch_at: null, devices_assigned: 2, drops_total: 0, queue_depth: null });

    const b = { ...batch(EDGE_A.id, [envReading('env-c-1', Date.now() - 1000, { pm25: 12 })]), drops: [{ deviceId: 'env-c-2', dataClass: 'telemetry' as const, reason: 'queue_full', count: 7, oldestTsMs: Date.now() - 60_000 }] };
    const res = await a.inject({ method: 'POST', url: '/v1/batches', payload: protobuf(b), headers: batchHeaders(EDGE_A.token) });
    expect(res.statusCode, res.body).toBe(200);
    r = (await a.inject({ method: 'GET', url: '/v1/edges', headers: bearer(viewer) })).json() as { edges: Record<string, unknown>[] };
    expect(r.edges[0]).toMatchObject({
      id: 'edge-a',
      configured: true,
      link: 'up',
      last_seq: b.seq,
      max_seq_processed: b.seq,
      last_lane: 'telemetry',
      last_batch_readings: 1,
      batches: 1,
      drops_total: 7,
      drops: [{ class: 'telemetry', reason: 'queue_full', count: 7 }],
    });
    expect(r.edges[1]).toMatchObject({ id: 'edge-b', link: 'never' });
  });

  it('GET /v1/districts/{d}/devices: each device with last heard and status; viewer+', async () => {
    expect((await a.inject({ method: 'GET', url: '/v1/districts/jinshui/devices' })).statusCode).toBe(401);
    const r = (await a.inject({ method: 'GET', url: '/v1/districts/jinshui/devices', headers: bearer(viewer) })).json() as { devices: Record<string, unknown>[] };
    expect(r.devices.map((d) => [d.id, d.status])).toEqual([
      ['env-c-1', 'online'],
      ['env-c-2', 'never_seen'],
    ]);
    expect(r.devices[0]).toMatchObject({ family: 'environment', edge: 'edge-a' });
    expect(typeof r.devices[0]!.last_seen).toBe('number');
    const none = (await a.inject({ method: 'GET', url: '/v1/districts/nowhere/devices', headers: bearer(viewer) })).json() as { devices: unknown[] };
    expect(none.devices).toEqual([]);
  });
});
