// One device message through the pipeline's pure stages: decode (generic JSON profile) → normalise →
// sink. Bad input is counted and logged at a bounded rate, and costs nothing else.
import type { DeviceEvent, Reading } from '@citysense/proto';
import type { Device } from '../registry/registry.ts';
import type { EdgeMetrics } from '../metrics.ts';
import type { RateLimitedWarn } from '../log.ts';
import type { Sink } from '../sink.ts';
import type { TopicKind } from '../inputs/mqtt-broker/auth.ts';
import { decodeEvent, decodeTelemetry, type ValueRejection } from '../decoders/json/json.ts';
import { normaliseEvent, normaliseReading, type NormaliseOptions } from '../processors/normalise.ts';

const NONE: readonly never[] = [];

export function createIngest(o: { sink: Sink; metrics: EdgeMetrics; warn: RateLimitedWarn; normalise: NormaliseOptions }) {
  const { metrics, warn } = o;

  const countValues = (device: Device, rejected: readonly ValueRejection[]) => {
    for (const r of rejected) {
      metrics.valuesRejected.inc({ device: device.id, reason: r.reason });
      warn(`value_${r.reason}`, { device: device.id, metric: r.name.slice(0, 64) }, `value refused: ${r.reason}`);
    }
  };
  const rejectMessage = (device: Device, kind: TopicKind, reason: string, detail: string) => {
    metrics.messagesRejected.inc({ device: device.id, reason });
    warn(`message_${reason}`, { device: device.id, kind, detail }, `message refused: ${reason}`);
  };

  return async function ingest(device: Device, kind: TopicKind, payload: Buffer, receivedAt: number): Promise<void> {
    if (kind === 'telemetry') {
      const d = decodeTelemetry(payload);
      if (!d.ok) return rejectMessage(device, kind, d.reason, d.detail);
      const n = normaliseReading(device, d.value, receivedAt, o.normalise);
      countValues(device, n.rejected);
      if (!n.ok) return rejectMessage(device, kind, n.reason, n.detail);
      await o.sink.accept([n.item] as Reading[], NONE);
      metrics.readingsReceived.inc({ family: device.family });
      return;
    }
    const d = decodeEvent(payload);
    if (!d.ok) return rejectMessage(device, kind, d.reason, d.detail);
    const n = normaliseEvent(device, d.value, receivedAt, o.normalise);
    if (!n.ok) return rejectMessage(device, kind, n.reason, n.detail);
    await o.sink.accept(NONE, [n.item] as DeviceEvent[]);
    metrics.eventsReceived.inc({ type: n.item.type });
  };
}
