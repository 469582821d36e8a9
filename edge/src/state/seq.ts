// The per-edge batch sequence. The cloud dedupes by (edgeId, seq), so a number must never be handed
// out twice, even across a crash. Numbers are reserved in blocks: the block's end is made durable
// (write, fsync, rename, fsync dir) before any number in it is used, so a restart skips ahead to the
// next block instead of reusing. Gaps are fine; reuse is not.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EdgeError } from '../errors.ts';

const FILE = 'batch-seq.json';

export interface SeqAllocator {
  next(): number;
}

function persist(dir: string, reservedUpTo: number): void {
  const tmp = join(dir, `${FILE}.tmp`);
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify({ reservedUpTo }) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(dir, FILE));
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch (err) {
    throw new EdgeError('SEQ_STATE_UNWRITABLE', `${join(dir, FILE)}: ${(err as Error).message}`, { cause: err });
  }
}

function readReserved(dir: string): number {
  let text: string;
  try {
    text = readFileSync(join(dir, FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw new EdgeError('SEQ_STATE_UNREADABLE', `${join(dir, FILE)}: ${(err as Error).message}`, { cause: err });
  }
  let v: unknown;
  try {
    v = (JSON.parse(text) as { reservedUpTo?: unknown } | null)?.reservedUpTo;
  } catch {
    v = undefined;
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    // Guessing a number here could reuse seqs the cloud has seen: an operator must look.
    throw new EdgeError('SEQ_STATE_UNREADABLE', `${join(dir, FILE)}: reservedUpTo is not a non-negative integer`);
  }
  return v;
}

export function openSeq(dataDir: string, block: number): SeqAllocator {
  mkdirSync(dataDir, { recursive: true });
  let next = readReserved(dataDir) + 1;
  let limit = next - 1;
  return {
    next() {
      if (next > limit) {
        limit = next + block - 1;
        persist(dataDir, limit);
      }
      return next++;
    },
  };
}
