import type { Rng } from '../rng.ts';

/** Metric name → value, as it goes into the generic JSON profile's `metrics` object. */
export type Metrics = Record<string, number>;

/** A discrete happening, published to `devices/{id}/events` as `{ts, type, attrs}`. */
export interface SimEvent {
  type: string;
  attrs: Record<string, string | number | boolean>;
}

export interface MetricSpec {
  unit: string;
  /** The physically plausible range; generators clamp into it and tests check it. */
  min: number;
  max: number;
  /** Decimal places the instrument reports (0 = integers). */
  decimals: number;
}

export interface DeviceInfo {
  id: string;
  family: string;
  district?: string;
}

export interface StepResult<S> {
  state: S;
  metrics: Metrics;
  events: SimEvent[];
}

/**
 * A sensor family. `init` and `step` are pure apart from the draws they take from `rng`: the same rng
 * stream, state and timestamp always give the same result, which is what makes a seeded run repeatable.
 * They must never read the clock; `ts` is the reading's own (simulated) time.
 */
export interface Family<S> {
  name: string;
  /** How the family reaches the edge. Only 'mqtt' runs today; OPC-UA (elevators) plugs in here later. */
  transport: 'mqtt' | 'opcua';
  description: string;
  /** Instrument models a registry entry's `tags.model` is drawn from. */
  models: readonly string[];
  metrics: Readonly<Record<string, MetricSpec>>;
  init(rng: Rng, device: DeviceInfo, ts: number): S;
  step(rng: Rng, state: S, ts: number): StepResult<S>;
}

/** A family with its state type erased, so families of different state types share one registry. */
export type AnyFamily = Family<unknown>;

/**
 * Erases the state type. Safe because the runner only ever feeds a family the state that the same
 * family's `init`/`step` returned.
 */
export function defineFamily<S>(family: Family<S>): AnyFamily {
  return family as unknown as AnyFamily;
}
