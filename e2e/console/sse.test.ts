// The console's fetch()-based event-stream reader (cloud/console/js/sse.js), run in Node (which has
// fetch and TextDecoderStream): events split across chunks and lines ended by \n, \r\n or \r; the bearer
// header on every attempt; after the server drops the connection, a reconnect that sends Last-Event-ID
// and waits the server's `retry:`; a 401 ends the session.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const store = new Map<string, string>();
(globalThis as unknown as { sessionStorage: unknown }).sessionStorage = {
  getItem: (k: string) => store.get(k) ?? null,
  setItem: (k: string, v: string) => void store.set(k, v),
  removeItem: (k: string) => void store.delete(k),
  get length() {
    return store.size;
  },
};

// The console's own modules (plain browser JavaScript, no type declarations): loaded by URL.
interface SessionModule {
  save(s: Record<string, unknown>): void;
  current(): unknown;
  onChange(fn: (s: unknown, reason: string | undefined) => void): () => void;
}
type Ev = { id: string; event: string; data: string };
interface SseModule {
  openStream(path: string, h: { onEvent: (e: Ev) => void; onState?: (s: string) => void }): { close(): void };
}
const load = async <T>(file: string): Promise<T> => (await import(new URL(`../../cloud/console/js/${file}`, import.meta.url).href)) as T;

let server: Server;
let base: string;
const requests: IncomingMessage[] = [];
let mode: 'stream' | 'deny' = 'stream';

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(req);
    if (mode === 'deny') {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"AUTH_INVALID"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (requests.length === 1) {
      // Two events, cut in awkward places, then the connection drops.
      const text = 'retry: 100\n\n: heartbeat\n\nid: 7\nevent: alert\ndata: {"id":"al_1",\r\ndata: "state":"firing"}\r\n\r\nid: 8\revent: alert\rdata: {"id":"al_2"}\r\r';
      let i = 0;
      const step = () => {
        if (i >= text.length) return res.end();
        res.write(text.slice(i, i + 5));
        i += 5;
        setTimeout(step, 1);
      };
      step();
    } else {
      res.write('id: 9\nevent: alert\ndata: {"id":"al_3"}\n\n');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

describe('console: event stream over fetch', () => {
  it('parses split events, resumes after a drop with Last-Event-ID, sends the bearer token', async () => {
    const session = await load<SessionModule>('session.js');
    const { openStream } = await load<SseModule>('sse.js');
    session.save({ token: 'tok-123', role: 'viewer', username: 'v', expiresAt: Date.now() + 60_000 });
    const events: Ev[] = [];
    const states: string[] = [];
    const s = openStream(`${base}/v1/alerts/stream`, { onEvent: (e) => events.push(e), onState: (st) => states.push(st) });
    const deadline = Date.now() + 5000;
    while (events.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    s.close();
    expect(events).toEqual([
      { id: '7', event: 'alert', data: '{"id":"al_1",\n"state":"firing"}' },
      { id: '8', event: 'alert', data: '{"id":"al_2"}' },
      { id: '9', event: 'alert', data: '{"id":"al_3"}' },
    ]);
    expect(requests.length).toBe(2);
    expect(requests[0]!.headers.authorization).toBe('Bearer tok-123');
    expect(requests[0]!.headers['last-event-id']).toBeUndefined();
    expect(requests[1]!.headers['last-event-id']).toBe('8');
    expect(requests[1]!.headers.authorization).toBe('Bearer tok-123');
    expect(requests[1]!.url).toBe('/v1/alerts/stream'); // no token in the URL
    expect(states).toContain('reconnecting');
  });

  it('a 401 ends the session instead of retrying', async () => {
    mode = 'deny';
    const session = await load<SessionModule>('session.js');
    const { openStream } = await load<SseModule>('sse.js');
    session.save({ token: 'tok-expired', role: 'viewer', username: 'v', expiresAt: Date.now() + 60_000 });
    const ended: (string | undefined)[] = [];
    const off = session.onChange((s, reason) => void (s === null && ended.push(reason)));
    const before = requests.length;
    const s = openStream(`${base}/v1/alerts/stream`, { onEvent: () => undefined });
    const deadline = Date.now() + 3000;
    while (ended.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300));
    s.close();
    off();
    expect(ended).toEqual(['Your session has ended. Please log in again.']);
    expect(requests.length - before).toBe(1);
    expect(session.current()).toBeNull();
  });
});
