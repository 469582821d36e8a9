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
export {
  DEFAULT_HJ212_PASSWORD,
  deviceKind,
  generateProfileDevices,
  parseProfiledRegistry,
  profiledRegistryYaml,
  SIM_PROFILE_NAMES,
  SIM_PROFILES,
  type GenerateProfileOptions,
  type ProfiledDevice,
} from './sim.ts';
// HJ 212 stations: frames, generator, the TCP/DTU link.
export {
  buildDataFrame,
  chinaTime,
  crc212,
  crc212Hex,
  frameText,
  qnOf,
  readAnswer,
  FrameSplitter,
  type BuiltFrame,
  type DataFlag,
  type DataFrameInput,
  type ParamValues,
} from './protocols/hj212.ts';
export { createStation, IntervalAggregator, STATION_CODES, STATION_PARAMS, type StationReading } from './stations/station.ts';
export { generateMn, StationFramer, type StationFrame, type StationIdentity } from './stations/framer.ts';
export {
  DEFAULT_ANSWER_TIMEOUT_MS,
  DEFAULT_HJ212_PORT,
  DEFAULT_RETRIES,
  Hj212DtuLink,
  Hj212Refused,
  Hj212TcpClient,
  publishRaw,
  type Hj212Counts,
  type Hj212Link,
  type Hj212TcpOptions,
} from './transports/hj212-tcp.ts';
// NB-IoT binary devices.
export { encodeBinary, frameLength, quantize, type EncodeOptions, type LayoutValue } from './protocols/binary-layout.ts';
export { createNbDevice, NB_CONDITIONS, type NbDevice, type NbFrame, type NbOptions } from './nbiot/devices.ts';
export { isNbProfile, loadNbProfile, NB_PROFILES, type NbProfile, type NbProfileInfo } from './nbiot/profiles.ts';
// Scenarios.
export * from './scenarios/index.ts';
export { startElevatorServer, type ElevatorServer, type ElevatorServerOptions } from './transports/opcua-server.ts';
export { FAULT_CODE, SERVICE_MODE } from './elevator/car.ts';
export { startFirePanel, startFirePanelTcp, FirePanelModel, type FirePanel } from './fire-panel/index.ts';
export { CtwingPush, CTWING_RETRIES, postWithRetry, type CtwingIdentity, type PushAttempt, type PushCounts, type PushTransportOptions } from './transports/ctwing-push.ts';
export { OnenetPush, OnenetStudioPush, onenetEncrypt, onenetSign, onenetUrlCheck, type OnenetDevice, type StudioDevice } from './transports/onenet-push.ts';
export { startCtwingSmokeDetector, startOnenetStudioGasDetector, type PushDevice } from './nbiot/push-devices.ts';
