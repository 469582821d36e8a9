// NB-IoT device models and their frame layouts, read from the edge's own profile files
// (edge/profiles/nb-*.yaml, section `binary:`), validated by the edge's layout schema: the simulator
// encodes with exactly the layout the edge decodes with, so the two cannot drift apart.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { binaryLayoutSchema, type BinaryLayout } from '@citysense/edge/binary';
import { BUILTIN_PROFILES_DIR } from '@citysense/edge/profiles';

export const NB_PROFILES = ['nb-smoke-detector', 'nb-manhole-cover', 'nb-gas-detector'] as const;
export type NbProfile = (typeof NB_PROFILES)[number];

export function isNbProfile(name: string): name is NbProfile {
  return (NB_PROFILES as readonly string[]).includes(name);
}

export interface NbProfileInfo {
  id: NbProfile;
  family: string;
  model: string;
  layout: BinaryLayout;
}

const cache = new Map<string, NbProfileInfo>();

/** Reads `<dir>/<profile>.yaml` and returns its validated binary layout. Throws with the file and the reason. */
export function loadNbProfile(profile: NbProfile, dir: string = BUILTIN_PROFILES_DIR): NbProfileInfo {
  const file = join(dir, `${profile}.yaml`);
  const hit = cache.get(file);
  if (hit) return hit;
  let doc: unknown;
  try {
    doc = YAML.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  const d = (doc ?? {}) as { binary?: unknown; family?: unknown; model?: unknown };
  const parsed = binaryLayoutSchema.safeParse(d.binary);
  if (!parsed.success) throw new Error(`${file}: binary: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const info: NbProfileInfo = {
    id: profile,
    family: typeof d.family === 'string' ? d.family : 'nbiot',
    model: typeof d.model === 'string' ? d.model : profile,
    layout: parsed.data,
  };
  cache.set(file, info);
  return info;
}
