// One publish notification (or one re-read of every bound node) → samples per device. Pure but for the
// two callbacks the caller passes, so the grouping rule is tested on its own.
//
// Rule: the values of one device in one notification form one sample, so a car that changes floor,
// direction and running state at once arrives as one reading. If the same metric appears twice in one
// notification (the server queued several values of a node: queueSize > 1), the later value opens a
// new sample rather than overwriting the earlier one, so a fault that came and went within one
// publishing interval is still seen. Uncertain values go in samples of their own, marked 'U', so a
// Good neighbour is not marked Uncertain with them.
//
// `isChange` lets the connection drop values the pipeline already has (the first notification of a
// re-created subscription repeats every value; a re-read after a reconnection finds most unchanged),
// and `contextOf` snapshots the device's last known values when a sample opens: OPC-UA sends only what
// changed, so a fault code arriving alone still needs the floor it happened at (docs/protocols/opcua-elevator.md).
import { mapDataValue, type OpcuaValueRejectCode } from '../../decoders/opcua/index.ts';
import type { OpcuaSample, OpcuaValue } from './types.ts';

export interface NotifiedValue {
  deviceId: string;
  metric: string;
  dataValue: unknown;
}

export interface MappedValue {
  deviceId: string;
  metric: string;
  value: OpcuaValue;
  quality: string | undefined;
  /** The source timestamp, when the server sent one. */
  ts: number | undefined;
}

export interface GroupOptions {
  /** false: the pipeline already has this value; leave it out (it is not counted as refused either). */
  isChange?: (v: MappedValue) => boolean;
  /** The device's last known values when a sample of it opens (before this sample's values). */
  contextOf?: (deviceId: string) => Record<string, OpcuaValue> | undefined;
}

export interface GroupedNotification {
  samples: Array<{ deviceId: string; sample: OpcuaSample }>;
  rejected: Array<{ deviceId: string; metric: string; code: OpcuaValueRejectCode; message: string }>;
}

interface OpenSample {
  deviceId: string;
  values: Record<string, OpcuaValue>;
  context: Record<string, OpcuaValue> | undefined;
  ts?: number;
  quality?: string;
}

export function groupNotification(values: readonly NotifiedValue[], receivedAt: number, opts: GroupOptions = {}): GroupedNotification {
  const out: GroupedNotification = { samples: [], rejected: [] };
  // Open sample per (device, quality); a repeated metric closes it.
  const open = new Map<string, OpenSample>();
  const order: OpenSample[] = [];
  for (const v of values) {
    const m = mapDataValue(v.dataValue);
    if (!m.ok) {
      out.rejected.push({ deviceId: v.deviceId, metric: v.metric, code: m.code, message: m.message });
      continue;
    }
    const key = `${v.deviceId}\u0000${m.quality ?? ''}`;
    let s = open.get(key);
    // Snapshot before isChange records this value as known.
    const context = !s || Object.hasOwn(s.values, v.metric) ? opts.contextOf?.(v.deviceId) : undefined;
    if (opts.isChange && !opts.isChange({ deviceId: v.deviceId, metric: v.metric, value: m.value, quality: m.quality, ts: m.ts })) continue;
    if (!s || Object.hasOwn(s.values, v.metric)) {
      s = { deviceId: v.deviceId, values: Object.create(null) as Record<string, OpcuaValue>, context, ...(m.quality ? { quality: m.quality } : {}) };
      open.set(key, s);
      order.push(s);
    }
    s.values[v.metric] = m.value;
    if (m.ts !== undefined && (s.ts === undefined || m.ts > s.ts)) s.ts = m.ts;
  }
  for (const s of order) {
    let context: Record<string, OpcuaValue> | undefined;
    for (const [k, val] of Object.entries(s.context ?? {})) {
      if (Object.hasOwn(s.values, k)) continue;
      (context ??= {})[k] = val;
    }
    out.samples.push({
      deviceId: s.deviceId,
      sample: { ts: s.ts ?? receivedAt, values: { ...s.values }, ...(s.quality ? { quality: s.quality } : {}), ...(context ? { context } : {}) },
    });
  }
  return out;
}
