// Loads device profiles: the built-in ones shipped in edge/profiles/ and those in the folders named by
// `profiles.dirs`. One profile per file; a later folder may not redefine an id (that would be ambiguous).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument } from 'yaml';
import { EdgeError } from '../errors.ts';
import { formatIssues } from '../config/issues.ts';
import { profileSchema, type Profile } from './schema.ts';
import { ProfileRuntime } from './apply.ts';

export const BUILTIN_PROFILES_DIR = fileURLToPath(new URL('../../profiles/', import.meta.url));

export interface ProfileSet {
  get(id: string): ProfileRuntime | undefined;
  ids(): string[];
}

/** Validates one profile document; `name` is used in error lines. */
export function parseProfile(text: string, name: string): Profile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  if (doc.errors.length > 0) throw new EdgeError('PROFILE_SYNTAX', doc.errors.map((e) => `${name}: ${e.message}`).join('\n'));
  const r = profileSchema.safeParse(doc.toJS());
  if (!r.success) throw new EdgeError('PROFILE_INVALID', '\n' + formatIssues(r.error.issues, { name, doc, lines }).join('\n'));
  return r.data;
}

export function buildProfileSet(profiles: readonly { profile: Profile; source: string }[]): ProfileSet {
  const byId = new Map<string, { runtime: ProfileRuntime; source: string }>();
  for (const { profile, source } of profiles) {
    const prev = byId.get(profile.id);
    if (prev) throw new EdgeError('PROFILE_INVALID', `${source}: id: profile "${profile.id}" is already defined in ${prev.source}`);
    byId.set(profile.id, { runtime: new ProfileRuntime(profile), source });
  }
  return { get: (id) => byId.get(id)?.runtime, ids: () => [...byId.keys()].sort() };
}

export function loadProfiles(dirs: readonly string[], opts: { builtin?: boolean } = {}): ProfileSet {
  const all: { profile: Profile; source: string }[] = [];
  for (const dir of [...(opts.builtin === false ? [] : [BUILTIN_PROFILES_DIR]), ...dirs]) {
    let files: string[];
    try {
      files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/i.test(f)).sort();
    } catch (err) {
      throw new EdgeError('PROFILE_UNREADABLE', `${dir}: ${(err as Error).message}`, { cause: err });
    }
    for (const f of files) {
      const file = join(dir, f);
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new EdgeError('PROFILE_UNREADABLE', `${file}: ${(err as Error).message}`, { cause: err });
      }
      all.push({ profile: parseProfile(text, file), source: file });
    }
  }
  return buildProfileSet(all);
}
