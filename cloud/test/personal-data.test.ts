// Issue 11 items 8 and 9: personal registry fields masked for viewers and operators (API, CSV export),
// whole for admins with an audit entry per read, kept out of audit details, erased with the device; and
// every CSV cell citysense writes neutralised against formula injection, the export importing back.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { csvCell, neutraliseCell, restoreCell } from '../src/csv/cell.ts';
import { parseCsv } from '../src/registry/csv.ts';
import { maskValue } from '../src/registry/personal.ts';
import { bearer, login, registryApp } from './registry-fixtures.ts';

let influx: TestInflux;
const apps: FastifyInstance[] = [];
beforeAll(async () => {
  influx = await testInflux('personal');
});
afterAll(async () => {
  for (const a of apps) await a.close();
});

async function app() {
  const a = registryApp(influx);
  apps.push(a);
  await a.ready();
  return a;
}

const PHONE_OWNER = '13812345678';
const UNIT = '郑州市金水区花园路物业管理有限公司';
const ADDRESS = '郑州市金水区花园路 88 号 3 单元';
const IMEI = '860000000000001';
const DEVICES = [
  { id: 'pd-1', family: 'environment', district: 'jinshui', owner_unit: PHONE_OWNER, location: { lat: 34.8, lon: 113.6, address: ADDRESS } },
  { id: 'pd-2', family: 'nbiot', district: 'guancheng', profile: 'nb-smoke-detector', owner_unit: UNIT, ctwing: { device_id: 'ct-pd-2', imei: IMEI } },
  // Formula-looking text in every free-text field (OWASP CSV injection), and a negative coordinate.
  { id: 'pd-3', family: 'environment', district: 'jinshui', site: '+S1', owner_unit: '=HYPERLINK("http://x","y")', location: { lat: -33.5, lon: -70.25, address: "@SUM(1+1)" }, tags: { note: "-2+3" } },
];

async function seeded() {
  const a = await app();
  const admin = await login(a, 'admin');
  for (const d of DEVICES) {
    const r = await a.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: d });
    expect(r.statusCode, r.body).toBe(201);
  }
  return { a, admin, duty: await login(a, 'duty'), viewer: await login(a, 'viewer') };
}

const personalReads = async (a: FastifyInstance, admin: string) =>
  (await a.inject({ method: 'GET', url: '/v1/audit?action=device.personal_read&limit=100', headers: bearer(admin) })).json().entries as { actor: string; target: string; details: Record<string, unknown> }[];

describe('personal data in the registry', () => {
  it('masks owner unit, address and IMEI for viewers and operators, in one device and the list', async () => {
    const { a, admin, duty, viewer } = await seeded();
    for (const token of [viewer, duty]) {
      const one = (await a.inject({ method: 'GET', url: '/v1/devices/pd-1', headers: bearer(token) })).json();
      expect(one.owner_unit).toBe('138****5678');
      expect(one.location).toEqual({ lat: 34.8, lon: 113.6, address: '郑州市金水****' });
      const list = (await a.inject({ method: 'GET', url: '/v1/devices?limit=10', headers: bearer(token) })).json().devices as Record<string, any>[];
      const d2 = list.find((d) => d.id === 'pd-2')!;
      expect(d2.owner_unit).toBe('郑州市金水****');
      expect(d2.ctwing).toEqual({ device_id: 'ct-pd-2', imei: '86000000*******' });
      expect(JSON.stringify(list)).not.toContain(IMEI);
      expect(JSON.stringify(list)).not.toContain(PHONE_OWNER);
    }
    // No unmasked read happened yet.
    expect(await personalReads(a, admin)).toEqual([]);
  });

  it('shows admins the whole values and audits each such read without the values', async () => {
    const { a, admin } = await seeded();
    const one = (await a.inject({ method: 'GET', url: '/v1/devices/pd-1', headers: bearer(admin) })).json();
    expect(one.owner_unit).toBe(PHONE_OWNER);
    expect(one.location.address).toBe(ADDRESS);
    const list = (await a.inject({ method: 'GET', url: '/v1/devices?limit=10', headers: bearer(admin) })).json().devices as Record<string, any>[];
    expect(list.find((d) => d.id === 'pd-2')!.ctwing.imei).toBe(IMEI);
    const reads = await personalReads(a, admin);
    expect(reads).toHaveLength(2);
    expect(reads[1]).toMatchObject({ actor: 'admin', target: 'device:pd-1', details: { via: 'GET /v1/devices/{id}', devices: [{ id: 'pd-1', fields: ['owner_unit', 'location.address'] }] } });
    expect(reads[0]).toMatchObject({ actor: 'admin', target: 'registry', details: { via: 'GET /v1/devices', count: 3 } });
    const all = JSON.stringify((await a.inject({ method: 'GET', url: '/v1/audit?limit=100', headers: bearer(admin) })).json());
    // Neither the reads nor the creations put a personal value into the audit log.
    for (const v of [PHONE_OWNER, UNIT, ADDRESS, IMEI]) expect(all).not.toContain(JSON.stringify(v).slice(1, -1));
    expect(all).toContain('138****5678');
  });

  it('erases personal values with the device, also from audit entries written before masking', async () => {
    const { a, admin } = await seeded();
    // An entry as an older cloud wrote it, with the value whole.
    a.audit.record({ actor: 'admin', action: 'device.update', target: 'device:pd-2', details: { changes: { owner_unit: { from: null, to: UNIT } } } });
    expect((await a.inject({ method: 'DELETE', url: '/v1/devices/pd-2', headers: bearer(admin) })).statusCode).toBe(204);
    const about = JSON.stringify((await a.inject({ method: 'GET', url: '/v1/audit?target=device:pd-2&limit=100', headers: bearer(admin) })).json());
    expect(about).not.toContain(UNIT);
    expect(about).not.toContain(IMEI);
    expect(about).toContain('郑州市金水****');
    expect((await a.inject({ method: 'GET', url: '/v1/devices/pd-2', headers: bearer(admin) })).statusCode).toBe(404);
  });

  it('masks by class: phone numbers keep 3 + 4 digits, names a part, IMEIs their type code', () => {
    expect(maskValue('name', '138 1234 5678')).toBe('138****5678');
    expect(maskValue('name', '王小明')).toBe('王****');
    expect(maskValue('address', 'Huayuan Road 88')).toBe('Huayu****');
    expect(maskValue('imei', IMEI)).toBe('86000000*******');
  });
});

describe('CSV that citysense writes (OWASP CSV injection)', () => {
  it('neutralises = + - @ tab and CR, leaves numbers, and restores exactly', () => {
    for (const v of ['=1+1', '+1', '-A', '@x', '\tx', '\rx', "'=x", "''+y"]) {
      expect(neutraliseCell(v)).toBe(`'${v}`);
      expect(restoreCell(neutraliseCell(v))).toBe(v);
    }
    for (const v of ['-33.5', '42', 'plain', "'quoted", "it's", '']) {
      expect(neutraliseCell(v)).toBe(v);
      expect(restoreCell(v)).toBe(v);
    }
    expect(csvCell('=HYPERLINK("a","b")')).toBe(`"'=HYPERLINK(""a"",""b"")"`);
  });

  it('exports the registry with every cell neutralised, masked for non-admins, and an admin export imports back whole', async () => {
    const { a, admin, viewer } = await seeded();
    const exp = await a.inject({ method: 'GET', url: '/v1/devices/export', headers: bearer(admin) });
    expect(exp.statusCode).toBe(200);
    expect(exp.headers['content-type']).toMatch(/^text\/csv/);
    const rows = parseCsv(exp.body);
    const header = rows[0]!.fields;
    const col = (r: number, name: string) => rows[r]!.fields[header.indexOf(name)];
    const r3 = rows.findIndex((r) => r.fields[0] === 'pd-3');
    expect(col(r3, 'owner_unit')).toBe(`'=HYPERLINK("http://x","y")`);
    expect(col(r3, 'address')).toBe("'@SUM(1+1)");
    expect(col(r3, 'site')).toBe("'+S1");
    expect(col(r3, 'tags')).toBe('note=-2+3');
    expect(col(r3, 'lat')).toBe('-33.5');
    // No cell of the file starts a formula.
    for (const r of rows) for (const f of r.fields) expect(f).not.toMatch(/^[=+\-@\t\r](?![\d.]+$)/);
    expect(header).not.toContain('secret');
    expect((await personalReads(a, admin))[0]).toMatchObject({ details: { via: 'GET /v1/devices/export', count: 3 } });

    const masked = (await a.inject({ method: 'GET', url: '/v1/devices/export', headers: bearer(viewer) })).body;
    expect(masked).toContain('138****5678');
    expect(masked).not.toContain(IMEI);

    // Round trip: the admin's export into an empty registry gives the same devices.
    const b = await app();
    const adminB = await login(b, 'admin');
    const imp = await b.inject({ method: 'POST', url: '/v1/devices/import', headers: { ...bearer(adminB), 'content-type': 'text/csv' }, payload: exp.body });
    expect(imp.statusCode, imp.body).toBe(201);
    const strip = (d: Record<string, unknown>) => {
      const { version: _v, created_at: _c, created_by: _cb, updated_at: _u, updated_by: _ub, secret_rotated_at: _s, ...rest } = d;
      return rest;
    };
    const listA = ((await a.inject({ method: 'GET', url: '/v1/devices?limit=10', headers: bearer(admin) })).json().devices as Record<string, unknown>[]).map(strip);
    const listB = ((await b.inject({ method: 'GET', url: '/v1/devices?limit=10', headers: bearer(adminB) })).json().devices as Record<string, unknown>[]).map(strip);
    expect(listB).toEqual(listA);
  });
});
