// Alert rules as data: the schema every rule file and inline rule is validated against, and the loader
// that reads rule files (YAML or JSON) and names the file and path of any mistake.
//
// Four kinds, told apart by `kind`:
//   threshold  a metric `above`, `below`, `outside` a range or `equals` a state, optionally `for` a while,
//              with an optional separate `clear` condition (hysteresis) and `clearFor`
//   rate       a metric that rises or falls by more than an amount within a `window`
//   offline    a device that has sent nothing for `after`, or for `intervals` × its expected interval
//   event      a device event of one of `types` fires at once; `clearTypes` (default <type>_cleared) clear
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FAMILIES } from '@citysense/proto';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CloudConfigError } from '../errors.ts';
import { Duration } from './duration.ts';

export const SEVERITIES = ['info', 'minor', 'major', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const CATEGORIES = ['fire', 'elevator', 'environment', 'safety', 'device'] as const;
export type Category = (typeof CATEGORIES)[number];

const oneOrMany = <T extends z.ZodType<string>>(item: T) =>
  z.union([item, z.array(item).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

const Name = z.string().min(1).max(200);

/** Which readings or events a rule looks at. Every given key must match; a list matches any of its values. */
export const MatchSchema = z.strictObject({
  family: oneOrMany(z.enum(FAMILIES)).optional(),
  /** The reading's `profile` tag, or its `model` tag (the edge stamps the profile's model on every reading). */
  profile: oneOrMany(Name).optional(),
  district: oneOrMany(Name).optional(),
  device: oneOrMany(Name).optional(),
  /** Other tags that must have these values (site, building, ...). */
  tags: z.record(z.string(), z.string()).optional(),
});
export type RuleMatch = z.output<typeof MatchSchema>;

const Range = z
  .tuple([z.number(), z.number()])
  .refine(([lo, hi]) => lo < hi, { message: 'a range is [low, high] with low < high' });
const StateValue = z.union([z.number(), z.boolean(), z.string()]);

/** A value condition: exactly one of the keys. */
export const ConditionSchema = z
  .strictObject({
    above: z.number().optional(),
    below: z.number().optional(),
    outside: Range.optional(),
    inside: Range.optional(),
    equals: StateValue.optional(),
    notEquals: StateValue.optional(),
  })
  .refine((c) => Object.values(c).filter((v) => v !== undefined).length === 1, {
    message: 'give exactly one of above, below, outside, inside, equals, notEquals',
  });
export type Condition = z.output<typeof ConditionSchema>;

const RuleId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_.-]{0,99}$/, 'a rule id is lower-case letters, digits, _ . - (at most 100), starting with a letter or digit');

const Base = {
  id: RuleId,
  description: z.string().max(500).optional(),
  category: z.enum(CATEGORIES),
  severity: z.enum(SEVERITIES),
  match: MatchSchema.prefault({}),
  enabled: z.boolean().default(true),
};

const ThresholdRule = z
  .strictObject({
    ...Base,
    kind: z.literal('threshold'),
    metric: Name,
    above: z.number().optional(),
    below: z.number().optional(),
    outside: Range.optional(),
    equals: StateValue.optional(),
    /** The condition must hold this long (by the readings' own timestamps) before the alert fires. */
    for: Duration.default(0),
    /** When the alert clears (hysteresis); default: as soon as the firing condition no longer holds. */
    clear: ConditionSchema.optional(),
    /** The clear condition must hold this long before the alert resolves. */
    clearFor: Duration.default(0),
  })
  .superRefine((r, ctx) => {
    const given = (['above', 'below', 'outside', 'equals'] as const).filter((k) => r[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({ code: 'custom', path: [], message: `a threshold rule gives exactly one of above, below, outside, equals (got ${given.length ? given.join(', ') : 'none'})` });
    }
    if (r.clear?.above !== undefined && r.above !== undefined && r.clear.above > r.above) {
      ctx.addIssue({ code: 'custom', path: ['clear', 'above'], message: 'an alert that fires above a value cannot clear above a higher one' });
    }
    if (r.clear?.below !== undefined && r.above !== undefined && r.clear.below > r.above) {
      ctx.addIssue({ code: 'custom', path: ['clear', 'below'], message: `clear.below must be at most above (${r.above}): that gap is the hysteresis` });
    }
    if (r.clear?.above !== undefined && r.below !== undefined && r.clear.above < r.below) {
      ctx.addIssue({ code: 'custom', path: ['clear', 'above'], message: `clear.above must be at least below (${r.below}): that gap is the hysteresis` });
    }
  });

const RateRule = z
  .strictObject({
    ...Base,
    kind: z.literal('rate'),
    metric: Name,
    /** Fires when the value rose by more than this within the window. */
    rise: z.number().positive().optional(),
    /** Fires when the value fell by more than this within the window. */
    fall: z.number().positive().optional(),
    window: Duration.refine((ms) => ms > 0, 'the window must be longer than 0'),
    /** Clears when the change within the window is back under these (default: under rise / fall). */
    clear: z.strictObject({ rise: z.number().min(0).optional(), fall: z.number().min(0).optional() }).optional(),
  })
  .refine((r) => r.rise !== undefined || r.fall !== undefined, { message: 'a rate rule gives rise, fall or both' });

const OfflineRule = z
  .strictObject({
    ...Base,
    kind: z.literal('offline'),
    /** Silence that counts as offline; default intervals × the device's expected reporting interval. */
    after: Duration.optional(),
    intervals: z.number().positive().default(3),
    /** The device's expected reporting interval; default alerts.expectedIntervalMs[family]. */
    expectedInterval: Duration.optional(),
  });

const EventRule = z.strictObject({
  ...Base,
  kind: z.literal('event'),
  types: oneOrMany(Name),
  /** Event types that resolve the alert; default <type>_cleared for each type. */
  clearTypes: oneOrMany(Name).optional(),
  /** One alert per distinct value of these event attrs (e.g. a fire panel's `zone`), not one per device. */
  keyAttrs: z.array(Name).max(5).default([]),
  /** Resolves an event alert nobody cleared after this long (default: stays until cleared or resolved). */
  autoResolveAfter: Duration.optional(),
});

export const RuleSchema = z.discriminatedUnion('kind', [ThresholdRule, RateRule, OfflineRule, EventRule]);
export type Rule = z.output<typeof RuleSchema>;
export type RuleInput = z.input<typeof RuleSchema>;
export type ThresholdRuleT = z.output<typeof ThresholdRule>;
export type RateRuleT = z.output<typeof RateRule>;
export type OfflineRuleT = z.output<typeof OfflineRule>;
export type EventRuleT = z.output<typeof EventRule>;

const RuleFileSchema = z.union([z.strictObject({ rules: z.array(RuleSchema) }), z.array(RuleSchema)]);

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

/** Validates rules from one source; mistakes are named `<source>: <path>: <message>`. */
export function parseRules(raw: unknown, source: string): Rule[] {
  const r = RuleFileSchema.safeParse(raw);
  if (!r.success) {
    // A file that is an object reports paths under `rules`; pick the branch's issues that match the shape.
    const issues = r.error.issues.flatMap((i) =>
      i.code === 'invalid_union' && 'errors' in i ? (i.errors as z.core.$ZodIssue[][])[Array.isArray(raw) ? 1 : 0]! : [i],
    );
    throw new CloudConfigError(`alert rules in ${source} are not valid`, issues.map((i) => `${source}: ${formatPath(i.path)}: ${i.message}`));
  }
  return Array.isArray(r.data) ? r.data : r.data.rules;
}

/** The rule files a path stands for: the file, or the .yaml/.yml/.json files of a directory, sorted. */
function ruleFiles(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new CloudConfigError(`alerts.rulesFiles: cannot read ${path}: ${(err as Error).message}`);
  }
  if (!st.isDirectory()) return [path];
  return readdirSync(path)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort()
    .map((f) => join(path, f));
}

/** Where each loaded rule was written (a file, or alerts.rules[i]): GET /v1/rules shows it. */
const SOURCES = new WeakMap<Rule, string>();

/** The file (or `alerts.rules[i]`) a rule of loadRules came from; undefined for a rule made otherwise. */
export function ruleSource(rule: Rule): string | undefined {
  return SOURCES.get(rule);
}

/** Reads rule files and directories, then inline rules; refuses a rule id given twice. */
export function loadRules(paths: readonly string[], inline: readonly Rule[] = []): Rule[] {
  const rules: Rule[] = [];
  const seen = new Map<string, string>();
  const add = (rule: Rule, where: string) => {
    const before = seen.get(rule.id);
    if (before) throw new CloudConfigError(`alert rule id "${rule.id}" is defined twice: in ${before} and in ${where}`);
    seen.set(rule.id, where);
    SOURCES.set(rule, where);
    rules.push(rule);
  };
  for (const p of paths) {
    for (const file of ruleFiles(p)) {
      let raw: unknown;
      try {
        raw = parseYaml(readFileSync(file, 'utf8'), { prettyErrors: true, uniqueKeys: true });
      } catch (err) {
        throw new CloudConfigError(`alert rules file ${file} is not valid YAML/JSON: ${(err as Error).message}`);
      }
      for (const rule of parseRules(raw ?? [], file)) add(rule, file);
    }
  }
  inline.forEach((rule, i) => add(rule, `alerts.rules[${i}]`));
  return rules.filter((r) => r.enabled);
}

/** The default rules shipped with the cloud (cloud/rules/). */
export const DEFAULT_RULES_DIR = new URL('../../rules/', import.meta.url).pathname;
