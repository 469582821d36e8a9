// A passenger trapped in a lift: a car with someone in it stops between floors with its doors shut and
// the controller reports entrapment, the event rescuers must hear about at once (protocols.md).
// Drives the OPC-UA elevator server through ElevatorHooks.
import type { Scenario } from './types.ts';

/** elevator/car.ts FAULT_CODE.entrapment (the simulator's numbering; the edge maps it via the profile). */
export const ENTRAPMENT_FAULT_CODE = 1;

export const entrapment: Scenario = {
  name: 'entrapment',
  description: 'a car with a passenger stops between floors with the doors shut (needs the OPC-UA elevator server)',
  check: (ctx) =>
    ctx.parts.elevators
      ? undefined
      : 'needs an elevator server: the OPC-UA elevator simulator is not plugged in (SimOptions.parts.elevators, ElevatorHooks in src/scenarios/types.ts)',
  durationMs: () => 30_000,
  steps: () => [
    {
      at: 2_000,
      name: 'a passenger boards',
      do: async (world) => {
        const car = world.parts.elevators!.cars?.()[0] ?? 1;
        await world.parts.elevators!.setPassenger(car, true);
        world.note(`car ${car}`);
      },
    },
    {
      at: 6_000,
      name: 'the car stops between floors, doors shut: entrapment',
      do: async (world) => {
        const car = world.parts.elevators!.cars?.()[0] ?? 1;
        await world.parts.elevators!.triggerFault(car, ENTRAPMENT_FAULT_CODE);
        world.note(`car ${car}, fault code ${ENTRAPMENT_FAULT_CODE}`);
      },
    },
  ],
};
