// The Grafana dashboard in docs/grafana/: valid JSON, and every InfluxQL it holds (panels, variables,
// annotations) runs without error against InfluxDB 1.x with the retention policies the cloud creates —
// Grafana's macros replaced as Grafana would.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { EDGE_A, batch, batchHeaders, envReading, protobuf } from './helpers.ts';
import { registryApp } from './registry-fixtures.ts';

const dash = JSON.parse(readFileSync(new URL('../../docs/grafana/citysense-dashboard.json', import.meta.url), 'utf8')) as {
  panels: { type: string; title: string; targets?: { query: string }[] }[];
  templating: { list: { name: string; type: string; query: string }[] };
  annotations: { list: { query?: string }[] };
};

let influx: TestInflux;
let app: FastifyInstance;

beforeAll(async () => {
  influx = await testInflux('grafana');
  app = registryApp(influx);
  await app.ready();
  await app.influxAdmin.ensure();
  const t = Date.now() - 60_000;
  const res = await app.inject({
    method: 'POST',
    url: '/v1/batches',
    headers: batchHeaders(EDGE_A.token),
    payload: protobuf(
      batch(EDGE_A.id, [
        envReading('env-g-1', t, { pm25: 30, pm10: 50, no2: 20, noise: 55 }),
        { deviceId: 'lift-g-1', family: 'elevator', ts: t, values: { floor: 3, door_open: false, running: true, fault_code: 0, load: 20 }, tags: { district: 'erqi' } },
        { deviceId: 'fire-g-1', family: 'fire', ts: t, values: { sprinkler_pressure: 0.4, smoke_obscuration: 0.1 }, tags: { district: 'zhongyuan' } },
        { deviceId: 'nb-g-1', family: 'nbiot', ts: t, values: { battery: 80, rsrp: -90 }, tags: { district: 'guancheng' } },
      ], [{ id: 'ev-1', deviceId: 'fire-g-1', family: 'fire', ts: t, type: 'fire_alarm', attrs: { zone: 'B2' }, tags: { district: 'zhongyuan' } } as never]),
    ),
  });
  expect(res.statusCode).toBe(200);
});
afterAll(async () => {
  await app?.close();
});

const VARS = /\$(district|env_device|lift_device|fire_device|nb_device)\b/g;
const expand = (q: string) => q.replace(/\$timeFilter/g, 'time > now() - 6h').replace(/\$__interval/g, '1m').replace(VARS, '.*');

describe('docs/grafana/citysense-dashboard.json', () => {
  it('has panels for the four families over the citysense measurements', () => {
    const queries = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.query).join('\n');
    for (const m of ['"environment"', '"elevator"', '"fire"', '"nbiot"', '"events"', '"alerts"', '"rollup_1h"']) expect(queries).toContain(m);
    expect(dash.templating.list.map((v) => v.name)).toEqual(['datasource', 'district', 'env_device', 'lift_device', 'fire_device', 'nb_device']);
  });

  it('every query runs against InfluxDB 1.x', async () => {
    const all = [
      ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, q: t.query }))),
      ...dash.templating.list.filter((v) => v.type === 'query').map((v) => ({ where: `variable ${v.name}`, q: v.query })),
      ...dash.annotations.list.filter((a) => a.query).map((a) => ({ where: 'annotation', q: a.query! })),
    ];
    expect(all.length).toBeGreaterThan(25);
    for (const { where, q } of all) {
      const res = await fetch(`${influx.url}/query?db=${influx.db}&q=${encodeURIComponent(expand(q))}`);
      const body = (await res.json()) as { results?: { error?: string }[]; error?: string };
      expect(body.error ?? body.results?.[0]?.error, `${where}: ${q}`).toBeUndefined();
      expect(res.status, where).toBe(200);
    }
    const pm = await influx.query(expand(dash.panels.find((p) => p.title === 'PM2.5')!.targets![0]!.query));
    expect(pm.some((r) => r.mean === 30)).toBe(true);
  });
});
