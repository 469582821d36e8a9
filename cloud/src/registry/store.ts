// The device registry in the cloud's store (node:sqlite, see store/db.ts): one row per device, secrets
// only as salted scrypt verifiers sealed under the registry key (secrets.ts), a registry version that every change bumps, and per-edge slice versions so that an
// edge polling GET /v1/edges/{id}/registry with If-None-Match gets 304 until something in its slice
// changed. Every change and its audit entry commit in one transaction.
import { createHash } from 'node:crypto';
import type { AuditLog } from '../audit/log.ts';
import { CloudError } from '../errors.ts';
import type { CloudStore } from '../store/db.ts';
import { pushKeys, recordToInput, validateDevice, type DeviceRecord, type Issue, type ValidationContext } from './model.ts';
import { makeVerifier, wrapSha256 } from '@citysense/proto';
import { newHj212Password, newSecret, openVerifier, sealVerifier } from './secrets.ts';
import { maskDevice } from './personal.ts';

const MIGRATION = `
  CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    profile TEXT NOT NULL,
    district TEXT NOT NULL,
    site TEXT,
    lat REAL,
    lon REAL,
    address TEXT,
    owner_unit TEXT,
    expected_interval_ms INTEGER,
    edge TEXT,
    tags TEXT NOT NULL DEFAULT '{}',
    credential TEXT NOT NULL,
    secret_sha256 TEXT,
    hj212_mn TEXT UNIQUE,
    hj212_password_sha256 TEXT,
    opcua TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    secret_rotated_at INTEGER
  );
  CREATE INDEX devices_district ON devices (district, id);
  CREATE INDEX devices_edge ON devices (edge, id);
  CREATE TABLE registry_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
  INSERT INTO registry_meta (key, value) VALUES ('version', 0);
  CREATE TABLE registry_edges (edge TEXT PRIMARY KEY, version INTEGER NOT NULL);
`;

// Devices reporting through CTWing / OneNET (issue 18): their platform identities, and one row per identity
// key so that two devices never share one (an edge refuses a registry slice where they do).
const PUSH_MIGRATION = `
  ALTER TABLE devices ADD COLUMN push TEXT;
  CREATE TABLE device_push_keys (key TEXT PRIMARY KEY, device TEXT NOT NULL);
  CREATE INDEX device_push_keys_device ON device_push_keys (device);
`;

// Issue 11: verifiers sealed under the registry key replace the unsalted SHA-256 columns, which stay
// (SQLite keeps old columns) but are emptied by migrateLegacyHashes() at start.
const MIGRATION_V2 = `
  ALTER TABLE devices ADD COLUMN secret_sealed TEXT;
  ALTER TABLE devices ADD COLUMN hj212_password_sealed TEXT;
`;

interface Row {
  id: string;
  family: string;
  profile: string;
  district: string;
  site: string | null;
  lat: number | null;
  lon: number | null;
  address: string | null;
  owner_unit: string | null;
  expected_interval_ms: number | null;
  edge: string | null;
  tags: string;
  credential: string;
  secret_sha256: string | null;
  hj212_mn: string | null;
  hj212_password_sha256: string | null;
  secret_sealed: string | null;
  hj212_password_sealed: string | null;
  opcua: string | null;
  push: string | null;
  gb26875_address?: string | null;
  version: number;
  created_at: number;
  created_by: string;
  updated_at: number;
  updated_by: string;
  secret_rotated_at: number | null;
}

/** A device as the API shows it (no secret, no hash). */
export interface DeviceView extends DeviceRecord {
  /** The edge whose registry slice holds the device: `edge`, else registry.districtEdges, else registry.defaultEdge. */
  assigned_edge: string | null;
  has_hj212_password: boolean;
  version: number;
  created_at: number;
  created_by: string;
  updated_at: number;
  updated_by: string;
  secret_rotated_at: number | null;
}

/** Shown once, in the answer that made them. */
export interface Credentials {
  secret?: string;
  hj212_password?: string;
}

/** One entry of an edge's registry (edge/src/config/schema.ts deviceSchema). */
export interface EdgeRegistryEntry {
  id: string;
  family: string;
  district: string;
  profile: string;
  /** Salted scrypt verifier of the MQTT secret (never the secret, never an unsalted hash). */
  secretHash?: string;
  tags?: Record<string, string>;
  hj212?: { mn: string; passwordHash?: string };
  opcua?: { server: string; vars: Record<string, string> };
  ctwing?: { deviceId?: string; imei?: string; productId?: string };
  onenet?: { deviceId?: string; imei?: string; productId?: string; deviceName?: string };
  gb26875?: { address: string };
}

export interface ImportRow {
  /** Line in the file where the row starts (1 = the header). */
  line: number;
  /** The row as a device input, or why it could not be read at all. */
  input: Record<string, unknown> | { malformed: string };
}

export interface ImportRowResult {
  line: number;
  id: string | null;
  status: 'created' | 'refused';
  credentials?: Credentials;
  error?: 'DEVICE_INVALID' | 'DEVICE_EXISTS' | 'CSV_ROW_MALFORMED';
  message?: string;
  issues?: Issue[];
}

export interface ImportResult {
  mode: 'atomic' | 'partial';
  rows: number;
  imported: number;
  refused: number;
  version: number;
  results: ImportRowResult[];
}

export interface DeviceFilter {
  district?: string | undefined;
  family?: string | undefined;
  edge?: string | undefined;
  profile?: string | undefined;
  /** Ids after this one (the `next` cursor). */
  after?: string | undefined;
  limit: number;
}

export interface EdgeAssignment {
  /** district → edge id, for devices that name no edge. */
  districtEdges: Readonly<Record<string, string>>;
  /** Edge for devices that name none and whose district is not mapped. */
  defaultEdge: string | undefined;
}

/** What PATCH /v1/devices/{id} may change (null removes an optional field). Credentials change by rotation. */
export const PATCHABLE = new Set(['district', 'profile', 'site', 'location', 'owner_unit', 'expected_interval', 'expected_interval_ms', 'edge', 'tags', 'hj212', 'opcua', 'ctwing', 'onenet', 'gb26875']);

const parseJson = <T>(s: string | null, fallback: T): T => (s ? (JSON.parse(s) as T) : fallback);

export class RegistryStore {
  private readonly q;
  /** Short hash of the edge assignment config: part of every slice ETag (a config change moves devices). */
  readonly assignmentHash: string;

  constructor(
    private readonly store: CloudStore,
    private readonly audit: AuditLog,
    private readonly ctx: ValidationContext,
    private readonly assignment: EdgeAssignment,
    /** The registry key (secrets.ts loadRegistryKey): seals and opens the verifiers. */
    private readonly key: Buffer,
    private readonly now: () => number = Date.now,
  ) {
    store.migrate('registry-v1', MIGRATION);
    store.migrate('registry-push-v1', PUSH_MIGRATION);
    store.migrate('registry-v2-sealed-verifiers', MIGRATION_V2);
    // GB/T 26875.3 transmission devices (issue 13): identified by their 6-byte source address.
    store.migrate(
      'registry-v2-gb26875',
      `ALTER TABLE devices ADD COLUMN gb26875_address TEXT;
       CREATE UNIQUE INDEX devices_gb26875_address ON devices (gb26875_address) WHERE gb26875_address IS NOT NULL;`,
    );
    const db = store.db;
    this.assignmentHash = createHash('sha256')
      .update(JSON.stringify([Object.entries(assignment.districtEdges).sort(), assignment.defaultEdge ?? null]))
      .digest('hex')
      .slice(0, 12);
    this.q = {
      get: db.prepare('SELECT * FROM devices WHERE id = ?'),
      exists: db.prepare('SELECT 1 FROM devices WHERE id = ?'),
      mnOwner: db.prepare('SELECT id FROM devices WHERE hj212_mn = ?'),
      gbOwner: db.prepare('SELECT id FROM devices WHERE gb26875_address = ?'),
      setGb: db.prepare('UPDATE devices SET gb26875_address = ? WHERE id = ?'),
      insert: db.prepare(`INSERT INTO devices (id, family, profile, district, site, lat, lon, address, owner_unit, expected_interval_ms, edge, tags,
          credential, secret_sealed, hj212_mn, hj212_password_sealed, opcua, version, created_at, created_by, updated_at, updated_by, secret_rotated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`),
      update: db.prepare(`UPDATE devices SET profile = ?, district = ?, site = ?, lat = ?, lon = ?, address = ?, owner_unit = ?, expected_interval_ms = ?,
          edge = ?, tags = ?, hj212_mn = ?, opcua = ?, version = ?, updated_at = ?, updated_by = ? WHERE id = ?`),
      setSecret: db.prepare('UPDATE devices SET secret_sealed = ?, secret_sha256 = NULL, version = ?, updated_at = ?, updated_by = ?, secret_rotated_at = ? WHERE id = ?'),
      setHj212Password: db.prepare('UPDATE devices SET hj212_password_sealed = ?, hj212_password_sha256 = NULL, version = ?, updated_at = ?, updated_by = ?, secret_rotated_at = ? WHERE id = ?'),
      legacy: db.prepare('SELECT id, secret_sha256, hj212_password_sha256 FROM devices WHERE secret_sha256 IS NOT NULL OR hj212_password_sha256 IS NOT NULL'),
      sealLegacy: db.prepare(`UPDATE devices SET secret_sealed = coalesce(?, secret_sealed), hj212_password_sealed = coalesce(?, hj212_password_sealed),
          secret_sha256 = NULL, hj212_password_sha256 = NULL WHERE id = ?`),
      touchAllEdges: db.prepare('UPDATE registry_edges SET version = ?'),
      delete: db.prepare('DELETE FROM devices WHERE id = ?'),
      setPush: db.prepare('UPDATE devices SET push = ? WHERE id = ?'),
      pushOwner: db.prepare('SELECT device FROM device_push_keys WHERE key = ?'),
      addPushKey: db.prepare('INSERT INTO device_push_keys (key, device) VALUES (?, ?)'),
      dropPushKeys: db.prepare('DELETE FROM device_push_keys WHERE device = ?'),
      version: db.prepare("SELECT value FROM registry_meta WHERE key = 'version'"),
      // Versions are never reused, even after a restore from an older backup: a new one is at least the
      // clock in ms, so an edge's cached ETag can never name different content.
      bump: db.prepare("UPDATE registry_meta SET value = max(value + 1, ?) WHERE key = 'version' RETURNING value"),
      edgeVersion: db.prepare('SELECT version FROM registry_edges WHERE edge = ?'),
      setEdgeVersion: db.prepare('INSERT INTO registry_edges (edge, version) VALUES (?, ?) ON CONFLICT DO UPDATE SET version = excluded.version'),
      districts: db.prepare('SELECT district, family, COUNT(*) AS n FROM devices GROUP BY district, family ORDER BY district, family'),
      inDistrict: db.prepare('SELECT id, family, expected_interval_ms FROM devices WHERE district = ?'),
      count: db.prepare('SELECT COUNT(*) AS n FROM devices'),
    };
  }

  // --- reading ---

  get version(): number {
    return Number((this.q.version.get() as { value: number }).value);
  }

  get size(): number {
    return Number((this.q.count.get() as { n: number }).n);
  }

  get(id: string): DeviceView | undefined {
    const r = this.q.get.get(id) as Row | undefined;
    return r ? this.view(r) : undefined;
  }

  list(f: DeviceFilter): DeviceView[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (f.district) (where.push('district = ?'), args.push(f.district));
    if (f.family) (where.push('family = ?'), args.push(f.family));
    if (f.edge) (where.push('edge = ?'), args.push(f.edge));
    if (f.profile) (where.push('profile = ?'), args.push(f.profile));
    if (f.after) (where.push('id > ?'), args.push(f.after));
    const sql = `SELECT * FROM devices ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`;
    return (this.store.db.prepare(sql).all(...args, f.limit) as unknown as Row[]).map((r) => this.view(r));
  }

  /** Devices per district and family. */
  districts(): { district: string; family: string; n: number }[] {
    return (this.q.districts.all() as { district: string; family: string; n: number }[]).map((r) => ({ ...r, n: Number(r.n) }));
  }

  devicesInDistrict(district: string): { id: string; family: string; expected_interval_ms: number | null }[] {
    return this.q.inDistrict.all(district) as { id: string; family: string; expected_interval_ms: number | null }[];
  }

  /** Which edge's slice holds a device. */
  edgeFor(d: { edge: string | null; district: string }): string | null {
    return d.edge ?? this.assignment.districtEdges[d.district] ?? this.assignment.defaultEdge ?? null;
  }

  /** The slice version of an edge: changes whenever a device enters, leaves or changes in its slice. */
  sliceVersion(edge: string): number {
    const r = this.q.edgeVersion.get(edge) as { version: number } | undefined;
    return r ? Number(r.version) : 0;
  }

  sliceEtag(edge: string): string {
    return `"r${this.sliceVersion(edge)}-${this.assignmentHash}"`;
  }

  /** The devices of one edge, in the edge's registry shape. */
  slice(edge: string): { version: number; devices: EdgeRegistryEntry[] } {
    const mapped = Object.entries(this.assignment.districtEdges);
    const mine = mapped.filter(([, e]) => e === edge).map(([d]) => d);
    const cond = ['edge = ?'];
    const args: string[] = [edge];
    if (mine.length) {
      cond.push(`(edge IS NULL AND district IN (${mine.map(() => '?').join(', ')}))`);
      args.push(...mine);
    }
    if (this.assignment.defaultEdge === edge) {
      cond.push(mapped.length ? `(edge IS NULL AND district NOT IN (${mapped.map(() => '?').join(', ')}))` : 'edge IS NULL');
      args.push(...mapped.map(([d]) => d));
    }
    return this.store.transaction(() => {
      const version = this.sliceVersion(edge);
      const rows = this.store.db.prepare(`SELECT * FROM devices WHERE ${cond.join(' OR ')} ORDER BY id`).all(...args) as unknown as Row[];
      return { version, devices: rows.map((r) => toEdgeEntry(r, this.key)) };
    });
  }

  // --- changing (each in one transaction with its audit entries) ---

  /**
   * Replaces the unsalted SHA-256 hashes of a registry from before issue 11 by sealed verifiers that wrap
   * them (scrypt-sha256: the devices keep their secrets), and makes every edge fetch its slice again.
   * Run at start; ~3 ms of scrypt per credential, once.
   */
  async migrateLegacyHashes(): Promise<number> {
    const rows = this.q.legacy.all() as { id: string; secret_sha256: string | null; hj212_password_sha256: string | null }[];
    if (rows.length === 0) return 0;
    const sealed: [string | null, string | null, string][] = [];
    for (const r of rows) {
      const s = r.secret_sha256 ? sealVerifier(this.key, await wrapSha256(r.secret_sha256)) : null;
      const p = r.hj212_password_sha256 ? sealVerifier(this.key, await wrapSha256(r.hj212_password_sha256)) : null;
      sealed.push([s, p, r.id]);
    }
    this.store.transaction(() => {
      for (const row of sealed) this.q.sealLegacy.run(...row);
      this.q.touchAllEdges.run(this.bump());
    });
    return rows.length;
  }

  async create(input: unknown, actor: string): Promise<{ device: DeviceView; credentials: Credentials }> {
    const v = validateDevice(input, this.ctx);
    if (!v.ok) throw new CloudError('DEVICE_INVALID', v.issues.map((i) => `${i.field}: ${i.message}`).join('; '));
    // Hashed before the transaction: scrypt runs off the event loop, the transaction stays synchronous.
    const { credentials, secretHash, pwHash } = await credentialsFor(v, this.key);
    return this.store.transaction(() => {
      const clash = this.clash(v.device);
      if (clash) throw new CloudError(clash.code, clash.message);
      const version = this.bump();
      this.insert(v.device, secretHash, pwHash, version, actor);
      this.touchEdges(version, this.edgeFor(v.device));
      this.audit.record({ actor, action: 'device.create', target: `device:${v.device.id}`, details: { device: summary(v.device), credentials: Object.keys(credentials) } });
      return { device: this.get(v.device.id)!, credentials };
    });
  }

  /**
   * Registers many devices in one transaction. `atomic`: every row must be good, or nothing is stored
   * and the bad rows are listed. `partial`: the good rows are stored, the bad ones listed.
   */
  async import(rows: readonly ImportRow[], mode: 'atomic' | 'partial', actor: string): Promise<ImportResult> {
    const results: ImportRowResult[] = [];
    const good: { r: ImportRowResult; v: Extract<ReturnType<typeof validateDevice>, { ok: true }> }[] = [];
    const ids = new Map<string, number>();
    const mns = new Map<string, number>();
    const pushes = new Map<string, number>();
    const gbs = new Map<string, number>();
    for (const row of rows) {
      if ('malformed' in row.input) {
        results.push({ line: row.line, id: null, status: 'refused', error: 'CSV_ROW_MALFORMED', message: row.input.malformed as string });
        continue;
      }
      const id = typeof row.input.id === 'string' ? row.input.id : null;
      const v = validateDevice(row.input, this.ctx);
      if (!v.ok) {
        results.push({ line: row.line, id, status: 'refused', error: 'DEVICE_INVALID', message: v.issues.map((i) => `${i.field}: ${i.message}`).join('; '), issues: v.issues });
        continue;
      }
      const d = v.device;
      const dupLine = ids.get(d.id);
      const mnLine = d.hj212 ? mns.get(d.hj212.mn) : undefined;
      const gbLine = d.gb26875 ? gbs.get(d.gb26875.address) : undefined;
      const clash = this.clash(d);
      const pushKey = pushKeys(d).find((k) => pushes.has(k));
      if (dupLine !== undefined) {
        results.push({ line: row.line, id, status: 'refused', error: 'DEVICE_EXISTS', message: `device id ${d.id} is also on line ${dupLine}` });
      } else if (mnLine !== undefined) {
        results.push({ line: row.line, id, status: 'refused', error: 'DEVICE_EXISTS', message: `hj212_mn ${d.hj212!.mn} is also on line ${mnLine}` });
      } else if (pushKey !== undefined) {
        results.push({ line: row.line, id, status: 'refused', error: 'DEVICE_EXISTS', message: `platform identity ${pushKey.split(':').slice(0, 2).join(' ')} is also on line ${pushes.get(pushKey)}` });
      } else if (gbLine !== undefined) {
        results.push({ line: row.line, id, status: 'refused', error: 'DEVICE_EXISTS', message: `gb26875_address ${d.gb26875!.address} is also on line ${gbLine}` });
      } else if (clash) {
        results.push({ line: row.line, id, status: 'refused', error: clash.code, message: clash.message });
      } else {
        const r: ImportRowResult = { line: row.line, id, status: 'created' };
        results.push(r);
        good.push({ r, v });
      }
      if (dupLine === undefined) ids.set(d.id, row.line);
      if (d.hj212 && mnLine === undefined) mns.set(d.hj212.mn, row.line);
      if (pushKey === undefined) for (const k of pushKeys(d)) pushes.set(k, row.line);
      if (d.gb26875 && gbLine === undefined) gbs.set(d.gb26875.address, row.line);
    }
    const refused = results.length - good.length;
    if (mode === 'atomic' && refused > 0) {
      for (const g of good) g.r.status = 'refused'; // nothing was stored: not "created"
      return { mode, rows: results.length, imported: 0, refused, version: this.version, results: results.filter((r) => r.error) };
    }
    if (good.length === 0) return { mode, rows: results.length, imported: 0, refused, version: this.version, results };
    const made = await mapLimit(good, 4, (g) => credentialsFor(g.v, this.key));
    const version = this.store.transaction(() => {
      const version = this.bump();
      const entry = this.audit.record({ actor, action: 'device.import', target: 'registry', details: { mode, rows: results.length, imported: good.length, refused } });
      const edges = new Set<string | null>();
      for (const [i, { r, v }] of good.entries()) {
        const { credentials, secretHash, pwHash } = made[i]!;
        this.insert(v.device, secretHash, pwHash, version, actor);
        edges.add(this.edgeFor(v.device));
        r.credentials = credentials;
        this.audit.record({ actor, action: 'device.create', target: `device:${v.device.id}`, details: { via: 'import', import: entry.seq, line: r.line, device: summary(v.device) } });
      }
      this.touchEdges(version, ...edges);
      return version;
    });
    return { mode, rows: results.length, imported: good.length, refused, version, results };
  }

  update(id: string, patch: Record<string, unknown>, actor: string): DeviceView {
    return this.store.transaction(() => {
      const row = this.q.get.get(id) as Row | undefined;
      if (!row) throw new CloudError('DEVICE_NOT_FOUND', id);
      const before = rowToRecord(row);
      const merged: Record<string, unknown> = recordToInput(before);
      for (const [k, val] of Object.entries(patch)) {
        if (k === 'id' || k === 'family') throw new CloudError('DEVICE_INVALID', `${k}: cannot change; delete the device and register it again`);
        if (!PATCHABLE.has(k)) throw new CloudError('DEVICE_INVALID', `${k}: unknown field (a PATCH may set ${[...PATCHABLE].join(', ')})`);
        if (k === 'expected_interval' || k === 'expected_interval_ms') delete merged.expected_interval_ms;
        if (k === 'hj212' && val && typeof val === 'object' && 'password' in val) {
          throw new CloudError('DEVICE_INVALID', 'hj212.password: change it with POST /v1/devices/{id}/rotate-secret');
        }
        if (val === null) delete merged[k];
        else merged[k] = val;
      }
      const v = validateDevice(merged, this.ctx);
      if (!v.ok) throw new CloudError('DEVICE_INVALID', v.issues.map((i) => `${i.field}: ${i.message}`).join('; '));
      const d = v.device;
      if (d.credential !== before.credential) {
        throw new CloudError('DEVICE_INVALID', `profile: "${d.profile}" logs in differently (${d.credential}) from "${before.profile}" (${before.credential}); delete the device and register it again`);
      }
      if (d.hj212 && d.hj212.mn !== before.hj212?.mn) {
        const owner = this.q.mnOwner.get(d.hj212.mn) as { id: string } | undefined;
        if (owner && owner.id !== id) throw new CloudError('DEVICE_EXISTS', `hj212.mn ${d.hj212.mn} is device ${owner.id}'s`);
      }
      for (const k of pushKeys(d)) {
        const owner = this.q.pushOwner.get(k) as { device: string } | undefined;
        if (owner && owner.device !== id) throw new CloudError('DEVICE_EXISTS', `platform identity ${k.split(':').slice(0, 2).join(' ')} is device ${owner.device}'s`);
      }
      if (d.gb26875 && d.gb26875.address !== before.gb26875?.address) {
        const owner = this.q.gbOwner.get(d.gb26875.address) as { id: string } | undefined;
        if (owner && owner.id !== id) throw new CloudError('DEVICE_EXISTS', `gb26875.address ${d.gb26875.address} is device ${owner.id}'s`);
      }
      const version = this.bump();
      const now = this.now();
      this.writePush(d);
      this.q.setGb.run(d.gb26875?.address ?? null, id);
      this.q.update.run(
        d.profile, d.district, d.site, d.location?.lat ?? null, d.location?.lon ?? null, d.location?.address ?? null, d.owner_unit,
        d.expected_interval_ms, d.edge, JSON.stringify(d.tags), d.hj212?.mn ?? null, d.opcua ? JSON.stringify(d.opcua) : null, version, now, actor, id,
      );
      this.touchEdges(version, this.edgeFor(before), this.edgeFor(d));
      // Personal values enter the audit log masked (personal.ts): the log outlives the device.
      const changes: Record<string, { from: unknown; to: unknown }> = {};
      const mb = maskDevice(before);
      const md = maskDevice(d);
      for (const k of Object.keys(d) as (keyof DeviceRecord)[]) {
        if (JSON.stringify(before[k]) !== JSON.stringify(d[k])) changes[k] = { from: mb[k], to: md[k] };
      }
      this.audit.record({ actor, action: 'device.update', target: `device:${id}`, details: { changes } });
      return this.get(id)!;
    });
  }

  remove(id: string, actor: string): void {
    this.store.transaction(() => {
      const row = this.q.get.get(id) as Row | undefined;
      if (!row) throw new CloudError('DEVICE_NOT_FOUND', id);
      this.q.delete.run(id);
      this.q.dropPushKeys.run(id);
      const version = this.bump();
      this.touchEdges(version, this.edgeFor(row));
      // Erasure: the row held the device's personal data; older audit entries about it may still hold
      // them whole (written before masking), so they are masked there too.
      const gone = rowToRecord(row);
      const masked = maskDevice(gone);
      const erase: [string, string][] = [];
      if (gone.owner_unit) erase.push([gone.owner_unit, masked.owner_unit!]);
      if (gone.location?.address) erase.push([gone.location.address, masked.location!.address!]);
      if (gone.ctwing?.imei) erase.push([gone.ctwing.imei, masked.ctwing!.imei!]);
      if (gone.onenet?.imei) erase.push([gone.onenet.imei, masked.onenet!.imei!]);
      this.audit.redact(`device:${id}`, erase);
      this.audit.record({ actor, action: 'device.delete', target: `device:${id}`, details: { device: summary(gone) } });
    });
  }

  /** A new secret (or HJ 212 password), returned once; the old one works until the edge has synced. */
  async rotate(id: string, which: 'mqtt' | 'hj212' | undefined, actor: string): Promise<{ device: DeviceView; credentials: Credentials }> {
    const kindOf = (row: Row | undefined): 'mqtt' | 'hj212' => {
      if (!row) throw new CloudError('DEVICE_NOT_FOUND', id);
      const kind = which ?? (row.credential === 'none' ? undefined : (row.credential as 'mqtt' | 'hj212'));
      if (!kind) throw new CloudError('DEVICE_NO_CREDENTIAL', `${id} uses profile ${row.profile}`);
      if (kind === 'mqtt' && row.credential !== 'mqtt') throw new CloudError('DEVICE_NO_CREDENTIAL', `${id} has no MQTT login (profile ${row.profile})`);
      if (kind === 'hj212' && row.hj212_mn === null) throw new CloudError('DEVICE_NO_CREDENTIAL', `${id} is no HJ 212 station (no hj212.mn)`);
      return kind;
    };
    const kind = kindOf(this.q.get.get(id) as Row | undefined);
    const plain = kind === 'mqtt' ? newSecret() : newHj212Password();
    const sealed = sealVerifier(this.key, await makeVerifier(plain));
    return this.store.transaction(() => {
      const row = this.q.get.get(id) as Row | undefined;
      if (kindOf(row) !== kind) throw new CloudError('DEVICE_NO_CREDENTIAL', `${id} changed while its credential was made; rotate again`);
      const version = this.bump();
      const now = this.now();
      const credentials: Credentials = {};
      if (kind === 'mqtt') {
        credentials.secret = plain;
        this.q.setSecret.run(sealed, version, now, actor, now, id);
      } else {
        credentials.hj212_password = plain;
        this.q.setHj212Password.run(sealed, version, now, actor, now, id);
      }
      this.touchEdges(version, this.edgeFor(row!));
      this.audit.record({ actor, action: 'device.rotate_secret', target: `device:${id}`, details: { credential: kind } });
      return { device: this.get(id)!, credentials };
    });
  }

  // --- internals ---

  private clash(d: DeviceRecord): { code: 'DEVICE_EXISTS'; message: string } | undefined {
    if (this.q.exists.get(d.id)) return { code: 'DEVICE_EXISTS', message: `device ${d.id} is already registered` };
    if (d.hj212) {
      const owner = this.q.mnOwner.get(d.hj212.mn) as { id: string } | undefined;
      if (owner) return { code: 'DEVICE_EXISTS', message: `hj212.mn ${d.hj212.mn} is device ${owner.id}'s` };
    }
    for (const k of pushKeys(d)) {
      const owner = this.q.pushOwner.get(k) as { device: string } | undefined;
      if (owner) return { code: 'DEVICE_EXISTS', message: `platform identity ${k.split(':').slice(0, 2).join(' ')} is device ${owner.device}'s` };
    }
    if (d.gb26875) {
      const owner = this.q.gbOwner.get(d.gb26875.address) as { id: string } | undefined;
      if (owner) return { code: 'DEVICE_EXISTS', message: `gb26875.address ${d.gb26875.address} is device ${owner.id}'s` };
    }
    return undefined;
  }

  /** The device's platform identities and their unique keys. */
  private writePush(d: DeviceRecord): void {
    this.q.dropPushKeys.run(d.id);
    for (const k of pushKeys(d)) this.q.addPushKey.run(k, d.id);
    const push = d.ctwing || d.onenet ? JSON.stringify({ ...(d.ctwing ? { ctwing: d.ctwing } : {}), ...(d.onenet ? { onenet: d.onenet } : {}) }) : null;
    this.q.setPush.run(push, d.id);
  }

  private insert(d: DeviceRecord, secretHash: string | null, pwHash: string | null, version: number, actor: string): void {
    const now = this.now();
    this.q.insert.run(
      d.id, d.family, d.profile, d.district, d.site, d.location?.lat ?? null, d.location?.lon ?? null, d.location?.address ?? null, d.owner_unit,
      d.expected_interval_ms, d.edge, JSON.stringify(d.tags), d.credential, secretHash, d.hj212?.mn ?? null, pwHash,
      d.opcua ? JSON.stringify(d.opcua) : null, version, now, actor, now, actor,
    );
    if (d.ctwing || d.onenet) this.writePush(d);
    if (d.gb26875) this.q.setGb.run(d.gb26875.address, d.id);
  }

  private bump(): number {
    return Number((this.q.bump.get(Date.now()) as { value: number }).value);
  }

  private touchEdges(version: number, ...edges: (string | null)[]): void {
    for (const e of new Set(edges)) if (e !== null) this.q.setEdgeVersion.run(e, version);
  }

  private view(r: Row): DeviceView {
    const d = rowToRecord(r);
    return {
      ...d,
      assigned_edge: this.edgeFor(d),
      has_hj212_password: r.hj212_password_sealed !== null || r.hj212_password_sha256 !== null,
      version: Number(r.version),
      created_at: Number(r.created_at),
      created_by: r.created_by,
      updated_at: Number(r.updated_at),
      updated_by: r.updated_by,
      secret_rotated_at: r.secret_rotated_at === null ? null : Number(r.secret_rotated_at),
    };
  }
}

/** The new credentials and their sealed verifiers (secretHash / pwHash: what the row keeps). */
async function credentialsFor(
  v: Extract<ReturnType<typeof validateDevice>, { ok: true }>,
  key: Buffer,
): Promise<{ credentials: Credentials; secretHash: string | null; pwHash: string | null }> {
  const credentials: Credentials = {};
  let secretHash: string | null = null;
  let pwHash: string | null = null;
  if (v.device.credential === 'mqtt') {
    // A secret the operator chose is not echoed: they have it already.
    const secret = v.secret ?? newSecret();
    if (v.secret === undefined) credentials.secret = secret;
    secretHash = sealVerifier(key, await makeVerifier(secret));
  }
  if (v.device.hj212) {
    if (v.hj212Password !== undefined) pwHash = sealVerifier(key, await makeVerifier(v.hj212Password));
    else if (v.device.credential === 'hj212') {
      credentials.hj212_password = newHj212Password();
      pwHash = sealVerifier(key, await makeVerifier(credentials.hj212_password));
    }
  }
  return { credentials, secretHash, pwHash };
}

/** fn over items, at most `limit` at once (scrypt on the thread pool), results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function rowToRecord(r: Row): DeviceRecord {
  return {
    id: r.id,
    family: r.family as DeviceRecord['family'],
    profile: r.profile,
    district: r.district,
    site: r.site,
    location: r.lat !== null && r.lon !== null ? { lat: r.lat, lon: r.lon, ...(r.address ? { address: r.address } : {}) } : null,
    owner_unit: r.owner_unit,
    expected_interval_ms: r.expected_interval_ms === null ? null : Number(r.expected_interval_ms),
    edge: r.edge,
    tags: parseJson<Record<string, string>>(r.tags, {}),
    credential: r.credential as DeviceRecord['credential'],
    hj212: r.hj212_mn !== null ? { mn: r.hj212_mn } : null,
    opcua: parseJson<DeviceRecord['opcua']>(r.opcua, null),
    ctwing: parseJson<Pick<DeviceRecord, 'ctwing'>>(r.push, { ctwing: null }).ctwing ?? null,
    onenet: parseJson<Pick<DeviceRecord, 'onenet'>>(r.push, { onenet: null }).onenet ?? null,
    gb26875: r.gb26875_address ? { address: r.gb26875_address } : null,
  };
}

function toEdgeEntry(r: Row, key: Buffer): EdgeRegistryEntry {
  const e: EdgeRegistryEntry = { id: r.id, family: r.family, district: r.district, profile: r.profile };
  if (r.credential === 'mqtt' && r.secret_sealed) e.secretHash = openVerifier(key, r.secret_sealed);
  const tags = { ...parseJson<Record<string, string>>(r.tags, {}), ...(r.site !== null ? { site: r.site } : {}) };
  if (Object.keys(tags).length) e.tags = tags;
  if (r.hj212_mn !== null) e.hj212 = { mn: r.hj212_mn, ...(r.hj212_password_sealed ? { passwordHash: openVerifier(key, r.hj212_password_sealed) } : {}) };
  const opcua = parseJson<EdgeRegistryEntry['opcua'] | null>(r.opcua, null);
  if (opcua) e.opcua = opcua;
  // The edge's registry names the identities in camelCase (edge/src/inputs/http-push/config.ts).
  const push = parseJson<Pick<DeviceRecord, 'ctwing' | 'onenet'>>(r.push, { ctwing: null, onenet: null });
  if (push.ctwing) e.ctwing = defined({ deviceId: push.ctwing.device_id, imei: push.ctwing.imei, productId: push.ctwing.product_id });
  if (push.onenet) e.onenet = defined({ deviceId: push.onenet.device_id, imei: push.onenet.imei, productId: push.onenet.product_id, deviceName: push.onenet.device_name });
  if (r.gb26875_address) e.gb26875 = { address: r.gb26875_address };
  return e;
}

function defined<T extends Record<string, string | undefined>>(o: T): { [K in keyof T]?: string } {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as { [K in keyof T]?: string };
}

/** What an audit entry says about a device (no credentials). */
/** A device for the audit log: personal values masked (personal.ts), empty fields left out. */
function summary(d: DeviceRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(maskDevice(d))) if (v !== null && !(typeof v === 'object' && Object.keys(v).length === 0)) out[k] = v;
  return out;
}
