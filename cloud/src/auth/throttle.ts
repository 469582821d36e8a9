// Login throttling (docs/security.md § Operator authentication). Three windows, all counted by
// @fastify/rate-limit's in-memory store (createRateLimit; `increment: false` reads without counting):
//
//   per source        every attempt from one address (IPv6 by /64)   → stops one host's guessing
//   per account+source failed attempts for one username from one address → stops guessing one account
//   per account       failed attempts for one username from addresses it has not logged in from
//                     → stops guessing one account from many addresses
//
// All are checked before any hash is computed, so a throttled attempt costs no CPU. Lockout of the real
// operator is bounded by design: failures from the attacker's address never count against the operator's
// address (account+source), and the account-wide window ignores addresses the account has logged in
// from successfully before (known sources, remembered for knownSourceTtlMs), so the real operator logs in
// from their usual place while an attacker is throttled; from a new address they wait at most the
// account window (perAccount.windowMs). The windows are fixed, not extended by further attempts.
import { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CloudConfig } from '../config/schema.ts';
import { CloudError } from '../errors.ts';

type LoginConfig = CloudConfig['operators']['login'];
type Limiter = ReturnType<FastifyInstance['createRateLimit']>;

/** What the limiters key on: the username the request named (bounded by the route's validation). */
const loginName = (req: FastifyRequest) => String((req.body as { username?: unknown } | undefined)?.username ?? '');

export class LoginThrottle {
  private readonly perSource: Limiter;
  private readonly perAccountSource: Limiter;
  private readonly perAccount: Limiter;
  /** `username\0source` → when it stops being known (ms); oldest first (Map insertion order). */
  private readonly known = new Map<string, number>();

  constructor(
    app: FastifyInstance,
    private readonly cfg: LoginConfig,
    private readonly now: () => number,
  ) {
    const source = (req: FastifyRequest) => normalizeIP(req.ip);
    // `cache` bounds each store's keys (LRU); the typings of createRateLimit omit it.
    const common = { cache: cfg.trackedKeys } as object;
    this.perSource = app.createRateLimit({ ...common, max: cfg.perSource.max, timeWindow: cfg.perSource.windowMs, keyGenerator: (req) => `s\0${source(req)}` });
    this.perAccountSource = app.createRateLimit({
      ...common,
      max: cfg.perAccountSource.max,
      timeWindow: cfg.perAccountSource.windowMs,
      keyGenerator: (req) => `as\0${loginName(req)}\0${source(req)}`,
    });
    this.perAccount = app.createRateLimit({
      ...common,
      max: cfg.perAccount.max,
      timeWindow: cfg.perAccount.windowMs,
      keyGenerator: (req) => `a\0${loginName(req)}`,
      allowList: (req) => this.isKnown(loginName(req), req),
    });
  }

  /** Whether `username` has logged in from this request's address within knownSourceTtlMs. */
  isKnown(username: string, req: FastifyRequest): boolean {
    const k = `${username}\0${normalizeIP(req.ip)}`;
    const until = this.known.get(k);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.known.delete(k);
    return false;
  }

  /** Before the hash: counts the attempt from its source, refuses (429 LOGIN_THROTTLED) when a window is full. */
  async admit(req: FastifyRequest): Promise<void> {
    const s = await this.perSource(req);
    if (!s.isAllowed && s.isExceeded) throw throttled('from this address', s.ttlInSeconds);
    for (const [limiter, what] of [
      [this.perAccountSource, 'for this account from this address'],
      [this.perAccount, 'for this account'],
    ] as const) {
      const r = await limiter(req, { increment: false });
      if (!r.isAllowed && r.remaining === 0) throw throttled(what, r.ttlInSeconds);
    }
  }

  /** After a wrong password: counts it against the account (from this source, and account-wide unless the source is known). */
  async failed(req: FastifyRequest): Promise<void> {
    await this.perAccountSource(req);
    await this.perAccount(req);
  }

  /** After a right password: the source becomes known for this account. */
  succeeded(req: FastifyRequest, username: string): void {
    const k = `${username}\0${normalizeIP(req.ip)}`;
    this.known.delete(k);
    this.known.set(k, this.now() + this.cfg.knownSourceTtlMs);
    while (this.known.size > this.cfg.maxKnownSources) this.known.delete(this.known.keys().next().value!);
  }
}

function throttled(what: string, ttlSeconds: number): CloudError {
  const after = Math.max(1, ttlSeconds);
  return new CloudError('LOGIN_THROTTLED', `too many attempts ${what}; retry in ${after} s`, after);
}
