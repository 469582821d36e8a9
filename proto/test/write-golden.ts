// Regenerates proto/vectors/*.hex. Run only for a deliberate, compatible change of the contract
// (docs/protocol.md): npx tsx proto/test/write-golden.ts
import { writeFileSync } from 'node:fs';
import { encodeAck, encodeBatch } from '../src/index.ts';
import { goldenAck, goldenBatch, goldenBatchDrops, goldenBatchTags } from './golden-batch.ts';

const dir = new URL('../vectors/', import.meta.url);
writeFileSync(new URL('batch-v1.hex', dir), Buffer.from(encodeBatch(goldenBatch)).toString('hex') + '\n');
writeFileSync(new URL('batch-v1.1-tags.hex', dir), Buffer.from(encodeBatch(goldenBatchTags)).toString('hex') + '\n');
writeFileSync(new URL('batch-v1.1-drops.hex', dir), Buffer.from(encodeBatch(goldenBatchDrops)).toString('hex') + '\n');
writeFileSync(new URL('ack-v1.hex', dir), Buffer.from(encodeAck(goldenAck)).toString('hex') + '\n');
