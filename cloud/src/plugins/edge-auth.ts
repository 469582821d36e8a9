// Who is uploading: a bearer token (config holds its SHA-256) or a client certificate (mTLS), per
// auth.mode. Runs onRequest, before the body is read, so an unauthenticated client cannot make the cloud
// read, inflate or decode anything. Sets request.edgeId for the routes of the context that registers it.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import type { CloudConfig } from '../config/schema.ts';
import { CloudConfigError, CloudError } from '../errors.ts';
import { shared } from './shared.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated edge ('' before authentication). */
    edgeId: string;
  }
}

interface TokenEntry {
  edgeId: string;
  sha256: Buffer;
}

export interface EdgeAuthOptions extends Record<string, unknown> {
  auth: CloudConfig['auth'];
  env: Record<string, string | undefined>;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Token table from config; tokenEnv variables are read once, at start, and a missing one stops the start. */
export function tokenTable(auth: CloudConfig['auth'], env: Record<string, string | undefined>): TokenEntry[] {
  const missing: string[] = [];
  const table: TokenEntry[] = [];
  auth.edges.forEach((e, i) => {
    if (e.tokenSha256) table.push({ edgeId: e.id, sha256: Buffer.from(e.tokenSha256, 'hex') });
    else if (e.tokenEnv) {
      const token = env[e.tokenEnv];
      if (!token) missing.push(`auth.edges[${i}].tokenEnv: environment variable ${e.tokenEnv} is not set`);
      else table.push({ edgeId: e.id, sha256: sha256(token) });
    }
  });
  if (missing.length) throw new CloudConfigError('edge tokens are missing', missing);
  return table;
}

/**
 * Compares against every entry without stopping at a match, with timingSafeEqual on fixed-length
 * digests, so the answer time says nothing about which or how much of a token matched.
 */
function edgeForToken(table: readonly TokenEntry[], token: string): string | undefined {
  const digest = sha256(token);
  let found: string | undefined;
  for (const t of table) if (timingSafeEqual(digest, t.sha256) && found === undefined) found = t.edgeId;
  return found;
}

function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
  // Anything else in Authorization is a credential we do not accept, not a missing one.
  return m ? m[1]! : '';
}

function edgeForCertificate(req: FastifyRequest, byCn: ReadonlyMap<string, string>): string | undefined {
  const socket = req.raw.socket as Partial<TLSSocket>;
  // `authorized` is set by Node when the peer's certificate chains to listen.tls.ca.
  if (!socket.encrypted || !socket.authorized || typeof socket.getPeerCertificate !== 'function') return undefined;
  const cn = socket.getPeerCertificate().subject?.CN;
  const name = Array.isArray(cn) ? cn[0] : cn;
  return name ? byCn.get(name) : undefined;
}

export const edgeAuthPlugin = shared<EdgeAuthOptions>('citysense-edge-auth', async (app, opts) => {
  const { mode, edges } = opts.auth;
  const tokens = mode === 'mtls' ? [] : tokenTable(opts.auth, opts.env);
  const byCn = new Map(edges.map((e) => [e.certCn ?? e.id, e.id]));

  app.decorateRequest('edgeId', '');
  app.addHook('onRequest', async (req) => {
    const token = mode === 'mtls' ? undefined : bearerToken(req);
    if (token !== undefined) {
      const edge = token ? edgeForToken(tokens, token) : undefined;
      if (!edge) throw new CloudError('EDGE_AUTH_INVALID');
      req.edgeId = edge;
      return;
    }
    if (mode !== 'token') {
      const edge = edgeForCertificate(req, byCn);
      if (!edge) throw new CloudError('EDGE_CERT_REFUSED');
      req.edgeId = edge;
      return;
    }
    throw new CloudError('EDGE_AUTH_MISSING');
  });
});
