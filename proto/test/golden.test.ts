// Golden byte vectors pin the citysense.v1 wire format: a deployed edge sends exactly these bytes, and
// every future cloud must keep decoding them to the same readings.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeAck, decodeBatch, encodeAck, encodeBatch } from '../src/index.ts';
import { goldenAck, goldenBatch, goldenBatchDrops, goldenBatchTags } from './golden-batch.ts';

const vector = (name: string) => Buffer.from(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8').trim(), 'hex');

describe('golden vectors (citysense.v1)', () => {
  it('the encoder produces exactly the pinned batch bytes', () => {
    expect(Buffer.from(encodeBatch(goldenBatch)).toString('hex')).toBe(vector('batch-v1.hex').toString('hex'));
  });

  it('the pinned batch bytes decode to the same readings and events', () => {
    const back = decodeBatch(vector('batch-v1.hex'));
    expect(back.edgeId).toBe(goldenBatch.edgeId);
    expect(back.seq).toBe(goldenBatch.seq);
    expect(back.createdMs).toBe(goldenBatch.createdMs);
    const byKey = (r: { deviceId: string; ts: number }) => `${r.deviceId}@${r.ts}`;
    const sort = <T extends { deviceId: string; ts: number }>(a: T[]) => [...a].sort((x, y) => (byKey(x) < byKey(y) ? -1 : 1));
    expect(sort(back.readings)).toEqual(sort(goldenBatch.readings));
    expect(back.events).toEqual(goldenBatch.events);
  });

  it('v1.1: readings with tags of their own (fire-panel components) are pinned and round-trip', () => {
    expect(Buffer.from(encodeBatch(goldenBatchTags)).toString('hex')).toBe(vector('batch-v1.1-tags.hex').toString('hex'));
    const back = decodeBatch(vector('batch-v1.1-tags.hex'));
    const key = (r: { ts: number; tags?: Record<string, string> }) => `${r.tags?.component}@${r.ts}`;
    expect([...back.readings].sort((a, b) => (key(a) < key(b) ? -1 : 1))).toEqual([...goldenBatchTags.readings].sort((a, b) => (key(a) < key(b) ? -1 : 1)));
  });

  it('v1.1: the lane and the edge\'s drop reports are pinned and round-trip', () => {
    expect(Buffer.from(encodeBatch(goldenBatchDrops)).toString('hex')).toBe(vector('batch-v1.1-drops.hex').toString('hex'));
    expect(decodeBatch(vector('batch-v1.1-drops.hex'))).toEqual(goldenBatchDrops);
  });

  it('the pinned ack bytes round-trip', () => {
    expect(Buffer.from(encodeAck(goldenAck)).toString('hex')).toBe(vector('ack-v1.hex').toString('hex'));
    expect(decodeAck(vector('ack-v1.hex'))).toEqual(goldenAck);
  });

  it('bytes from a newer schema with unknown fields still decode (fields are only ever added)', () => {
    // Field 99, wire type 2 (length-delimited), 3 bytes: what a v1.x edge might add later.
    const extra = Buffer.concat([vector('batch-v1.hex'), Buffer.from([0x9a, 0x06, 0x03, 0x61, 0x62, 0x63])]);
    expect(decodeBatch(extra).readings).toHaveLength(goldenBatch.readings.length);
  });
});
