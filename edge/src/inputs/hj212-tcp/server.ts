// The HJ 212-2017 listener: environment stations connect over TCP (default port 6212) and send frames.
// Per connection the byte stream is cut into frames (a bad frame never eats its neighbours), each frame
// is checked (length, CRC, fields), its MN mapped to a registered station and its PW checked, and its
// readings handed to the pipeline. The answer the frame's Flag asks for (9014 for data) is written only
// after the sink holds the readings, as a PUBACK is on MQTT: a station that got its answer may forget.
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import {
  Hj212StreamSplitter,
  answerFor,
  checkPasswordHash,
  dataAnswer,
  parseFrame,
  requestAnswer,
  QN_RTN,
  HJ212_DATA_CNS,
  type Hj212Frame,
} from '../../decoders/hj212/index.ts';
import type { DeviceRegistry } from '../../registry/registry.ts';
import type { RateLimitedWarn } from '../../log.ts';
import type { Ingest } from '../../agent/ingest.ts';

export interface Hj212ListenerOptions {
  host: string;
  port: number;
  maxConnections: number;
  /** A station silent this long is disconnected (it reconnects on its next report). */
  idleTimeoutMs: number;
  maxSegmentBytes: number;
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

  const refuse = (sock: Socket, reason: string, detail: string, answer?: string) => {
    m.refused.inc({ reason });
    o.warn(`hj212_${reason}`, { remote: sock.remoteAddress, detail: detail.slice(0, 200) }, `HJ 212 frame refused: ${reason}`);
    if (answer) send(sock, answer);
  };
  const send = (sock: Socket, frame: string) => {
    if (sock.destroyed) return;
    sock.write(frame);
    m.answers.inc({ cn: /;CN=(\d{4});/.exec(frame)?.[1] ?? 'unknown' });
  };

  async function handleFrame(sock: Socket, text: string): Promise<void> {
    const r = parseFrame(text, { maxSegmentBytes: o.maxSegmentBytes, ...(o.maxCpPairs ? { maxCpPairs: o.maxCpPairs } : {}) });
    if (!r.ok) return refuse(sock, r.code, r.message, answerFor(r));
    const f: Hj212Frame = r.frame;
    const device = o.registry.byMn(f.mn);
    if (!device || device.profile.profile.input !== 'hj212-tcp') {
      return refuse(sock, 'HJ212_UNKNOWN_MN', `no station with MN ${f.mn} is registered for the HJ 212 listener`, f.ackWanted ? requestAnswer(f, QN_RTN.wrongMn) : undefined);
    }
    const expected = device.hj212?.passwordSha256;
    if (expected && !checkPasswordHash(f, expected).ok) {
      return refuse(sock, 'HJ212_BAD_PASSWORD', `wrong PW for station ${device.id} (MN ${f.mn})`, f.ackWanted ? requestAnswer(f, QN_RTN.wrongPassword) : undefined);
    }
    m.frames.inc({ cn: f.cn });
    const commands: readonly string[] = device.profile.profile.hj212?.commands ?? Object.keys(HJ212_DATA_CNS);
    if (!(f.cn in HJ212_DATA_CNS) || !commands.includes(f.cn)) {
      // Not data (a boot notice, a running state the profile does not map): answered, not stored.
      if (f.ackWanted) send(sock, dataAnswer(f));
      return;
    }
    await o.ingest.hj212Frame(device, f, Date.now());
    if (f.ackWanted) send(sock, dataAnswer(f));
  }

  const onConnection = (sock: Socket) => {
    if (sockets.size >= o.maxConnections) {
      m.refused.inc({ reason: 'HJ212_TOO_MANY_CONNECTIONS' });
      o.warn('hj212_too_many_connections', { remote: sock.remoteAddress, max: o.maxConnections }, 'HJ 212 connection refused: hj212.maxConnections reached');
      sock.destroy();
      return;
    }
    sockets.add(sock);
    m.connections.set(sockets.size);
    sock.setTimeout(o.idleTimeoutMs, () => sock.destroy());
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
    sock.on('data', (chunk: Buffer) => {
      for (const item of splitter.push(chunk)) {
        if ('garbage' in item) {
          refuse(sock, item.code, item.message);
          continue;
        }
        pending++;
        if (pending === 1) sock.pause();
        chain = chain
          .then(() => handleFrame(sock, item.frame))
          .catch((err: unknown) => o.log.error({ err, remote: sock.remoteAddress }, 'HJ 212 frame not stored (pipeline closing?); no answer sent'))
          .finally(() => {
            if (--pending === 0 && !sock.destroyed) sock.resume();
          });
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
