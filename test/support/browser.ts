/**
 * A phone-sized headless Chromium for end-to-end tests of the web app: Debian's chromium driven by
 * playwright-core (no browser download), 390 × 844 at 2×, touch, mobile viewport.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  type Page,
} from 'playwright-core';

export const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
} as const;

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export const SCREENSHOT_DIR = join(process.cwd(), 'test-artifacts', 'screenshots');

export interface LaunchPhoneOptions {
  /** The chromium binary; default `CHROMIUM_PATH`, else Debian's /usr/bin/chromium. */
  executablePath?: string;
  /** Extra Chromium switches. */
  args?: string[];
}

export interface Phone {
  browser: Browser;
  /** A fresh browser profile (own IndexedDB, cookies, service workers) sized like a phone. */
  newContext(options?: BrowserContextOptions): Promise<BrowserContext>;
  /** A page in a fresh phone context; closing the context is the caller's, or `close()`'s. */
  newPage(options?: BrowserContextOptions): Promise<Page>;
  close(): Promise<void>;
}

export async function launchPhone(options: LaunchPhoneOptions = {}): Promise<Phone> {
  const executablePath = options.executablePath ?? process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
  if (!existsSync(executablePath))
    throw new Error(
      `Chromium is not installed at ${executablePath}: run ./scripts/setup (it installs Debian's chromium), ` +
        'or point CHROMIUM_PATH at a Chromium binary.',
    );
  const browser = await chromium.launch({
    executablePath,
    args: [...CHROMIUM_ARGS, ...(options.args ?? [])],
  });
  const newContext = (contextOptions: BrowserContextOptions = {}): Promise<BrowserContext> =>
    browser.newContext({ ...PHONE, ...contextOptions });
  return {
    browser,
    newContext,
    async newPage(contextOptions) {
      return (await newContext(contextOptions)).newPage();
    },
    close: () => browser.close(),
  };
}

/** Writes a full-page PNG to test-artifacts/screenshots/<name>.png and returns its path. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name.replace(/[^\w.-]+/g, '-')}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
