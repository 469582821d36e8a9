// One publish notification → samples per device. Pure, so the grouping rule is tested on its own.
//
// Rule: the values of one device in one notification form one sample, so a car that changes floor,
// direction and running state at once arrives as one reading. If the same metric appears twice in one
// notification (the server queued several values of a node: queueSize > 1), the later value opens a
// new sample rather than overwriting the earlier one, so a fault that came and went within one
// publishing interval is still seen. Uncertain values go in samples of their own, marked 'U', so a
// Good neighbour is not marked Uncertain with them.
import { mapDataValue, type OpcuaValueRejectCode } from '../../decoders/opcua/index.ts';
import type { OpcuaSample } from './types.ts';

export interface NotifiedValue {
  deviceId: string;
  metric: string;
  dataValue: unknown;
}

export interface GroupedNotification {
  samples: Array<{ deviceId: string; sample: OpcuaSample }>;
  rejected: Array<{ deviceId: string; metric: string; code: OpcuaValueRejectCode; message: string }>;
}

export function groupNotification(values: readonly NotifiedValue[], receivedAt: number): GroupedNotification {
  const out: GroupedNotification = { samples: [], rejected: [] };
  // Open sample per (device, quality); a repeated metric closes it.
  const open = new Map<string, { deviceId: string; values: Record<string, number | boolean | string>; ts?: number; quality?: string }>();
  const order: Array<{ deviceId: string; values: Record<string, number | boolean | string>; ts?: number; quality?: string }> = [];
  for (const v of values) {
    const m = mapDataValue(v.dataValue);
    if (!m.ok) {
      out.rejected.push({ deviceId: v.deviceId, metric: v.metric, code: m.code, message: m.message });
      continue;
    }
    const key = `${v.deviceId}\u0000${m.quality ?? ''}`;
    let s = open.get(key);
    if (!s || Object.hasOwn(s.values, v.metric)) {
      s = { deviceId: v.deviceId, values: Object.create(null) as Record<string, number | boolean | string>, ...(m.quality ? { quality: m.quality } : {}) };
      open.set(key, s);
      order.push(s);
    }
    s.values[v.metric] = m.value;
    if (m.ts !== undefined && (s.ts === undefined || m.ts > s.ts)) s.ts = m.ts;
  }
  for (const s of order) {
    out.samples.push({
      deviceId: s.deviceId,
      sample: { ts: s.ts ?? receivedAt, values: { ...s.values }, ...(s.quality ? { quality: s.quality } : {}) },
    });
  }
  return out;
}
