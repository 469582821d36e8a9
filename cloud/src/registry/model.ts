// A device in the cloud's registry, as the API takes it and as the store keeps it, and the checks that
// make every stored device one that each edge's registry accepts (edge/src/config/schema.ts deviceSchema
// and edge/src/registry/registry.ts checkAgainstProfile): the same id alphabet, tag names, profile
// fit. Validation reports every problem with its field, so a CSV row can be fixed in one go.
import { FAMILIES } from '@citysense/proto';
import { z } from 'zod';
import { parseDuration } from '../alerts/duration.ts';
import type { ProfileCatalog, ProfileInput } from './profiles.ts';

/** The edge's device id alphabet (MQTT topic level safe). */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
export const EDGE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const TAG_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Tags the edge sets itself (or that are columns here). */
const RESERVED_TAGS = ['device_id', 'district', 'family', 'site', 'model'];
// Tag values land in InfluxDB line protocol: no control characters, no backslash (a trailing one cannot
// be stored), not empty (InfluxDB has no empty tags).
const TAG_VALUE = /^[^\u0000-\u001f\u007f\\]+$/;
const TEXT = /^[^\u0000-\u001f\u007f]*$/;

export const CREDENTIALS = ['mqtt', 'hj212', 'none'] as const;
export type CredentialKind = (typeof CREDENTIALS)[number];

const tagValue = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(TAG_VALUE, 'must not contain control characters or a backslash')
    .refine((s) => s.trim() === s, 'must not start or end with spaces');

const platformId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, '1-128 letters, digits, . _ : -');
const imei = z.string().regex(/^\d{15}$/, 'an IMEI is 15 digits');

// Which fields are personal data (owner_unit, location.address, the IMEIs) and how they are masked:
// personal.ts (PERSONAL_FIELDS).

export interface CtwingIdentity {
  device_id?: string;
  imei?: string;
  product_id?: string;
}
export interface OnenetIdentity extends CtwingIdentity {
  device_name?: string;
}

const MIN_INTERVAL = 1_000;
const MAX_INTERVAL = 30 * 86_400_000;

/** A device as POST /v1/devices and each CSV row give it. */
export const DeviceInputSchema = z.strictObject({
  id: z.string().regex(DEVICE_ID_PATTERN, 'a device id is 1-128 letters, digits, . _ : - (starting with a letter or digit; no / + #)'),
  family: z.enum(FAMILIES, { error: `must be one of ${FAMILIES.join(', ')}` }),
  district: tagValue(64),
  profile: z.string().min(1).max(64).optional(),
  site: tagValue(128).optional(),
  location: z
    .strictObject({
      lat: z.number().min(-90).max(90),
      lon: z.number().min(-180).max(180),
      address: z.string().max(256).regex(TEXT, 'must not contain control characters').optional(),
    })
    .optional(),
  owner_unit: z.string().min(1).max(128).regex(TEXT, 'must not contain control characters').optional(),
  /** Milliseconds, or text such as "60s", "5m", "1h". */
  expected_interval: z.union([z.number().int(), z.string()]).optional(),
  expected_interval_ms: z.number().int().optional(),
  edge: z.string().regex(EDGE_ID_PATTERN, 'an edge id is 1-64 letters, digits, . _ -').optional(),
  tags: z.record(z.string().regex(TAG_KEY, 'tag names are a letter or _, then letters, digits, _'), tagValue(256)).optional(),
  hj212: z
    .strictObject({
      mn: z.string().regex(/^[0-9A-Za-z]{1,24}$/, 'an MN is 1-24 letters and digits'),
      password: z.string().min(1).max(64).regex(TEXT, 'must not contain control characters').optional(),
    })
    .optional(),
  /** GB/T 26875.3 transmission devices over TCP: the 6-byte source address, 12 hex digits in wire order. */
  gb26875: z
    .strictObject({
      address: z
        .string()
        .regex(/^[0-9a-fA-F]{12}$/, 'a GB/T 26875.3 address is 6 bytes: 12 hex digits, in the order the frame carries them')
        .transform((a) => a.toLowerCase()),
    })
    .optional(),
  opcua: z
    .strictObject({
      server: z.string().regex(EDGE_ID_PATTERN, 'an OPC-UA server id is 1-64 letters, digits, . _ -'),
      vars: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'placeholder names are letters, digits, _'), z.string().min(1).max(256)).default({}),
    })
    .optional(),
  /**
   * Devices reporting through an operator platform's push (issue 18, docs/protocols/ctwing.md, onenet.md):
   * how the platform names them. The IMEI is PERSONAL DATA (it identifies a subscriber's module, like the
   * IMSI, which citysense never stores): see personal.ts.
   */
  ctwing: z
    .strictObject({ device_id: platformId.optional(), imei: imei.optional(), product_id: platformId.optional() })
    .refine((c) => c.device_id !== undefined || c.imei !== undefined, { message: 'give ctwing.device_id or ctwing.imei' })
    .optional(),
  onenet: z
    .strictObject({ device_id: platformId.optional(), imei: imei.optional(), product_id: platformId.optional(), device_name: platformId.optional() })
    .refine((c) => c.device_id !== undefined || c.imei !== undefined || c.device_name !== undefined, { message: 'give onenet.device_id, onenet.imei or onenet.device_name (with product_id)' })
    .refine((c) => c.device_name === undefined || c.product_id !== undefined, { message: 'onenet.device_name needs onenet.product_id', path: ['product_id'] })
    .optional(),
  /** An MQTT secret chosen by the operator (e.g. one already flashed into the device); default: generated. */
  secret: z.string().min(8, 'secrets are at least 8 characters').max(256).regex(TEXT, 'must not contain control characters').optional(),
});
export type DeviceInput = z.input<typeof DeviceInputSchema>;

/** A device after validation: what the store keeps (secrets only as hashes, elsewhere). */
export interface DeviceRecord {
  id: string;
  family: (typeof FAMILIES)[number];
  profile: string;
  district: string;
  site: string | null;
  location: { lat: number; lon: number; address?: string } | null;
  owner_unit: string | null;
  expected_interval_ms: number | null;
  edge: string | null;
  tags: Record<string, string>;
  credential: CredentialKind;
  hj212: { mn: string } | null;
  opcua: { server: string; vars: Record<string, string> } | null;
  ctwing: CtwingIdentity | null;
  onenet: OnenetIdentity | null;
  gb26875: { address: string } | null;
}

export interface Issue {
  field: string;
  message: string;
}

export interface ValidationContext {
  profiles: ProfileCatalog;
  /** Edges the cloud knows (auth.edges); a device may only be given one of them. */
  edges: ReadonlySet<string>;
}

export type Validated =
  | { ok: true; device: DeviceRecord; secret: string | undefined; hj212Password: string | undefined; input: ProfileInput }
  | { ok: false; issues: Issue[] };

function fieldOf(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(device)';
}

/** Validates an API or CSV device; every problem is reported with its field. */
export function validateDevice(raw: unknown, ctx: ValidationContext): Validated {
  const r = DeviceInputSchema.safeParse(raw);
  if (!r.success) {
    return {
      ok: false,
      issues: r.error.issues.map((i) => ({
        field: fieldOf(i.path),
        message: i.code === 'unrecognized_keys' ? `unknown field(s) ${i.keys.join(', ')}` : i.message,
      })),
    };
  }
  const d = r.data;
  const issues: Issue[] = [];
  const profileId = d.profile ?? 'generic-json';
  const profile = ctx.profiles.get(profileId);
  if (!profile) issues.push({ field: 'profile', message: `no profile "${profileId}" (known: ${ctx.profiles.ids().join(', ')})` });
  else if (profile.family && profile.family !== d.family) issues.push({ field: 'family', message: `profile "${profileId}" is for ${profile.family} devices, not ${d.family}` });

  let interval: number | null = null;
  if (d.expected_interval !== undefined && d.expected_interval_ms !== undefined) {
    issues.push({ field: 'expected_interval', message: 'give expected_interval or expected_interval_ms, not both' });
  } else {
    const v = d.expected_interval ?? d.expected_interval_ms;
    const ms = typeof v === 'string' ? (/^\d+$/.test(v) ? Number(v) : parseDuration(v)) : v;
    if (v !== undefined && ms === undefined) issues.push({ field: 'expected_interval', message: `"${String(v)}" is not a duration: write milliseconds, or e.g. "60s", "5m", "1h"` });
    else if (ms !== undefined && (ms < MIN_INTERVAL || ms > MAX_INTERVAL)) issues.push({ field: 'expected_interval', message: 'must be between 1s and 30d' });
    else if (ms !== undefined) interval = ms;
  }
  if (d.edge !== undefined && !ctx.edges.has(d.edge)) {
    issues.push({ field: 'edge', message: `no edge "${d.edge}" in the cloud's auth.edges (known: ${[...ctx.edges].join(', ') || 'none'})` });
  }
  for (const k of Object.keys(d.tags ?? {})) {
    if (RESERVED_TAGS.includes(k)) issues.push({ field: `tags.${k}`, message: `tags may not set ${RESERVED_TAGS.join(', ')} (district and site are their own fields)` });
  }

  const input: ProfileInput = profile?.input ?? 'mqtt';
  let credential: CredentialKind = 'mqtt';
  if (input === 'opcua') {
    credential = 'none';
    if (!d.opcua) issues.push({ field: 'opcua', message: `profile "${profileId}" is read over OPC-UA: give opcua.server (and opcua.vars)` });
    for (const ph of profile?.placeholders ?? []) {
      if (d.opcua && d.opcua.vars[ph] === undefined) issues.push({ field: `opcua.vars.${ph}`, message: `profile "${profileId}" needs it in its NodeIds` });
    }
    if (d.secret !== undefined) issues.push({ field: 'secret', message: `profile "${profileId}" is read over OPC-UA: the device has no secret` });
    if (d.hj212 !== undefined) issues.push({ field: 'hj212', message: `profile "${profileId}" is read over OPC-UA, not HJ 212` });
  } else if (input === 'hj212-tcp') {
    credential = 'hj212';
    if (!d.hj212) issues.push({ field: 'hj212', message: `profile "${profileId}" arrives over the HJ 212 listener: give hj212.mn` });
    if (d.secret !== undefined) issues.push({ field: 'secret', message: `profile "${profileId}" logs in with its HJ 212 password (hj212.password), not an MQTT secret` });
    if (d.opcua !== undefined) issues.push({ field: 'opcua', message: `profile "${profileId}" arrives over HJ 212, not OPC-UA` });
  } else if (input === 'http-push') {
    credential = 'none';
    if (!d.ctwing && !d.onenet) issues.push({ field: 'ctwing', message: `profile "${profileId}" arrives by platform push: give ctwing or onenet` });
    if (d.secret !== undefined) issues.push({ field: 'secret', message: `profile "${profileId}" arrives by platform push: the device has no MQTT secret` });
  } else if (input === 'gb26875-tcp') {
    // Identified by its source address on the GB/T 26875.3 listener; the standard has no password.
    credential = 'none';
    if (!d.gb26875) issues.push({ field: 'gb26875', message: `profile "${profileId}" arrives over the GB/T 26875.3 listener: give gb26875.address` });
    if (d.secret !== undefined) issues.push({ field: 'secret', message: `profile "${profileId}" arrives over the GB/T 26875.3 listener: the device has no secret` });
    if (d.opcua !== undefined) issues.push({ field: 'opcua', message: `profile "${profileId}" arrives over GB/T 26875.3, not OPC-UA` });
  } else if (d.opcua !== undefined) {
    issues.push({ field: 'opcua', message: `profile "${profileId}" arrives over MQTT, not OPC-UA` });
  } else if ((d.ctwing || d.onenet) && d.secret === undefined) {
    // A push device with an MQTT profile (the same frame, forwarded by the platform): no MQTT login.
    credential = 'none';
  }
  // An MQTT panel (a DTU) may name its address too: the edge then refuses frames of another address.
  if (d.gb26875 !== undefined && input !== 'gb26875-tcp' && input !== 'mqtt') {
    issues.push({ field: 'gb26875', message: `profile "${profileId}" does not arrive over GB/T 26875.3` });
  }
  if (issues.length) return { ok: false, issues };

  const device: DeviceRecord = {
    id: d.id,
    family: d.family,
    profile: profileId,
    district: d.district,
    site: d.site ?? null,
    location: d.location ? { lat: d.location.lat, lon: d.location.lon, ...(d.location.address ? { address: d.location.address } : {}) } : null,
    owner_unit: d.owner_unit ?? null,
    expected_interval_ms: interval,
    edge: d.edge ?? null,
    tags: d.tags ?? {},
    credential,
    hj212: d.hj212 ? { mn: d.hj212.mn } : null,
    opcua: d.opcua ? { server: d.opcua.server, vars: d.opcua.vars } : null,
    ctwing: d.ctwing ?? null,
    onenet: d.onenet ?? null,
    gb26875: d.gb26875 ? { address: d.gb26875.address } : null,
  };
  return { ok: true, device, secret: d.secret, hj212Password: d.hj212?.password, input };
}

/** A stored device as DeviceInput again (for PATCH: merge, then validate the whole). */
export function recordToInput(d: DeviceRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { id: d.id, family: d.family, district: d.district, profile: d.profile };
  if (d.site !== null) out.site = d.site;
  if (d.location) out.location = d.location;
  if (d.owner_unit !== null) out.owner_unit = d.owner_unit;
  if (d.expected_interval_ms !== null) out.expected_interval_ms = d.expected_interval_ms;
  if (d.edge !== null) out.edge = d.edge;
  if (Object.keys(d.tags).length) out.tags = d.tags;
  if (d.hj212) out.hj212 = { mn: d.hj212.mn };
  if (d.opcua) out.opcua = d.opcua;
  if (d.ctwing) out.ctwing = d.ctwing;
  if (d.onenet) out.onenet = d.onenet;
  if (d.gb26875) out.gb26875 = d.gb26875;
  return out;
}

/** The keys under which a device's platform identities must be unique (the edge refuses a slice otherwise). */
export function pushKeys(d: Pick<DeviceRecord, 'ctwing' | 'onenet'>): string[] {
  const k: string[] = [];
  if (d.ctwing?.device_id) k.push(`ctwing:id:${d.ctwing.device_id}`);
  if (d.ctwing?.imei) k.push(`ctwing:imei:${d.ctwing.imei}`);
  if (d.onenet?.device_id) k.push(`onenet:id:${d.onenet.device_id}`);
  if (d.onenet?.imei) k.push(`onenet:imei:${d.onenet.imei}`);
  if (d.onenet?.device_name) k.push(`onenet:name:${d.onenet.product_id ?? ''}/${d.onenet.device_name}`);
  return k;
}
