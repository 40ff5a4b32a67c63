// The demo page (contrib/dashboard) on pgpush-client, through the failures
// dashboard.test.mjs does not cover: PostgreSQL stopped (error state, last
// data kept) and back, the daemon restarted (reconnecting, then the new
// daemon's document), the daemon gone (disconnected after 5 attempts, Retry).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { startCluster, repoRoot } from '../lib/pgcluster.mjs';
import { startDaemon, insertSale } from '../lib/daemon.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const skip = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (./quickstart test installs Debian's chromium)`;
const require = createRequire(path.join(repoRoot, 'package.json'));

let pg, db, daemon, context, page, workDir, www, productId;
const pageErrors = [];

before(async () => {
  if (skip) return;
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-kit-dashboard-'));
  www = path.join(workDir, 'www');
  fs.mkdirSync(www);
  const dashboard = path.join(repoRoot, 'contrib', 'dashboard');
  for (const f of fs.readdirSync(dashboard)) fs.copyFileSync(path.join(dashboard, f), path.join(www, f));
  fs.copyFileSync(path.join(repoRoot, 'node_modules', 'socket.io-client', 'dist', 'socket.io.min.js'), path.join(www, 'socket.io.min.js'));
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql', 'sql/demo-data.sql'] });
  db = await pg.client();
  [{ id: productId }] = (await db.query('SELECT id FROM products ORDER BY id LIMIT 1')).rows;
  daemon = await startDaemon({ db: pg.conninfo, args: ['--static-dir', www, '--refresh-interval', '300'] });
  const { chromium } = require('playwright-core');
  context = await chromium.launchPersistentContext(path.join(workDir, 'profile'), {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 1000 },
  });
  page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
});

after(async () => {
  if (context) await context.close().catch(() => {});
  if (db) await db.end().catch(() => {});
  if (daemon) await daemon.stop();
  if (pg) await pg.stop();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

async function saleShown(customer, timeout) {
  const { id } = await insertSale(db, productId, { customer });
  await page.locator(`#recent-sales tbody tr[data-id="${id}"]`).waitFor({ timeout });
  return id;
}

test('the page loads pgpush-client, which opts in to deltas', { skip, timeout: 60000 }, async () => {
  await page.goto(`${daemon.url}/`);
  await page.waitForSelector('#status[data-state="connected"]', { timeout: 10000 });
  await page.waitForSelector('#recent-sales tbody tr[data-id]', { timeout: 10000 });
  const auth = await page.evaluate(() => new Promise((resolve) => window.pgpushDashboard.client.socket.auth(resolve)));
  assert.equal(auth.deltas, true);
  assert.equal(auth.since, await page.evaluate(() => window.pgpushDashboard.state.version));
  await saleShown(`Page ${process.pid}`, 1000);
});

test('PostgreSQL stopped: "data error" with the last data; back: connected, no banner', { skip, timeout: 90000 }, async () => {
  const rows = await page.locator('#recent-sales tbody tr[data-id]').allTextContents();
  await pg.stopServer();
  try {
    await page.waitForSelector('#status[data-state="error"]', { timeout: 15000 });
    assert.equal((await page.textContent('#status-text')).trim(), 'data error');
    assert.match(await page.textContent('#banner'), /Data error.*db_unavailable.*showing the last good data/s);
    assert.deepEqual(await page.locator('#recent-sales tbody tr[data-id]').allTextContents(), rows);
  } finally {
    await pg.startServer();
  }
  await db.end().catch(() => {});
  db = await pg.client();
  await saleShown(`Page after outage ${process.pid}`, 60000);
  await page.waitForSelector('#status[data-state="connected"]', { timeout: 10000 });
  assert.equal(await page.isHidden('#banner'), true);
});

test('daemon restarted: "reconnecting", then the new daemon\'s document', { skip, timeout: 90000 }, async () => {
  const before = await page.evaluate(() => window.pgpushDashboard.state.version);
  const port = daemon.port;
  await daemon.stopClean();
  await page.waitForSelector('#status[data-state="reconnecting"]', { timeout: 10000 });
  assert.match(await page.textContent('#banner'), /Connection lost|Cannot connect/s);
  const seq = (await pg.psql("SELECT to_regclass('pgpush.version_seq') IS NOT NULL")).trim() === 't';
  if (seq) await pg.psql("SELECT setval('pgpush.version_seq', 1000)");
  daemon = await startDaemon({ db: pg.conninfo, listen: `127.0.0.1:${port}`, args: ['--static-dir', www, '--refresh-interval', '300'] });
  await page.waitForSelector('#status[data-state="connected"]', { timeout: 15000 });
  await page.waitForFunction((v) => window.pgpushDashboard.state.version !== v, before, { timeout: 15000 });
  if (seq) assert.ok(await page.evaluate(() => window.pgpushDashboard.state.version) < before);
  await saleShown(`Page after restart ${process.pid}`, 5000);
});

test('daemon gone: "disconnected" after 5 attempts, Retry connects again', { skip, timeout: 90000 }, async () => {
  const port = daemon.port;
  await daemon.stopClean();
  await page.waitForSelector('#status[data-state="disconnected"]', { timeout: 30000 });
  assert.match(await page.textContent('#banner'), /could not be reached after 5 attempts/s);
  assert.equal(await page.isVisible('#status-retry'), true);
  daemon = await startDaemon({ db: pg.conninfo, listen: `127.0.0.1:${port}`, args: ['--static-dir', www, '--refresh-interval', '300'] });
  await page.click('#status-retry');
  await page.waitForSelector('#status[data-state="connected"]', { timeout: 15000 });
  await saleShown(`Page after retry ${process.pid}`, 5000);
  assert.deepEqual(pageErrors, []);
});
