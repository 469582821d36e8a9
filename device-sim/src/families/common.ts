import type { Rng } from '../rng.ts';
import type { MetricSpec } from './types.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** The sensors are in Zhengzhou; daily cycles follow China Standard Time (UTC+8, no DST). */
const CST_OFFSET_MS = 8 * HOUR_MS;

export const MINUTE_MS = 60_000;
export { HOUR_MS, DAY_MS };

/** Local hour of day in [0, 24), fractional. */
export function localHour(ts: number): number {
  const ms = (((ts + CST_OFFSET_MS) % DAY_MS) + DAY_MS) % DAY_MS;
  return ms / HOUR_MS;
}

/** +1 in mid-January (winter), −1 in mid-July (summer); drives the seasonal means. */
export function winterness(ts: number): number {
  const dayOfYear = ((ts + CST_OFFSET_MS) / DAY_MS) % 365.2425;
  return Math.cos((2 * Math.PI * (dayOfYear - 15)) / 365.2425);
}

/** A cosine bump over the day peaking at `peakHour`, in [−1, 1]. */
export function dailyCycle(ts: number, peakHour: number): number {
  return Math.cos((2 * Math.PI * (localHour(ts) - peakHour)) / 24);
}

/**
 * One Ornstein–Uhlenbeck step: a random walk pulled back towards `mean`, with stationary standard
 * deviation `sd` and correlation time `tauMs`. Scaling by the elapsed time keeps a series' statistics the
 * same whatever the reporting interval, and the pull-back keeps it from wandering off over long runs.
 */
export function ou(rng: Rng, x: number, mean: number, sd: number, tauMs: number, dtMs: number): number {
  if (dtMs <= 0) return x;
  const decay = Math.exp(-dtMs / tauMs);
  return mean + (x - mean) * decay + sd * Math.sqrt(1 - decay * decay) * rng.normal();
}

export function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/** Rounds to `decimals` places without binary noise like 35.199999999999996. */
export function round(x: number, decimals: number): number {
  return Number(x.toFixed(decimals));
}

/** Clamps into the metric's range and rounds as the instrument reports it. */
export function report(x: number, spec: MetricSpec): number {
  return round(clamp(x, spec.min, spec.max), spec.decimals);
}
