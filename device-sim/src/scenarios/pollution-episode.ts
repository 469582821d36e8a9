// A winter stagnation episode: over a few hours PM2.5 climbs well above the 75 µg/m³ daily limit of
// GB 3095-2012 (grade II), stays there for hours, then a cold front clears it. Applied to every air
// station (HJ 212, TCP or DTU) and every JSON environment device as µg/m³ added to PM2.5 (PM10 gets 1.6×).
import { HOUR_MS, MINUTE_MS } from '../families/common.ts';
import { STATION_CONDITIONS } from '../stations/station.ts';
import type { Scenario, ScenarioStep } from './types.ts';

/** PM2.5 added (µg/m³) from each time on: onset after an hour, a 3.5-hour plateau, a clearing front. */
export const EPISODE_PROFILE: ReadonlyArray<readonly [atMs: number, pm25AddUgM3: number]> = [
  [1 * HOUR_MS, 30],
  [1 * HOUR_MS + 30 * MINUTE_MS, 60],
  [2 * HOUR_MS, 100],
  [2 * HOUR_MS + 30 * MINUTE_MS, 140],
  [3 * HOUR_MS, 170],
  [4 * HOUR_MS, 160],
  [5 * HOUR_MS, 120],
  [5 * HOUR_MS + 30 * MINUTE_MS, 80],
  [6 * HOUR_MS, 40],
  [6 * HOUR_MS + 30 * MINUTE_MS, 10],
  [7 * HOUR_MS, 0],
];
export const EPISODE_DURATION_MS = 8 * HOUR_MS;

const airDevices = { family: 'environment' } as const;

export const pollutionEpisode: Scenario = {
  name: 'pollution-episode',
  description: 'PM2.5/PM10 climb far above 75 µg/m³ over hours, stay there, then recover (use --sim-step-ms)',
  check: (ctx) =>
    ctx.devices.some((d) => d.family === 'environment')
      ? undefined
      : 'needs an air-quality device: add --profiles hj212-air-station (or --families environment)',
  durationMs: () => EPISODE_DURATION_MS,
  steps: () =>
    EPISODE_PROFILE.map(([at, add]): ScenarioStep => ({
      at,
      name: add === 0 ? 'the front has passed: PM back to everyday levels' : `stagnant air: PM2.5 +${add} µg/m³ (PM10 +${Math.round(1.6 * add)})`,
      do: (world) => {
        const devices = world.devices(airDevices);
        for (const d of devices) d.set(STATION_CONDITIONS.pm25Add, add, world.now);
        world.note(`${devices.length} air device(s)`);
      },
    })),
};
