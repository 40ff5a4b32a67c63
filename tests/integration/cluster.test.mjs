// The cluster (issue 12): three pgpushd instances on one database, no
// balancer (tests/integration/haproxy* adds one). One instance holds the
// advisory lock and recomputes; the others fetch what it stores in
// pgpush.feed_doc. Checked here: clients on every instance, over WebSocket
// and long-polling, get every sale; a burst of 200 sales costs recomputes on
// the leader only, and each follower fetches at most once per stored
// document; an audience only a follower has is computed by the leader;
// `kill -9` of the leader: the next sale reaches every surviving client
// within 2 s (printed); versions never go backwards; the audiences of a
// killed instance are pruned from pgpush.feed_demand; followers fetch the
// patch to the document they hold (a patch that does not apply: the
// document) and every client gets the leader's document; the leader's
// query errors reach every instance's clients, and the fresh document
// clears them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitForUpdate, waitForError, seedShop, insertSale, closeClients,
  sleep, now,
} from '../lib/daemon.mjs';

const SECRET = 'a-cluster-test-secret-of-well-over-thirty-two-bytes';
const b64u = (b) => Buffer.from(b).toString('base64url');
function mint(claims) {
  const head = b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64u(JSON.stringify(claims));
  const sig = crypto.createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

const SETUP = `
CREATE ROLE clu_viewer NOLOGIN;
GRANT clu_viewer TO pgpushd;
GRANT SELECT ON products, stock, sales TO clu_viewer;
GRANT USAGE ON SCHEMA pgpush TO clu_viewer;
GRANT EXECUTE ON FUNCTION pgpush.dashboard() TO clu_viewer;
CREATE FUNCTION public.clu_shop() RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object('sales', (SELECT count(*) FROM public.sales)) $$;
CREATE FUNCTION public.clu_tenant() RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object('tenant', current_setting('request.jwt.claims', true)::json->>'tenant',
    'sales', (SELECT count(*) FROM public.sales)) $$;
GRANT EXECUTE ON FUNCTION public.clu_shop(), public.clu_tenant() TO clu_viewer;
SELECT pgpush.register_dashboard('shop', 'public.clu_shop()', ARRAY['sales']::regclass[]);
SELECT pgpush.register_dashboard('tenant', 'public.clu_tenant()', ARRAY['sales']::regclass[],
  ARRAY['tenant']);
`;

let pg, db, products, dir;
const daemons = [];   // { d, name, clients: [] }
const sockets = [];

async function metrics(d) {
  const r = await fetch(`${d.url}/metrics`, { headers: { connection: 'close' } });
  const text = await r.text();
  const sum = (name) => text.split('\n').filter((l) => l.startsWith(name))
    .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
  return {
    leader: sum('pgpush_cluster_leader '),
    recomputes: sum('pgpush_recomputes_total'),
    stores: sum('pgpush_cluster_stores_total'),
    fetches: sum('pgpush_cluster_fetches_total'),
    docBytes: sum('pgpush_cluster_fetch_bytes_total{kind="document"}'),
    patchBytes: sum('pgpush_cluster_fetch_bytes_total{kind="patch"}'),
  };
}

const alive = () => daemons.filter((x) => !x.dead);

/** The one live instance whose pgpush_cluster_leader is 1, once exactly one is. */
async function leader(timeoutMs = 10000) {
  const t0 = now();
  for (;;) {
    const ms = await Promise.all(alive().map(async (x) => ({ x, m: await metrics(x.d) })));
    const leaders = ms.filter((e) => e.m.leader === 1);
    if (leaders.length === 1) return leaders[0].x;
    if (now() - t0 > timeoutMs) throw new Error(`${leaders.length} leaders`);
    await sleep(100);
  }
}

async function salesCount() {
  return Number((await db.query('SELECT count(*) FROM sales')).rows[0].count);
}

function client(x, nsp, opts = {}) {
  const s = connectClient(`${x.d.url}${nsp}`, { reconnection: false, ...opts });
  s.instance = x.name;
  sockets.push(s);
  x.clients.push(s);
  return s;
}

/** Every update of s has a version not below the one before. */
function assertMonotonic(s) {
  const v = s.rec.updates.map((u) => u.data.version);
  for (let i = 1; i < v.length; i++) {
    assert.ok(v[i] >= v[i - 1], `${s.instance}: version went back ${v[i - 1]} -> ${v[i]} (${v.join(',')})`);
  }
}

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  products = await seedShop(db, { products: 3 });
  await pg.psql(SETUP);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-cluster-'));
  fs.writeFileSync(path.join(dir, 'secret'), SECRET);
  for (const name of ['a', 'b', 'c']) {
    const d = await startDaemon({
      db: pg.conninfo,
      args: ['--refresh-interval', '300', '--jwt-secret-file', path.join(dir, 'secret'),
        '--anon-role', 'clu_viewer', '--audience-grace', '1000'],
    });
    daemons.push({ d, name, clients: [] });
    // The first one leads: the lock is free.
    await d.waitForLog(name === 'a' ? /cluster role=leader/ : /cluster role=follower/);
  }
  // Namespaces exist once the registry is read.
  for (const { d } of daemons) {
    for (let i = 0; i < 100; i++) {
      const h = await (await fetch(`${d.url}/healthz`, { headers: { connection: 'close' } })).json();
      if (h.dashboards === 2) break;
      await sleep(50);
    }
  }
});

after(async () => {
  closeClients(sockets);
  try {
    for (const x of alive()) await x.d.stopClean(`pgpushd ${x.name}`);
  } finally {
    if (pg) await pg.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('one leader; clients on every instance, both transports, get every sale', async () => {
  assert.equal((await leader()).name, 'a', 'the first instance leads');
  for (const x of daemons) {
    client(x, '/shop');
    client(x, '/shop', { transports: ['polling'] });
  }
  let n = await salesCount();
  for (const s of sockets) await waitForUpdate(s, (d) => d.sales === n, 10000);
  for (let i = 0; i < 5; i++) {
    await insertSale(db, products[i % 3].id);
    n++;
    for (const s of sockets) await waitForUpdate(s, (d) => d.sales === n, 10000);
  }
  // The followers publish the leader's versions: the same document has the
  // same version on every instance.
  const last = sockets.map((s) => s.rec.updates.at(-1).data.version);
  assert.equal(new Set(last).size, 1, `one version for one document: ${last}`);
  for (const s of sockets) assertMonotonic(s);
});

test('followers fetch the patch to the document they hold; every client gets the leader\'s document', async () => {
  // The demo dashboard (pgpush.dashboard(), the default namespace): a sale
  // changes a few of its values.
  const mine = daemons.map((x) => client(x, '/'));
  const [onLeader, ...onFollowers] = mine;
  for (const s of mine) await waitForUpdate(s, () => true, 10000);
  await sleep(300);
  const before = await Promise.all(daemons.map((x) => metrics(x.d)));
  const SALES = 10;
  let docBytes = 0;
  for (let i = 0; i < SALES; i++) {
    const mark = onLeader.rec.updates.length;
    await insertSale(db, products[i % 3].id);
    const u = await waitForUpdate(onLeader, () => true, 10000, { since: mark });
    docBytes = Math.max(docBytes, JSON.stringify(u.data).length);
    for (const s of onFollowers) {
      const f = await waitForUpdate(s, (d) => d.version >= u.data.version, 10000);
      if (f.data.version === u.data.version) assert.deepEqual(f.data, u.data, `${s.instance}: the leader's document`);
    }
  }
  await sleep(300);
  const last = onLeader.rec.updates.at(-1).data;
  for (const s of onFollowers) assert.deepEqual(s.rec.updates.at(-1).data, last, `${s.instance}: the same last document`);
  const after = await Promise.all(daemons.map((x) => metrics(x.d)));
  const per = after.slice(1).map((m, i) => ({
    doc: m.docBytes - before[i + 1].docBytes, patch: m.patchBytes - before[i + 1].patchBytes,
  }));
  console.log(`# ${SALES} sales, demo dashboard of ~${docBytes} bytes: bytes fetched per follower ` +
    per.map((p) => `document=${p.doc} patch=${p.patch} (${(p.patch / SALES).toFixed(0)}/sale)`).join('; '));
  for (const p of per) {
    assert.ok(p.patch > 0, 'followers fetched patches');
    assert.ok(p.doc + p.patch < SALES * docBytes / 2, `patch-sized fetches: ${JSON.stringify(p)} for ${SALES} sales`);
  }
  // A patch that does not apply (here forged in the row): the follower
  // fetches the document instead, and says so.
  const b = daemons[1];
  const bMark = b.d.mark();
  const row = (await db.query("SELECT id, version FROM pgpush.feed_doc WHERE dashboard LIKE ':%' AND version > 0 " +
    'ORDER BY stored_at DESC LIMIT 1')).rows[0];
  const v2 = Number(row.version) + 1;
  await db.query("UPDATE pgpush.feed_doc SET version = $2, patch_from = $3, patch = '[{\"op\":\"remove\",\"path\":\"/no_such_member\"}]' " +
    'WHERE id = $1', [row.id, v2, row.version]);
  await db.query(`SELECT pg_notify(pgpush.channel(), ':doc,${row.id},${v2}')`);
  await b.d.waitForLog(/a stored patch did not apply .*fetching the document/, 5000, { since: bMark });
  const fb = await waitForUpdate(onFollowers[0], (d) => d.version === v2, 5000);
  assert.deepEqual({ ...fb.data, version: last.version }, last, 'the document itself, under the new version');
  for (const s of mine) {
    assertMonotonic(s);
    s.close();
    // Out of the other tests' lists: they wait for every client's `sales`.
    sockets.splice(sockets.indexOf(s), 1);
    for (const x of daemons) if (x.clients.includes(s)) x.clients.splice(x.clients.indexOf(s), 1);
  }
});

test('a burst of 200 sales: recomputes on the leader only, one fetch per stored document', async () => {
  const before = await Promise.all(daemons.map((x) => metrics(x.d)));
  const t0 = now();
  // 8 writers at once, so that notifications come faster than a recompute.
  const left = [...Array(200).keys()];
  await Promise.all([...Array(8)].map(async () => {
    const c = await pg.client();
    try {
      while (left.length) { left.pop(); await insertSale(c, products[0].id); }
    } finally { await c.end(); }
  }));
  const n = await salesCount();
  for (const s of sockets) await waitForUpdate(s, (d) => d.sales === n, 20000);
  const ms = Math.round(now() - t0);
  await sleep(500);
  const after = await Promise.all(daemons.map((x) => metrics(x.d)));
  const delta = after.map((m, i) => Object.fromEntries(Object.keys(m).map((k) => [k, m[k] - before[i][k]])));
  const [lead, ...followers] = delta;
  console.log(`# burst of 200 sales in ${ms} ms: leader recomputes=${lead.recomputes} stores=${lead.stores}; ` +
    `followers recomputes=${followers.map((f) => f.recomputes)} fetches=${followers.map((f) => f.fetches)}; ` +
    `cluster recomputes=${delta.reduce((a, f) => a + f.recomputes, 0)}`);
  assert.ok(lead.recomputes >= 1, 'the leader recomputed');
  assert.ok(lead.recomputes < 200, `coalesced: ${lead.recomputes} recomputes for 200 sales`);
  for (const f of followers) {
    assert.equal(f.recomputes, 0, 'a follower never recomputes');
    assert.ok(f.fetches <= lead.stores, `fetches ${f.fetches} <= stores ${lead.stores}`);
  }
  assert.ok(lead.stores <= lead.recomputes, 'only what was recomputed is stored');
  for (const s of sockets) assertMonotonic(s);
});

test('an audience only a follower has is computed by the leader and delivered', async () => {
  const b = daemons[1];
  const mark = daemons[0].d.mark();
  const s = client(b, '/tenant', { auth: { token: mint({ role: 'clu_viewer', tenant: 'only-on-b' }) } });
  let n = await salesCount();
  await waitForUpdate(s, (d) => d.tenant === 'only-on-b' && d.sales === n, 10000);
  await daemons[0].d.waitForLog(/computing an audience for other instances dashboard=tenant/, 5000, { since: mark });
  await insertSale(db, products[1].id);
  n++;
  await waitForUpdate(s, (d) => d.sales === n, 10000);
  assert.equal((await metrics(b.d)).recomputes, 0, 'the follower still never recomputed');
  const rows = await pg.psql("SELECT count(*) FROM pgpush.feed_demand WHERE dashboard = 'tenant'");
  assert.equal(rows.trim(), '1', 'the audience is registered once, by b');
});

test('a client moving to another instance resumes by version: nothing is sent when nothing changed', async () => {
  const [, b, c] = daemons;
  const onB = b.clients.find((s) => s.io.opts.transports[0] === 'websocket' && s.nsp === '/shop');
  const v = onB.rec.updates.at(-1).data.version;
  const s = client(c, '/shop', { auth: { deltas: true, since: v } });
  s.patches = true; // gets dashboardDataPatch from now on
  await new Promise((r) => s.once('connect', r));
  await sleep(400);
  assert.equal(s.rec.updates.length, 0, 'the same version on c: no document sent');
  const h = await (await fetch(`${c.d.url}/healthz`, { headers: { connection: 'close' } })).json();
  assert.ok(h.resumed >= 1, `c counted the resume: ${h.resumed}`);
});

test('the leader\'s query fails: clients on every instance get its dashboardDataError; fixed, every client gets the fresh document', async () => {
  const live = sockets.filter((s) => s.connected && s.nsp === '/shop' && !s.patches);
  assert.ok(new Set(live.map((s) => s.instance)).size === 3, 'clients on every instance');
  const errMarks = live.map((s) => s.rec.errors.length);
  await pg.psql(`CREATE OR REPLACE FUNCTION public.clu_shop() RETURNS json LANGUAGE plpgsql STABLE AS $$
    BEGIN RAISE EXCEPTION 'clu_shop_broken'; END $$`);
  try {
    await insertSale(db, products[0].id);
    const errs = await Promise.all(live.map((s, i) => waitForError(s, () => true, 10000, { since: errMarks[i] })));
    for (const [i, { data: e }] of errs.entries()) {
      assert.equal(e.code, 'query_failed', `${live[i].instance}: ${JSON.stringify(e)}`);
      assert.doesNotMatch(JSON.stringify(e), /clu_shop_broken|SQLSTATE/, 'no database text reaches clients');
    }
    assert.equal(new Set(errs.map((e) => e.data.message)).size, 1, 'the same message everywhere');
    for (const s of live) assert.ok(s.connected, `${s.instance}: still connected`);
  } finally {
    await pg.psql(`CREATE OR REPLACE FUNCTION public.clu_shop() RETURNS json LANGUAGE sql STABLE AS $$
      SELECT json_build_object('sales', (SELECT count(*) FROM public.sales)) $$`);
  }
  // The leader's retry (or the next sale) computes it again.
  const n = await salesCount();
  const fresh = await Promise.all(live.map((s) => waitForUpdate(s, (d) => d.sales === n, 15000)));
  for (const [i, u] of fresh.entries()) {
    const lastErr = live[i].rec.errors.at(-1);
    assert.ok(u.t > lastErr.t, `${live[i].instance}: the fresh document after the error`);
  }
  for (const s of live) assertMonotonic(s);
});

test('an audience nobody has any more is computed afresh, never served from an old store', async () => {
  const [, b, c] = daemons;
  const token = mint({ role: 'clu_viewer', tenant: 'left' });
  const s1 = client(c, '/tenant', { auth: { token } });
  let n = await salesCount();
  await waitForUpdate(s1, (d) => d.tenant === 'left' && d.sales === n, 10000);
  s1.close();
  // c drops it after the grace period, then the leader does.
  const rows = async () => Number((await pg.psql(
    "SELECT count(*) FROM pgpush.feed_demand WHERE dashboard = 'tenant' AND key LIKE '%left%'")).trim());
  let left = 1;
  for (let i = 0; i < 100 && (left = await rows()) !== 0; i++) await sleep(100);
  assert.equal(left, 0, 'nobody has the audience any more');
  await insertSale(db, products[0].id);
  n++;
  const s2 = client(b, '/tenant', { auth: { token } });
  const first = await waitForUpdate(s2, () => true, 10000);
  assert.equal(first.data.sales, n, 'the first document is current, not the one stored before the sale');
});

test('the leader\'s database session terminated: it steps down, one leader again, every client gets the next sale', async () => {
  const lead = await leader();
  const mark = lead.d.mark();
  const pid = (await pg.psql("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 1885828213 " +
    'AND objsubid = 2 AND granted')).trim();
  assert.match(pid, /^\d+$/, 'one backend holds the lock');
  await pg.psql(`SELECT pg_terminate_backend(${pid})`);
  await lead.d.waitForLog(/cluster role=follower/, 5000, { since: mark });
  await sleep(300);
  const next = await leader();
  const live = sockets.filter((s) => s.connected && !s.patches);
  const marks = live.map((s) => s.rec.updates.length);
  await insertSale(db, products[1].id);
  const n = await salesCount();
  await Promise.all(live.map((s, i) => waitForUpdate(s, (d) => d.sales === n, 10000, { since: marks[i] })));
  console.log(`# leader ${lead.name} lost its session; leader now ${next.name}`);
  for (const s of live) assertMonotonic(s);
  // Its clients saw db_unavailable; the next document takes them out of it.
  for (const s of lead.clients.filter((c) => c.connected && !c.patches)) {
    const lastErr = s.rec.errors.at(-1);
    const lastUpd = s.rec.updates.at(-1);
    if (lastErr) assert.ok(lastUpd.t > lastErr.t, `${s.instance}: an update after the error`);
  }
});

test('kill -9 of the leader: the next sale reaches every surviving client within 2 s', async () => {
  const a = await leader();
  const survivors = sockets.filter((s) => s.instance !== a.name && s.connected && !s.patches);
  const marks = survivors.map((s) => s.rec.updates.length);
  const tKill = now();
  a.d.proc.kill('SIGKILL');
  a.dead = true;
  await insertSale(db, products[2].id);
  const n = await salesCount();
  const arrivals = await Promise.all(survivors.map(async (s, i) =>
    (await waitForUpdate(s, (d) => d.sales === n, 10000, { since: marks[i] })).t));
  const ms = Math.round(Math.max(...arrivals) - tKill);
  const next = await leader();
  console.log(`# failover: kill -9 of ${a.name} to the next sale on all ${survivors.length} surviving ` +
    `clients: ${ms} ms; new leader ${next.name}`);
  assert.ok(ms <= 2000, `failover took ${ms} ms`);
  assert.notEqual(next.name, a.name);
  await next.d.waitForLog(/reason=leader/, 5000);
  for (const s of survivors) assertMonotonic(s);
  // And the cluster goes on: one more sale, everywhere.
  await insertSale(db, products[0].id);
  for (const s of survivors) await waitForUpdate(s, (d) => d.sales === n + 1, 10000);
  for (const s of survivors) assertMonotonic(s);
});

test('the audiences of a killed instance are pruned from pgpush.feed_demand', async () => {
  const lead = await leader();
  const f = alive().find((x) => x !== lead);
  const pids = async () => Number((await pg.psql('SELECT count(DISTINCT pid) FROM pgpush.feed_demand')).trim());
  for (let i = 0; i < 50 && (await pids()) !== 2; i++) await sleep(100);
  assert.equal(await pids(), 2, 'both survivors registered');
  f.d.proc.kill('SIGKILL');
  f.dead = true;
  let left = 2;
  for (let i = 0; i < 150 && (left = await pids()) !== 1; i++) await sleep(100);
  assert.equal(left, 1, 'the killed instance\'s rows are gone');
  const own = await pg.psql('SELECT count(*) FROM pgpush.feed_demand d WHERE NOT EXISTS ' +
    '(SELECT 1 FROM pg_stat_activity a WHERE a.pid = d.pid)');
  assert.equal(own.trim(), '0');
});

test('SQL: stored versions only grow; a first fetch gets a document only while a live instance has the audience; PUBLIC gets nothing', async () => {
  const c = await pg.client();
  const c2 = await pg.client();
  try {
    await c.query('SET ROLE pgpushd');
    await c2.query('SET ROLE pgpushd');
    const store = async (v, doc) => (await c.query(
      "SELECT pgpush.feed_store('sqltest', '', 'k', $1, 0, 'r', $2, 'pgpush_sqltest') AS id", [v, doc])).rows[0].id;
    const row = async () => (await c.query(
      "SELECT version::int, doc FROM pgpush.feed_doc WHERE dashboard = 'sqltest'")).rows[0];
    const id = await store(100, '{"a":1}');
    assert.ok(id);
    assert.equal(await store(99, '{"a":0}'), null, 'an older version stores nothing');
    assert.deepEqual(await row(), { version: 100, doc: '{"a":1}' });
    assert.equal(await store(100, '{"a":1}'), id, 'the same version is announced again');
    assert.equal(await store(101, '{"a":2}'), id, 'the id stays');
    assert.deepEqual(await row(), { version: 101, doc: '{"a":2}' });
    // The leader's error state: kept beside the document, cleared by the next store.
    const errOf = async () => (await c.query("SELECT error FROM pgpush.feed_doc WHERE id = $1", [id])).rows[0].error;
    assert.equal((await c.query("SELECT pgpush.feed_error('sqltest', '', 'k', '{\"code\":\"query_failed\"}', 'pgpush_sqltest') AS id")).rows[0].id, id);
    assert.equal(await errOf(), '{"code":"query_failed"}');
    assert.deepEqual(await row(), { version: 101, doc: '{"a":2}' }, 'the document stays');
    assert.equal(await store(100, '{"a":0}'), null, 'an older version clears nothing');
    assert.equal(await errOf(), '{"code":"query_failed"}');
    await store(101, '{"a":2}');
    assert.equal(await errOf(), null, 'the next store clears it');
    // A patch is kept only when the row held its base.
    const patchOf = async () => (await c.query("SELECT patch_from::int, patch FROM pgpush.feed_doc WHERE id = $1", [id])).rows[0];
    const store10 = async (v, doc, from, patch) => (await c.query(
      "SELECT pgpush.feed_store('sqltest', '', 'k', $1, 0, 'r', $2, 'pgpush_sqltest', $3, $4) AS id", [v, doc, from, patch])).rows[0].id;
    await store10(102, '{"a":3}', 101, '[{"op":"replace","path":"/a","value":3}]');
    assert.deepEqual(await patchOf(), { patch_from: 101, patch: '[{"op":"replace","path":"/a","value":3}]' });
    await store10(102, '{"a":3}', null, null);
    assert.equal((await patchOf()).patch_from, 101, 'a re-announcement keeps the patch');
    await store10(104, '{"a":4}', 103, '[]');
    assert.deepEqual(await patchOf(), { patch_from: null, patch: null }, 'not from the row\'s version: no patch');
    await store(105, '{"a":2}');
    const fetch = async () => (await c.query(
      "SELECT id, version::int, doc FROM pgpush.feed_fetch('sqltest', '', 'k', 0)")).rows[0];
    assert.deepEqual(await fetch(), { id, version: 105, doc: null }, 'nobody else has it: no document');
    await c2.query(`SELECT pgpush.feed_demand_set('[["sqltest","","k"]]', 'pgpush_sqltest')`);
    assert.deepEqual(await fetch(), { id, version: 105, doc: '{"a":2}' }, 'another live instance has it');
    // A key longer than a btree entry may be (the indexes hold its md5).
    const long = `{"claim":"${crypto.randomBytes(6000).toString('base64')}"}`;
    assert.ok((await c.query("SELECT pgpush.feed_store('sqltest', '', $1, 1, 0, 'r', '{}', 'pgpush_sqltest') AS id",
      [long])).rows[0].id);
    await c2.query('SELECT pgpush.feed_demand_set($1, $2)', [JSON.stringify([['sqltest', '', long]]), 'pgpush_sqltest']);
    assert.equal((await c.query("SELECT doc FROM pgpush.feed_fetch('sqltest', '', $1, 0)", [long])).rows[0].doc, '{}');
    // A placeholder for an audience nobody stored yet: the id, no document.
    const ph = (await c.query("SELECT id, version::int, doc FROM pgpush.feed_fetch('sqltest', '', 'other', 0)")).rows[0];
    assert.ok(ph.id && ph.id !== id);
    assert.equal(ph.version, 0);
    assert.equal(ph.doc, null);
  } finally {
    await c.query("DELETE FROM pgpush.feed_doc WHERE dashboard = 'sqltest'").catch(() => {});
    await c2.query("SELECT pgpush.feed_demand_set('[]', 'pgpush_sqltest')").catch(() => {});
    await c.end();
    await c2.end();
  }
  for (const t of ['pgpush.feed_doc', 'pgpush.feed_demand']) {
    for (const p of ['SELECT', 'INSERT', 'UPDATE', 'DELETE']) {
      assert.equal((await pg.psql(`SELECT has_table_privilege('public', '${t}', '${p}')`)).trim(), 'f', `PUBLIC ${p} on ${t}`);
    }
  }
  for (const f of ['pgpush.feed_store(text,text,text,bigint,bigint,text,text,text)',
    'pgpush.feed_store(text,text,text,bigint,bigint,text,text,text,bigint,text)',
    'pgpush.feed_error(text,text,text,text,text)',
    'pgpush.feed_fetch(text,text,text,bigint)', 'pgpush.feed_demand_set(json,text)', 'pgpush.feed_demand_read()']) {
    assert.equal((await pg.psql(`SELECT has_function_privilege('public', '${f}', 'EXECUTE')`)).trim(), 'f', `PUBLIC EXECUTE ${f}`);
  }
});

test('an instance with another --query is a cluster of its own: it leads it and serves its own document', async () => {
  const lead = await leader();
  const d = await startDaemon({
    db: pg.conninfo,
    args: ['--refresh-interval', '300', '--jwt-secret-file', path.join(dir, 'secret'),
      '--anon-role', 'clu_viewer', '--audience-grace', '1000',
      '--query', "SELECT json_build_object('other', true, 'sales', (SELECT count(*) FROM public.sales))"],
  });
  const x = { d, name: 'other', clients: [] };
  daemons.push(x);
  await d.waitForLog(/cluster role=leader/);
  const s = client(x, '/');
  const n = await salesCount();
  const first = await waitForUpdate(s, (doc) => doc.other === true && doc.sales === n, 10000);
  assert.ok(first);
  assert.equal((await metrics(lead.d)).leader, 1, 'the first cluster keeps its leader');
  await insertSale(db, products[0].id);
  await waitForUpdate(s, (doc) => doc.sales === n + 1, 10000);
});
