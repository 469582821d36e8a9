// Reads the edge's configuration file (YAML or JSON), applies environment overrides, resolves paths
// relative to the file, and validates it once. The result is frozen: nothing changes it at run time.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { EdgeError } from '../errors.ts';
import { edgeConfigSchema, type EdgeConfig } from './schema.ts';
import { formatIssues } from './issues.ts';

/** Environment variables a deployment may set instead of editing the file. */
export const ENV_OVERRIDES = [
  { env: 'CITYSENSE_EDGE_ID', path: ['edgeId'], type: 'string' },
  { env: 'CITYSENSE_EDGE_TOKEN', path: ['cloud', 'token'], type: 'string' },
  { env: 'CITYSENSE_CLOUD_URL', path: ['cloud', 'url'], type: 'string' },
  { env: 'CITYSENSE_EDGE_MQTT_PORT', path: ['mqtt', 'port'], type: 'number' },
  { env: 'CITYSENSE_EDGE_HTTP_PORT', path: ['http', 'port'], type: 'number' },
  { env: 'CITYSENSE_EDGE_HJ212_PORT', path: ['hj212', 'port'], type: 'number' },
  { env: 'CITYSENSE_EDGE_DATA_DIR', path: ['dataDir'], type: 'string' },
  { env: 'CITYSENSE_EDGE_LOG_LEVEL', path: ['log', 'level'], type: 'string' },
] as const;

type Env = Record<string, string | undefined>;

function setIn(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let o = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[path[path.length - 1]!] = value;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Validates an in-memory configuration (after env overrides); relative paths resolve against baseDir. */
export function parseEdgeConfig(raw: unknown, opts: { name?: string; baseDir?: string } = {}): EdgeConfig {
  return validate(raw, { name: opts.name ?? 'config', baseDir: opts.baseDir ?? process.cwd() });
}

export function loadEdgeConfig(file: string, env: Env = process.env): EdgeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new EdgeError('CONFIG_UNREADABLE', `${file}: ${(err as Error).message}`, { cause: err });
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new EdgeError('CONFIG_SYNTAX', doc.errors.map((e) => `${file}: ${e.message}`).join('\n'));
  }
  const raw = (doc.toJS() ?? {}) as unknown;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new EdgeError('CONFIG_INVALID', `${file}: the top level must be a mapping of keys`);
  }
  const origins = new Map<string, string>();
  for (const o of ENV_OVERRIDES) {
    const v = env[o.env];
    if (v === undefined || v === '') continue;
    const n = Number(v);
    setIn(raw as Record<string, unknown>, o.path, o.type === 'number' && v.trim() !== '' && Number.isFinite(n) ? n : v);
    origins.set(o.path.join('.'), o.env);
  }
  return validate(raw, { name: file, baseDir: dirname(resolve(file)), doc, lines, origins });
}

function validate(
  raw: unknown,
  src: { name: string; baseDir: string } & Omit<Parameters<typeof formatIssues>[1], 'name'>,
): EdgeConfig {
  const r = edgeConfigSchema.safeParse(raw);
  if (!r.success) throw new EdgeError('CONFIG_INVALID', '\n' + formatIssues(r.error.issues, src).join('\n'));
  const c = r.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(src.baseDir, p));
  c.dataDir = abs(c.dataDir);
  if (c.registry.file) c.registry.file = abs(c.registry.file);
  if (c.registry.cloud) c.registry.cloud.cacheFile = abs(c.registry.cloud.cacheFile ?? join(c.dataDir, 'registry-cache.json'));
  c.profiles.dirs = c.profiles.dirs.map(abs);
  const pki = c.opcua.pki;
  pki.dir = abs(pki.dir ?? join(c.dataDir, 'opcua-pki'));
  if (pki.certificateFile) pki.certificateFile = abs(pki.certificateFile);
  if (pki.privateKeyFile) pki.privateKeyFile = abs(pki.privateKeyFile);
  pki.trustedServerCertificates = pki.trustedServerCertificates.map(abs);
  if (c.mqtt.tls) {
    c.mqtt.tls.cert = abs(c.mqtt.tls.cert);
    c.mqtt.tls.key = abs(c.mqtt.tls.key);
    if (c.mqtt.tls.ca) c.mqtt.tls.ca = abs(c.mqtt.tls.ca);
  }
  if (c.hj212.tls) {
    c.hj212.tls.cert = abs(c.hj212.tls.cert);
    c.hj212.tls.key = abs(c.hj212.tls.key);
  }
  if (c.httpPush?.tls) {
    c.httpPush.tls.cert = abs(c.httpPush.tls.cert);
    c.httpPush.tls.key = abs(c.httpPush.tls.key);
  }
  const tls = c.uplink.tls;
  if (tls) {
    if (tls.ca) tls.ca = abs(tls.ca);
    if (tls.cert) tls.cert = abs(tls.cert);
    if (tls.key) tls.key = abs(tls.key);
  }
  return deepFreeze(c);
}
