// The README's error tables must list exactly the catalogue's codes.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLOUD_ERRORS, PROTO_DECODE_CODES, REJECTION_REASONS } from '../src/errors.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('## Error codes'), readme.indexOf('## Metrics'));

describe('error catalogue', () => {
  it('documents every HTTP error with its status', () => {
    for (const [code, spec] of Object.entries(CLOUD_ERRORS)) {
      expect(section, code).toMatch(new RegExp(`\\| \`${code}\` \\| ${spec.status}`));
    }
    const listed = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual(Object.keys(CLOUD_ERRORS).sort());
  });

  it('documents every decode and rejection code', () => {
    for (const code of [...PROTO_DECODE_CODES, ...Object.keys(REJECTION_REASONS)]) expect(section, code).toContain(`\`${code}\``);
  });

  it('gives every error a sentence an operator can act on', () => {
    for (const spec of Object.values(CLOUD_ERRORS)) expect(spec.message).toMatch(/^[A-Z].{10,}\.$/);
  });
});
