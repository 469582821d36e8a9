// Reads the cloud's config file (YAML or JSON), applies environment overrides and validates the result.
// Every mistake is reported with its path (and the environment variable it came from), all at once.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { CloudConfigError } from '../errors.ts';
import { CloudConfigSchema, type CloudConfig } from './schema.ts';

type Env = Record<string, string | undefined>;

/** Environment variable → config path. Earlier names win over later ones for the same path. */
const ENV_OVERRIDES: { env: string; path: [string, string]; kind: 'string' | 'port' }[] = [
  { env: 'CITYSENSE_CLOUD_PORT', path: ['listen', 'port'], kind: 'port' },
  { env: 'PORT', path: ['listen', 'port'], kind: 'port' },
  { env: 'CITYSENSE_CLOUD_HOST', path: ['listen', 'host'], kind: 'string' },
  { env: 'INFLUX_URL', path: ['influx', 'url'], kind: 'string' },
  { env: 'INFLUX_DATABASE', path: ['influx', 'database'], kind: 'string' },
  { env: 'INFLUX_USERNAME', path: ['influx', 'username'], kind: 'string' },
  { env: 'INFLUX_PASSWORD', path: ['influx', 'password'], kind: 'string' },
  { env: 'CITYSENSE_CLOUD_LOG_LEVEL', path: ['log', 'level'], kind: 'string' },
  { env: 'CITYSENSE_CLOUD_STORE', path: ['store', 'path'], kind: 'string' },
];

export const CLOUD_ENV_VARS = ENV_OVERRIDES.map((o) => o.env);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

function describeIssues(error: z.ZodError, fromEnv: Map<string, string>): string[] {
  return error.issues.map((issue) => {
    const path = formatPath(issue.path);
    const env = fromEnv.get(path);
    return `${path}${env ? ` (from environment variable ${env})` : ''}: ${issue.message}`;
  });
}

/**
 * Validates a config object (as read from a file) with the environment's overrides applied. `source`
 * names the file in error messages.
 */
export function parseCloudConfig(raw: unknown, env: Env = {}, source = 'cloud config'): CloudConfig {
  if (raw === undefined || raw === null) raw = {};
  if (!isRecord(raw)) throw new CloudConfigError(`${source} must be a mapping of keys to values`);
  const merged: Record<string, unknown> = structuredClone(raw);
  const fromEnv = new Map<string, string>();
  for (const o of ENV_OVERRIDES) {
    const value = env[o.env];
    if (value === undefined || value === '') continue;
    const [section, key] = o.path;
    const path = `${section}.${key}`;
    if (fromEnv.has(path)) continue;
    const target = merged[section] ?? {};
    if (!isRecord(target)) continue; // the schema reports the section's own type error
    merged[section] = target;
    target[key] = o.kind === 'port' && /^\d+$/.test(value) ? Number(value) : value;
    fromEnv.set(path, o.env);
  }
  const result = CloudConfigSchema.safeParse(merged);
  if (!result.success) throw new CloudConfigError(`${source} is not valid`, describeIssues(result.error, fromEnv));
  return deepFreeze(result.data);
}

/** Reads and validates a YAML or JSON file (JSON is YAML, so one parser reads both). */
export function loadCloudConfig(file: string | undefined, env: Env = process.env): CloudConfig {
  if (!file) return parseCloudConfig({}, env, 'default config');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CloudConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    throw new CloudConfigError(`config file ${file} is not valid YAML/JSON: ${(err as Error).message}`);
  }
  return parseCloudConfig(raw, env, `config file ${file}`);
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
