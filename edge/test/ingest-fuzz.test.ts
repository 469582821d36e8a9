// Every decoder the MQTT path can reach (JSON, binary layout, HJ 212 over a DTU, GB/T 26875.3), behind
// its profile, fed random and mutated payloads: no exception escapes the ingest, and whatever is not
// taken is refused with a reason that the metrics count.
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createIngest } from '../src/agent/ingest.ts';
import { createEdgeMetrics } from '../src/metrics.ts';
import { rateLimitedWarn } from '../src/log.ts';
import { loadProfiles } from '../src/profiles/load.ts';
import { buildRegistry } from '../src/registry/registry.ts';
import type { Sink } from '../src/sink.ts';

const RUNS = Number(process.env.CITYSENSE_FUZZ_RUNS ?? 10_000);
const profiles = loadProfiles([]);
const registry = buildRegistry(
  [
    { id: 'j', family: 'environment', district: 'd', secret: 'secret-j-1', profile: 'generic-json' },
    { id: 'e', family: 'environment', district: 'd', secret: 'secret-e-1', profile: 'environment-station-json' },
    { id: 'n', family: 'nbiot', district: 'd', secret: 'secret-n-1', profile: 'nb-smoke-detector' },
    { id: 'h', family: 'environment', district: 'd', secret: 'secret-h-1', profile: 'hj212-air-station-dtu', hj212: { mn: '010000A8900016F000169DC0' } },
    { id: 'f', family: 'fire', district: 'd', secret: 'secret-f-1', profile: 'fire-panel-gb26875' },
  ] as never,
  'fuzz',
  profiles,
);

const SEEDS: Record<string, Buffer[]> = {
  j: [Buffer.from('{"ts":1763900000000,"metrics":{"pm25":35.2,"ok":true,"s":"x"}}')],
  e: [Buffer.from('{"metrics":{"pm25":35.2,"pm10":61,"co":0.7,"noise":55}}')],
  n: [Buffer.from([0x01, 87, 0xff, 0xa1, 12, 0x00, 0xfa, 0x01]), Buffer.from('01 56 FF A1 0C 01 2C 01')],
  h: [Buffer.from('##0198QN=20240115110000001;ST=22;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&DataTime=20240115110000;a34004-Rtd=512.0,a34004-Flag=T;a34002-Rtd=0,a34002-Flag=D;a01001-Rtd=13.0,a01001-Flag=N&&06C0\r\n')],
  f: [Buffer.from('40401a00010200000c0f17050b1a010000000000000000000000003000020101010100000000020001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001c2323', 'hex')],
};

describe('ingest fuzzing: every profile\'s decoder', () => {
  it(`survives ${RUNS} random and mutated payloads; every refusal is counted with a reason`, async () => {
    const metrics = createEdgeMetrics();
    let accepted = 0;
    const sink: Sink = {
      async accept(r, e) {
        accepted += r.length + e.length;
        for (const x of r) for (const v of Object.values(x.values)) expect(typeof v === 'number' ? Number.isFinite(v) : true).toBe(true);
      },
    };
    const ingest = createIngest({
      sink,
      metrics,
      warn: rateLimitedWarn(pino({ level: 'silent' }), { linesPerInterval: 1, intervalMs: 60_000 }),
      normalise: { maxFutureSkewMs: 300_000, maxPastAgeMs: 50 * 365 * 86400_000, maxMetricsPerMessage: 256, maxStringValueLength: 1024, clockSkew: 'reject', alarmTypes: ['fire_alarm'], warningTypes: ['fault'] },
    });
    const refusals = async () => {
      const sum = async (name: string) => ((await metrics.registry.getSingleMetric(name)!.get()).values as { value: number; labels: Record<string, unknown> }[]).reduce((s, v) => {
        expect(String(v.labels.reason ?? '')).not.toBe('');
        return s + v.value;
      }, 0);
      return (await sum('citysense_edge_messages_rejected_total')) + (await sum('citysense_edge_values_rejected_total'));
    };
    const mutated = fc
      .tuple(fc.constantFrom(...Object.keys(SEEDS)), fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat())
      .map(([id, pick, flips, cut]) => {
        const seeds = SEEDS[id]!;
        const b = Buffer.from(seeds[pick % seeds.length]!);
        for (const [at, byte] of flips) b[at % b.length] = byte;
        return { id, payload: cut % 4 === 0 ? b.subarray(0, cut % (b.length + 1)) : b };
      });
    const random = fc.tuple(fc.constantFrom(...Object.keys(SEEDS)), fc.uint8Array({ maxLength: 120 })).map(([id, bytes]) => ({ id, payload: Buffer.from(bytes) }));
    const json = fc.tuple(fc.constantFrom('j', 'e'), fc.jsonValue()).map(([id, v]) => ({ id, payload: Buffer.from(JSON.stringify({ metrics: v, ts: typeof v === 'number' ? v : undefined })) }));
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated, random, json), fc.constantFrom('telemetry', 'events'), async ({ id, payload }, kind) => {
        const before = accepted + (await refusals());
        await ingest.mqtt(registry.get(id)!, kind as 'telemetry', payload, 1763900000000);
        // Something happened: taken into the sink, or refused with a reason (never silently lost).
        // (An exact repeat of the previous reading is refused as a duplicate, which counts too.)
        expect(accepted + (await refusals())).toBeGreaterThan(before);
      }),
      { seed: 2026, numRuns: RUNS },
    );
  }, 120_000);
});
