// Pure rule evaluation: given a series' state (one rule × one device, or × one key of an event rule) and a
// new value, what happens. No I/O and no clock: times are the readings' own (or the caller's wall clock
// for offline rules), so tests and restarts replay exactly.
import type { MetricValue } from '@citysense/proto';
import type { Condition, RateRuleT, Rule, RuleMatch, ThresholdRuleT } from './rules.ts';

export type Phase = 'ok' | 'pending' | 'firing' | 'latched';

/** Durable state of one series. `latched`: an operator resolved it while the condition held; it waits for the clear condition before it may fire again. */
export interface SeriesState {
  phase: Phase;
  /** pending: since when the firing condition has held. */
  since?: number | undefined;
  /** firing: since when the clear condition has held. */
  clearSince?: number | undefined;
  alertId?: string | undefined;
  lastTs: number;
  /** rate rules: [ts, value] within the window, oldest first. */
  samples?: [number, number][] | undefined;
  /** recent firing times, for flapping. */
  firings?: number[] | undefined;
  /** the firing alert is flapping: it resolves only after alerts.flapping.quietMs of calm. */
  flapping?: boolean | undefined;
  /** when the firing alert fired (wall clock for offline, the reading's or event's time otherwise). */
  firedAt?: number | undefined;
}

export type Step =
  | { kind: 'none' }
  | { kind: 'fire'; value: MetricValue; threshold: unknown; startedAt: number }
  | { kind: 'resolve'; value: MetricValue };

const NONE: Step = { kind: 'none' };

export function conditionHolds(c: Condition, v: MetricValue): boolean | undefined {
  if (c.equals !== undefined) return v === c.equals;
  if (c.notEquals !== undefined) return v !== c.notEquals;
  if (typeof v !== 'number') return undefined;
  if (c.above !== undefined) return v > c.above;
  if (c.below !== undefined) return v < c.below;
  if (c.outside) return v < c.outside[0] || v > c.outside[1];
  if (c.inside) return v >= c.inside[0] && v <= c.inside[1];
  return undefined;
}

export function fireCondition(r: ThresholdRuleT): Condition {
  if (r.above !== undefined) return { above: r.above };
  if (r.below !== undefined) return { below: r.below };
  if (r.outside) return { outside: r.outside };
  return { equals: r.equals! };
}

export function thresholdOf(r: ThresholdRuleT): unknown {
  return r.above ?? r.below ?? r.outside ?? r.equals;
}

/** Threshold rule: `for` before firing, `clear` (or the negation) and `clearFor` before resolving. */
export function stepThreshold(r: ThresholdRuleT, s: SeriesState, ts: number, v: MetricValue, clearForMs: number): Step {
  const fire = conditionHolds(fireCondition(r), v);
  if (fire === undefined) return NONE; // a value of another type (e.g. text where a number is expected)
  const clear = r.clear ? conditionHolds(r.clear, v) : !fire;
  switch (s.phase) {
    case 'latched':
      if (clear) s.phase = 'ok';
      return NONE;
    case 'ok':
    case 'pending':
      if (!fire) {
        s.phase = 'ok';
        s.since = undefined;
        return NONE;
      }
      if (s.phase === 'ok') {
        s.phase = 'pending';
        s.since = ts;
      }
      if (ts - s.since! >= r.for) return { kind: 'fire', value: v, threshold: thresholdOf(r), startedAt: s.since! };
      return NONE;
    case 'firing':
      if (!clear) {
        s.clearSince = undefined;
        return NONE;
      }
      s.clearSince ??= ts;
      return ts - s.clearSince >= clearForMs ? { kind: 'resolve', value: v } : NONE;
  }
}

/** Rate rule: the rise (value − lowest in the window) or fall (highest in the window − value). */
export function stepRate(r: RateRuleT, s: SeriesState, ts: number, v: number, maxSamples: number, clearForMs: number): Step {
  const samples = (s.samples ??= []);
  samples.push([ts, v]);
  while (samples.length > 1 && samples[0]![0] < ts - r.window) samples.shift();
  if (samples.length > maxSamples) {
    // Thin the middle, keeping the oldest and the newest: the window's extremes may be approximated.
    for (let i = samples.length - 2; i > 0 && samples.length > maxSamples; i -= 2) samples.splice(i, 1);
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i]![1];
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  const rise = v - lo;
  const fall = hi - v;
  const firesRise = r.rise !== undefined && rise > r.rise;
  const firesFall = r.fall !== undefined && fall > r.fall;
  const clearRise = r.rise === undefined || rise <= (r.clear?.rise ?? r.rise);
  const clearFall = r.fall === undefined || fall <= (r.clear?.fall ?? r.fall);
  switch (s.phase) {
    case 'latched':
      if (clearRise && clearFall) s.phase = 'ok';
      return NONE;
    case 'ok':
    case 'pending':
      if (firesRise || firesFall) {
        const value = firesRise ? rise : -fall;
        return { kind: 'fire', value, threshold: firesRise ? r.rise : -r.fall!, startedAt: ts };
      }
      return NONE;
    case 'firing':
      if (!(clearRise && clearFall)) {
        s.clearSince = undefined;
        return NONE;
      }
      s.clearSince ??= ts;
      return ts - s.clearSince >= clearForMs ? { kind: 'resolve', value: firesFall ? -fall : rise } : NONE;
  }
}

/** Does a reading or event with these attributes fall under the rule's `match`? */
export function matches(m: RuleMatch, deviceId: string, family: string, tags: Readonly<Record<string, string>> | undefined): boolean {
  if (m.family && !m.family.includes(family as never)) return false;
  if (m.device && !m.device.includes(deviceId)) return false;
  if (m.district && !m.district.includes(tags?.district ?? '')) return false;
  if (m.profile && !m.profile.includes(tags?.profile ?? '') && !m.profile.includes(tags?.model ?? '')) return false;
  if (m.tags) for (const k in m.tags) if (tags?.[k] !== m.tags[k]) return false;
  return true;
}

export function isReadingRule(r: Rule): r is ThresholdRuleT | RateRuleT {
  return r.kind === 'threshold' || r.kind === 'rate';
}
