// The `gb26875:` section of a fire panel's device profile: where each component is (the fire brigade
// needs the zone), which state bits become which events, and what analog values are called. Validated
// once at load; every mistake is reported with its path.
import { z } from 'zod';
import { refusal, type Gb26875Refusal } from './errors.ts';

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const metricName = z.string().regex(NAME, 'a metric name is a letter or _, then letters, digits or _ (at most 64)');
const eventType = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'an event type is lower-case letters, digits and _ (e.g. fire_alarm)');
/** YAML gives `floor: 3` as a number; a floor is a label ("B2", "12"), so numbers become text. */
const label = z.union([z.string().min(1).max(128), z.number().finite()]).transform(String);
const byteCode = z.string().regex(/^(0|[1-9]\d{0,2})$/, 'a code from 0 to 255').refine((s) => Number(s) <= 255, 'a code from 0 to 255');
const priority = z.enum(['routine', 'warning', 'alarm']);

const componentSchema = z.strictObject({
  building: label.optional(),
  floor: label.optional(),
  zone: label.optional(),
  /** What people call it: "smoke detector by lift lobby 3F". */
  name: label.optional(),
  /** Overrides the component-type name from the frame (`component_type` attribute). */
  kind: metricName.optional(),
  /** Name of this component's analog readings, over the analog rules. */
  metric: metricName.optional(),
});

/** A state bit → event: `false` turns a default off. */
const bitEvent = z.union([
  z.literal(false),
  z.strictObject({
    type: eventType,
    priority,
    /** Fire `<type>_cleared` (routine) when the bit falls. Default true. */
    cleared: z.boolean().optional(),
  }),
]);
const bits16 = z.record(z.string().regex(/^(1[0-5]|[0-9])$/, 'a bit from 0 to 15'), bitEvent);
const bits8 = z.record(z.string().regex(/^[0-7]$/, 'a bit from 0 to 7'), bitEvent);

const analogTypeSchema = z.strictObject({
  metric: metricName,
  unit: z.string().max(32),
  /** Unit per count of the raw 2-byte signed value. */
  scale: z.number().finite().refine((x) => x !== 0, 'must not be 0'),
  min: z.number().finite().optional(),
  max: z.number().finite().optional(),
});

const analogRuleSchema = z.strictObject({
  analogType: z.number().int().min(0).max(255),
  systemType: z.number().int().min(0).max(255).optional(),
  componentType: z.number().int().min(0).max(255).optional(),
  metric: metricName,
});

/** `"<systemAddress>:<componentAddress>"` or `"<componentAddress>"` (decimal, the 4-byte address as an unsigned integer). */
export const COMPONENT_KEY = /^(?:(0|[1-9]\d{0,2}):)?(0|[1-9]\d{0,9})$/;

export const gb26875ProfileSchema = z
  .strictObject({
    /** The panel's clock: minutes east of UTC. China time is +480 (GB/T 26875.3 times carry no zone). */
    timezoneOffsetMinutes: z.number().int().min(-720).max(840).default(480),
    /** Building of every component that does not name its own. */
    building: label.optional(),
    components: z
      .record(z.string().regex(COMPONENT_KEY, 'a component key is "<systemAddress>:<componentAddress>" or "<componentAddress>", decimal'), componentSchema)
      .default({}),
    /** Overrides of the default bit → event tables (docs/protocols/fire-gb26875.md). */
    stateEvents: z
      .strictObject({
        system: bits16.optional(),
        component: bits16.optional(),
        device: bits8.optional(),
      })
      .default({}),
    /** Analog types: added (vendor codes, e.g. 128 smoke obscuration) or overriding the standard's rows. */
    analogTypes: z.record(byteCode, analogTypeSchema).default({}),
    /** Naming rules for analog values, first match wins, before the built-in ones (sprinkler_pressure, tank_level). */
    analogMetrics: z.array(analogRuleSchema).default([]),
    /** Components whose last state is remembered per panel; past it the oldest is forgotten. */
    maxTrackedStates: z.number().int().min(16).max(1_000_000).default(10_000),
  })
  .superRefine((p, ctx) => {
    for (const [code, t] of Object.entries(p.analogTypes)) {
      if (t.min !== undefined && t.max !== undefined && t.min > t.max) ctx.addIssue({ code: 'custom', path: ['analogTypes', code, 'max'], message: 'max is below min' });
    }
    for (const key of Object.keys(p.components)) {
      const m = COMPONENT_KEY.exec(key);
      if (m && ((m[1] !== undefined && Number(m[1]) > 255) || Number(m[2]) > 0xffffffff)) {
        ctx.addIssue({ code: 'custom', path: ['components', key], message: 'a system address is at most 255, a component address at most 4294967295' });
      }
    }
  });

export type Gb26875ProfileInput = z.input<typeof gb26875ProfileSchema>;
export type Gb26875Profile = z.output<typeof gb26875ProfileSchema>;
export type Gb26875Component = z.output<typeof componentSchema>;

export type Gb26875ProfileResult = { ok: true; profile: Gb26875Profile } | { ok: false; refusal: Gb26875Refusal; issues: Array<{ path: string; message: string }> };

/** Validate a gb26875 section (parsed from YAML/JSON). Never throws. */
export function loadGb26875Profile(input: unknown): Gb26875ProfileResult {
  const r = gb26875ProfileSchema.safeParse(input ?? {});
  if (r.success) return { ok: true, profile: r.data };
  const issues = r.error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => ({ path: formatPath([...i.path, k]), message: 'unknown key (a typo?)' }))
      : [{ path: formatPath(i.path), message: i.message }],
  );
  return { ok: false, issues, refusal: refusal('GB26875_BAD_PROFILE', issues.map((i) => `${i.path || '(section)'}: ${i.message}`).join('; ')) };
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}
