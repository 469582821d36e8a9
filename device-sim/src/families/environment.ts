// Air-quality and noise station (the MQTT kind; HJ 212 stations report the same quantities over TCP).
// Units as Chinese stations send them: µg/m³ for particulates and gases, mg/m³ for CO (HJ 633 / HJ 212
// practice), °C, %RH, dB(A).
import type { Rng } from '../rng.ts';
import { clamp, dailyCycle, HOUR_MS, MINUTE_MS, ou, report, winterness } from './common.ts';
import { defineFamily, type DeviceInfo, type MetricSpec, type StepResult } from './types.ts';

const metrics = {
  pm25: { unit: 'µg/m³', min: 1, max: 999, decimals: 1 },
  pm10: { unit: 'µg/m³', min: 1, max: 1500, decimals: 0 },
  no2: { unit: 'µg/m³', min: 1, max: 500, decimals: 0 },
  so2: { unit: 'µg/m³', min: 1, max: 500, decimals: 0 },
  o3: { unit: 'µg/m³', min: 1, max: 500, decimals: 0 },
  co: { unit: 'mg/m³', min: 0.1, max: 30, decimals: 1 },
  temperature: { unit: '°C', min: -25, max: 48, decimals: 1 },
  humidity: { unit: '%', min: 5, max: 100, decimals: 1 },
  noise: { unit: 'dB(A)', min: 30, max: 110, decimals: 1 },
} as const satisfies Record<string, MetricSpec>;

export interface EnvironmentState {
  lastTs: number;
  // Site character, fixed at installation.
  siteParticulate: number;
  siteTraffic: number;
  siteNoiseBase: number;
  siteTempBias: number;
  // Latent weather and pollution processes. One shared `pollution` factor (log scale: stagnant air
  // raises everything at once) is what makes PM, NO2, SO2 and CO move together.
  pollution: number;
  coarseRatio: number;
  ozone: number;
  tempAnomaly: number;
  humidityAnomaly: number;
  noiseAnomaly: number;
}

const POLLUTION_SD = 0.45;

function init(rng: Rng, _device: DeviceInfo, ts: number): EnvironmentState {
  return {
    lastTs: ts,
    siteParticulate: rng.uniform(0.75, 1.3),
    siteTraffic: rng.uniform(0.6, 1.4),
    siteNoiseBase: rng.uniform(50, 64),
    siteTempBias: rng.uniform(-0.8, 0.8),
    pollution: POLLUTION_SD * rng.normal(),
    coarseRatio: 1.7 + 0.2 * rng.normal(),
    ozone: 0.25 * rng.normal(),
    tempAnomaly: 1.5 * rng.normal(),
    humidityAnomaly: 6 * rng.normal(),
    noiseAnomaly: 2 * rng.normal(),
  };
}

function step(rng: Rng, prev: EnvironmentState, ts: number): StepResult<EnvironmentState> {
  const dt = ts - prev.lastTs;
  const state: EnvironmentState = {
    ...prev,
    lastTs: ts,
    pollution: ou(rng, prev.pollution, 0, POLLUTION_SD, 8 * HOUR_MS, dt),
    coarseRatio: ou(rng, prev.coarseRatio, 1.7, 0.2, 3 * HOUR_MS, dt),
    ozone: ou(rng, prev.ozone, 0, 0.25, 4 * HOUR_MS, dt),
    tempAnomaly: ou(rng, prev.tempAnomaly, 0, 1.5, 3 * HOUR_MS, dt),
    humidityAnomaly: ou(rng, prev.humidityAnomaly, 0, 6, 4 * HOUR_MS, dt),
    noiseAnomaly: ou(rng, prev.noiseAnomaly, 0, 2, 5 * MINUTE_MS, dt),
  };

  const winter = winterness(ts);
  // Zhengzhou: about 1 °C in January, 28 °C in July, warmest mid-afternoon.
  const diurnalTemp = dailyCycle(ts, 15);
  const temperature = 15 - 13.5 * winter + 5 * diurnalTemp + state.siteTempBias + state.tempAnomaly;
  // Relative humidity falls as the air warms through the day; summers are the humid season.
  const humidity = 62 - 8 * winter - 12 * diurnalTemp + state.humidityAnomaly;

  // Traffic peaks around 08:00 and 19:00; a shallow night-time boundary layer traps particulates.
  const rushHour = 0.5 * (dailyCycle(ts, 8) + 1) ** 4 / 16 + 0.5 * (dailyCycle(ts, 19) + 1) ** 4 / 16;
  const mixing = 1 + 0.25 * dailyCycle(ts, 2);
  // Lognormal around the mean; the −σ²/2 keeps the long-run average where the mean says.
  const stagnation = Math.exp(state.pollution - (POLLUTION_SD * POLLUTION_SD) / 2);

  const pm25 = report(50 * (1 + 0.5 * winter) * state.siteParticulate * mixing * stagnation, metrics.pm25);
  // PM2.5 is a fraction of PM10, so PM10 is never below it, after rounding too.
  const pm10 = Math.max(report(pm25 * clamp(state.coarseRatio, 1.15, 3), metrics.pm10), Math.ceil(pm25));
  const no2 = 35 * (1 + 0.3 * winter) * state.siteTraffic * (0.7 + 0.9 * rushHour) * Math.exp(0.6 * state.pollution);
  const so2 = 9 * (1 + 0.6 * winter) * Math.exp(0.4 * state.pollution);
  const co = 0.8 * (1 + 0.4 * winter) * (0.85 + 0.4 * rushHour) * Math.exp(0.5 * state.pollution);
  // Ozone is made by sunlight (afternoon, summer) and eaten by traffic NO, hence the NO2 titration term.
  const sun = Math.max(0, dailyCycle(ts, 14.5));
  const o3 = (25 + 95 * (1 - 0.45 * winter) * sun) * Math.exp(state.ozone) * (1.2 - 0.2 * state.siteTraffic);
  // Quiet between about 01:00 and 05:00, busy in the day.
  const activity = clamp(0.5 + 0.6 * dailyCycle(ts, 14), 0, 1);
  const noise = state.siteNoiseBase - 8 + 12 * activity + 2 * rushHour + state.noiseAnomaly;

  return {
    state,
    metrics: {
      pm25,
      pm10,
      no2: report(no2, metrics.no2),
      so2: report(so2, metrics.so2),
      o3: report(o3, metrics.o3),
      co: report(co, metrics.co),
      temperature: report(temperature, metrics.temperature),
      humidity: report(humidity, metrics.humidity),
      noise: report(noise, metrics.noise),
    },
    events: [],
  };
}

export const environment = defineFamily<EnvironmentState>({
  name: 'environment',
  transport: 'mqtt',
  description: 'air-quality and noise station: PM2.5/PM10, NO2, SO2, O3, CO, temperature, humidity, noise',
  models: ['AQM-500', 'AQM-520', 'MiniAir-3'],
  metrics,
  init,
  step,
});

