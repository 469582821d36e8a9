// The Grafana dashboard in docs/grafana/: valid JSON, and every InfluxQL it holds (panels, variables,
// annotations) runs against InfluxDB 1.x with the retention policies the cloud creates — Grafana's macros
// replaced as Grafana would — and returns rows for demo-like data written through the real pipeline
// (POST /v1/batches with the shipped alert rules; the hourly roll-ups backfilled as docs/retention.md
// says). e2e/docs-commands.test.ts runs the same queries against a running demo.
import { join } from 'node:path';
import type { DeviceEvent, Reading } from '@citysense/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testInflux, waitFor, type TestInflux } from '../../e2e/setup/influx.ts';
import { dashboard as dash, dashboardQueries, expandQuery, runQuery } from '../../e2e/setup/grafana.ts';
import { backfillStatement } from '../src/influx-admin/retention.ts';
import { EDGE_A, batch, batchHeaders, envReading, protobuf } from './helpers.ts';
import { registryApp } from './registry-fixtures.ts';

let influx: TestInflux;
let app: FastifyInstance;

const FAMILIES = ['environment', 'elevator', 'fire', 'nbiot'];

beforeAll(async () => {
  influx = await testInflux('grafana');
  app = registryApp(influx, { alerts: { rulesFiles: [join(import.meta.dirname, '../rules')] } });
  await app.ready();
  await app.influxAdmin.ensure();
  // A few minutes of what the demo's devices send, one reading per device per minute.
  const t0 = Date.now() - 10 * 60_000;
  const readings: Reading[] = [];
  for (let i = 0; i < 5; i++) {
    const t = t0 + i * 60_000;
    readings.push(
      envReading('demo-env-001', t, { pm25: 30 + i, pm10: 50, no2: 20, so2: 8, o3: 60, noise: 55 }),
      { deviceId: 'demo-elev-001', family: 'elevator', ts: t, values: { floor: 3 + i, door_open: i % 2 === 0, running: i % 2 === 1, fault_code: 0, load: 20 }, tags: { district: 'erqi' } },
      { deviceId: 'demo-fire-001', family: 'fire', ts: t, values: { sprinkler_pressure: 0.4, tank_level: 4.2, smoke_obscuration: 0.1 }, tags: { district: 'zhongyuan' } },
      { deviceId: 'demo-nb-001', family: 'nbiot', ts: t, values: { battery: 80, rsrp: -90, smoke_obscuration: 0.2 }, tags: { district: 'guancheng' } },
      { deviceId: 'demo-nb-002', family: 'nbiot', ts: t, values: { battery: 70, rsrp: -95, water_level: 0.3, tilt: 1 }, tags: { district: 'guancheng' } },
      { deviceId: 'demo-nb-003', family: 'nbiot', ts: t, values: { battery: 60, rsrp: -99, gas_lel: 2 }, tags: { district: 'huiji' } },
    );
  }
  const events: DeviceEvent[] = [
    { id: 'ev-g-1', deviceId: 'demo-fire-001', family: 'fire', ts: t0 + 90_000, type: 'fire_alarm', attrs: { zone: 'F2-Z1', floor: '2' }, priority: 'alarm', tags: { district: 'zhongyuan' } },
  ];
  const res = await app.inject({ method: 'POST', url: '/v1/batches', headers: batchHeaders(EDGE_A.token), payload: protobuf(batch(EDGE_A.id, readings, events)) });
  expect(res.statusCode).toBe(200);
  await app.alerts.influxIdle();
  await waitFor('the firing alert in InfluxDB', async () => (await influx.query(`SELECT count(id) FROM alerts`)).length > 0, 10_000);
  // The hourly roll-ups: a CQ writes them at the top of each hour, so the test backfills the hour(s).
  const hour = 3_600_000;
  for (const family of FAMILIES) {
    const q = backfillStatement(influx.db, 'autogen', family, '1h', Math.floor(t0 / hour) * hour, (Math.floor(Date.now() / hour) + 1) * hour);
    const r = await runQuery(influx.url, influx.db, q);
    expect(r.error, q).toBeUndefined();
  }
});
afterAll(async () => {
  await app?.close();
});

describe('docs/grafana/citysense-dashboard.json', () => {
  it('has panels for the four families over the citysense measurements', () => {
    const queries = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.query).join('\n');
    for (const m of ['"environment"', '"elevator"', '"fire"', '"nbiot"', '"events"', '"alerts"', '"rollup_1h"']) expect(queries).toContain(m);
    expect(dash.templating.list.map((v) => v.name)).toEqual(['datasource', 'district', 'env_device', 'lift_device', 'fire_device', 'nb_device']);
    // "readings stored per family" counts every family.
    const stored = dash.panels.find((p) => p.title.startsWith('Readings stored per family'))!.targets!.map((t) => t.query).join('\n');
    for (const f of FAMILIES) expect(stored).toContain(`FROM "${f}"`);
  });

  it('every query (panels, variables, annotations) runs against InfluxDB 1.x and returns rows for demo-like data', async () => {
    const all = dashboardQueries();
    expect(all.length).toBeGreaterThan(25);
    const empty: string[] = [];
    for (const { where, q } of all) {
      const r = await runQuery(influx.url, influx.db, expandQuery(q, 'time > now() - 3h'));
      expect(r.error, `${where}: ${q}`).toBeUndefined();
      if (r.rows === 0) empty.push(`${where}: ${q}`);
    }
    expect(empty).toEqual([]);
    const pm = await influx.query(expandQuery(dash.panels.find((p) => p.title === 'PM2.5')!.targets![0]!.query, 'time > now() - 3h'));
    expect(pm.some((r) => r.mean === 30)).toBe(true);
  });
});
