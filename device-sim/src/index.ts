// Library entry: run a simulation, or use the generators and registry helpers on their own.
export {
  DEFAULT_COUNT,
  DEFAULT_URL,
  resolveDevices,
  resolveTiming,
  runSim,
  runSucceeded,
  type DeviceStats,
  type SimError,
  type SimOptions,
  type SimStats,
} from './sim.ts';
export { createDeviceStream, generateMessages, type DeviceStream, type SimMessage, type StreamOptions } from './stream.ts';
export {
  DISTRICTS,
  defaultSecret,
  drawDistrict,
  generateDevices,
  loadRegistry,
  parseDeviceSpec,
  parseRegistry,
  registryYaml,
  writeRegistry,
  type GenerateOptions,
  type LoadedRegistry,
  type SimDevice,
} from './registry.ts';
export { environment, familyNames, families, fire, getFamily, nbiot, defineFamily } from './families/index.ts';
export type { AnyFamily, DeviceInfo, Family, MetricSpec, Metrics, SimEvent, StepResult } from './families/index.ts';
export { createRng, type Rng } from './rng.ts';
export {
  connackReason,
  eventPayload,
  eventsTopic,
  MqttDevice,
  telemetryPayload,
  telemetryTopic,
  type ConnectOutcome,
  type MqttDeviceOptions,
  type Qos,
} from './transports/mqtt.ts';
export { formatProgress, startProgress, type ProgressOptions, type ProgressSnapshot } from './progress.ts';
