// A building's fire-protection point as GB 26875 transmission devices report it: a smoke detector's
// obscuration, the space temperature (0.1 °C resolution) and the sprinkler main's pressure (MPa).
import type { Rng } from '../rng.ts';
import { clamp, HOUR_MS, MINUTE_MS, ou, report, winterness } from './common.ts';
import { defineFamily, type DeviceInfo, type MetricSpec, type SimEvent, type StepResult } from './types.ts';

const metrics = {
  smoke_obscuration: { unit: '%/m', min: 0, max: 25, decimals: 2 },
  temperature: { unit: '°C', min: -10, max: 90, decimals: 1 },
  sprinkler_pressure: { unit: 'MPa', min: 0, max: 1.6, decimals: 3 },
} as const satisfies Record<string, MetricSpec>;

/** Photoelectric detectors typically alarm between about 2 and 4 %/m. */
const ALARM_OBSCURATION = 3;
/**
 * Chance per reading that a smoke episode (cooking, dust, a real fire) starts, and of a fault report.
 * Per reading rather than per hour so that a short simulator run still sees some, whatever its rate.
 */
const EPISODE_CHANCE = 0.002;
const FAULT_CHANCE = 0.0005;
const FAULT_CODES = ['detector_dirty', 'loop_open', 'main_power_fault', 'backup_battery_low'] as const;

export interface FireState {
  lastTs: number;
  zone: string;
  cleanAir: number;
  smoke: number;
  /** Readings left in the current smoke episode, and how high it peaks. */
  episodeLength: number;
  episodeLeft: number;
  episodePeak: number;
  alarmed: boolean;
  setpoint: number;
  tempAnomaly: number;
  pressureMean: number;
  pressure: number;
}

function init(rng: Rng, _device: DeviceInfo, ts: number): FireState {
  const floor = rng.pick(['B2', 'B1', '1F', '2F', '3F', '5F', '8F', '12F']);
  const cleanAir = rng.uniform(0.01, 0.08);
  const pressureMean = rng.uniform(0.33, 0.47);
  return {
    lastTs: ts,
    zone: `${floor}-${String(rng.int(1, 40)).padStart(2, '0')}`,
    cleanAir,
    smoke: cleanAir,
    episodeLength: 0,
    episodeLeft: 0,
    episodePeak: 0,
    alarmed: false,
    // Heated in winter, air-conditioned in summer.
    setpoint: 22 + 2.5 * -winterness(ts) + rng.uniform(-1.5, 1.5),
    tempAnomaly: 0.5 * rng.normal(),
    pressureMean,
    pressure: pressureMean,
  };
}

function step(rng: Rng, prev: FireState, ts: number): StepResult<FireState> {
  const dt = ts - prev.lastTs;
  const events: SimEvent[] = [];
  let { episodeLength, episodeLeft, episodePeak, alarmed } = prev;

  if (episodeLeft === 0 && rng.chance(EPISODE_CHANCE)) {
    episodeLength = rng.int(4, 12);
    episodeLeft = episodeLength;
    // Most episodes are nuisance smoke that stays below the alarm level; a few cross it.
    episodePeak = rng.chance(0.3) ? rng.uniform(ALARM_OBSCURATION, 12) : rng.uniform(0.3, ALARM_OBSCURATION * 0.8);
  }
  let smoke: number;
  if (episodeLeft > 0) {
    // Rise to the peak and fall back over the episode: a half sine over its readings.
    const i = episodeLength - episodeLeft + 1;
    smoke = prev.cleanAir + episodePeak * Math.sin((Math.PI * i) / (episodeLength + 1)) + 0.02 * rng.normal();
    episodeLeft -= 1;
  } else {
    smoke = ou(rng, prev.smoke, prev.cleanAir, 0.015, 10 * MINUTE_MS, dt);
  }
  smoke = clamp(smoke, 0, metrics.smoke_obscuration.max);
  const smokeReport = report(smoke, metrics.smoke_obscuration);

  if (!alarmed && smokeReport >= ALARM_OBSCURATION) {
    alarmed = true;
    events.push({ type: 'fire_alarm', attrs: { zone: prev.zone, obscuration: smokeReport } });
  } else if (alarmed && smokeReport < ALARM_OBSCURATION / 2) {
    alarmed = false;
    events.push({ type: 'fire_alarm_cleared', attrs: { zone: prev.zone } });
  }
  if (rng.chance(FAULT_CHANCE)) {
    events.push({ type: 'fault', attrs: { zone: prev.zone, code: rng.pick(FAULT_CODES) } });
  }

  const tempAnomaly = ou(rng, prev.tempAnomaly, 0, 0.5, 2 * HOUR_MS, dt);
  // Hot smoke warms the space a little; the detector head sees it.
  const temperature = prev.setpoint + tempAnomaly + 1.5 * Math.max(0, smoke - 1);
  // Jockey pumps hold the main near its set pressure; small, slow drift plus sensor noise.
  const pressure = ou(rng, prev.pressure, prev.pressureMean, 0.01, 30 * MINUTE_MS, dt);
  const pressureReading = pressure + 0.002 * rng.normal();

  return {
    state: { ...prev, lastTs: ts, smoke, episodeLength, episodeLeft, episodePeak, alarmed, tempAnomaly, pressure },
    metrics: {
      smoke_obscuration: smokeReport,
      temperature: report(temperature, metrics.temperature),
      sprinkler_pressure: report(pressureReading, metrics.sprinkler_pressure),
    },
    events,
  };
}

export const fire = defineFamily<FireState>({
  name: 'fire',
  transport: 'mqtt',
  description: 'fire-protection point: smoke obscuration, space temperature, sprinkler main pressure',
  models: ['FPT-2100', 'FPT-3000', 'SmokeGuard-4'],
  metrics,
  init,
  step,
});
