// What the login page may know before anyone logs in, and the documentation it links to:
//   GET /console/info.json   { demo: boolean, docs: "/docs/" | null }
//   GET /docs/               the list of the project's documentation pages (HTML, links only)
//   GET /docs/{page}.md      one page, as text (the Markdown source)
// `demo` is operators.demoUsers: only then do the demo accounts exist, and their passwords are
// published (contracts.md), so the login page may show them; a real deployment shows nothing of the
// kind. The pages are the repository's docs/*.md and README.md, read once at start (only files found
// then are served: a request path is looked up in a map, never joined onto a folder).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import type { CloudConfig } from '../config/schema.ts';
import { CloudError } from '../errors.ts';
import { CONTENT_SECURITY_POLICY } from './plugin.ts';

export const DOCS_DIR = resolve(import.meta.dirname, '..', '..', '..', 'docs');

function loadDocs(dir: string): Map<string, Buffer> {
  const pages = new Map<string, Buffer>();
  if (!existsSync(dir)) return pages;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.md')).sort()) pages.set(f, readFileSync(join(dir, f)));
  const readme = join(dir, '..', 'README.md');
  if (existsSync(readme)) pages.set('README.md', readFileSync(readme));
  return pages;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export const consoleInfoPlugin: FastifyPluginAsync<{ config: CloudConfig; docsDir?: string }> = async (app, opts) => {
  if (!opts.config.console.enabled) return;
  const pages = loadDocs(opts.docsDir ?? DOCS_DIR);
  const headers = { 'content-security-policy': CONTENT_SECURITY_POLICY, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-cache' };

  app.get('/console/info.json', async (_req, reply) => {
    reply.headers(headers);
    return { demo: opts.config.operators.demoUsers, docs: pages.size ? '/docs/' : null };
  });

  if (!pages.size) return;
  const first = (name: string) => /^#\s+(.+)$/m.exec(pages.get(name)!.toString('utf8'))?.[1] ?? name;
  const index = Buffer.from(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>citysense documentation</title></head><body>` +
      `<h1>citysense documentation</h1><ul>${[...pages.keys()].map((n) => `<li><a href="/docs/${encodeURIComponent(n)}">${escapeHtml(first(n))}</a> (${escapeHtml(n)})</li>`).join('')}</ul></body></html>`,
  );
  app.get('/docs/', async (_req, reply) => reply.headers(headers).type('text/html; charset=utf-8').send(index));
  app.get('/docs/:page', async (req, reply) => {
    const name = (req.params as { page: string }).page;
    const body = pages.get(name);
    if (!body) throw new CloudError('NOT_FOUND', `no documentation page ${name.slice(0, 100)}`);
    return reply.headers(headers).type('text/plain; charset=utf-8').send(body);
  });
};
