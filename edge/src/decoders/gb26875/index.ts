// The GB/T 26875.3 fire-panel decoder's public surface: frames (frame.ts), data units (objects.ts),
// the profile section (profile.ts), frames → readings and events (decode.ts), code tables (codes.ts).
export { GB26875_ERRORS, type Gb26875ErrorCode, type Gb26875Refusal } from './errors.ts';
export {
  COMMANDS,
  MAX_APP_DATA,
  OVERHEAD_BYTES,
  buildAnswer,
  checksum,
  encodeFrame,
  epochToTime,
  parseFrame,
  timeToEpoch,
  type Command,
  type FrameFields,
  type FrameResult,
  type FrameTime,
  type Gb26875Frame,
} from './frame.ts';
export { Gb26875StreamFramer, type Gb26875FramerOptions, type Gb26875Header, type Gb26875StreamItem } from './stream.ts';
export { BODY_BYTES, DATA_TYPES, decodeDescription, parseAppData, type AppDataResult, type Gb26875Object } from './objects.ts';
export {
  COMPONENT_KEY,
  gb26875ProfileSchema,
  loadGb26875Profile,
  type Gb26875Component,
  type Gb26875Profile,
  type Gb26875ProfileInput,
  type Gb26875ProfileResult,
} from './profile.ts';
export {
  Gb26875Decoder,
  decodeGb26875,
  type Gb26875Decoded,
  type Gb26875Event,
  type Gb26875FrameSummary,
  type Gb26875Sample,
  type Gb26875State,
  type Gb26875Value,
} from './decode.ts';
export {
  ANALOG_TYPES,
  COMPONENT_STATE_EVENTS,
  COMPONENT_TYPES,
  DEVICE_STATE_EVENTS,
  OPERATION_BITS,
  SYSTEM_STATE_EVENTS,
  SYSTEM_TYPES,
  componentTypeName,
  systemTypeName,
  type AnalogTypeSpec,
  type BitEvent,
  type Priority,
} from './codes.ts';
