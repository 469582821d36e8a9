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
// so the server holds exactly one item per binding. If node-opcua's repair gives up, the connection is
// thrown away and establishing starts again.
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
import { groupNotification, type NotifiedValue } from './samples.ts';
import type { OpcuaDeviceBinding, OpcuaSample, OpcuaServerConfig, OpcuaServerStatus, OpcuaWarn } from './types.ts';

/** Why a connection step failed. Stable: the `reason` label of session_errors_total. */
export const SESSION_ERROR = {
  serverCertificateUntrusted: 'server_certificate_untrusted',
  serverCertificateInvalid: 'server_certificate_invalid',
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
  if (/BadCertificateUntrusted|certificate verification failed/i.test(m)) return SESSION_ERROR.serverCertificateUntrusted;
  if (/BadCertificate/i.test(m)) return SESSION_ERROR.serverCertificateInvalid;
  if (/BadSecurityChecksFailed|BadSecurityPolicyRejected/i.test(m)) return SESSION_ERROR.clientRejected;
  if (/end ?point.*(must exist|not found|cannot be found|does not exist)|BadSecurityModeRejected|cannot find endpoint/i.test(m)) return SESSION_ERROR.endpointNotOffered;
  if (/BadUserAccessDenied|BadIdentityToken/i.test(m)) return SESSION_ERROR.userRejected;
  if (/ECONNREFUSED|EHOSTUNREACH|ENOTFOUND|ECONNRESET|socket has been disconnected|connection.*(closed|refused)/i.test(m)) return SESSION_ERROR.unreachable;
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
const KEEPALIVE_COUNT = 10;

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
  private monitored = 0;
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
    this.loop = this.run();
  }

  status(): OpcuaServerStatus {
    return {
      server: this.c.id,
      state: this.state,
      monitoredItems: this.monitored,
      reconnects: this.reconnects,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
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
    this.lastError = `${reason}: ${message.split('\n')[0]?.slice(0, 300)}`;
    this.o.metrics.sessionErrors.inc({ server: this.c.id, reason });
    if (!this.established) this.state = NEEDS_OPERATOR.has(reason) ? 'down' : 'connecting';
    this.o.warn(`opcua_${reason}`, { server: this.c.id, endpoint: this.c.endpoint, reason, err: message.split('\n')[0]?.slice(0, 300) }, msg);
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
    client.on('backoff', (retry: number, delay: number) => {
      this.lastError = `${SESSION_ERROR.unreachable}: attempt ${retry} failed, next in ${delay} ms`;
      if (retry === 0 || retry % 10 === 0) this.o.metrics.sessionErrors.inc({ server: this.c.id, reason: SESSION_ERROR.unreachable });
    });
    client.on('connection_lost', () => {
      if (client !== this.client || this.closed) return;
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
      this.o.metrics.connected.set({ server: this.c.id }, 1);
      this.log.info({ endpoint: this.c.endpoint, reconnects: this.reconnects }, 'OPC-UA connection re-established');
      this.scheduleCheck();
    });

    await client.connect(this.c.endpoint);
    const session = await client.createSession(this.userIdentity());
    this.session = session;
    session.on('keepalive_failure', () => {
      this.o.metrics.sessionErrors.inc({ server: this.c.id, reason: SESSION_ERROR.keepaliveFailure });
    });
    session.on('session_repaired_failed' as 'session_closed', (err: unknown) => {
      if (this.closed || session !== this.session) return;
      this.fail(err, 'OPC-UA session repair failed: reconnecting from scratch', SESSION_ERROR.repairFailed);
      void this.restartFromScratch();
    });
    await this.subscribe(session);
    this.established = true;
    this.state = 'connected';
    this.lastError = undefined;
    this.o.metrics.connected.set({ server: this.c.id }, 1);
    this.log.info({ endpoint: this.c.endpoint, securityMode: this.c.securityMode, securityPolicy: this.c.securityPolicy, monitoredItems: this.monitored }, 'OPC-UA subscription established');
  }

  private async restartFromScratch(): Promise<void> {
    this.established = false;
    this.state = 'reconnecting';
    await this.teardown();
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
    subscription.on('subscriptionId_changed' as 'started', () => {
      // node-opcua re-created the subscription on a server that had lost it (restart).
      this.o.metrics.resubscriptions.inc({ server: this.c.id });
      this.log.info({ subscriptionId: subscription.subscriptionId }, 'OPC-UA subscription re-created on the server');
      this.scheduleCheck();
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
    for (const group of this.groups) {
      for (const item of group.monitoredItems) {
        if (item.statusCode.isGood()) continue;
        const ib = this.itemBindings.get(item);
        this.o.metrics.sessionErrors.inc({ server: this.c.id, reason: SESSION_ERROR.monitoredItemRefused });
        this.o.warn(
          'opcua_monitored_item_refused',
          { server: this.c.id, device: ib?.deviceId, metric: ib?.metric, nodeId: ib?.nodeId, status: item.statusCode.toString() },
          'OPC-UA server refused a monitored item: check the NodeId in the device profile',
        );
      }
    }
    await this.checkItems(mayRebuild);
  }

  private scheduleCheck(): void {
    if (this.checkQueued) return;
    this.checkQueued = true;
    this.checking = this.checking.then(async () => {
      this.checkQueued = false;
      if (this.closed) return;
      try {
        await this.checkItems();
      } catch (err) {
        // Not fatal: the next repair checks again; a subscription that is really gone shows in the
        // missing-notification silence and in monitored_items.
        this.fail(err, 'OPC-UA monitored item check failed');
      }
    });
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
      this.log.debug({ status: result.statusCode.toString() }, 'OPC-UA server cannot list monitored items; trusting the client count');
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
    this.o.metrics.resubscriptions.inc({ server: this.c.id });
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
    this.o.metrics.notifications.inc({ server: this.c.id });
    const grouped = groupNotification(values, receivedAt);
    for (const r of grouped.rejected) {
      this.o.metrics.valuesRejected.inc({ device: r.deviceId, reason: r.code });
      this.o.warn(`opcua_value_${r.code}`, { server: this.c.id, device: r.deviceId, metric: r.metric, reason: r.code, detail: r.message }, 'OPC-UA value refused');
    }
    for (const { deviceId, sample } of grouped.samples) this.deliver(deviceId, sample);
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
    this.o.metrics.connected.set({ server: this.c.id }, 0);
    if (session) {
      // Delete the subscription with the session so the server is left with nothing of ours; bounded
      // because a dead server never answers.
      await withTimeout(session.close(true), this.c.requestTimeoutMs).catch(() => undefined);
    }
    if (client) await withTimeout(client.disconnect(), this.c.requestTimeoutMs).catch(() => undefined);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}
