// Who may connect and where they may publish or subscribe. Username = deviceId, password = that
// device's secret (contracts.md); a device lives under devices/{deviceId}/ and nowhere else.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { DeviceRegistry, Device } from '../../registry/registry.ts';

/** Refusal reasons at CONNECT, as counted in connect_refused_total. */
export const CONNECT_REFUSE = {
  missingCredentials: 'missing_credentials',
  unknownDevice: 'unknown_device',
  badPassword: 'bad_password',
  noMqttLogin: 'no_mqtt_login',
  maxConnections: 'max_connections',
  rateLimited: 'rate_limited',
} as const;
export type ConnectRefuseReason = (typeof CONNECT_REFUSE)[keyof typeof CONNECT_REFUSE];

/** Refusal reasons for PUBLISH, as counted in publish_refused_total. */
export const PUBLISH_REFUSE = {
  foreignTopic: 'foreign_topic',
  unknownTopic: 'unknown_topic',
  unauthenticated: 'unauthenticated',
  packetTooLarge: 'packet_too_large',
} as const;
export type PublishRefuseReason = (typeof PUBLISH_REFUSE)[keyof typeof PUBLISH_REFUSE];

export type AuthResult = { ok: true; device: Device } | { ok: false; reason: ConnectRefuseReason };

// Compared against when the device is unknown, so an unknown id costs the same time as a wrong password.
const DUMMY = createHash('sha256').update('citysense-no-such-device').digest();

export function authenticateDevice(
  registry: DeviceRegistry,
  username: string | undefined,
  password: Buffer | undefined,
): AuthResult {
  if (!username || !password || password.length === 0) return { ok: false, reason: CONNECT_REFUSE.missingCredentials };
  const device = registry.get(username);
  const presented = createHash('sha256').update(password).digest();
  const expected = device?.secretSha256 ?? DUMMY;
  const match = timingSafeEqual(presented, expected);
  if (!device) return { ok: false, reason: CONNECT_REFUSE.unknownDevice };
  if (!device.secretSha256) return { ok: false, reason: CONNECT_REFUSE.noMqttLogin };
  return match ? { ok: true, device } : { ok: false, reason: CONNECT_REFUSE.badPassword };
}

export type TopicKind = 'telemetry' | 'events';

export type PublishDecision =
  | { ok: true; kind: TopicKind }
  | { ok: false; reason: PublishRefuseReason };

/** The two topics a device publishes to, built once per connection rather than per message. */
export interface DeviceTopics {
  telemetry: string;
  events: string;
}

export function deviceTopics(deviceId: string): DeviceTopics {
  return { telemetry: `devices/${deviceId}/telemetry`, events: `devices/${deviceId}/events` };
}

// Shared, so an accepted PUBLISH allocates no decision.
const TELEMETRY_OK: PublishDecision = Object.freeze({ ok: true, kind: 'telemetry' });
const EVENTS_OK: PublishDecision = Object.freeze({ ok: true, kind: 'events' });

/** devices/{deviceId}/telemetry and devices/{deviceId}/events of the publisher itself, nothing else. */
export function authorizeTopic(deviceId: string, topic: string, topics: DeviceTopics = deviceTopics(deviceId)): PublishDecision {
  if (topic === topics.telemetry) return TELEMETRY_OK;
  if (topic === topics.events) return EVENTS_OK;
  if (!topic.startsWith(`devices/${deviceId}/`)) return { ok: false, reason: PUBLISH_REFUSE.foreignTopic };
  return { ok: false, reason: PUBLISH_REFUSE.unknownTopic };
}

/** A device may subscribe under its own subtree only (commands and config, in later issues). */
export function maySubscribe(deviceId: string, filter: string): boolean {
  const own = `devices/${deviceId}`;
  return filter === own || filter.startsWith(`${own}/`);
}
