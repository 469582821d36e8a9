// The console's static files: cloud/console/ (plain ES modules, CSS, the HTML shell) and uPlot's
// distribution files from node_modules, read once when the app is built and served from memory with a
// strong ETag. Only files found at start-up can be served: a request path is looked up in the map, never
// joined onto a folder, so no path can reach outside it.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  /** Cache-Control value. */
  cache: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** The console's own files change with a deployment and carry no hash in their names: revalidate each time (a 304 costs a header). */
const REVALIDATE = 'no-cache';
/** Vendored library files change only with the package version, which is in their ETag. */
const VENDOR = 'public, max-age=86400';

export const CONSOLE_DIR = resolve(import.meta.dirname, '..', '..', 'console');

function asset(body: Buffer, file: string, cache: string): Asset {
  const type = TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
  return { body, type, cache, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** URL path (`/console/js/main.js`, `/console/vendor/uplot.min.js`) → asset. The HTML shell is under `/`. */
export function loadAssets(dir = CONSOLE_DIR): Map<string, Asset> {
  const map = new Map<string, Asset>();
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`console files not found at ${dir}`);
  for (const file of walk(dir)) {
    const rel = relative(dir, file).split(sep).join('/');
    if (!(extname(file).toLowerCase() in TYPES)) continue;
    map.set(rel === 'index.html' ? '/' : `/console/${rel}`, asset(readFileSync(file), file, REVALIDATE));
  }
  // uPlot (MIT): the minified browser build (a global `uPlot`) and its stylesheet, bundled with the cloud.
  const require = createRequire(import.meta.url);
  const uplotDir = dirname(require.resolve('uplot/package.json'));
  const version = (JSON.parse(readFileSync(join(uplotDir, 'package.json'), 'utf8')) as { version: string }).version;
  for (const [name, file] of [
    ['uplot.min.js', 'dist/uPlot.iife.min.js'],
    ['uplot.min.css', 'dist/uPlot.min.css'],
  ] as const) {
    const a = asset(readFileSync(join(uplotDir, file)), file, VENDOR);
    map.set(`/console/vendor/${name}`, { ...a, etag: `"uplot-${version}-${a.etag.slice(1, 13)}"` });
  }
  if (!map.has('/')) throw new Error(`console: ${join(dir, 'index.html')} is missing`);
  return map;
}
