// Several pgpushd instances behind haproxy (issue 12): the recipe
// contrib/haproxy/haproxy.cfg itself, run by a real haproxy (Debian's, as
// the current user, on free ports, never the system service) in front of 3
// instances; a primary and a streaming replica that the instances query
// (--query-db).
//   - clients through haproxy over both transports (WebSocket alone, and
//     long-polling kept on its instance by the recipe's cookie) land on
//     every instance and get every sale;
//   - without the cookie a poll that reaches another instance is refused
//     ("Session ID unknown"): why the recipe has it;
//   - a burst of 200 sales costs one recompute per coalesced batch for the
//     whole cluster: the followers recompute nothing;
//   - kill -9 of the leader: the next sale reaches every surviving client
//     within 2 s, haproxy marks the instance down, and its clients come
//     back through haproxy and resume by version;
//   - a follower killed: its clients resume with nothing sent when nothing
//     changed;
//   - no client ever sees a version go backwards.
// haproxy: $HAPROXY, else haproxy on PATH or /usr/sbin/haproxy (quickstart
// installs the package); skipped, saying why, without it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { startCluster } from '../lib/pgcluster.mjs';
import { findHaproxy, startHaproxy } from '../lib/haproxy.mjs';
import {
  startDaemon, seedShop, insertSale, connectClient, waitConnected, closeClients, sleep, rawRequest,
} from '../lib/daemon.mjs';
import { applyPatch } from '../../contrib/client/src/pgpush-client.js';

const N = 3;
const PER_TRANSPORT = 6; // clients per transport: two per instance on average

const haproxy = findHaproxy();

let pg, db, products, replica = null, lb = null;
const daemons = [];
const sockets = [];
const cleanups = [];

function get(port, p, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers: { connection: 'close', ...headers }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${p} timed out`)));
    req.on('error', reject);
  });
}

/** pgpushd's /metrics as { name: value }, a labelled series summed over its labels. */
async function metrics(d) {
  const out = {};
  for (const l of (await get(d.port, '/metrics')).body.split('\n')) {
    const m = /^(pgpush_[a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(l);
    if (m && !/_bucket$/.test(m[1])) out[m[1]] = (out[m[1]] || 0) + Number(m[2]);
  }
  return out;
}
const alive = () => daemons.filter((d) => !d.exited);
const hasCluster = async () => 'pgpush_cluster_leader' in await metrics(alive()[0]);

/** The instance whose pgpush_cluster_leader is 1 (waits up to timeoutMs). */
async function leader(timeoutMs = 10000) {
  const t0 = Date.now();
  for (;;) {
    for (const d of alive()) if ((await metrics(d)).pgpush_cluster_leader === 1) return d;
    if (Date.now() - t0 > timeoutMs) throw new Error('no leader among the instances');
    await sleep(100);
  }
}

async function waitStates(pred, timeoutMs, what) {
  const t0 = Date.now();
  let st;
  for (;;) {
    st = await lb.serverStates();
    if (pred(st)) return { st, ms: Date.now() - t0 };
    if (Date.now() - t0 > timeoutMs) throw new Error(`haproxy: ${what} not reached in ${timeoutMs} ms: ${JSON.stringify(st)}`);
    await sleep(100);
  }
}

before(async () => {
  if (!haproxy.bin) return;
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'], settings: { wal_level: 'replica', max_wal_senders: 5 } });
  db = await pg.client();
  products = await seedShop(db, { products: 2 });
  const args = ['--refresh-interval', '300', '--trusted-proxy', '127.0.0.1/32', '--log-level', 'info'];
  replica = await pg.startReplica();
  args.push('--query-db', replica.conninfo);
  for (let k = 0; k < N; k++) daemons.push(await startDaemon({ db: pg.conninfo, args }));
  lb = await startHaproxy(haproxy.bin, daemons.map((d) => d.port));
  cleanups.push(() => lb.stop());
});

after(async () => {
  closeClients(sockets);
  for (const c of cleanups.reverse()) await c();
  for (const d of daemons) if (!d.exited) await d.stopClean();
  if (db) await db.end().catch(() => {});
  if (replica && replica.stop) await replica.stop();
  if (pg) await pg.stop();
});

/**
 * A socket.io-client through haproxy that opts in to patches and resumes by
 * version: auth is asked again on every (re)connect, with the version held.
 * Records every version it is brought to (s.seen) and, per sale id, when it
 * first showed (s.saleAt).
 */
function lbClient(transport) {
  const s = connectClient(lb.url, {
    transports: [transport],
    withCredentials: true, // the cookie jar: haproxy's stickiness cookie for polling
    reconnectionAttempts: 30,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    auth: (cb) => cb(s.doc ? { deltas: true, since: s.doc.version } : { deltas: true }),
  });
  Object.assign(s, { transport, doc: null, seen: [], saleAt: new Map(), mismatches: [] });
  const took = (doc, kind, t) => {
    s.doc = doc;
    s.seen.push({ v: doc.version, kind, t, connect: s.rec.connects });
    for (const x of doc.recentSales || []) if (!s.saleAt.has(x.id)) s.saleAt.set(x.id, t);
  };
  s.on('dashboardDataUpdate', (doc) => took(doc, 'full', performance.now()));
  s.on('dashboardDataPatch', (p) => {
    if (!s.doc || p.from !== s.doc.version) { s.mismatches.push({ from: p.from, held: s.doc && s.doc.version }); return; }
    took(applyPatch(s.doc, p.patch), 'patch', performance.now());
  });
  sockets.push(s);
  return s;
}

/** The instance index a connected client is on: the instance's log names its sid. */
async function instanceOf(s) {
  const sid = s.io.engine.id;
  const re = new RegExp(`client connected sid=${sid} transport=(\\w+)`);
  for (let k = 0; k < 50; k++) {
    for (let i = 0; i < daemons.length; i++) {
      const m = daemons[i].grep(re);
      if (m.length) return i;
    }
    await sleep(50);
  }
  throw new Error(`no instance logged sid ${sid}`);
}

async function waitSale(clients, id, timeoutMs = 10000) {
  const t0 = Date.now();
  for (;;) {
    const missing = clients.filter((s) => !s.saleAt.has(id));
    if (!missing.length) return clients.map((s) => s.saleAt.get(id));
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`sale ${id} did not reach ${missing.length}/${clients.length} clients in ${timeoutMs} ms ` +
        `(${missing.map((s) => `${s.transport} v${s.doc && s.doc.version} connected=${s.connected}`).join(', ')})`);
    }
    await sleep(5);
  }
}

function assertMonotonic(s) {
  for (let k = 1; k < s.seen.length; k++) {
    assert.ok(s.seen[k].v >= s.seen[k - 1].v,
      `a ${s.transport} client went from version ${s.seen[k - 1].v} back to ${s.seen[k].v}: ${JSON.stringify(s.seen.map((x) => [x.v, x.kind, x.connect]))}`);
  }
  assert.deepEqual(s.mismatches, [], 'every patch applied to the version held');
}

const clients = [];
const where = new Map(); // client -> instance index

test('the recipe: every instance is ready and UP in haproxy, /metrics is not served through it', { skip: haproxy.why }, async (t) => {
  const { ms } = await waitStates((st) => Object.keys(st).length === N && Object.values(st).every((v) => v === 'UP'), 20000, 'all UP');
  t.diagnostic(`all ${N} instances UP ${ms} ms after haproxy started`);
  for (const d of daemons) assert.equal((await get(d.port, '/readyz')).status, 200);
  // The dashboard queries' sessions are on the replica.
  const n = Number((await replica.psql(`SELECT count(*) FROM pg_stat_activity WHERE usename = '${pg.daemonRole}'`)).trim());
  assert.ok(n >= N, `${n} pgpushd sessions on the replica`);
  assert.equal((await get(lb.port, '/metrics')).status, 404);
  assert.equal((await get(lb.port, '/readyz')).status, 200);
});

test('clients of both transports through haproxy land on every instance and get every sale', { skip: haproxy.why }, async (t) => {
  // One at a time, so that leastconn sees the ones before.
  for (let k = 0; k < PER_TRANSPORT; k++) {
    for (const tr of ['websocket', 'polling']) {
      const s = lbClient(tr);
      await waitConnected(s, 10000);
      clients.push(s);
    }
  }
  for (const s of clients) where.set(s, await instanceOf(s));
  for (const tr of ['websocket', 'polling']) {
    const on = new Set(clients.filter((s) => s.transport === tr).map((s) => where.get(s)));
    t.diagnostic(`${tr}: instances ${[...on].sort().join(',')}`);
  }
  assert.equal(new Set(clients.map((s) => where.get(s))).size, N, 'clients on every instance');
  for (const s of clients.filter((x) => x.transport === 'polling')) {
    assert.equal(s.io.engine.transport.name, 'polling');
    const jar = s.io.engine._cookieJar;
    const cookie = jar && [...jar.cookies].find(([name]) => name === 'pgpush_srv');
    assert.ok(cookie, 'haproxy set its stickiness cookie');
    assert.equal(cookie[1].value, `pgpushd${where.get(s) + 1}`, 'the cookie names the instance the session is on');
  }
  for (let k = 0; k < 3; k++) {
    const { id } = await insertSale(db, products[k % 2].id, { customer: `lb ${k}` });
    await waitSale(clients, id);
  }
  clients.forEach(assertMonotonic);
  // haproxy set X-Forwarded-For to the client's address (and pgpushd trusts
  // it): the instances log the address without haproxy's port.
  const line = daemons[where.get(clients[0])].grep(new RegExp(`client connected sid=${clients[0].io.engine.id}`))[0];
  assert.match(line, /peer=127\.0\.0\.1( |$)/, line);
});

test('without the stickiness cookie a poll that reaches another instance is refused: why the recipe has it', { skip: haproxy.why }, async () => {
  // The Engine.IO handshake through haproxy, then its sid polled with a
  // cookie that names another instance, as a balancer without stickiness
  // would send it.
  // The client says it is someone else: haproxy replaces the header.
  const r = await get(lb.port, '/socket.io/?EIO=4&transport=polling', { 'X-Forwarded-For': '203.0.113.50' });
  assert.equal(r.status, 200);
  const sid = JSON.parse(r.body.slice(1)).sid;
  const set = String(r.headers['set-cookie']);
  const m = /pgpush_srv=pgpushd(\d)/.exec(set);
  assert.ok(m, `a cookie: ${set}`);
  const other = (Number(m[1]) % N) + 1;
  // The Socket.IO CONNECT, posted as the client would.
  const post = (srv) => rawRequest(lb.port, `POST /socket.io/?EIO=4&transport=polling&sid=${sid} HTTP/1.1\r\nHost: x\r\n` +
    `Cookie: pgpush_srv=pgpushd${srv}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\nConnection: close\r\n\r\n40`);
  const bad = await post(other);
  assert.match(bad.text, /^HTTP\/1\.1 400/);
  assert.match(bad.text, /Session ID unknown/);
  const good = await post(m[1]);
  assert.match(good.text, /^HTTP\/1\.1 200/);
  const line = (await daemons[Number(m[1]) - 1].waitForLog(new RegExp(`client connected sid=${sid} `))).line;
  assert.match(line, /peer=127\.0\.0\.1( |$)/, line);
  assert.ok(!line.includes('203.0.113.50'), `a forged X-Forwarded-For is not believed: ${line}`);
});

test('a burst of 200 sales: one recompute per coalesced batch for the whole cluster', { skip: haproxy.why }, async (t) => {
  const cluster = await hasCluster();
  const before = await Promise.all(daemons.map(metrics));
  const v0 = Math.max(...clients.map((s) => s.doc.version));
  const ids = [];
  // Four writers, 50 sales each, as fast as they commit.
  const writers = await Promise.all([0, 1, 2, 3].map(() => pg.client()));
  await Promise.all(writers.map(async (w, k) => {
    for (let j = 0; j < 50; j++) ids.push((await insertSale(w, products[(j + k) % 2].id, { customer: 'burst' })).id);
  }));
  await Promise.all(writers.map((w) => w.end()));
  const last = Math.max(...ids);
  await waitSale(clients, last, 20000);
  await sleep(500); // the counters of a late recompute
  const afterM = await Promise.all(daemons.map(metrics));
  const recomputes = afterM.map((m, i) => m.pgpush_recomputes_total - before[i].pgpush_recomputes_total);
  const versions = new Set(clients.flatMap((s) => s.seen.filter((x) => x.v > v0).map((x) => x.v)));
  t.diagnostic(`recomputes per instance: ${recomputes.join(', ')}; versions the clients saw: ${versions.size}; sales 200`);
  clients.forEach(assertMonotonic);
  for (const s of clients) assert.equal(s.doc.salesToday, clients[0].doc.salesToday, 'every client ends on the same document');
  assert.ok(cluster, 'the instances lead and follow (pgpush_cluster_leader in /metrics)');
  const lead = daemons.indexOf(await leader());
  const counts = `recomputes ${recomputes}; leader ${lead}; stores ${afterM.map((m, i) => m.pgpush_cluster_stores_total - before[i].pgpush_cluster_stores_total)}; ` +
    `fetches ${afterM.map((m, i) => m.pgpush_cluster_fetches_total - before[i].pgpush_cluster_fetches_total)}; versions ${[...versions].sort()}`;
  t.diagnostic(counts);
  for (let i = 0; i < N; i++) {
    if (i !== lead) assert.equal(recomputes[i], 0, `follower ${i} recomputed nothing: ${counts}`);
  }
  assert.ok(recomputes[lead] >= 1 && recomputes[lead] < 200, `the leader coalesced: ${counts}`);
  // Every batch the leader computed is one version; at most one a client missed.
  assert.ok(versions.size <= recomputes[lead], `no more versions than recomputes: ${counts}`);
  const stores = afterM[lead].pgpush_cluster_stores_total - before[lead].pgpush_cluster_stores_total;
  assert.equal(stores, recomputes[lead], `each recompute stored once: ${counts}`);
  for (let i = 0; i < N; i++) {
    if (i === lead) continue;
    const f = afterM[i].pgpush_cluster_fetches_total - before[i].pgpush_cluster_fetches_total;
    assert.ok(f >= 1 && f <= stores, `follower ${i}: ${f} fetches for ${stores} stores: ${counts}`);
  }
});

test('kill -9 of the leader: the next sale reaches every surviving client within 2 s; its clients come back and resume', { skip: haproxy.why }, async (t) => {
  const lead = await leader();
  const li = daemons.indexOf(lead);
  const mine = clients.filter((s) => where.get(s) === li);
  const others = clients.filter((s) => where.get(s) !== li);
  assert.ok(mine.length > 0 && others.length > 0, `clients on the leader (${mine.length}) and elsewhere (${others.length})`);
  const held = mine.map((s) => s.doc.version);
  const connects = mine.map((s) => s.rec.connects);
  const t0 = performance.now();
  lead.proc.kill('SIGKILL');
  const { id } = await insertSale(db, products[0].id, { customer: 'after the kill' });
  const at = await waitSale(others, id, 10000);
  const ms = Math.max(...at) - t0;
  t.diagnostic(`kill -9 of the leader -> the next sale at the last of ${others.length} surviving clients: ${ms.toFixed(0)} ms`);
  assert.ok(ms < 2000, `failover took ${ms.toFixed(0)} ms`);
  const newLead = await leader();
  assert.notEqual(newLead, lead);
  // haproxy's checks mark it down (inter 1s, fall 2).
  const down = await waitStates((st) => st[`pgpushd${li + 1}`] === 'DOWN', 10000, 'the dead instance DOWN');
  t.diagnostic(`haproxy marked the dead instance DOWN ${(performance.now() - t0).toFixed(0)} ms after the kill (${down.ms} ms of polling)`);
  // Its clients: back through haproxy on another instance, holding the sale.
  await waitSale(mine, id, 15000);
  for (const [k, s] of mine.entries()) {
    assert.ok(s.rec.connects > connects[k], 'reconnected');
    const after = s.seen.filter((x) => x.connect > connects[k]);
    t.diagnostic(`${s.transport} client: held v${held[k]}, then ${after.map((x) => `${x.kind} v${x.v}`).join(', ') || 'nothing'}`);
    // One change happened while it was away: the patch from what it held
    // (the new instance has the stored document it was made from), never
    // the whole document again.
    assert.ok(after.length >= 1 && after.every((x) => x.v > held[k] && x.kind === 'patch'), JSON.stringify(after));
    where.set(s, await instanceOf(s));
    assert.notEqual(where.get(s), li);
  }
  clients.forEach(assertMonotonic);
});

test('a follower killed: its clients resume on the others, and get nothing when nothing changed', { skip: haproxy.why }, async (t) => {
  const lead = await leader();
  const fi = daemons.findIndex((d) => !d.exited && d !== lead);
  const mine = clients.filter((s) => where.get(s) === fi);
  assert.ok(mine.length > 0, 'clients on the follower');
  const held = mine.map((s) => s.doc.version);
  const seen = mine.map((s) => s.seen.length);
  const connects = mine.map((s) => s.rec.connects);
  const t0 = performance.now();
  daemons[fi].proc.kill('SIGKILL');
  for (let k = 0; k < 300 && mine.some((s, j) => !(s.connected && s.rec.connects > connects[j])); k++) await sleep(50);
  t.diagnostic(`kill -9 of a follower -> its ${mine.length} clients connected again through haproxy: ${(performance.now() - t0).toFixed(0)} ms`);
  for (const [k, s] of mine.entries()) assert.ok(s.connected && s.rec.connects > connects[k], `${s.transport} client reconnected`);
  await sleep(1000);
  for (const [k, s] of mine.entries()) {
    assert.equal(s.seen.length, seen[k], `nothing changed: no document, no patch (${JSON.stringify(s.seen.slice(seen[k]))})`);
    assert.equal(s.doc.version, held[k]);
    where.set(s, await instanceOf(s));
  }
  // The next sale reaches everyone left, on the one or two instances left.
  const { id } = await insertSale(db, products[1].id, { customer: 'after the follower' });
  await waitSale(clients, id, 10000);
  clients.forEach(assertMonotonic);
  t.diagnostic(`${mine.length} clients moved from the killed follower; full documents after the first: ${clients.reduce((a, s) => a + s.seen.filter((x, k) => k > 0 && x.kind === 'full').length, 0)}`);
});
