// Webhook targets as data: from config (secret or secretEnv), plus the demo targets of contracts.md when
// CITYSENSE_WEBHOOK_URL is set. Routing is by the state change's category, severity, district and state.
import type { WebhookTargetConfig } from '../config/schema.ts';
import { WebhookTargetSchema } from '../config/schema.ts';
import { CloudConfigError } from '../errors.ts';

export interface WebhookTarget extends Omit<WebhookTargetConfig, 'secret' | 'secretEnv'> {
  secret: string;
}

/** What routing looks at in a state change. */
export interface Routable {
  category: string;
  severity: string;
  district: string;
  state: string;
}

export const DEMO_WEBHOOK_SECRET = 'demo-webhook-secret';
export const DEMO_WEBHOOK_URL_ENV = 'CITYSENSE_WEBHOOK_URL';

/** The four systems of the demo (contracts.md): fire, emergency management, elevator rescue, environment. */
export function demoTargets(url: string): WebhookTargetConfig[] {
  const t = (id: string, match: object) => WebhookTargetSchema.parse({ id, url, secret: DEMO_WEBHOOK_SECRET, match });
  return [
    t('fire-system', { categories: ['fire'] }),
    t('emergency-management', { severities: ['critical'] }),
    t('elevator-rescue', { categories: ['elevator'] }),
    t('environment-bureau', { categories: ['environment'] }),
  ];
}

export function resolveTargets(cfg: readonly WebhookTargetConfig[], demoFromEnv: boolean, env: Record<string, string | undefined>): WebhookTarget[] {
  const all = [...cfg];
  const demoUrl = env[DEMO_WEBHOOK_URL_ENV];
  if (demoFromEnv && demoUrl) {
    try {
      for (const d of demoTargets(demoUrl)) if (!all.some((t) => t.id === d.id)) all.push(d);
    } catch (err) {
      throw new CloudConfigError(`${DEMO_WEBHOOK_URL_ENV} is not a usable URL: ${(err as Error).message.slice(0, 200)}`);
    }
  }
  const missing: string[] = [];
  const out = all.map((t, i) => {
    const { secret, secretEnv, ...rest } = t;
    const value = secret ?? (secretEnv ? env[secretEnv] : undefined);
    if (!value) missing.push(`webhooks.targets[${i}].secretEnv: environment variable ${secretEnv} is not set`);
    return { ...rest, secret: value ?? '' };
  });
  if (missing.length) throw new CloudConfigError('webhook secrets are missing', missing);
  return out;
}

export function targetMatches(t: WebhookTarget, c: Routable): boolean {
  const m = t.match;
  if (m.categories && !m.categories.includes(c.category as never)) return false;
  if (m.severities && !m.severities.includes(c.severity as never)) return false;
  if (m.districts && !m.districts.includes(c.district)) return false;
  if (m.states && !m.states.includes(c.state as never)) return false;
  return true;
}
