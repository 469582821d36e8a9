// Wiring only: config → profiles, registry, durable queue, uplink, ingest, inputs (MQTT broker, HJ 212
// listener, OPC-UA client, HTTP push receivers), HTTP. Each stage knows
// nothing of the others beyond the interfaces passed in here.
import type { DestinationStream, Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { EdgeConfig, EdgeConfigInput } from '../config/schema.ts';
import { parseEdgeConfig } from '../config/load.ts';
import { createLogger, rateLimitedWarn } from '../log.ts';
import { createEdgeMetrics, registerQueueMetrics } from '../metrics.ts';
import { buildRegistry, LiveRegistry, loadRegistryFile } from '../registry/registry.ts';
import { startRegistrySync, type RegistrySync } from '../registry/cloud-sync.ts';
import { loadProfiles } from '../profiles/load.ts';
import { join } from 'node:path';
import { openDiskQueue } from '../queue/index.ts';
import { Uplink } from '../outputs/uplink/uplink.ts';
import { createIngest } from './ingest.ts';
import { TurnBudget } from './turn-budget.ts';
import { startMqttBroker } from '../inputs/mqtt-broker/server.ts';
import { startHj212Listener } from '../inputs/hj212-tcp/server.ts';
import { startGb26875Listener } from '../inputs/gb26875-tcp/server.ts';
import { CredentialChecker } from '../registry/credentials.ts';
import { startOpcua } from '../inputs/opcua/bindings.ts';
import { startHttpPush } from '../inputs/http-push/index.ts';
import { startHttpServer, type Health } from '../http/server.ts';
import { LocalAlerts } from '../alerts/local-alerts.ts';

export interface StartEdgeOptions {
  /** Use this logger instead of making one from config.log. */
  logger?: Logger;
  /** Where the edge's own logger writes (default stdout); ignored when logger is given. */
  logDestination?: DestinationStream;
  /** Also export Node process metrics (off by default so several edges in one process stay apart). */
  processMetrics?: boolean;
}

export interface Edge {
  readonly edgeId: string;
  readonly mqttPort: number;
  /** MQTT over TLS, when mqtt.tls is configured. */
  readonly mqttTlsPort: number | undefined;
  /** The HJ 212 listener's port (undefined when hj212.enabled is false). */
  readonly hj212Port: number | undefined;
  /** The HTTP push receivers' port (undefined when httpPush is not configured). */
  readonly pushPort: number | undefined;
  /** The GB/T 26875.3 listener's port (undefined unless gb26875.enabled). */
  readonly gb26875Port: number | undefined;
  readonly httpPort: number;
  readonly metrics: Registry;
  health(): Health;
  /** Seals the forming batch and resolves once everything accepted so far is acked or refused by the cloud. */
  flush(timeoutMs?: number): Promise<void>;
  /** Stops listening, refuses new data, aborts the uplink. Does not flush: call flush() first. */
  close(): Promise<void>;
}

/** What the OPC-UA input subscribes to: it is re-made only when this changes. */
function opcuaBindingsKey(registry: LiveRegistry): string {
  const parts: string[] = [];
  for (const d of registry.all()) {
    if (d.profile.profile.input === 'opcua' && d.opcua) parts.push(`${d.id}|${d.profile.profile.id}|${d.opcua.server}|${JSON.stringify(d.opcua.vars)}`);
  }
  return parts.sort().join('\n');
}

export async function startEdge(config: EdgeConfig | EdgeConfigInput, opts: StartEdgeOptions = {}): Promise<Edge> {
  // Parsing is idempotent: a loaded config passes through unchanged, a partial object gets its defaults.
  const c = parseEdgeConfig(config);
  const log = opts.logger ?? createLogger({ level: c.log.level, edgeId: c.edgeId }, opts.logDestination);
  const warn = rateLimitedWarn(log, { linesPerInterval: c.log.warnLinesPerInterval, intervalMs: c.log.warnIntervalMs });
  const metrics = createEdgeMetrics({ defaultMetrics: opts.processMetrics ?? false });

  const profiles = loadProfiles(c.profiles.dirs);
  const registry = new LiveRegistry(
    c.registry.file ? loadRegistryFile(c.registry.file, profiles) : buildRegistry(c.registry.devices ?? [], 'config', profiles, 'registry.devices'),
  );
  // Everything a device sent is on disk (group-committed) before it is acknowledged; a batch leaves the
  // queue only on the cloud's Ack for its seq (docs/delivery-guarantees.md).
  const queue = await openDiskQueue({
    dir: join(c.dataDir, 'queue'),
    edgeId: c.edgeId,
    quotaBytes: { telemetry: c.queue.telemetryQuotaBytes, alarm: c.queue.alarmQuotaBytes },
    maxBatchItems: c.batch.maxReadings,
    maxAlarmBatchItems: c.queue.maxAlarmBatchItems,
    maxBatchAgeMs: c.batch.maxAgeMs,
    segmentBytes: c.queue.segmentBytes,
    cacheItems: c.queue.memoryCacheItems,
    log,
  });
  registerQueueMetrics(metrics.registry, () => queue.stats());
  const uplink = new Uplink(
    {
      cloudUrl: c.cloud.url,
      token: c.cloud.token,
      tls: c.uplink.tls,
      requestTimeoutMs: c.uplink.requestTimeoutMs,
      keepAliveTimeoutMs: c.uplink.keepAliveTimeoutMs,
      maxInFlight: c.uplink.maxInFlight,
      retry: c.uplink.retry,
    },
    metrics,
    log,
    warn,
  );
  // Edge-local alerting (issue 5, item 5; edge/src/alerts/): watches critical events once the queue holds
  // them, alerts the local targets when the cloud does not ack in time, and marks those events for the cloud.
  const localAlerts = c.localAlerts
    ? await LocalAlerts.start({ config: c.localAlerts, dataDir: c.dataDir, edgeId: c.edgeId, uplinkState: () => uplink.status.state, registry: metrics.registry, log })
    : undefined;
  uplink.hooks = localAlerts;
  uplink.start(queue);

  const ingest = createIngest({
    sink: localAlerts ? localAlerts.wrapSink(queue) : queue,
    metrics,
    warn,
    normalise: { ...c.normalise, alarmTypes: c.events.alarmTypes, warningTypes: c.events.warningTypes },
    gb26875: { heartbeatReadingIntervalMs: c.gb26875.heartbeatReadingIntervalMs, maxAppData: c.gb26875.maxAppData },
    decoders: c.decoders,
  });
  // Telemetry is taken in at most mqtt.messagesPerTurn per loop turn; events (alarms) go straight in.
  const budget = new TurnBudget(c.mqtt.messagesPerTurn);
  const onMessage: typeof ingest.mqtt = (device, kind, payload, receivedAt, meta) =>
    kind === 'events' ? ingest.mqtt(device, kind, payload, receivedAt, meta) : budget.run(() => ingest.mqtt(device, kind, payload, receivedAt, meta));
  // One checker for both listeners: one bound on scrypt work, one memory of devices that logged in.
  const credentials = new CredentialChecker();
  const mqtt = await startMqttBroker({ ...c.mqtt, registry, credentials, onMessage, metrics, log, warn });
  let opcua = await startOpcua(c, registry, ingest, metrics.registry, log, warn);
  let opcuaKey = opcuaBindingsKey(registry);
  // With registry.cloud the devices come from the cloud's registry (cached on disk, so the edge starts and
  // works while the cloud is away): new devices can log in at the next poll, without a restart.
  let sync: RegistrySync | undefined;
  const rc = c.registry.cloud;
  if (rc) {
    let applying = Promise.resolve();
    sync = await startRegistrySync({
      cloudUrl: c.cloud.url,
      token: c.cloud.token,
      tls: c.uplink.tls,
      edgeId: c.edgeId,
      cacheFile: rc.cacheFile!,
      intervalMs: rc.intervalMs,
      log,
      onUpdate(entries, info) {
        // Throws (and the slice is refused, the previous registry kept) when an entry does not fit its profile.
        registry.swap(buildRegistry(entries, `cloud registry v${info.version} (${info.source})`, profiles));
        log.info({ version: info.version, source: info.source, devices: registry.size }, 'registry updated');
        const key = opcuaBindingsKey(registry);
        if (key !== opcuaKey) {
          opcuaKey = key;
          // OPC-UA subscriptions follow the registry: re-made when its OPC-UA devices change.
          applying = applying.then(async () => {
            await opcua?.close();
            opcua = await startOpcua(c, registry, ingest, metrics.registry, log, warn).catch((err: Error) => {
              log.error({ err }, 'OPC-UA input not started for the new registry');
              return undefined;
            });
          });
        }
      },
    });
  }
  const hj212 = c.hj212.enabled
    ? await startHj212Listener({ ...c.hj212, maxCpPairs: c.decoders.hj212.maxCpPairs, registry, credentials, ingest, metricsRegistry: metrics.registry, log, warn })
    : undefined;
  // CTWing / OneNET pushes (issue 18): a push is answered 200 only once its reports are in the queue.
  const push = c.httpPush ? await startHttpPush({ ...c.httpPush, registry, ingest, metricsRegistry: metrics.registry, log, warn }) : undefined;
  const gb26875 = c.gb26875.enabled
    ? await startGb26875Listener({ ...c.gb26875, registry, ingest, metricsRegistry: metrics.registry, log, warn })
    : undefined;

  const health = (): Health => {
    const u = uplink.status;
    const qs = queue.stats();
    const opcuaStatus = opcua ? opcua.status() : [];
    return {
      // Degraded: the cloud is unreachable (data waits on disk), devices wait for room in the queue, or
      // an OPC-UA server is not healthy (silent, refused everything, or needs an operator).
      status: u.state === 'down' || qs.waitingAccepts > 0 || opcuaStatus.some((s) => !s.healthy) ? 'degraded' : 'ok',
      edgeId: c.edgeId,
      mqtt: { port: mqtt.port, connections: mqtt.connections() },
      hj212: hj212 ? { port: hj212.port, connections: hj212.connections() } : null,
      gb26875: gb26875 ? { port: gb26875.port, connections: gb26875.connections() } : null,
      push: push ? push.status() : null,
      opcua: opcuaStatus,
      uplink: { state: u.state, lastAckAt: u.lastAckAt === null ? null : new Date(u.lastAckAt).toISOString(), lastError: u.lastError },
      queuedReadings: qs.telemetry.readings + qs.alarm.readings,
      queue: {
        telemetry: qs.telemetry,
        alarm: qs.alarm,
        oldestAgeSeconds: qs.oldestAcceptedMs === null ? 0 : (Date.now() - qs.oldestAcceptedMs) / 1000,
        dropped: qs.droppedByClassReason,
        tornRecords: qs.tornRecords,
      },
    };
  };
  const http = await startHttpServer({ ...c.http, health, registry: metrics.registry });
  log.info({ mqttPort: mqtt.port, httpPort: http.port, devices: registry.size, cloud: c.cloud.url }, 'edge started');

  let closing: Promise<void> | undefined;
  return {
    edgeId: c.edgeId,
    mqttPort: mqtt.port,
    mqttTlsPort: mqtt.tlsPort,
    hj212Port: hj212?.port,
    pushPort: push?.port,
    gb26875Port: gb26875?.port,
    httpPort: http.port,
    metrics: metrics.registry,
    health,
    async flush(timeoutMs?: number) {
      await queue.flush();
      const stop = timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs);
      await queue.drained(stop);
      if (stop?.aborted) {
        const s = queue.stats();
        // Not lost: it stays on disk and is sent after the restart.
        throw new Error(`flush: ${s.telemetry.readings + s.telemetry.events + s.alarm.readings + s.alarm.events} readings/events not yet acknowledged after ${timeoutMs} ms; they stay queued on disk`);
      }
    },
    close() {
      closing ??= (async () => {
        await mqtt.close();
        await hj212?.close();
        await push?.close();
        await gb26875?.close();
        await sync?.stop();
        await opcua?.close();
        await uplink.close();
        await localAlerts?.close();
        const s = queue.stats();
        await queue.close();
        await http.close();
        const held = s.telemetry.readings + s.telemetry.events + s.alarm.readings + s.alarm.events;
        if (held > 0) log.info({ held }, 'closing with data the cloud has not acknowledged yet: it stays queued on disk and is sent after the restart');
        log.info('edge closed');
      })();
      return closing;
    },
  };
}
