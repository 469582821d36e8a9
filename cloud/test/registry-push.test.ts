// Devices that report through CTWing / OneNET pushes (issue 18): their platform identities in the API,
// the CSV import and the edge's registry slice; identities are unique; a push profile has no MQTT secret.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux } from '../../e2e/setup/influx.ts';
import { buildRegistry } from '../../edge/src/registry/registry.ts';
import { loadProfiles } from '../../edge/src/profiles/load.ts';
import { registryFileSchema } from '../../edge/src/config/schema.ts';
import { EDGE_A } from './helpers.ts';
import { bearer, login, registryApp } from './registry-fixtures.ts';

let app: FastifyInstance;
let admin: string;
beforeAll(async () => {
  const influx = await testInflux('registry-push');
  app = registryApp(influx, { registry: { districtEdges: { guancheng: EDGE_A.id, huiji: EDGE_A.id } } });
  await app.ready();
  admin = await login(app, 'admin');
});
afterAll(async () => {
  await app?.close();
});

const csv = [
  'id,family,district,profile,ctwing_device_id,ctwing_imei,ctwing_product_id,onenet_product_id,onenet_device_name',
  'nb-ct-1,nbiot,guancheng,nb-smoke-detector,ct-1,860000000000101,15000001,,',
  'nb-st-1,nbiot,huiji,onenet-gas-detector,,,,prod-A,nb-st-1',
  'nb-ct-dup,nbiot,guancheng,nb-smoke-detector,ct-9,860000000000101,,,',
  'nb-push-none,nbiot,huiji,onenet-gas-detector,,,,,',
  'nb-bad-imei,nbiot,guancheng,nb-smoke-detector,,86000,,,',
].join('\n') + '\n';

describe('registry: platform identities', () => {
  it('imports them from CSV; a repeated IMEI, a push profile without identity and a malformed IMEI are refused with their line', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/devices/import?mode=partial', headers: { ...bearer(admin), 'content-type': 'text/csv' }, payload: csv });
    expect(res.statusCode, res.body).toBe(201);
    const r = (res.json() as { results: { line: number; status: string; error?: string; message?: string; credentials?: unknown }[] }).results;
    expect(r.map((x) => [x.line, x.status, x.error ?? null])).toEqual([
      [2, 'created', null],
      [3, 'created', null],
      [4, 'refused', 'DEVICE_EXISTS'],
      [5, 'refused', 'DEVICE_INVALID'],
      [6, 'refused', 'DEVICE_INVALID'],
    ]);
    expect(r[2]!.message).toMatch(/ctwing imei is also on line 2/);
    // No MQTT secret is made for a device that arrives by push.
    expect(r[0]!.credentials ?? {}).toEqual({});
    const dev = await app.inject({ method: 'GET', url: '/v1/devices/nb-ct-1', headers: bearer(admin) });
    expect(dev.json()).toMatchObject({ ctwing: { device_id: 'ct-1', imei: '860000000000101', product_id: '15000001' }, credential: 'none' });
  });

  it('refuses an identity another device already has (API), and frees it when that device is deleted', async () => {
    const body = { id: 'nb-ct-2', family: 'nbiot', district: 'guancheng', profile: 'nb-smoke-detector', ctwing: { device_id: 'ct-1' } };
    const clash = await app.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: body });
    expect(clash.statusCode).toBe(409);
    expect(clash.json()).toMatchObject({ error: 'DEVICE_EXISTS' });
    expect((await app.inject({ method: 'DELETE', url: '/v1/devices/nb-ct-1', headers: bearer(admin) })).statusCode).toBe(204);
    expect((await app.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: body })).statusCode).toBe(201);
  });

  it("the edge's slice carries them in the edge's form, and the edge's registry accepts it", async () => {
    const res = await app.inject({ method: 'GET', url: `/v1/edges/${EDGE_A.id}/registry`, headers: { authorization: `Bearer ${EDGE_A.token}` } });
    expect(res.statusCode, res.body).toBe(200);
    const slice = res.json() as { devices: Record<string, unknown>[] };
    const st = slice.devices.find((d) => d.id === 'nb-st-1');
    expect(st).toMatchObject({ onenet: { productId: 'prod-A', deviceName: 'nb-st-1' } });
    expect(st!.secretSha256).toBeUndefined();
    const reg = buildRegistry(registryFileSchema.parse({ devices: slice.devices }).devices, 'slice', loadProfiles([]));
    expect(reg.byPushKey('onenet:name:prod-A/nb-st-1')?.id).toBe('nb-st-1');
    expect(reg.byPushKey('ctwing:id:ct-1')?.id).toBe('nb-ct-2');
  });
});
