// Turns schema issues into lines an installer can act on: the path of the mistake
// (`registry.devices[3].family`), the line in the file when there is one, and what is wrong.
import type { z } from 'zod';
import { isMap, isNode, isSeq, type Document, type LineCounter } from 'yaml';

export interface Source {
  /** Shown before each line, e.g. the file name. */
  name: string;
  doc?: Document;
  lines?: LineCounter;
  /** Paths whose values came from elsewhere (an env var), to name that origin. */
  origins?: Map<string, string>;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out || '(root)';
}

function lineOf(src: Source, path: readonly PropertyKey[], key?: string): number | undefined {
  if (!src.doc || !src.lines) return undefined;
  let node: unknown = src.doc.getIn(path as unknown[], true);
  if (node === undefined && path.length === 0) node = src.doc.contents;
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((it) => isNode(it.key) && (it.key as { value?: unknown }).value === key);
    node = pair?.key;
  }
  if (!isNode(node) && !isSeq(node)) return undefined;
  const offset = (node as { range?: [number, number, number] }).range?.[0];
  return offset === undefined ? undefined : src.lines.linePos(offset).line;
}

export function formatIssues(issues: readonly z.core.$ZodIssue[], src: Source): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        const line = lineOf(src, issue.path, key);
        out.push(`${src.name}${line ? `:${line}` : ''}: ${formatPath(path)}: unknown key`);
      }
      continue;
    }
    const p = formatPath(issue.path);
    const line = lineOf(src, issue.path);
    const origin = src.origins?.get(p);
    out.push(`${src.name}${line ? `:${line}` : ''}: ${p}: ${issue.message}${origin ? ` (from ${origin})` : ''}`);
  }
  return out;
}
