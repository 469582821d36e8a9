// The sequence of messages one device sends. Values and timestamps come only from (seed, device id,
// start ts, step): message k of a device has ts = startTs + phaseMs + k·stepMs whenever it is actually
// sent, so wall-clock jitter moves when a message goes out, never what it says.
import { getFamily } from './families/index.ts';
import type { DeviceInfo, Metrics, SimEvent } from './families/types.ts';
import { createRng } from './rng.ts';

export interface SimMessage {
  /** 0-based position in the device's sequence. */
  seq: number;
  ts: number;
  metrics: Metrics;
  events: SimEvent[];
}

export interface StreamOptions {
  seed: number | string;
  startTs: number;
  /** Simulated time between two readings of the device. */
  stepMs: number;
  /** Offset of this device's first reading, so that devices do not all report on the same millisecond. */
  phaseMs?: number;
}

export interface DeviceStream {
  next(): SimMessage;
}

export function createDeviceStream(device: DeviceInfo, options: StreamOptions): DeviceStream {
  const family = getFamily(device.family);
  const rng = createRng('citysense-sim-readings', options.seed, device.id);
  const firstTs = options.startTs + (options.phaseMs ?? 0);
  let state = family.init(rng, device, firstTs);
  let seq = 0;
  return {
    next(): SimMessage {
      const ts = firstTs + seq * options.stepMs;
      const result = family.step(rng, state, ts);
      state = result.state;
      return { seq: seq++, ts, metrics: result.metrics, events: result.events };
    },
  };
}

/** The first `count` messages of a device, without any network: for tests and dry runs. */
export function generateMessages(device: DeviceInfo, options: StreamOptions, count: number): SimMessage[] {
  const stream = createDeviceStream(device, options);
  return Array.from({ length: count }, () => stream.next());
}
