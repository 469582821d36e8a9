// Which devices a run simulates and with what credentials: generated (`sim-<family>-<nnnn>`), taken from
// an edge registry file, or named one by one. Also writes a registry file the edge can load, so the edge
// and the simulator agree on every id and secret.
import { readFile, writeFile } from 'node:fs/promises';
import YAML from 'yaml';
import { getFamily } from './families/index.ts';
import { createRng } from './rng.ts';

export const DISTRICTS = ['jinshui', 'zhongyuan', 'erqi', 'guancheng', 'huiji'] as const;

export interface SimDevice {
  id: string;
  family: string;
  secret: string;
  district?: string;
  tags?: Record<string, string>;
}

export interface GenerateOptions {
  families: readonly string[];
  perFamily: number;
  seed: number | string;
  idPrefix?: string;
}

/** The id is a topic level (`devices/{id}/telemetry`), so MQTT's separator and wildcards cannot appear. */
export function checkId(id: string): void {
  if (id === '' || /[/+#\s]/.test(id)) {
    throw new Error(`device id "${id}" may not contain "/", "+", "#" or spaces (it is an MQTT topic level)`);
  }
}

/** A device's district, drawn from the seed and its id alone. */
export function drawDistrict(seed: number | string, id: string): string {
  return createRng('citysense-sim-district', seed, id).pick(DISTRICTS);
}

export function defaultSecret(id: string): string {
  return `${id}-secret`;
}

/**
 * `perFamily` devices of each family with ids `<prefix><family>-0001`…, secret `<id>-secret`, and a
 * district and model drawn from the seed (per device, so a device keeps them when the count changes).
 */
export function generateDevices(options: GenerateOptions): SimDevice[] {
  const prefix = options.idPrefix ?? 'sim-';
  const width = Math.max(4, String(options.perFamily).length);
  const devices: SimDevice[] = [];
  for (const familyName of options.families) {
    const family = getFamily(familyName);
    for (let n = 1; n <= options.perFamily; n++) {
      const id = `${prefix}${familyName}-${String(n).padStart(width, '0')}`;
      checkId(id);
      const rng = createRng('citysense-sim-registry', options.seed, id);
      devices.push({
        id,
        family: familyName,
        secret: defaultSecret(id),
        district: drawDistrict(options.seed, id),
        tags: { model: rng.pick(family.models) },
      });
    }
  }
  return devices;
}

/** `<id>:<secret>:<family>`; the secret may itself contain colons. */
export function parseDeviceSpec(spec: string): SimDevice {
  const first = spec.indexOf(':');
  const last = spec.lastIndexOf(':');
  if (first <= 0 || last === first || last === spec.length - 1) {
    throw new Error(`--device "${spec}": expected <id>:<secret>:<family>`);
  }
  const family = spec.slice(last + 1);
  getFamily(family);
  const id = spec.slice(0, first);
  checkId(id);
  return { id, secret: spec.slice(first + 1, last), family };
}

export interface LoadedRegistry {
  devices: SimDevice[];
  /** Entries the simulator cannot drive over MQTT (no secret, OPC-UA or HJ 212 devices...), with why. */
  skipped: Array<{ id: string; reason: string }>;
}

function asString(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number') return String(value);
  return undefined;
}

/**
 * Reads an edge registry: a YAML (or JSON) list of `{id, family, secret, district?, tags?}` under
 * `devices:` (the edge's shape), or a bare list. Entries this simulator cannot drive are reported, not fatal,
 * since the edge's registry legitimately holds devices of other transports.
 */
export function parseRegistry(text: string, source = 'registry'): LoadedRegistry {
  const doc: unknown = YAML.parse(text);
  const list: unknown =
    Array.isArray(doc) ? doc : typeof doc === 'object' && doc !== null ? (doc as { devices?: unknown }).devices : undefined;
  if (!Array.isArray(list)) {
    throw new Error(`${source}: expected a list of devices, or a mapping with a "devices" list`);
  }
  const devices: SimDevice[] = [];
  const skipped: LoadedRegistry['skipped'] = [];
  const seen = new Set<string>();
  list.forEach((entry: unknown, index) => {
    const where = `${source}: entry ${index + 1}`;
    if (typeof entry !== 'object' || entry === null) throw new Error(`${where}: not a mapping`);
    const e = entry as Record<string, unknown>;
    const id = asString(e.id ?? e.deviceId ?? e.device_id);
    if (!id) throw new Error(`${where}: missing "id"`);
    if (seen.has(id)) throw new Error(`${where}: duplicate id "${id}"`);
    seen.add(id);
    const family = asString(e.family);
    const secret = asString(e.secret);
    let familyOk = false;
    try {
      familyOk = family !== undefined && getFamily(family).transport === 'mqtt';
    } catch {
      familyOk = false;
    }
    if (!family || !familyOk) {
      skipped.push({ id, reason: `family "${family ?? ''}" has no MQTT simulator` });
      return;
    }
    if (!secret) {
      const why = e.secretSha256 !== undefined || e.secretHash !== undefined ? 'only a hash of the secret is stored (secretSha256 / secretHash)' : 'no secret (not an MQTT device)';
      skipped.push({ id, reason: why });
      return;
    }
    const device: SimDevice = { id, family, secret };
    const district = asString(e.district);
    if (district) device.district = district;
    if (typeof e.tags === 'object' && e.tags !== null) {
      device.tags = Object.fromEntries(
        Object.entries(e.tags as Record<string, unknown>).flatMap(([k, v]) => {
          const s = asString(v);
          return s === undefined ? [] : [[k, s]];
        }),
      );
    }
    devices.push(device);
  });
  return { devices, skipped };
}

export async function loadRegistry(file: string): Promise<LoadedRegistry> {
  return parseRegistry(await readFile(file, 'utf8'), file);
}

/**
 * The registry as YAML in the edge's registry-file shape (edge/src/config/schema.ts):
 * `devices:` list of `{id, family, secret, district, tags: {model}}`. The edge requires a district, so a
 * device without one gets the seeded draw a generated device would have had.
 */
export function registryYaml(devices: readonly SimDevice[], seed: number | string = 0): string {
  const entries = devices.map((d) => ({
    id: d.id,
    family: d.family,
    secret: d.secret,
    district: d.district ?? drawDistrict(seed, d.id),
    ...(d.tags ? { tags: d.tags } : {}),
  }));
  return `# Written by citysense device-sim; ids and secrets match a device-sim run with the same options.\n${YAML.stringify({ devices: entries })}`;
}

export async function writeRegistry(file: string, devices: readonly SimDevice[]): Promise<void> {
  await writeFile(file, registryYaml(devices), 'utf8');
}
