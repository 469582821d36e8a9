// A battery-powered NB-IoT sensor that speaks MQTT directly (the CTWing/OneNET push path arrives
// decoded by the edge, not from this simulator). Besides its own value it reports the radio figures
// operators look at: RSRP and SNR.
import type { Rng } from '../rng.ts';
import { clamp, DAY_MS, HOUR_MS, ou, report } from './common.ts';
import { defineFamily, type DeviceInfo, type MetricSpec, type SimEvent, type StepResult } from './types.ts';

const metrics = {
  battery_pct: { unit: '%', min: 0, max: 100, decimals: 0 },
  rsrp: { unit: 'dBm', min: -120, max: -70, decimals: 0 },
  snr: { unit: 'dB', min: -10, max: 30, decimals: 0 },
  sensor_value: { unit: '', min: 0, max: 100, decimals: 2 },
} as const satisfies Record<string, MetricSpec>;

const LOW_BATTERY_PCT = 20;
/** Battery cost of one uplink at good coverage, in percent; poor coverage repeats transmissions. */
const DRAIN_PER_UPLINK = 0.002;
const SELF_DISCHARGE_PER_DAY = 2 / 365;
const ALARM_CHANCE = 0.001;

export interface NbiotState {
  lastTs: number;
  battery: number;
  rsrpMean: number;
  rsrp: number;
  sensorMean: number;
  sensor: number;
  lowBatteryReported: boolean;
}

function init(rng: Rng, _device: DeviceInfo, ts: number): NbiotState {
  const rsrpMean = rng.uniform(-112, -82);
  const sensorMean = rng.uniform(10, 70);
  return {
    lastTs: ts,
    battery: rng.uniform(55, 100),
    rsrpMean,
    rsrp: rsrpMean,
    sensorMean,
    sensor: sensorMean,
    lowBatteryReported: false,
  };
}

function step(rng: Rng, prev: NbiotState, ts: number): StepResult<NbiotState> {
  const dt = ts - prev.lastTs;
  const events: SimEvent[] = [];
  const rsrp = ou(rng, prev.rsrp, prev.rsrpMean, 4, 2 * HOUR_MS, dt);
  const rsrpReading = report(rsrp + 1.5 * rng.normal(), metrics.rsrp);
  // SNR tracks coverage loosely; interference adds its own scatter.
  const snr = report((rsrpReading + 118) / 2.2 - 2 + 2.5 * rng.normal(), metrics.snr);
  // Coverage enhancement repeats an uplink up to many times at the cell edge, so weak RSRP costs battery.
  const repetitions = 1 + clamp((-95 - rsrpReading) / 5, 0, 8);
  const battery = Math.max(
    0,
    prev.battery - DRAIN_PER_UPLINK * repetitions - (SELF_DISCHARGE_PER_DAY * Math.max(0, dt)) / DAY_MS,
  );
  const batteryReading = report(battery, metrics.battery_pct);
  let lowBatteryReported = prev.lowBatteryReported;
  if (!lowBatteryReported && batteryReading < LOW_BATTERY_PCT) {
    lowBatteryReported = true;
    events.push({ type: 'low_battery', attrs: { battery_pct: batteryReading } });
  }

  let sensor = ou(rng, prev.sensor, prev.sensorMean, 6, 6 * HOUR_MS, dt);
  if (rng.chance(ALARM_CHANCE)) {
    // A threshold alarm (water level, gas, tilt...): the value jumps and the device reports at once.
    sensor = clamp(prev.sensorMean + rng.uniform(25, 40), 0, 100);
    events.push({ type: 'sensor_alarm', attrs: { value: report(sensor, metrics.sensor_value) } });
  }

  return {
    state: { ...prev, lastTs: ts, battery, rsrp, sensor, lowBatteryReported },
    metrics: {
      battery_pct: batteryReading,
      rsrp: rsrpReading,
      snr,
      sensor_value: report(sensor, metrics.sensor_value),
    },
    events,
  };
}

export const nbiot = defineFamily<NbiotState>({
  name: 'nbiot',
  transport: 'mqtt',
  description: 'battery NB-IoT sensor: battery level, RSRP, SNR and its own sensor value',
  models: ['NB-WL100', 'NB-GAS20', 'NB-TILT1'],
  metrics,
  init,
  step,
});
