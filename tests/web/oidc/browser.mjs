// Test-only: drive syncd's login in the machine's headless Chromium (playwright-core, never a
// downloaded browser). Reads {chromium, flags, url, email, screenshot} as JSON on stdin, prints
// what it saw as one JSON line on stdout; tests/web/test_login.py checks it.
import { chromium } from 'playwright-core';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { chromium: executablePath, flags, url, email, screenshot } = JSON.parse(
  Buffer.concat(chunks).toString('utf8'),
);

const browser = await chromium.launch({ executablePath, args: flags, headless: true });
const steps = { csp_violations: [] };
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) steps.csp_violations.push(message.text());
  });

  // the dashboard sends the browser to /login, then to the provider's login form
  await page.goto(`${url}/`);
  await page.waitForSelector('#email');
  steps.redirected_to_provider = !page.url().startsWith(url);
  await page.fill('#email', email);
  await Promise.all([page.waitForURL(`${url}/`), page.click('#submit')]);

  // the dashboard, with who is logged in and the logout button
  steps.dashboard_url = page.url();
  steps.dashboard_title = await page.title();
  steps.dashboard_session = (await page.textContent('form.session')).replace(/\s+/g, ' ').trim();
  await page.screenshot({ path: screenshot, fullPage: false });

  // logout: ours, then the provider's confirmation, then back to /logged-out
  await Promise.all([page.waitForSelector('#confirm-logout'), page.click('form.session button')]);
  await Promise.all([page.waitForURL(`${url}/logged-out**`), page.click('#confirm-logout')]);
  steps.after_logout_url = page.url();
  steps.after_logout_text = (await page.textContent('main')).replace(/\s+/g, ' ').trim();

  // logged out for real: the dashboard asks the provider to log in again
  await page.goto(`${url}/`);
  await page.waitForSelector('#email');
  steps.dashboard_after_logout_url = page.url();
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(steps)}\n`);
