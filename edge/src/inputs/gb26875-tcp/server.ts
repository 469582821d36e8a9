// The GB/T 26875.3 listener: building fire-alarm transmission devices (用户信息传输装置) connect over TCP
// (default port 6213) and send frames in the standard's send/confirm mode. Per connection the byte stream
// is cut into frames (Gb26875StreamFramer: joined, split and noisy reads), each frame's 6-byte source
// address is looked up in the registry (gb26875.address), and what it carries goes to the pipeline.
//
// Answers (GB/T 26875.3-2011 §6.3–6.5, the send/confirm mode and its retransmission):
// - confirm (command 3, same serial number, addresses swapped, no data) once the frame's readings and
//   events are durable in the edge queue (the sink resolved), as a PUBACK is on MQTT; a heartbeat (a
//   send-data frame without data) is confirmed the same way;
// - a device that got no confirm resends the frame with the same serial number: a frame whose serial and
//   application data match one already stored for that device is confirmed again and not stored twice;
// - deny (command 6) where the standard's check fails and the header can be read: checksum, application
//   data length over the limit, a command the centre does not take (1 control, 4 request, undefined), and
//   a source address that is not a registered device; a frame whose end cannot be found is not answered
//   (its bytes may be noise that held '@@').
// Frames of one connection are handled in order, one at a time; while the pipeline is full the socket
// is paused, so a device is slowed down rather than buffered without bound.
//
// In front of that, the listener guard (../guard/, as for MQTT and HJ 212): a connection is
// "authenticated" by its first frame from a registered source address; until then it holds one of the
// few unauthenticated slots and is closed after preAuthTimeoutMs; per-source caps; frames from
// unregistered addresses count toward the source's throttle (loginThrottle), and a blocked source is
// closed without an answer. GB/T 26875.3 has no password: the address is all a device proves.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { COMMANDS, Gb26875StreamFramer, encodeFrame, epochToTime, parseFrame, type Gb26875Header } from '../../decoders/gb26875/index.ts';
import type { Device, DeviceRegistry } from '../../registry/registry.ts';
import type { RateLimitedWarn } from '../../log.ts';
import type { Ingest } from '../../agent/ingest.ts';
import { ConnectionSlots, LoginThrottle, listenerGuardMetrics, sourceOf, type ThrottleLimits } from '../guard/index.ts';


export interface Gb26875ListenerOptions {
  host: string;
  port: number;
  maxConnections: number;
  /** A device silent this long (no heartbeat either) is disconnected; it reconnects. */
  idleTimeoutMs: number;
  preAuthTimeoutMs?: number;
  maxUnauthenticated?: number | undefined;
  maxConnectionsPerSource?: number;
  maxUnauthenticatedPerSource?: number;
  loginThrottle?: ThrottleLimits;
  maxAppData: number;
  /** Per device, how many stored frames (serial + data) are remembered to recognise a resend. */
  rememberedSerials: number;
  tls?: { cert: string; key: string } | undefined;
  registry: DeviceRegistry;
  ingest: Ingest;
  metricsRegistry: Registry;
  log: Logger;
  warn: RateLimitedWarn;
  /** The clock for the answers' time labels (tests). */
  now?: () => number;
}

export interface Gb26875Listener {
  port: number;
  connections(): number;
  close(): Promise<void>;
}

/** China time: the answers' time labels are in the devices' clock (docs/protocols/fire-gb26875.md). */
const ANSWER_OFFSET_MINUTES = 480;

export async function startGb26875Listener(o: Gb26875ListenerOptions): Promise<Gb26875Listener> {
  const r = [o.metricsRegistry];
  const m = {
    connections: new Gauge({ name: 'citysense_edge_gb26875_connections', help: 'GB/T 26875.3 transmission-device connections open', registers: r }),
    frames: new Counter({ name: 'citysense_edge_gb26875_frames_total', help: 'GB/T 26875.3 frames received over TCP, by command byte', labelNames: ['command'] as const, registers: r }),
    refused: new Counter({
      name: 'citysense_edge_gb26875_frames_refused_total',
      help: 'GB/T 26875.3 frames or bytes refused on the TCP listener, by reason code (GB26875_BAD_CHECKSUM, GB26875_UNKNOWN_SOURCE, ...)',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    answers: new Counter({ name: 'citysense_edge_gb26875_answers_total', help: 'answers sent to transmission devices, by kind (confirm, deny)', labelNames: ['kind'] as const, registers: r }),
    resent: new Counter({ name: 'citysense_edge_gb26875_resent_total', help: 'frames recognised as a resend of one already stored (same serial number and data): confirmed, not stored again', registers: r }),
  };
  const now = o.now ?? Date.now;
  const sockets = new Set<Socket>();
  const guardMetrics = listenerGuardMetrics(o.metricsRegistry);
  const slots = new ConnectionSlots(
    'gb26875',
    {
      maxConnections: o.maxConnections,
      maxUnauthenticated: Math.min(o.maxConnections, o.maxUnauthenticated ?? Math.max(1, Math.floor(o.maxConnections / 10))),
      maxPerSource: o.maxConnectionsPerSource ?? 1_000,
      maxUnauthenticatedPerSource: o.maxUnauthenticatedPerSource ?? 32,
      preAuthTimeoutMs: o.preAuthTimeoutMs ?? 60_000,
    },
    guardMetrics,
    o.warn,
  );
  const throttle = new LoginThrottle(o.loginThrottle ?? { maxFailures: 10, windowMs: 60_000, blockMs: 300_000 });
  /** Per device id: keys (serial + data digest) of frames stored, oldest first, bounded by rememberedSerials. */
  const stored = new Map<string, Set<string>>();

  const answer = (sock: Socket, h: Pick<Gb26875Header, 'serial' | 'version' | 'source' | 'destination'>, command: 3 | 6) => {
    if (sock.destroyed) return;
    sock.write(encodeFrame({ serial: h.serial, version: h.version, time: epochToTime(now(), ANSWER_OFFSET_MINUTES), source: h.destination, destination: h.source, command }));
    m.answers.inc({ kind: command === COMMANDS.confirm ? 'confirm' : 'deny' });
  };
  const refuse = (sock: Socket, reason: string, detail: string) => {
    m.refused.inc({ reason });
    o.warn(`gb26875_${reason}`, { remote: sock.remoteAddress, detail: detail.slice(0, 200) }, `GB/T 26875.3 frame refused: ${reason}`);
  };
  const remember = (device: Device, key: string) => {
    let s = stored.get(device.id);
    if (!s) stored.set(device.id, (s = new Set()));
    s.add(key);
    if (s.size > o.rememberedSerials) s.delete(s.values().next().value!);
  };

  async function handleFrame(sock: Socket, bytes: Uint8Array, authenticated: () => void): Promise<void> {
    const p = parseFrame(bytes, ANSWER_OFFSET_MINUTES);
    if (!p.ok) return refuse(sock, p.refusal.code, p.refusal.message); // the framer checked it; cannot happen
    const f = p.frame;
    m.frames.inc({ command: String(f.command) });
    const source = sourceOf(sock);
    if ((await throttle.blockedFor(source)) > 0) {
      guardMetrics.refused.inc({ listener: 'gb26875', reason: 'throttled' });
      o.warn('gb26875_throttled', { remote: source }, 'GB/T 26875.3 frame refused: source blocked after repeated unregistered addresses (gb26875.loginThrottle); connection closed');
      sock.destroy();
      return;
    }
    const device = o.registry.byGbAddress(f.source);
    if (!device || device.profile.profile.input !== 'gb26875-tcp') {
      refuse(sock, 'GB26875_UNKNOWN_SOURCE', `no transmission device with source address ${f.source} is registered for the GB/T 26875.3 listener`);
      answer(sock, f, COMMANDS.deny);
      if (await throttle.failed(source)) {
        o.warn('gb26875_source_blocked', { remote: source }, 'GB/T 26875.3 source blocked after repeated unregistered addresses (gb26875.loginThrottle); connection closed');
        sock.end();
      }
      return;
    }
    authenticated();
    if (f.command === COMMANDS.confirm || f.command === COMMANDS.deny) return; // an answer: the centre sends no commands yet
    if (f.command !== COMMANDS.send && f.command !== COMMANDS.response) {
      refuse(sock, 'GB26875_UNSUPPORTED_COMMAND', `device ${device.id} sent command ${f.command} (serial ${f.serial})`);
      return answer(sock, f, COMMANDS.deny);
    }
    // A resend (the device missed our confirm) carries the same serial number and data; its time label
    // may differ. Confirmed again, not stored twice.
    const key = `${f.serial}:${createHash('sha1').update(f.appData).digest('base64')}`;
    if (stored.get(device.id)?.has(key)) {
      m.resent.inc();
      return answer(sock, f, COMMANDS.confirm);
    }
    const d = await o.ingest.gb26875Frame(device, bytes, Date.now(), 'tcp');
    if (!d.frame) return answer(sock, f, COMMANDS.deny); // refused whole (counted by the ingest)
    remember(device, key);
    answer(sock, f, COMMANDS.confirm);
  }

  const onConnection = (sock: Socket) => {
    // Total, unauthenticated and per-source caps, pre-authentication timeout (counted as listener_refused_total{listener="gb26875"}).
    const slot = slots.admit(sock);
    if (!slot) return;
    const authenticated = () => {
      if (slot.isAuthenticated) return;
      slot.authenticated();
      sock.setTimeout(o.idleTimeoutMs, () => sock.destroy());
    };
    sockets.add(sock);
    m.connections.set(sockets.size);
    sock.on('error', () => undefined);
    sock.on('close', () => {
      sockets.delete(sock);
      m.connections.set(sockets.size);
    });
    const framer = new Gb26875StreamFramer({ maxAppData: o.maxAppData });
    let chain = Promise.resolve();
    let pending = 0;
    sock.on('data', (chunk: Buffer) => {
      for (const item of framer.push(chunk)) {
        if ('garbage' in item) {
          refuse(sock, item.code, item.message);
          // The standard answers a check error with a deny; only where the header could be read.
          if (item.header) {
            const h = item.header;
            chain = chain.then(() => answer(sock, h, COMMANDS.deny));
          }
          continue;
        }
        const bytes = item.frame;
        pending++;
        if (pending === 1) sock.pause();
        chain = chain
          .then(() => handleFrame(sock, bytes, authenticated))
          .catch((err: unknown) => o.log.error({ err, remote: sock.remoteAddress }, 'GB/T 26875.3 frame not stored (pipeline closing?); no answer sent, the device will resend'))
          .finally(() => {
            if (--pending === 0 && !sock.destroyed) sock.resume();
          });
      }
    });
    sock.on('end', () => {
      for (const item of framer.end()) if ('garbage' in item) refuse(sock, item.code, item.message);
    });
  };

  const server: Server = o.tls ? createTlsServer({ cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) }, onConnection) : createTcpServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    connections: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
