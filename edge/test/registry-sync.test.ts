// The edge's registry cloud-sync against the real cloud app: an import in the cloud reaches the edge's
// live registry within the poll interval (a new device can log in without a restart), a rotated secret
// replaces the old one once synced, the cache keeps the edge working when the cloud is away, and
// failures are counted and logged at a bounded rate.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, waitFor } from '../../e2e/setup/influx.ts';
import { EDGE_A } from '../../cloud/test/helpers.ts';
import { bearer, devicesCsv, login, registryApp } from '../../cloud/test/registry-fixtures.ts';
import type { DeviceEntry } from '../src/config/schema.ts';
import { authenticateDevice } from '../src/inputs/mqtt-broker/auth.ts';
import { loadProfiles } from '../src/profiles/load.ts';
import { startRegistrySync, type RegistrySync } from '../src/registry/cloud-sync.ts';
import { buildRegistry, type DeviceRegistry } from '../src/registry/registry.ts';
import { CredentialChecker } from '../src/registry/credentials.ts';

const profiles = loadProfiles([]);
let cloud: FastifyInstance;
let cloudUrl: string;
let admin: string;
let dir: string;
const syncs: RegistrySync[] = [];

beforeAll(async () => {
  const influx = await testInflux('edge-registry-sync');
  cloud = registryApp(influx, { registry: { defaultEdge: EDGE_A.id }, influx: { retention: { manage: false } } });
  await cloud.listen({ port: 0, host: '127.0.0.1' });
  const addr = cloud.server.address() as { port: number };
  cloudUrl = `http://127.0.0.1:${addr.port}`;
  admin = await login(cloud, 'admin');
  dir = mkdtempSync(join(tmpdir(), 'citysense-registry-sync-'));
});
afterEach(async () => {
  while (syncs.length) await syncs.pop()!.stop();
});
afterAll(async () => {
  await cloud?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An edge's live registry: what the agent does with onUpdate (build, then swap). */
function liveEdge(cacheFile: string, opts: { token?: string; intervalMs?: number; refuse?: (e: DeviceEntry[]) => boolean; log?: pino.Logger } = {}) {
  const state = { registry: buildRegistry([], 'empty', profiles) as DeviceRegistry, updates: [] as { version: number; source: string; n: number }[] };
  const start = async () => {
    const s = await startRegistrySync({
      cloudUrl,
      token: opts.token ?? EDGE_A.token,
      edgeId: EDGE_A.id,
      cacheFile,
      intervalMs: opts.intervalMs ?? 200,
      log: opts.log ?? pino({ level: 'silent' }),
      onUpdate(entries, info) {
        if (opts.refuse?.(entries)) throw new Error('refused by the agent');
        state.registry = buildRegistry(entries, `cloud registry v${info.version}`, profiles);
        state.updates.push({ version: info.version, source: info.source, n: entries.length });
      },
    });
    syncs.push(s);
    return s;
  };
  return { state, start };
}

const checker = new CredentialChecker();
const canLogin = async (reg: DeviceRegistry, id: string, secret: string) => (await authenticateDevice(reg, checker, id, Buffer.from(secret))).ok;

describe('cloud → edge', () => {
  it('devices imported in the cloud can log in at the edge within the poll interval, without a restart', async () => {
    const cache = join(dir, 'a.json');
    const edge = liveEdge(cache);
    const sync = await edge.start();
    await waitFor('first sync', () => sync.status().lastSuccessAt !== null, 5000);
    expect(edge.state.registry.size).toBe(0);

    const res = await cloud.inject({ method: 'POST', url: '/v1/devices/import', headers: { ...bearer(admin), 'content-type': 'text/csv' }, payload: devicesCsv(500, 'sync') });
    expect(res.statusCode).toBe(201);
    const rows = (res.json() as { results: { id: string; credentials: { secret: string } }[] }).results;
    const t0 = Date.now();
    await waitFor('the new devices at the edge', () => edge.state.registry.size === 500, 5000, 20);
    const took = Date.now() - t0;
    expect(took).toBeLessThan(200 * 1.1 + 1000); // one poll interval (+ jitter) and the fetch
    for (const r of [rows[0]!, rows[250]!, rows[499]!]) expect(await canLogin(edge.state.registry, r.id, r.credentials.secret)).toBe(true);
    expect(await canLogin(edge.state.registry, rows[0]!.id, 'wrong-secret-123')).toBe(false);
    expect(edge.state.registry.get('env-sync-00001')?.tags).toMatchObject({ district: 'jinshui', site: 'site-1' });

    // The cache holds it, written whole (no temp file left behind).
    const cached = JSON.parse(readFileSync(cache, 'utf8')) as { edge: string; version: number; devices: unknown[]; etag: string };
    expect(cached).toMatchObject({ edge: EDGE_A.id, devices: expect.any(Array) });
    expect(cached.devices).toHaveLength(500);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);

    // Polls without changes are 304s: no new update.
    const n = edge.state.updates.length;
    await new Promise((r) => setTimeout(r, 600));
    expect(edge.state.updates.length).toBe(n);
    expect(sync.status()).toMatchObject({ source: 'cloud', devices: 500, consecutiveFailures: 0, failures: 0 });
  });

  it('a GB/T 26875.3 transmission device registered in the cloud with its source address is found by that address at the edge', async () => {
    const edge = liveEdge(join(dir, 'gb.json'));
    const sync = await edge.start();
    await waitFor('first sync', () => sync.status().lastSuccessAt !== null, 5000);
    const csv = 'id,family,district,profile,gb26875_address\nuitd-sync-1,fire,zhongyuan,fire-panel-gb26875-tcp,7903000000AB\nuitd-sync-2,fire,zhongyuan,fire-panel-gb26875-tcp,7903000000ab\nuitd-sync-3,fire,zhongyuan,fire-panel-gb26875-tcp,\n';
    const res = await cloud.inject({ method: 'POST', url: '/v1/devices/import?mode=partial', headers: { ...bearer(admin), 'content-type': 'text/csv' }, payload: csv });
    const rows = (res.json() as { results: { line: number; status: string; error?: string; credentials?: unknown }[] }).results;
    if (!rows) throw new Error(`import answered ${res.statusCode}: ${res.body}`);
    expect(rows.map((r) => [r.line, r.status])).toEqual([
      [2, 'created'],
      [3, 'refused'], // the same address (case does not matter)
      [4, 'refused'], // no address
    ]);
    expect(rows[0]!.credentials ?? {}).toEqual({}); // the standard has no password: nothing generated
    await waitFor('the device at the edge', () => edge.state.registry.byGbAddress('7903000000ab') !== undefined, 5000, 20);
    expect(edge.state.registry.byGbAddress('7903000000AB')?.id).toBe('uitd-sync-1');
    await cloud.inject({ method: 'DELETE', url: '/v1/devices/uitd-sync-1', headers: bearer(admin) });
  });

  it('a rotated secret: the old one works until the edge syncs, then only the new one', async () => {
    const edge = liveEdge(join(dir, 'b.json'));
    const created = await cloud.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: { id: 'rot-edge-1', family: 'fire', district: 'zhongyuan' } });
    const oldSecret = created.json().credentials.secret as string;
    const sync = await edge.start();
    await waitFor('device at the edge', () => edge.state.registry.get('rot-edge-1') !== undefined, 5000, 20);
    expect(await canLogin(edge.state.registry, 'rot-edge-1', oldSecret)).toBe(true);
    const rotated = await cloud.inject({ method: 'POST', url: '/v1/devices/rot-edge-1/rotate-secret', headers: bearer(admin), payload: {} });
    const newSecret = rotated.json().credentials.secret as string;
    await sync.syncNow();
    expect(await canLogin(edge.state.registry, 'rot-edge-1', newSecret)).toBe(true);
    expect(await canLogin(edge.state.registry, 'rot-edge-1', oldSecret)).toBe(false);
  });
});

describe('when things go wrong', () => {
  it('starts from the cache when the cloud is away, counts failures and logs them at a bounded rate', async () => {
    const cache = join(dir, 'c.json');
    const made = await cloud.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: { id: 'cached-1', family: 'fire', district: 'x', secret: 'cached-device-secret' } });
    expect(made.statusCode).toBe(201);
    const first = liveEdge(cache);
    const s1 = await first.start();
    await waitFor('synced', () => first.state.registry.get('cached-1') !== undefined, 5000, 20);
    await s1.stop();
    syncs.length = 0;

    // The edge restarts while the cloud is unreachable (a URL nobody listens on).
    const lines: { level: number; msg: string; suppressed?: number }[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) });
    const state = { registry: undefined as DeviceRegistry | undefined };
    const s2 = await startRegistrySync({
      cloudUrl: 'http://127.0.0.1:9',
      token: EDGE_A.token,
      edgeId: EDGE_A.id,
      cacheFile: cache,
      intervalMs: 20,
      warnIntervalMs: 60_000,
      log,
      onUpdate: (entries) => void (state.registry = buildRegistry(entries, 'cache', profiles)),
    });
    syncs.push(s2);
    // Served from the cache at once: the devices it knew can log in (with the secret it knew).
    expect(state.registry!.size).toBe(first.state.registry.size);
    expect(await canLogin(state.registry!, 'cached-1', 'cached-device-secret')).toBe(true);
    await waitFor('several failed polls', () => s2.status().failures >= 5, 5000, 10);
    const st = s2.status();
    expect(st).toMatchObject({ source: 'cache', consecutiveFailures: st.failures });
    expect(st.lastError).toMatch(/^network: /);
    const warns = lines.filter((l) => l.level === 40);
    expect(warns).toHaveLength(1); // the first at once, the rest counted until warnIntervalMs
    expect(lines.some((l) => l.msg === 'registry loaded from the cache')).toBe(true);
  });

  it('a wrong token is a counted failure (401) and the registry in force stays', async () => {
    const cache = join(dir, 'a.json'); // the cache of the first test
    const edge = liveEdge(cache, { token: 'not-the-edge-token' });
    const s = await edge.start();
    expect(edge.state.updates).toEqual([expect.objectContaining({ source: 'cache', n: 500 })]);
    await waitFor('a failed poll', () => s.status().failures >= 1, 5000, 10);
    expect(s.status().lastError).toContain('http: 401 EDGE_AUTH_INVALID');
    expect(edge.state.registry.size).toBe(500);
  });

  it('a slice the agent refuses is neither applied nor cached', async () => {
    const cache = join(dir, 'd.json');
    const edge = liveEdge(cache, { refuse: (e) => e.some((d) => d.id === 'poison-1') });
    const s = await edge.start();
    await waitFor('synced', () => edge.state.registry.size > 0, 5000, 20);
    const before = readFileSync(cache, 'utf8');
    const size = edge.state.registry.size;
    await cloud.inject({ method: 'POST', url: '/v1/devices', headers: bearer(admin), payload: { id: 'poison-1', family: 'fire', district: 'x' } });
    expect(await s.syncNow()).toBe('failed');
    expect(s.status().lastError).toContain('refused: refused by the agent');
    expect(edge.state.registry.size).toBe(size);
    expect(readFileSync(cache, 'utf8')).toBe(before);
    // Fixed in the cloud: the next poll applies it.
    await cloud.inject({ method: 'DELETE', url: '/v1/devices/poison-1', headers: bearer(admin) });
    expect(await s.syncNow()).toBe('updated');
  });

  it('a cache of another edge or a broken cache file is refused at start; the cloud then fills it', async () => {
    const cache = join(dir, 'e.json');
    writeFileSync(cache, JSON.stringify({ edge: 'edge-b', version: 9, etag: null, savedAt: 0, devices: [] }));
    const edge = liveEdge(cache);
    const s = await edge.start();
    expect(edge.state.updates).toEqual([]);
    await waitFor('synced from the cloud', () => s.status().source === 'cloud', 5000, 20);
    expect(JSON.parse(readFileSync(cache, 'utf8')).edge).toBe(EDGE_A.id);
    writeFileSync(cache, '{"edge": "edge-a", "devices": [{"id": "bad id"}]');
    await s.stop();
    const again = liveEdge(cache);
    await again.start();
    expect(again.state.updates).toEqual([]);
    expect(existsSync(cache)).toBe(true);
  });
});
