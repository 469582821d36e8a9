// Measures bytes per reading of a 5,000-reading batch on the wire (protobuf + gzip) against the gzip'd
// InfluxDB line protocol of the same readings. Run: npx tsx proto/bench/batch-size.ts
import { gzipSync } from 'node:zlib';
import { encodeBatch, sampleEnvironmentBatch } from '../src/index.ts';
import { lineProtocolOf } from '../test/line-protocol-reference.ts';

const batch = sampleEnvironmentBatch(5000, 100);
const pb = encodeBatch(batch);
const pbGz = gzipSync(pb);
const lp = Buffer.from(lineProtocolOf(batch));
const lpGz = gzipSync(lp);
const n = batch.readings.length;
const f = (b: number) => (b / n).toFixed(2);
console.log(`readings: ${n} (9 metrics each, 100 devices)`);
console.log(`protobuf:             ${pb.length} B  = ${f(pb.length)} B/reading`);
console.log(`protobuf + gzip:      ${pbGz.length} B  = ${f(pbGz.length)} B/reading`);
console.log(`line protocol:        ${lp.length} B  = ${f(lp.length)} B/reading`);
console.log(`line protocol + gzip: ${lpGz.length} B  = ${f(lpGz.length)} B/reading`);
console.log(`ratio (pb+gzip / lp+gzip): ${(pbGz.length / lpGz.length).toFixed(3)}`);
