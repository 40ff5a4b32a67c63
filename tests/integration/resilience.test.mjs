// Losing the database (listener killed, PostgreSQL restarted, a real outage)
// and losing the daemon (restarted on the same port).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitConnected, waitForUpdate, waitForError, emitWithAck, nextEvent,
  seedShop, insertSale, closeClients, now, sleep,
} from '../lib/daemon.mjs';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
let pg, products, daemon;
let clients = [];

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  const db = await pg.client();
  products = await seedShop(db, { products: 3 });
  await db.end();
  daemon = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300'] });
  clients = Array.from({ length: 3 }, () => connectClient(daemon.url));
  await Promise.all(clients.map((s) => waitForUpdate(s, () => true, 10000)));
});

after(async () => {
  closeClients(clients);
  try {
    if (daemon) await daemon.stopClean();
  } finally {
    if (pg) await pg.stop();
  }
});

const hasSale = (id) => (d) => d.recentSales && d.recentSales.some((x) => Number(x.id) === id);

function assertStillConnected(what) {
  for (const s of clients) {
    assert.ok(s.connected, `${what}: client still connected`);
    assert.deepEqual(s.rec.disconnects, [], `${what}: no disconnect event`);
    assert.equal(s.rec.connects, 1, `${what}: never reconnected`);
  }
}

/** Insert one sale on a fresh connection (the old ones may be dead). */
async function saleNow(productId) {
  const c = await pg.client();
  try { return await insertSale(c, productId); } finally { await c.end(); }
}

test('the daemon names its connections (application_name)', async () => {
  const names = (await pg.psql(
    "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'pgpushd%' ORDER BY 1")).trim().split('\n');
  console.log(`daemon backends: ${names.join(', ')}`);
  assert.deepEqual(names, ['pgpushd-listener', 'pgpushd-query']);
});

test('listener backend killed: clients stay connected and get fresh data, incl. a sale made meanwhile', { timeout: 60000 }, async () => {
  const marks = clients.map((s) => s.rec.updates.length);
  const t0 = now();
  // pg_terminate_backend(pid, timeout) waits until the backend is gone.
  // MATERIALIZED: the planner must not evaluate pg_terminate_backend() on rows
  // before the application_name filter (it would kill every backend).
  const killed = (await pg.psql(
    `WITH l AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE application_name = 'pgpushd-listener')
     SELECT pid FROM l WHERE pg_terminate_backend(pid, 5000)`)).trim();
  assert.match(killed, /^\d+$/, 'exactly one listener backend terminated');
  // The notification of this sale reaches no listener (unless the daemon
  // already listens again; either way the data must show it).
  const sale = await saleNow(products[0].id);
  const got = await Promise.all(clients.map((s, i) => waitForUpdate(s, hasSale(sale.id), 20000, { since: marks[i] })));
  // Every reconnect recomputes, whether or not a notification came in.
  await Promise.all(clients.map((s, i) => waitForUpdate(s, (d) => d.reason === 'reconnect', 20000, { since: marks[i] })));
  const newPid = (await pg.psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'pgpushd-listener'")).trim();
  assert.match(newPid, /^\d+$/, 'one listener again');
  assert.notEqual(newPid, killed);
  const errs = clients.map((s) => s.rec.errors.length);
  console.log(`listener ${killed} killed: fresh data with sale ${sale.id} after ${(got[0].t - t0).toFixed(0)} ms ` +
    `(reason ${got[0].data.reason}); new listener ${newPid}; dashboardDataError events per client: ${errs.join(',')}`);
  for (const [i, s] of clients.entries()) {
    assert.ok(errs[i] >= 1, 'losing the listener is reported as dashboardDataError');
    for (const e of s.rec.errors) assert.equal(e.data.code, 'db_unavailable');
  }
  assertStillConnected('after the listener was killed');
});

test('pg_ctl restart: clients stay connected and get fresh data, incl. a sale made right after', { timeout: 60000 }, async () => {
  const marks = clients.map((s) => s.rec.updates.length);
  const errMarks = clients.map((s) => s.rec.errors.length);
  const t0 = now();
  await pg.restart();
  const tUp = now();
  const sale = await saleNow(products[1].id);
  const got = await Promise.all(clients.map((s, i) => waitForUpdate(s, hasSale(sale.id), 30000, { since: marks[i] })));
  await Promise.all(clients.map((s, i) => waitForUpdate(s, (d) => d.reason === 'reconnect', 30000, { since: marks[i] })));
  const errs = clients.map((s, i) => s.rec.errors.length - errMarks[i]);
  console.log(`pg_ctl restart took ${(tUp - t0).toFixed(0)} ms; fresh data with sale ${sale.id} ` +
    `${(got[0].t - tUp).toFixed(0)} ms after the server was back (reason ${got[0].data.reason}); ` +
    `dashboardDataError events per client during the restart: ${errs.join(',')}`);
  for (const [i, s] of clients.entries()) {
    assert.ok(errs[i] >= 1, 'the restart is reported as dashboardDataError');
    for (const e of s.rec.errors.slice(errMarks[i])) assert.equal(e.data.code, 'db_unavailable');
  }
  assertStillConnected('after pg_ctl restart');
});

test('database outage: dashboardDataError while down, last snapshot kept, fresh data after', { timeout: 90000 }, async () => {
  const marks = clients.map((s) => s.rec.updates.length);
  const errMarks = clients.map((s) => s.rec.errors.length);
  const lastGood = clients[0].rec.updates[clients[0].rec.updates.length - 1].data;
  const t0 = now();
  await pg.stopServer();
  const tDown = now();
  const errs = await Promise.all(clients.map((s, i) => waitForError(s, () => true, 10000, { since: errMarks[i] })));
  const e = errs[0].data;
  console.log(`server stopped (${(tDown - t0).toFixed(0)} ms); first dashboardDataError ${(errs[0].t - t0).toFixed(0)} ms after the stop began: ${JSON.stringify(e)}`);
  for (const { data } of errs) {
    assert.equal(data.code, 'db_unavailable');
    assert.equal(typeof data.message, 'string');
    assert.ok(data.message.length > 0);
    assert.match(String(data.since), ISO, 'since is an ISO time');
    assert.match(String(data.nextAttemptAt), ISO, 'nextAttemptAt is an ISO time');
    assert.ok(Number.isInteger(data.retryInMs) && data.retryInMs >= 0, 'retryInMs is a non-negative integer');
  }
  // The cache survives: an ack still returns the last good snapshot.
  const cached = await emitWithAck(clients[1], 'requestDashboardData', 5000);
  assert.equal(cached.version, lastGood.version, 'the last good snapshot is kept during the outage');
  assert.deepEqual(cached.recentSales, lastGood.recentSales);

  // Keep the outage going for ~2.5 s in all (the daemon keeps retrying).
  const remaining = 2500 - (now() - tDown);
  if (remaining > 0) await sleep(remaining);
  const errCounts = clients.map((s, i) => s.rec.errors.length - errMarks[i]);
  assert.equal(clients[0].rec.updates.length, marks[0], 'no dashboardDataUpdate while the database is down');

  await pg.startServer();
  const tUp = now();
  const c = await pg.client();
  const sale = await insertSale(c, products[2].id);
  const daemonBack = Number((await c.query(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'pgpushd-listener'")).rows[0].n);
  await c.end();
  const got = await Promise.all(clients.map((s, i) => waitForUpdate(s, hasSale(sale.id), 60000, { since: marks[i] })));
  console.log(`outage ${(tUp - tDown).toFixed(0)} ms, dashboardDataError events per client ${errCounts.join(',')}; ` +
    `sale ${sale.id} committed ${(sale.committedAt - tUp).toFixed(0)} ms after restart with the daemon ` +
    `${daemonBack ? 'already listening' : 'still disconnected'}; fresh data ${(got[0].t - tUp).toFixed(0)} ms after ` +
    `the server was back (reason ${got[0].data.reason}, version ${lastGood.version} -> ${got[0].data.version})`);
  for (const g of got) assert.ok(g.data.version > lastGood.version, 'a newer version');
  assertStillConnected('after the outage');
});

test('daemon restarted on the same port: clients reconnect on their own and get data', { timeout: 60000 }, async () => {
  const port = daemon.port;
  const lastVersion = clients[0].rec.updates[clients[0].rec.updates.length - 1].data.version;
  const marks = clients.map((s) => s.rec.updates.length);
  const disconnected = Promise.all(clients.map((s) => nextEvent(s, 'disconnect', 5000)));
  const st = await daemon.stop('SIGTERM');
  const reasons = await disconnected;
  assert.equal(st.code, 0, `exit status after SIGTERM\n${daemon.logTail()}`);
  assert.deepEqual(daemon.sanitizerReport(), [], 'no sanitizer report from the first daemon');
  for (const r of reasons) {
    assert.equal(r, 'transport close', 'a transport close, so that the client reconnects (not "io server disconnect")');
  }
  const tStop = now();
  daemon = await startDaemon({ db: pg.conninfo, args: ['--listen', `127.0.0.1:${port}`, '--refresh-interval', '300'] });
  assert.equal(daemon.port, port);
  const tStart = now() - tStop;
  await Promise.all(clients.map((s) => waitConnected(s, 15000)));
  const got = await Promise.all(clients.map((s, i) => waitForUpdate(s, () => true, 15000, { since: marks[i] })));
  console.log(`daemon stopped in ${st.ms} ms, new daemon on port ${port} up after ${tStart.toFixed(0)} ms; ` +
    `clients reconnected and had data ${got.map((g) => (g.t - tStop).toFixed(0)).join(', ')} ms after the stop ` +
    `(version ${lastVersion} -> ${got[0].data.version})`);
  for (const g of got) assert.ok(g.data.version > lastVersion, 'versions keep growing across daemon restarts');
  for (const s of clients) assert.equal(s.rec.connects, 2, 'one reconnection per client');
});
