// The InfluxQL of docs/grafana/citysense-dashboard.json (panels, variables, annotations), with Grafana's
// macros replaced as Grafana would: for tests that run every query and want rows back.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Dashboard {
  panels: { type: string; title: string; targets?: { query: string }[] }[];
  templating: { list: { name: string; type: string; query: string }[] };
  annotations: { list: { name?: string; query?: string }[] };
}

export const dashboard = JSON.parse(readFileSync(join(import.meta.dirname, '../../docs/grafana/citysense-dashboard.json'), 'utf8')) as Dashboard;

export interface DashboardQuery {
  where: string;
  q: string;
}

/** Every query of the dashboard, named by where it is. */
export function dashboardQueries(d: Dashboard = dashboard): DashboardQuery[] {
  return [
    ...d.panels.flatMap((p) => (p.targets ?? []).map((t, i) => ({ where: `panel "${p.title}" query ${i + 1}`, q: t.query }))),
    ...d.templating.list.filter((v) => v.type === 'query').map((v) => ({ where: `variable ${v.name}`, q: v.query })),
    ...d.annotations.list.filter((a) => a.query).map((a) => ({ where: `annotation "${a.name}"`, q: a.query! })),
  ];
}

const VARS = /\$(district|env_device|lift_device|fire_device|nb_device)\b/g;

/** Grafana's macros and the variables set to "All". */
export function expandQuery(q: string, timeFilter = 'time > now() - 6h', interval = '1m'): string {
  return q.replace(/\$timeFilter/g, timeFilter).replace(/\$__interval/g, interval).replace(VARS, '.*');
}

/** The rows (series values) of an InfluxDB /query answer, or its error. */
export async function runQuery(url: string, db: string, q: string): Promise<{ error?: string; rows: number }> {
  const res = await fetch(`${url}/query?db=${encodeURIComponent(db)}&epoch=ms&q=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { error?: string; results?: { error?: string; series?: { values?: unknown[][] }[] }[] };
  const r = body.results?.[0];
  const error = body.error ?? r?.error ?? (res.ok ? undefined : `HTTP ${res.status}`);
  return { ...(error ? { error } : {}), rows: (r?.series ?? []).reduce((n, s) => n + (s.values?.length ?? 0), 0) };
}
