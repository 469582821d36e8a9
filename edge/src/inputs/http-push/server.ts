// The edge's HTTP push listener (default port 8082) for the operators' IoT platforms: one route per
// configured platform, `/push/{platform}/{pathToken}`. Per request, in order: the path and its secret
// token, the source address against the platform's allow-list, the method, the body size (Content-Length
// before reading, then while reading), the platform's parser (signature, decryption, message shape),
// then each report: device lookup, repeat check, decode + durable queue. A push is answered 200 only when
// every report in it is durable in the edge queue (or was already): the platforms retry anything else.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { BlockList, isIPv4, type AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { EDGE_ERRORS, type EdgeErrorCode } from '../../errors.ts';
import type { RateLimitedWarn } from '../../log.ts';
import type { Ingest } from '../../agent/ingest.ts';
import type { DeviceRegistry, Device } from '../../registry/registry.ts';
import type { HttpPushConfig } from './config.ts';
import { DedupeWindow } from './dedupe.ts';
import { checkOnenetSignature, sameSecret } from './sign.ts';
import { parseCtwing } from './ctwing.ts';
import { parseOnenet } from './onenet.ts';
import { parseOnenetStudio } from './onenet-studio.ts';
import { PLATFORMS, refuse, type Parsed, type Platform, type PushItem, type Refusal } from './types.ts';

/** The HTTP status each refusal is answered with: 4xx the platform should not retry as is, 503 it should. */
export const PUSH_STATUS: Partial<Record<EdgeErrorCode, number>> = {
  PUSH_UNKNOWN_PATH: 404,
  PUSH_ADDRESS_REFUSED: 403,
  PUSH_METHOD_NOT_ALLOWED: 405,
  PUSH_BODY_TOO_LARGE: 413,
  PUSH_BAD_JSON: 400,
  PUSH_BAD_SIGNATURE: 401,
  PUSH_DECRYPT_FAILED: 400,
  PUSH_BAD_MESSAGE: 400,
  PUSH_UNSUPPORTED_MESSAGE: 422,
  PUSH_UNKNOWN_DEVICE: 422,
  PUSH_UNDECODABLE: 422,
  PUSH_NOT_STORED: 503,
};

export interface HttpPushOptions extends HttpPushConfig {
  registry: DeviceRegistry;
  ingest: Ingest;
  metricsRegistry: Registry;
  log: Logger;
  warn: RateLimitedWarn;
}

export interface HttpPushListener {
  port: number;
  /** What /healthz shows: the receivers' own view, so "no push for an hour" is visible without Prometheus. */
  status(): HttpPushStatus;
  close(): Promise<void>;
}

export interface HttpPushStatus {
  port: number;
  platforms: string[];
  /** Reports kept (durable in the queue) and pushes refused since start, per platform. */
  kept: Record<string, number>;
  refused: Record<string, number>;
  /** Seconds since the last report was kept, per platform; null before the first. */
  secondsSinceReport: Record<string, number | null>;
}

interface Route {
  platform: Platform;
  token: string;
  allow: BlockList | undefined;
}

function blockListOf(cidrs: readonly string[]): BlockList | undefined {
  if (cidrs.length === 0) return undefined;
  const b = new BlockList();
  for (const c of cidrs) {
    const [addr, bits] = c.split('/') as [string, string | undefined];
    const family = isIPv4(addr) ? 'ipv4' : 'ipv6';
    if (bits === undefined) b.addAddress(addr, family);
    else b.addSubnet(addr, Number(bits), family);
  }
  return b;
}

/** An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d. */
function peer(req: IncomingMessage): { address: string; family: 'ipv4' | 'ipv6' } {
  const a = req.socket.remoteAddress ?? '';
  const v4 = a.startsWith('::ffff:') && isIPv4(a.slice(7)) ? a.slice(7) : a;
  return { address: v4, family: isIPv4(v4) ? 'ipv4' : 'ipv6' };
}

/** Query parameters decoded without turning '+' into a space (OneNET's signatures contain '+'). */
function queryOf(search: string): Map<string, string> {
  const q = new Map<string, string>();
  for (const part of search.replace(/^\?/, '').split('&')) {
    if (!part) continue;
    const i = part.indexOf('=');
    const k = i < 0 ? part : part.slice(0, i);
    const v = i < 0 ? '' : part.slice(i + 1);
    try {
      q.set(decodeURIComponent(k), decodeURIComponent(v));
    } catch {
      q.set(k, v);
    }
  }
  return q;
}

export async function startHttpPush(o: HttpPushOptions): Promise<HttpPushListener> {
  const m = {
    reports: new Counter({
      name: 'citysense_edge_push_reports_total',
      help: 'reports pushed by the IoT platforms and kept in the durable queue, by platform and message type',
      labelNames: ['platform', 'message'],
      registers: [o.metricsRegistry],
    }),
    duplicates: new Counter({
      name: 'citysense_edge_push_duplicates_total',
      help: 'pushes of a report already kept (a platform retry), answered 200 and not stored again',
      labelNames: ['platform'],
      registers: [o.metricsRegistry],
    }),
    refused: new Counter({
      name: 'citysense_edge_push_refused_total',
      help: 'pushes refused, by platform and reason code (PUSH_BAD_SIGNATURE, PUSH_UNKNOWN_DEVICE, ...)',
      labelNames: ['platform', 'reason'],
      registers: [o.metricsRegistry],
    }),
    urlChecks: new Counter({
      name: 'citysense_edge_push_url_checks_total',
      help: 'OneNET URL checks answered (GET with msg, nonce, signature)',
      labelNames: ['platform'],
      registers: [o.metricsRegistry],
    }),
  };
  const routes = new Map<string, Route>();
  if (o.ctwing) routes.set('ctwing', { platform: 'ctwing', token: o.ctwing.pathToken, allow: blockListOf(o.ctwing.allowFrom) });
  if (o.onenet) routes.set('onenet', { platform: 'onenet', token: o.onenet.pathToken, allow: blockListOf(o.onenet.allowFrom) });
  if (o.onenetStudio) routes.set('onenet-studio', { platform: 'onenet-studio', token: o.onenetStudio.pathToken, allow: blockListOf(o.onenetStudio.allowFrom) });
  const dedupe = new DedupeWindow(o.dedupe.maxEntries, o.dedupe.ttlMs);

  const answer = (res: ServerResponse, status: number, body: string, type = 'application/json') => {
    if (res.headersSent) return;
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  // Plain counts beside the Prometheus ones: health reads them on every probe without a registry scrape.
  const keptBy: Record<string, number> = {};
  const refusedBy: Record<string, number> = {};
  const lastKeptAt: Record<string, number> = {};
  const refuseReq = (req: IncomingMessage, res: ServerResponse, platform: string, r: Refusal) => {
    m.refused.inc({ platform, reason: r.code });
    refusedBy[platform] = (refusedBy[platform] ?? 0) + 1;
    // Never the URL: it carries the path token.
    o.warn(`push_${r.code}`, { platform, remote: req.socket.remoteAddress, detail: r.detail.slice(0, 200) }, `push refused: ${r.code}`);
    const status = PUSH_STATUS[r.code] ?? 400;
    answer(res, status, JSON.stringify({ error: r.code, message: `${EDGE_ERRORS[r.code]}: ${r.detail.slice(0, 200)}` }), 'application/json');
  };

  function findDevice(platform: Platform, item: PushItem): Device | undefined {
    const ns = platform === 'ctwing' ? 'ctwing' : 'onenet';
    for (const key of item.lookup) {
      const d = o.registry.byPushKey(key);
      if (!d) continue;
      const registered = d.push?.[ns]?.productId;
      if (registered !== undefined && item.productId !== undefined && registered !== item.productId) continue;
      return d;
    }
    return undefined;
  }

  type Stored = { ok: true; duplicate: boolean } | Refusal;
  async function storeItem(platform: Platform, item: PushItem, receivedAt: number): Promise<Stored> {
    const device = findDevice(platform, item);
    if (!device) return refuse('PUSH_UNKNOWN_DEVICE', `${item.message}: no ${platform} device ${item.lookup.map((k) => k.split(':')[1]).join(' or ')} in the registry`);
    const key = item.dedupeKey === undefined ? undefined : `${platform}|${device.id}|${item.dedupeKey}`;
    if (key !== undefined) {
      if (dedupe.has(key)) return { ok: true, duplicate: true };
      const racing = dedupe.pending(key);
      if (racing) {
        const r = (await racing) as Stored;
        return r.ok ? { ok: true, duplicate: true } : storeItem(platform, item, receivedAt);
      }
    }
    const run = (async (): Promise<Stored> => {
      let out;
      try {
        out = await o.ingest.report(device, item.report, receivedAt);
      } catch (err) {
        return refuse('PUSH_NOT_STORED', (err as Error).message);
      }
      if (!out.kept && !out.duplicate) return refuse('PUSH_UNDECODABLE', `${item.message} of ${device.id}: ${out.reason}: ${out.detail}`);
      if (key !== undefined) dedupe.remember(key);
      return { ok: true, duplicate: !out.kept };
    })();
    return key === undefined ? run : dedupe.track(key, run);
  }

  function parse(platform: Platform, raw: string): Parsed {
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return refuse('PUSH_BAD_JSON', 'the body is not JSON');
    }
    if (platform === 'ctwing') return parseCtwing(body);
    if (platform === 'onenet') return parseOnenet(raw, body, { token: o.onenet!.token, encodeKey: o.onenet!.encodeKey });
    return parseOnenetStudio(body, { token: o.onenetStudio!.token, aesKey: o.onenetStudio!.aesKey });
  }

  async function handlePost(req: IncomingMessage, res: ServerResponse, route: Route, raw: string): Promise<void> {
    const receivedAt = Date.now();
    const parsed = parse(route.platform, raw);
    if (!parsed.ok) return refuseReq(req, res, route.platform, parsed);
    let kept = 0;
    let duplicates = 0;
    let failure: Refusal | undefined;
    // Reports of one push in order; a failed one does not stop the rest (they are kept, and the retry of
    // the whole push finds them in the repeat window).
    for (const item of parsed.items) {
      const r = await storeItem(route.platform, item, receivedAt);
      if (!r.ok) failure ??= r;
      else if (r.duplicate) {
        duplicates++;
        m.duplicates.inc({ platform: route.platform });
      } else {
        kept++;
        m.reports.inc({ platform: route.platform, message: item.message });
        keptBy[route.platform] = (keptBy[route.platform] ?? 0) + 1;
        lastKeptAt[route.platform] = Date.now();
      }
    }
    if (failure) return refuseReq(req, res, route.platform, failure);
    answer(res, 200, JSON.stringify({ result: 'ok', kept, duplicates }));
  }

  /** OneNET's URL check: answer msg itself when signature = Base64(MD5(token + nonce + msg)). */
  function handleUrlCheck(req: IncomingMessage, res: ServerResponse, route: Route, search: string): void {
    const token = route.platform === 'onenet' ? o.onenet?.token : route.platform === 'onenet-studio' ? o.onenetStudio?.token : undefined;
    if (token === undefined) return refuseReq(req, res, route.platform, refuse('PUSH_METHOD_NOT_ALLOWED', 'this platform pushes with POST only'));
    const q = queryOf(search);
    const msg = q.get('msg');
    const nonce = q.get('nonce');
    const signature = q.get('signature');
    if (msg === undefined || nonce === undefined || signature === undefined) {
      return refuseReq(req, res, route.platform, refuse('PUSH_BAD_MESSAGE', 'a URL check needs msg, nonce and signature'));
    }
    // A form-encoded msg may have had its spaces turned into '+': both readings are tried.
    const ok = checkOnenetSignature(token, nonce, msg, signature) || (msg.includes('+') && checkOnenetSignature(token, nonce, msg.replace(/\+/g, ' '), signature));
    if (!ok) return refuseReq(req, res, route.platform, refuse('PUSH_BAD_SIGNATURE', 'the URL check signature does not match the configured token'));
    m.urlChecks.inc({ platform: route.platform });
    answer(res, 200, msg, 'text/plain; charset=utf-8');
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const search = q < 0 ? '' : url.slice(q);
    const seg = path.split('/');
    const name = seg[2] ?? '';
    const route = seg[1] === 'push' && (seg.length === 4 || (seg.length === 5 && seg[4] === '')) ? routes.get(name) : undefined;
    const label = (PLATFORMS as readonly string[]).includes(name) ? name : 'unknown';
    if (!route || !sameSecret(seg[3] ?? '', route.token)) {
      req.resume();
      return refuseReq(req, res, label, refuse('PUSH_UNKNOWN_PATH', `no receiver at /push/${name.slice(0, 32)}/…`));
    }
    if (route.allow) {
      const p = peer(req);
      if (!route.allow.check(p.address, p.family)) {
        req.resume();
        return refuseReq(req, res, route.platform, refuse('PUSH_ADDRESS_REFUSED', `source ${p.address} is not in allowFrom`));
      }
    }
    if (req.method === 'GET') {
      req.resume();
      return handleUrlCheck(req, res, route, search);
    }
    if (req.method !== 'POST') {
      req.resume();
      return refuseReq(req, res, route.platform, refuse('PUSH_METHOD_NOT_ALLOWED', `method ${String(req.method).slice(0, 16)}`));
    }
    const tooLarge = () => {
      res.setHeader('connection', 'close');
      refuseReq(req, res, route.platform, refuse('PUSH_BODY_TOO_LARGE', `over ${o.maxBodyBytes} bytes`));
      // Stop reading: the rest of an oversized body is never buffered.
      res.on('finish', () => req.destroy());
    };
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > o.maxBodyBytes) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > o.maxBodyBytes) {
        over = true;
        chunks.length = 0;
        return tooLarge();
      }
      chunks.push(c);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (over) return;
      handlePost(req, res, route, Buffer.concat(chunks, size).toString('utf8')).catch((err: unknown) => {
        o.log.error({ err, platform: route.platform }, 'push not stored: unexpected error; the platform will retry');
        refuseReq(req, res, route.platform, refuse('PUSH_NOT_STORED', 'unexpected error'));
      });
    });
  };

  const server: Server = o.tls
    ? createHttpsServer({ cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) }, onRequest)
    : createHttpServer(onRequest);
  server.maxConnections = o.maxConnections;
  server.requestTimeout = o.requestTimeoutMs;
  server.headersTimeout = Math.min(o.requestTimeoutMs, 60_000);
  server.keepAliveTimeout = 5_000;
  server.on('clientError', (_err, sock) => sock.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  o.log.info({ port: (server.address() as AddressInfo).port, platforms: [...routes.keys()] }, 'HTTP push receivers listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    status: () => {
      const now = Date.now();
      const platforms = [...routes.keys()];
      const since: Record<string, number | null> = {};
      for (const p of platforms) since[p] = lastKeptAt[p] === undefined ? null : Math.round((now - lastKeptAt[p]!) / 1000);
      return { port, platforms, kept: { ...keptBy }, refused: { ...refusedBy }, secondsSinceReport: since };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
