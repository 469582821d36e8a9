// What an event is worth (priority) and which happening it is (a stable id the cloud and webhooks
// dedupe on).
import { createHash, randomUUID } from 'node:crypto';
import type { Priority } from '@citysense/proto';

export function priorityOf(type: string, lists: { alarmTypes: readonly string[]; warningTypes: readonly string[] }): Priority {
  if (lists.alarmTypes.includes(type)) return 'alarm';
  if (lists.warningTypes.includes(type)) return 'warning';
  return 'routine';
}

/**
 * With the device's own ts the id is derived from what the device said, so a QoS 1 redelivery of the
 * same message keeps its id. Without one, two identical payloads may be two happenings: random id.
 */
export function eventId(deviceId: string, ts: number | undefined, type: string, attrs: Record<string, string>): string {
  if (ts === undefined) return randomUUID();
  const canonicalAttrs = Object.keys(attrs)
    .sort()
    .map((k) => [k, attrs[k]]);
  const h = createHash('sha256').update(JSON.stringify([deviceId, ts, type, canonicalAttrs])).digest('hex');
  // UUID layout (version nibble 8 = custom, RFC 9562) so ids look alike whichever way they were made.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
