// Audiences, the daemon's side (issue 9): HS256 tokens minted here, in the
// CONNECT auth payload and as a Bearer header; refusals as CONNECT_ERROR
// {message, data: {code}}; two roles with different column privileges get
// different documents from one registered dashboard; a change costs one
// query per live audience (read from /healthz); a role the daemon cannot
// SET is refused; a token that expires mid-session is disconnected.
//
// pgpush.registry() and pgpush.register_dashboard() belong to
// sql/install.sql (the SQL side of issue 9). Until that lands, the test
// installs a shim with the same contract.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitForUpdate, waitForError, seedShop, insertSale, closeClients, sleep,
} from '../lib/daemon.mjs';

const SECRET = 'a-test-secret-of-well-over-thirty-two-bytes-0123456789';
let pg, db, products, daemon, dir;
const sockets = [];

const b64u = (b) => Buffer.from(b).toString('base64url');
function mint(claims, { secret = SECRET, alg = 'HS256' } = {}) {
  const head = b64u(JSON.stringify({ alg, typ: 'JWT' }));
  const body = b64u(JSON.stringify(claims));
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}
const nowSec = () => Math.floor(Date.now() / 1000);

const SHIM = `
CREATE TABLE IF NOT EXISTS pgpush.dashboards (
  name text PRIMARY KEY, fn regprocedure NOT NULL, tables regclass[] NOT NULL,
  audience_claims text[] NOT NULL DEFAULT '{}');
CREATE OR REPLACE FUNCTION pgpush.registry()
RETURNS TABLE (name text, fn_sql text, tables text[], audience_claims text[])
LANGUAGE sql STABLE AS $$
  SELECT d.name,
         pg_catalog.format('%I.%I', n.nspname, p.proname),
         ARRAY(SELECT c.relname::text FROM pg_catalog.unnest(d.tables) t
               JOIN pg_catalog.pg_class c ON c.oid = t),
         d.audience_claims
  FROM pgpush.dashboards d
  JOIN pg_catalog.pg_proc p ON p.oid = d.fn
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace $$;
CREATE OR REPLACE FUNCTION pgpush.register_dashboard(name text, fn regprocedure, tables regclass[],
  audience_claims text[] DEFAULT '{}') RETURNS void LANGUAGE sql AS $$
  INSERT INTO pgpush.dashboards VALUES (name, fn, tables, audience_claims)
  ON CONFLICT (name) DO UPDATE SET fn = EXCLUDED.fn, tables = EXCLUDED.tables,
    audience_claims = EXCLUDED.audience_claims;
  SELECT pg_catalog.pg_notify(pgpush.channel(), ':registry') $$;
GRANT EXECUTE ON FUNCTION pgpush.registry() TO pgpushd;
GRANT SELECT ON pgpush.dashboards TO pgpushd;
`;

// The dashboard function reads what the role may read: the viewer has no
// privilege on customer_email, and the function never asks for it then.
const SETUP = `
CREATE ROLE aud_viewer NOLOGIN;
CREATE ROLE aud_manager NOLOGIN;
CREATE ROLE aud_outsider NOLOGIN;
GRANT aud_viewer, aud_manager TO pgpushd;
GRANT SELECT ON products, stock TO aud_viewer, aud_manager;
GRANT SELECT (id, product_id, quantity, unit_price, sold_at) ON sales TO aud_viewer;
GRANT SELECT ON sales TO aud_manager;
CREATE FUNCTION public.aud_shop() RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE emails json;
BEGIN
  IF pg_catalog.has_column_privilege('public.sales', 'customer_email', 'SELECT') THEN
    SELECT json_agg(customer_email ORDER BY id DESC) INTO emails
      FROM (SELECT id, customer_email FROM public.sales ORDER BY id DESC LIMIT 5) s;
  END IF;
  RETURN json_build_object('role', current_user,
    'claims', current_setting('request.jwt.claims', true)::json,
    'sales', (SELECT count(*) FROM public.sales), 'emails', emails);
END $$;
GRANT EXECUTE ON FUNCTION public.aud_shop() TO aud_viewer, aud_manager, aud_outsider;
CREATE FUNCTION public.aud_stock() RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object('units', (SELECT sum(quantity) FROM public.stock)) $$;
GRANT EXECUTE ON FUNCTION public.aud_stock() TO aud_viewer, aud_manager;
CREATE FUNCTION public.aud_tenant() RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object('tenant', current_setting('request.jwt.claims', true)::json->>'tenant',
    'sub', current_setting('request.jwt.claims', true)::json->>'sub',
    'sales', (SELECT count(*) FROM public.sales)) $$;
GRANT EXECUTE ON FUNCTION public.aud_tenant() TO aud_viewer;
CREATE FUNCTION public.aud_slow() RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE t text := current_setting('request.jwt.claims', true)::json->>'tenant';
BEGIN
  IF t = 'slow' AND (SELECT count(*) FROM public.sales) > 0 THEN PERFORM pg_sleep(2); END IF;
  RETURN json_build_object('tenant', t, 'sales', (SELECT count(*) FROM public.sales));
END $$;
GRANT EXECUTE ON FUNCTION public.aud_slow() TO aud_viewer;
`;

async function health(d = daemon) {
  const r = await fetch(`${d.url}/healthz`, { headers: { connection: 'close' } });
  return r.json();
}

/** Resolves once the daemon has read n registered dashboards. */
async function registryRead(d, n) {
  for (let i = 0; i < 200; i++) {
    if ((await health(d)).dashboards === n) return;
    await sleep(50);
  }
  throw new Error(`the daemon did not read ${n} dashboards`);
}

function connectErr(socket, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no connect_error')), timeoutMs);
    socket.once('connect_error', (err) => { clearTimeout(t); resolve(err); });
    socket.once('connect', () => { clearTimeout(t); reject(new Error('connected')); });
  });
}

const client = (nsp, opts = {}) => {
  const s = connectClient(`${daemon.url}${nsp}`, { reconnection: false, ...opts });
  sockets.push(s);
  return s;
};

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  products = await seedShop(db, { products: 3 });
  const has = (await pg.psql("SELECT pg_catalog.to_regprocedure('pgpush.registry()') IS NOT NULL")).trim();
  if (has !== 't') await pg.psql(SHIM);
  await pg.psql(SETUP);
  await pg.psql("SELECT pgpush.register_dashboard('shop', 'public.aud_shop()', ARRAY['sales']::regclass[])");
  await pg.psql("SELECT pgpush.register_dashboard('stock', 'public.aud_stock()', ARRAY['stock']::regclass[])");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-aud-'));
  fs.writeFileSync(path.join(dir, 'secret'), SECRET);
  daemon = await startDaemon({
    db: pg.conninfo,
    args: ['--refresh-interval', '300', '--jwt-secret-file', path.join(dir, 'secret'),
      '--query-connections', '2', '--audience-grace', '1000'],
  });
  await registryRead(daemon, 2);
});

after(async () => {
  closeClients(sockets);
  try {
    if (daemon) await daemon.stopClean();
  } finally {
    if (pg) await pg.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('refusals: no token, a bad signature, garbage, an expired token', async () => {
  const cases = [
    [{}, 'auth_required'],
    [{ token: mint({ role: 'aud_viewer' }, { secret: 'another-secret-of-more-than-thirty-two-bytes!!' }) }, 'token_invalid'],
    [{ token: 'garbage' }, 'token_invalid'],
    [{ token: mint({ role: 'aud_viewer', exp: nowSec() - 3600 }) }, 'token_expired'],
    [{ token: mint({ sub: 'x' }) }, 'role_invalid'],
  ];
  for (const [auth, code] of cases) {
    const err = await connectErr(client('/shop', { auth }));
    assert.equal(err.data && err.data.code, code, `${JSON.stringify(auth).slice(0, 60)}: ${err.message}`);
    assert.equal(typeof err.message, 'string');
  }
});

test('two roles see different documents; sub does not split an audience; one query per audience', async () => {
  const viewer = client('/shop', { auth: { token: mint({ role: 'aud_viewer', sub: 'v1' }) } });
  const viewer2 = client('/shop', { auth: { token: mint({ role: 'aud_viewer', sub: 'v2' }) } });
  const manager = client('/shop', { auth: { token: mint({ role: 'aud_manager', sub: 'm1' }) } });
  const bearer = client('/shop', { extraHeaders: { authorization: `Bearer ${mint({ role: 'aud_manager' })}` } });
  for (const s of [viewer, viewer2, bearer]) {
    await waitForUpdate(s, (d) => d.role === (s === bearer ? 'aud_manager' : 'aud_viewer'));
  }
  await waitForUpdate(manager, (d) => d.role === 'aud_manager');
  const h0 = await health();
  assert.equal(h0.perDashboard.shop.audiences, 2, `two audiences: ${JSON.stringify(h0)}`);
  assert.deepEqual((await waitForUpdate(viewer, () => true)).data.claims, { role: 'aud_viewer' },
    'the query sees the projection, never sub');

  const sale = await insertSale(db, products[0].id, { customer: 'Secret Person' });
  const n = Number((await db.query('SELECT count(*) FROM sales')).rows[0].count);
  for (const s of [viewer, viewer2, manager, bearer]) await waitForUpdate(s, (d) => d.sales === n);
  const m = await waitForUpdate(manager, (d) => d.sales === n);
  assert.match(JSON.stringify(m.data.emails), /@example\.com/, 'the manager sees e-mails');
  for (const s of [viewer, viewer2]) {
    for (const u of s.rec.updates) {
      assert.equal(u.data.emails, null, 'the viewer never gets an e-mail');
      assert.doesNotMatch(JSON.stringify(u.data), /@example\.com/);
    }
  }
  await sleep(300);
  const h1 = await health();
  assert.equal(h1.queries - h0.queries, 2, `one query per audience for one sale (${sale.id})`);
  assert.equal(h1.perDashboard.shop.recomputes - h0.perDashboard.shop.recomputes, 2);
  assert.equal(h1.perDashboard.stock.recomputes, h0.perDashboard.stock.recomputes,
    'a dashboard not registered on sales is not recomputed');
  for (const s of [viewer, viewer2, manager, bearer]) s.disconnect();
});

test('a role the daemon cannot SET: the audience is disconnected, then refused at CONNECT', async () => {
  const s = client('/shop', { auth: { token: mint({ role: 'aud_outsider' }) } });
  const e = await waitForError(s, (d) => d.code === 'role_invalid', 5000);
  assert.equal(e.data.code, 'role_invalid');
  await sleep(100);
  assert.equal(s.connected, false, 'disconnected from the namespace');
  const err = await connectErr(client('/shop', { auth: { token: mint({ role: 'aud_outsider' }) } }));
  assert.equal(err.data.code, 'role_invalid');
});

test('a token that expires mid-session: dashboardDataError token_expired and a disconnect', async () => {
  // Within the daemon's 30 s leeway: valid now, expired in about 3 s.
  const s = client('/stock', { auth: { token: mint({ role: 'aud_viewer', exp: nowSec() - 27 }) } });
  await waitForUpdate(s, (d) => typeof d.units !== 'undefined');
  const disc = new Promise((resolve) => s.once('disconnect', resolve));
  const e = await waitForError(s, (d) => d.code === 'token_expired', 8000);
  assert.equal(e.data.code, 'token_expired');
  assert.equal(await disc, 'io server disconnect');
});

test('an audience without clients is dropped after the grace period', async () => {
  await sleep(2500);
  const h = await health();
  assert.equal(h.audiences, 0, JSON.stringify(h));
  assert.equal(h.dashboards, 2);
});

test('the registry changes live: register, re-register, unregister', async () => {
  const late = client('/late', { auth: { token: mint({ role: 'aud_viewer' }) } });
  const err = await connectErr(late);
  assert.match(err.message, /Invalid namespace/, 'not registered yet');
  await pg.psql("SELECT pgpush.register_dashboard('late', 'public.aud_stock()', ARRAY['stock']::regclass[])");
  await registryRead(daemon, 3);
  const s = client('/late', { auth: { token: mint({ role: 'aud_viewer' }) } });
  await waitForUpdate(s, (d) => typeof d.units !== 'undefined');
  // Re-registering on another function recomputes its audiences.
  await pg.psql("SELECT pgpush.register_dashboard('late', 'public.aud_shop()', ARRAY['sales']::regclass[])");
  const u = await waitForUpdate(s, (d) => d.role === 'aud_viewer');
  assert.equal(u.data.reason, 'registry');
  const disc = new Promise((resolve) => s.once('disconnect', resolve));
  await pg.psql("DELETE FROM pgpush.dashboards WHERE name = 'late'; SELECT pg_notify(pgpush.channel(), ':registry')");
  const e = await waitForError(s, (d) => d.code === 'dashboard_unregistered');
  assert.equal(e.data.code, 'dashboard_unregistered');
  assert.equal(await disc, 'io server disconnect');
});

test('a declared claim splits audiences, an undeclared one does not', async () => {
  await pg.psql("SELECT pgpush.register_dashboard('tenant', 'public.aud_tenant()', ARRAY['sales']::regclass[], '{tenant}')");
  await registryRead(daemon, 3);
  const h0 = await health();
  const ss = [];
  for (const t of ['t1', 't2', 't3']) {
    for (const sub of ['a', 'b']) {
      const s = client('/tenant', { auth: { token: mint({ role: 'aud_viewer', tenant: t, sub }) } });
      s.tenant = t;
      ss.push(s);
    }
  }
  for (const s of ss) await waitForUpdate(s, (d) => d.tenant === s.tenant);
  const h1 = await health();
  assert.equal(h1.perDashboard.tenant.audiences, 3, 'three tenants, three audiences');
  await Promise.all([1, 2, 3].map(() => insertSale(db, products[1].id)));
  const n = Number((await db.query('SELECT count(*) FROM sales')).rows[0].count);
  for (const s of ss) await waitForUpdate(s, (d) => d.sales === n);
  for (const s of ss) {
    for (const u of s.rec.updates) {
      assert.equal(u.data.tenant, s.tenant, 'every document is its own tenant\'s');
      assert.equal(u.data.sub, null, 'sub is not in the audience\'s claims');
    }
  }
  assert.ok(h1.queries - h0.queries === 3, `three queries to start three audiences (${h1.queries - h0.queries})`);
  for (const s of ss) s.disconnect();
  await pg.psql("DELETE FROM pgpush.dashboards WHERE name = 'tenant'; SELECT pg_notify(pgpush.channel(), ':registry')");
  await registryRead(daemon, 2);
});

test('a slow audience does not hold up the others (two query connections)', async () => {
  await pg.psql("SELECT pgpush.register_dashboard('slowdash', 'public.aud_slow()', ARRAY['sales']::regclass[], '{tenant}')");
  await registryRead(daemon, 3);
  const slow = client('/slowdash', { auth: { token: mint({ role: 'aud_viewer', tenant: 'slow' }) } });
  const fast = client('/slowdash', { auth: { token: mint({ role: 'aud_viewer', tenant: 'fast' }) } });
  await waitForUpdate(fast, (d) => d.tenant === 'fast', 8000);
  await waitForUpdate(slow, (d) => d.tenant === 'slow', 8000);
  const sale = await insertSale(db, products[2].id);
  const n = Number((await db.query('SELECT count(*) FROM sales')).rows[0].count);
  const f = await waitForUpdate(fast, (d) => d.sales === n, 8000);
  const sl = await waitForUpdate(slow, (d) => d.sales === n, 8000);
  assert.ok(f.t - sale.committedAt < 1000, `the fast audience in ${(f.t - sale.committedAt).toFixed(0)} ms`);
  assert.ok(sl.t - sale.committedAt >= 1900, `the slow one after its 2 s (${(sl.t - sale.committedAt).toFixed(0)} ms)`);
  slow.disconnect();
  fast.disconnect();
  await pg.psql("DELETE FROM pgpush.dashboards WHERE name = 'slowdash'; SELECT pg_notify(pgpush.channel(), ':registry')");
  await registryRead(daemon, 2);
});

test('--anon-role without a key: tokenless clients get that role', async () => {
  const anon = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300', '--anon-role', 'aud_viewer'] });
  try {
    await registryRead(anon, 2);
    const s = connectClient(`${anon.url}/shop`, { reconnection: false });
    sockets.push(s);
    const u = await waitForUpdate(s, (d) => d.role === 'aud_viewer');
    assert.equal(u.data.emails, null);
    s.disconnect();
  } finally {
    await anon.stopClean();
  }
});
