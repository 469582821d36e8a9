// One OPC-UA server: one client, one session, one subscription, one monitored item per (device, metric).
//
// Flow: establish = [connect, createSession, createSubscription, createMonitoredItems, checkItems].
// Establishing is retried with backoff until it succeeds or the input closes. Once established,
// node-opcua's own reconnection takes over when the channel breaks: it re-activates the session if the
// server still has it (a network blip: nothing to re-create), otherwise creates a new session, tries
// TransferSubscriptions and, when the server no longer knows the subscription (it restarted), re-creates
// the subscription and its monitored items with the same client handles (OPC-UA Part 4 §6.7, node-opcua
// reconnection.ts). After every such repair checkItems() asks the server itself (Server.GetMonitoredItems,
// Part 5 §9.1) which items exist: extras are deleted, and if any is missing the subscription is rebuilt,
// so the server holds exactly one item per binding. If node-opcua's repair gives up, or the connection is
// not healthy again within recoveryTimeoutMs (node-opcua's repair can loop for ever against a server
// that answers Republish loosely, or keep encrypting for a server certificate that was renewed), the
// connection is thrown away and establishing starts again from scratch: a new client fetches the
// endpoints and checks the server's certificate as on a first connection. After every reconnection and
// every new subscription, every bound variable is read once and what changed goes to the pipeline, so a
// fault raised while the link was down is delivered (docs/protocols/opcua-elevator.md).
import type { Logger } from 'pino';
import {
  AttributeIds,
  ClientMonitoredItemGroup,
  DataType,
  MessageSecurityMode,
  OPCUAClient,
  SecurityPolicy,
  TimestampsToReturn,
  UserTokenType,
  type ClientMonitoredItemBase,
  type ClientSession,
  type ClientSubscription,
  type NotificationMessage,
  type UserIdentityInfo,
} from 'node-opcua';
import type { ClientPki } from './pki.ts';
import type { OpcuaMetrics } from './metrics.ts';
import { groupNotification, type MappedValue, type NotifiedValue } from './samples.ts';
import type { OpcuaDeviceBinding, OpcuaSample, OpcuaServerConfig, OpcuaServerStatus, OpcuaValue, OpcuaWarn } from './types.ts';

/** Why a connection step failed. Stable: the `reason` label of session_errors_total. */
export const SESSION_ERROR = {
  /** The edge refused the server's certificate (not in <pki.dir>/trusted/certs). */
  serverCertificateUntrusted: 'server_certificate_untrusted',
  serverCertificateInvalid: 'server_certificate_invalid',
  /** The server refused the edge's certificate (not in the server's trust list). */
  clientRejected: 'client_rejected',
  endpointNotOffered: 'endpoint_not_offered',
  userRejected: 'user_rejected',
  unreachable: 'unreachable',
  timeout: 'timeout',
  monitoredItemRefused: 'monitored_item_refused',
  duplicateMonitoredItem: 'duplicate_monitored_item',
  missingMonitoredItem: 'missing_monitored_item',
  repairFailed: 'repair_failed',
  keepaliveFailure: 'keepalive_failure',
  handlerFailed: 'handler_failed',
  backpressure: 'backpressure',
  other: 'other',
} as const;
export type SessionErrorReason = (typeof SESSION_ERROR)[keyof typeof SESSION_ERROR];

export function classifyError(err: unknown): SessionErrorReason {
  const m = err instanceof Error ? err.message : String(err);
  // node-opcua's own check of the server's certificate says "server Certificate verification failed
  // with err <status>": only then did the edge refuse. A BadCertificate* status otherwise comes from the
  // server, about the edge's certificate (which side refused is what the operator must know).
  const edgeRefused = /server certificate verification failed/i.test(m);
  if (edgeRefused && /BadCertificateUntrusted/i.test(m)) return SESSION_ERROR.serverCertificateUntrusted;
  if (edgeRefused) return SESSION_ERROR.serverCertificateInvalid;
  if (/BadCertificate|BadSecurityChecksFailed|BadSecurityPolicyRejected/i.test(m)) return SESSION_ERROR.clientRejected;
  if (/end ?point.*(must exist|not found|cannot be found|does not exist)|BadSecurityModeRejected|cannot find endpoint/i.test(m)) return SESSION_ERROR.endpointNotOffered;
  if (/BadUserAccessDenied|BadIdentityToken/i.test(m)) return SESSION_ERROR.userRejected;
  if (/ECONNREFUSED|EHOSTUNREACH|ENOTFOUND|ECONNRESET|socket has been disconnected|connection.*(closed|refused)|connection break|premature socket termination/i.test(m)) return SESSION_ERROR.unreachable;
  if (/timeout|timed out/i.test(m)) return SESSION_ERROR.timeout;
  return SESSION_ERROR.other;
}

// Failures that retrying will not cure until someone changes a certificate or the configuration: the
// server is reported `down` rather than `connecting` (retries continue, so a fix takes effect).
const NEEDS_OPERATOR = new Set<SessionErrorReason>([
  SESSION_ERROR.serverCertificateUntrusted,
  SESSION_ERROR.serverCertificateInvalid,
  SESSION_ERROR.clientRejected,
  SESSION_ERROR.endpointNotOffered,
  SESSION_ERROR.userRejected,
]);

// Standard nodes (Part 6, NodeIds.csv): the Server object and its GetMonitoredItems method.
const SERVER_OBJECT = 'ns=0;i=2253';
const GET_MONITORED_ITEMS = 'ns=0;i=11492';
// Samples waiting for the handler, per server. Beyond it, new samples are dropped and counted: a stuck
// pipeline must not grow the edge's memory without bound.
const MAX_PENDING_SAMPLES = 10_000;
const DEFAULT_QUEUE_SIZE = 10;
/** Publishing intervals without data after which the server sends a keep-alive. */
export const KEEPALIVE_COUNT = 10;
// Nodes per Read request in the re-read after a reconnection: below every server's MaxNodesPerRead
// we know of, so one re-read is a few requests even for hundreds of cars.
const READ_CHUNK = 500;
// How often the watchdog looks at the connection (at most; faster for short recovery timeouts).
const WATCHDOG_MS = 1000;

/** Why a connection was thrown away and established from scratch: the `reason` of recoveries_total. */
export const RECOVERY_REASON = {
  /** Not healthy again within recoveryTimeoutMs after the connection broke. */
  recoveryTimeout: 'recovery_timeout',
  /** Connected, but nothing (not even a keep-alive) for maxSilenceMs, and still nothing recoveryTimeoutMs later. */
  silent: 'silent',
  /** node-opcua's session repair gave up. */
  repairFailed: 'repair_failed',
} as const;
export type RecoveryReason = (typeof RECOVERY_REASON)[keyof typeof RECOVERY_REASON];

interface KnownValue {
  value: OpcuaValue;
  quality: string | undefined;
  ts: number | undefined;
}

interface ItemBinding {
  deviceId: string;
  metric: string;
  nodeId: string;
}

export interface ServerConnectionOptions {
  config: OpcuaServerConfig;
  bindings: OpcuaDeviceBinding[];
  pki: ClientPki;
  onSample: (deviceId: string, sample: OpcuaSample) => Promise<void>;
  metrics: OpcuaMetrics;
  log: Logger;
  warn: OpcuaWarn;
}

export class ServerConnection {
  private readonly c: OpcuaServerConfig;
  private readonly o: ServerConnectionOptions;
  private readonly log: Logger;
  private state: OpcuaServerStatus['state'] = 'connecting';
  private reconnects = 0;
  private resubscriptions = 0;
  private recoveries = 0;
  private subscriptionsCreated = 0;
  private monitored = 0;
  private refused = 0;
  /** When the server last sent anything while connected (data or keep-alive), and data. */
  private lastAliveAt: number | undefined;
  private lastDataAt: number | undefined;
  private readonly startedAt = Date.now();
  /** When the connection broke (or started connecting from scratch); cleared once healthy again. */
  private lostAt: number | undefined;
  private lastRecoveryMs: number | undefined;
  private recovering = false;
  private watchdog: NodeJS.Timeout | undefined;
  private warnedNoGetMonitoredItems = false;
  /** deviceId → metric → the value last handed to the pipeline. Survives reconnections and fresh starts. */
  private readonly known = new Map<string, Map<string, KnownValue>>();
  private lastError: string | undefined;
  private closed = false;
  private client: OPCUAClient | undefined;
  private session: ClientSession | undefined;
  private subscription: ClientSubscription | undefined;
  private established = false;
  /** Which binding each node-opcua monitored item stands for (survives node-opcua's re-creation). */
  private itemBindings = new WeakMap<ClientMonitoredItemBase, ItemBinding>();
  private groups: ClientMonitoredItemGroup[] = [];
  private wake: (() => void) | undefined;
  private checking: Promise<void> = Promise.resolve();
  private checkQueued = false;
  private delivery: Promise<void> = Promise.resolve();
  private pending = 0;
  private loop: Promise<void> | undefined;

  constructor(o: ServerConnectionOptions) {
    this.o = o;
    this.c = o.config;
    this.log = o.log.child({ opcuaServer: o.config.id });
  }

  start(): void {
    this.o.metrics.connected.set({ server: this.c.id }, 0);
    this.o.metrics.monitoredItems.set({ server: this.c.id }, 0);
    this.o.metrics.itemsRefused.set({ server: this.c.id }, 0);
    this.watchdog = setInterval(() => this.tick(), Math.max(50, Math.min(WATCHDOG_MS, Math.floor(this.c.recoveryTimeoutMs / 4))));
    this.watchdog.unref();
    this.o.metrics.collectors.add(this.collect);
    this.loop = this.run();
  }

  private boundItems(): number {
    return this.o.bindings.reduce((n, b) => n + Object.keys(b.nodes).length, 0);
  }

  /** Health as the operator should read it: not ok when nothing arrives, an operator is needed, or nothing is monitored. */
  private problem(now: number): OpcuaServerStatus['problem'] {
    if (this.state === 'down') return 'needs_operator';
    if (now - (this.lastAliveAt ?? this.startedAt) > this.c.maxSilenceMs) return 'silent';
    if (this.state === 'connected' && this.boundItems() > 0 && this.refused >= this.boundItems()) return 'all_items_refused';
    return undefined;
  }

  status(): OpcuaServerStatus {
    const now = Date.now();
    const problem = this.problem(now);
    const age = (t: number | undefined) => (t === undefined ? null : Math.round((now - t) / 100) / 10);
    return {
      server: this.c.id,
      state: this.state,
      healthy: problem === undefined,
      ...(problem ? { problem } : {}),
      connected: this.state === 'connected',
      monitoredItems: this.monitored,
      boundItems: this.boundItems(),
      itemsRefused: this.refused,
      secondsSinceNotification: age(this.lastAliveAt),
      secondsSinceData: age(this.lastDataAt),
      reconnects: this.reconnects,
      resubscriptions: this.resubscriptions,
      recoveries: this.recoveries,
      ...(this.lastRecoveryMs !== undefined ? { lastRecoveryMs: this.lastRecoveryMs } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  /**
   * The watchdog: every recovery is bounded. A connection that broke and is not healthy again within
   * recoveryTimeoutMs, or that has been silent for maxSilenceMs and stays so for recoveryTimeoutMs more,
   * is thrown away and established from scratch. While establishing (run()), each attempt is bounded
   * by its own timeouts and retried with backoff, so the watchdog stays out of it.
   */
  private readonly collect = (): void => {
    const now = Date.now();
    const id = { server: this.c.id };
    this.o.metrics.secondsSinceNotification.set(id, this.lastAliveAt === undefined ? -1 : (now - this.lastAliveAt) / 1000);
    this.o.metrics.healthy.set(id, this.problem(now) === undefined ? 1 : 0);
  };

  private tick(): void {
    if (this.closed) return;
    const now = Date.now();
    if (!this.established || this.recovering) return;
    let since: number | undefined;
    let reason: RecoveryReason | undefined;
    if (this.state !== 'connected') {
      since = this.lostAt ?? now;
      reason = RECOVERY_REASON.recoveryTimeout;
    } else if (now - (this.lastAliveAt ?? now) > this.c.maxSilenceMs) {
      since = (this.lastAliveAt ?? now) + this.c.maxSilenceMs;
      reason = RECOVERY_REASON.silent;
    }
    if (since === undefined || reason === undefined || now - since < this.c.recoveryTimeoutMs) return;
    this.recover(reason, `OPC-UA connection not healthy ${Math.round((now - since) / 1000)} s after ${reason === RECOVERY_REASON.silent ? 'falling silent' : 'it broke'}: starting from scratch`);
  }

  /** Throw the connection away and establish it again from scratch (new client, endpoints, certificate check). */
  private recover(reason: RecoveryReason, msg: string, err?: unknown): void {
    if (this.recovering || this.closed) return;
    this.recovering = true;
    this.recoveries++;
    this.lostAt ??= Date.now();
    this.o.metrics.recoveries.inc({ server: this.c.id, reason });
    this.o.warn(
      `opcua_recovery_${reason}`,
      { server: this.c.id, endpoint: this.c.endpoint, reason, recoveries: this.recoveries, ...(err !== undefined ? { err: (err instanceof Error ? err.message : String(err)).split('\n')[0]?.slice(0, 300) } : {}) },
      msg,
    );
    void this.restartFromScratch();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    this.o.metrics.collectors.delete(this.collect);
    this.o.metrics.healthy.set({ server: this.c.id }, 0);
    this.wake?.();
    await this.teardown();
    await this.loop;
    await this.delivery;
    this.o.metrics.connected.set({ server: this.c.id }, 0);
  }

  private async run(): Promise<void> {
    let delay = this.c.reconnect.initialDelayMs;
    while (!this.closed) {
      try {
        await this.establish();
        return;
      } catch (err) {
        if (this.closed) return;
        this.fail(err, 'OPC-UA connection failed, retrying');
        await this.teardown();
        await this.sleep(delay);
        delay = Math.min(this.c.reconnect.maxDelayMs, Math.max(1, delay) * 2);
      }
    }
  }

  private fail(err: unknown, msg: string, reason: SessionErrorReason = classifyError(err)): void {
    const message = err instanceof Error ? err.message : String(err);
    this.lastError = `${reason}: ${this.whoRefused(reason) ?? ''}${message.split('\n')[0]?.slice(0, 300)}`;
    this.o.metrics.sessionErrors.inc({ server: this.c.id, reason });
    if (!this.established) this.state = NEEDS_OPERATOR.has(reason) ? 'down' : 'connecting';
    this.o.warn(`opcua_${reason}`, { server: this.c.id, endpoint: this.c.endpoint, reason, err: this.lastError }, msg);
  }

  /**
   * Which side refused which certificate, and what to trust where: the operator's next step. The edge
   * refusing the server's certificate and the server refusing the edge's need different people.
   */
  private whoRefused(reason: SessionErrorReason): string | undefined {
    const { pki } = this.o;
    if (reason === SESSION_ERROR.serverCertificateUntrusted || reason === SESSION_ERROR.serverCertificateInvalid) {
      const r = pki.lastRefused();
      if (!r) return 'the edge refused the server\'s certificate; ';
      return (
        `the edge refused the server's certificate (${r.subject}, SHA-1 ${r.thumbprint}, ${r.status}): ` +
        (reason === SESSION_ERROR.serverCertificateUntrusted
          ? `check its thumbprint with the controller's installer, then move ${r.file ?? `it (in ${pki.rejectedDir})`} to ${pki.trustedDir}/ (taken without a restart); `
          : `the certificate itself is not acceptable (expired, revoked, wrong URI or issuer unknown: put its CA in issuers/); `)
      );
    }
    if (reason === SESSION_ERROR.clientRejected) {
      return `the server refused the edge's certificate (${pki.own.subject}, SHA-1 ${pki.own.thumbprint}): add ${pki.certificateFile} to the controller's trusted certificates; `;
    }
    return undefined;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private userIdentity(): UserIdentityInfo {
    if (this.c.username !== undefined) {
      return { type: UserTokenType.UserName, userName: this.c.username, password: this.c.password ?? '' };
    }
    return { type: UserTokenType.Anonymous };
  }

  private async establish(): Promise<void> {
    const { pki } = this.o;
    const client = OPCUAClient.create({
      applicationName: 'citysense-edge',
      applicationUri: pki.applicationUri,
      clientName: `citysense-edge/${this.c.id}`,
      securityMode: MessageSecurityMode[this.c.securityMode],
      securityPolicy: SecurityPolicy[this.c.securityPolicy],
      clientCertificateManager: pki.certificateManager,
      certificateFile: pki.certificateFile,
      privateKeyFile: pki.privateKeyFile,
      // The mode and policy are exactly the configured ones: a server that does not offer them is
      // refused, never silently downgraded.
      endpointMustExist: true,
      keepSessionAlive: true,
      requestedSessionTimeout: this.c.sessionTimeoutMs,
      defaultTransactionTimeout: this.c.requestTimeoutMs,
      transportTimeout: this.c.requestTimeoutMs,
      connectionStrategy: {
        initialDelay: this.c.reconnect.initialDelayMs,
        maxDelay: this.c.reconnect.maxDelayMs,
        maxRetry: -1, // forever: the reconnection only stops when the input closes
        randomisationFactor: 0.1,
      },
    });
    this.client = client;
    client.on('receive_response', (response: { schema?: { name?: string }; responseHeader?: { serviceResult?: { isGood(): boolean } } }) => {
      // Every subscription the server creates for us, counted here rather than on node-opcua's
      // subscriptionId_changed: a restarted server often hands out the same id again.
      if (client !== this.client || response.schema?.name !== 'CreateSubscriptionResponse' || !response.responseHeader?.serviceResult?.isGood()) return;
      this.subscriptionsCreated++;
      if (this.subscriptionsCreated === 1) return;
      this.resubscriptions++;
      this.o.metrics.resubscriptions.inc({ server: this.c.id });
      // No check here: node-opcua creates the items after this answer, inside its repair, and
      // connection_reestablished schedules the check and the re-read once the repair is complete.
      this.log.info({ resubscriptions: this.resubscriptions }, 'OPC-UA subscription created again on the server');
    });
    client.on('backoff', (retry: number, delay: number) => {
      this.lastError = `${SESSION_ERROR.unreachable}: attempt ${retry} failed, next in ${delay} ms`;
      if (retry === 0 || retry % 10 === 0) this.o.metrics.sessionErrors.inc({ server: this.c.id, reason: SESSION_ERROR.unreachable });
    });
    client.on('connection_lost', () => {
      if (client !== this.client || this.closed) return;
      this.lostAt ??= Date.now();
      this.state = 'reconnecting';
      this.o.metrics.connected.set({ server: this.c.id }, 0);
      this.log.warn({ endpoint: this.c.endpoint }, 'OPC-UA connection lost, reconnecting');
    });
    client.on('connection_reestablished', () => {
      if (client !== this.client || this.closed) return;
      this.reconnects++;
      this.o.metrics.reconnects.inc({ server: this.c.id });
      this.state = 'connected';
      this.lastError = undefined;
      this.lastAliveAt = Date.now();
      this.o.metrics.connected.set({ server: this.c.id }, 1);
      this.log.info({ endpoint: this.c.endpoint, reconnects: this.reconnects, recoveredInMs: this.markRecovered() }, 'OPC-UA connection re-established');
      this.scheduleCheck();
    });

    await client.connect(this.c.endpoint);
    // Bounded like every recovery: a server that takes the channel but never completes the session or
    // the subscription must not hold the edge in "connecting" for ever.
    await withTimeout(this.openSession(client), this.c.recoveryTimeoutMs, 'session and subscription');
    this.established = true;
    this.state = 'connected';
    this.lastError = undefined;
    this.lastAliveAt = Date.now();
    this.o.metrics.connected.set({ server: this.c.id }, 1);
    const recoveredInMs = this.markRecovered();
    this.log.info(
      { endpoint: this.c.endpoint, securityMode: this.c.securityMode, securityPolicy: this.c.securityPolicy, monitoredItems: this.monitored, ...(recoveredInMs !== undefined ? { recoveredInMs } : {}) },
      'OPC-UA subscription established',
    );
    // The first notification carries every value too; the read makes the rule the same for every
    // (re)connection, and values already delivered are left out (isChange).
    this.scheduleCheck(false);
  }

  /** The end of a recovery: how long it took since the connection broke (undefined on a first connection). */
  private markRecovered(): number | undefined {
    if (this.lostAt === undefined) return undefined;
    this.lastRecoveryMs = Date.now() - this.lostAt;
    this.lostAt = undefined;
    return this.lastRecoveryMs;
  }

  private async openSession(client: OPCUAClient): Promise<void> {
    const session = await client.createSession(this.userIdentity());
    if (client !== this.client) {
      await session.close(true).catch(() => undefined);
      throw new Error('connection replaced while the session was created');
    }
    this.session = session;
    session.on('keepalive_failure', () => {
      this.o.metrics.sessionErrors.inc({ server: this.c.id, reason: SESSION_ERROR.keepaliveFailure });
    });
    session.on('session_repaired_failed' as 'session_closed', (err: unknown) => {
      if (this.closed || session !== this.session) return;
      this.fail(err, 'OPC-UA session repair failed', SESSION_ERROR.repairFailed);
      this.recover(RECOVERY_REASON.repairFailed, 'OPC-UA session repair failed: starting from scratch', err);
    });
    await this.subscribe(session);
  }

  private async restartFromScratch(): Promise<void> {
    this.established = false;
    this.state = 'reconnecting';
    await this.teardown();
    this.recovering = false;
    if (!this.closed) this.loop = this.run();
  }

  /** The subscription and its items: one CreateMonitoredItems per device binding. */
  private async subscribe(session: ClientSession, mayRebuild = true): Promise<void> {
    if (this.o.bindings.length === 0) return;
    const publishingInterval = Math.min(...this.o.bindings.map((b) => b.publishingIntervalMs));
    // The server keeps the subscription alive about as long as the session, so that a short outage
    // ends with a transfer (no values lost from the server's queues) rather than a re-creation.
    const lifetime = Math.max(3 * KEEPALIVE_COUNT, Math.ceil(this.c.sessionTimeoutMs / publishingInterval));
    const subscription = await session.createSubscription2({
      requestedPublishingInterval: publishingInterval,
      requestedLifetimeCount: lifetime,
      requestedMaxKeepAliveCount: KEEPALIVE_COUNT,
      maxNotificationsPerPublish: 0,
      publishingEnabled: true,
      priority: 1,
    });
    this.subscription = subscription;
    subscription.on('received_notifications', (msg: NotificationMessage) => this.onNotification(subscription, msg));
    subscription.on('keepalive', () => {
      // node-opcua also calls an empty Republish answer a keep-alive: only a live connection's count.
      if (subscription === this.subscription && this.state === 'connected') this.lastAliveAt = Date.now();
    });
    subscription.on('internal_error', (err: Error) => {
      this.fail(err, 'OPC-UA subscription error');
    });

    this.groups = [];
    const created: Array<Promise<void>> = [];
    for (const b of this.o.bindings) {
      const metrics = Object.keys(b.nodes);
      const group = ClientMonitoredItemGroup.create(
        subscription,
        metrics.map((m) => ({ nodeId: b.nodes[m] as string, attributeId: AttributeIds.Value })),
        { samplingInterval: b.samplingIntervalMs, queueSize: b.queueSize ?? DEFAULT_QUEUE_SIZE, discardOldest: true },
        TimestampsToReturn.Both,
      );
      group.monitoredItems.forEach((item, i) => {
        const metric = metrics[i] as string;
        this.itemBindings.set(item, { deviceId: b.deviceId, metric, nodeId: b.nodes[metric] as string });
      });
      this.groups.push(group);
      created.push(
        new Promise<void>((resolve, reject) => {
          group.once('initialized', () => resolve());
          group.once('err', (e: unknown) => reject(e instanceof Error ? e : new Error(String(e))));
        }),
      );
    }
    await Promise.all(created);
    let refused = 0;
    for (const group of this.groups) {
      for (const item of group.monitoredItems) {
        if (item.statusCode.isGood()) continue;
        refused++;
        const ib = this.itemBindings.get(item);
        this.o.metrics.sessionErrors.inc({ server: this.c.id, reason: SESSION_ERROR.monitoredItemRefused });
        this.o.warn(
          'opcua_monitored_item_refused',
          { server: this.c.id, device: ib?.deviceId, metric: ib?.metric, nodeId: ib?.nodeId, status: item.statusCode.toString() },
          'OPC-UA server refused a monitored item: check the NodeId in the device profile',
        );
      }
    }
    this.refused = refused;
    this.o.metrics.itemsRefused.set({ server: this.c.id }, refused);
    if (refused > 0 && refused === this.boundItems()) {
      this.o.warn('opcua_all_items_refused', { server: this.c.id, refused }, 'OPC-UA server refused every monitored item: nothing is read from it (health degraded)');
    }
    await this.checkItems(mayRebuild);
  }

  /** After a (re)connection or a new subscription: the server-side item check, then the re-read. */
  private scheduleCheck(check = true): void {
    if (this.checkQueued) return;
    this.checkQueued = true;
    this.checking = this.checking.then(async () => {
      this.checkQueued = false;
      if (this.closed) return;
      try {
        if (check) await this.checkItems();
      } catch (err) {
        // Not fatal: the next repair checks again; a subscription that is really gone shows in the
        // silence (health) and in monitored_items.
        this.fail(err, 'OPC-UA monitored item check failed');
      }
      try {
        await this.resync();
      } catch (err) {
        this.fail(err, 'OPC-UA re-read of the bound variables failed');
      }
    });
  }

  /**
   * Read every bound variable once and hand what changed to the pipeline. A fault raised while the
   * link was down, or while a restarted server had no subscription of ours, is delivered even when no
   * notification ever carries it; values the pipeline already has are left out, so no event repeats.
   */
  private async resync(): Promise<void> {
    const session = this.session;
    if (!session || this.closed) return;
    const items = this.expectedItems()
      .map((i) => this.itemBindings.get(i))
      .filter((b): b is ItemBinding => b !== undefined);
    const values: NotifiedValue[] = [];
    for (let i = 0; i < items.length; i += READ_CHUNK) {
      const chunk = items.slice(i, i + READ_CHUNK);
      const dvs = await session.read(chunk.map((b) => ({ nodeId: b.nodeId, attributeId: AttributeIds.Value })), 0);
      if (session !== this.session) return;
      chunk.forEach((b, k) => values.push({ deviceId: b.deviceId, metric: b.metric, dataValue: dvs[k] }));
    }
    let changed = 0;
    const delivered = this.route(values, Date.now(), (v) => {
      const ok = this.isChange(v, true);
      if (ok) changed++;
      return ok;
    });
    if (changed > 0) this.o.metrics.resyncedValues.inc({ server: this.c.id }, changed);
    this.log.info({ read: values.length, changed, samples: delivered }, 'OPC-UA bound variables re-read');
  }

  /** Items the client holds and the server accepted. */
  private expectedItems(): ClientMonitoredItemBase[] {
    return this.groups.flatMap((g) => g.monitoredItems).filter((i) => i.statusCode.isGood() && i.monitoredItemId !== undefined);
  }

  /**
   * Compare the server's own list of monitored items with ours: delete extras, re-create the
   * subscription if any is missing. Servers without GetMonitoredItems are trusted on the client count.
   */
  private async checkItems(mayRebuild = true): Promise<void> {
    const session = this.session;
    const subscription = this.subscription;
    if (!session || !subscription || this.closed) return;
    const expected = this.expectedItems();
    const result = await session.call({
      objectId: SERVER_OBJECT,
      methodId: GET_MONITORED_ITEMS,
      inputArguments: [{ dataType: DataType.UInt32, value: subscription.subscriptionId }],
    });
    if (!result.statusCode.isGood() || !result.outputArguments || result.outputArguments.length < 2) {
      // Once per connection at warn: the count then is the client's, and duplicates or lost items on
      // the server cannot be seen.
      if (!this.warnedNoGetMonitoredItems) {
        this.warnedNoGetMonitoredItems = true;
        this.o.warn(
          'opcua_no_get_monitored_items',
          { server: this.c.id, status: result.statusCode.toString() },
          'OPC-UA server cannot list monitored items (Server.GetMonitoredItems): monitored_items is the client-side count',
        );
      }
      this.setMonitored(expected.length);
      return;
    }
    const serverHandles = Array.from(result.outputArguments[0]?.value ?? []) as number[];
    const wanted = new Set(expected.map((i) => i.monitoredItemId as number));
    const extras = serverHandles.filter((h) => !wanted.has(h));
    const present = new Set(serverHandles);
    const missing = expected.filter((i) => !present.has(i.monitoredItemId as number));
    if (extras.length > 0) {
      this.o.metrics.sessionErrors.inc({ server: this.c.id, reason: SESSION_ERROR.duplicateMonitoredItem }, extras.length);
      this.o.warn('opcua_duplicate_monitored_item', { server: this.c.id, extras: extras.length }, 'OPC-UA server held monitored items this edge does not own: deleted');
      // On ClientSessionImpl but missing from the ClientSession interface in node-opcua's typings.
      const s = session as unknown as { deleteMonitoredItems(r: { subscriptionId: number; monitoredItemIds: number[] }): Promise<unknown> };
      await s.deleteMonitoredItems({ subscriptionId: subscription.subscriptionId, monitoredItemIds: extras });
    }
    if (missing.length > 0 && mayRebuild) {
      this.o.metrics.sessionErrors.inc({ server: this.c.id, reason: SESSION_ERROR.missingMonitoredItem }, missing.length);
      this.o.warn('opcua_missing_monitored_item', { server: this.c.id, missing: missing.length }, 'OPC-UA server lost monitored items: re-creating the subscription');
      await this.rebuildSubscription(session, subscription);
      return;
    }
    // A rebuilt subscription that still misses items is left as it is (no rebuild loop); the gauge shows it.
    this.setMonitored(serverHandles.length - extras.length);
  }

  private async rebuildSubscription(session: ClientSession, old: ClientSubscription): Promise<void> {
    this.subscription = undefined;
    try {
      await old.terminate();
    } catch {
      // It may already be gone on the server: that is why it is rebuilt.
    }
    // Counted as a resubscription by the CreateSubscriptionResponse (receive_response).
    await this.subscribe(session, false);
  }

  private setMonitored(n: number): void {
    this.monitored = n;
    this.o.metrics.monitoredItems.set({ server: this.c.id }, n);
  }

  private onNotification(subscription: ClientSubscription, msg: NotificationMessage): void {
    if (subscription !== this.subscription || this.closed) return;
    const receivedAt = Date.now();
    const values: NotifiedValue[] = [];
    const items = subscription.monitoredItems as Record<number, ClientMonitoredItemBase | undefined>;
    for (const data of msg.notificationData ?? []) {
      const changes = (data as { monitoredItems?: Array<{ clientHandle: number; value: unknown }> } | null)?.monitoredItems;
      if (!Array.isArray(changes)) continue; // events and status changes are not values
      for (const ch of changes) {
        const item = items[ch.clientHandle];
        const ib = item ? this.itemBindings.get(item) : undefined;
        if (ib) values.push({ deviceId: ib.deviceId, metric: ib.metric, dataValue: ch.value });
      }
    }
    if (values.length === 0) return;
    this.lastDataAt = receivedAt;
    this.lastAliveAt = receivedAt;
    this.o.metrics.notifications.inc({ server: this.c.id });
    this.route(values, receivedAt, (v) => this.isChange(v, false));
  }

  /** Map, drop what the pipeline has, group per device with the last known values, deliver. */
  private route(values: NotifiedValue[], receivedAt: number, isChange: (v: MappedValue) => boolean): number {
    const grouped = groupNotification(values, receivedAt, { isChange, contextOf: (d) => this.contextOf(d) });
    for (const r of grouped.rejected) {
      this.o.metrics.valuesRejected.inc({ device: r.deviceId, reason: r.code });
      this.o.warn(`opcua_value_${r.code}`, { server: this.c.id, device: r.deviceId, metric: r.metric, reason: r.code, detail: r.message }, 'OPC-UA value refused');
    }
    for (const { deviceId, sample } of grouped.samples) this.deliver(deviceId, sample);
    return grouped.samples.length;
  }

  /**
   * Whether a value is news to the pipeline, remembering it when it is. The first notification of a
   * new subscription repeats every value, and the re-read after a reconnection finds most unchanged:
   * those are left out, so nothing is stored or raised twice. A re-read value older than the one
   * delivered (a notification overtook the read) is stale, not a change.
   */
  private isChange(v: MappedValue, fromRead: boolean): boolean {
    let device = this.known.get(v.deviceId);
    if (!device) this.known.set(v.deviceId, (device = new Map()));
    const prev = device.get(v.metric);
    if (prev && Object.is(prev.value, v.value) && prev.quality === v.quality) return false;
    if (fromRead && prev && prev.ts !== undefined && v.ts !== undefined && v.ts < prev.ts) return false;
    device.set(v.metric, { value: v.value, quality: v.quality, ts: v.ts });
    return true;
  }

  private contextOf(deviceId: string): Record<string, OpcuaValue> | undefined {
    const device = this.known.get(deviceId);
    if (!device || device.size === 0) return undefined;
    const out: Record<string, OpcuaValue> = {};
    for (const [metric, k] of device) out[metric] = k.value;
    return out;
  }

  /** In order, one at a time per server, bounded. */
  private deliver(deviceId: string, sample: OpcuaSample): void {
    if (this.pending >= MAX_PENDING_SAMPLES) {
      this.o.metrics.sessionErrors.inc({ server: this.c.id, reason: SESSION_ERROR.backpressure });
      this.o.warn('opcua_backpressure', { server: this.c.id, device: deviceId, pending: this.pending }, 'OPC-UA sample dropped: the pipeline is not taking samples');
      return;
    }
    this.pending++;
    this.delivery = this.delivery.then(async () => {
      try {
        await this.o.onSample(deviceId, sample);
      } catch (err) {
        this.o.metrics.sessionErrors.inc({ server: this.c.id, reason: SESSION_ERROR.handlerFailed });
        this.o.warn('opcua_handler_failed', { server: this.c.id, device: deviceId, err: (err as Error)?.message }, 'OPC-UA sample not taken by the pipeline');
      } finally {
        this.pending--;
      }
    });
  }

  private async teardown(): Promise<void> {
    const client = this.client;
    const session = this.session;
    this.client = undefined;
    this.session = undefined;
    this.subscription = undefined;
    this.groups = [];
    this.established = false;
    this.setMonitored(0);
    this.refused = 0;
    this.o.metrics.itemsRefused.set({ server: this.c.id }, 0);
    this.o.metrics.connected.set({ server: this.c.id }, 0);
    if (session) {
      // Delete the subscription with the session so the server is left with nothing of ours; bounded
      // because a dead server never answers.
      await withTimeout(session.close(true), this.c.requestTimeoutMs).catch(() => undefined);
    }
    if (client) await withTimeout(client.disconnect(), this.c.requestTimeoutMs).catch(() => undefined);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}
