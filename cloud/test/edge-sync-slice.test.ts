// GET /v1/edges/{edgeId}/registry: each edge's slice in the edge's own registry shape (the edge's schema
// and buildRegistry accept it), authenticated with the edge credential, only its own, ETag/304 until
// something in that slice changes.
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux } from '../../e2e/setup/influx.ts';
import { registryFileSchema } from '../../edge/src/config/schema.ts';
import { buildRegistry } from '../../edge/src/registry/registry.ts';
import { loadProfiles } from '../../edge/src/profiles/load.ts';
import { EDGE_A, EDGE_B } from './helpers.ts';
import { parseVerifier, verifySecret } from '@citysense/proto';
import { bearer, login, registryApp } from './registry-fixtures.ts';

let app: FastifyInstance;
let admin: string;
const secrets: Record<string, string> = {};

beforeAll(async () => {
  const influx = await testInflux('edge-sync-slice');
  app = registryApp(influx, { registry: { districtEdges: { jinshui: EDGE_A.id, erqi: EDGE_B.id }, defaultEdge: EDGE_B.id } });
  await app.ready();
  admin = await login(app, 'admin');
  const devices = [
    { id: 'env-s-1', family: 'environment', district: 'jinshui', site: 'st-1', tags: { bureau: 'eco' } },
    { id: 'hj-s-1', family: 'environment', district: 'jinshui', profile: 'hj212-air-station', hj212: { mn: '010000A8900016F000169DC0', password: '123456' } },
    { id: 'lift-s-1', family: 'elevator', district: 'erqi', profile: 'elevator-opcua', opcua: { server: 'erqi-tower', vars: { car: '1' } } },
    { id: 'fire-s-1', family: 'fire', district: 'zhongyuan' }, // unmapped district → defaultEdge (B)
    { id: 'nb-s-1', family: 'nbiot', district: 'erqi', profile: 'nb-smoke-detector', edge: EDGE_A.id }, // explicit edge wins
  ];
  for (const d of devices) {
    const r = await app.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: d });
    expect(r.statusCode, r.body).toBe(201);
    if (r.json().credentials.secret) secrets[d.id] = r.json().credentials.secret;
  }
});
afterAll(async () => {
  await app?.close();
});

const slice = (edge: string, token: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'GET', url: `/v1/edges/${edge}/registry`, headers: { ...bearer(token), ...headers } });
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('the slice', () => {
  it("holds the edge's devices in its registry shape, with hashes and never secrets, and the edge accepts it", async () => {
    const res = await slice(EDGE_A.id, EDGE_A.token);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers.etag).toMatch(/^"r\d+-[0-9a-f]{12}"$/);
    const body = res.json() as { edge: string; version: number; devices: Record<string, unknown>[] };
    expect(body.edge).toBe(EDGE_A.id);
    const verifier = expect.stringMatching(/^\$scrypt\$ln=10,r=8,p=1\$/);
    expect(body.devices).toEqual([
      { id: 'env-s-1', family: 'environment', district: 'jinshui', profile: 'generic-json', secretHash: verifier, tags: { bureau: 'eco', site: 'st-1' } },
      { id: 'hj-s-1', family: 'environment', district: 'jinshui', profile: 'hj212-air-station', hj212: { mn: '010000A8900016F000169DC0', passwordHash: verifier } },
      { id: 'nb-s-1', family: 'nbiot', district: 'erqi', profile: 'nb-smoke-detector', secretHash: verifier },
    ]);
    // No unsalted hash: a dictionary of SHA-256s (with the right secret and PW in it) finds nothing.
    const dictionary = ['123456', 'password', secrets['env-s-1']!, secrets['nb-s-1']!].map(sha);
    for (const h of dictionary) expect(res.body).not.toContain(h);
    const env1 = parseVerifier(body.devices[0]!.secretHash as string)!;
    expect(await verifySecret(env1, Buffer.from(secrets['env-s-1']!))).toBe(true);
    expect(res.body).not.toContain(secrets['env-s-1']);
    expect(res.body).not.toContain('123456"');
    // The edge's own schema and registry builder take it as it is.
    const parsed = registryFileSchema.parse({ devices: body.devices });
    const reg = buildRegistry(parsed.devices, 'slice', loadProfiles([]));
    expect(reg.size).toBe(3);
    expect(reg.byMn('010000A8900016F000169DC0')?.id).toBe('hj-s-1');

    const b = (await slice(EDGE_B.id, EDGE_B.token)).json() as { devices: { id: string; opcua?: unknown }[] };
    expect(b.devices.map((d) => d.id)).toEqual(['fire-s-1', 'lift-s-1']);
    expect(b.devices[1]!.opcua).toEqual({ server: 'erqi-tower', vars: { car: '1' } });
    expect(buildRegistry(registryFileSchema.parse({ devices: b.devices }).devices, 'slice', loadProfiles([])).size).toBe(2);
  });

  it('answers 304 to If-None-Match until a device of that slice changes', async () => {
    const a1 = await slice(EDGE_A.id, EDGE_A.token);
    const b1 = await slice(EDGE_B.id, EDGE_B.token);
    const tagA = a1.headers.etag as string;
    const tagB = b1.headers.etag as string;
    const again = await slice(EDGE_A.id, EDGE_A.token, { 'if-none-match': tagA });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    expect((await slice(EDGE_A.id, EDGE_A.token, { 'if-none-match': `W/${tagA}, "other"` })).statusCode).toBe(304);

    // A change in B's slice leaves A's ETag alone.
    await app.inject({ method: 'PATCH', url: '/v1/devices/fire-s-1', headers: bearer(admin), payload: { site: 'hall' } });
    expect((await slice(EDGE_A.id, EDGE_A.token, { 'if-none-match': tagA })).statusCode).toBe(304);
    const b2 = await slice(EDGE_B.id, EDGE_B.token, { 'if-none-match': tagB });
    expect(b2.statusCode).toBe(200);
    expect(b2.json().devices.find((d: { id: string }) => d.id === 'fire-s-1').tags).toEqual({ site: 'hall' });

    // Moving a device from A to B changes both.
    await app.inject({ method: 'PATCH', url: '/v1/devices/nb-s-1', headers: bearer(admin), payload: { edge: null } });
    const a3 = await slice(EDGE_A.id, EDGE_A.token, { 'if-none-match': tagA });
    expect(a3.statusCode).toBe(200);
    expect(a3.json().devices.map((d: { id: string }) => d.id)).toEqual(['env-s-1', 'hj-s-1']);
    const b3 = await slice(EDGE_B.id, EDGE_B.token, { 'if-none-match': b2.headers.etag as string });
    expect(b3.json().devices.map((d: { id: string }) => d.id)).toEqual(['fire-s-1', 'lift-s-1', 'nb-s-1']);

    // A rotated secret and a deleted device are changes too.
    const tag3 = a3.headers.etag as string;
    await app.inject({ method: 'POST', url: '/v1/devices/env-s-1/rotate-secret', headers: bearer(admin), payload: {} });
    const a4 = await slice(EDGE_A.id, EDGE_A.token, { 'if-none-match': tag3 });
    expect(a4.statusCode).toBe(200);
    await app.inject({ method: 'DELETE', url: '/v1/devices/hj-s-1', headers: bearer(admin) });
    const a5 = await slice(EDGE_A.id, EDGE_A.token, { 'if-none-match': a4.headers.etag as string });
    expect(a5.json().devices.map((d: { id: string }) => d.id)).toEqual(['env-s-1']);
  });

  it('a changed edge assignment in the config changes the ETag', async () => {
    const tag = (await slice(EDGE_A.id, EDGE_A.token)).headers.etag as string;
    const other = registryApp({ url: 'http://127.0.0.1:9', db: 'x' }, { store: { path: ':memory:' }, registry: { districtEdges: { jinshui: EDGE_B.id } } });
    await other.ready();
    try {
      expect(other.registry.assignmentHash).not.toBe(app.registry.assignmentHash);
      expect(other.registry.sliceEtag(EDGE_A.id)).not.toBe(tag);
    } finally {
      await other.close();
    }
  });
});

describe('who may fetch it', () => {
  it('no credential, a wrong one or an operator token: 401; another edge: 403', async () => {
    const none = await app.inject({ method: 'GET', url: `/v1/edges/${EDGE_A.id}/registry` });
    expect(none.statusCode).toBe(401);
    expect(none.json().error).toBe('EDGE_AUTH_MISSING');
    const wrong = await slice(EDGE_A.id, 'not-the-token');
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error).toBe('EDGE_AUTH_INVALID');
    expect((await slice(EDGE_A.id, admin)).statusCode).toBe(401);
    const other = await slice(EDGE_A.id, EDGE_B.token);
    expect(other.statusCode).toBe(403);
    expect(other.json().error).toBe('EDGE_SLICE_FORBIDDEN');
    expect(other.body).not.toContain('env-s-1');
  });
});
