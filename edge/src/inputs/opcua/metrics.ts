// The OPC-UA input's metrics, on the Registry it is given. getSingleMetric first: an input restarted on
// the same Registry (agent reload, tests) reuses the series instead of failing on a duplicate name.
import { Counter, Gauge, type Registry } from 'prom-client';

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  return (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}
function gauge<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Gauge<L> {
  return (registry.getSingleMetric(name) as Gauge<L> | undefined) ?? new Gauge({ name, help, labelNames, registers: [registry] });
}

export function createOpcuaMetrics(registry: Registry) {
  return {
    connected: gauge(registry, 'citysense_edge_opcua_connected', '1 while the session with the OPC-UA server is up', ['server']),
    reconnects: counter(registry, 'citysense_edge_opcua_reconnects_total', 'Connections to the OPC-UA server re-established after a loss', ['server']),
    resubscriptions: counter(registry, 'citysense_edge_opcua_resubscriptions_total', 'Subscriptions re-created on the server (after a server restart or a failed check)', ['server']),
    monitoredItems: gauge(registry, 'citysense_edge_opcua_monitored_items', 'Monitored items the server holds for this edge (server-side count when the server can be asked)', ['server']),
    notifications: counter(registry, 'citysense_edge_opcua_notifications_total', 'Data-change notification messages received', ['server']),
    valuesRejected: counter(registry, 'citysense_edge_opcua_values_rejected_total', 'OPC-UA values refused by the value mapping (left out; the rest of the sample went on), by device and reason', ['device', 'reason']),
    sessionErrors: counter(registry, 'citysense_edge_opcua_session_errors_total', 'Failed connection, session, subscription or monitored-item operations, by reason', ['server', 'reason']),
  };
}

export type OpcuaMetrics = ReturnType<typeof createOpcuaMetrics>;
