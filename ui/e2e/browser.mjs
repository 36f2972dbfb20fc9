// Debian's Chromium driven by playwright-core (Playwright's own browser download cannot work here).
// Flags from the machine notes: no sandbox (root in a container), no GPU, and no background networking,
// component updates or sync (the machine's closed network refuses those connections).
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

export async function launch() {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (scripts/install-system-tools.sh installs it)`);
  // playwright-core starts Chromium with a fresh temporary --user-data-dir of its own and removes it at close.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}
