// Who may connect and where they may publish or subscribe. Username = deviceId, password = that
// device's secret (contracts.md); a device lives under devices/{deviceId}/ and nowhere else.
import type { DeviceRegistry, Device } from '../../registry/registry.ts';
import type { CredentialChecker } from '../../registry/credentials.ts';

/** Refusal reasons at CONNECT, as counted in connect_refused_total. */
export const CONNECT_REFUSE = {
  missingCredentials: 'missing_credentials',
  unknownDevice: 'unknown_device',
  badPassword: 'bad_password',
  noMqttLogin: 'no_mqtt_login',
  maxConnections: 'max_connections',
  rateLimited: 'rate_limited',
  /** Too many credential checks waiting (a login flood): CONNACK 3, the device retries. */
  busy: 'busy',
  /** The source sent too many wrong passwords (mqtt.loginThrottle): refused without checking. */
  throttled: 'throttled',
  /** The client id is not the device's own (clientIdBelongsTo). */
  clientIdRejected: 'client_id_rejected',
  /** MQTT 5 enhanced authentication (an Authentication Method): not offered, CONNACK 0x8C. */
  badAuthMethod: 'bad_auth_method',
} as const;
export type ConnectRefuseReason = (typeof CONNECT_REFUSE)[keyof typeof CONNECT_REFUSE];

/** Refusal reasons for PUBLISH, as counted in publish_refused_total. */
export const PUBLISH_REFUSE = {
  foreignTopic: 'foreign_topic',
  unknownTopic: 'unknown_topic',
  unauthenticated: 'unauthenticated',
  packetTooLarge: 'packet_too_large',
  /** The durable queue refused the message (disk full or failing): MQTT 5 PUBACK 0x97. */
  queueRefused: 'queue_refused',
} as const;
export type PublishRefuseReason = (typeof PUBLISH_REFUSE)[keyof typeof PUBLISH_REFUSE];

export type AuthResult = { ok: true; device: Device } | { ok: false; reason: ConnectRefuseReason };

export async function authenticateDevice(
  registry: DeviceRegistry,
  checker: CredentialChecker,
  username: string | undefined,
  password: Buffer | undefined,
): Promise<AuthResult> {
  if (!username || !password || password.length === 0) return { ok: false, reason: CONNECT_REFUSE.missingCredentials };
  const device = registry.get(username);
  // Checked even for an unknown device (against a dummy): an unknown id costs what a wrong secret costs.
  const r = await checker.check(device?.secret, password);
  if (r === 'busy') return { ok: false, reason: CONNECT_REFUSE.busy };
  if (!device) return { ok: false, reason: CONNECT_REFUSE.unknownDevice };
  if (!device.secret) return { ok: false, reason: CONNECT_REFUSE.noMqttLogin };
  return r === 'ok' ? { ok: true, device } : { ok: false, reason: CONNECT_REFUSE.badPassword };
}

/**
 * The client id rule: a device's client id is its device id, or its device id, '/', and anything
 * (several connections of one device: "env-1/logger", "env-1/0"). '/' never occurs in a device id
 * (DEVICE_ID_PATTERN), so no device's client ids can be another's, and a connection can take over only
 * a session of the device it logged in as [MQTT-3.1.4-2].
 */
export function clientIdBelongsTo(clientId: string, deviceId: string): boolean {
  return clientId === deviceId || (clientId.length > deviceId.length + 1 && clientId.startsWith(deviceId) && clientId[deviceId.length] === '/');
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
