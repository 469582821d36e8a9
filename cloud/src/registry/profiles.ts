// What the cloud needs to know about device profiles to accept a registry entry that every edge will
// accept too: the profile ids, the family a profile is for, how its devices arrive (MQTT with a secret,
// HJ 212 with MN and password, OPC-UA with a server and NodeId placeholders). Read from the same profile
// files the edges load (edge/profiles/ by default, registry.profilesDirs), so a device the cloud accepts
// is never refused by an edge's buildRegistry for an unknown profile or a missing placeholder.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

/** The edge's built-in profiles, in this repository. */
export const DEFAULT_PROFILES_DIR = fileURLToPath(new URL('../../../edge/profiles/', import.meta.url));

export type ProfileInput = 'mqtt' | 'hj212-tcp' | 'opcua' | 'http-push' | 'gb26875-tcp';

export interface ProfileInfo {
  id: string;
  family: string | undefined;
  input: ProfileInput;
  /** OPC-UA NodeId placeholders a device must give in opcua.vars. */
  placeholders: string[];
  source: string;
}

export interface ProfileCatalog {
  get(id: string): ProfileInfo | undefined;
  ids(): string[];
  /** Files that could not be read as profiles (logged at start). */
  problems: string[];
}

const INPUTS: readonly string[] = ['mqtt', 'hj212-tcp', 'opcua', 'http-push', 'gb26875-tcp'];

export function loadProfileCatalog(dirs: readonly string[]): ProfileCatalog {
  const byId = new Map<string, ProfileInfo>();
  const problems: string[] = [];
  for (const dir of dirs) {
    let files: string[];
    try {
      files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
    } catch (err) {
      problems.push(`${dir}: ${(err as Error).message}`);
      continue;
    }
    for (const f of files) {
      const source = join(dir, f);
      try {
        const p = parseYaml(readFileSync(source, 'utf8')) as Record<string, unknown> | null;
        if (!p || typeof p.id !== 'string') throw new Error('no id');
        const input = (p.input ?? 'mqtt') as string;
        if (!INPUTS.includes(input)) throw new Error(`input ${input} is not one of ${INPUTS.join(', ')}`);
        const placeholders = new Set<string>();
        const nodes = (p.opcua as { nodes?: Record<string, unknown> } | undefined)?.nodes ?? {};
        for (const node of Object.values(nodes)) {
          if (typeof node === 'string') for (const m of node.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) placeholders.add(m[1]!);
        }
        // A later directory overrides an earlier one, as on the edge.
        byId.set(p.id, { id: p.id, family: typeof p.family === 'string' ? p.family : undefined, input: input as ProfileInput, placeholders: [...placeholders], source });
      } catch (err) {
        problems.push(`${source}: ${(err as Error).message}`);
      }
    }
  }
  return { get: (id) => byId.get(id), ids: () => [...byId.keys()].sort(), problems };
}
