// Small pure parts: backoff, MQTT frame meter, event identity, rate-limited warnings,
// the JSON decoder.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backoffDelay } from '../src/outputs/uplink/backoff.ts';
import { FrameMeter } from '../src/inputs/mqtt-broker/frame-guard.ts';
import { eventId, priorityOf } from '../src/processors/event-identity.ts';
import { rateLimitedWarn } from '../src/log.ts';
import { decodeEvent, decodeTelemetry } from '../src/decoders/json/json.ts';
import type { Logger } from 'pino';

describe('backoffDelay', () => {
  it('stays within [0, min(max, initial * factor^n)]', () => {
    fc.assert(
      fc.property(fc.nat(40), fc.double({ min: 0, max: 0.9999999, noNaN: true }), (n, rnd) => {
        const d = backoffDelay(n, { initialDelayMs: 100, maxDelayMs: 5000, factor: 2 }, () => rnd);
        return d >= 0 && d <= Math.min(5000, 100 * 2 ** n);
      }),
    );
  });
});

function frame(bodyLength: number): Buffer {
  const len: number[] = [];
  let x = bodyLength;
  do {
    let b = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) b |= 0x80;
    len.push(b);
  } while (x > 0);
  return Buffer.concat([Buffer.from([0x30, ...len]), Buffer.alloc(bodyLength, 7)]);
}

describe('FrameMeter', () => {
  it('follows packet boundaries across any chunking and flags the first packet over the limit', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(400), { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1 }), (sizes, cuts) => {
        const max = 256;
        const frames = sizes.map(frame);
        const stream = Buffer.concat(frames);
        const firstOver = frames.find((f) => f.length > max)?.length ?? 0;
        const m = new FrameMeter(max);
        let seen = 0;
        for (let i = 0, c = 0; i < stream.length && seen === 0; c++) {
          const n = cuts[c % cuts.length]!;
          seen = m.feed(stream.subarray(i, i + n));
          i += n;
        }
        return seen === firstOver;
      }),
    );
  });
});

describe('event identity', () => {
  it('is stable for the same device, ts, type and attrs (in any key order)', () => {
    const a = eventId('d', 5, 'fire_alarm', { zone: 'B2', loop: '3' });
    expect(eventId('d', 5, 'fire_alarm', { loop: '3', zone: 'B2' })).toBe(a);
    expect(eventId('d', 6, 'fire_alarm', { zone: 'B2', loop: '3' })).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(eventId('d', undefined, 'x', {})).not.toBe(eventId('d', undefined, 'x', {}));
  });

  it('ranks by the configured lists', () => {
    const lists = { alarmTypes: ['fire_alarm'], warningTypes: ['fault'] };
    expect([priorityOf('fire_alarm', lists), priorityOf('fault', lists), priorityOf('door_open', lists)]).toEqual(['alarm', 'warning', 'routine']);
  });
});

describe('rateLimitedWarn', () => {
  it('prints at most N lines per reason per interval, then reports the suppressed count', () => {
    const lines: Record<string, unknown>[] = [];
    const log = { warn: (o: Record<string, unknown>) => lines.push(o) } as unknown as Logger;
    let now = 0;
    const warn = rateLimitedWarn(log, { linesPerInterval: 2, intervalMs: 1000, now: () => now });
    for (let i = 0; i < 5; i++) warn('a', {}, 'm');
    warn('b', {}, 'm');
    expect(lines.map((l) => l.reason)).toEqual(['a', 'a', 'b']);
    now = 1000;
    warn('a', {}, 'm');
    expect(lines[3]).toMatchObject({ reason: 'a', suppressed: 3 });
  });
});

describe('generic JSON decoder', () => {
  const enc = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
  it('refuses whole messages with a reason', () => {
    expect(decodeTelemetry(enc('nope'))).toMatchObject({ ok: false, reason: 'malformed_json' });
    expect(decodeTelemetry(enc([1]))).toMatchObject({ ok: false, reason: 'not_an_object' });
    expect(decodeTelemetry(enc({ ts: 'yesterday', metrics: { a: 1 } }))).toMatchObject({ ok: false, reason: 'bad_ts' });
    expect(decodeTelemetry(enc({ metrics: 3 }))).toMatchObject({ ok: false, reason: 'no_metrics' });
    expect(decodeEvent(enc({ type: 'has space' }))).toMatchObject({ ok: false, reason: 'bad_event_type' });
  });

  it('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        decodeTelemetry(bytes);
        decodeEvent(bytes);
        return true;
      }),
    );
  });
});
