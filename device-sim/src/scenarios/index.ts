// The one place scenarios are registered: a new scenario is a file here and a line in this table.
import { entrapment } from './entrapment.ts';
import { faultySensors } from './faulty-sensors.ts';
import { fire } from './fire.ts';
import { normal } from './normal.ts';
import { pollutionEpisode } from './pollution-episode.ts';
import type { Scenario } from './types.ts';

export const scenarios: Readonly<Record<string, Scenario>> = Object.freeze({
  normal,
  'pollution-episode': pollutionEpisode,
  'faulty-sensors': faultySensors,
  fire,
  entrapment,
});

export const scenarioNames: readonly string[] = Object.keys(scenarios);

export function getScenario(name: string): Scenario {
  const s = scenarios[name];
  if (!s) throw new Error(`unknown scenario "${name}" (known: ${scenarioNames.join(', ')})`);
  return s;
}

export { ScenarioError, ScenarioRun, type ScenarioRunOptions } from './runner.ts';
export { CLOCK_SKEW_MS, DeviceControl, FAULT_KINDS, FAULTS_BY_KIND, type DeviceKind, type FaultKind } from './control.ts';
export type {
  ElevatorHooks,
  ExecutedStep,
  FirePanelHooks,
  Scenario,
  ScenarioContext,
  ScenarioParts,
  ScenarioReport,
  ScenarioStep,
  World,
} from './types.ts';
export { EPISODE_DURATION_MS, EPISODE_PROFILE } from './pollution-episode.ts';
export { FAULT_PLAN } from './faulty-sensors.ts';
export { ENTRAPMENT_FAULT_CODE } from './entrapment.ts';
export { FIRE_SPRINKLER_DROP_MPA } from './fire.ts';
