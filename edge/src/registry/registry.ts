// The device registry: which devices may connect, with which secret, and what every reading of theirs
// is tagged with. Loaded once at start from a file (YAML or JSON) or from the config's inline list.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { Family } from '@citysense/proto';
import { EdgeError } from '../errors.ts';
import { registryFileSchema, type DeviceEntry } from '../config/schema.ts';
import { formatIssues } from '../config/issues.ts';

export interface Device {
  id: string;
  family: Family;
  district: string;
  /** district plus the registry's extra tags: what every reading and event of this device carries. */
  tags: Readonly<Record<string, string>>;
  profile: 'generic-json';
  /** sha256 of the MQTT secret; undefined = the device has no MQTT login (e.g. read over OPC-UA). */
  secretSha256: Buffer | undefined;
}

export interface DeviceRegistry {
  get(id: string): Device | undefined;
  readonly size: number;
}

function toDevice(d: DeviceEntry): Device {
  const secretSha256 =
    d.secretSha256 !== undefined
      ? Buffer.from(d.secretSha256, 'hex')
      : d.secret !== undefined
        ? createHash('sha256').update(d.secret, 'utf8').digest()
        : undefined;
  return Object.freeze({
    id: d.id,
    family: d.family,
    district: d.district,
    tags: Object.freeze({ ...d.tags, district: d.district }),
    profile: d.profile,
    secretSha256,
  });
}

/** Builds a registry from validated entries; duplicate ids are refused with both positions. */
export function buildRegistry(entries: readonly DeviceEntry[], source: string, pathPrefix = 'devices'): DeviceRegistry {
  const byId = new Map<string, Device>();
  const firstIndex = new Map<string, number>();
  entries.forEach((e, i) => {
    const prev = firstIndex.get(e.id);
    if (prev !== undefined) {
      throw new EdgeError(
        'REGISTRY_INVALID',
        `${source}: ${pathPrefix}[${i}].id: duplicate device id "${e.id}" (also ${pathPrefix}[${prev}])`,
      );
    }
    firstIndex.set(e.id, i);
    byId.set(e.id, toDevice(e));
  });
  return { get: (id) => byId.get(id), size: byId.size };
}

export function loadRegistryFile(file: string): DeviceRegistry {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new EdgeError('REGISTRY_UNREADABLE', `${file}: ${(err as Error).message}`, { cause: err });
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new EdgeError('REGISTRY_SYNTAX', doc.errors.map((e) => `${file}: ${e.message}`).join('\n'));
  }
  const r = registryFileSchema.safeParse(doc.toJS());
  if (!r.success) {
    throw new EdgeError('REGISTRY_INVALID', '\n' + formatIssues(r.error.issues, { name: file, doc, lines }).join('\n'));
  }
  return buildRegistry(r.data.devices, file);
}
