// A fire in a building: a smoke detector reports smoke, then its zone goes into fire alarm, then the
// sprinkler main's pressure drops as heads open. Drives the fire-panel simulator (GB 26875) through
// FirePanelHooks, and any NB-IoT smoke detectors of the run (over MQTT, or pushed by CTWing) see smoke too. GB 26875.1-2011 §4.1.2.1
// gives the transmission device 10 s to report a fire alarm: the steps are seconds apart, not minutes.
import { NB_CONDITIONS } from '../nbiot/devices.ts';
import type { Scenario } from './types.ts';

/** Where the sprinkler main falls to when heads open (it normally holds about 0.3–0.5 MPa). */
export const FIRE_SPRINKLER_DROP_MPA = 0.08;

export const fire: Scenario = {
  name: 'fire',
  description: 'smoke at a detector, a zone in fire alarm, sprinkler pressure drop (needs the fire-panel simulator)',
  check: (ctx) =>
    ctx.parts.firePanel || ctx.parts.pushSmokeDetectors
      ? undefined
      : 'needs a fire panel: the GB 26875 fire-panel simulator is not plugged in (SimOptions.parts.firePanel, FirePanelHooks in src/scenarios/types.ts)',
  durationMs: () => 60_000,
  steps: () => [
    {
      at: 5_000,
      name: 'smoke at a detector',
      do: async (world) => {
        for (const d of world.devices({ profile: 'nb-smoke-detector' })) d.set(NB_CONDITIONS.smoke, 6.5, world.now);
        // NB-IoT detectors behind CTWing report at once through the platform's push.
        await world.parts.pushSmokeDetectors?.smoke(6.5);
        const panel = world.parts.firePanel;
        if (!panel) return world.note('NB-IoT detectors only (no fire panel)');
        const detector = panel.detectors?.()[0] ?? '1';
        await panel.smoke(detector);
        world.note(`detector ${detector}`);
      },
    },
    {
      at: 15_000,
      name: 'fire alarm in the zone',
      do: async (world) => {
        const panel = world.parts.firePanel;
        if (!panel) return;
        const zone = panel.zones?.()[0] ?? '1';
        await panel.fireAlarm(zone);
        world.note(`zone ${zone}`);
      },
    },
    {
      at: 40_000,
      name: `sprinkler pressure drops to ${FIRE_SPRINKLER_DROP_MPA} MPa`,
      do: async (world) => {
        await world.parts.firePanel?.sprinklerPressureDrop(FIRE_SPRINKLER_DROP_MPA);
      },
    },
  ],
};
