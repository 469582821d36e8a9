// The OPC-UA input's metrics, on the Registry it is given. getSingleMetric first: an input restarted on
// the same Registry (agent reload, tests) reuses the series instead of failing on a duplicate name.
import { Counter, Gauge, type Registry } from 'prom-client';

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  return (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}
function gauge<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Gauge<L> {
  return (registry.getSingleMetric(name) as Gauge<L> | undefined) ?? new Gauge({ name, help, labelNames, registers: [registry] });
}

// Gauges computed when scraped (ages, health): each server connection registers how to set them. Per
// registry, so an input re-made on the same registry replaces its predecessor's collectors.
const collectors = new WeakMap<Registry, Set<() => void>>();

function collected(registry: Registry, name: string, help: string): Gauge<'server'> {
  let set = collectors.get(registry);
  if (!set) collectors.set(registry, (set = new Set()));
  const fns = set;
  return (
    (registry.getSingleMetric(name) as Gauge<'server'> | undefined) ??
    new Gauge({
      name,
      help,
      labelNames: ['server'],
      registers: [registry],
      collect() {
        for (const f of fns) f();
      },
    })
  );
}

export function createOpcuaMetrics(registry: Registry) {
  return {
    /** Called at every scrape; ServerConnection adds one and removes it on close. */
    collectors: (() => {
      let set = collectors.get(registry);
      if (!set) collectors.set(registry, (set = new Set()));
      return set;
    })(),
    connected: gauge(registry, 'citysense_edge_opcua_connected', '1 while the session with the OPC-UA server is up', ['server']),
    reconnects: counter(registry, 'citysense_edge_opcua_reconnects_total', 'Connections to the OPC-UA server re-established after a loss', ['server']),
    resubscriptions: counter(registry, 'citysense_edge_opcua_resubscriptions_total', 'Subscriptions created on the server after the first (server restart, failed check, recovery), whether or not the server reused the id', ['server']),
    monitoredItems: gauge(registry, 'citysense_edge_opcua_monitored_items', 'Monitored items the server holds for this edge (server-side count when the server can be asked)', ['server']),
    notifications: counter(registry, 'citysense_edge_opcua_notifications_total', 'Data-change notification messages received', ['server']),
    valuesRejected: counter(registry, 'citysense_edge_opcua_values_rejected_total', 'OPC-UA values refused by the value mapping (left out; the rest of the sample went on), by device and reason', ['device', 'reason']),
    recoveries: counter(registry, 'citysense_edge_opcua_recoveries_total', 'Connections thrown away and established from scratch, by reason (recovery_timeout, silent, repair_failed)', ['server', 'reason']),
    resyncedValues: counter(registry, 'citysense_edge_opcua_resynced_values_total', 'Values found changed by the re-read of every bound variable after a reconnection or a new subscription', ['server']),
    secondsSinceNotification: collected(registry, 'citysense_edge_opcua_seconds_since_notification', 'Seconds since the server last sent anything (data or keep-alive); -1 before the first'),
    itemsRefused: gauge(registry, 'citysense_edge_opcua_items_refused', 'Monitored items the server refused', ['server']),
    healthy: collected(registry, 'citysense_edge_opcua_healthy', '1 while the server connection is healthy (see /healthz opcua[].problem)'),
    sessionErrors: counter(registry, 'citysense_edge_opcua_session_errors_total', 'Failed connection, session, subscription or monitored-item operations, by reason', ['server', 'reason']),
  };
}

export type OpcuaMetrics = ReturnType<typeof createOpcuaMetrics>;
