// The OPC-UA input: the edge as an OPC-UA client of elevator controllers (or any OPC-UA server).
// One session and one subscription per server; one monitored item per (device, metric) node; the
// values of one device changed in one publish notification arrive as one sample. See
// docs/protocols/opcua-elevator.md.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { resolveNodeId } from 'node-opcua';
import { KEEPALIVE_COUNT, ServerConnection } from './connection.ts';
import { createOpcuaMetrics } from './metrics.ts';
import { openClientPki } from './pki.ts';
import type { OpcuaDeviceBinding, OpcuaInput, OpcuaPkiConfig, OpcuaServerConfig, OpcuaValuesHandler } from './types.ts';

export { RECOVERY_REASON, SESSION_ERROR, classifyError, type RecoveryReason, type SessionErrorReason } from './connection.ts';
export { createOpcuaMetrics, type OpcuaMetrics } from './metrics.ts';
export { groupNotification } from './samples.ts';
export type * from './types.ts';

export interface OpcuaInputOptions {
  servers: OpcuaServerConfig[];
  pki: OpcuaPkiConfig;
  bindings: OpcuaDeviceBinding[];
  onValues: OpcuaValuesHandler;
  registry: Registry;
  log: Logger;
  warn?: (key: string, fields: object, msg: string) => void;
}

/** Configuration mistakes found before anything connects; throws with every problem listed. */
export function checkOpcuaConfig(servers: OpcuaServerConfig[], bindings: OpcuaDeviceBinding[]): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const [i, s] of servers.entries()) {
    if (ids.has(s.id)) problems.push(`servers[${i}].id: "${s.id}" is used twice`);
    ids.add(s.id);
    if (!/^opc\.tcp:\/\/[^/\s]+/.test(s.endpoint)) problems.push(`servers[${i}].endpoint: "${s.endpoint}" is not an opc.tcp:// URL`);
    if ((s.securityMode === 'None') !== (s.securityPolicy === 'None')) {
      problems.push(`servers[${i}]: securityMode ${s.securityMode} with securityPolicy ${s.securityPolicy}: None goes with None only`);
    }
    if (s.password !== undefined && s.username === undefined) problems.push(`servers[${i}]: password without username`);
    if (s.reconnect.initialDelayMs <= 0 || s.reconnect.maxDelayMs < s.reconnect.initialDelayMs) {
      problems.push(`servers[${i}].reconnect: need 0 < initialDelayMs <= maxDelayMs`);
    }
    if (!(s.recoveryTimeoutMs > 0)) problems.push(`servers[${i}].recoveryTimeoutMs: must be positive`);
    // The server sends a keep-alive every KEEPALIVE_COUNT publishing intervals when nothing changes:
    // a shorter silence limit would call an idle but healthy controller silent.
    const publishing = Math.min(...bindings.filter((b) => b.server === s.id).map((b) => b.publishingIntervalMs));
    if (Number.isFinite(publishing) && !(s.maxSilenceMs > 2 * KEEPALIVE_COUNT * publishing)) {
      problems.push(`servers[${i}].maxSilenceMs: ${s.maxSilenceMs} ms must exceed two keep-alive periods (2 × ${KEEPALIVE_COUNT} × publishing interval ${publishing} ms)`);
    }
  }
  const devices = new Set<string>();
  for (const [i, b] of bindings.entries()) {
    if (!ids.has(b.server)) problems.push(`bindings[${i}] (${b.deviceId}): unknown server "${b.server}"`);
    if (devices.has(b.deviceId)) problems.push(`bindings[${i}]: device "${b.deviceId}" is bound twice`);
    devices.add(b.deviceId);
    if (Object.keys(b.nodes).length === 0) problems.push(`bindings[${i}] (${b.deviceId}): no nodes`);
    for (const [metric, nodeId] of Object.entries(b.nodes)) {
      try {
        resolveNodeId(nodeId);
      } catch {
        problems.push(`bindings[${i}] (${b.deviceId}).nodes.${metric}: "${nodeId}" is not a NodeId (e.g. "ns=1;s=Car1.Floor")`);
      }
    }
    if (!(b.samplingIntervalMs >= 0) || !(b.publishingIntervalMs > 0)) problems.push(`bindings[${i}] (${b.deviceId}): intervals must be positive`);
  }
  return problems;
}

export async function startOpcuaInput(opts: OpcuaInputOptions): Promise<OpcuaInput> {
  const problems = checkOpcuaConfig(opts.servers, opts.bindings);
  if (problems.length > 0) throw new Error(`opcua: invalid configuration:\n  ${problems.join('\n  ')}`);
  const metrics = createOpcuaMetrics(opts.registry);
  const warn = opts.warn ?? ((_key: string, fields: object, msg: string) => opts.log.warn(fields, msg));
  const pki = await openClientPki(opts.pki);
  const connections = opts.servers.map(
    (config) =>
      new ServerConnection({
        config,
        bindings: opts.bindings.filter((b) => b.server === config.id),
        pki,
        onSample: opts.onValues,
        metrics,
        log: opts.log,
        warn,
      }),
  );
  // Connecting happens in the background: a controller that is down must not hold up the edge.
  for (const c of connections) c.start();
  let closing: Promise<void> | undefined;
  return {
    status: () => connections.map((c) => c.status()),
    close() {
      closing ??= (async () => {
        await Promise.all(connections.map((c) => c.close()));
        await pki.certificateManager.dispose();
      })();
      return closing;
    },
  };
}
