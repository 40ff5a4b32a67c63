// The demo dashboard (contrib/dashboard) in a real browser: pgpushd serves the
// page with --static-dir, headless Chromium loads it with the stock
// socket.io-client bundle, and a sale inserted with the pg client shows up in
// the recent-sales table. Prints the commit-to-screen time and where the
// screenshot is.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { startCluster, repoRoot } from '../lib/pgcluster.mjs';
import { startDaemon, insertSale } from '../lib/daemon.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// How Chromium runs on a machine without a network (see the README).
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const skip = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (./quickstart test installs Debian's chromium)`;

const require = createRequire(path.join(repoRoot, 'package.json'));

let pg, db, daemon, context, page, workDir;
const pageErrors = [];

before(async () => {
  if (skip) return;
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-dashboard-test-'));

  // The same staging as ./quickstart demo: the page plus the client bundle.
  const www = path.join(workDir, 'www');
  fs.mkdirSync(www);
  const dashboard = path.join(repoRoot, 'contrib', 'dashboard');
  for (const f of fs.readdirSync(dashboard)) fs.copyFileSync(path.join(dashboard, f), path.join(www, f));
  fs.copyFileSync(path.join(repoRoot, 'node_modules', 'socket.io-client', 'dist', 'socket.io.min.js'),
    path.join(www, 'socket.io.min.js'));

  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql', 'sql/demo-data.sql'] });
  db = await pg.client();
  daemon = await startDaemon({ db: pg.conninfo, args: ['--static-dir', www, '--refresh-interval', '300'] });

  const { chromium } = require('playwright-core');
  context = await chromium.launchPersistentContext(path.join(workDir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 1000 },
  });
  page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`); });
});

after(async () => {
  if (context) await context.close().catch(() => {});
  if (daemon) await daemon.stop();
  if (pg) await pg.stop();
  if (workDir) {
    // Keep the screenshot; the rest (profile, staged page) goes.
    fs.rmSync(path.join(workDir, 'profile'), { recursive: true, force: true });
    fs.rmSync(path.join(workDir, 'www'), { recursive: true, force: true });
  }
});

const digits = (s) => String(s).replace(/\D/g, '');

test('the dashboard page connects, renders the snapshot and shows a new sale', { skip, timeout: 90000 }, async () => {
  const t0 = performance.now();
  const res = await page.goto(`${daemon.url}/`);
  assert.equal(res.status(), 200, 'GET / serves index.html');
  assert.match(res.headers()['content-type'] || '', /^text\/html/, 'index.html is text/html');

  await page.waitForSelector('#status[data-state="connected"]', { timeout: 10000 });
  const tConnected = performance.now() - t0;
  assert.equal((await page.textContent('#status-text')).trim(), 'connected');

  // The summary numbers are those of the database.
  await page.waitForFunction(() => /\d/.test(document.querySelector('[data-field="sales30d"]').textContent),
    null, { timeout: 10000 });
  const tRendered = performance.now() - t0;
  const expected = JSON.parse(await pg.psql('SELECT pgpush.dashboard()')).summary;
  for (const key of ['sales30d', 'salesToday', 'lowStockCount', 'revenue30d']) {
    const shown = await page.textContent(`[data-field="${key}"]`);
    const want = key === 'revenue30d' ? Number(expected[key]).toFixed(2) : String(expected[key]);
    assert.equal(digits(shown), digits(want), `summary ${key}: page shows ${shown}, database says ${expected[key]}`);
  }
  assert.equal(await page.locator('#recent-sales tbody tr[data-id]').count(), 10, 'ten recent sales');
  assert.ok(await page.locator('#sales-by-day svg rect.bar').count() >= 30, 'a bar per day');
  assert.ok(await page.locator('#forecast-chart svg polyline.series').count() > 0, 'forecast lines');
  assert.ok(await page.locator('#forecast-table tbody tr[data-id]').count() > 0, 'forecast rows');
  assert.notEqual((await page.textContent('#snap-version')).trim(), '—', 'footer shows the snapshot version');

  // A sale whose customer name is markup: it must arrive, and as text.
  const [{ id: productId }] = (await db.query('SELECT id FROM products ORDER BY id LIMIT 1')).rows;
  const customer = `<img src=x onerror="window.__xss=1">Browser Test ${process.pid}`;
  const before = await page.evaluate(() => window.pgpushDashboard.state.version);
  const { id, committedAt } = await insertSale(db, productId, { quantity: 2, customer });
  const row = page.locator(`#recent-sales tbody tr[data-id="${id}"]`);
  await row.waitFor({ timeout: 5000 });
  const shownMs = performance.now() - committedAt;

  assert.equal(await page.getAttribute('#recent-sales tbody tr:first-child', 'data-id'), String(id),
    'the new sale is the first row');
  assert.ok((await row.textContent()).includes(customer), 'the customer name is shown verbatim');
  assert.equal(await page.locator('#recent-sales img').count(), 0, 'no markup from the data');
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'no script from the data');
  assert.match(await row.getAttribute('class') || '', /\brow-new\b/, 'the new row is highlighted');
  const after = await page.evaluate(() => window.pgpushDashboard.state.version);
  assert.ok(after > before, `the snapshot version grew (${before} -> ${after})`);

  const shot = path.join(workDir, 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  assert.deepEqual(pageErrors, [], 'no errors in the page');
  console.log(`dashboard: connected ${tConnected.toFixed(0)} ms and rendered ${tRendered.toFixed(0)} ms after ` +
    `navigation; sale ${id} on screen ${shownMs.toFixed(1)} ms after COMMIT; screenshot ${shot}`);
});

test('after a reconnect the page takes the new daemon\'s document, even with a lower version', { skip, timeout: 90000 }, async () => {
  await page.waitForSelector('#status[data-state="connected"]', { timeout: 10000 });
  const before = await page.evaluate(() => window.pgpushDashboard.state.version);
  const port = daemon.port;
  await daemon.stopClean();
  // A restored database, or a daemon on another one: versions start lower.
  await pg.psql("SELECT setval('pgpush.version_seq', 1000)");
  daemon = await startDaemon({ db: pg.conninfo, listen: `127.0.0.1:${port}`,
    args: ['--static-dir', path.join(workDir, 'www'), '--refresh-interval', '300'] });
  await page.waitForFunction((v) => window.pgpushDashboard.state.version < v, before, { timeout: 15000 });
  await page.waitForSelector('#status[data-state="connected"]', { timeout: 10000 });
  const [{ id: productId }] = (await db.query('SELECT id FROM products ORDER BY id LIMIT 1')).rows;
  const { id } = await insertSale(db, productId, { customer: `After reconnect ${process.pid}` });
  await page.locator(`#recent-sales tbody tr[data-id="${id}"]`).waitFor({ timeout: 5000 });
  const after = await page.evaluate(() => window.pgpushDashboard.state.version);
  console.log(`page versions: ${before} before the restart, ${after} after it`);
  assert.ok(after < before && after > 1000);
  assert.deepEqual(pageErrors, [], 'no errors in the page');
});
