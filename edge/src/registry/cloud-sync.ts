// The edge's copy of its slice of the cloud's device registry (GET /v1/edges/{edgeId}/registry).
//
//   start:  load the cache file (if any) and hand it to onUpdate, so the edge serves its devices even
//           when the cloud is away at start; then poll.
//   poll:   every intervalMs (± 10 % jitter), GET with If-None-Match: the last ETag. 304 → nothing to do.
//           200 → validate with the edge's own registry schema (registryFileSchema) → onUpdate(entries)
//           → write the cache atomically (temp file, fsync, rename, fsync of the folder).
//
// onUpdate comes before the cache write on purpose: the agent's buildRegistry may refuse a slice the
// schema accepts (an unknown profile, an MN twice); such a slice is then neither applied nor cached, so
// the cache always holds a registry this edge accepted, and a restart never starts from one it refuses.
// Secrets at rest: the cache holds salted scrypt verifiers only (secretHash, hj212.passwordHash). A slice
// or an old cache that still carries unsalted secretSha256 / passwordSha256 (a cloud or an edge from
// before issue 11) is wrapped (scrypt-sha256, @citysense/proto verifier.ts) before it is applied or
// written, and an old cache is rewritten at start; the file is created with mode 0600 (writeFileAtomic).
// A refused or failed fetch keeps the registry in force; failures are counted (status()) and logged at a
// bounded rate (the first at once, then one line per warnIntervalMs with the count).
import { readFileSync } from 'node:fs';
import { Agent, request, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../atomic-file.ts';
import { formatIssues } from '../config/issues.ts';
import { registryFileSchema, type DeviceEntry } from '../config/schema.ts';
import { wrapSha256 } from '@citysense/proto';

export interface RegistrySyncOptions {
  /** The cloud's base URL (edge config cloud.url). */
  cloudUrl: string;
  /** The edge's bearer token (the same as for /v1/batches); omit with a client certificate. */
  token?: string | undefined;
  /** PEM file paths (edge config uplink.tls): a private CA, a client certificate and key. */
  tls?: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined } | undefined;
  edgeId: string;
  /** Where the last accepted slice is kept (e.g. <dataDir>/registry-cache.json). */
  cacheFile: string;
  /** Poll period. */
  intervalMs: number;
  /** One request's limit (headers and body). Default 30 s. */
  requestTimeoutMs?: number;
  /** Largest answer accepted. Default 256 MiB. */
  maxBytes?: number;
  /** Failure log lines: at most one per this period after the first. Default 60 s. */
  warnIntervalMs?: number;
  /**
   * Applies a registry (build it, swap it in). Throw to refuse it: it is then not cached and the
   * previous registry stays. Called with the cache at start, then with each changed slice.
   */
  onUpdate(entries: DeviceEntry[], info: { version: number; source: 'cache' | 'cloud' }): void | Promise<void>;
  log: Logger;
  /** Jitter source (tests). */
  random?: () => number;
}

export type SyncOutcome = 'updated' | 'unchanged' | 'failed';

export interface RegistrySyncStatus {
  /** Slice version in force (0 = none yet). */
  version: number;
  source: 'none' | 'cache' | 'cloud';
  devices: number;
  lastSuccessAt: number | null;
  lastAttemptAt: number | null;
  lastError: string | null;
  /** Failed polls since start, and in a row. */
  failures: number;
  consecutiveFailures: number;
}

export interface RegistrySync {
  /** Polls the cloud once now (also what the timer does). */
  syncNow(): Promise<SyncOutcome>;
  status(): RegistrySyncStatus;
  stop(): Promise<void>;
}

interface CacheFile {
  edge: string;
  version: number;
  etag: string | null;
  savedAt: number;
  devices: unknown[];
}

class SyncError extends Error {
  constructor(
    readonly reason: 'network' | 'http' | 'invalid' | 'refused' | 'cache_write',
    message: string,
  ) {
    super(message);
  }
}

function readTls(path: string | undefined): Buffer | undefined {
  return path === undefined ? undefined : readFileSync(path);
}

/** Validates a slice's devices with the edge's own schema; the message names each bad entry. */
function validate(devices: unknown, what: string): DeviceEntry[] {
  const r = registryFileSchema.safeParse({ devices });
  if (!r.success) throw new SyncError('invalid', `${what}: ${formatIssues(r.error.issues, { name: what }).slice(0, 5).join('; ')}`);
  return r.data.devices;
}

/** Replaces unsalted hashes by salted verifiers, in place; true when there were any. */
async function sealLegacyHashes(devices: unknown[]): Promise<boolean> {
  let changed = false;
  for (const d of devices as { secretSha256?: string; secretHash?: string; hj212?: { passwordSha256?: string; passwordHash?: string } }[]) {
    if (typeof d.secretSha256 === 'string') {
      d.secretHash = await wrapSha256(d.secretSha256);
      delete d.secretSha256;
      changed = true;
    }
    if (d.hj212 && typeof d.hj212.passwordSha256 === 'string') {
      d.hj212.passwordHash = await wrapSha256(d.hj212.passwordSha256);
      delete d.hj212.passwordSha256;
      changed = true;
    }
  }
  return changed;
}

export async function startRegistrySync(opts: RegistrySyncOptions): Promise<RegistrySync> {
  const log = opts.log.child({ module: 'registry-sync' });
  const random = opts.random ?? Math.random;
  const timeout = opts.requestTimeoutMs ?? 30_000;
  const warnEvery = opts.warnIntervalMs ?? 60_000;
  const url = `${opts.cloudUrl.replace(/\/$/, '')}/v1/edges/${encodeURIComponent(opts.edgeId)}/registry`;
  const tls = opts.tls && { ca: readTls(opts.tls.ca), cert: readTls(opts.tls.cert), key: readTls(opts.tls.key) };
  const dispatcher: Dispatcher = new Agent({
    headersTimeout: timeout,
    bodyTimeout: timeout,
    maxResponseSize: opts.maxBytes ?? 256 * 1024 * 1024,
    ...(tls ? { connect: { ...(tls.ca ? { ca: tls.ca } : {}), ...(tls.cert ? { cert: tls.cert } : {}), ...(tls.key ? { key: tls.key } : {}) } } : {}),
  });

  const st: RegistrySyncStatus = { version: 0, source: 'none', devices: 0, lastSuccessAt: null, lastAttemptAt: null, lastError: null, failures: 0, consecutiveFailures: 0 };
  let etag: string | null = null;
  let lastWarnAt = -Infinity;
  let suppressed = 0;

  // 1. The cache, so the edge works while the cloud is away.
  let cacheText: string | undefined;
  try {
    cacheText = readFileSync(opts.cacheFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ file: opts.cacheFile, err: (err as Error).message }, 'registry cache unreadable; waiting for the cloud');
  }
  if (cacheText !== undefined) {
    try {
      const c = JSON.parse(cacheText) as CacheFile;
      if (c.edge !== opts.edgeId) throw new Error(`it is edge ${String(c.edge)}'s, not ${opts.edgeId}'s`);
      validate(c.devices, opts.cacheFile);
      const legacy = Array.isArray(c.devices) && (await sealLegacyHashes(c.devices));
      const entries = validate(c.devices, opts.cacheFile);
      await opts.onUpdate(entries, { version: c.version, source: 'cache' });
      etag = c.etag;
      if (legacy) {
        // Migrated in place: no unsalted hash stays on disk; fetched again, in case the cloud has news.
        writeFileAtomic(opts.cacheFile, JSON.stringify({ ...c, etag: null }));
        etag = null;
        log.info({ file: opts.cacheFile }, 'registry cache migrated: unsalted secret hashes replaced by salted verifiers');
      }
      Object.assign(st, { version: c.version, source: 'cache', devices: entries.length });
      log.info({ file: opts.cacheFile, version: c.version, devices: entries.length }, 'registry loaded from the cache');
    } catch (err) {
      log.error({ file: opts.cacheFile, err: (err as Error).message }, 'registry cache refused; waiting for the cloud');
    }
  }

  const failed = (err: unknown): SyncOutcome => {
    const e = err instanceof SyncError ? err : new SyncError('network', (err as Error).message ?? String(err));
    st.failures++;
    st.consecutiveFailures++;
    st.lastError = `${e.reason}: ${e.message}`;
    const now = Date.now();
    if (now - lastWarnAt >= warnEvery) {
      log.warn({ reason: e.reason, err: e.message, consecutive: st.consecutiveFailures, suppressed, version: st.version }, 'registry sync failed; keeping the registry in force');
      lastWarnAt = now;
      suppressed = 0;
    } else suppressed++;
    return 'failed';
  };

  let running: Promise<SyncOutcome> | undefined;
  const once = async (): Promise<SyncOutcome> => {
    st.lastAttemptAt = Date.now();
    try {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      if (etag) headers['if-none-match'] = etag;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, { method: 'GET', headers, dispatcher, signal: AbortSignal.timeout(timeout) });
      } catch (err) {
        throw new SyncError('network', (err as Error).message);
      }
      if (res.statusCode === 304) {
        await res.body.dump();
        return succeeded('unchanged');
      }
      const text = await res.body.text();
      if (res.statusCode !== 200) {
        let code = '';
        try {
          code = String((JSON.parse(text) as { error?: unknown }).error ?? '');
        } catch {
          /* not JSON */
        }
        throw new SyncError('http', `${res.statusCode}${code ? ` ${code}` : ''} from ${url}`);
      }
      let body: { edge?: unknown; version?: unknown; devices?: unknown };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        throw new SyncError('invalid', 'the answer is not JSON');
      }
      if (body.edge !== opts.edgeId) throw new SyncError('invalid', `the slice is for edge ${String(body.edge)}, not ${opts.edgeId}`);
      if (typeof body.version !== 'number' || !Number.isSafeInteger(body.version)) throw new SyncError('invalid', 'the slice has no version');
      validate(body.devices, `registry slice v${body.version}`);
      await sealLegacyHashes(body.devices as unknown[]);
      const entries = validate(body.devices, `registry slice v${body.version}`);
      try {
        await opts.onUpdate(entries, { version: body.version, source: 'cloud' });
      } catch (err) {
        throw new SyncError('refused', (err as Error).message);
      }
      Object.assign(st, { version: body.version, source: 'cloud', devices: entries.length });
      const newEtag = typeof res.headers.etag === 'string' ? res.headers.etag : null;
      try {
        const cache: CacheFile = { edge: opts.edgeId, version: body.version, etag: newEtag, savedAt: Date.now(), devices: body.devices as unknown[] };
        writeFileAtomic(opts.cacheFile, JSON.stringify(cache));
        etag = newEtag;
      } catch (err) {
        // In force but not cached: no ETag kept, so the next poll fetches and tries the write again.
        etag = null;
        throw new SyncError('cache_write', `${opts.cacheFile}: ${(err as Error).message}`);
      }
      log.info({ version: body.version, devices: entries.length }, 'registry updated from the cloud');
      return succeeded('updated');
    } catch (err) {
      return failed(err);
    }
  };

  function succeeded(outcome: SyncOutcome): SyncOutcome {
    if (st.consecutiveFailures > 0) log.info({ after: st.consecutiveFailures, version: st.version }, 'registry sync works again');
    st.consecutiveFailures = 0;
    st.lastError = null;
    st.lastSuccessAt = Date.now();
    return outcome;
  }

  const syncNow = () => (running ??= once().finally(() => (running = undefined)));

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      void syncNow().finally(() => schedule(opts.intervalMs * (0.9 + 0.2 * random())));
    }, ms);
    timer.unref();
  };
  schedule(0);

  return {
    syncNow,
    status: () => ({ ...st }),
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running?.catch(() => undefined);
      await dispatcher.close().catch(() => undefined);
    },
  };
}
