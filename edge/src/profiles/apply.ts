// Applies a device's profile to what its decoder produced: names metrics, converts units, checks types
// and valid ranges, and turns values into events (a fault code into `entrapment`, an alarm bit into
// `smoke_alarm`). Pure but for the per-device event state it keeps (edge-triggered events).
import type { MetricValue, Priority } from '@citysense/proto';
import type { EventRule, MetricSpec, Profile } from './schema.ts';

/** What a decoder hands over: raw names and values from the payload. */
export interface RawSample {
  ts?: number | undefined;
  values: Record<string, MetricValue>;
  /** A data-quality flag from the source (HJ 212's N/F/M/S/D/C/T/B, OPC-UA's Uncertain). */
  quality?: string | undefined;
  /** Per-value flags from the source, by raw name; non-normal ones become `<metric>_flag` string values. */
  flags?: Record<string, string> | undefined;
  /** Tags of this sample beyond the device's (a fire panel's component, zone, floor). */
  tags?: Record<string, string> | undefined;
  /**
   * The device's other values as last known, by raw name (an OPC-UA input sends only what changed):
   * checked like values, used for event rules and attributes, never stored as readings.
   */
  context?: Record<string, MetricValue> | undefined;
}

export interface DerivedEvent {
  type: string;
  priority?: Priority | undefined;
  attrs: Record<string, string>;
}

export const PROFILE_VALUE_REJECT = {
  unknownMetric: 'unknown_metric',
  wrongType: 'wrong_type',
  notFinite: 'not_finite',
  outOfRange: 'out_of_range',
} as const;
export type ProfileValueReject = (typeof PROFILE_VALUE_REJECT)[keyof typeof PROFILE_VALUE_REJECT];

export interface ProfileOutcome {
  values: Record<string, MetricValue>;
  tags?: Record<string, string> | undefined;
  quality?: string | undefined;
  events: DerivedEvent[];
  rejected: { name: string; reason: ProfileValueReject }[];
}

/** Quality mark for a value kept outside its valid range (profile `outOfRange: flag`). */
export const OUT_OF_RANGE_QUALITY = 'out_of_range';
// HJ 212 interval statistics arrive as `code.min`; they keep the metric's name with a suffix.
const SUFFIXED = /^(.+)[._](min|avg|max|cou|zsrtd|zsavg|zsmin|zsmax)$/i;

export class ProfileRuntime {
  private readonly byName = new Map<string, MetricSpec>();
  private readonly sourceToName = new Map<string, string>();
  /** deviceId → rule index → whether the rule's condition held at the last value seen. */
  private readonly ruleState = new Map<string, boolean[]>();

  constructor(readonly profile: Profile) {
    for (const [name, spec] of Object.entries(profile.metrics)) {
      this.byName.set(name, spec);
      if (spec.source) this.sourceToName.set(spec.source, name);
    }
  }

  /** Our name for a raw payload name, and the spec that governs it (a suffixed statistic uses its base's). */
  /** Resolutions by source name: a profile sees the same few names in every message. */
  private readonly resolved = new Map<string, { name: string; spec: MetricSpec | undefined }>();

  private resolve(raw: string): { name: string; spec: MetricSpec | undefined } {
    let r = this.resolved.get(raw);
    if (!r) {
      r = this.resolveName(raw);
      // Bounded: a device inventing names must not grow it without end (they are then resolved each time).
      if (this.resolved.size < 4096) this.resolved.set(raw, r);
    }
    return r;
  }

  private resolveName(raw: string): { name: string; spec: MetricSpec | undefined } {
    const direct = this.sourceToName.get(raw);
    if (direct) return { name: direct, spec: this.byName.get(direct) };
    if (this.byName.has(raw)) return { name: raw, spec: this.byName.get(raw) };
    const m = SUFFIXED.exec(raw);
    if (m) {
      const base = this.sourceToName.get(m[1]!) ?? (this.byName.has(m[1]!) ? m[1]! : undefined);
      if (base) return { name: `${base}_${m[2]!.toLowerCase()}`, spec: this.byName.get(base) };
      return { name: raw.replace(/\./g, '_'), spec: undefined };
    }
    return { name: raw, spec: undefined };
  }

  /** One value through the profile: its name, converted value, and whether it is out of range (flag). */
  private check(raw: string, v: MetricValue): { name: string; v: MetricValue; flagged: boolean } | { name: string; reason: ProfileValueReject } {
    const p = this.profile;
    const { name, spec } = this.resolve(raw);
    if (!spec && p.unknownMetrics === 'refuse') return { name, reason: PROFILE_VALUE_REJECT.unknownMetric };
    if (spec?.type && typeof v !== spec.type) return { name, reason: PROFILE_VALUE_REJECT.wrongType };
    let flagged = false;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return { name, reason: PROFILE_VALUE_REJECT.notFinite };
      if (spec?.scale !== undefined || spec?.add !== undefined) v = convert(v, spec.scale ?? 1, spec.add ?? 0);
      if (spec && ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max))) {
        if (p.outOfRange === 'refuse') return { name, reason: PROFILE_VALUE_REJECT.outOfRange };
        flagged = true;
      }
    }
    return { name, v, flagged };
  }

  apply(deviceId: string, sample: RawSample): ProfileOutcome {
    const values: Record<string, MetricValue> = {};
    const rejected: ProfileOutcome['rejected'] = [];
    let flagged = false;
    for (const raw of Object.keys(sample.values)) {
      const r = this.check(raw, sample.values[raw]!);
      if ('reason' in r) {
        rejected.push(r);
        continue;
      }
      flagged ||= r.flagged;
      values[r.name] = r.v;
    }
    // HJ 212 flags one parameter (its Rtd, or its Min/Avg/Max together): a non-normal flag is kept as
    // `<metric>_flag` so a dashboard can tell a calibration value from a measured one.
    for (const [raw, flag] of Object.entries(sample.flags ?? {})) {
      if (flag && flag !== 'N') values[`${this.resolve(raw).name}_flag`] = flag;
    }
    let quality = sample.quality;
    if (flagged) quality = quality ? `${quality},${OUT_OF_RANGE_QUALITY}` : OUT_OF_RANGE_QUALITY;
    // Rules and attributes see the device's whole known state: the sample's values over the context
    // (values refused here are left out of it silently: they were counted when they arrived).
    let known = values;
    if (sample.context) {
      known = {};
      for (const [raw, v] of Object.entries(sample.context)) {
        const r = this.check(raw, v);
        if (!('reason' in r)) known[r.name] = r.v;
      }
      Object.assign(known, values);
    }
    return { values, quality, tags: sample.tags, events: this.deriveEvents(deviceId, known), rejected };
  }

  private deriveEvents(deviceId: string, values: Record<string, MetricValue>): DerivedEvent[] {
    const rules = this.profile.events;
    if (rules.length === 0) return [];
    let state = this.ruleState.get(deviceId);
    if (!state) this.ruleState.set(deviceId, (state = []));
    const out: DerivedEvent[] = [];
    rules.forEach((rule, i) => {
      const v = values[rule.when.metric];
      if (v === undefined) return;
      const now = holds(rule, v);
      const before = state[i];
      state[i] = now;
      if (now && before !== true) out.push({ type: rule.type, priority: rule.priority, attrs: renderAttrs(rule, values) });
      else if (!now && before === true && rule.clearType) out.push({ type: rule.clearType, priority: 'routine', attrs: renderAttrs(rule, values) });
    });
    return out;
  }
}

function holds(rule: EventRule, v: MetricValue): boolean {
  const c = rule.when;
  // Values compare as strings too, so a YAML `equals: 3` matches a fault code decoded as 3 or "3".
  if (c.equals !== undefined) return v === c.equals || String(v) === String(c.equals);
  if (c.in !== undefined) return c.in.some((x) => v === x || String(v) === String(x));
  if (typeof v !== 'number') return false;
  if (c.above !== undefined) return v > c.above;
  if (c.below !== undefined) return v < c.below;
  return false;
}

function renderAttrs(rule: EventRule, values: Record<string, MetricValue>): Record<string, string> {
  const attrs: Record<string, string> = {};
  for (const [k, tpl] of Object.entries(rule.attrs ?? {})) {
    attrs[k] = tpl.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => (values[name] === undefined ? '' : String(values[name])));
  }
  attrs[rule.when.metric] ??= String(values[rule.when.metric]);
  return attrs;
}

/**
 * v × scale + add, rounded to the decimals its inputs justify, so 253 × 0.1 is 25.3 and not
 * 25.299999999999997 (the exact decimal then also travels compactly, see docs/protocol.md).
 */
export function convert(v: number, scale: number, add: number): number {
  const r = v * scale + add;
  const decimals = Math.max(decimalsOf(v) + decimalsOf(scale), decimalsOf(add));
  if (decimals > 15 || !Number.isFinite(r)) return r;
  const p = 10 ** decimals;
  const rounded = Math.round(r * p) / p;
  return Number.isFinite(rounded) ? rounded : r;
}

function decimalsOf(n: number): number {
  if (Number.isInteger(n)) return 0;
  const s = String(n);
  const e = s.indexOf('e-');
  if (e >= 0) {
    const mant = s.slice(0, e);
    const dot = mant.indexOf('.');
    return Number(s.slice(e + 2)) + (dot >= 0 ? mant.length - dot - 1 : 0);
  }
  return s.length - s.indexOf('.') - 1;
}
