// Bad-input warnings are rate-limited per reason, and the suppressed count is reported, not lost.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { RateLimitedWarnings } from '../src/log.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()));
      cb();
    },
  });
  return { lines, log: pino({ level: 'warn' }, stream) };
}

describe('RateLimitedWarnings', () => {
  it('logs at most N per reason per interval and then reports how many it folded', () => {
    let now = 0;
    const { lines, log } = capture();
    const w = new RateLimitedWarnings(log, 2, 1000, () => now);
    for (let i = 0; i < 5; i++) w.warn('BATCH_UNDECODABLE', { i }, 'bad batch');
    w.warn('EDGE_AUTH_INVALID', {}, 'bad token');
    expect(w.suppressed('BATCH_UNDECODABLE')).toBe(3);
    now = 1000;
    w.warn('BATCH_UNDECODABLE', { i: 5 }, 'bad batch');
    w.flush();
    expect(lines.map((l) => [l.reason, l.i, l.suppressed])).toEqual([
      ['BATCH_UNDECODABLE', 0, undefined],
      ['BATCH_UNDECODABLE', 1, undefined],
      ['EDGE_AUTH_INVALID', undefined, undefined],
      ['BATCH_UNDECODABLE', 5, 3],
    ]);
  });
});
