// The guard's metrics, one set per Prometheus registry, labelled by listener (mqtt, hj212, ...), so
// every listener that takes the guard is counted the same way.
import { Counter, Gauge, type Registry } from 'prom-client';

export interface ListenerGuardMetrics {
  /** Connections refused or closed by the guard and logins refused by the throttle, by listener and reason. */
  refused: Counter<'listener' | 'reason'>;
  /** Open connections by listener and state (unauthenticated, authenticated). */
  connections: Gauge<'listener' | 'state'>;
}

const made = new WeakMap<Registry, ListenerGuardMetrics>();

export function listenerGuardMetrics(registry: Registry): ListenerGuardMetrics {
  let m = made.get(registry);
  if (!m) {
    m = {
      refused: new Counter({
        name: 'citysense_edge_listener_refused_total',
        help: 'Connections refused or closed before authenticating, and logins refused while throttled, by listener and reason',
        labelNames: ['listener', 'reason'] as const,
        registers: [registry],
      }),
      connections: new Gauge({
        name: 'citysense_edge_listener_connections',
        help: 'Open listener connections by listener and state (unauthenticated, authenticated)',
        labelNames: ['listener', 'state'] as const,
        registers: [registry],
      }),
    };
    made.set(registry, m);
  }
  return m;
}
