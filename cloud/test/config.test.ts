// The config schema: defaults, refusals that name the path, environment overrides, the example file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';
import { loadCloudConfig, parseCloudConfig } from '../src/config/load.ts';
import { CloudConfigError } from '../src/errors.ts';
import { silentLogger } from './helpers.ts';

const EXAMPLE = fileURLToPath(new URL('../config/cloud.example.yaml', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'citysense-cloud-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The one key without a default (issue 11: no InfluxDB is written to unless the config names it). */
const NAMED = { influx: { url: 'http://127.0.0.1:8086' } } as const;

function configError(fn: () => unknown): CloudConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CloudConfigError);
    return err as CloudConfigError;
  }
  throw new Error('expected a CloudConfigError');
}

describe('cloud config', () => {
  it('has a default for everything but the InfluxDB to write to', () => {
    const c = parseCloudConfig(NAMED);
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(c.influx).toMatchObject({ url: 'http://127.0.0.1:8086', database: 'citysense' });
    expect(c.influx.retention).toMatchObject({ manage: true, alterExistingPolicies: false });
    expect(configError(() => parseCloudConfig({})).issues).toEqual([expect.stringMatching(/^influx\.url: no InfluxDB is named: set influx\.url \(or INFLUX_URL\)/)]);
    expect(parseCloudConfig({}, { INFLUX_URL: 'http://db:8086' }).influx.url).toBe('http://db:8086');
    expect(c.auth).toEqual({ mode: 'token', edges: [] });
    expect(c.limits.bodyBytes).toBe(16 * 1024 * 1024);
    expect(Object.isFrozen(c.limits)).toBe(true);
  });

  it('validates the example config', () => {
    const c = loadCloudConfig(EXAMPLE, {});
    expect(c.auth.edges[0]).toMatchObject({ id: 'edge-1' });
  });

  it('refuses unknown keys, naming their path', () => {
    const err = configError(() => parseCloudConfig({ limits: { bodyByte: 10 } }));
    expect(err.message).toMatch(/limits: .*bodyByte/);
    const top = configError(() => parseCloudConfig({ influxdb: {} }));
    expect(top.message).toMatch(/influxdb/);
  });

  it('names the path of a bad value, array indices included', () => {
    const err = configError(() =>
      parseCloudConfig({ listen: { port: 70000 }, auth: { edges: [{ id: 'e1', tokenSha256: 'abc' }] } }),
    );
    expect(err.issues.some((i) => i.startsWith('listen.port:'))).toBe(true);
    expect(err.issues.some((i) => i.startsWith('auth.edges[0].tokenSha256:'))).toBe(true);
  });

  it('needs a token per edge in token mode and a CA in mtls mode', () => {
    expect(configError(() => parseCloudConfig({ ...NAMED, auth: { edges: [{ id: 'e1' }] } })).message).toMatch(/auth\.edges\[0\]: .*tokenSha256 or tokenEnv/);
    expect(configError(() => parseCloudConfig({ ...NAMED, auth: { mode: 'mtls', edges: [{ id: 'e1' }] } })).message).toMatch(/auth\.mode: .*listen\.tls/);
    expect(configError(() => parseCloudConfig({ ...NAMED, auth: { edges: [{ id: 'e1', tokenEnv: 'A' }, { id: 'e1', tokenEnv: 'B' }] } })).message).toMatch(/listed twice/);
  });

  it('applies environment overrides and names the variable when one is wrong', () => {
    const c = parseCloudConfig({ listen: { port: 1 } }, { PORT: '9090', CITYSENSE_CLOUD_HOST: '0.0.0.0', INFLUX_URL: 'http://db:8086', INFLUX_DATABASE: 'city', INFLUX_USERNAME: 'u', INFLUX_PASSWORD: 'p' });
    expect(c.listen).toMatchObject({ host: '0.0.0.0', port: 9090 });
    expect(c.influx).toMatchObject({ url: 'http://db:8086', database: 'city', username: 'u', password: 'p' });
    expect(parseCloudConfig(NAMED, { PORT: '1', CITYSENSE_CLOUD_PORT: '2' }).listen.port).toBe(2);
    const err = configError(() => parseCloudConfig({}, { PORT: 'eighty' }));
    expect(err.message).toMatch(/listen\.port \(from environment variable PORT\)/);
  });

  it('reads YAML and JSON files and reports a YAML syntax error with the file name', () => {
    const json = join(tmp, 'c.json');
    writeFileSync(json, JSON.stringify({ ...NAMED, listen: { port: 0 } }));
    expect(loadCloudConfig(json, {}).listen.port).toBe(0);
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(bad, 'listen:\n  port: [1\n');
    expect(configError(() => loadCloudConfig(bad, {})).message).toMatch(/bad\.yaml/);
    const unknown = join(tmp, 'unknown.yaml');
    writeFileSync(unknown, 'listen:\n  prot: 1\n');
    expect(configError(() => loadCloudConfig(unknown, {})).message).toMatch(/unknown\.yaml[\s\S]*listen/);
  });

  it('refuses to start when an edge tokenEnv variable is not set', async () => {
    const c = parseCloudConfig({ ...NAMED, auth: { edges: [{ id: 'e1', tokenEnv: 'EDGE_E1_TOKEN' }] }, metrics: { process: false } });
    const app = buildApp(c, { logger: silentLogger(), env: {} });
    await expect(app.ready()).rejects.toThrow(/auth\.edges\[0\]\.tokenEnv: environment variable EDGE_E1_TOKEN is not set/);
    await app.close().catch(() => undefined);
  });
});
