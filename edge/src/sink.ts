// The hand-off from inputs to the rest of the pipeline. Inputs acknowledge a device (MQTT PUBACK) only
// after accept() resolved, so what "safe" means is the sink's promise to keep.
import type { DeviceEvent, Reading } from '@citysense/proto';

export interface Sink {
  /**
   * Takes readings and events in call order. Resolves once they are safe: today held in the batcher's
   * bounded memory, later on the durable disk queue. While the sink is full the promise stays pending;
   * that wait is the backpressure that delays PUBACK and stops reading the device's socket. Rejects only
   * when the sink is closing; the caller must then not acknowledge.
   */
  accept(readings: readonly Reading[], events: readonly DeviceEvent[]): Promise<void>;
}
