// The login flood of the benchmark's login-flood step, as its own process (its CPU is not the measuring
// process's): wrong passwords for made-up usernames to POST /v1/auth/login at a fixed rate, each from the
// next of `sources` loopback addresses (127.0.0.2, ...) so that the per-address windows let most of them
// reach the password hash: the worst case for the cloud. Bounded by a count, a time limit and the
// requests in flight. Driven over IPC:
//   → {type:'start', url, ratePerS, sources, maxInFlight, maxRequests, maxDurationMs}
//   → {type:'stop'}
//   ← {type:'done', sent, byStatus: {401: n, 429: n, 503: n, ...}, errors, ms}
import { request } from 'node:http';

interface Start {
  type: 'start';
  url: string;
  ratePerS: number;
  sources: number;
  maxInFlight: number;
  maxRequests: number;
  maxDurationMs: number;
}

let stopping = false;
process.on('disconnect', () => process.exit(0));
process.on('message', (m: Start | { type: 'stop' }) => {
  if (m.type === 'stop') stopping = true;
  if (m.type !== 'start') return;
  void run(m).then((r) => {
    process.send?.({ type: 'done', ...r });
    setTimeout(() => process.exit(0), 100);
  });
});
process.send?.({ type: 'ready' });

function login(url: URL, n: number, source: string): Promise<number> {
  const body = JSON.stringify({ username: `flood-${n}`, password: `wrong-${n}` });
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: '/v1/auth/login', method: 'POST', localAddress: source, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

async function run(m: Start) {
  const url = new URL(m.url);
  const byStatus: Record<string, number> = {};
  let sent = 0;
  let inFlight = 0;
  let errors = 0;
  const t0 = performance.now();
  const gap = 1000 / m.ratePerS;
  let next = t0;
  while (!stopping && sent < m.maxRequests && performance.now() - t0 < m.maxDurationMs) {
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    next += gap;
    if (inFlight >= m.maxInFlight) continue; // the cloud is slower than the rate: skip, never pile up
    const n = sent++;
    const source = `127.0.0.${2 + (n % m.sources)}`;
    inFlight++;
    login(url, n, source).then(
      (status) => {
        byStatus[status] = (byStatus[status] ?? 0) + 1;
        inFlight--;
      },
      () => {
        errors++;
        inFlight--;
      },
    );
  }
  const deadline = performance.now() + 30_000;
  while (inFlight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return { sent, byStatus, errors, ms: performance.now() - t0 };
}
