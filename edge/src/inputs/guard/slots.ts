// Connection slots of one listener, handed out before a peer has proved anything. A socket that never
// authenticates (MQTT: no CONNECT, or one that fails; HJ 212: no valid frame with the right MN and PW)
// must not keep a slot a real device needs, so every listener puts its sockets through here:
//
//   admit(socket)      total cap, unauthenticated cap, per-source caps; refused sockets are destroyed,
//                      counted (listener_refused_total{listener, reason}) and logged at a bounded rate
//   pre-auth timer     a socket not authenticated within preAuthTimeoutMs is closed (reason preauth_timeout)
//   slot.authenticated()  the peer proved itself: the timer stops, the slot counts as authenticated
//   socket 'close'     the slot is freed
//
// Room for authenticated devices: at most maxUnauthenticated sockets are unauthenticated at once; the
// other maxConnections - maxUnauthenticated slots can only be held by devices that logged in. When the
// unauthenticated share (or the whole listener) is full, the OLDEST unauthenticated socket is closed to
// make room (reason preauth_evicted), as sshd's MaxStartups drops early: silent sockets cannot hold the
// door shut, and a real device, which authenticates within milliseconds, gets through a flood.
// Protocol-free on purpose: the future GB/T 26875.3 TCP listener takes the same guard.
import type { Socket } from 'node:net';
import type { RateLimitedWarn } from '../../log.ts';
import type { ListenerGuardMetrics } from './metrics.ts';

export interface SlotLimits {
  /** Open connections at most, authenticated or not. */
  maxConnections: number;
  /** Of those, unauthenticated at most (the rest is reserved for devices that logged in). */
  maxUnauthenticated: number;
  /** Connections from one source address at most (devices behind one NAT share it). */
  maxPerSource: number;
  /** Unauthenticated connections from one source address at most. */
  maxUnauthenticatedPerSource: number;
  /** A connection not authenticated within this is closed. */
  preAuthTimeoutMs: number;
}

/** Why a connection was refused or closed by the guard: the `reason` label of listener_refused_total. */
export const SLOT_REFUSE = {
  maxConnections: 'max_connections',
  maxPerSource: 'max_per_source',
  maxUnauthenticatedPerSource: 'max_unauthenticated_per_source',
  preAuthEvicted: 'preauth_evicted',
  preAuthTimeout: 'preauth_timeout',
} as const;

export interface Slot {
  readonly source: string;
  /** The peer proved itself (valid credentials): no pre-auth timeout any more, a reserved slot. */
  authenticated(): void;
  readonly isAuthenticated: boolean;
}

interface Entry extends Slot {
  socket: Socket;
  timer: NodeJS.Timeout | undefined;
}

interface SourceCount {
  all: number;
  unauthenticated: number;
}

/** The source a connection is counted under: its address, IPv4-mapped IPv6 folded to IPv4. */
export function sourceOf(socket: Socket): string {
  const a = socket.remoteAddress ?? 'unknown';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export class ConnectionSlots {
  // Insertion order is age order: the first entry is the oldest unauthenticated socket.
  private readonly unauthenticated = new Set<Entry>();
  private authenticatedCount = 0;
  private readonly sources = new Map<string, SourceCount>();

  constructor(
    private readonly listener: string,
    private readonly limits: SlotLimits,
    private readonly metrics: ListenerGuardMetrics,
    private readonly warn: RateLimitedWarn,
  ) {
    if (limits.maxUnauthenticated > limits.maxConnections) throw new RangeError(`${listener}: maxUnauthenticated (${limits.maxUnauthenticated}) is over maxConnections (${limits.maxConnections})`);
  }

  get open(): number {
    return this.unauthenticated.size + this.authenticatedCount;
  }

  get authenticatedOpen(): number {
    return this.authenticatedCount;
  }

  /** A slot for the socket, or undefined when it was refused (then it is already destroyed and counted). */
  admit(socket: Socket): Slot | undefined {
    const source = sourceOf(socket);
    const count = this.sources.get(source) ?? { all: 0, unauthenticated: 0 };
    const l = this.limits;
    if (count.all >= l.maxPerSource) return this.refuse(socket, source, SLOT_REFUSE.maxPerSource, `${this.listener}.maxConnectionsPerSource (${l.maxPerSource}) reached`);
    if (count.unauthenticated >= l.maxUnauthenticatedPerSource) {
      return this.refuse(socket, source, SLOT_REFUSE.maxUnauthenticatedPerSource, `${this.listener}.maxUnauthenticatedPerSource (${l.maxUnauthenticatedPerSource}) reached`);
    }
    if (this.open >= l.maxConnections || this.unauthenticated.size >= l.maxUnauthenticated) {
      // Full: make room at the expense of the oldest socket that has not proved anything, if any.
      const oldest = this.unauthenticated.values().next().value;
      if (!oldest) return this.refuse(socket, source, SLOT_REFUSE.maxConnections, `${this.listener}.maxConnections (${l.maxConnections}) reached, all by authenticated devices`);
      this.close(oldest, SLOT_REFUSE.preAuthEvicted, 'oldest unauthenticated connection closed to make room');
    }
    count.all++;
    count.unauthenticated++;
    this.sources.set(source, count);
    const self = this;
    const e: Entry = {
      source,
      socket,
      timer: undefined,
      isAuthenticated: false,
      authenticated() {
        if (e.isAuthenticated || !self.unauthenticated.delete(e)) return;
        (e as { isAuthenticated: boolean }).isAuthenticated = true;
        clearTimeout(e.timer);
        e.timer = undefined;
        count.unauthenticated--;
        self.authenticatedCount++;
        self.gauge();
      },
    };
    this.unauthenticated.add(e);
    e.timer = setTimeout(() => this.close(e, SLOT_REFUSE.preAuthTimeout, `not authenticated within ${this.listener}.${this.listener === 'mqtt' ? 'connectTimeoutMs' : 'preAuthTimeoutMs'} (${l.preAuthTimeoutMs} ms)`), l.preAuthTimeoutMs);
    e.timer.unref();
    socket.once('close', () => this.release(e, count));
    this.gauge();
    return e;
  }

  private release(e: Entry, count: SourceCount): void {
    clearTimeout(e.timer);
    if (this.unauthenticated.delete(e)) count.unauthenticated--;
    else if (e.isAuthenticated) this.authenticatedCount--;
    count.all--;
    if (count.all === 0) this.sources.delete(e.source);
    this.gauge();
  }

  private close(e: Entry, reason: string, why: string): void {
    // Out of the unauthenticated set now (its 'close' comes later), so the room is there at once.
    if (this.unauthenticated.delete(e)) {
      this.sources.get(e.source)!.unauthenticated--;
      clearTimeout(e.timer);
    }
    this.metrics.refused.inc({ listener: this.listener, reason });
    this.warn(`${this.listener}_${reason}`, { listener: this.listener, remote: e.source }, `${this.listener} connection closed: ${why}`);
    e.socket.destroy();
  }

  private refuse(socket: Socket, source: string, reason: string, why: string): undefined {
    this.metrics.refused.inc({ listener: this.listener, reason });
    this.warn(`${this.listener}_${reason}`, { listener: this.listener, remote: source }, `${this.listener} connection refused: ${why}`);
    socket.destroy();
    return undefined;
  }

  private gauge(): void {
    this.metrics.connections.set({ listener: this.listener, state: 'unauthenticated' }, this.unauthenticated.size);
    this.metrics.connections.set({ listener: this.listener, state: 'authenticated' }, this.authenticatedCount);
  }
}
