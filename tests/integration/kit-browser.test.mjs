// The React example (contrib/react-example) in headless Chromium, built by
// Vite and served by pgpushd --static-dir, against a throwaway PostgreSQL:
// the green dot, a sale within 1 s, the error state while PostgreSQL is
// down (last data kept) and its recovery, a daemon restart.
//
// Needs contrib/react-example/node_modules (npm ci there; ./quickstart test
// does it) and Chromium; skipped with the reason otherwise.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { startCluster, repoRoot, freePort } from '../lib/pgcluster.mjs';
import { startDaemon, insertSale } from '../lib/daemon.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const APP = path.join(repoRoot, 'contrib', 'react-example');
const skip = !fs.existsSync(CHROMIUM) ? `${CHROMIUM} not found (./quickstart test installs Debian's chromium)`
  : !fs.existsSync(path.join(APP, 'node_modules', '.bin', 'vite')) ? 'contrib/react-example/node_modules is missing (npm ci there)'
  : false;
const require = createRequire(path.join(repoRoot, 'package.json'));

let pg, db, daemon, context, page, workDir, dist, productId;
const pageErrors = [];

before(async () => {
  if (skip) return;
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-kit-browser-'));
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql', 'sql/demo-data.sql'] });
  db = await pg.client();
  [{ id: productId }] = (await db.query('SELECT id FROM products ORDER BY id LIMIT 1')).rows;
});

after(async () => {
  if (context) await context.close().catch(() => {});
  if (db) await db.end().catch(() => {});
  if (daemon) await daemon.stop();
  if (pg) await pg.stop();
  if (workDir) fs.rmSync(path.join(workDir, 'profile'), { recursive: true, force: true });
});

const digits = (s) => String(s).replace(/\D/g, '');

test('npm run build (tsc --noEmit, vite build) writes index.html and its assets', { skip, timeout: 180000 }, () => {
  dist = path.join(workDir, 'dist');
  const t0 = performance.now();
  execFileSync('npm', ['run', 'build', '--', '--outDir', dist], { cwd: APP, stdio: 'pipe', encoding: 'utf8' });
  const html = fs.readFileSync(path.join(dist, 'index.html'), 'utf8');
  const assets = fs.readdirSync(path.join(dist, 'assets'));
  assert.ok(assets.some((f) => f.endsWith('.js')), `a script in ${assets}`);
  assert.ok(assets.some((f) => f.endsWith('.css')), `a stylesheet in ${assets}`);
  for (const a of assets) assert.ok(html.includes(`./assets/${a}`), `index.html loads ./assets/${a} (relative base)`);
  console.log(`vite build: ${assets.join(', ')} in ${(performance.now() - t0).toFixed(0)} ms`);
});

test('served by pgpushd --static-dir, the app connects (green dot) and shows the database\'s numbers', { skip, timeout: 90000 }, async () => {
  assert.ok(dist, 'the build ran');
  daemon = await startDaemon({ db: pg.conninfo, args: ['--static-dir', dist, '--refresh-interval', '300'] });
  const { chromium } = require('playwright-core');
  context = await chromium.launchPersistentContext(path.join(workDir, 'profile'), {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 1000 },
  });
  page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`); });

  const t0 = performance.now();
  const res = await page.goto(`${daemon.url}/`);
  assert.equal(res.status(), 200);
  await page.waitForSelector('#status[data-state="connected"]', { timeout: 10000 });
  const dot = await page.$eval('#status .status-dot', (e) => getComputedStyle(e).backgroundColor);
  assert.equal(dot, 'rgb(22, 163, 74)', 'the dot is green');
  await page.waitForFunction(() => /\d/.test(document.querySelector('[data-field="sales30d"]').textContent), null, { timeout: 10000 });
  const expected = JSON.parse(await pg.psql('SELECT pgpush.dashboard()')).summary;
  for (const key of ['sales30d', 'salesToday', 'lowStockCount', 'revenue30d']) {
    const shown = await page.textContent(`[data-field="${key}"]`);
    const want = key === 'revenue30d' ? Number(expected[key]).toFixed(2) : String(expected[key]);
    assert.equal(digits(shown), digits(want), `summary ${key}: page shows ${shown}, database says ${expected[key]}`);
  }
  assert.equal(await page.locator('#recent-sales tbody tr[data-id]').count(), 10);
  assert.equal(await page.locator('#sales-by-day rect.bar').count(), 30);
  assert.ok(await page.locator('#forecast-chart polyline.series').count() > 0);
  console.log(`react app: connected and rendered ${(performance.now() - t0).toFixed(0)} ms after navigation`);
  assert.deepEqual(pageErrors, []);
});

async function saleShown(customer, timeout) {
  const { id, committedAt } = await insertSale(db, productId, { quantity: 2, customer });
  const row = page.locator(`#recent-sales tbody tr[data-id="${id}"]`);
  await row.waitFor({ timeout });
  return { id, ms: performance.now() - committedAt, row };
}

test('a sale inserted with SQL is on the page within 1 s, as text', { skip, timeout: 30000 }, async () => {
  const customer = `<img src=x onerror="window.__xss=1">React ${process.pid}`;
  const { id, ms, row } = await saleShown(customer, 1000);
  assert.equal(await page.getAttribute('#recent-sales tbody tr:first-child', 'data-id'), String(id));
  assert.ok((await row.textContent()).includes(customer));
  assert.equal(await page.locator('#recent-sales img').count(), 0);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.match(await row.getAttribute('class') || '', /\brow-new\b/);
  console.log(`react app: sale ${id} on screen ${ms.toFixed(1)} ms after COMMIT; ` +
    `${await page.textContent('#stat-updates')} full documents, ${await page.textContent('#stat-patches')} patches`);
});

test('the sale came as a patch', { skip, timeout: 30000 }, async () => {
  const patches = Number(await page.textContent('#stat-patches'));
  const updates = Number(await page.textContent('#stat-updates'));
  await saleShown(`React patch ${process.pid}`, 1000);
  assert.equal(Number(await page.textContent('#stat-patches')), patches + 1, 'one more patch');
  assert.equal(Number(await page.textContent('#stat-updates')), updates, 'no full document');
});

test('PostgreSQL stopped: error state with the last data; recovery clears it', { skip, timeout: 90000 }, async () => {
  const rowsBefore = await page.locator('#recent-sales tbody tr[data-id]').allTextContents();
  await pg.stopServer();
  try {
    await page.waitForSelector('#status[data-state="error"]', { timeout: 15000 });
    assert.match(await page.textContent('#banner'), /Data error.*db_unavailable.*showing the last good data/);
    assert.deepEqual(await page.locator('#recent-sales tbody tr[data-id]').allTextContents(), rowsBefore, 'the last data stays');
    const dot = await page.$eval('#status .status-dot', (e) => getComputedStyle(e).backgroundColor);
    assert.equal(dot, 'rgb(220, 38, 38)', 'the dot is red');
    await page.screenshot({ path: path.join(workDir, 'react-error.png') });
  } finally {
    await pg.startServer();
  }
  await db.end().catch(() => {});
  db = await pg.client();
  await saleShown(`React after outage ${process.pid}`, 60000);
  await page.waitForSelector('#status[data-state="connected"]', { timeout: 10000 });
  assert.equal(await page.locator('#banner').count(), 0, 'no banner');
});

test('daemon restarted: the page reconnects and resynchronises', { skip, timeout: 90000 }, async () => {
  const before = Number(await page.textContent('#snap-version'));
  const port = daemon.port;
  await daemon.stopClean();
  await page.waitForSelector('#status[data-state="reconnecting"]', { timeout: 10000 });
  const seq = (await pg.psql("SELECT to_regclass('pgpush.version_seq') IS NOT NULL")).trim() === 't';
  if (seq) await pg.psql("SELECT setval('pgpush.version_seq', 1000)");
  daemon = await startDaemon({ db: pg.conninfo, listen: `127.0.0.1:${port}`, args: ['--static-dir', dist, '--refresh-interval', '300'] });
  await page.waitForSelector('#status[data-state="connected"]', { timeout: 15000 });
  await page.waitForFunction((v) => Number(document.querySelector('#snap-version').textContent) !== v, before, { timeout: 15000 });
  const { id, ms } = await saleShown(`React after restart ${process.pid}`, 5000);
  const after = Number(await page.textContent('#snap-version'));
  if (seq) assert.ok(after < before, `the lower version is taken (${before} -> ${after})`);
  console.log(`react app: versions ${before} -> ${after} across the restart; sale ${id} ${ms.toFixed(1)} ms after COMMIT`);
  await page.screenshot({ path: path.join(workDir, 'react-dashboard.png'), fullPage: true });
  assert.deepEqual(pageErrors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|socket\.io/.test(e)), [], 'no page errors (but the refused reconnects)');
  console.log(`react app: screenshots in ${workDir}`);
});

test('npm run dev: the Vite dev server proxies /socket.io (WebSocket) to pgpushd, same-origin', { skip, timeout: 90000 }, async () => {
  const port = await freePort();
  // vite itself (not through npm), so that the kill below reaches it.
  const vite = spawn(process.execPath, [path.join(APP, 'node_modules', 'vite', 'bin', 'vite.js'), '--port', String(port), '--strictPort', '--host', '127.0.0.1'],
    // NO_COLOR: with CI set (as CI sets it) Vite colours its banner, and escapes
    // would split the 'Local:' it is waited for by.
    { cwd: APP, env: { ...process.env, PGPUSHD_URL: daemon.url, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  vite.stdout.on('data', (d) => { out += d; });
  vite.stderr.on('data', (d) => { out += d; });
  const dev = await context.newPage();
  try {
    for (let i = 0; i < 100 && !/Local:/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /Local:/, `vite dev started:\n${out}`);
    await dev.goto(`http://127.0.0.1:${port}/`);
    await dev.waitForSelector('#status[data-state="connected"]', { timeout: 20000 });
    const { id } = await insertSale(db, productId, { customer: `React dev ${process.pid}` });
    await dev.locator(`#recent-sales tbody tr[data-id="${id}"]`).waitFor({ timeout: 5000 });
    // The app connects to its own origin (the dev server), never to pgpushd's port directly.
    assert.equal(await dev.evaluate(() => location.origin), `http://127.0.0.1:${port}`);
    assert.notEqual(port, daemon.port);
  } finally {
    await dev.close();
    vite.kill('SIGTERM');
  }
});
