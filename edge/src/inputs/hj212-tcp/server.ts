// The HJ 212-2017 listener: environment stations connect over TCP (default port 6212) and send frames.
// Per connection the byte stream is cut into frames (a bad frame never eats its neighbours), each frame
// is checked (length, CRC, fields), its MN mapped to a registered station and its PW checked, and its
// readings handed to the pipeline. The answer the frame's Flag asks for (9014 for data) is written only
// after the sink holds the readings, as a PUBACK is on MQTT: a station that got its answer may forget.
// A 9014 therefore means "stored": a frame of which nothing was kept (no DataTime, every value refused,
// a command the profile does not take) gets 9011 QnRtn 2 instead, and an answer from a station
// (9011..9014) gets nothing, so two ends never answer each other's answers.
//
// In front of that, the listener guard (../guard/): a connection is "authenticated" by its first valid
// frame with a registered MN and the right PW; until then it has hj212.preAuthTimeoutMs, a share of the
// slots and per-source caps. Wrong PWs and unknown MNs count toward the source's throttle; a blocked
// source's connections are closed without an answer. An unknown MN is answered exactly as a wrong PW
// (QnRtn 3, same bytes, same cost) so that registered MNs cannot be listed by asking.
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import {
  Hj212StreamSplitter,
  answerFor,
  dataAnswer,
  parseFrame,
  requestAnswer,
  QN_RTN,
  HJ212_DATA_CNS,
  type Hj212ErrorCode,
  type Hj212Frame,
  type Hj212StreamItem,
} from '../../decoders/hj212/index.ts';
import type { DeviceRegistry } from '../../registry/registry.ts';
import { ConnectionSlots, LoginThrottle, listenerGuardMetrics, sourceOf, type Slot, type ThrottleLimits } from '../guard/index.ts';
import { checkStationPassword } from '../../decoders/hj212/auth.ts';
import { CredentialChecker } from '../../registry/credentials.ts';
import type { RateLimitedWarn } from '../../log.ts';
import type { Ingest } from '../../agent/ingest.ts';

/** HJ 212-2017 answer command codes: frames a station sends in reply, never to be answered themselves. */
const ANSWER_CNS = new Set(['9011', '9012', '9013', '9014']);

export interface Hj212ListenerOptions {
  host: string;
  port: number;
  maxConnections: number;
  /** A station silent this long is disconnected (it reconnects on its next report). */
  idleTimeoutMs: number;
  /** A connection without a valid frame (registered MN, right PW) within this is closed. */
  preAuthTimeoutMs?: number | undefined;
  maxUnauthenticated?: number | undefined;
  maxConnectionsPerSource?: number | undefined;
  maxUnauthenticatedPerSource?: number | undefined;
  loginThrottle?: ThrottleLimits | undefined;
  /** Checks PWs against their salted verifiers (shared with the MQTT broker). */
  credentials?: CredentialChecker | undefined;
  maxSegmentBytes: number;
  /** A held frame complete by length and CRC but without CRLF is taken after this much quiet (0: never). Default 200. */
  crlfIdleMs?: number | undefined;
  /** decoders.hj212.maxCpPairs (default 512). */
  maxCpPairs?: number;
  tls?: { cert: string; key: string } | undefined;
  registry: DeviceRegistry;
  ingest: Ingest;
  metricsRegistry: Registry;
  log: Logger;
  warn: RateLimitedWarn;
}

export interface Hj212Listener {
  port: number;
  connections(): number;
  close(): Promise<void>;
}

export async function startHj212Listener(o: Hj212ListenerOptions): Promise<Hj212Listener> {
  const m = {
    connections: new Gauge({ name: 'citysense_edge_hj212_connections', help: 'HJ 212 station connections open', registers: [o.metricsRegistry] }),
    frames: new Counter({ name: 'citysense_edge_hj212_frames_total', help: 'HJ 212 frames accepted, by command code', labelNames: ['cn'], registers: [o.metricsRegistry] }),
    refused: new Counter({
      name: 'citysense_edge_hj212_frames_refused_total',
      help: 'HJ 212 frames refused, by reason code (HJ212_BAD_CRC, HJ212_UNKNOWN_MN, ...)',
      labelNames: ['reason'],
      registers: [o.metricsRegistry],
    }),
    answers: new Counter({ name: 'citysense_edge_hj212_answers_total', help: 'answer frames sent to stations, by command code', labelNames: ['cn'], registers: [o.metricsRegistry] }),
  };
  const sockets = new Set<Socket>();
  const guardMetrics = listenerGuardMetrics(o.metricsRegistry);
  const slots = new ConnectionSlots(
    'hj212',
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
  const throttleLimits = o.loginThrottle ?? { maxFailures: 10, windowMs: 60_000, blockMs: 300_000 };
  const throttle = new LoginThrottle(throttleLimits);
  const checker = o.credentials ?? new CredentialChecker();

  const refuse = (sock: Socket, reason: string, detail: string, answer?: string) => {
    m.refused.inc({ reason });
    o.warn(`hj212_${reason}`, { remote: sourceOf(sock), detail: detail.slice(0, 200) }, `HJ 212 frame refused: ${reason}`);
    if (answer) send(sock, answer);
  };
  const send = (sock: Socket, frame: string) => {
    if (sock.destroyed) return;
    sock.write(frame);
    m.answers.inc({ cn: /;CN=(\d{4});/.exec(frame)?.[1] ?? 'unknown' });
  };

  async function handleFrame(sock: Socket, slot: Slot, text: string): Promise<void> {
    const r = parseFrame(text, { maxSegmentBytes: o.maxSegmentBytes, ...(o.maxCpPairs ? { maxCpPairs: o.maxCpPairs } : {}) });
    if (!r.ok) return refuse(sock, r.code, r.message, answerFor(r));
    const f: Hj212Frame = r.frame;
    // An answer carries the frame's QN; a 2005 upload without one (QN is optional there) cannot be answered.
    const answerable = f.ackWanted && f.qn !== '';
    if (await throttle.blockedFor(slot.source) > 0) {
      // Blocked after repeated wrong PWs: closed, not answered, the PW not even checked.
      guardMetrics.refused.inc({ listener: 'hj212', reason: 'throttled' });
      o.warn('hj212_throttled', { remote: slot.source }, 'HJ 212 frame refused: source blocked after repeated wrong PWs (hj212.loginThrottle); connection closed');
      sock.destroy();
      return;
    }
    const found = o.registry.byMn(f.mn);
    const device = found && found.profile.profile.input === 'hj212-tcp' ? found : undefined;
    // An unknown MN is checked against a dummy (same cost) and answered as a wrong PW (same bytes).
    const check = device && !device.hj212?.password ? 'ok' : await checkStationPassword(checker, device?.hj212?.password, f.pw);
    if (check !== 'ok' || !device) {
      const reason: Hj212ErrorCode = check === 'busy' ? 'HJ212_BUSY' : device ? 'HJ212_BAD_PASSWORD' : 'HJ212_UNKNOWN_MN';
      refuse(
        sock,
        reason,
        device ? `wrong PW for station ${device.id} (MN ${f.mn})` : `no station with MN ${f.mn} is registered for the HJ 212 listener`,
        answerable ? requestAnswer(f, QN_RTN.wrongPassword) : undefined,
      );
      if (check !== 'busy' && (await throttle.failed(slot.source))) {
        o.warn('hj212_source_blocked', { remote: slot.source, ...throttleLimits }, 'HJ 212 source blocked after repeated wrong PWs or unknown MNs (hj212.loginThrottle); connection closed');
        sock.end();
      }
      return;
    }
    if (!slot.isAuthenticated) {
      slot.authenticated();
      sock.setTimeout(o.idleTimeoutMs, () => sock.destroy());
    }
    m.frames.inc({ cn: f.cn });
    // An answer (9011 request answer, 9012 result, 9013 notice answer, 9014 data answer) is never answered.
    if (ANSWER_CNS.has(f.cn)) return;
    const commands: readonly string[] = device.profile.profile.hj212?.commands ?? Object.keys(HJ212_DATA_CNS);
    if (!(f.cn in HJ212_DATA_CNS) || !commands.includes(f.cn)) {
      // Not data this station's profile takes (a boot notice, an unmapped running state): nothing is
      // stored, so no 9014; 9011 QnRtn 2 (refused) tells the logger not to wait for one.
      refuse(sock, 'HJ212_UNSUPPORTED_CN', `CN=${f.cn} from station ${device.id} is not stored (profile commands: ${commands.join(', ')})`, answerable ? requestAnswer(f, QN_RTN.refused) : undefined);
      return;
    }
    const outcome = await o.ingest.hj212Frame(device, f, Date.now());
    // A resent frame already kept (duplicate) is stored: answer it, or the logger resends it again.
    if (outcome.kept || outcome.duplicate) {
      if (answerable) send(sock, dataAnswer(f));
      return;
    }
    refuse(sock, outcome.reason, `nothing of CN=${f.cn} QN=${f.qn} from station ${device.id} was stored: ${outcome.detail}`, answerable ? requestAnswer(f, QN_RTN.refused) : undefined);
  }

  const onConnection = (sock: Socket) => {
    const slot = slots.admit(sock);
    if (!slot) return;
    sockets.add(sock);
    m.connections.set(sockets.size);
    sock.on('error', () => undefined);
    sock.on('close', () => {
      sockets.delete(sock);
      m.connections.set(sockets.size);
    });
    const splitter = new Hj212StreamSplitter({ maxSegmentBytes: o.maxSegmentBytes });
    // Frames of one connection are handled in order, one at a time; while the pipeline is full the
    // socket is paused, so a station is slowed down rather than buffered without bound.
    let chain = Promise.resolve();
    let pending = 0;
    const take = (items: Hj212StreamItem[]) => {
      for (const item of items) {
        if ('garbage' in item) {
          refuse(sock, item.code, item.message);
          continue;
        }
        pending++;
        if (pending === 1) sock.pause();
        chain = chain
          .then(() => (sock.destroyed ? undefined : handleFrame(sock, slot, item.frame)))
          .catch((err: unknown) => o.log.error({ err, remote: sock.remoteAddress }, 'HJ 212 frame not stored (pipeline closing?); no answer sent'))
          .finally(() => {
            if (--pending === 0 && !sock.destroyed) sock.resume();
          });
      }
    };
    // A logger that leaves out the CRLF would have its frame held until its next write: after
    // crlfIdleMs of quiet, a frame complete by length whose CRC checks is taken (Hj212StreamSplitter.idle).
    const crlfIdleMs = o.crlfIdleMs ?? 200;
    let idleTimer: NodeJS.Timeout | undefined;
    sock.on('close', () => clearTimeout(idleTimer));
    sock.on('data', (chunk: Buffer) => {
      clearTimeout(idleTimer);
      take(splitter.push(chunk));
      if (crlfIdleMs > 0 && splitter.buffered > 0) {
        idleTimer = setTimeout(() => {
          if (!sock.destroyed) take(splitter.idle());
        }, crlfIdleMs);
        idleTimer.unref();
      }
    });
  };

  const server: Server = o.tls
    ? createTlsServer({ cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) }, onConnection)
    : createTcpServer(onConnection);
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
