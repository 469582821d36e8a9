// Docs that stay true: every relative link in the repository's Markdown (README.md, docs/**, the package
// READMEs) must name a file or folder that exists inside the repository. A link that leaves the
// repository (../shared/..., an absolute path) fails too: a reader of a clone does not have it. Web links
// (http:, https:, mailto:) and anchors within a page are not checked; an anchor on a file link is dropped.
// Fenced code blocks and inline code are not links.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SKIP_DIRS = new Set(['node_modules', 'testdata', 'vectors']);

/** Every .md file of the repository outside node_modules and hidden folders. */
function markdownFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.') || SKIP_DIRS.has(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...markdownFiles(p));
    else if (e.isFile() && e.name.endsWith('.md')) out.push(p);
  }
  return out;
}

/** The link targets of a Markdown text with their line numbers: inline, reference definitions, href/src. */
export function linkTargets(md: string): { line: number; target: string }[] {
  // Blank out fenced code blocks and inline code spans, keeping the line breaks for line numbers.
  const text = md
    .replace(/^(\s*)(`{3,}|~{3,})[^\n]*\n[\s\S]*?^\s*\2[^\n]*$/gm, (m) => m.replace(/[^\n]/g, ' '))
    .replace(/(`+)[^`\n][\s\S]*?\1/g, (m) => m.replace(/[^\n]/g, ' '));
  const out: { line: number; target: string }[] = [];
  const lineAt = (i: number) => text.slice(0, i).split('\n').length;
  for (const m of text.matchAll(/\]\(\s*<?([^()\s>]+(?:\([^()\s]*\)[^()\s>]*)*)>?(?:\s+["'][^"']*["'])?\s*\)/g)) out.push({ line: lineAt(m.index), target: m[1]! });
  for (const m of text.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)) out.push({ line: lineAt(m.index), target: m[1]! });
  for (const m of text.matchAll(/\b(?:href|src)\s*=\s*["']([^"']+)["']/g)) out.push({ line: lineAt(m.index), target: m[1]! });
  return out;
}

/** Why a link target does not resolve inside the repository, or undefined when it does (or is not checked). */
export function brokenReason(file: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
    return /^(https?|mailto):/i.test(target) ? undefined : 'not a relative link (scheme other than http, https, mailto)';
  }
  if (target.startsWith('#')) return undefined;
  if (target.startsWith('//')) return 'protocol-relative link';
  const path = decodeURIComponent(target.replace(/[?#].*$/, ''));
  if (path === '') return undefined;
  if (isAbsolute(path)) return 'absolute path: links must be relative to the file';
  const abs = resolve(dirname(file), path);
  const rel = relative(ROOT, abs);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return 'leaves the repository';
  if (!existsSync(abs)) return 'no such file or folder';
  return undefined;
}

describe('relative links in the Markdown docs', () => {
  const files = markdownFiles(ROOT);

  it('finds the docs to check', () => {
    const rel = files.map((f) => relative(ROOT, f));
    for (const f of ['README.md', 'docs/architecture.md', 'docs/errors.md', 'edge/README.md', 'cloud/README.md']) expect(rel).toContain(f);
    expect(files.reduce((n, f) => n + linkTargets(readFileSync(f, 'utf8')).length, 0)).toBeGreaterThan(100);
  });

  it('every relative link resolves to a file or folder inside the repository', () => {
    const broken: string[] = [];
    for (const f of files) {
      for (const { line, target } of linkTargets(readFileSync(f, 'utf8'))) {
        const why = brokenReason(f, target);
        if (why) broken.push(`${relative(ROOT, f)}:${line}: ${target} (${why})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('the checker itself tells good links from bad ones', () => {
    const doc = join(ROOT, 'docs', 'architecture.md');
    const md = [
      'See [arch](architecture.md#the-edge), [ok](../README.md), [web](https://example.com/x), [top](#top).',
      '[gone](missing.md) [out](../../shared/design.md) [abs](/etc/passwd)',
      '`[code](not-a-link.md)`',
      '```',
      '[fenced](also-not-a-link.md)',
      '```',
      '[ref]: ../edge/README.md',
    ].join('\n');
    const got = linkTargets(md).map(({ line, target }) => ({ line, target, why: brokenReason(doc, target) }));
    expect(got).toEqual([
      { line: 1, target: 'architecture.md#the-edge', why: undefined },
      { line: 1, target: '../README.md', why: undefined },
      { line: 1, target: 'https://example.com/x', why: undefined },
      { line: 1, target: '#top', why: undefined },
      { line: 2, target: 'missing.md', why: 'no such file or folder' },
      { line: 2, target: '../../shared/design.md', why: 'leaves the repository' },
      { line: 2, target: '/etc/passwd', why: 'absolute path: links must be relative to the file' },
      { line: 7, target: '../edge/README.md', why: undefined },
    ]);
  });
});
