// Debian's headless Chromium through playwright-core (which never downloads a
// browser here), plus screenshots into artifacts/.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { BROWSER_TESTS_DIR } from './stack.js';

export const ARTIFACTS_DIR = path.join(BROWSER_TESTS_DIR, 'artifacts');

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Let the player start without a user gesture when a test drives it by script.
  '--autoplay-policy=no-user-gesture-required',
];

/** A fresh Chromium profile (its own user-data-dir), closed and removed by `close()`. */
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_BIN)`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vidseek-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
    locale: 'en-US',
  });
  const pageErrors = [];
  context.on('page', (page) => watchPage(page, pageErrors));
  for (const page of context.pages()) watchPage(page, pageErrors);
  return {
    context,
    pageErrors,
    async newPage() {
      const [existing] = context.pages();
      if (existing && existing.url() === 'about:blank') return existing;
      return context.newPage();
    },
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

function watchPage(page, pageErrors) {
  page.on('pageerror', (error) => pageErrors.push(`${page.url()}: ${error.message}`));
}

export async function screenshot(page, name, options = {}) {
  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const file = path.join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path: file, ...options });
  return file;
}
