// The device registry API: registration with validation and clear errors, credentials shown once and
// stored as hashes, rotation, roles (viewer 403, no/wrong token 401), updates, deletion, and the audit
// entries every change leaves.
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux } from '../../e2e/setup/influx.ts';
import { bearer, login, registryApp } from './registry-fixtures.ts';
import { EDGE_A } from './helpers.ts';
import { parseVerifier, verifySecret } from '@citysense/proto';
import { openVerifier } from '../src/registry/secrets.ts';

let app: FastifyInstance;
let admin: string;
let viewer: string;
let duty: string;

beforeAll(async () => {
  const influx = await testInflux('registry-api');
  app = registryApp(influx, { registry: { districtEdges: { jinshui: EDGE_A.id } } });
  await app.ready();
  [admin, viewer, duty] = await Promise.all([login(app, 'admin'), login(app, 'viewer'), login(app, 'duty')]);
});
afterAll(async () => {
  await app?.close();
});

const post = (token: string, payload: unknown) => app.inject({ method: 'POST', url: '/v1/devices', headers: bearer(token), payload: payload as object });
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('POST /v1/devices', () => {
  it('registers a device and shows its generated secret once; the store keeps only the SHA-256', async () => {
    const res = await post(admin, {
      id: 'env-new-1',
      family: 'environment',
      district: 'jinshui',
      profile: 'environment-station-json',
      site: 'station-7',
      location: { lat: 34.75, lon: 113.62, address: 'Jinshui Rd 1' },
      owner_unit: 'Zhengzhou Environment Bureau',
      expected_interval: '5m',
      tags: { operator_ref: 'AQ-77' },
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json() as { device: Record<string, unknown>; credentials: { secret: string } };
    expect(body.credentials.secret).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(body.device).toMatchObject({
      id: 'env-new-1',
      family: 'environment',
      profile: 'environment-station-json',
      district: 'jinshui',
      site: 'station-7',
      location: { lat: 34.75, lon: 113.62, address: 'Jinshui Rd 1' },
      owner_unit: 'Zhengzhou Environment Bureau',
      expected_interval_ms: 300_000,
      edge: null,
      assigned_edge: EDGE_A.id,
      credential: 'mqtt',
      created_by: 'admin',
    });

    const got = await app.inject({ method: 'GET', url: '/v1/devices/env-new-1', headers: bearer(viewer) });
    expect(got.statusCode).toBe(200);
    expect(got.body).not.toContain(body.credentials.secret);
    expect(got.body).not.toContain(sha(body.credentials.secret));
    // Kept only as a sealed verifier: no unsalted hash in the row.
    const row = app.store.db.prepare('SELECT secret_sha256, secret_sealed FROM devices WHERE id = ?').get('env-new-1') as { secret_sha256: string | null; secret_sealed: string };
    expect(row.secret_sha256).toBeNull();
    expect(row.secret_sealed).toMatch(/^seal1:/);
    const everything = JSON.stringify(app.store.db.prepare('SELECT * FROM devices').all()) + JSON.stringify(app.store.db.prepare('SELECT * FROM audit_log').all());
    expect(everything).not.toContain(body.credentials.secret);
  });

  it('takes a secret the operator chose without echoing it', async () => {
    const res = await post(admin, { id: 'env-own-secret', family: 'environment', district: 'erqi', secret: 'flashed-into-device-1' });
    expect(res.statusCode).toBe(201);
    expect(res.json().credentials).toEqual({});
    expect(res.body).not.toContain('flashed-into-device-1');
  });

  it('generates an HJ 212 password for a TCP station, and OPC-UA devices get no credential', async () => {
    const hj = await post(admin, { id: 'hj-1', family: 'environment', district: 'jinshui', profile: 'hj212-air-station', hj212: { mn: '010000A8900016F000169DC9' } });
    expect(hj.statusCode, hj.body).toBe(201);
    expect(hj.json().credentials.hj212_password).toMatch(/^[A-Za-z0-9]{16}$/);
    expect(hj.json().device).toMatchObject({ credential: 'hj212', hj212: { mn: '010000A8900016F000169DC9' }, has_hj212_password: true });

    const lift = await post(admin, { id: 'lift-1', family: 'elevator', district: 'erqi', profile: 'elevator-opcua', opcua: { server: 'erqi-tower', vars: { car: '1' } } });
    expect(lift.statusCode, lift.body).toBe(201);
    expect(lift.json().credentials).toEqual({});
    expect(lift.json().device.credential).toBe('none');
  });

  it('refuses invalid devices with DEVICE_INVALID naming every bad field', async () => {
    const res = await post(admin, { id: 'bad/id', family: 'weather', district: '', expected_interval: 'soon', tags: { district: 'x' } });
    expect(res.statusCode).toBe(400);
    const e = res.json() as { error: string; message: string };
    expect(e.error).toBe('DEVICE_INVALID');
    expect(e.message).toContain('id: a device id is');
    expect(e.message).toContain('family: must be one of environment');
    expect(e.message).toContain('district:');

    const cases: [unknown, string][] = [
      [{ id: 'x1', family: 'environment', district: 'j', profile: 'no-such-profile' }, 'profile: no profile "no-such-profile"'],
      [{ id: 'x2', family: 'fire', district: 'j', profile: 'nb-smoke-detector' }, 'family: profile "nb-smoke-detector" is for nbiot devices'],
      [{ id: 'x3', family: 'elevator', district: 'j', profile: 'elevator-opcua', opcua: { server: 's1', vars: {} } }, 'opcua.vars.car'],
      [{ id: 'x4', family: 'environment', district: 'j', profile: 'hj212-air-station' }, 'hj212: profile "hj212-air-station" arrives over the HJ 212 listener'],
      [{ id: 'x5', family: 'environment', district: 'j', edge: 'edge-nowhere' }, 'edge: no edge "edge-nowhere"'],
      [{ id: 'x6', family: 'environment', district: 'j', expected_interval: '1s5' }, 'expected_interval'],
      [{ id: 'x7', family: 'environment', district: 'j', tags: { 'bad key': 'v' } }, 'tags.bad key'],
      [{ id: 'x8', family: 'environment', district: 'j', site: 'back\\slash' }, 'site: must not contain control characters or a backslash'],
      [{ id: 'x9', family: 'environment', district: 'j', secret: 'short' }, 'secret: secrets are at least 8 characters'],
      [{ id: 'x10', family: 'environment', district: 'j', colour: 'red' }, 'unknown field(s) colour'],
      [{ id: 'x11', family: 'environment', district: 'j', location: { lat: 91, lon: 0 } }, 'location.lat'],
    ];
    for (const [body, text] of cases) {
      const r = await post(admin, body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error).toBe('DEVICE_INVALID');
      expect(r.json().message).toContain(text);
    }
    const notObject = await app.inject({ method: 'POST', url: '/v1/devices', headers: { ...bearer(admin), 'content-type': 'application/json' }, payload: '[1,2]' });
    expect(notObject.json().error).toBe('DEVICE_INVALID');
  });

  it('refuses a second device with the same id or MN (409 DEVICE_EXISTS)', async () => {
    expect((await post(admin, { id: 'dup-1', family: 'fire', district: 'zhongyuan' })).statusCode).toBe(201);
    const again = await post(admin, { id: 'dup-1', family: 'fire', district: 'zhongyuan' });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ error: 'DEVICE_EXISTS' });
    const mn = await post(admin, { id: 'hj-2', family: 'environment', district: 'jinshui', profile: 'hj212-air-station', hj212: { mn: '010000A8900016F000169DC9' } });
    expect(mn.statusCode).toBe(409);
    expect(mn.json().message).toContain("hj-1's");
  });
});

describe('roles and credentials', () => {
  it('a viewer may read but not change the registry (403 FORBIDDEN)', async () => {
    expect((await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(viewer) })).statusCode).toBe(200);
    for (const [method, url, payload] of [
      ['POST', '/v1/devices', { id: 'v-1', family: 'fire', district: 'x' }],
      ['PATCH', '/v1/devices/dup-1', { site: 'x' }],
      ['DELETE', '/v1/devices/dup-1', undefined],
      ['POST', '/v1/devices/dup-1/rotate-secret', {}],
    ] as const) {
      const r = await app.inject({ method, url, headers: bearer(viewer), ...(payload ? { payload } : {}) });
      expect(r.statusCode, `${method} ${url}`).toBe(403);
      expect(r.json().error).toBe('FORBIDDEN');
      // An operator (ack/resolve alerts) may not change the registry either.
      const o = await app.inject({ method, url, headers: bearer(duty), ...(payload ? { payload } : {}) });
      expect(o.statusCode, `${method} ${url}`).toBe(403);
    }
    const imp = await app.inject({ method: 'POST', url: '/v1/devices/import', headers: { ...bearer(viewer), 'content-type': 'text/csv' }, payload: 'id,family,district\nv-2,fire,x\n' });
    expect(imp.statusCode).toBe(403);
    expect(app.registry.get('v-1')).toBeUndefined();
    expect(app.registry.get('v-2')).toBeUndefined();
  });

  it('no token, a forged token or a wrong password: 401', async () => {
    const none = await app.inject({ method: 'GET', url: '/v1/devices' });
    expect(none.statusCode).toBe(401);
    expect(none.json().error).toBe('AUTH_MISSING');
    const forged = admin.slice(0, -4) + (admin.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const bad = await app.inject({ method: 'POST', url: '/v1/devices', headers: bearer(forged), payload: { id: 'f-1', family: 'fire', district: 'x' } });
    expect(bad.statusCode).toBe(401);
    expect(bad.json().error).toBe('AUTH_INVALID');
    // An edge's token is no operator token.
    const edge = await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(EDGE_A.token) });
    expect(edge.statusCode).toBe(401);
    const wrong = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'admin', password: 'admin-demo-wrong' } });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error).toBe('LOGIN_FAILED');
  });

  it('rotating a secret returns a new one once and replaces the hash', async () => {
    const created = await post(admin, { id: 'rot-1', family: 'nbiot', district: 'guancheng', profile: 'nb-smoke-detector' });
    const first = created.json().credentials.secret as string;
    const res = await app.inject({ method: 'POST', url: '/v1/devices/rot-1/rotate-secret', headers: bearer(admin), payload: {} });
    expect(res.statusCode).toBe(200);
    const second = res.json().credentials.secret as string;
    expect(second).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(second).not.toBe(first);
    const row = app.store.db.prepare('SELECT secret_sealed FROM devices WHERE id = ?').get('rot-1') as { secret_sealed: string };
    const v = parseVerifier(openVerifier(app.registryKey, row.secret_sealed))!;
    expect(await verifySecret(v, Buffer.from(second))).toBe(true);
    expect(await verifySecret(v, Buffer.from(first))).toBe(false);
    expect(res.json().device.secret_rotated_at).toBeTypeOf('number');

    const hj = await app.inject({ method: 'POST', url: '/v1/devices/hj-1/rotate-secret', headers: bearer(admin), payload: {} });
    expect(hj.json().credentials.hj212_password).toMatch(/^[A-Za-z0-9]{16}$/);
    const lift = await app.inject({ method: 'POST', url: '/v1/devices/lift-1/rotate-secret', headers: bearer(admin), payload: {} });
    expect(lift.statusCode).toBe(409);
    expect(lift.json().error).toBe('DEVICE_NO_CREDENTIAL');
    const missing = await app.inject({ method: 'POST', url: '/v1/devices/nope/rotate-secret', headers: bearer(admin), payload: {} });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toBe('DEVICE_NOT_FOUND');
  });
});

describe('PATCH, DELETE, GET', () => {
  it('changes fields, refuses id/family changes and unknown fields, and lists with filters and paging', async () => {
    const res = await app.inject({ method: 'PATCH', url: '/v1/devices/dup-1', headers: bearer(admin), payload: { site: 'tower-b', owner_unit: 'Fire Brigade 3', expected_interval: null, edge: EDGE_A.id } });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ site: 'tower-b', owner_unit: 'Fire Brigade 3', edge: EDGE_A.id, updated_by: 'admin' });
    const fam = await app.inject({ method: 'PATCH', url: '/v1/devices/dup-1', headers: bearer(admin), payload: { family: 'nbiot' } });
    expect(fam.statusCode).toBe(400);
    expect(fam.json().message).toContain('family: cannot change');
    const unknown = await app.inject({ method: 'PATCH', url: '/v1/devices/dup-1', headers: bearer(admin), payload: { colour: 'red' } });
    expect(unknown.json().message).toContain('colour: unknown field');
    const bad = await app.inject({ method: 'PATCH', url: '/v1/devices/dup-1', headers: bearer(admin), payload: { site: '' } });
    expect(bad.json().error).toBe('DEVICE_INVALID');

    const page1 = await app.inject({ method: 'GET', url: '/v1/devices?limit=2', headers: bearer(viewer) });
    const p1 = page1.json() as { devices: { id: string }[]; next: string };
    expect(p1.devices).toHaveLength(2);
    const page2 = await app.inject({ method: 'GET', url: `/v1/devices?limit=2&after=${p1.next}`, headers: bearer(viewer) });
    expect((page2.json() as { devices: { id: string }[] }).devices[0]!.id > p1.next).toBe(true);
    const jinshui = await app.inject({ method: 'GET', url: '/v1/devices?district=jinshui&family=environment', headers: bearer(viewer) });
    expect((jinshui.json() as { devices: { id: string }[] }).devices.map((d) => d.id).sort()).toEqual(['env-new-1', 'hj-1']);
  });

  it('deletes a device; it is then 404', async () => {
    const del = await app.inject({ method: 'DELETE', url: '/v1/devices/env-own-secret', headers: bearer(admin) });
    expect(del.statusCode).toBe(204);
    const get = await app.inject({ method: 'GET', url: '/v1/devices/env-own-secret', headers: bearer(viewer) });
    expect(get.statusCode).toBe(404);
    expect(get.json().error).toBe('DEVICE_NOT_FOUND');
    expect((await app.inject({ method: 'DELETE', url: '/v1/devices/env-own-secret', headers: bearer(admin) })).statusCode).toBe(404);
  });
});

describe('audit', () => {
  it('records every registry change with who, when and what, and lists it (GET /v1/audit)', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/audit?limit=1000', headers: bearer(viewer) });
    expect(res.statusCode).toBe(200);
    const entries = (res.json() as { entries: { actor: string; action: string; target: string; ts: number; details: Record<string, unknown> }[] }).entries;
    const actions = entries.map((e) => `${e.action} ${e.target}`);
    expect(actions).toEqual(
      expect.arrayContaining([
        'device.create device:env-new-1',
        'device.create device:hj-1',
        'device.create device:lift-1',
        'device.rotate_secret device:rot-1',
        'device.rotate_secret device:hj-1',
        'device.update device:dup-1',
        'device.delete device:env-own-secret',
      ]),
    );
    expect(entries.every((e) => e.actor === 'admin' && e.ts > 0)).toBe(true);
    const upd = entries.find((e) => e.action === 'device.update')!;
    expect(upd.details.changes).toMatchObject({ site: { from: null, to: 'tower-b' }, edge: { from: null, to: EDGE_A.id } });
    // Refused changes leave nothing.
    expect(actions.some((a) => a.includes('v-1') || a.includes('f-1') || a.includes('x1'))).toBe(false);

    const one = await app.inject({ method: 'GET', url: '/v1/audit?device=rot-1', headers: bearer(viewer) });
    expect((one.json() as { entries: { action: string }[] }).entries.map((e) => e.action)).toEqual(['device.rotate_secret', 'device.create']);
    const prefix = await app.inject({ method: 'GET', url: '/v1/audit?action=device.rotate*', headers: bearer(viewer) });
    expect((prefix.json() as { entries: unknown[] }).entries).toHaveLength(2);
    const paged = await app.inject({ method: 'GET', url: '/v1/audit?limit=3', headers: bearer(viewer) });
    const next = (paged.json() as { next: string }).next;
    const rest = await app.inject({ method: 'GET', url: `/v1/audit?limit=1000&before=${next}`, headers: bearer(viewer) });
    expect((rest.json() as { entries: unknown[] }).entries.length).toBe(entries.length - 3);
    expect((await app.inject({ method: 'GET', url: '/v1/audit' })).statusCode).toBe(401);
  });

  it('app.audit.record is there for the alert lifecycle (ack/resolve) and shows in the list', async () => {
    app.store.transaction(() => app.audit.record({ actor: 'duty', action: 'alert.ack', target: 'alert:al_0001', details: { note: 'on it' } }));
    const res = await app.inject({ method: 'GET', url: '/v1/audit?actor=duty', headers: bearer(viewer) });
    expect((res.json() as { entries: unknown[] }).entries).toEqual([expect.objectContaining({ actor: 'duty', action: 'alert.ack', target: 'alert:al_0001', details: { note: 'on it' } })]);
  });
});
