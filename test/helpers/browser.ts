import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core (issue 17). CI installs it (.ci/run); elsewhere the
 * browser suites are skipped with one line saying so.
 */
export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
let said = false;
export function sayIfSkipped(): void {
  if (!hasChromium && process.env['AUTHSOME_TEST_BROWSER_REQUIRED'] === '1')
    throw new Error(
      `${CHROMIUM} is missing, and AUTHSOME_TEST_BROWSER_REQUIRED=1 (CI) says the browser tests must run`,
    );
  if (hasChromium || said) return;
  said = true;
  console.warn(`dashboard browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh profile (its own --user-data-dir) each time; `hostRules` maps test names to 127.0.0.1. */
export async function launchChromium(
  o: { hostRules?: string[]; width?: number; height?: number } = {},
): Promise<Browser> {
  const dir = mkdtempSync(join(tmpdir(), 'authsome-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      ...CHROMIUM_ARGS,
      ...(o.hostRules?.length ? [`--host-resolver-rules=${o.hostRules.join(', ')}`] : []),
    ],
    viewport: { width: o.width ?? 1280, height: o.height ?? 800 },
  });
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
