// One error catalogue per package, each code used, docs/errors.md in step: the section "Every code" lists
// exactly each catalogue's codes (both ways), and each code of a catalogue occurs in its package's source
// outside the catalogue file (a code nobody produces is a promise the docs cannot keep).
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLOUD_ERRORS, REJECTION_REASONS } from '../cloud/src/errors.ts';
import { BINARY_ERRORS } from '../edge/src/decoders/binary/errors.ts';
import { GB26875_ERRORS } from '../edge/src/decoders/gb26875/errors.ts';
import { HJ212_ERRORS } from '../edge/src/decoders/hj212/errors.ts';
import { OPCUA_VALUE_REJECT } from '../edge/src/decoders/opcua/value.ts';
import { EDGE_ERRORS } from '../edge/src/errors.ts';
import { PROTO_ERROR_CODES } from '../proto/src/errors.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Catalogue {
  /** The file that declares the codes, as docs/errors.md links it. */
  file: string;
  codes: string[];
  /** Where the codes must be used (outside `file`); omitted when the catalogue file itself produces them. */
  usedIn?: string;
  /** Codes another package produces and this one answers with (the cloud's 413s for proto's limits). */
  passedOn?: readonly string[];
}

const CATALOGUES: Catalogue[] = [
  { file: 'edge/src/errors.ts', codes: Object.keys(EDGE_ERRORS), usedIn: 'edge/src' },
  { file: 'edge/src/decoders/hj212/errors.ts', codes: Object.keys(HJ212_ERRORS), usedIn: 'edge/src' },
  { file: 'edge/src/decoders/binary/errors.ts', codes: Object.keys(BINARY_ERRORS), usedIn: 'edge/src' },
  { file: 'edge/src/decoders/gb26875/errors.ts', codes: Object.keys(GB26875_ERRORS), usedIn: 'edge/src' },
  // value.ts is the catalogue and the code that produces its refusals.
  { file: 'edge/src/decoders/opcua/value.ts', codes: Object.values(OPCUA_VALUE_REJECT) },
  { file: 'proto/src/errors.ts', codes: [...PROTO_ERROR_CODES], usedIn: 'proto/src' },
  { file: 'cloud/src/errors.ts', codes: [...Object.keys(CLOUD_ERRORS), ...Object.keys(REJECTION_REASONS)], usedIn: 'cloud/src', passedOn: PROTO_ERROR_CODES },
];

const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
const section = doc.slice(doc.indexOf('## Every code'), doc.indexOf('\n## ', doc.indexOf('## Every code') + 1));

/** The codes docs/errors.md lists for a catalogue file (all of its lines that link that file). */
function documented(file: string): string[] {
  const lines = section.split('\n').filter((l) => l.startsWith('- ') && l.includes(`(../${file})`));
  return lines.flatMap((l) => [...l.slice(l.indexOf(': ', l.indexOf('(../'))).matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!)).filter((c) => c !== 'CLOUD_ERRORS' && c !== 'REJECTION_REASONS');
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts') || e.name.endsWith('.js')) out.push(p);
  }
  return out;
}

describe('error catalogues', () => {
  it('docs/errors.md has the section and a line for every catalogue', () => {
    expect(section.length).toBeGreaterThan(100);
    for (const c of CATALOGUES) expect(documented(c.file).length, c.file).toBeGreaterThan(0);
  });

  it.each(CATALOGUES)('docs/errors.md lists exactly the codes of $file', ({ file, codes }) => {
    expect(new Set(codes).size, `${file} declares a code twice`).toBe(codes.length);
    expect(documented(file).sort()).toEqual([...codes].sort());
  });

  it('no code is declared by two catalogues (cloud repeats proto\'s limit codes as HTTP errors)', () => {
    const owner = new Map<string, string>();
    const twice: string[] = [];
    for (const c of CATALOGUES) {
      for (const code of c.codes) {
        const o = owner.get(code);
        if (o !== undefined && !(o === 'proto/src/errors.ts' && c.file === 'cloud/src/errors.ts' && code.startsWith('BATCH_'))) twice.push(`${code}: ${o} and ${c.file}`);
        owner.set(code, c.file);
      }
    }
    expect(twice).toEqual([]);
  });

  it.each(CATALOGUES.filter((c) => c.usedIn))('every code of $file is used in $usedIn', ({ file, codes, usedIn, passedOn }) => {
    const text = sources(join(ROOT, usedIn!))
      .filter((p) => relative(ROOT, p) !== file)
      .map((p) => readFileSync(p, 'utf8'))
      .join('\n');
    expect(codes.filter((code) => !passedOn?.includes(code) && !new RegExp(`\\b${code}\\b`).test(text))).toEqual([]);
  });
});
