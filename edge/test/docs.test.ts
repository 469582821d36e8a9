// README.md must not drift from the error catalogue and the metrics.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EDGE_ERRORS } from '../src/errors.ts';
import { createEdgeMetrics } from '../src/metrics.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README.md', () => {
  it('lists every error code', () => {
    for (const code of Object.keys(EDGE_ERRORS)) expect(readme).toContain(`\`${code}\``);
  });
  it('lists every metric', async () => {
    const { registry } = createEdgeMetrics();
    for (const m of await registry.getMetricsAsJSON()) expect(readme).toContain(`\`${m.name}\``);
  });
});
