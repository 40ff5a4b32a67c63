// Fan-out: 200 concurrent socket.io-client connections all receive every update.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitConnected, waitForUpdate, seedShop, insertSale, summarize,
  recomputeLines, closeClients, rawEngineIO, now,
} from '../lib/daemon.mjs';

const N = 200;
let pg, db, products, daemon;
let clients = [];

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  products = await seedShop(db, { products: 3 });
  daemon = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300', '--max-clients', '1000'] });
});

after(async () => {
  closeClients(clients);
  try {
    if (daemon) await daemon.stopClean();
  } finally {
    if (pg) await pg.stop();
  }
});

const topId = (d) => (d.recentSales && d.recentSales[0] ? Number(d.recentSales[0].id) : null);

test(`${N} concurrent clients all receive every update`, { timeout: 90000 }, async () => {
  const t0 = now();
  clients = Array.from({ length: N }, () => connectClient(daemon.url));
  await Promise.all(clients.map((s) => waitConnected(s, 20000)));
  const tConn = now() - t0;
  const initial = await Promise.all(clients.map((s) => waitForUpdate(s, () => true, 20000)));
  const tInit = now() - t0;
  const v0 = initial[0].data.version;
  for (const g of initial) assert.equal(g.data.version, v0, 'every client got the same initial snapshot');
  const sids = new Set(clients.map((s) => s.id));
  assert.equal(sids.size, N, 'every client has its own socket id');
  console.log(`${N} clients: all connected after ${tConn.toFixed(0)} ms, all had the initial snapshot after ${tInit.toFixed(0)} ms`);

  // 1) Three sales, each awaited by everybody: every client sees every one.
  const logMark = daemon.mark();
  const rounds = [];
  for (let i = 0; i < 3; i++) {
    const marks = clients.map((s) => s.rec.updates.length);
    const sale = await insertSale(db, products[i].id);
    const got = await Promise.all(clients.map((s, k) =>
      waitForUpdate(s, (d) => topId(d) === sale.id, 10000, { since: marks[k] })));
    // From the moment the INSERT was sent: with 200 sockets in this process the
    // reply to the INSERT may be read after the updates themselves.
    const lat = got.map((g) => g.t - sale.sentAt);
    const versions = new Set(got.map((g) => g.data.version));
    assert.equal(versions.size, 1, 'one snapshot, shared by all clients');
    rounds.push({ id: sale.id, ...summarize(lat) });
  }
  for (const r of rounds) {
    console.log(`  sale ${r.id}: INSERT sent to client p50 ${r.p50} ms, p95 ${r.p95} ms, last of ${N} clients ${r.max} ms`);
  }
  const rc = recomputeLines(daemon, logMark);
  if (rc.length) console.log(`  recomputes logged for the 3 sales: ${rc.length}`);

  // 2) Three sales back to back: coalescing may merge them, but no client
  // misses the latest and no client ever goes back to an older snapshot.
  const marks = clients.map((s) => s.rec.updates.length);
  const t1 = now();
  const burst = [];
  for (let i = 0; i < 3; i++) burst.push(await insertSale(db, products[i].id));
  const lastId = burst[2].id;
  const got = await Promise.all(clients.map((s, k) =>
    waitForUpdate(s, (d) => topId(d) === lastId, 10000, { since: marks[k] })));
  const lat = summarize(got.map((g) => g.t - burst[2].sentAt));
  const seen = clients.map((s, k) => s.rec.updates.slice(marks[k]).map((u) => u.data));
  let sawAll = 0;
  for (const list of seen) {
    for (let i = 1; i < list.length; i++) {
      assert.ok(list[i].version > list[i - 1].version, 'versions only grow on every client');
    }
    const ids = new Set(list.flatMap((d) => d.recentSales.map((x) => Number(x.id))));
    if (burst.every((b) => ids.has(b.id))) sawAll++;
    assert.equal(topId(list[list.length - 1]), lastId, 'the last snapshot a client holds has the latest sale');
  }
  const snapshots = seen.map((l) => l.length);
  console.log(`  3 sales back to back (${(now() - t1).toFixed(0)} ms): every client has the last one; ` +
    `snapshots per client min ${Math.min(...snapshots)} max ${Math.max(...snapshots)}; ` +
    `${sawAll}/${N} saw all 3 ids; latest reached the last client ${lat.max} ms after the INSERT was sent (p50 ${lat.p50} ms)`);
  assert.equal(sawAll, N, 'every client saw all three sales in its recentSales');

  for (const s of clients) assert.equal(s.rec.disconnects.length, 0, 'no client was disconnected');
});

test('a client that stops reading does not stall the others', { timeout: 60000 }, async () => {
  // A ~200 KB document so that the stalled socket's buffers fill up quickly.
  const d = await startDaemon({
    db: pg.conninfo,
    args: ['--refresh-interval', '300', '--max-pending-bytes', '2000000',
      '--query', "SELECT pgpush.dashboard()::jsonb || jsonb_build_object('pad', repeat('x', 200000))"],
  });
  let stalled;
  const observers = [];
  try {
    stalled = await rawEngineIO(d.port);
    const first = await stalled.next(10000);
    assert.ok(String(first).startsWith('42["dashboardDataUpdate"'), 'the stalled client got the first snapshot');
    stalled.ws._socket.pause(); // stop reading: the kernel buffers fill, then the daemon's queue
    for (let i = 0; i < 3; i++) observers.push(connectClient(d.url));
    await Promise.all(observers.map((s) => waitForUpdate(s, () => true, 10000)));
    const lat = [];
    const ROUNDS = 40;
    for (let i = 0; i < ROUNDS; i++) {
      const marks = observers.map((s) => s.rec.updates.length);
      const sale = await insertSale(db, products[0].id);
      const got = await Promise.all(observers.map((s, k) =>
        waitForUpdate(s, (x) => topId(x) === sale.id, 5000, { since: marks[k] })));
      lat.push(...got.map((g) => g.t - sale.sentAt));
    }
    const st = summarize(lat);
    const dropped = stalled.closeInfo !== null || d.grep(/pending|slow|drop/i).length > 0;
    console.log(`stalled reader + 3 observers, ${ROUNDS} x ~200 KB snapshots: observers INSERT-to-client p50 ${st.p50} ms, ` +
      `max ${st.max} ms; stalled client ${dropped ? 'dropped' : 'still connected'}` +
      `${d.grep(/pending|slow|drop/i).slice(0, 1).map((l) => ` (log: ${l})`).join('')}`);
    for (const s of observers) assert.deepEqual(s.rec.disconnects, [], 'observers never disconnected');
    assert.equal(d.exited, null, 'daemon alive');
  } finally {
    closeClients(observers);
    if (stalled) stalled.ws.terminate();
    await d.stopClean('the big-document daemon');
  }
});
