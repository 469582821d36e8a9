// The embedded MQTT broker sensors connect to. Telemetry and events are consumed inside aedes'
// authorizePublish hook and never enter aedes' mqemitter: aedes writes a QoS 1 PUBACK after that hook
// and before publishing (lib/handlers/publish.js), so awaiting the sink there means PUBACK leaves only
// once the sink holds the message, and aedes stops reading the socket until the hook answers
// (lib/client.js nextBatch) — backpressure all the way to the device, and no mqemitter backlog to crawl
// on (see /work/shared/anchors.md). The common case — a device's QoS 0/1 PUBLISH to its own topics —
// skips aedes altogether (fast-path.ts) with the same guarantees; this hook handles everything else.
// MQTT 5 connections never reach aedes: the first packet's protocol level routes them to v5-session.ts.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { readFileSync } from 'node:fs';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import type { Logger } from 'pino';
import type { Device, DeviceRegistry } from '../../registry/registry.ts';
import type { EdgeMetrics } from '../../metrics.ts';
import type { RateLimitedWarn } from '../../log.ts';
import type { MessageMeta, MessageRefusal } from '../../agent/ingest.ts';
import { CONNECT_REFUSE, PUBLISH_REFUSE, authenticateDevice, clientIdBelongsTo, type AuthResult, type ConnectRefuseReason, authorizeTopic, deviceTopics, maySubscribe, type DeviceTopics, type TopicKind } from './auth.ts';
import { CredentialChecker } from '../../registry/credentials.ts';
import { ConnectionSlots, LoginThrottle, listenerGuardMetrics, type Slot, type ThrottleLimits } from '../guard/index.ts';
import { guardSocket, type ChunkSink } from './frame-guard.ts';
import { FastPath, type FastSession } from './fast-path.ts';
import { V5Session, type V5Context, type V5Login } from './v5-session.ts';

/**
 * Resolves once the message is safe in the pipeline, or with a refusal when nothing of it was kept;
 * rejecting means "do not acknowledge".
 */
export type MessageHandler = (device: Device, kind: TopicKind, payload: Buffer, receivedAt: number, meta?: MessageMeta) => Promise<MessageRefusal | undefined | void>;

export interface MqttBrokerOptions {
  host: string;
  port: number;
  maxConnections: number;
  maxPacketBytes: number;
  /** Pre-authentication timeout: CONNECT received and the device logged in within this, or closed. */
  connectTimeoutMs: number;
  /** Guard limits (docs/security.md "Listeners"); defaults as in the config schema. */
  maxUnauthenticated?: number | undefined;
  maxConnectionsPerSource?: number | undefined;
  maxUnauthenticatedPerSource?: number | undefined;
  loginThrottle?: ThrottleLimits | undefined;
  /** Checks secrets against their salted verifiers (shared with the HJ 212 listener). */
  credentials?: CredentialChecker | undefined;
  /** New connections accepted per second (token bucket of `connectBurst`); more are closed at once. */
  maxConnectsPerSecond: number;
  connectBurst: number;
  /** MQTT over TLS (8883) beside the plain listener, when certificates are configured. */
  tls?: { host: string; port: number; cert: string; key: string; ca?: string | undefined; requireClientCert: boolean } | undefined;
  registry: DeviceRegistry;
  onMessage: MessageHandler;
  metrics: EdgeMetrics;
  log: Logger;
  warn: RateLimitedWarn;
  /** Fast-path messages awaiting onMessage per connection before its socket stops being read (64); MQTT 5's Receive Maximum. */
  maxInflightPerConnection?: number | undefined;
  /** MQTT 3.1/3.1.1: a message refused whole is acknowledged and dropped (`puback`, default) or closes the connection. */
  v3RefusalPolicy?: 'puback' | 'disconnect' | undefined;
  /** MQTT 5: highest Topic Alias a device may use (16). */
  topicAliasMaximum?: number | undefined;
  /** MQTT 5: Server Keep Alive imposed in CONNACK, seconds. */
  serverKeepAliveS?: number | undefined;
}

export interface MqttBroker {
  port: number;
  tlsPort: number | undefined;
  connections(): number;
  close(): Promise<void>;
}

// MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2.3].
const IDENTIFIER_REJECTED = 2 as const;
const SERVER_UNAVAILABLE = 3 as const;
const BAD_USERNAME_OR_PASSWORD = 4 as const;
const NOT_AUTHORIZED = 5 as const;

type PublishFn = (packet: object, client: unknown, done?: (err?: Error) => void) => void;

// Marks a packet already handed to the pipeline (or refused and dropped): aedes must not fan it out.
// A property on the packet, not a WeakSet: no hash-table insert and delete per message.
const CONSUMED = Symbol('citysense.consumed');
type Markable = { [CONSUMED]?: true };

export async function startMqttBroker(o: MqttBrokerOptions): Promise<MqttBroker> {
  // The device a connection logged in as (fixed for the connection), with its topics prebuilt.
  const sessions = new WeakMap<Client, { device: Device; topics: DeviceTopics; fast: FastSession | undefined }>();

  const disconnectOnRefusal = o.v3RefusalPolicy === 'disconnect';
  const refusedError = (what: string) => new Error(`${what} (mqtt.v3RefusalPolicy: disconnect)`);

  // MQTT 5 connections (v5-session.ts), by client id for session take-over.
  const v5ByClientId = new Map<string, V5Session>();
  const v5Sessions = new Set<V5Session>();

  const guardMetrics = listenerGuardMetrics(o.metrics.registry);
  const slots = new ConnectionSlots(
    'mqtt',
    {
      maxConnections: o.maxConnections,
      maxUnauthenticated: Math.min(o.maxConnections, o.maxUnauthenticated ?? Math.max(1, Math.floor(o.maxConnections / 10))),
      maxPerSource: o.maxConnectionsPerSource ?? 1_000,
      maxUnauthenticatedPerSource: o.maxUnauthenticatedPerSource ?? 32,
      preAuthTimeoutMs: o.connectTimeoutMs,
    },
    guardMetrics,
    o.warn,
  );
  const throttle = new LoginThrottle(o.loginThrottle ?? { maxFailures: 10, windowMs: 60_000, blockMs: 300_000 });
  const slotOf = new WeakMap<object, Slot>();
  const checker = o.credentials ?? new CredentialChecker();

  /**
   * The login of both protocol paths (aedes for 3.1/3.1.1, v5-session.ts for 5), as named steps:
   * throttled source? → credentials → client id (clientIdBelongsTo) → the slot counts as authenticated.
   */
  const login = async (socket: object, clientId: string, username: string | undefined, password: Buffer | undefined): Promise<AuthResult> => {
    const slot = slotOf.get(socket);
    const source = slot?.source ?? 'unknown';
    if ((await throttle.blockedFor(source)) > 0) {
      // Not even a right password gets in while the source is blocked, and it is not checked: the
      // guesser learns nothing. "Not authorized", as for any refusal that is not about the password.
      guardMetrics.refused.inc({ listener: 'mqtt', reason: 'throttled' });
      return { ok: false, reason: CONNECT_REFUSE.throttled };
    }
    const r = await authenticateDevice(o.registry, checker, username, password);
    if (!r.ok) {
      if (r.reason !== CONNECT_REFUSE.busy && (await throttle.failed(source))) {
        o.warn('mqtt_source_blocked', { remote: source, ...o.loginThrottle }, 'MQTT source blocked after repeated wrong passwords (mqtt.loginThrottle)');
      }
      return r;
    }
    // Another device's client id would take its session over; an empty one (MQTT 5) gets <deviceId>/<random>.
    if (clientId !== '' && !clientIdBelongsTo(clientId, r.device.id)) return { ok: false, reason: CONNECT_REFUSE.clientIdRejected };
    slot?.authenticated();
    return r;
  };
  const codeFor = (reason: ConnectRefuseReason): 2 | 3 | 4 | 5 =>
    reason === CONNECT_REFUSE.clientIdRejected
      ? IDENTIFIER_REJECTED
      : reason === CONNECT_REFUSE.busy
        ? SERVER_UNAVAILABLE
        : reason === CONNECT_REFUSE.noMqttLogin || reason === CONNECT_REFUSE.throttled
          ? NOT_AUTHORIZED
          : BAD_USERNAME_OR_PASSWORD;

  const authenticate: AedesOptions['authenticate'] = (client, username, password, done) => {
    const conn = (client as unknown as { conn: object }).conn;
    login(conn, client.id, username, password).then(
      (r) => {
        if (r.ok) {
          // A 3.1.1 connection taking over an MQTT 5 one's client id closes it, as aedes does among its own.
          v5ByClientId.get(client.id)?.takenOver();
          const topics = deviceTopics(r.device.id);
          // Topics aedes' handlePublish would refuse (wildcards in the id) stay on its path.
          const plain = !/[#+]/.test(r.device.id) && topics.telemetry.split('/').length <= (broker as unknown as { maxTopicLevels: number }).maxTopicLevels;
          const fast = plain ? { device: r.device, telemetry: Buffer.from(topics.telemetry), events: Buffer.from(topics.events) } : undefined;
          sessions.set(client, { device: r.device, topics, fast });
          return done(null, true);
        }
        o.metrics.connectRefused.inc({ reason: r.reason });
        // The password is never logged; the username is the device id it claims.
        o.warn(`connect_${r.reason}`, { clientId: client.id?.slice(0, 128), username: username?.slice(0, 128) }, `MQTT connection refused: ${r.reason}`);
        done(Object.assign(new Error(r.reason), { returnCode: codeFor(r.reason) }), false);
      },
      (err: unknown) => done(Object.assign(err instanceof Error ? err : new Error(String(err)), { returnCode: SERVER_UNAVAILABLE }), false),
    );
  };

  const authorizePublish: AedesOptions['authorizePublish'] = (client, packet, done) => {
    const session = client ? sessions.get(client) : undefined;
    if (!session) {
      // A will left by a client that is gone: no device to attribute it to.
      o.metrics.publishRefused.inc({ reason: PUBLISH_REFUSE.unauthenticated });
      return done(new Error('publish without an authenticated device'));
    }
    const device = session.device;
    const decision = authorizeTopic(device.id, packet.topic, session.topics);
    if (!decision.ok) {
      o.metrics.publishRefused.inc({ reason: decision.reason });
      o.warn(`publish_${decision.reason}`, { device: device.id, topic: packet.topic.slice(0, 256) }, `MQTT publish refused: ${decision.reason}`);
      // MQTT 3.1.1 has no negative PUBACK. By default acknowledging and dropping (as mosquitto does for
      // ACL denials) keeps the device's good traffic flowing instead of a disconnect-redeliver loop.
      (packet as Markable)[CONSUMED] = true;
      return done(disconnectOnRefusal ? refusedError(`publish refused: ${decision.reason}`) : null);
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    // Marked now; a refused message never reaches publish (aedes drops the connection instead).
    (packet as Markable)[CONSUMED] = true;
    o.onMessage(device, decision.kind, payload, Date.now()).then(
      (outcome) => done(outcome && disconnectOnRefusal ? refusedError(`message refused: ${outcome.refused}`) : null),
      // Never a falsy error: aedes would take it as success and send the PUBACK.
      (err: unknown) => done(err instanceof Error ? err : new Error(`message not taken: ${String(err)}`)),
    );
  };

  const authorizeSubscribe: AedesOptions['authorizeSubscribe'] = (client, sub, done) => {
    const device = sessions.get(client)?.device;
    if (device && maySubscribe(device.id, sub.topic)) return done(null, sub);
    o.metrics.subscribeRefused.inc();
    done(null, null); // SUBACK 0x80 for this filter [MQTT-3.9.3]
  };

  const broker = await Aedes.createBroker({
    // The guard's pre-auth timer (counted, logged) closes first; aedes' own is only the backstop.
    connectTimeout: o.connectTimeoutMs + 5_000,
    authenticate,
    authorizePublish,
    authorizeSubscribe,
  });

  const publish = broker.publish.bind(broker) as PublishFn;
  (broker as unknown as { publish: PublishFn }).publish = (packet, client, done) => {
    if ((packet as Markable)[CONSUMED] === true) {
      const cb = typeof client === 'function' ? (client as () => void) : done;
      return cb?.();
    }
    publish(packet, client, done);
  };

  const connectedCount = () => broker.connectedClients + v5Sessions.size;
  const syncConnections = () => o.metrics.connections.set(connectedCount());
  broker.on('clientReady', syncConnections);
  broker.on('clientDisconnect', syncConnections);
  broker.on('clientError', (client, err) => {
    o.warn('mqtt_client_error', { clientId: client?.id, err: err.message }, 'MQTT client error, connection closed');
  });
  broker.on('connectionError', (_client, err) => {
    o.warn('mqtt_connection_error', { err: err.message }, 'MQTT connection error before CONNECT completed');
  });

  // A city's devices reconnect together after a power cut or a cell outage: a token bucket keeps that
  // storm from starving the broker, and a refused device simply retries later.
  let tokens = o.connectBurst;
  let refilledAt = Date.now();
  const admit = (): boolean => {
    const now = Date.now();
    tokens = Math.min(o.connectBurst, tokens + ((now - refilledAt) / 1000) * o.maxConnectsPerSecond);
    refilledAt = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
  const fastSession = (client: unknown) => sessions.get(client as Client)?.fast;
  const fastWindow = o.maxInflightPerConnection ?? 64;

  const v5Login = async (clientId: string, username: string | undefined, password: Buffer | undefined, socket: Socket): Promise<V5Login> => {
    const r = await login(socket, clientId, username, password);
    if (!r.ok) return r;
    const topics = deviceTopics(r.device.id);
    return { ok: true, device: r.device, telemetry: Buffer.from(topics.telemetry), events: Buffer.from(topics.events) };
  };
  const v5: V5Context = {
    maxPacketBytes: o.maxPacketBytes,
    receiveMaximum: fastWindow,
    topicAliasMaximum: o.topicAliasMaximum ?? 16,
    serverKeepAliveS: o.serverKeepAliveS,
    login: v5Login,
    onMessage: o.onMessage,
    connectRefused: (reason, clientId, username) => {
      o.metrics.connectRefused.inc({ reason });
      o.warn(`connect_${reason}`, { clientId: clientId.slice(0, 128), username: username?.slice(0, 128), mqtt: 5 }, `MQTT connection refused: ${reason}`);
    },
    publishRefused: (reason, device, topic) => {
      o.metrics.publishRefused.inc({ reason });
      o.warn(`publish_${reason}`, { device: device.id, topic: topic.slice(0, 256), mqtt: 5 }, `MQTT publish refused: ${reason}`);
    },
    clientError: (clientId, err) => o.warn('mqtt_client_error', { clientId: clientId.slice(0, 128), err, mqtt: 5 }, 'MQTT client error'),
    register: (clientId, s) => {
      // An aedes (3.1.1) connection with this client id is taken over too.
      (broker as unknown as { clients: Record<string, Client | undefined> }).clients[clientId]?.close();
      const old = v5ByClientId.get(clientId);
      v5ByClientId.set(clientId, s);
      v5Sessions.add(s);
      if (old && old !== s) old.takenOver();
      syncConnections();
    },
    unregister: (clientId, s) => {
      if (v5ByClientId.get(clientId) === s) v5ByClientId.delete(clientId);
      v5Sessions.delete(s);
      syncConnections();
    },
  };
  const keepsUserProperties = (d: Device) => d.profile?.profile?.userProperties !== undefined;

  const onSocket = (socket: Socket) => {
    if (!admit()) {
      o.metrics.connectRefused.inc({ reason: CONNECT_REFUSE.rateLimited });
      o.warn('connect_rate_limited', { remote: socket.remoteAddress, perSecond: o.maxConnectsPerSecond }, 'MQTT connection closed: mqtt.maxConnectsPerSecond exceeded');
      socket.destroy();
      return;
    }
    const slot = slots.admit(socket);
    if (!slot) return;
    slotOf.set(socket, slot);
    socket.setNoDelay(true);
    let v5Session: V5Session | undefined;
    // The first packet decides who serves the connection: MQTT 5 → v5-session.ts, anything else → aedes.
    const router = new ProtocolRouter((level) => {
      if (level === 5) {
        const s = (v5Session = new V5Session(socket, v5, keepsUserProperties));
        return { onChunk: (chunk) => s.onChunk(chunk) };
      }
      broker.handle(conn);
      return new FastPath(socket, fastWindow, fastSession, o.onMessage, disconnectOnRefusal);
    });
    // No CONNECT, or no login, within mqtt.connectTimeoutMs: the guard's pre-auth timer (slots.ts) closes it.
    socket.on('error', () => undefined); // before the router decides, nobody else listens
    const conn = guardSocket(socket, o.maxPacketBytes, (declared) => {
      o.metrics.publishRefused.inc({ reason: PUBLISH_REFUSE.packetTooLarge });
      o.warn('packet_too_large', { declaredBytes: declared, max: o.maxPacketBytes, remote: socket.remoteAddress }, 'MQTT packet over mqtt.maxPacketBytes, connection closed');
      // An MQTT 5 device is told why (DISCONNECT 0x95) before the connection closes.
      return v5Session?.tooLarge() ?? false;
    }, router);
  };
  const listen = async (server: Server, port: number, host: string): Promise<number> => {
    // No server.maxConnections: the guard (slots) counts every connection, and at the limit closes the
    // oldest unauthenticated one rather than the newcomer.
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return (server.address() as AddressInfo).port;
  };

  const servers: Server[] = [];
  const server = createServer(onSocket);
  servers.push(server);
  const port = await listen(server, o.port, o.host);
  o.log.info({ port, host: o.host }, 'MQTT broker listening');
  let tlsPort: number | undefined;
  if (o.tls) {
    const t = o.tls;
    const tlsServer = createTlsServer(
      {
        cert: readFileSync(t.cert),
        key: readFileSync(t.key),
        ...(t.ca ? { ca: readFileSync(t.ca) } : {}),
        // With client certificates the device proves itself twice: its certificate and its secret.
        requestCert: t.requireClientCert,
        rejectUnauthorized: t.requireClientCert,
      },
      onSocket,
    );
    tlsServer.on('tlsClientError', (err) => {
      o.metrics.connectRefused.inc({ reason: 'tls_error' });
      o.warn('connect_tls_error', { err: err.message }, 'MQTT TLS handshake failed');
    });
    servers.push(tlsServer);
    tlsPort = await listen(tlsServer, t.port, t.host);
    o.log.info({ port: tlsPort, host: t.host }, 'MQTT over TLS listening');
  }

  return {
    port,
    tlsPort,
    connections: connectedCount,
    async close() {
      const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      for (const s of v5Sessions) s.shutdown();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await closed;
    },
  };
}

/**
 * Holds a connection's first bytes until the CONNECT's protocol level can be read (a few bytes; the frame
 * guard bounds them), then hands everything to the handler that level picks.
 */
class ProtocolRouter implements ChunkSink {
  private held: Buffer | null = null;
  private target: ChunkSink | null = null;

  constructor(private readonly pick: (level: number) => ChunkSink) {}

  onChunk(chunk: Buffer, endsAtBoundary: boolean, push: (b: Buffer) => boolean): boolean {
    if (this.target) return this.target.onChunk(chunk, endsAtBoundary, push);
    const buf = this.held === null ? chunk : Buffer.concat([this.held, chunk]);
    this.held = null;
    const level = connectLevel(buf);
    if (level < 0) {
      this.held = buf;
      return true;
    }
    this.target = this.pick(level);
    return this.target.onChunk(buf, endsAtBoundary, push);
  }
}

/**
 * The protocol level of a CONNECT at the start of `buf` [MQTT-3.1.2.2]: -1 when more bytes are needed,
 * 0 when it is not a CONNECT whose level can be read (aedes then answers it as before).
 */
export function connectLevel(buf: Buffer): number {
  if (buf.length === 0) return -1;
  if (buf[0] !== 0x10) return 0;
  let i = 1;
  for (;;) {
    if (i >= buf.length) return -1;
    if (i > 4) return 0;
    if ((buf[i++]! & 0x80) === 0) break;
  }
  if (i + 2 > buf.length) return -1;
  const nameLen = (buf[i]! << 8) | buf[i + 1]!;
  if (nameLen > 6) return 0; // 'MQTT' or 'MQIsdp'
  const at = i + 2 + nameLen;
  return at < buf.length ? buf[at]! : -1;
}
