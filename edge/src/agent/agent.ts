// Wiring only: config → registry, seq, batcher, uplink, ingest, MQTT broker, HTTP. Each stage knows
// nothing of the others beyond the interfaces passed in here.
import type { DestinationStream, Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { EdgeConfig, EdgeConfigInput } from '../config/schema.ts';
import { parseEdgeConfig } from '../config/load.ts';
import { createLogger, rateLimitedWarn } from '../log.ts';
import { createEdgeMetrics } from '../metrics.ts';
import { buildRegistry, loadRegistryFile } from '../registry/registry.ts';
import { loadProfiles } from '../profiles/load.ts';
import { openSeq } from '../state/seq.ts';
import { Batcher } from '../batcher/batcher.ts';
import { Uplink } from '../outputs/uplink/uplink.ts';
import { createIngest } from './ingest.ts';
import { startMqttBroker } from '../inputs/mqtt-broker/server.ts';
import { startHj212Listener } from '../inputs/hj212-tcp/server.ts';
import { startOpcua } from '../inputs/opcua/bindings.ts';
import { startHttpServer, type Health } from '../http/server.ts';

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
  readonly httpPort: number;
  readonly metrics: Registry;
  health(): Health;
  /** Seals the forming batch and resolves once everything accepted so far is acked or refused by the cloud. */
  flush(timeoutMs?: number): Promise<void>;
  /** Stops listening, refuses new data, aborts the uplink. Does not flush: call flush() first. */
  close(): Promise<void>;
}

export async function startEdge(config: EdgeConfig | EdgeConfigInput, opts: StartEdgeOptions = {}): Promise<Edge> {
  // Parsing is idempotent: a loaded config passes through unchanged, a partial object gets its defaults.
  const c = parseEdgeConfig(config);
  const log = opts.logger ?? createLogger({ level: c.log.level, edgeId: c.edgeId }, opts.logDestination);
  const warn = rateLimitedWarn(log, { linesPerInterval: c.log.warnLinesPerInterval, intervalMs: c.log.warnIntervalMs });
  const metrics = createEdgeMetrics({ defaultMetrics: opts.processMetrics ?? false });

  const profiles = loadProfiles(c.profiles.dirs);
  const registry = c.registry.file ? loadRegistryFile(c.registry.file, profiles) : buildRegistry(c.registry.devices ?? [], 'config', profiles, 'registry.devices');
  const seq = openSeq(c.dataDir, c.seq.reserveBlock);
  const batcher = new Batcher({
    edgeId: c.edgeId,
    maxReadings: c.batch.maxReadings,
    maxAgeMs: c.batch.maxAgeMs,
    maxQueuedReadings: c.batch.maxQueuedReadings,
    seq,
    onQueued: (n) => metrics.queuedReadings.set(n),
    onSealError: (err) => log.error({ err }, 'sealing a batch failed; will retry'),
  });
  const uplink = new Uplink(
    {
      cloudUrl: c.cloud.url,
      token: c.cloud.token,
      tls: c.uplink.tls,
      requestTimeoutMs: c.uplink.requestTimeoutMs,
      keepAliveTimeoutMs: c.uplink.keepAliveTimeoutMs,
      retry: c.uplink.retry,
    },
    metrics,
    log,
    warn,
  );
  uplink.start(batcher);

  const ingest = createIngest({
    sink: batcher,
    metrics,
    warn,
    normalise: { ...c.normalise, alarmTypes: c.events.alarmTypes, warningTypes: c.events.warningTypes },
  });
  const mqtt = await startMqttBroker({ ...c.mqtt, registry, onMessage: ingest.mqtt, metrics, log, warn });
  const opcua = await startOpcua(c, registry, ingest, metrics.registry, log, warn);
  const hj212 = c.hj212.enabled
    ? await startHj212Listener({ ...c.hj212, registry, ingest, metricsRegistry: metrics.registry, log, warn })
    : undefined;

  const health = (): Health => {
    const u = uplink.status;
    return {
      status: u.state === 'down' || batcher.queued >= c.batch.maxQueuedReadings ? 'degraded' : 'ok',
      edgeId: c.edgeId,
      mqtt: { port: mqtt.port, connections: mqtt.connections() },
      hj212: hj212 ? { port: hj212.port, connections: hj212.connections() } : null,
      opcua: opcua ? opcua.status() : [],
      uplink: { state: u.state, lastAckAt: u.lastAckAt === null ? null : new Date(u.lastAckAt).toISOString(), lastError: u.lastError },
      queuedReadings: batcher.queued,
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
    httpPort: http.port,
    metrics: metrics.registry,
    health,
    flush(timeoutMs?: number) {
      const drained = batcher.flush();
      if (timeoutMs === undefined) return drained;
      let t: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`flush: ${batcher.queued} readings/events still unacknowledged after ${timeoutMs} ms`)), timeoutMs);
      });
      return Promise.race([drained, timeout]).finally(() => clearTimeout(t));
    },
    close() {
      closing ??= (async () => {
        await mqtt.close();
        await hj212?.close();
        await opcua?.close();
        batcher.close();
        await uplink.close();
        await http.close();
        // TODO(disk-queue): once the durable queue holds them, these survive the restart instead.
        if (batcher.queued > 0) log.warn({ queued: batcher.queued }, 'closing with readings/events the cloud has not acknowledged; they were in memory only and are lost');
        log.info('edge closed');
      })();
      return closing;
    },
  };
}
