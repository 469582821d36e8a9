// Shared set-up of the registry, query, audit, retention and edge-sync tests: an app with the demo
// operators (admin / duty / viewer) on the test influxd, logins, and a CSV maker.
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.ts';
import type { CloudConfigInput } from '../src/config/schema.ts';
import { silentLogger, testConfig } from './helpers.ts';

export const PASSWORDS = { admin: 'admin-demo', duty: 'duty-demo', viewer: 'viewer-demo' } as const;

export function registryApp(influx: { url: string; db: string }, extra: CloudConfigInput = {}, now?: () => number): FastifyInstance {
  const config = testConfig(influx, {
    ...extra,
    alerts: { rulesFiles: [], ...extra.alerts },
    operators: { demoUsers: true, ...extra.operators },
  });
  return buildApp(config, { logger: silentLogger(), env: {}, ...(now ? { now } : {}) });
}

export async function login(app: FastifyInstance, user: keyof typeof PASSWORDS): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: user, password: PASSWORDS[user] } });
  if (res.statusCode !== 200) throw new Error(`login ${user}: ${res.statusCode} ${res.body}`);
  return (res.json() as { token: string }).token;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A CSV of n environment devices env-<prefix>-00001..., in district `district`. */
export function devicesCsv(n: number, prefix: string, district = 'jinshui', extraHeader = '', extraCells: (i: number) => string = () => ''): string {
  const lines = [`id,family,district,profile,site,lat,lon,owner_unit,expected_interval${extraHeader}`];
  for (let i = 1; i <= n; i++) {
    const id = `env-${prefix}-${String(i).padStart(5, '0')}`;
    lines.push(`${id},environment,${district},generic-json,site-${i % 50},34.${String(i).padStart(4, '0')},113.6,"Environment Bureau, ${district}",60s${extraCells(i)}`);
  }
  return lines.join('\n') + '\n';
}
