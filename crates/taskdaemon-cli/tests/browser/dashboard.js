// The dashboard in headless Chromium, driven by Playwright (playwright-core
// on NODE_PATH, Debian's chromium). Run by tests/browser.rs, which starts
// the daemon with the web server and passes:
//   TD_BASE (http://127.0.0.1:PORT), TD_TOKEN, TD_BIN (the taskdaemon binary),
//   TD_WORKSPACE, TD_CHROMIUM (the browser), TD_SHOTS (screenshot directory).
// Prints one JSON line with what it did; exits non-zero on any failure.
'use strict';

const { chromium } = require('playwright-core');
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('TD_BASE');
const TOKEN = env('TD_TOKEN');
const WAIT = { timeout: 30_000 };

function cli(...args) {
  const out = execFileSync(env('TD_BIN'), ['--workspace', env('TD_WORKSPACE'), ...args], { encoding: 'utf8' });
  return out.trim().split('\n').pop().trim();
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: env('TD_CHROMIUM'),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const result = {};
  try {
    // 1. Log in with the token.
    const owner = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await owner.newPage();
    page.on('dialog', (dialog) => dialog.accept());
    await page.goto(`${BASE}/login?token=${TOKEN}`);
    check(new URL(page.url()).pathname === '/', `login should land on /, not ${page.url()}`);
    await page.waitForSelector('#live.on', WAIT);
    check((await page.textContent('#role')) === 'owner', 'the token is the owner');
    // A figure, not a check: first load until the stream is live.
    result.first_load_ms = await page.evaluate(() => Math.round(performance.now()));

    // 2. Tasks spawned from the CLI appear and change status live, no reload.
    await page.goto(`${BASE}/#/tasks`);
    await page.waitForSelector('#task-list', WAIT);
    await page.evaluate(() => { window.__notReloaded = true; });
    const go = path.join(env('TD_WORKSPACE'), 'go-step-two');
    const running = cli('spawn', '--', 'sh', '-c',
      `echo step-one; while [ ! -e '${go}' ]; do sleep 0.05; done; echo step-two; sleep 300`);
    const fail = path.join(env('TD_WORKSPACE'), 'go-fail');
    const failing = cli('spawn', '--', 'sh', '-c', `while [ ! -e '${fail}' ]; do sleep 0.05; done; exit 3`);
    result.running = running;
    result.failing = failing;
    await page.waitForSelector(`#task-list tr[data-id="${running}"] .status[data-status="running"]`, WAIT);
    await page.waitForSelector(`#task-list tr[data-id="${failing}"] .status[data-status="running"]`, WAIT);
    // It fails only once the page has shown it running.
    require('node:fs').writeFileSync(fail, '');
    await page.waitForSelector(`#task-list tr[data-id="${failing}"] .status[data-status="failed"]`, WAIT);
    check(await page.evaluate(() => window.__notReloaded === true), 'the page was reloaded');

    // The overview's resources come live from the stream's samples topic.
    await page.click('nav a[href="#/overview"]');
    await page.waitForSelector(`#resources tr[data-sample="${running}"]`, WAIT);

    // 3. Follow its log, then kill it from the page (with confirmation).
    // The log is read once, then streams over the WebSocket: no polling.
    const logReads = [];
    page.on('request', (request) => {
      if (request.url().includes(`/tasks/${running}/logs`)) logReads.push(request.url());
    });
    await page.click(`#resources tr[data-sample="${running}"] a`);
    await page.waitForFunction(() => document.getElementById('log')?.textContent.includes('step-one'), null, WAIT);
    require('node:fs').writeFileSync(go, '');
    await page.waitForFunction(() => document.getElementById('log')?.textContent.includes('step-two'), null, WAIT);
    const shown = await page.textContent('#log');
    check(shown === 'step-one\nstep-two\n', `the log shows each line once: ${JSON.stringify(shown)}`);
    check(logReads.length === 1, `the log was read ${logReads.length} times: ${logReads.join(' ')}`);
    check(await page.isEnabled('#kill'), 'kill is enabled for the owner');
    await page.click('#kill');
    await page.waitForSelector('#detail-status[data-status="cancelled"]', WAIT);
    result.killed = running;

    // Keyboard: the views are links reachable with Tab and Enter.
    await page.focus('nav a[href="#/queues"]');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => location.hash === '#/queues', null, WAIT);

    // History: completion rates and durations from the aggregates, and the report.
    await page.goto(`${BASE}/#/history`);
    await page.waitForFunction(() => [...document.querySelectorAll('#aggregates td')].some((td) => td.textContent === 'process'), null, WAIT);
    const report = await page.evaluate(async () => (await fetch(document.getElementById('report-md').href)).text());
    check(report.startsWith('# taskdaemon report'), `the Markdown report: ${report.slice(0, 80)}`);
    await page.goto(`${BASE}/#/loops`);
    await page.waitForSelector('#loops table', WAIT);

    // Export of the filtered list.
    await page.goto(`${BASE}/#/tasks`);
    await page.selectOption('select[name="status"]', 'failed');
    await page.click('#filters button[type="submit"]');
    await page.waitForSelector(`#task-list tr[data-id="${failing}"]`, WAIT);
    const [download] = await Promise.all([page.waitForEvent('download', WAIT), page.click('#export-csv')]);
    const csv = require('node:fs').readFileSync(await download.path(), 'utf8');
    check(csv.startsWith('id,kind,status') && csv.includes(`"${failing}"`) && !csv.includes(`"${running}"`),
      `the CSV holds the filtered list: ${csv}`);

    // 4. A share link: every action disabled, the API answers 403.
    const shareUrl = cli('share', '--expires', '1h');
    const shared = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const readOnly = await shared.newPage();
    await readOnly.goto(shareUrl);
    await readOnly.waitForSelector('#live.on', WAIT);
    check((await readOnly.textContent('#role')).startsWith('read-only'), 'the share link is read-only');
    const stillRunning = cli('spawn', '--', 'sleep', '300');
    await readOnly.goto(`${BASE}/#/task/${stillRunning}`);
    await readOnly.waitForSelector('#detail-status', WAIT);
    for (const button of ['#kill', '#restart', '#retry']) {
      check(await readOnly.isDisabled(button), `${button} is disabled for a share link`);
    }
    const status = await readOnly.evaluate(async (id) => (await fetch(`/api/v1/tasks/${id}/kill`, { method: 'POST' })).status, stillRunning);
    check(status === 403, `a share link's kill answers 403, not ${status}`);
    result.share_kill_status = status;
    result.still_running = stillRunning;

    // 5. A phone-sized viewport: nothing wider than the screen; a screenshot.
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const small = await phone.newPage();
    await small.goto(`${BASE}/login?token=${TOKEN}`);
    await small.goto(`${BASE}/#/tasks`);
    await small.waitForSelector(`#task-list tr[data-id="${running}"]`, WAIT);
    const width = await small.evaluate(() => document.documentElement.scrollWidth);
    check(width <= 390, `the page is ${width}px wide at a 390px viewport`);
    result.screenshot = path.join(env('TD_SHOTS'), 'dashboard-390.png');
    await small.screenshot({ path: result.screenshot, fullPage: true });

    // 6. Plans at 390px: the list and one plan's tree, nothing wider than the screen.
    const git = (...args) => execFileSync('git', ['-C', env('TD_WORKSPACE'), '-c', 'user.name=Test',
      '-c', 'user.email=test@example.com', ...args], { encoding: 'utf8' });
    git('init', '--quiet', '--initial-branch=main');
    git('commit', '--quiet', '--allow-empty', '-m', 'first');
    const plan = cli('new-plan', 'Add OAuth login');
    await small.goto(`${BASE}/#/plans`);
    await small.waitForSelector(`#plan-list tr[data-plan="${plan}"]`, WAIT);
    const listWidth = await small.evaluate(() => document.documentElement.scrollWidth);
    check(listWidth <= 390, `the Plans view is ${listWidth}px wide at a 390px viewport`);
    await small.click(`#plan-list tr[data-plan="${plan}"] a`);
    await small.waitForSelector('#plan-detail dl.fields', WAIT);
    check((await small.textContent('#plan-detail')).includes('Add OAuth login'), 'the plan page shows its goal');
    const planWidth = await small.evaluate(() => document.documentElement.scrollWidth);
    check(planWidth <= 390, `the plan page is ${planWidth}px wide at a 390px viewport`);
    result.plan = plan;
    result.plans_screenshot = path.join(env('TD_SHOTS'), 'plan-390.png');
    await small.screenshot({ path: result.plans_screenshot, fullPage: true });
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
}

main().catch((error) => {
  console.error(`dashboard test failed: ${error.stack || error}`);
  process.exit(1);
});
