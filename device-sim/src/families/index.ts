// The one place families are registered. A new family is one file next to this one plus a line here;
// the CLI, the registry writer and the tests pick it up from this table.
//
// Elevators (GB/T 24476 items) come over OPC-UA in a later issue: add `families/elevator.ts` with
// `transport: 'opcua'` and an OPC-UA server transport under `transports/`; the runner refuses families
// whose transport it does not have yet rather than publishing them over MQTT.
import { environment } from './environment.ts';
import { fire } from './fire.ts';
import { nbiot } from './nbiot.ts';
import type { AnyFamily } from './types.ts';

export const families: Readonly<Record<string, AnyFamily>> = Object.freeze({
  environment,
  fire,
  nbiot,
});

export const familyNames: readonly string[] = Object.keys(families);

export function getFamily(name: string): AnyFamily {
  const family = families[name];
  if (!family) {
    throw new Error(`unknown device family "${name}" (known: ${familyNames.join(', ')})`);
  }
  return family;
}

export { environment, fire, nbiot };
export type { AnyFamily, DeviceInfo, Family, MetricSpec, Metrics, SimEvent, StepResult } from './types.ts';
export { defineFamily } from './types.ts';
