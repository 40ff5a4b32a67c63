// The frontend kit (contrib/client, issue 10) against the real pgpushd: the
// very client module the npm package and the demo page use, with the
// socket.io-client of the tests, a throwaway PostgreSQL and real sales.
//
// Patches and resume run against the daemon; the client's side of the
// patch and resync logic (gaps, failing patches) is also exercised against a
// scripted Socket.IO server (the socket.io package) at the end of this file,
// where the daemon would never send what the script does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { startCluster, repoRoot } from '../lib/pgcluster.mjs';
import { startDaemon, io, insertSale, sleep, now } from '../lib/daemon.mjs';
import { createDashboardClient as create } from '../../contrib/client/src/pgpush-client.js';
import { validate, generateTypes } from '../../contrib/client/scripts/schema-tools.mjs';

const require = createRequire(path.join(repoRoot, 'package.json'));
const schema = JSON.parse(fs.readFileSync(path.join(repoRoot, 'docs', 'dashboard.schema.json'), 'utf8'));

let pg, db, daemon, productId;
const clients = new Set();

/** A client with the kit's defaults, except forceNew (one Manager each). */
function client(url, opts = {}) {
  const c = create(url, { io, ...opts, socketOptions: { forceNew: true, ...opts.socketOptions } });
  clients.add(c);
  return c;
}

/** Resolves the client's snapshot once pred(snapshot) holds. */
function until(c, pred, timeoutMs = 5000, what = 'a state') {
  if (pred(c.getSnapshot())) return Promise.resolve(c.getSnapshot());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      const s = c.getSnapshot();
      reject(new Error(`timeout (${timeoutMs} ms) waiting for ${what}; status ${s.status} (${s.reason}), version ${s.version}, ` +
        `lastError ${JSON.stringify(s.lastError)}, stats ${JSON.stringify(s.stats)}`));
    }, timeoutMs);
    const off = c.subscribe((s) => { if (pred(s)) { clearTimeout(timer); off(); resolve(s); } });
  });
}
const hasSale = (id) => (s) => !!(s.data && s.data.recentSales.some((x) => x.id === id));

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql', 'sql/demo-data.sql'] });
  db = await pg.client();
  [{ id: productId }] = (await db.query('SELECT id FROM products ORDER BY id LIMIT 1')).rows;
  daemon = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300'] });
});

after(async () => {
  for (const c of clients) c.close();
  if (db) await db.end().catch(() => {});
  try { if (daemon) await daemon.stopClean(); } finally { if (pg) await pg.stop(); }
});

// ------------------------------------------------------------- schema --

test('types/dashboard.d.ts is generated from docs/dashboard.schema.json and up to date', () => {
  const file = path.join(repoRoot, 'contrib', 'client', 'types', 'dashboard.d.ts');
  assert.equal(fs.readFileSync(file, 'utf8'), generateTypes(schema),
    'run `npm run gen-types` in contrib/client after changing the schema');
  execFileSync(process.execPath, [path.join(repoRoot, 'contrib', 'client', 'scripts', 'gen-types.mjs'), '--check']);
});

test('the real document and the ack match the schema; the schema rejects a wrong one', async () => {
  const doc = JSON.parse(await pg.psql('SELECT pgpush.dashboard()'));
  const c = client(daemon.url);
  const s = await until(c, (x) => x.data !== null, 10000, 'the first document');
  assert.deepEqual(validate(schema, s.data), [], 'pushed document');
  for (const k of Object.keys(doc)) assert.ok(k in s.data, `the pushed document has ${k}`);
  const bad = structuredClone(s.data);
  bad.summary.salesToday = '3';
  bad.recentSales[0].extra = 1;
  delete bad.version;
  assert.deepEqual(validate(schema, bad), ['$: no version', '$.summary.salesToday: "3" is not integer',
    '$.recentSales[0]: unexpected member extra']);
  const reply = await c.refresh();
  assert.deepEqual(validate(schema, reply), [], 'ack document');
  c.close();
});

// ------------------------------------------------------ the real daemon --

test('connects with the kit defaults and the opt-in, shows the document and its version', async () => {
  let authPayloads = [];
  const c = client(daemon.url, { token: 'not-checked-yet' });
  const orig = c.socket.auth;
  assert.equal(typeof orig, 'function', 'auth is a function, evaluated on every (re)connect');
  orig((p) => authPayloads.push(p));
  assert.deepEqual(authPayloads, [{ deltas: true, token: 'not-checked-yet' }], 'first connect: no since');
  assert.deepEqual(c.socket.io.opts.transports, ['websocket']);
  assert.equal(c.socket.io.reconnectionAttempts(), 5);
  assert.equal(c.socket.io.reconnectionDelay(), 1000);
  assert.equal(c.status, 'connecting');
  const s = await until(c, (x) => x.status === 'connected' && x.data !== null, 10000, 'connected with data');
  assert.equal(s.reason, null);
  assert.equal(s.version, s.data.version);
  assert.ok(s.lastUpdated instanceof Date);
  assert.equal(s.lastError, null);
  authPayloads = [];
  orig((p) => authPayloads.push(p));
  assert.deepEqual(authPayloads, [{ deltas: true, since: s.version, token: 'not-checked-yet' }], 'a reconnect resumes from the version held');
  c.close();
  assert.equal(c.status, 'disconnected');
  assert.equal(c.state.reason, 'closed');
});

test('deltas: false sends no opt-in and still gets every document', async () => {
  const c = client(daemon.url, { deltas: false });
  const payloads = [];
  c.socket.auth((p) => payloads.push(p));
  assert.deepEqual(payloads, [{}]);
  const s = await until(c, (x) => x.data !== null, 10000, 'a document');
  const { id } = await insertSale(db, productId, { customer: `kit no deltas ${process.pid}` });
  await until(c, hasSale(id), 5000, `sale ${id}`);
  assert.ok(c.version > s.version);
  c.close();
});

test('a sale inserted with SQL is in the client\'s data within 1 s', async () => {
  const c = client(daemon.url);
  await until(c, (x) => x.status === 'connected' && x.data !== null, 10000, 'connected with data');
  const before = c.version;
  const { id, committedAt } = await insertSale(db, productId, { customer: `kit sale ${process.pid}` });
  const s = await until(c, hasSale(id), 1000, `sale ${id} within 1 s`);
  console.log(`kit client: sale ${id} in data ${(now() - committedAt).toFixed(1)} ms after COMMIT ` +
    `(${s.stats.updates} full documents, ${s.stats.patches} patches)`);
  assert.equal(s.data.recentSales[0].id, id);
  assert.ok(s.version > before);
  assert.deepEqual(validate(schema, s.data), []);
  c.close();
});

test('PostgreSQL stopped: status error (db_unavailable) with the last data kept; recovery clears it', { timeout: 90000 }, async () => {
  const c = client(daemon.url);
  const good = await until(c, (x) => x.status === 'connected' && x.data !== null, 10000, 'connected with data');
  await pg.stopServer();
  try {
    const s = await until(c, (x) => x.status === 'error', 15000, 'the error state');
    assert.equal(s.reason, 'db_unavailable');
    assert.equal(s.lastError.kind, 'data');
    assert.equal(s.lastError.code, 'db_unavailable');
    assert.ok(s.lastError.nextAttemptAt);
    assert.equal(s.data, good.data, 'the last data is kept');
    assert.ok(c.socket.connected, 'still connected to the daemon');
  } finally {
    await pg.startServer();
  }
  const db2 = await pg.client();
  try {
    const { id } = await insertSale(db2, productId, { customer: `kit after outage ${process.pid}` });
    const s = await until(c, (x) => x.status === 'connected' && hasSale(id)(x), 60000, 'recovery with the new sale');
    assert.equal(s.lastError, null);
    assert.ok(s.version > good.version);
  } finally { await db2.end(); }
  c.close();
  // The test's own connection died with the server.
  await db.end().catch(() => {});
  db = await pg.client();
});

test('daemon restarted on the same port: reconnects with a fresh token and resynchronises, even to a lower version', { timeout: 90000 }, async () => {
  let tokens = 0;
  const c = client(daemon.url, { getToken: async () => `token-${++tokens}` });
  const first = await until(c, (x) => x.status === 'connected' && x.data !== null, 10000, 'connected with data');
  const port = daemon.port;
  await daemon.stopClean();
  await until(c, (x) => x.status === 'reconnecting', 5000, 'reconnecting');
  // A restored database (or a daemon on another one): versions start lower.
  // With versions drawn from pgpush.version_seq this sets them back; with
  // versions from the daemon's clock the restart alone is the test.
  const seq = (await pg.psql("SELECT to_regclass('pgpush.version_seq') IS NOT NULL")).trim() === 't';
  if (seq) await pg.psql("SELECT setval('pgpush.version_seq', 1000)");
  daemon = await startDaemon({ db: pg.conninfo, listen: `127.0.0.1:${port}`, args: ['--refresh-interval', '300'] });
  const s = await until(c, (x) => x.status === 'connected' && x.stats.connects === 2 && x.version !== first.version,
    15000, 'the new daemon\'s document');
  if (seq) assert.ok(s.version < first.version, `lower version taken (${first.version} -> ${s.version})`);
  assert.ok(tokens >= 2, `getToken called on every (re)connect (${tokens})`);
  const { id } = await insertSale(db, productId, { customer: `kit after restart ${process.pid}` });
  await until(c, hasSale(id), 5000, `sale ${id} after the restart`);
  console.log(`kit client: daemon restart, versions ${first.version} -> ${s.version}, getToken called ${tokens} times`);
  c.close();
});

test('daemon gone for good: reconnecting, then disconnected after 5 attempts; refresh() connects again', { timeout: 60000 }, async () => {
  const c = client(daemon.url, { socketOptions: { reconnectionDelay: 100, reconnectionDelayMax: 200 } });
  await until(c, (x) => x.status === 'connected' && x.data !== null, 10000, 'connected with data');
  const port = daemon.port;
  await daemon.stopClean();
  await until(c, (x) => x.status === 'reconnecting', 5000, 'reconnecting');
  const s = await until(c, (x) => x.status === 'disconnected', 20000, 'disconnected');
  assert.equal(s.reason, 'reconnect_failed');
  assert.notEqual(s.data, null, 'the last data is kept');
  daemon = await startDaemon({ db: pg.conninfo, listen: `127.0.0.1:${port}`, args: ['--refresh-interval', '300'] });
  const reply = await c.refresh();
  assert.ok(reply && (Number.isInteger(reply.version) || (reply.error && reply.error.code === 'not_ready')),
    `refresh() resolves the document (or not_ready from a daemon just started): ${JSON.stringify(reply).slice(0, 80)}`);
  await until(c, (x) => x.status === 'connected' && x.stats.connects === 2 && x.lastError === null, 10000, 'connected again');
  c.close();
});

// ------------------------------------------ patches and resume, live --

test('a sale arrives as a dashboardDataPatch and yields the document the server holds', async () => {
  const c = client(daemon.url);
  await until(c, (x) => x.status === 'connected' && x.data !== null, 10000, 'connected with data');
  const base = c.stats.patches;
  const { id } = await insertSale(db, productId, { customer: `kit patch ${process.pid}` });
  const s = await until(c, hasSale(id), 1000, `sale ${id} within 1 s`);
  assert.equal(s.stats.patches, base + 1, 'through a patch');
  assert.equal(s.stats.resyncs, 0);
  const full = await new Promise((resolve) => c.socket.emit('requestDashboardData', resolve));
  assert.deepEqual(s.data, full, 'the patched document is the server\'s');
  c.close();
});

test('resume: reconnecting with since = the current version gets nothing but the CONNECT reply', async () => {
  const c = client(daemon.url);
  await until(c, (x) => x.status === 'connected' && x.data !== null, 10000, 'connected with data');
  const events = [];
  c.socket.onAny((name) => events.push(name));
  const { updates } = c.stats;
  c.socket.io.engine.close();             // a transport loss: socket.io reconnects by itself
  await until(c, (x) => x.status === 'connected' && x.stats.connects === 2, 10000, 'reconnected');
  await sleep(500);
  assert.deepEqual(events, [], 'no document, no patch');
  assert.equal(c.stats.updates, updates);
  c.close();
});

test('resume: reconnecting with the previous version gets the patch', async () => {
  const c = client(daemon.url, { socketOptions: { reconnectionDelay: 1000 } });
  await until(c, (x) => x.status === 'connected' && x.data !== null, 10000, 'connected with data');
  c.socket.disconnect();
  const { id } = await insertSale(db, productId, { customer: `kit resume ${process.pid}` });
  await sleep(300);
  const { patches, updates } = c.stats;
  c.connect();
  await until(c, hasSale(id), 5000, `sale ${id} after the resume`);
  assert.equal(c.stats.patches, patches + 1);
  assert.equal(c.stats.updates, updates);
  c.close();
});

// ---------------------- patch and resync logic, scripted Socket.IO server --
//
// A socket.io server (the package the tests' reference server uses) plays
// the script below: the same client code runs unchanged; what it checks is
// the client's side of the protocol, including what pgpushd never sends.

test('scripted server: patches apply, a gap or a bad patch resynchronises, since is sent on reconnect', async () => {
  const { Server } = require('socket.io');
  const httpServer = http.createServer();
  const ioServer = new Server(httpServer);
  await new Promise((r) => httpServer.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${httpServer.address().port}`;
  let doc = { version: 1, generatedAt: 'g1', reason: 'startup', summary: { salesToday: 0 }, recentSales: [] };
  const auths = [];
  const requests = [];
  let sock;
  ioServer.on('connection', (s) => {
    sock = s;
    auths.push(s.handshake.auth);
    s.on('requestDashboardData', (ack) => { requests.push(doc.version); if (ack) ack(doc); });
    if (s.handshake.auth.since !== doc.version) s.emit('dashboardDataUpdate', doc);
  });
  const c = client(url);
  if (process.env.KIT_DEBUG) c.subscribe((x, ch) => console.log(JSON.stringify(ch), x.version, JSON.stringify(x.stats)));
  try {
    await until(c, (x) => x.version === 1, 5000, 'version 1');
    while (requests.length < 1) await sleep(10);   // the client's ask on connect, answered
    await sleep(50);
    // A good patch.
    const next = { ...doc, version: 2, generatedAt: 'g2', reason: 'notify:sales', summary: { salesToday: 1 }, recentSales: [{ id: 7 }] };
    sock.emit('dashboardDataPatch', { from: 1, to: 2, patch: [
      { op: 'replace', path: '/version', value: 2 }, { op: 'replace', path: '/generatedAt', value: 'g2' },
      { op: 'replace', path: '/reason', value: 'notify:sales' }, { op: 'replace', path: '/summary/salesToday', value: 1 },
      { op: 'add', path: '/recentSales/0', value: { id: 7 } }] });
    doc = next;
    let s = await until(c, (x) => x.version === 2, 5000, 'version 2 by patch');
    assert.deepEqual(s.data, next);
    assert.equal(s.stats.patches, 1);
    // A gap: from 5 while the client holds 2 -> requestDashboardData.
    doc = { ...doc, version: 6, recentSales: [{ id: 8 }, { id: 7 }] };
    const nreq = requests.length;
    sock.emit('dashboardDataPatch', { from: 5, to: 6, patch: [] });
    s = await until(c, (x) => x.version === 6, 5000, 'version 6 by resync');
    assert.equal(requests.length, nreq + 1, 'one requestDashboardData');
    assert.deepEqual(s.data, doc);
    assert.equal(s.stats.resyncs, 1);
    // A patch that fails half-way: nothing applied, resync.
    const held = s.data;
    doc = { ...doc, version: 7 };
    sock.emit('dashboardDataPatch', { from: 6, to: 7, patch: [
      { op: 'replace', path: '/version', value: 7 }, { op: 'remove', path: '/recentSales/5' }] });
    s = await until(c, (x) => x.version === 7, 5000, 'version 7 by resync');
    assert.equal(s.stats.patchFailures, 1);
    assert.equal(s.stats.resyncs, 2);
    assert.equal(held.version, 6, 'the document held was never modified');
    // A patch whose result is not version `to` is a failure too.
    doc = { ...doc, version: 8 };
    sock.emit('dashboardDataPatch', { from: 7, to: 8, patch: [{ op: 'replace', path: '/reason', value: 'x' }] });
    s = await until(c, (x) => x.version === 8, 5000, 'version 8 by resync');
    assert.equal(s.stats.patchFailures, 2);
    // An older full document is dropped.
    sock.emit('dashboardDataUpdate', { ...doc, version: 3 });
    await sleep(100);
    assert.equal(c.version, 8);
    // Reconnect: since = 8 is sent; the server has nothing newer and sends nothing.
    sock.disconnect();                    // 'io server disconnect': the client connects again by itself
    await until(c, (x) => x.stats.connects === 2 && x.status === 'connected', 5000, 'reconnected');
    assert.deepEqual(auths.map((a) => a.since), [undefined, 8]);
    assert.ok(auths.every((a) => a.deltas === true));
    // After a reconnect the first document is taken whatever its version.
    sock.disconnect();
    doc = { ...doc, version: 2, reason: 'restored' };
    s = await until(c, (x) => x.stats.connects === 3 && x.version === 2, 5000, 'the lower version after a reconnect');
    assert.equal(s.data.reason, 'restored');
    // Data errors: status error, data kept; a newer document clears it.
    sock.emit('dashboardDataError', { message: 'the database is unavailable', code: 'db_unavailable', retryInMs: 1000 });
    s = await until(c, (x) => x.status === 'error', 5000, 'error');
    assert.equal(s.reason, 'db_unavailable');
    assert.equal(s.data.version, 2);
    const again = await c.refresh();      // the ack repeats the document held: the error stays
    assert.equal(again.version, 2);
    assert.equal(c.status, 'error');
    sock.emit('dashboardDataUpdate', { ...doc, version: 3 });
    s = await until(c, (x) => x.status === 'connected', 5000, 'connected again');
    assert.equal(s.lastError, null);
  } finally {
    c.close();
    ioServer.close();
    httpServer.closeAllConnections?.();
  }
});

test('scripted server: a refused CONNECT (token_invalid) is status error; token_expired retries with a fresh token', async () => {
  const { Server } = require('socket.io');
  const httpServer = http.createServer();
  const ioServer = new Server(httpServer);
  await new Promise((r) => httpServer.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${httpServer.address().port}`;
  ioServer.use((s, next) => {
    const t = s.handshake.auth.token;
    if (t === 'bad') { const e = new Error('the token is not valid'); e.data = { code: 'token_invalid' }; return next(e); }
    if (t === 'old') { const e = new Error('the token has expired'); e.data = { code: 'token_expired' }; return next(e); }
    next();
  });
  ioServer.on('connection', (s) => s.emit('dashboardDataUpdate', { version: 1 }));
  try {
    const bad = client(url, { token: 'bad' });
    const s = await until(bad, (x) => x.status === 'error', 5000, 'refused');
    assert.equal(s.reason, 'token_invalid');
    assert.equal(s.lastError.kind, 'auth');
    bad.close();
    const tokens = ['old', 'fresh'];
    const c = client(url, { getToken: () => tokens.shift(), socketOptions: { reconnectionDelay: 50 } });
    const ok = await until(c, (x) => x.status === 'connected' && x.version === 1, 5000, 'connected with the fresh token');
    assert.equal(ok.lastError, null);
    c.close();
  } finally {
    ioServer.close();
  }
});
