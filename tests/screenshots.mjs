#!/usr/bin/env node
// Refresh docs/screenshots/: the demo page (contrib/dashboard) and the React
// example (contrib/react-example, built here), each served by pgpushd
// --static-dir against a throwaway PostgreSQL with the demo data, taken by
// headless Chromium. Needs src/pgpushd, PostgreSQL, /usr/bin/chromium, the
// root node_modules and contrib/react-example/node_modules.
//
//   node tests/screenshots.mjs [OUTDIR]     (default docs/screenshots)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { startCluster, repoRoot } from './lib/pgcluster.mjs';
import { startDaemon, insertSale, sleep } from './lib/daemon.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const outDir = path.resolve(process.argv[2] || path.join(repoRoot, 'docs', 'screenshots'));
const require = createRequire(path.join(repoRoot, 'package.json'));
const { chromium } = require('playwright-core');

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-screenshots-'));
let pg, db, daemon, browser;
try {
  fs.mkdirSync(outDir, { recursive: true });
  // The demo page, staged as ./quickstart demo does (cp follows the link).
  const www = path.join(work, 'www');
  fs.mkdirSync(www);
  const dashboard = path.join(repoRoot, 'contrib', 'dashboard');
  for (const f of fs.readdirSync(dashboard)) fs.copyFileSync(path.join(dashboard, f), path.join(www, f));
  fs.copyFileSync(path.join(repoRoot, 'node_modules', 'socket.io-client', 'dist', 'socket.io.min.js'), path.join(www, 'socket.io.min.js'));
  // The React app.
  const dist = path.join(work, 'dist');
  execFileSync('npm', ['run', 'build', '--', '--outDir', dist], { cwd: path.join(repoRoot, 'contrib', 'react-example'), stdio: 'inherit' });

  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql', 'sql/demo-data.sql'] });
  db = await pg.client();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const [{ id: productId }] = (await db.query('SELECT id FROM products ORDER BY id LIMIT 1')).rows;

  for (const [name, dir] of [['dashboard.png', www], ['react-dashboard.png', dist]]) {
    daemon = await startDaemon({ db: pg.conninfo, args: ['--static-dir', dir, '--refresh-interval', '300'] });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, colorScheme: 'light' });
    await page.goto(`${daemon.url}/`);
    await page.waitForSelector('#status[data-state="connected"]', { timeout: 10000 });
    await page.waitForSelector('#recent-sales tbody tr[data-id]', { timeout: 10000 });
    // A fresh sale, so the highlight shows.
    const { id } = await insertSale(db, productId, { quantity: 2, customer: 'Grace Hopper' });
    await page.waitForSelector(`#recent-sales tbody tr[data-id="${id}"]`, { timeout: 5000 });
    await sleep(300);
    await page.screenshot({ path: path.join(outDir, name), fullPage: true });
    console.log(`wrote ${path.join(outDir, name)}`);
    await page.close();
    await daemon.stop();
    daemon = null;
  }
} finally {
  if (browser) await browser.close().catch(() => {});
  if (daemon) await daemon.stop();
  if (db) await db.end().catch(() => {});
  if (pg) await pg.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
