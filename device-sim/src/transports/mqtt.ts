// One MQTT connection per simulated device, speaking the generic JSON profile (contracts.md):
// telemetry to `devices/{id}/telemetry` as `{"ts", "metrics"}`, events to `devices/{id}/events` as
// `{"ts", "type", "attrs"}`, username = device id, password = the device's secret.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Metrics, SimEvent } from '../families/types.ts';

export type Qos = 0 | 1;

export function telemetryTopic(deviceId: string): string {
  return `devices/${deviceId}/telemetry`;
}

export function eventsTopic(deviceId: string): string {
  return `devices/${deviceId}/events`;
}

export function telemetryPayload(ts: number, metrics: Metrics): string {
  return JSON.stringify({ ts, metrics });
}

export function eventPayload(ts: number, event: SimEvent): string {
  return JSON.stringify({ ts, type: event.type, attrs: event.attrs });
}

export interface MqttDeviceOptions {
  url: string;
  id: string;
  secret: string;
  qos: Qos;
  /** How long the first connection may take, retries included, before the device gives up. */
  connectTimeoutMs: number;
  /** Pause between reconnect attempts, both before the first CONNACK and after a dropped connection. */
  reconnectPeriodMs: number;
  keepaliveS?: number;
  /** MQTT protocol level: 4 (3.1.1, default) or 5. */
  protocolVersion?: 4 | 5;
}

export type ConnectOutcome =
  | { ok: true }
  /** The broker answered and said no (CONNACK return code ≠ 0): retrying will not help. */
  | { ok: false; kind: 'refused'; code: number; reason: string }
  /** No CONNACK before the deadline: nothing listening, network down, or the broker hung. */
  | { ok: false; kind: 'unreachable'; reason: string };

/** Human text for MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2.3]. */
const CONNACK_REASONS: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'client identifier rejected',
  3: 'server unavailable',
  4: 'bad username or password',
  5: 'not authorized',
  // MQTT 5 CONNACK reason codes [MQTT-3.2.2.2].
  0x80: 'unspecified error',
  0x81: 'malformed packet',
  0x84: 'unsupported protocol version',
  0x85: 'client identifier not valid',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x89: 'server busy',
  0x8a: 'banned',
  0x8c: 'bad authentication method',
};

export function connackReason(code: number): string {
  return CONNACK_REASONS[code] ?? `return code ${code}`;
}

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
}

/**
 * A device's connection. Guarantees: `publish*` resolves only when the message is acknowledged (PUBACK
 * for QoS 1; handed to the socket for QoS 0) and rejects if it cannot be; messages published while the
 * connection is down are kept by mqtt.js and sent after it reconnects, so a broker restart delays
 * acknowledgements rather than losing them.
 */
export class MqttDevice {
  readonly id: string;
  private readonly options: MqttDeviceOptions;
  private client: MqttClient | undefined;
  private closing = false;
  /** Set when the broker refuses us after we were once connected, e.g. the secret was revoked. */
  refusedLater: { code: number; reason: string } | undefined;
  disconnects = 0;
  lastError: string | undefined;

  constructor(options: MqttDeviceOptions) {
    this.options = options;
    this.id = options.id;
  }

  connect(): Promise<ConnectOutcome> {
    const { url, id, secret, connectTimeoutMs, reconnectPeriodMs } = this.options;
    const clientOptions: IClientOptions = {
      clientId: id,
      username: id,
      password: secret,
      protocolVersion: this.options.protocolVersion ?? 4,
      clean: true,
      keepalive: this.options.keepaliveS ?? 30,
      reconnectPeriod: reconnectPeriodMs,
      connectTimeout: connectTimeoutMs,
      resubscribe: false,
    };
    const client = mqtt.connect(url, clientOptions);
    this.client = client;

    return new Promise<ConnectOutcome>((resolve) => {
      let settled = false;
      let everConnected = false;
      const settle = (outcome: ConnectOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        if (!outcome.ok) this.close(true);
        resolve(outcome);
      };
      const deadline = setTimeout(() => {
        settle({ ok: false, kind: 'unreachable', reason: this.lastError ?? `no CONNACK within ${connectTimeoutMs} ms` });
      }, connectTimeoutMs);

      client.on('connect', () => {
        everConnected = true;
        settle({ ok: true });
      });
      client.on('close', () => {
        if (everConnected && !this.closing) this.disconnects += 1;
      });
      client.on('error', (err) => {
        const code = errorCode(err);
        if (typeof code === 'number') {
          // A CONNACK refusal: mqtt.js has already suppressed reconnects for it.
          const reason = `connection refused by broker: ${connackReason(code)} (CONNACK ${code})`;
          this.lastError = reason;
          if (settled) {
            this.refusedLater = { code, reason };
          }
          settle({ ok: false, kind: 'refused', code, reason });
          return;
        }
        // Socket-level trouble (ECONNREFUSED, ECONNRESET...): mqtt.js retries on its own; remember the
        // latest reason in case the deadline passes.
        this.lastError = `${typeof code === 'string' ? `${code}: ` : ''}${err.message}`;
      });
    });
  }

  publishTelemetry(ts: number, metrics: Metrics): Promise<void> {
    return this.publish(telemetryTopic(this.id), telemetryPayload(ts, metrics));
  }

  publishEvent(ts: number, event: SimEvent): Promise<void> {
    return this.publish(eventsTopic(this.id), eventPayload(ts, event));
  }

  private publish(topic: string, payload: string): Promise<void> {
    const client = this.client;
    if (!client || this.closing) return Promise.reject(new Error(`${this.id}: connection is closed`));
    return new Promise<void>((resolve, reject) => {
      client.publish(topic, payload, { qos: this.options.qos }, (err) => {
        if (err) reject(err);
        else resolve();
      });
    });
  }

  /** `force` drops unacknowledged messages at once; otherwise mqtt.js waits for them first. */
  close(force = false): Promise<void> {
    const client = this.client;
    if (!client || this.closing) return Promise.resolve();
    this.closing = true;
    return new Promise<void>((resolve) => {
      client.end(force, {}, () => resolve());
    });
  }
}
