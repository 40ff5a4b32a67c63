// Events: the initial snapshot on connect, requestDashboardData with and
// without an ack, and an INSERT reaching every connected client (with the
// commit-to-client latency).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitConnected, waitForUpdate, emitWithAck, seedShop, insertSale,
  summarize, recomputeLines, closeClients, now,
} from '../lib/daemon.mjs';

const ISO_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|\+00:00)$/;
const DOC_FIELDS = ['summary', 'recentSales', 'salesByDay', 'stockPredictions', 'lowStock'];

let pg, db, products, daemon, spawnedAt;
const sockets = [];
const client = (opts) => { const s = connectClient(daemon.url, opts); sockets.push(s); return s; };

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  products = await seedShop(db, { products: 3 });
  spawnedAt = Date.now();
  // A long fallback interval: every update below has a reason we caused.
  daemon = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300'] });
});

after(async () => {
  closeClients(sockets);
  try {
    if (daemon) await daemon.stopClean();
  } finally {
    if (pg) await pg.stop();
  }
});

function assertSnapshot(doc, what) {
  assert.ok(doc && typeof doc === 'object' && !Array.isArray(doc), `${what}: an object`);
  assert.ok(Number.isSafeInteger(doc.version), `${what}: integer version, got ${doc.version}`);
  assert.match(String(doc.generatedAt), ISO_MS_UTC, `${what}: generatedAt ISO 8601 UTC with ms`);
  assert.equal(typeof doc.reason, 'string', `${what}: reason`);
  assert.match(doc.reason, /^(startup|reconnect|timer|notify:[a-z_.,]+)$/, `${what}: reason value`);
  for (const f of DOC_FIELDS) assert.ok(f in doc, `${what}: document field ${f}`);
}

test('connect: the initial dashboardDataUpdate carries version, generatedAt, reason', { timeout: 30000 }, async () => {
  const t0 = now();
  const s = client();
  await waitConnected(s);
  const tConnect = now() - t0;
  const { data, t } = await waitForUpdate(s, () => true, 10000);
  assertSnapshot(data, 'first update');
  // version starts from the Unix time in ms when the daemon started (docs/protocol.md).
  assert.ok(data.version >= spawnedAt - 1000 && data.version <= Date.now(),
    `version ${data.version} should be the daemon's start time in ms (spawned at ${spawnedAt})`);
  assert.equal(data.reason, 'startup', 'the only snapshot so far comes from start-up');
  const gen = Date.parse(data.generatedAt);
  assert.ok(Math.abs(gen - Date.now()) < 10000, `generatedAt ${data.generatedAt} is now-ish`);

  // A client that connects once a snapshot exists gets it at once, without a recompute.
  // (The log pipe may lag the WebSocket: wait until the start-up recompute is logged.)
  await daemon.waitForLog(/recompute.*reason=startup/, 5000);
  const mark = daemon.mark();
  const t1 = now();
  const s2 = client();
  const second = await waitForUpdate(s2, () => true, 5000);
  const tSecond = second.t - t1;
  assert.equal(second.data.version, data.version, 'a late joiner gets the cached snapshot');
  assert.equal(recomputeLines(daemon, mark).length, 0, 'connecting does not recompute');
  console.log(`initial snapshot: connect ${tConnect.toFixed(1)} ms, first update ${(t - t0).toFixed(1)} ms after io(); ` +
    `late joiner got the cached snapshot ${tSecond.toFixed(1)} ms after io(); version=${data.version} reason=${data.reason} ` +
    `size=${JSON.stringify(data).length} bytes`);
  s.close(); s2.close();
});

test('requestDashboardData with an ack returns the document', { timeout: 30000 }, async () => {
  const s = client();
  const { data: initial } = await waitForUpdate(s, () => true, 10000);
  const mark = daemon.mark();
  const t0 = now();
  const doc = await emitWithAck(s, 'requestDashboardData', 5000);
  const ms = now() - t0;
  assertSnapshot(doc, 'ack');
  assert.equal(doc.version, initial.version, 'the ack carries the current snapshot');
  assert.deepEqual(doc, initial, 'the ack carries the same document as the update');
  // Many requests: still answered from the cache.
  const t1 = now();
  const docs = await Promise.all(Array.from({ length: 50 }, () => emitWithAck(s, 'requestDashboardData', 5000)));
  const ms50 = now() - t1;
  for (const d of docs) assert.equal(d.version, initial.version);
  assert.equal(recomputeLines(daemon, mark).length, 0, 'requests never query the database');
  console.log(`requestDashboardData ack round trip: ${ms.toFixed(1)} ms; 50 concurrent acks in ${ms50.toFixed(1)} ms, 0 recomputes`);
  s.close();
});

test('requestDashboardData without an ack updates that client only', { timeout: 30000 }, async () => {
  const a = client();
  const b = client();
  await Promise.all([waitForUpdate(a, () => true, 10000), waitForUpdate(b, () => true, 10000)]);
  const aBefore = a.rec.updates.length;
  const bBefore = b.rec.updates.length;
  const t0 = now();
  a.emit('requestDashboardData');
  const got = await waitForUpdate(a, () => true, 5000, { since: aBefore });
  const ms = got.t - t0;
  assertSnapshot(got.data, 'reply without ack');
  // Barrier: b's own ack round trip starts after a already received its
  // reply, so anything wrongly broadcast to b was queued before b's ack.
  await emitWithAck(b, 'requestDashboardData', 5000);
  assert.equal(b.rec.updates.length, bBefore, 'the other client got no dashboardDataUpdate');
  assert.equal(a.rec.updates.length, aBefore + 1, 'the requester got exactly one update');
  console.log(`requestDashboardData without ack: update to the requester after ${ms.toFixed(1)} ms; other client received 0`);
  a.close(); b.close();
});

test('INSERT a sale: every connected client gets it as recentSales[0]', { timeout: 60000 }, async () => {
  const N = 5;
  const clients = Array.from({ length: N }, () => client());
  await Promise.all(clients.map((s) => waitForUpdate(s, () => true, 10000)));

  const latencies = []; // from just after COMMIT returned
  const fromDb = []; // from the server's clock_timestamp() at the INSERT
  const perSale = [];
  for (let round = 0; round < 5; round++) {
    const marks = clients.map((s) => s.rec.updates.length);
    const logMark = daemon.mark();
    const sale = await insertSale(db, products[round % products.length].id, { quantity: 2, unitPrice: '12.50' });
    const got = await Promise.all(clients.map((s, i) =>
      waitForUpdate(s, (d) => d.recentSales && d.recentSales[0] && Number(d.recentSales[0].id) === sale.id, 5000,
        { since: marks[i] })));
    const lat = got.map((g) => g.t - sale.committedAt);
    latencies.push(...lat);
    fromDb.push(...got.map((g) => g.t - sale.dbAt));
    const first = got[0].data;
    assert.match(first.reason, /^notify:.*\bsales\b/, `reason names the table, got ${first.reason}`);
    for (const g of got) assert.equal(g.data.version, first.version, 'all clients got the same snapshot');
    const rs = first.recentSales[0];
    assert.equal(rs.quantity, 2);
    assert.equal(Number(rs.amount), 25);
    assert.equal(rs.productId, products[round % products.length].id);
    await daemon.waitForLog(/recompute.*reason=notify/, 1000, { since: logMark }).catch(() => null);
    const rc = recomputeLines(daemon, logMark);
    perSale.push(`sale ${sale.id}: ${summarize(lat).min}-${summarize(lat).max} ms` +
      (rc.length && rc[0].ms !== null ? ` (query ${rc[0].ms} ms)` : ''));
  }
  const st = summarize(latencies);
  const sd = summarize(fromDb);
  console.log(`commit-to-client latency over ${N} clients x 5 sales (from COMMIT returning to the test): ` +
    `min ${st.min} ms, p50 ${st.p50} ms, p95 ${st.p95} ms, max ${st.max} ms`);
  console.log(`  from the INSERT's clock_timestamp() on the server: p50 ${sd.p50} ms, max ${sd.max} ms`);
  console.log(`  per sale: ${perSale.join('; ')}`);
  assert.ok(sd.max < 2000, `latency should be milliseconds plus the query time, max was ${sd.max} ms`);
  for (const s of clients) {
    assert.equal(s.rec.disconnects.length, 0, 'no client was disconnected');
    s.close();
  }
});
