// pgpush-client as a user gets it: `npm pack`, installed in a fresh folder
// with npm, its types compiled by tsc --noEmit against a small consumer
// (NodeNext resolution, so the exports map and its "types" conditions are
// what is checked), and imported by Node.
//
// Needs TypeScript from contrib/client/node_modules (npm ci there;
// ./quickstart test does it); npm install uses the npm cache first.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { repoRoot } from '../lib/pgcluster.mjs';

const CLIENT = path.join(repoRoot, 'contrib', 'client');
const TSC = path.join(CLIENT, 'node_modules', 'typescript', 'bin', 'tsc');
const skip = fs.existsSync(TSC) ? false : 'contrib/client/node_modules is missing (npm ci there)';
const SOCKET_IO_CLIENT = JSON.parse(fs.readFileSync(path.join(CLIENT, 'package.json'), 'utf8')).devDependencies['socket.io-client'];

let dir, tarball;
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: 'pipe' });

before(() => {
  if (skip) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-kit-package-'));
});
after(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

test('npm pack: the package holds the code, the types and the README, not the tests', { skip }, () => {
  const out = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir], CLIENT));
  tarball = path.join(dir, out[0].filename);
  const files = out[0].files.map((f) => f.path).sort();
  assert.deepEqual(files, ['README.md', 'package.json', 'src/index.js', 'src/pgpush-client.js', 'src/react.js',
    'types/dashboard.d.ts', 'types/index.d.ts', 'types/react.d.ts']);
});

test('installed in a fresh folder, its types compile against a consumer (tsc --noEmit)', { skip, timeout: 180000 }, () => {
  assert.ok(tarball, 'npm pack ran');
  const app = path.join(dir, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, `socket.io-client@${SOCKET_IO_CLIENT}`], app);
  fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2020', strict: true, noEmit: true,
      lib: ['ES2020', 'DOM'], skipLibCheck: false, types: [] },
    files: ['consumer.ts'],
  }));
  fs.writeFileSync(path.join(app, 'consumer.ts'), `
import {
  createDashboardClient, applyPatch, recentSalesRows, forecastSeries, revenueByDay,
  type DashboardClient, type DashboardDocument, type DashboardSnapshot, type ConnectionStatus,
  type DashboardDataPatch, type DashboardDataError, type ServerToClientEvents, type StockPrediction,
} from 'pgpush-client';
import type { UseDashboardResult } from 'pgpush-client/react';

const client: DashboardClient = createDashboardClient('http://localhost:3000', {
  token: 'jwt', getToken: async () => 'fresh', deltas: true,
  socketOptions: { reconnectionAttempts: 3, transports: ['websocket'] },
  onChange: (snap, change) => { if (change.type === 'patch') console.log(change.from, change.to, snap.version); },
});
const status: ConnectionStatus = client.status;
const off = client.subscribe((s: DashboardSnapshot) => {
  const doc: DashboardDocument | null = s.data;
  if (doc) {
    const sales: number = doc.summary.salesToday;
    // Optional: only roles that may read the column get it (sql/README.md).
    const name: string | null | undefined = doc.recentSales[0].customerName;
    const days: number | null = doc.stockPredictions[0].daysUntilStockout;
    console.log(sales, name, days, doc.version, doc.generatedAt);
  }
  if (s.lastError?.kind === 'data') console.log(s.lastError.code, s.lastError.retryInMs);
});
off();
const p: DashboardDataPatch = { from: 1, to: 2, patch: [{ op: 'replace', path: '/version', value: 2 }, { op: 'remove', path: '/x' }, { op: 'move', from: '/a', path: '/b' }] };
const patched = applyPatch({ version: 1 }, p.patch);
console.log(patched.version);
const onError: ServerToClientEvents['dashboardDataError'] = (e: DashboardDataError) => console.log(e.message);
void onError;
const preds: StockPrediction[] = [];
console.log(forecastSeries(preds, { limit: 3 })[0]?.points[0].stock, recentSalesRows([])[0]?.customer, revenueByDay([])[0]?.isToday);
let hook: UseDashboardResult | undefined;
console.log(hook?.status, status);
client.close();

// @ts-expect-error: salesToday is a number
const wrong: string = ({} as DashboardDocument).summary.salesToday;
// @ts-expect-error: not an operation
const badOp: DashboardDataPatch = { from: 1, to: 2, patch: [{ op: 'frob', path: '/' }] };
// @ts-expect-error: not a status
const badStatus: ConnectionStatus = 'online';
void wrong; void badOp; void badStatus;
`);
  try {
    run(process.execPath, [TSC, '-p', app], app);
  } catch (err) {
    assert.fail(`tsc --noEmit failed:\n${err.stdout}${err.stderr}`);
  }
  fs.writeFileSync(path.join(app, 'run.mjs'), `
import * as kit from 'pgpush-client';
const names = Object.keys(kit).sort();
const out = kit.applyPatch({ a: [1] }, [{ op: 'add', path: '/a/-', value: 2 }]);
const c = kit.createDashboardClient('http://127.0.0.1:1', { autoConnect: false });
console.log(JSON.stringify({ names, out, status: c.status, auth: typeof c.socket.auth }));
c.close();
`);
  const res = JSON.parse(run(process.execPath, ['run.mjs'], app));
  assert.deepEqual(res.out, { a: [1, 2] });
  assert.equal(res.status, 'connecting');
  assert.equal(res.auth, 'function');
  for (const n of ['createDashboardClient', 'applyPatch', 'PatchError', 'forecastSeries', 'recentSalesRows', 'revenueByDay']) {
    assert.ok(res.names.includes(n), `exports ${n}`);
  }
});
