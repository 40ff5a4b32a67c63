// Selective updates, the daemon's side (issue 10): unchanged documents are
// not sent; clients that opt in (CONNECT auth {deltas: true, since}) get
// dashboardDataPatch {from, to, patch} computed once per feed; the stock
// socket.io-client with the seed's options keeps getting full documents;
// after an error the next document is always sent; every audience gets its
// own patches. The raw events here, not the kit (kit.test.mjs has the kit).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitForUpdate, waitForError, waitConnected, emitWithAck, insertSale,
  closeClients, sleep,
} from '../lib/daemon.mjs';
import { applyPatch } from '../../contrib/client/src/pgpush-client.js';

const SECRET = 'a-test-secret-of-well-over-thirty-two-bytes-0123456789';
let pg, db, daemon, authDaemon, dir, productId;
const sockets = [];

const b64u = (b) => Buffer.from(b).toString('base64url');
function mint(claims) {
  const head = b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64u(JSON.stringify(claims));
  const sig = crypto.createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

function get(d, p) {
  return new Promise((resolve, reject) => {
    http.get(`${d.url}${p}`, { headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}
const health = async (d = daemon) => JSON.parse(await get(d, '/healthz?detailed=1'));
async function unchangedMetric(d = daemon) {
  const m = (await get(d, '/metrics')).match(/^pgpush_unchanged_documents_total (\d+)/m);
  return m ? Number(m[1]) : null;
}

/** A raw socket.io client (the seed's options) with a recorder of patches. */
function client(url, opts = {}) {
  const s = connectClient(url, opts);
  s.rec.patches = [];
  s.on('dashboardDataPatch', (p) => s.rec.patches.push(p));
  sockets.push(s);
  return s;
}

/** Resolves the n-th patch (0-based) once it came. */
async function nthPatch(s, n, timeoutMs = 5000) {
  const t0 = Date.now();
  while (s.rec.patches.length <= n) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timeout waiting for patch #${n} (have ${s.rec.patches.length})`);
    await sleep(10);
  }
  return s.rec.patches[n];
}

const names = (s) => s.rec.events.map((e) => e.name);

// The flaky dashboard: fails while flaky_ctl.fail is true, else shows a
// constant: the document after the error is byte-equal to the one before.
// The tenant dashboard: one audience per tenant claim (padded: the patch
// must be smaller than the document, or the document goes instead).
const SETUP = `
CREATE TABLE flaky_ctl (fail boolean NOT NULL);
INSERT INTO flaky_ctl VALUES (false);
GRANT SELECT ON flaky_ctl TO PUBLIC;
SELECT pgpush.attach('public.flaky_ctl');
CREATE FUNCTION public.flaky() RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF (SELECT fail FROM public.flaky_ctl) THEN RAISE EXCEPTION 'flaky on purpose'; END IF;
  RETURN json_build_object('answer', 42);
END $$;
CREATE ROLE delta_viewer NOLOGIN;
GRANT delta_viewer TO pgpushd;
GRANT SELECT ON sales, products TO delta_viewer;
CREATE FUNCTION public.delta_tenant() RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object('tenant', current_setting('request.jwt.claims', true)::json->>'tenant',
    'sales', (SELECT count(*) FROM public.sales), 'pad', repeat('p', 2000),
    'recent', (SELECT json_agg(json_build_object('id', id, 'q', quantity) ORDER BY id DESC)
               FROM (SELECT id, quantity FROM public.sales ORDER BY id DESC LIMIT 5) s)) $$;
GRANT EXECUTE ON FUNCTION public.delta_tenant() TO delta_viewer;
`;

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql', 'sql/demo-data.sql'] });
  db = await pg.client();
  [{ id: productId }] = (await db.query('SELECT id FROM products ORDER BY id LIMIT 1')).rows;
  await pg.psql(SETUP);
  await pg.psql("SELECT pgpush.register_dashboard('flaky', 'public.flaky()', ARRAY['flaky_ctl']::regclass[])");
  await pg.psql("SELECT pgpush.register_dashboard('tenant', 'public.delta_tenant()', ARRAY['sales']::regclass[], ARRAY['tenant'])");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-deltas-'));
  fs.writeFileSync(path.join(dir, 'secret'), SECRET);
  daemon = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300'] });
  authDaemon = await startDaemon({
    db: pg.conninfo,
    args: ['--refresh-interval', '300', '--jwt-secret-file', path.join(dir, 'secret'), '--audience-grace', '1000'],
  });
});

after(async () => {
  closeClients(sockets);
  if (db) await db.end().catch(() => {});
  try {
    if (daemon) await daemon.stopClean();
    if (authDaemon) await authDaemon.stopClean();
  } finally {
    if (pg) await pg.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the stock socket.io-client (seed options) gets full documents only, an opted-in one patches', async () => {
  const stock = client(daemon.url);           // transports ['websocket'], 5 attempts, 1 s: the seed's
  const opted = client(daemon.url, { auth: { deltas: true } });
  const [first] = await Promise.all([waitForUpdate(stock, () => true, 10000), waitForUpdate(opted, () => true, 10000)]);
  let held = (await waitForUpdate(opted, () => true)).data;
  const { id } = await insertSale(db, productId, { customer: `deltas stock ${process.pid}` });
  const hasSale = (d) => d.recentSales.some((x) => x.id === id);
  const u = await waitForUpdate(stock, hasSale, 5000);
  assert.ok(u.data.version > first.data.version);
  const p = await nthPatch(opted, 0);
  assert.equal(p.from, held.version);
  assert.equal(p.to, u.data.version);
  assert.ok(Array.isArray(p.patch) && p.patch.length > 0);
  held = applyPatch(held, p.patch);
  assert.deepEqual(held, u.data, 'the patched document is the full one, version, generatedAt and reason included');
  assert.deepEqual(held, await emitWithAck(opted, 'requestDashboardData'));
  // recentSales is keyed by id: one sale in front is one add and one remove there.
  const rs = p.patch.filter((op) => op.path.startsWith('/recentSales'));
  assert.deepEqual(rs.map((op) => op.op).sort(), ['add', 'remove'], JSON.stringify(rs));
  await sleep(200);
  assert.ok(!names(stock).includes('dashboardDataPatch'), 'the stock client never gets a patch');
  assert.equal(opted.rec.updates.length, 1, 'the opted-in client got one full document (the first)');
  const h = await health();
  assert.ok(h.patches >= 1 && h.diffs >= 1 && h.diffMicroseconds >= 0, JSON.stringify(h));
});

test('an UPDATE that changes nothing shown: no event, the version stays, counted', async () => {
  const s = client(daemon.url, { auth: { deltas: true } });
  const stock = client(daemon.url);
  await Promise.all([waitForUpdate(s, () => true, 10000), waitForUpdate(stock, () => true, 10000)]);
  await sleep(300);
  const h0 = await health();
  const m0 = await unchangedMetric();
  const n0 = [s.rec.events.length, stock.rec.events.length];
  await db.query('UPDATE sales SET quantity = quantity WHERE id = (SELECT min(id) FROM sales)');
  let h1;
  for (let i = 0; i < 100; i++) {
    h1 = await health();
    if (h1.unchanged > h0.unchanged) break;
    await sleep(50);
  }
  assert.equal(h1.unchanged, h0.unchanged + 1, `counted in /healthz: ${JSON.stringify(h1)}`);
  assert.ok(h1.recomputes > h0.recomputes, 'it was recomputed');
  assert.equal(h1.snapshotVersion, h0.snapshotVersion, 'the version did not move');
  assert.equal(await unchangedMetric(), m0 + 1, 'pgpush_unchanged_documents_total');
  await sleep(300);
  assert.deepEqual([s.rec.events.length, stock.rec.events.length], n0, 'nothing was sent');
  // The next real change is a patch from the version the client holds.
  const held = s.rec.updates.at(-1).data;
  const { id } = await insertSale(db, productId);
  const p = await nthPatch(s, 0);
  assert.equal(p.from, held.version);
  assert.ok(applyPatch(held, p.patch).recentSales.some((x) => x.id === id));
});

test('after a dashboardDataError the next document is sent, even when it is the same', async () => {
  const s = client(`${daemon.url}/flaky`, { auth: { deltas: true } });
  const stock = client(`${daemon.url}/flaky`);
  const [a] = await Promise.all([waitForUpdate(s, (d) => d.answer === 42, 10000), waitForUpdate(stock, (d) => d.answer === 42, 10000)]);
  await db.query('UPDATE flaky_ctl SET fail = true');
  await Promise.all([waitForError(s), waitForError(stock)]);
  await db.query('UPDATE flaky_ctl SET fail = false');
  const u = await waitForUpdate(stock, (d) => d.version > a.data.version, 5000);
  assert.equal(u.data.answer, 42);
  // The opted-in client holds version a: a patch (no op but the daemon's
  // own members) or the document brings it to u.
  for (let i = 0; i < 100 && s.rec.patches.length === 0 && s.rec.updates.length < 2; i++) await sleep(20);
  const latest = s.rec.patches.length ? applyPatch(a.data, s.rec.patches[0].patch) : s.rec.updates.at(-1).data;
  assert.deepEqual(latest, u.data);
});

test('audiences: each gets its own patches, computed once per audience', async () => {
  const tok = (tenant) => mint({ role: 'delta_viewer', tenant });
  const a1 = client(`${authDaemon.url}/tenant`, { auth: { token: tok('a'), deltas: true } });
  const a2 = client(`${authDaemon.url}/tenant`, { auth: { token: tok('a'), deltas: true } });
  const b = client(`${authDaemon.url}/tenant`, { auth: { token: tok('b'), deltas: true } });
  const [da1, da2, db1] = await Promise.all([a1, a2, b].map((s) => waitForUpdate(s, (d) => d.tenant !== undefined, 10000)));
  assert.equal(da1.data.tenant, 'a');
  assert.equal(db1.data.tenant, 'b');
  const h0 = await health(authDaemon);
  await insertSale(db, productId);
  const [pa1, pa2, pb] = await Promise.all([a1, a2, b].map((s) => nthPatch(s, 0)))
    .catch((err) => { console.log(authDaemon.grep(/./).join('\n')); throw err; });
  assert.deepEqual(pa1, pa2, 'one audience, one patch');
  assert.notEqual(pa1.to, pb.to, 'each audience has its own versions');
  const na = applyPatch(da1.data, pa1.patch);
  const nb = applyPatch(db1.data, pb.patch);
  assert.equal(na.tenant, 'a');
  assert.equal(nb.tenant, 'b');
  assert.equal(na.sales, da1.data.sales + 1);
  assert.deepEqual(na, await emitWithAck(a1, 'requestDashboardData'));
  assert.deepEqual(nb, await emitWithAck(b, 'requestDashboardData'));
  const h1 = await health(authDaemon);
  assert.equal(h1.diffs - h0.diffs, 2, 'one diff per audience');
  // Resume on the tenant namespace: since = the current version, nothing.
  const r = client(`${authDaemon.url}/tenant`, { auth: { token: tok('b'), deltas: true, since: nb.version } });
  await waitConnected(r);
  await sleep(400);
  assert.deepEqual(names(r), [], 'nothing but the CONNECT reply');
  // since = the previous version: the patch.
  const r2 = client(`${authDaemon.url}/tenant`, { auth: { token: tok('b'), deltas: true, since: db1.data.version } });
  const p2 = await nthPatch(r2, 0);
  assert.deepEqual(p2, pb);
  // Anything else: the document.
  const r3 = client(`${authDaemon.url}/tenant`, { auth: { token: tok('b'), deltas: true, since: 1 } });
  assert.deepEqual((await waitForUpdate(r3, () => true)).data, nb);
});
