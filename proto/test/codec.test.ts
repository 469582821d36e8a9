import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch, type Batch } from '../src/index.ts';

describe('batch codec', () => {
  it('round-trips numbers exactly, whether they travel as decimals or doubles', () => {
    const values = { a: 35.2, b: 61, c: -0.001, d: Math.PI, e: 1e300, f: -7, g: 2147483647, h: 2147483648.5, i: -0 };
    const b: Batch = { edgeId: 'e', seq: 1, createdMs: 1, readings: [{ deviceId: 'd', family: 'nbiot', ts: 5, values }], events: [] };
    const back = decodeBatch(encodeBatch(b)).readings[0]!.values;
    for (const [k, v] of Object.entries(values)) expect(Object.is(back[k], v), `${k}: ${back[k]} vs ${v}`).toBe(true);
  });
});
