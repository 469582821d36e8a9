// The default: devices report their seeded everyday values and nothing is done to them.
import type { Scenario } from './types.ts';

export const normal: Scenario = {
  name: 'normal',
  description: 'everyday values, no interventions (the default)',
  steps: () => [],
};
