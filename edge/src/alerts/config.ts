// Edge-local alerting (issue 5, item 5): the `localAlerts` key of the edge config. Strict like the rest
// of the config; absent = no local alerting. README.md § Edge-local alerting documents each key.
import { z } from 'zod';
import { FAMILIES } from '@citysense/proto';

const positiveInt = z.number().int().positive();
const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');
const Name = z.string().min(1).max(200);
const oneOrMany = <T extends z.ZodType<string>>(item: T) =>
  z.union([item, z.array(item).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

/** The cloud's rule ids and categories (cloud/src/alerts/rules.ts): a local rule names the cloud's rule. */
export const RULE_ID = /^[a-z0-9][a-z0-9_.-]{0,99}$/;
export const CATEGORIES = ['fire', 'elevator', 'environment', 'safety', 'device'] as const;
/** The cloud's target ids (cloud/src/config/schema.ts): the edge_notified attribute names them. */
export const TARGET_ID = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

/** Same meaning as a cloud rule's `match`: every given key must match; a list matches any of its values. */
export const localMatchSchema = z.strictObject({
  family: oneOrMany(z.enum(FAMILIES)).optional(),
  profile: oneOrMany(Name).optional(),
  district: oneOrMany(Name).optional(),
  device: oneOrMany(Name).optional(),
  tags: z.record(z.string(), z.string()).optional(),
});

const ruleFields = {
  /** The cloud's rule id (e.g. fire-alarm): the alert id and Idempotency-Key are computed from it. */
  id: z.string().regex(RULE_ID, 'a rule id is lower-case letters, digits, _ . - (the cloud rule\'s id)'),
  types: oneOrMany(Name),
  /** Only critical event rules run on the edge (issue 5). */
  severity: z.literal('critical', { error: 'only rules of severity critical run on the edge' }).default('critical'),
  category: z.enum(CATEGORIES),
  keyAttrs: z.array(Name).max(5).default([]),
  description: z.string().max(500).optional(),
  match: localMatchSchema.prefault({}),
};

export const localRuleSchema = z.strictObject(ruleFields);

/**
 * A rule as found in the cloud's rule files (cloud/rules/*.yaml): the same fields, plus keys the edge does
 * not use (kind, enabled, clearTypes, autoResolveAfter), which are allowed and ignored.
 */
export const cloudFileRuleSchema = z.object(ruleFields);

export const localTargetSchema = z
  .strictObject({
    /** The cloud's webhook target id for the same system (fire-system, emergency-management, ...). */
    id: z.string().regex(TARGET_ID, 'a target id is lower-case letters, digits, _ . - (the cloud\'s target id)'),
    url: z.url({ protocol: /^https?$/ }),
    /** HMAC-SHA256 key of X-Citysense-Signature: the same secret the cloud signs this target's webhooks with. */
    secret: z.string().min(8).optional(),
    /** Environment variable holding the secret (read at start; unset → the edge does not start). */
    secretEnv: EnvName.optional(),
    match: z
      .strictObject({
        categories: z.array(z.enum(CATEGORIES)).min(1).optional(),
        districts: z.array(z.string().min(1)).min(1).optional(),
      })
      .prefault({}),
    timeoutMs: z.number().int().min(100).max(120_000).default(5_000),
    maxAttempts: z.number().int().min(1).max(100).default(10),
    backoff: z
      .strictObject({ initialMs: positiveInt.default(1_000), maxMs: positiveInt.default(60_000) })
      .prefault({}),
  })
  .refine((t) => (t.secret === undefined) !== (t.secretEnv === undefined), { message: 'give secret or secretEnv (one of them)' });

export const localAlertsSchema = z
  .strictObject({
    /** Local event rules (critical only). */
    rules: z.array(localRuleSchema).default([]),
    /**
     * Cloud rule files (YAML/JSON, e.g. cloud/rules/fire.yaml), relative to the working directory: their
     * enabled event rules of severity critical run here too, under the same ids.
     */
    rulesFiles: z.array(z.string().min(1)).default([]),
    targets: z.array(localTargetSchema).min(1, 'local alerting needs at least one target'),
    /** An alarm event the cloud has not acknowledged within this long is alerted locally. */
    cloudDownAfterMs: positiveInt.default(3_000),
    /** Events older than this (by their own time) when the decision falls are not alerted locally. */
    maxEventAgeMs: positiveInt.default(3_600_000),
    /** The durable outbox of local notifications (JSON lines); default dataDir/local-alerts.jsonl. */
    outboxFile: z.string().min(1).optional(),
    /** Finished outbox entries are kept this long (so a batch resent later still carries edge_notified). */
    retainMs: positiveInt.default(7 * 86_400_000),
  })
  .superRefine((c, ctx) => {
    if (c.rules.length === 0 && c.rulesFiles.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['rules'], message: 'give rules, rulesFiles or both' });
    }
    const ids = new Set<string>();
    c.targets.forEach((t, i) => {
      if (ids.has(t.id)) ctx.addIssue({ code: 'custom', path: ['targets', i, 'id'], message: `target id ${t.id} is listed twice` });
      ids.add(t.id);
    });
    const rules = new Set<string>();
    c.rules.forEach((r, i) => {
      if (rules.has(r.id)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `rule id ${r.id} is listed twice` });
      rules.add(r.id);
    });
  });

export type LocalAlertsConfig = z.output<typeof localAlertsSchema>;
export type LocalRule = z.output<typeof localRuleSchema>;
export type LocalTargetConfig = z.output<typeof localTargetSchema>;
export type LocalMatch = z.output<typeof localMatchSchema>;
