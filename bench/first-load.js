// Dashboard first load in headless Chromium, for bench/web.sh (run by the
// web bench with the daemon serving a workspace of 10,000 tasks). Each
// sample is a fresh browser context (empty cache, no cookie): log in with the
// token, then time from navigation start until the live stream is connected
// (#live.on) and until the task list shows its first page. Needs
// playwright-core on NODE_PATH (scripts/install-playwright.sh).
//   TD_BASE, TD_TOKEN, TD_CHROMIUM, [TD_SAMPLES=5]
// Prints one JSON line: {"live_ms":[...],"tasks_ms":[...]}.
'use strict';

const { chromium } = require('playwright-core');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const WAIT = { timeout: 60_000 };

async function main() {
  const browser = await chromium.launch({
    executablePath: env('TD_CHROMIUM'),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const samples = Number(process.env.TD_SAMPLES || 5);
  const result = { live_ms: [], tasks_ms: [] };
  try {
    for (let n = 0; n < samples; n++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      // The login URL sets the cookie and redirects to the overview.
      await page.goto(`${env('TD_BASE')}/login?token=${env('TD_TOKEN')}`);
      await page.waitForSelector('#live.on', WAIT);
      result.live_ms.push(await page.evaluate(() => performance.now()));
      // The task list as a fresh load of its own view.
      await page.goto(`${env('TD_BASE')}/#/tasks`);
      await page.reload();
      await page.waitForSelector('#task-list tbody tr', WAIT);
      result.tasks_ms.push(await page.evaluate(() => performance.now()));
      await context.close();
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
