// Realistic sample batches for golden vectors, size measurements and benchmarks. Deterministic: the
// same arguments give the same batch, so measured sizes are repeatable.
import type { Batch, Reading } from './types.ts';

/** mulberry32: a tiny seeded PRNG; enough for sample data, and keeps this package dependency-free. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DISTRICTS = ['jinshui', 'zhongyuan', 'erqi', 'guancheng', 'huiji'];
const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

/**
 * `count` environment-station readings from `devices` stations reporting every `periodMs`, with the nine
 * metrics a station sends (one decimal, as instruments report them).
 */
export function sampleEnvironmentBatch(count = 5000, devices = 100, seed = 1, startTs = 1763900000000, periodMs = 10_000): Batch {
  const r = rng(seed);
  const state = Array.from({ length: devices }, () => ({ pm25: 20 + r() * 60, temp: 5 + r() * 20 }));
  const readings: Reading[] = [];
  for (let i = 0; i < count; i++) {
    const d = i % devices;
    const s = state[d]!;
    s.pm25 = Math.max(1, s.pm25 + (r() - 0.5) * 4);
    s.temp += (r() - 0.5) * 0.2;
    readings.push({
      deviceId: `env-${String(d).padStart(5, '0')}`,
      family: 'environment',
      ts: startTs + Math.floor(i / devices) * periodMs + d * 7,
      values: {
        pm25: round(s.pm25, 1),
        pm10: round(s.pm25 * (1.4 + r() * 0.3), 1),
        no2: round(20 + r() * 30, 1),
        so2: round(5 + r() * 10, 1),
        o3: round(40 + r() * 60, 1),
        co: round(0.4 + r() * 0.8, 2),
        temperature: round(s.temp, 1),
        humidity: round(40 + r() * 30, 1),
        noise: round(45 + r() * 25, 1),
      },
      tags: { district: DISTRICTS[d % DISTRICTS.length]!, model: 'AQM-9' },
    });
  }
  return { edgeId: 'edge-sample', seq: 1, createdMs: startTs + count * 10, readings, events: [] };
}
