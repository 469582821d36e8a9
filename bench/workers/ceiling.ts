// The InfluxDB ceiling's writer, as its own process (its CPU is reported apart from influxd's): the
// same readings the load generator sends (environment, device_id + district + model tags, four float
// fields, ms timestamps), as raw line protocol in 5,000-point batches, over `writers` keep-alive HTTP
// connections. Bounded by a point count and a time limit. Driven over IPC:
//   → {type:'start', url, db, points, batch, writers, devices, tsBase, maxDurationMs}
//   ← {type:'done', points, ms, errors, batchMs: number[]}
import { Agent, request } from 'node:http';

interface Start {
  type: 'start';
  url: string;
  db: string;
  points: number;
  batch: number;
  writers: number;
  devices: number;
  tsBase: number;
  maxDurationMs: number;
}
const DISTRICTS = ['jinshui', 'zhongyuan', 'erqi', 'guancheng', 'huiji'];

process.on('disconnect', () => process.exit(0));
process.on('message', (m: Start) => {
  if (m.type !== 'start') return;
  void run(m).then((r) => {
    process.send?.({ type: 'done', ...r });
    setTimeout(() => process.exit(0), 100);
  });
});
process.send?.({ type: 'ready' });

async function run(m: Start) {
  const agent = new Agent({ keepAlive: true, maxSockets: m.writers });
  const u = new URL(`${m.url}/write?db=${encodeURIComponent(m.db)}&precision=ms`);
  const prefixes = Array.from({ length: m.devices }, (_, d) => `environment,device_id=bench-ceil-${String(d).padStart(5, '0')},district=${DISTRICTS[d % 5]},model=bench `);
  const vals = Array.from({ length: m.devices }, () => [300, 500, 200, 550]);
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const f = (t: number) => `${(t / 10) | 0}.${t % 10}`;
  let next = 0;
  const body = (first: number, n: number) => {
    let s = '';
    for (let i = first; i < first + n; i++) {
      const d = i % m.devices;
      const v = vals[d]!;
      for (let k = 0; k < 4; k++) v[k] = Math.min(899, Math.max(120, v[k]! + ((rnd() * 7) | 0) - 3));
      s += `${prefixes[d]}pm25=${f(v[0]!)},pm10=${f(v[1]!)},temperature=${f(v[2]!)},humidity=${f(v[3]!)} ${m.tsBase + Math.floor(i / m.devices)}\n`;
    }
    return s;
  };
  const post = (b: string) =>
    new Promise<number>((resolve) => {
      const req = request(u, { method: 'POST', agent, headers: { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(b) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', () => resolve(0));
      req.end(b);
    });
  const t0 = performance.now();
  const deadline = Date.now() + m.maxDurationMs;
  let written = 0;
  let errors = 0;
  const batchMs: number[] = [];
  const writer = async () => {
    while (next < m.points && Date.now() < deadline) {
      const first = next;
      const n = Math.min(m.batch, m.points - first);
      next += n;
      const b = body(first, n);
      const s = performance.now();
      const status = await post(b);
      batchMs.push(performance.now() - s);
      if (status === 204) written += n;
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: m.writers }, writer));
  agent.destroy();
  return { points: written, ms: performance.now() - t0, errors, batchMs };
}
