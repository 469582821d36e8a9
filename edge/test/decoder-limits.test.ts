// Issue 11 item 1 at the edge: every decoder checks its limits before it builds per-item structures,
// refuses the message with a reason the metrics count, and the limits come from config `decoders`.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createIngest, type DecoderLimits } from '../src/agent/ingest.ts';
import { parseEdgeConfig } from '../src/config/load.ts';
import { hj212CrcHex, parseFrame } from '../src/decoders/hj212/index.ts';
import { DEFAULT_JSON_LIMITS, jsonShapeProblem } from '../src/decoders/json/limits.ts';
import { parseAppData } from '../src/decoders/gb26875/objects.ts';
import { createEdgeMetrics } from '../src/metrics.ts';
import { rateLimitedWarn } from '../src/log.ts';
import { loadProfiles } from '../src/profiles/load.ts';
import { buildRegistry } from '../src/registry/registry.ts';
import type { Sink } from '../src/sink.ts';

const profiles = loadProfiles([]);
const registry = buildRegistry(
  [
    { id: 'j', family: 'environment', district: 'd', secret: 'secret-j-1', profile: 'generic-json' },
    { id: 'n', family: 'nbiot', district: 'd', secret: 'secret-n-1', profile: 'nb-smoke-detector' },
    { id: 'h', family: 'environment', district: 'd', secret: 'secret-h-1', profile: 'hj212-air-station-dtu', hj212: { mn: '010000A8900016F000169DC0' } },
  ] as never,
  'limits',
  profiles,
);

function hj212(cp: string): Buffer {
  const seg = `QN=20240115110000001;ST=22;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&DataTime=20240115110000;${cp}&&`;
  return Buffer.from(`##${String(seg.length).padStart(4, '0')}${seg}${hj212CrcHex(seg)}\r\n`);
}

function setup(decoders?: DecoderLimits) {
  const metrics = createEdgeMetrics();
  let accepted = 0;
  const sink: Sink = {
    async accept(r, e) {
      accepted += r.length + e.length;
    },
  };
  const ingest = createIngest({
    sink,
    metrics,
    warn: rateLimitedWarn(pino({ level: 'silent' }), { linesPerInterval: 1, intervalMs: 60_000 }),
    normalise: { maxFutureSkewMs: 300_000, maxPastAgeMs: 50 * 365 * 86400_000, maxMetricsPerMessage: 100_000, maxStringValueLength: 1024, clockSkew: 'reject', alarmTypes: ['fire_alarm'], warningTypes: ['fault'] },
    ...(decoders ? { decoders } : {}),
  });
  const rejected = async (reason: string) =>
    ((await metrics.registry.getSingleMetric('citysense_edge_messages_rejected_total')!.get()).values as { value: number; labels: Record<string, unknown> }[])
      .filter((v) => v.labels.reason === reason)
      .reduce((s, v) => s + v.value, 0);
  return { ingest, rejected, accepted: () => accepted };
}

const T = 1763900000000;

describe('edge decoder limits', () => {
  it('JSON: size, depth and member count are checked on the bytes, before JSON.parse', async () => {
    const { ingest, rejected, accepted } = setup();
    const j = registry.get('j')!;
    // 5,000 metrics: within mqtt.maxPacketBytes, over decoders.json.maxMembers (1024).
    const wide = `{"metrics":{${Array.from({ length: 5000 }, (_, i) => `"m${i}":1`).join(',')}}}`;
    await ingest.mqtt(j, 'telemetry', Buffer.from(wide), T);
    expect(await rejected('too_many_members')).toBe(1);
    const deep = `{"metrics":{"a":1},"x":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    await ingest.mqtt(j, 'telemetry', Buffer.from(deep), T);
    expect(await rejected('too_deep')).toBe(1);
    await ingest.mqtt(j, 'events', Buffer.from(`{"type":"fault","attrs":{"a":"${'x'.repeat(70_000)}"}}`), T);
    expect(await rejected('payload_too_large')).toBe(1);
    expect(accepted()).toBe(0);
    // A string holding brackets and commas is not structure; a normal message passes.
    await ingest.mqtt(j, 'telemetry', Buffer.from(`{"metrics":{"s":"${'[,{'.repeat(3000)}\\"]","pm25":3}}`), T);
    expect(accepted()).toBe(1);
  });

  it('JSON limits are configurable (decoders.json) and exact at the boundary', () => {
    const ok = Buffer.from('{"metrics":{"a":1,"b":2}}');
    // members: the outer object, "metrics", the inner object's two members → 3 counted opens/commas + 1
    expect(jsonShapeProblem(ok, { ...DEFAULT_JSON_LIMITS, maxDepth: 2 })).toBeUndefined();
    expect(jsonShapeProblem(ok, { ...DEFAULT_JSON_LIMITS, maxDepth: 1 })?.reason).toBe('too_deep');
    expect(jsonShapeProblem(ok, { ...DEFAULT_JSON_LIMITS, maxMembers: 3 })).toBeUndefined();
    expect(jsonShapeProblem(ok, { ...DEFAULT_JSON_LIMITS, maxMembers: 2 })?.reason).toBe('too_many_members');
    expect(jsonShapeProblem(ok, { ...DEFAULT_JSON_LIMITS, maxBytes: ok.length - 1 })?.reason).toBe('payload_too_large');
    const c = parseEdgeConfig({ edgeId: 'e1', registry: { devices: [] }, cloud: { token: 't' }, decoders: { json: { maxMembers: 10 }, binary: { maxFrameBytes: 64 }, hj212: { maxCpPairs: 8 } } } as never);
    expect(c.decoders).toEqual({ json: { maxBytes: 65_536, maxDepth: 8, maxMembers: 10 }, binary: { maxFrameBytes: 64 }, hj212: { maxCpPairs: 8 } });
  });

  it('binary: a frame or hex text over decoders.binary.maxFrameBytes is refused before it is parsed', async () => {
    const { ingest, rejected } = setup({ json: DEFAULT_JSON_LIMITS, binary: { maxFrameBytes: 16 }, hj212: { maxCpPairs: 512 } });
    const n = registry.get('n')!;
    await ingest.mqtt(n, 'telemetry', Buffer.concat([Buffer.from([0x01, 87, 0xff, 0xa1, 12, 0x00, 0xfa, 0x01]), Buffer.alloc(100)]), T);
    await ingest.mqtt(n, 'telemetry', Buffer.from('01 '.repeat(200)), T);
    expect(await rejected('BINARY_TOO_LONG')).toBe(2);
  });

  it('HJ 212: CP pairs are counted before the CP is split (decoders.hj212.maxCpPairs)', async () => {
    const cp = Array.from({ length: 10 }, (_, i) => `a3400${i}-Rtd=1.0,a3400${i}-Flag=N`).join(';');
    expect(parseFrame(hj212(cp).toString()).ok).toBe(true);
    const r = parseFrame(hj212(cp).toString(), { maxCpPairs: 20 });
    expect(r.ok ? 'ok' : r.code).toBe('HJ212_TOO_MANY_ITEMS');
    const { ingest, rejected } = setup({ json: DEFAULT_JSON_LIMITS, binary: { maxFrameBytes: 1024 }, hj212: { maxCpPairs: 20 } });
    await ingest.mqtt(registry.get('h')!, 'telemetry', hj212(cp), T);
    expect(await rejected('HJ212_TOO_MANY_ITEMS')).toBe(1);
  });

  it('GB/T 26875.3: objects decoded are the fewer of the declared count and what the length carries', () => {
    // Type 1 (system state, 4 + 6 bytes each), declaring 255 objects but carrying one.
    const app = Uint8Array.of(1, 255, 1, 2, 3, 0, 0, 0, 12, 1, 1, 24);
    const r = parseAppData(app);
    expect(r.objects).toHaveLength(1);
    expect(r.refusals.map((x) => x.code)).toEqual(['GB26875_BAD_OBJECT_COUNT']);
  });
});
