// --permessage-deflate shared (issue 14) end to end, the daemon's side:
// stock socket.io-client over ws (perMessageDeflate on, ws's default offer),
// once straight over WebSocket and once long-polling first, then upgrading,
// a raw ws client offering server_max_window_bits=10, and a raw ws client
// insisting on server_no_context_takeover receive 100 consecutive snapshots,
// with requestDashboardData acks interleaved, and decode every one. Each
// document is checked against a client without compression (the same
// version, byte for byte for the raw clients) and the last one against the
// dashboard query itself. The compressed clients must also read far fewer
// bytes than the plain one. (Chromium, slow readers and mid-stream joins are
// in the pmdtest helper's tests.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitConnected, waitForUpdate, emitWithAck, rawEngineIO, seedShop,
  insertSale, closeClients,
} from '../lib/daemon.mjs';

const SALES = 100;
let pg, db, products, daemon;
const sockets = [];
const raws = [];

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  products = await seedShop(db, { products: 20 });
  for (let i = 0; i < 12; i++) await insertSale(db, products[i % products.length].id);
  daemon = await startDaemon({
    db: pg.conninfo,
    args: ['--refresh-interval', '300', '--min-refresh-interval', '1', '--permessage-deflate', 'shared'],
  });
});

after(async () => {
  closeClients(sockets);
  for (const r of raws) r.ws.terminate();
  try {
    if (daemon) await daemon.stopClean();
  } finally {
    if (pg) await pg.stop();
  }
});

/** The documents of a raw client's dashboardDataUpdate messages and acks, by version. */
function rawDocs(conn) {
  const byVersion = new Map();
  for (const m of conn.messages) {
    if (typeof m !== 'string') continue;
    let text = null;
    if (m.startsWith('42["dashboardDataUpdate",')) text = m.slice('42["dashboardDataUpdate",'.length, -1);
    else if (/^43\d+\[/.test(m)) text = m.slice(m.indexOf('[') + 1, -1);
    if (text === null) continue;
    const v = JSON.parse(text).version;
    const seen = byVersion.get(v);
    if (seen !== undefined) assert.equal(text, seen, `version ${v} read twice with different text`);
    byVersion.set(v, text);
  }
  return byVersion;
}

/** The permessage-deflate parameters ws accepted from the server's response, or null. */
function pmdParams(ws) {
  const ext = ws._extensions && ws._extensions['permessage-deflate'];
  return ext ? ext.params : null;
}

function bytesRead(ws) {
  return ws._socket.bytesRead;
}

test('shared mode: 100 snapshots decode byte for byte at every kind of client, acks interleaved', async () => {
  const url = `http://127.0.0.1:${daemon.port}`;
  const stock = connectClient(url); // engine.io-client's default: perMessageDeflate offered
  sockets.push(stock);
  await waitConnected(stock);
  const first = await waitForUpdate(stock, () => true, 10000);
  const stockWs = stock.io.engine.transport.ws;
  assert.ok(pmdParams(stockWs), 'the stock client negotiated compression');
  assert.ok(!pmdParams(stockWs).server_no_context_takeover, 'with server context takeover');

  // The seed's stock options: long-polling first, then the upgrade (what
  // was queued for polling is replayed over the WebSocket).
  const upgrading = connectClient(url, { transports: ['polling', 'websocket'] });
  sockets.push(upgrading);
  await waitConnected(upgrading);
  await emitWithAck(upgrading, 'requestDashboardData');

  const plain = await rawEngineIO(daemon.port, { wsOptions: { perMessageDeflate: false } });
  const small = await rawEngineIO(daemon.port, { wsOptions: { perMessageDeflate: { serverMaxWindowBits: 10 } } });
  const alone = await rawEngineIO(daemon.port, { wsOptions: { perMessageDeflate: { serverNoContextTakeover: true } } });
  raws.push(plain, small, alone);
  assert.equal(pmdParams(plain.ws), null);
  assert.equal(pmdParams(small.ws).server_max_window_bits, 10);
  assert.equal(pmdParams(alone.ws).server_no_context_takeover, true);

  const v0 = first.data.version;
  const start = { stock: bytesRead(stockWs), plain: bytesRead(plain.ws), small: bytesRead(small.ws) };
  let last = v0;
  for (let i = 0; i < SALES; i++) {
    await insertSale(db, products[i % products.length].id);
    const u = await waitForUpdate(stock, (d) => d.version > last, 10000);
    last = u.data.version;
    if (i % 9 === 4) {
      // An ack carrying the document between two updates (a compressed
      // ack recorded as a suffix of the snapshot's payload).
      const doc = await emitWithAck(stock, 'requestDashboardData');
      assert.ok(doc.version >= last, 'the ack carries the current document');
      small.ws.send(`42${99 + i}["requestDashboardData"]`);
      alone.ws.send(`42${99 + i}["requestDashboardData"]`);
    }
  }
  // Every raw client has the last version.
  const deadline = Date.now() + 10000;
  for (const c of [plain, small, alone]) {
    while (!rawDocs(c).has(last)) {
      assert.ok(Date.now() < deadline, 'a raw client never got the last version');
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const reference = rawDocs(plain);
  for (const [name, c] of [['window 2^10', small], ['server_no_context_takeover', alone]]) {
    const docs = rawDocs(c);
    let n = 0;
    for (const [v, text] of docs) {
      if (v <= v0) continue;
      assert.ok(reference.has(v), `${name}: version ${v} unknown to the plain client`);
      assert.equal(text, reference.get(v), `${name}: version ${v} differs from the plain text`);
      n++;
    }
    assert.ok(n >= SALES / 2, `${name}: ${n} versions compared`);
  }
  await waitForUpdate(upgrading, (d) => d.version === last, 10000);
  assert.equal(upgrading.io.engine.transport.name, 'websocket', 'the polling client upgraded');
  assert.ok(pmdParams(upgrading.io.engine.transport.ws), 'and negotiated compression');
  for (const [name, sock] of [['stock', stock], ['upgraded', upgrading]]) {
    let n = 0;
    for (const u of sock.rec.updates) {
      if (u.data.version <= v0) continue;
      assert.ok(reference.has(u.data.version), `${name}: version ${u.data.version} unknown to the plain client`);
      assert.deepEqual(u.data, JSON.parse(reference.get(u.data.version)), `${name}: version ${u.data.version}`);
      n++;
    }
    assert.ok(n >= SALES / 2, `${name} client compared ${n} versions`);
  }

  // The last document is what the query returns now (the daemon's own keys aside).
  const r = await db.query('SELECT pgpush.dashboard()::text AS doc');
  const want = JSON.parse(r.rows[0].doc);
  const got = JSON.parse(reference.get(last));
  for (const k of ['version', 'generatedAt', 'reason']) delete got[k];
  for (const k of ['generatedAt']) delete want[k];
  assert.deepEqual(got, want, 'the last document is the query result');

  // Far fewer bytes than plain, and than a frame compressed on its own.
  const per = (now, then) => (now - then) / SALES;
  const plainPer = per(bytesRead(plain.ws), start.plain);
  const stockPer = per(bytesRead(stockWs), start.stock);
  const smallPer = per(bytesRead(small.ws), start.small);
  const line = daemon.grep(/recompute done .*compressed=/).slice(-1)[0];
  const standalone = Number(line.match(/compressed=(\d+)/)[1]);
  console.log(`# bytes per snapshot: plain ${plainPer.toFixed(0)}, standalone frame ${standalone}, ` +
    `shared ${stockPer.toFixed(0)}, shared at 2^10 ${smallPer.toFixed(0)}`);
  assert.ok(stockPer < standalone / 2, `shared ${stockPer} B per snapshot vs standalone ${standalone} B`);
  assert.ok(smallPer < plainPer, `shared at 2^10: ${smallPer} B vs plain ${plainPer} B`);
});
