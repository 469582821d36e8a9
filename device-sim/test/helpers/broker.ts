// A throwaway aedes broker on an ephemeral port, checking username/password like the edge does and
// recording every device publish it accepts.
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes, type AuthenticateError } from 'aedes';

export interface Received {
  clientId: string;
  topic: string;
  payload: string;
  qos: number;
}

export interface TestBroker {
  url: string;
  /** Publishes on devices/... topics, in the order the broker accepted them. */
  received: Received[];
  /** CONNECTs refused, by username. */
  refused: string[];
  close(): Promise<void>;
}

/** `secretOf(id)` is the secret a device must present; undefined means unknown device. */
export async function startBroker(
  secretOf: (id: string) => string | undefined = (id) => `${id}-secret`,
  port = 0,
): Promise<TestBroker> {
  const received: Received[] = [];
  const refused: string[] = [];
  const broker = await Aedes.createBroker({
    authenticate: (_client, username, password, done) => {
      const expected = username === undefined ? undefined : secretOf(username);
      if (expected !== undefined && password !== undefined && password.toString('utf8') === expected) {
        done(null, true);
        return;
      }
      refused.push(username ?? '');
      const err = new Error('bad username or password') as AuthenticateError;
      // MQTT 3.1.1 CONNACK 4, "bad user name or password"; the const enum in aedes' types cannot be
      // imported under isolatedModules.
      err.returnCode = 4 as AuthenticateError['returnCode'];
      done(err, null);
    },
    published: (packet, client, done) => {
      if (client && packet.topic.startsWith('devices/')) {
        received.push({
          clientId: client.id,
          topic: packet.topic,
          payload: Buffer.from(packet.payload as Buffer).toString('utf8'),
          qos: packet.qos,
        });
      }
      done();
    },
  });
  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `mqtt://127.0.0.1:${bound}`,
    received,
    refused,
    close: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port with nothing listening on it: bind, note the port, close. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `mqtt://127.0.0.1:${port}`;
}

/** Polls `check` until it holds or the deadline passes; never a fixed sleep. */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Received messages grouped by device id (from the topic), payloads parsed. */
export function byDevice(received: readonly Received[], kind: 'telemetry' | 'events' = 'telemetry'): Map<string, unknown[]> {
  const out = new Map<string, unknown[]>();
  for (const r of received) {
    const m = /^devices\/([^/]+)\/(telemetry|events)$/.exec(r.topic);
    if (!m || m[2] !== kind) continue;
    const list = out.get(m[1]!) ?? [];
    list.push(JSON.parse(r.payload));
    out.set(m[1]!, list);
  }
  return out;
}
