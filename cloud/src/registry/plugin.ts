// The operator-side back end as app decorations: app.audit (the audit log), app.registry (devices and
// edge slices), app.lastSeen, app.districts (summaries), app.readings (latest values, history: query/service.ts). Routes are
// in routes/devices, routes/districts, routes/audit, routes/edges.
import type { CloudConfig } from '../config/schema.ts';
import { CloudConfigError } from '../errors.ts';
import { AuditLog } from '../audit/log.ts';
import { shared } from '../plugins/shared.ts';
import { QueryService } from '../query/service.ts';
import { DistrictSummaries } from './districts.ts';
import { LastSeen } from './last-seen.ts';
import { loadProfileCatalog, DEFAULT_PROFILES_DIR, type ProfileCatalog } from './profiles.ts';
import { RegistryStore } from './store.ts';
import { loadRegistryKey } from './secrets.ts';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditLog;
    registry: RegistryStore;
    /** The key sealing device verifiers in the store (never sent anywhere). */
    registryKey: Buffer;
    profiles: ProfileCatalog;
    lastSeen: LastSeen;
    districts: DistrictSummaries;
    readings: QueryService;
  }
}

export interface RegistryPluginOptions extends Record<string, unknown> {
  config: CloudConfig;
  now: () => number;
}

export const registryPlugin = shared<RegistryPluginOptions>('citysense-registry', async (app, opts) => {
  const { config, now } = opts;
  const rc = config.registry;
  const log = app.log.child({ module: 'registry' });
  const edges = new Set(config.auth.edges.map((e) => e.id));
  const bad = Object.entries(rc.districtEdges).filter(([, e]) => !edges.has(e)).map(([d, e]) => `registry.districtEdges.${d}: no edge "${e}" in auth.edges`);
  if (rc.defaultEdge !== undefined && !edges.has(rc.defaultEdge)) bad.push(`registry.defaultEdge: no edge "${rc.defaultEdge}" in auth.edges`);
  if (bad.length) throw new CloudConfigError('the registry names edges the cloud does not know', bad);

  const profiles = loadProfileCatalog(rc.profilesDirs ?? [DEFAULT_PROFILES_DIR]);
  if (profiles.problems.length) log.warn({ problems: profiles.problems }, 'some profile files could not be read; devices cannot use them');
  if (profiles.ids().length === 0) throw new CloudConfigError('registry.profilesDirs holds no device profiles', profiles.problems);

  const audit = new AuditLog(app.store, now);
  // An in-memory store (tests) dies with the process: so may its key.
  const ephemeral = app.store.path === ':memory:' && !rc.keyFile && !process.env.CITYSENSE_REGISTRY_KEY;
  const key = ephemeral ? randomBytes(32) : loadRegistryKey(rc.keyFile ?? join(dirname(app.store.path), 'registry.key'));
  const registry = new RegistryStore(app.store, audit, { profiles, edges }, { districtEdges: rc.districtEdges, defaultEdge: rc.defaultEdge }, key, now);
  const migrated = await registry.migrateLegacyHashes();
  if (migrated > 0) log.warn({ devices: migrated }, 'registry migrated: unsalted SHA-256 secret hashes replaced by sealed salted verifiers; every edge fetches its slice again');
  const lastSeen = new LastSeen(app.store, rc.maxTrackedDevices);
  app.decorate('audit', audit);
  app.decorate('registry', registry);
  app.decorate('registryKey', key);
  app.decorate('profiles', profiles);
  app.decorate('lastSeen', lastSeen);
  app.decorate('districts', new DistrictSummaries(app.store, lastSeen, config, now));
  app.decorate('readings', new QueryService(app.influx, config, now));

  // Last heard: the newest reading or event time per device of each first-time batch (capped at the
  // cloud clock, so a device with a clock ahead does not stay "online").
  app.ingest.onBatchStored((_batch, info) => {
    const newest = new Map<string, number>();
    const note = (id: string, ts: number) => {
      const t = Math.min(ts, info.nowMs);
      if ((newest.get(id) ?? -Infinity) < t) newest.set(id, t);
    };
    for (const { reading } of info.readings) note(reading.deviceId, reading.ts);
    for (const { event } of info.events) note(event.deviceId, event.ts);
    for (const [id, ts] of newest) lastSeen.heard(id, ts);
  });
  app.addHook('onReady', async () => lastSeen.start(rc.lastSeenFlushMs, (err) => log.error({ err }, 'could not save last-seen times')));
  app.addHook('preClose', async () => lastSeen.stop());
});
