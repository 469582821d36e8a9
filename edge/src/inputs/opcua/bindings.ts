// From the registry to OPC-UA subscriptions: every device whose profile is read over OPC-UA becomes a
// binding (its profile's NodeIds with the device's placeholders filled in) on the server it names.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { EdgeConfig } from '../../config/schema.ts';
import type { DeviceRegistry } from '../../registry/registry.ts';
import type { Ingest } from '../../agent/ingest.ts';
import type { RateLimitedWarn } from '../../log.ts';
import { EdgeError } from '../../errors.ts';
import { setErrorLogger, setWarningLogger } from 'node-opcua';
import { startOpcuaInput } from './index.ts';
import type { OpcuaDeviceBinding, OpcuaInput } from './types.ts';

export function fillPlaceholders(template: string, vars: Readonly<Record<string, string>>): string {
  return template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => vars[name] ?? `{${name}}`);
}

/** Starts the OPC-UA input when some device is read over OPC-UA; undefined otherwise. */
export async function startOpcua(c: EdgeConfig, registry: DeviceRegistry, ingest: Ingest, metrics: Registry, log: Logger, warn: RateLimitedWarn): Promise<OpcuaInput | undefined> {
  const servers = new Set(c.opcua.servers.map((s) => s.id));
  const bindings: OpcuaDeviceBinding[] = [];
  for (const d of registry.all()) {
    const p = d.profile.profile;
    if (p.input !== 'opcua' || !p.opcua || !d.opcua) continue;
    if (!servers.has(d.opcua.server)) {
      throw new EdgeError('CONFIG_INVALID', `device ${d.id} is read from OPC-UA server "${d.opcua.server}", which opcua.servers does not list (known: ${[...servers].join(', ') || 'none'})`);
    }
    const nodes: Record<string, string> = {};
    for (const [metric, node] of Object.entries(p.opcua.nodes)) nodes[metric] = fillPlaceholders(node, d.opcua.vars);
    bindings.push({
      deviceId: d.id,
      server: d.opcua.server,
      nodes,
      samplingIntervalMs: p.opcua.samplingIntervalMs,
      publishingIntervalMs: p.opcua.publishingIntervalMs,
      queueSize: p.opcua.queueSize,
    });
  }
  if (bindings.length === 0) return undefined;
  // node-opcua prints its own multi-line diagnostics to the console; ours are classified and rate-limited
  // (session_errors_total, the warn lines), so its text goes to the debug log.
  const opcuaLog = log.child({ component: 'node-opcua' });
  setWarningLogger((...args: unknown[]) => opcuaLog.debug(args.map(String).join(' ')));
  setErrorLogger((...args: unknown[]) => opcuaLog.debug(args.map(String).join(' ')));
  return startOpcuaInput({
    servers: c.opcua.servers
      .filter((s) => bindings.some((b) => b.server === s.id))
      .map((s) => {
        const password = s.passwordEnv ? process.env[s.passwordEnv] : undefined;
        if (s.passwordEnv && password === undefined) {
          throw new EdgeError('CONFIG_INVALID', `opcua.servers[${s.id}].passwordEnv: the environment variable ${s.passwordEnv} is not set`);
        }
        return { ...s, ...(password !== undefined ? { password } : {}) };
      }),
    pki: { ...c.opcua.pki, dir: c.opcua.pki.dir! },
    bindings,
    onValues: async (deviceId, sample) => {
      await ingest.samples(registry.get(deviceId)!, [sample], Date.now());
    },
    registry: metrics,
    log,
    warn: (key, fields, msg) => warn(key, fields as Record<string, unknown>, msg),
  });
}
