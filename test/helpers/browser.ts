// A real headless browser for tests that need one: Debian's Chromium (the `chromium` system
// tool, see test/system-deps.ts), driven through playwright-core. A test opens it with
// withBrowser, shows it an HTML string as a mail client would (images load), and clicks links
// as a reader would, through redirects, to where they land. Its network is loopback only.
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM_BINARY, CHROMIUM_LOOPBACK_ONLY } from '../system-deps.ts';

/** Runs `fn` with a fresh headless Chromium, closed afterwards whatever happens. */
export async function withBrowser<T>(fn: (browser: Browser) => Promise<T>): Promise<T> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_BINARY,
    // Tests run as root, where Chromium's sandbox refuses to start: this adds --no-sandbox.
    chromiumSandbox: false,
    // playwright-core's own flags turn off background networking, updates and the like; this
    // keeps what Chromium still does on its own to loopback.
    args: [CHROMIUM_LOOPBACK_ONLY],
  });
  try {
    return await fn(browser);
  } finally {
    await browser.close();
  }
}

/** A desktop Chrome's user agent: headless Chromium names itself HeadlessChrome, which trackers count as a machine. */
export const DESKTOP_CHROME_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';

/** A new page showing `html`, once it and its images have loaded; `userAgent` as a reader's browser would send it. */
export async function openHtml(browser: Browser, html: string, options: { userAgent?: string } = {}): Promise<Page> {
  const page = await browser.newPage(options.userAgent ? { userAgent: options.userAgent } : {});
  await page.setContent(html, { waitUntil: 'load' });
  return page;
}

/** Clicks the link `selector` finds and returns the URL it lands on, after any redirects, once loaded. */
export async function clickLink(page: Page, selector: string): Promise<string> {
  const before = page.url();
  await Promise.all([
    page.waitForURL((url) => url.href !== before, { waitUntil: 'load' }),
    page.click(selector),
  ]);
  return page.url();
}
