// Operator login and roles (contracts.md): POST /v1/auth/login {"username","password"} → {"token"}; the
// API takes "Authorization: Bearer <token>" (the SSE stream also ?access_token=, as browsers' EventSource
// cannot set headers). viewer < operator < admin. 401 without or with a wrong token, 403 for a role that
// may not. Who did what is on request.operator for the routes (the alert changes record it).
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CloudConfig } from '../config/schema.ts';
import { CloudError } from '../errors.ts';
import { shared } from '../plugins/shared.ts';
import { demoOperators } from './demo.ts';
import { DUMMY_HASH, verifyPassword } from './passwords.ts';
import { roleAtLeast, signToken, verifyToken, type Role, type TokenClaims } from './tokens.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler that admits a valid operator token of at least `role`. */
    requireRole(role: Role): (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  }
  interface FastifyRequest {
    operator: TokenClaims | undefined;
  }
}

export interface OperatorAuthOptions extends Record<string, unknown> {
  operators: CloudConfig['operators'];
  env: Record<string, string | undefined>;
  now: () => number;
}

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (h) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
    return m ? m[1]! : '';
  }
  const q = (req.query as Record<string, unknown> | undefined)?.access_token;
  return typeof q === 'string' ? q : undefined;
}

export const operatorAuthPlugin = shared<OperatorAuthOptions>('citysense-operator-auth', async (app, opts) => {
  const cfg = opts.operators;
  const secret = opts.env[cfg.tokenSecretEnv];
  if (!secret) app.log.warn(`${cfg.tokenSecretEnv} is not set: operator tokens are signed with a random key and end with this process`);
  const key = secret ? Buffer.from(secret, 'utf8') : randomBytes(32);
  const users = new Map([...(cfg.demoUsers ? demoOperators() : []), ...cfg.users].map((u) => [u.username, u]));

  app.decorateRequest('operator', undefined);
  app.decorate('requireRole', (role: Role) => async (req: FastifyRequest) => {
    const token = bearer(req);
    if (token === undefined) throw new CloudError('AUTH_MISSING');
    const claims = token ? verifyToken(key, token, opts.now()) : undefined;
    if (!claims || !users.has(claims.sub)) throw new CloudError('AUTH_INVALID');
    if (!roleAtLeast(claims.role, role)) throw new CloudError('FORBIDDEN', `${claims.sub} is ${claims.role}; this needs ${role}`);
    req.operator = claims;
  });

  app.post('/v1/auth/login', async (req) => {
    const body = req.body as { username?: unknown; password?: unknown } | undefined;
    if (!body || typeof body.username !== 'string' || typeof body.password !== 'string' || body.password.length > 1024) {
      throw new CloudError('BAD_REQUEST', 'send {"username": "...", "password": "..."} as JSON');
    }
    const user = users.get(body.username);
    // Unknown users cost a scrypt too: the answer time does not tell which usernames exist.
    const ok = verifyPassword(body.password, user?.passwordHash ?? DUMMY_HASH) && user !== undefined;
    if (!ok) {
      throw new CloudError('LOGIN_FAILED');
    }
    const exp = Math.floor((opts.now() + cfg.tokenTtl) / 1000);
    return { token: signToken(key, { sub: user.username, role: user.role, exp }), role: user.role, expiresAt: exp * 1000 };
  });
});
