// Test helpers for the private influxd started by influxd.global.ts.
import { inject } from 'vitest';
import { influxQuery, rows, waitFor } from '../../scripts/influxd.ts';
import './influxd.global.ts';

export { waitFor };

export interface TestInflux {
  url: string;
  db: string;
  /** Rows of an InfluxQL query against this file's database (epoch ms). */
  query(q: string): Promise<Record<string, unknown>[]>;
}

/** A fresh database on the run's influxd, named after the test file so runs never collide. */
export async function testInflux(name: string): Promise<TestInflux> {
  const url = inject('influxUrl');
  const db = `t_${name.replace(/[^A-Za-z0-9_]/g, '_')}_${process.pid}_${Date.now().toString(36)}`;
  const res = await fetch(`${url}/query`, {
    method: 'POST',
    body: new URLSearchParams({ q: `CREATE DATABASE "${db}"` }),
  });
  if (!res.ok) throw new Error(`could not create test database ${db}: ${res.status} ${await res.text()}`);
  return { url, db, query: async (q) => rows(await influxQuery(url, db, q)) };
}
