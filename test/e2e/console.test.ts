// The web console at /ui (PRODUCT.md §12; issue 12, items 1 and 6) in a real browser: playwright-core
// drives Debian's chromium against the real server. It signs in with a token, sees an application
// appear live after a registration and a push (no reload), syncs, rolls back and sees the served
// body change, checks that a reader's token gets disabled buttons and that the page is usable at
// 360 px, and writes screenshots of each main screen under test/screenshots/ (git-ignored). The
// console's headers (CSP, no framing, hashed assets cached, index not) are checked over plain HTTP.
// Without chromium the suite is skipped with the reason printed; under CI=true it fails instead.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser, type Page } from 'playwright-core';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { luaManifest } from './fixtures.js';
import { defaultConsoleDir } from '../../src/ui/console.js';

const SHOTS = join(process.cwd(), 'test', 'screenshots');
const LONG = 120_000;

function findChromium(): string | null {
  const env = process.env.CHROMIUM_PATH;
  if (env && existsSync(env)) return env;
  const r = spawnSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' });
  const p = r.stdout.trim().split('\n')[0];
  return p ? p : null;
}

function skipReason(): string | false {
  if (findChromium()) return false;
  if (process.env.CI === 'true') throw new Error('CI=true but no chromium (apt-get install chromium, or set CHROMIUM_PATH): the console browser test must run in CI');
  const reason = 'skipped: no chromium on PATH (apt-get install chromium, or set CHROMIUM_PATH)';
  console.log(`console.test.ts: ${reason}`);
  return reason;
}

describe('web console in a browser', { skip: skipReason() }, () => {
  let h: Harness;
  let repo: TestRepo;
  let browser: Browser;
  let page: Page;

  before(async () => {
    // npm test builds first; a test run on its own builds the console when dist/ lacks it.
    if (!defaultConsoleDir()) execFileSync(process.execPath, ['scripts/build-console.mjs'], { stdio: 'inherit' });
    mkdirSync(SHOTS, { recursive: true });
    h = await startHarness({ pollIntervalMs: 300 });
    repo = await TestRepo.create({ 'zerverless.yaml': luaManifest('one') });
    browser = await chromium.launch({ executablePath: findChromium() as string, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.setDefaultTimeout(LONG);
  });
  after(async () => {
    await browser?.close();
    await h?.close();
    await repo?.remove();
  });

  it('serves the console with a strict policy: hashed assets cached a year, the index never', async () => {
    const index = await h.get('/ui', { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    assert.equal(index.headers.get('x-frame-options'), 'DENY');
    const csp = index.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    const html = await index.text();
    assert.doesNotMatch(html, /<script>|<script [^>]*>[^<]/, 'no inline script');
    const assets = [...html.matchAll(/\/ui\/assets\/([\w.-]+)/g)].map((m) => m[1] as string);
    assert.equal(assets.length, 2, html);
    let raw = 0;
    let gz = 0;
    for (const name of assets) {
      assert.match(name, /-[A-Z0-9]{8}\.(js|css)$/);
      const a = await h.get(`/ui/assets/${name}`);
      assert.equal(a.status, 200);
      assert.equal(a.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.equal(a.headers.get('x-content-type-options'), 'nosniff');
      const body = Buffer.from(await a.arrayBuffer());
      raw += body.length;
      gz += gzipSync(body, { level: 9 }).length;
    }
    raw += Buffer.byteLength(html);
    gz += gzipSync(html, { level: 9 }).length;
    console.log(`console: shipped ${raw} bytes raw, ${gz} bytes gzip (index + script + stylesheet)`);
    assert.equal((await h.get('/ui/assets/nope.js')).status, 404);
    assert.equal((await h.get('/ui/other')).status, 404);
  });

  it('signs in, sees an application appear and its new commit live, syncs, rolls back', async () => {
    await page.goto(`${h.url}/ui`);
    // Page code is passed as strings: the test is type-checked without the DOM library.
    await page.locator('#token').waitFor();
    const timing = await page.evaluate(`(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
      return { domContentLoaded: nav?.domContentLoadedEventEnd ?? null, load: nav?.loadEventEnd ?? null, firstContentfulPaint: fcp?.startTime ?? null };
    })()`);
    console.log(`console: time to first render ${JSON.stringify(timing)} ms`);

    // Keyboard: the token field has focus, Tab reaches the sign-in button, Enter submits.
    assert.equal(await page.evaluate('document.activeElement?.id'), 'token');
    await page.screenshot({ path: join(SHOTS, 'sign-in.png') });
    await page.keyboard.type('not-a-token');
    await page.keyboard.press('Enter');
    await page.locator('#signin-error').filter({ hasText: /\S/ }).waitFor();
    await page.locator('#token').fill(h.token);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate('document.activeElement?.textContent'), 'Sign in');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Applications' }).waitFor();
    assert.equal(await page.evaluate(`sessionStorage.getItem('zerverless.token')`), h.token);

    // Registered behind the console's back: it appears without a reload.
    const reg = await h.api('POST', '/', { name: 'web', namespace: 'shop', source: { repoURL: repo.url, branch: 'main' } });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    const card = page.locator('li[data-app="shop/web"]');
    await card.locator('.badge', { hasText: 'synced' }).waitFor();
    const first = (await h.waitFor('web', (s) => s.status === 'synced', LONG, 'shop')).source.commit as string;
    await card.getByText(first.slice(0, 7)).waitFor();

    // A push: the poll syncs it and the list shows the new commit and its message, live.
    const second = await repo.commit({ 'zerverless.yaml': luaManifest('two') }, 'Say two');
    await card.getByText(second.slice(0, 7)).waitFor();
    await card.getByText('Say two').waitFor();
    await page.screenshot({ path: join(SHOTS, 'applications.png') });

    // One application: functions with links, revisions with plans, the head preview.
    await card.getByRole('link', { name: 'web' }).click();
    await page.getByRole('heading', { name: /^web/ }).first().waitFor();
    // The focus moves to the new screen's content.
    await page.waitForFunction(`document.activeElement?.id === 'main'`);
    await page.getByRole('link', { name: '/shop/hi' }).waitFor();
    await page.locator(`li[data-revision="${first}"]`).waitFor();
    await page.locator('#preview').getByText('A sync of the head changes nothing.').waitFor();
    await page.locator('li.current .plan', { hasText: 'update /hi (code)' }).waitFor();
    await page.locator(`li[data-revision="${first}"] .plan`, { hasText: 'create /hi' }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'application.png'), fullPage: true });

    // Sync now (a button, reached and pressed like any other).
    await page.locator('#do-sync').click();
    await page.locator('#action-result', { hasText: 'Sync: done' }).waitFor();

    // Roll back to the first revision: the served body changes, the application is suspended.
    await page.locator(`li[data-revision="${first}"] button`).click();
    await page.locator('#action-result', { hasText: /Roll back to \w+: done/ }).waitFor();
    assert.equal(await (await h.get('/shop/hi')).text(), 'one');
    await page.locator('#serving-commit', { hasText: first.slice(0, 7) }).waitFor();
    await page.locator('#do-resume').waitFor();
    // A revision keeps the plan that first deployed it, not the rollback's.
    await page.locator(`li.current[data-revision="${first}"] .plan`, { hasText: 'create /hi' }).waitFor();
    // The preview now shows what a sync of the head would change back.
    await page.locator('#preview pre.diff', { hasText: '~ function /hi (code)' }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'rolled-back.png'), fullPage: true });

    // Resume: the branch head (two) is synced again.
    await page.locator('#do-resume').click();
    await h.waitFor('web', (s) => s.source.commit === second && s.status === 'synced' && !s.suspended, LONG, 'shop');
    assert.equal(await (await h.get('/shop/hi')).text(), 'two');
    await page.locator('#serving-commit', { hasText: second.slice(0, 7) }).waitFor();

    // Phone width: nothing overflows sideways.
    await page.setViewportSize({ width: 360, height: 740 });
    const overflow = (await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')) as number;
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than a 360 px screen`);
    await page.screenshot({ path: join(SHOTS, 'application-phone.png'), fullPage: true });
    await page.goto(`${h.url}/ui#/`);
    await page.locator('li[data-app="shop/web"]').waitFor();
    await page.screenshot({ path: join(SHOTS, 'applications-phone.png'), fullPage: true });
  });

  it("a reader's token sees the buttons disabled; sign out forgets the token", async () => {
    const made = await h.call<{ token: string }>('POST', '/tokens', { body: { name: 'viewer', role: 'reader', namespaces: ['shop'] } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const ctx = await browser.newContext({ viewport: { width: 800, height: 700 } });
    const p = await ctx.newPage();
    p.setDefaultTimeout(LONG);
    await p.goto(`${h.url}/ui#/apps/shop/web`);
    await p.locator('#token').fill(made.body.token);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.locator('#do-sync').waitFor();
    assert.equal(await p.locator('#do-sync').isDisabled(), true);
    assert.match((await p.locator('#do-sync').getAttribute('title')) ?? '', /reader/);
    await p.getByRole('button', { name: 'Sign out' }).click();
    await p.locator('#token').waitFor();
    assert.equal(await p.evaluate(`sessionStorage.getItem('zerverless.token')`), null);
    await ctx.close();
  });

  it('follows a function log', async (t) => {
    const doc = (await h.call<{ paths: Record<string, unknown> }>('GET', '/openapi.json')).body;
    if (!Object.keys(doc.paths).some((p) => /\/applications\/\{name\}\/logs$/.test(p))) {
      t.todo('GET …/{name}/logs is not served yet: the console hides the log tail');
      return;
    }
    // A function that prints: each call's line shows in the followed log without a reload.
    const printing = luaManifest('three').replace('function handle(req) return "three" end', 'function handle(req) print("hello from " .. req.path) return "three" end');
    assert.notEqual(printing, luaManifest('three'));
    const third = await repo.commit({ 'zerverless.yaml': printing }, 'Print');
    await h.waitFor('web', (s) => s.source.commit === third && s.status === 'synced', LONG, 'shop');
    await page.setViewportSize({ width: 1100, height: 900 });
    await page.goto(`${h.url}/ui#/apps/shop/web`);
    await page.locator('button[data-log="/hi"]').click();
    await page.locator('pre.log').waitFor();
    assert.equal(await (await h.get('/shop/hi')).text(), 'three');
    await page.locator('pre.log', { hasText: 'hello from /hi' }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'logs.png'), fullPage: true });
    await page.locator('#log-stop').click();
  });
});
