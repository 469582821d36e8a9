// Headless Chromium for the console's browser tests: Debian's `chromium` package (installed here with
// apt-get when missing and we are root; otherwise a clear error), driven by playwright-core through its
// executablePath (`npx playwright install` cannot download a browser on these machines). The flags keep
// Chromium off the network: without the background-networking ones it keeps trying Google's hosts.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

const log = (line: string) => process.stderr.write(`${line}\n`);

const CHROMIUM = process.env.CITYSENSE_CHROMIUM ?? '/usr/bin/chromium';

/** Makes sure Debian's chromium is there; installs it when we can (root with apt-get). */
function ensureChromium(): string {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const apt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status === 0;
  if (!root || !apt) {
    throw new Error(
      `Chromium is missing at ${CHROMIUM}. The console's browser tests use Debian's chromium package: run 'apt-get install -y chromium' as root ` +
        `(or set CITYSENSE_CHROMIUM to a Chromium binary). 'npx playwright install' does not work here.`,
    );
  }
  log('[e2e/console] installing Debian\'s chromium package (apt-get install -y chromium) ...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], { env, encoding: 'utf8', timeout: 600_000 });
  let r = install();
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { env, encoding: 'utf8', timeout: 300_000 });
    r = install();
  }
  if (r.status !== 0 || !existsSync(CHROMIUM)) {
    throw new Error(`could not install chromium with apt-get (exit ${r.status}): ${(r.stderr || r.stdout || '').slice(-2000)}`);
  }
  return CHROMIUM;
}

/**
 * Best effort: a CJK font, so Chinese text from devices (fire-panel descriptions, site names) shows as
 * text in the screenshots rather than boxes. Debian's chromium brings no CJK font; a person's own
 * browser has one. Never fails the run.
 */
function ensureCjkFont(): void {
  const has = spawnSync('sh', ['-c', 'fc-list :lang=zh family | head -1'], { encoding: 'utf8' });
  if (has.status === 0 && has.stdout.trim()) return;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root || spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status !== 0) return;
  log("[e2e/console] installing Debian's fonts-wqy-microhei (a CJK font for the screenshots) ...");
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'fonts-wqy-microhei'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) log(`[e2e/console] no CJK font (apt-get exit ${r.status}); Chinese text will show as boxes in the screenshots`);
}

export interface TestBrowser {
  browser: Browser;
  /** A fresh context (own sessionStorage) per operator. */
  context(): Promise<BrowserContext>;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<TestBrowser> {
  const executablePath = ensureChromium();
  ensureCjkFont();
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // No --user-data-dir: playwright refuses it for launch() and gives every launch a fresh, empty
      // profile folder of its own (removed at close).
    ],
    timeout: 60_000,
  });
  return {
    browser,
    context: () => browser.newContext({ viewport: { width: 1360, height: 860 }, serviceWorkers: 'block' }),
    async close() {
      await browser.close().catch(() => undefined);
    },
  };
}
