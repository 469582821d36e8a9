// Operator login, tokens and roles (contracts.md; docs/security.md § Operator authentication):
//   POST /v1/auth/login  {"username","password"} → {"token","role","expiresAt"}   (throttled: throttle.ts)
//   POST /v1/auth/logout                         ends the token it is called with (204)
//   POST /v1/operators/{name}/revoke              admin: ends every token of that operator issued so far
// The API takes "Authorization: Bearer <token>" only; a token in the URL (?access_token=) is refused, as
// URLs end up in logs and proxies. viewer < operator < admin; the role is the operator's current record
// (operators.users, reloaded on SIGHUP: setOperators), not what it was at login. 401 without, with a
// wrong, expired or revoked token; 403 for a role that may not. Who did what is on request.operator.
import rateLimit from '@fastify/rate-limit';
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import type { CloudConfig, OperatorConfig } from '../config/schema.ts';
import { CloudError } from '../errors.ts';
import { shared } from '../plugins/shared.ts';
import { DEMO_OPERATORS } from './demo.ts';
import { HashPool } from './hash-pool.ts';
import { parseHash, SCRYPT_PARAMS, weakerThan } from './passwords.ts';
import { Revocations } from './revocations.ts';
import { LoginThrottle } from './throttle.ts';
import { newTokenId, roleAtLeast, signToken, verifyToken, type Role, type TokenClaims } from './tokens.ts';

/** An authenticated request's operator: the token's claims and the role of the current record. */
export interface OperatorSession extends TokenClaims {
  role: Role;
}

export type SessionEnd = 'expired' | 'revoked';

export interface OperatorAuth {
  /**
   * Replaces the operator records (main.ts calls it on SIGHUP with the re-read config): a changed role or
   * a removal applies from the next request on; a changed password also revokes the operator's tokens.
   */
  setOperators(ops: Pick<CloudConfig['operators'], 'users' | 'demoUsers'>): void;
  /** Ends every token of `operator` issued before now (admin revocation); returns that moment (ms). */
  revokeAll(operator: string): number;
  /**
   * Calls `onEnd` once when the session's token expires or is revoked, or the operator is removed or
   * drops below `role` (long-lived answers such as the alert stream). Returns the unwatch function.
   */
  watch(session: OperatorSession, role: Role, onEnd: (reason: SessionEnd) => void): () => void;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler that admits a valid operator token whose operator currently has at least `role`. */
    requireRole(role: Role): (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
    operatorAuth: OperatorAuth;
  }
  interface FastifyRequest {
    operator: OperatorSession | undefined;
  }
}

export interface OperatorAuthOptions extends Record<string, unknown> {
  operators: CloudConfig['operators'];
  env: Record<string, string | undefined>;
  now: () => number;
}

/** The bearer token of the Authorization header: undefined without one, '' for a malformed one. */
function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
  return m ? m[1]! : '';
}

const TOKEN_QUERY_KEYS = ['access_token', 'token'];
function tokenInUrl(req: FastifyRequest): boolean {
  const q = req.query as Record<string, unknown> | undefined;
  return !!q && TOKEN_QUERY_KEYS.some((k) => k in q);
}

/** setTimeout's longest delay; a longer token lifetime re-arms the timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const operatorAuthPlugin = shared<OperatorAuthOptions>('citysense-operator-auth', async (app, opts) => {
  const cfg = opts.operators;
  const now = opts.now;
  const secret = opts.env[cfg.tokenSecretEnv];
  if (!secret) app.log.warn(`${cfg.tokenSecretEnv} is not set: operator tokens are signed with a random key and end with this process`);
  const key = secret ? Buffer.from(secret, 'utf8') : randomBytes(32);
  const revocations = new Revocations(app.store);
  const pool = new HashPool({
    concurrent: cfg.login.maxConcurrentHashes,
    queued: cfg.login.maxQueuedHashes,
    retryAfterSeconds: cfg.login.busyRetryAfterSeconds,
    nice: cfg.login.hashNice,
  });
  app.addHook('onClose', async () => pool.close());
  const registers = [app.metrics.registry];
  const logins = new Counter({ name: 'citysense_cloud_operator_logins_total', help: 'Operator logins by result (ok, failed, throttled, busy)', labelNames: ['result'], registers });
  const revoked = new Counter({ name: 'citysense_cloud_operator_tokens_revoked_total', help: 'Operator tokens ended early, by how (logout, operator: all of one operator)', labelNames: ['how'], registers });

  let users = new Map<string, OperatorConfig>();
  /** What an unknown username is checked against, so its answer costs what a known one's does. */
  let dummyHash = '';
  const watchers = new Set<{ check(): void }>();

  const setOperators: OperatorAuth['setOperators'] = (ops) => {
    const next = new Map([...(ops.demoUsers ? DEMO_OPERATORS : []), ...ops.users].map((u) => [u.username, u]));
    for (const [name, u] of next) {
      const before = users.get(name);
      if (before && before.passwordHash !== u.passwordHash) {
        // A new password is often a reaction to a leaked one: tokens got with the old one end.
        revocations.revokeAll(name, now());
        revoked.inc({ how: 'operator' });
        app.log.info({ operator: name }, 'operator password changed: its tokens were revoked');
      }
      if (before && before.role !== u.role) app.log.info({ operator: name, from: before.role, to: u.role }, 'operator role changed');
      if (!ops.demoUsers || !DEMO_OPERATORS.some((d) => d.username === name)) {
        if (weakerThan(u.passwordHash)) {
          app.log.warn({ operator: name }, `operator password hash is weaker than scrypt N=${SCRYPT_PARAMS.N},r=${SCRYPT_PARAMS.r},p=${SCRYPT_PARAMS.p}: re-hash it with cloud/src/auth/hash-password.ts`);
        }
      }
    }
    for (const name of users.keys()) if (!next.has(name)) app.log.info({ operator: name }, 'operator removed');
    users = next;
    const strongest = [...next.values()].map((u) => parseHash(u.passwordHash)!).reduce((a, h) => (h && h.N * h.r * h.p > a.N * a.r * a.p ? h : a), { ...SCRYPT_PARAMS });
    dummyHash = `scrypt$${strongest.N}$${strongest.r}$${strongest.p}$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(32).toString('base64')}`;
    for (const w of [...watchers]) w.check();
  };
  setOperators(cfg);

  /** The session of a token, or why not. */
  const session = (token: string, role: Role): OperatorSession => {
    const claims = token ? verifyToken(key, token, now()) : undefined;
    const user = claims && users.get(claims.sub);
    if (!claims || !user || revocations.isRevoked(claims)) throw new CloudError('AUTH_INVALID');
    if (!roleAtLeast(user.role, role)) throw new CloudError('FORBIDDEN', `${claims.sub} is ${user.role}; this needs ${role}`);
    return { ...claims, role: user.role };
  };

  const watch: OperatorAuth['watch'] = (s, role, onEnd) => {
    let timer: NodeJS.Timeout | undefined;
    const w = {
      check() {
        try {
          const user = users.get(s.sub);
          if (!user || revocations.isRevoked(s) || !roleAtLeast(user.role, role)) return end('revoked');
        } catch {
          return end('revoked');
        }
      },
    };
    const end = (reason: SessionEnd) => {
      unwatch();
      onEnd(reason);
    };
    // Always through a timer, never at once: the caller is still setting up when watch() returns.
    const arm = () => {
      timer = setTimeout(() => (s.exp - now() <= 0 ? end('expired') : arm()), Math.max(0, Math.min(s.exp - now(), MAX_TIMER_MS)));
      timer.unref();
    };
    const unwatch = () => {
      clearTimeout(timer);
      watchers.delete(w);
    };
    watchers.add(w);
    arm();
    return unwatch;
  };

  const revokeAll = (operator: string) => {
    const before = now();
    revocations.revokeAll(operator, before);
    revoked.inc({ how: 'operator' });
    for (const w of [...watchers]) w.check();
    return before;
  };

  app.decorate('operatorAuth', { setOperators, revokeAll, watch } satisfies OperatorAuth);
  app.decorateRequest('operator', undefined);
  app.decorate('requireRole', (role: Role) => async (req: FastifyRequest) => {
    if (tokenInUrl(req)) throw new CloudError('AUTH_TOKEN_IN_URL');
    const token = bearer(req);
    if (token === undefined) throw new CloudError('AUTH_MISSING');
    req.operator = session(token, role);
  });

  const sweep = setInterval(() => {
    try {
      revocations.sweep(now());
    } catch (err) {
      app.log.warn({ err: (err as Error).message }, 'sweeping expired token revocations failed; trying again later');
    }
  }, cfg.revocationSweepMs);
  sweep.unref();
  app.addHook('onClose', async () => clearInterval(sweep));

  // Login in a context of its own: @fastify/rate-limit's decorators stay there, and no other route is limited.
  app.register(async (login) => {
    await login.register(rateLimit, { global: false });
    const throttle = new LoginThrottle(login, cfg.login, now);

    login.post('/v1/auth/login', async (req) => {
      const body = req.body as { username?: unknown; password?: unknown } | undefined;
      if (!body || typeof body.username !== 'string' || typeof body.password !== 'string' || body.username.length > 128 || body.password.length > 1024) {
        throw new CloudError('BAD_REQUEST', 'send {"username": "...", "password": "..."} as JSON (a username of at most 128 characters, a password of at most 1024)');
      }
      try {
        await throttle.admit(req);
      } catch (err) {
        logins.inc({ result: 'throttled' });
        throw err;
      }
      const password = body.password;
      // Unknown users cost a hash too: the answer time does not tell which usernames exist.
      const stored = users.get(body.username)?.passwordHash ?? dummyHash;
      let ok: boolean;
      try {
        ok = await pool.verify(password, stored, throttle.isKnown(body.username, req));
      } catch (err) {
        logins.inc({ result: err instanceof CloudError ? 'busy' : 'failed' });
        throw err;
      }
      // Read again: the records may have been reloaded while the hash ran.
      const user = users.get(body.username);
      if (!ok || !user || user.passwordHash !== stored) {
        await throttle.failed(req);
        logins.inc({ result: 'failed' });
        throw new CloudError('LOGIN_FAILED');
      }
      throttle.succeeded(req, user.username);
      logins.inc({ result: 'ok' });
      const iat = now();
      const exp = iat + cfg.tokenTtl;
      return { token: signToken(key, { sub: user.username, jti: newTokenId(), iat, exp }), role: user.role, expiresAt: exp };
    });
  });

  app.post('/v1/auth/logout', { preHandler: app.requireRole('viewer') }, async (req, reply) => {
    revocations.revoke(req.operator!, now());
    revoked.inc({ how: 'logout' });
    for (const w of [...watchers]) w.check();
    return reply.code(204).send();
  });

  app.post('/v1/operators/:name/revoke', { preHandler: app.requireRole('admin') }, async (req) => {
    const { name } = req.params as { name: string };
    if (!users.has(name)) throw new CloudError('OPERATOR_NOT_FOUND', name.slice(0, 64));
    // The audit entry commits with the revocation, or neither does.
    const before = app.store.transaction(() => {
      app.audit?.record({ actor: req.operator!.sub, action: 'operator.revoke_tokens', target: `operator:${name}` });
      return revokeAll(name);
    });
    return { operator: name, revoked_before: before };
  });
});
