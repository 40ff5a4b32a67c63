// The database side of issue 9 on its own, against a real throwaway
// cluster: the registry of named dashboards (register, re-register,
// unregister, validation, the ':registry' notification, registry() as
// pgpushd's role reads it), the reference dashboard under the demo's roles
// (column privileges), and the tenant policy of sql/demo-roles.sql under
// PostgREST's request.jwt.claims. No daemon involved.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startCluster } from '../lib/pgcluster.mjs';

let pg;
let listener;
let db;

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  // The demo's roles and policy, as the quickstart loads them.
  await pg.psqlFile('sql/demo-roles.sql');
  listener = await pg.client();
  db = await pg.client();
  await db.query(`INSERT INTO products (sku, name, unit_price) VALUES ('R-1', 'Registry mug', 4.00)`);
  await db.query(`INSERT INTO stock (product_id, quantity) SELECT id, 100 FROM products`);
});

after(async () => {
  if (pg) await pg.stop();
});

const one = async (sql) => (await pg.psql(sql)).trim();

/** Notifications on channel pgpush caused by fn(), up to a sentinel. */
async function notificationsDuring(fn) {
  const seen = [];
  let done;
  const arrived = new Promise((resolve) => { done = resolve; });
  const onNote = (m) => {
    if (m.channel === 'sentinel') done();
    else seen.push(m.payload);
  };
  listener.on('notification', onNote);
  await listener.query('LISTEN pgpush');
  await listener.query('LISTEN sentinel');
  try {
    await fn();
    await db.query(`NOTIFY sentinel`);
    await arrived;
  } finally {
    listener.off('notification', onNote);
    await listener.query('UNLISTEN *');
  }
  return seen;
}

async function registry() {
  return (await db.query('SELECT * FROM pgpush.registry()')).rows;
}

test('registry: register, re-register replaces, unregister; each change notifies :registry', async () => {
  await db.query(`CREATE SCHEMA "Ops Schema"`);
  await db.query(`CREATE FUNCTION "Ops Schema"."Ops Board"() RETURNS jsonb LANGUAGE sql STABLE
                  SET search_path = pg_catalog, pg_temp AS $$ SELECT '{"ops": true}'::jsonb $$`);
  await db.query(`GRANT USAGE ON SCHEMA "Ops Schema" TO pgpushd`);

  let seen = await notificationsDuring(() => db.query(
    `SELECT pgpush.register_dashboard('ops', '"Ops Schema"."Ops Board"()', '{sales}')`));
  assert.deepEqual(seen, [':registry'], 'one notification (the trigger\'s and the function\'s fold)');

  const ops = (await registry()).find((r) => r.name === 'ops');
  assert.deepEqual(ops, { name: 'ops', fn_sql: '"Ops Schema"."Ops Board"', tables: ['sales'], audience_claims: [] });
  // fn_sql is ready to call.
  assert.deepEqual((await db.query(`SELECT ${ops.fn_sql}() AS doc`)).rows[0].doc, { ops: true });

  // Idempotent; re-registering replaces tables and claims; claims sorted, distinct.
  seen = await notificationsDuring(() => db.query(
    `SELECT pgpush.register_dashboard('ops', '"Ops Schema"."Ops Board"()', '{stock, sales, public.stock}',
                                      '{tenant, sub, tenant}')`));
  assert.deepEqual(seen, [':registry']);
  assert.deepEqual((await registry()).find((r) => r.name === 'ops'),
    { name: 'ops', fn_sql: '"Ops Schema"."Ops Board"', tables: ['sales', 'stock'], audience_claims: ['sub', 'tenant'] });
  assert.equal(await one(`SELECT count(*) FROM pgpush.dashboards WHERE name = 'ops'`), '1');

  // A DBA's direct edit notifies too.
  seen = await notificationsDuring(() => db.query(`UPDATE pgpush.dashboards SET audience_claims = '{}' WHERE name = 'ops'`));
  assert.deepEqual(seen, [':registry']);

  // A renamed function is followed (the registry holds the function, not its name).
  await db.query(`ALTER FUNCTION "Ops Schema"."Ops Board"() RENAME TO board`);
  assert.equal((await registry()).find((r) => r.name === 'ops').fn_sql, '"Ops Schema".board');

  seen = await notificationsDuring(() => db.query(`SELECT pgpush.unregister_dashboard('ops')`));
  assert.deepEqual(seen, [':registry']);
  assert.equal((await registry()).find((r) => r.name === 'ops'), undefined);
  // Unregistering what is not there is a no-op (that still notifies).
  await db.query(`SELECT pgpush.unregister_dashboard('ops')`);

  // A dropped function takes its dashboard out of registry().
  await db.query(`SELECT pgpush.register_dashboard('ops', '"Ops Schema".board()', '{sales}')`);
  await db.query(`DROP FUNCTION "Ops Schema".board()`);
  assert.equal((await registry()).find((r) => r.name === 'ops'), undefined);
  await db.query(`SELECT pgpush.unregister_dashboard('ops')`);
  await db.query(`DROP SCHEMA "Ops Schema"`);
});

test('registry: what register_dashboard refuses, and a refusal changes nothing', async () => {
  await db.query(`CREATE TABLE public.unattached (id int)`);
  await db.query(`CREATE FUNCTION public.ok_board() RETURNS json LANGUAGE sql STABLE AS $$ SELECT '{}'::json $$`);
  await db.query(`CREATE FUNCTION public.arg_board(x int) RETURNS json LANGUAGE sql AS $$ SELECT '{}'::json $$`);
  await db.query(`CREATE FUNCTION public.text_board() RETURNS text LANGUAGE sql AS $$ SELECT '{}' $$`);
  await db.query(`CREATE FUNCTION public.set_board() RETURNS SETOF json LANGUAGE sql AS $$ SELECT '{}'::json $$`);
  await db.query(`CREATE FUNCTION public.definer_board() RETURNS json LANGUAGE sql SECURITY DEFINER
                  AS $$ SELECT '{}'::json $$`);
  await db.query(`CREATE PROCEDURE public.proc_board() LANGUAGE sql AS $$ SELECT 1 $$`);
  const before = await registry();
  const cases = [
    [`'Ops'`, `'public.ok_board()'`, `'{sales}'`, `'{}'`, /invalid dashboard name "Ops"/],
    [`'a/b'`, `'public.ok_board()'`, `'{sales}'`, `'{}'`, /invalid dashboard name/],
    [`''`, `'public.ok_board()'`, `'{sales}'`, `'{}'`, /invalid dashboard name/],
    [`repeat('x', 64)`, `'public.ok_board()'`, `'{sales}'`, `'{}'`, /invalid dashboard name/],
    [`NULL`, `'public.ok_board()'`, `'{sales}'`, `'{}'`, /invalid dashboard name/],
    [`'x'`, `'public.arg_board(int)'`, `'{sales}'`, `'{}'`, /without arguments returning one json or jsonb/],
    [`'x'`, `'public.text_board()'`, `'{sales}'`, `'{}'`, /without arguments returning one json or jsonb/],
    [`'x'`, `'public.set_board()'`, `'{sales}'`, `'{}'`, /without arguments returning one json or jsonb/],
    [`'x'`, `'public.proc_board()'`, `'{sales}'`, `'{}'`, /without arguments returning one json or jsonb/],
    [`'x'`, `'public.definer_board()'`, `'{sales}'`, `'{}'`, /is SECURITY DEFINER/],
    [`'x'`, `'public.nope()'`, `'{sales}'`, `'{}'`, /function "public.nope\(\)" does not exist/],
    [`'x'`, `'public.ok_board()'`, `'{unattached}'`, `'{}'`, /table public\.unattached is not attached/],
    [`'x'`, `'public.ok_board()'`, `'{sales,unattached}'`, `'{}'`, /table public\.unattached is not attached/],
    [`'x'`, `'public.ok_board()'`, `'{}'`, `'{}'`, /needs at least one table/],
    [`'x'`, `'public.ok_board()'`, `NULL`, `'{}'`, /needs at least one table/],
    [`'x'`, `'public.ok_board()'`, `'{sales}'`, `'{""}'`, /invalid claim name ""/],
    [`'x'`, `'public.ok_board()'`, `'{sales}'`, `'{"a b"}'`, /invalid claim name "a b"/],
    [`'x'`, `'public.ok_board()'`, `'{sales}'`, `ARRAY['a"b']`, /invalid claim name/],
    [`'x'`, `'public.ok_board()'`, `'{sales}'`, `ARRAY[NULL]::text[]`, /invalid claim name/],
    [`'x'`, `'public.ok_board()'`, `'{sales}'`, `ARRAY['é']`, /invalid claim name/],
    [`'x'`, `'public.ok_board()'`, `'{sales}'`, `ARRAY[repeat('c', 129)]`, /invalid claim name/],
    [`'x'`, `'public.ok_board()'`, `'{sales}'`, `(SELECT array_agg('c' || i) FROM generate_series(1, 17) i)`, /at most 16/],
  ];
  for (const [name, fn, tables, claims, re] of cases) {
    await assert.rejects(db.query(`SELECT pgpush.register_dashboard(${name}, ${fn}, ${tables}, ${claims})`), re,
      `register_dashboard(${name}, ${fn}, ${tables}, ${claims})`);
  }
  // The CHECK constraints hold for direct edits as well.
  await assert.rejects(db.query(`INSERT INTO pgpush.dashboards VALUES ('Bad Name', 'public.ok_board()', '{sales}')`),
    /dashboards_name_check/);
  assert.deepEqual(await registry(), before, 'nothing registered by a refusal');

  // Claims may be URLs, as namespaced JWT claims are.
  await db.query(`SELECT pgpush.register_dashboard('ok', 'public.ok_board()', '{sales}',
                                                    '{https://example.com/tenant,org_id}')`);
  assert.deepEqual((await registry()).find((r) => r.name === 'ok').audience_claims,
    ['https://example.com/tenant', 'org_id']);
  await db.query(`SELECT pgpush.unregister_dashboard('ok')`);
  await db.query(`DROP FUNCTION public.ok_board(), public.arg_board(int), public.text_board(), public.set_board(),
                  public.definer_board(); DROP PROCEDURE public.proc_board(); DROP TABLE public.unattached`);
});

test('registry: pgpushd\'s role may read registry() and nothing else of it; PUBLIC may not', async () => {
  // The demo registered 'store'.
  const c = await pg.client({ user: 'pgpushd' });
  try {
    const rows = (await c.query('SELECT * FROM pgpush.registry()')).rows;
    assert.deepEqual(rows, [{ name: 'store', fn_sql: 'pgpush_demo.store_dashboard', tables: ['sales', 'stock'],
      audience_claims: ['store_id'] }]);
    await assert.rejects(c.query('SELECT * FROM pgpush.dashboards'), /permission denied/);
    await assert.rejects(c.query(`SELECT pgpush.register_dashboard('evil', 'pgpush.dashboard()', '{sales}')`),
      /permission denied/);
    await assert.rejects(c.query(`SELECT pgpush.unregister_dashboard('store')`), /permission denied/);
  } finally {
    await c.end();
  }
  await pg.psql('CREATE ROLE someone LOGIN', { db: 'postgres' });
  const s = await pg.client({ user: 'someone' });
  try {
    await assert.rejects(s.query('SELECT * FROM pgpush.registry()'), /permission denied/);
  } finally {
    await s.end();
  }
});

test('install and uninstall keep and remove the registry', async () => {
  await pg.psqlFile('sql/install.sql');
  assert.equal((await registry()).length, 1, 'a rerun of install.sql keeps the registered dashboards');
  await pg.psqlFile('sql/grant.sql');
  // uninstall.sql removes it all with the schema; the demo's own schema stays.
  await pg.psqlFile('sql/uninstall.sql');
  assert.equal(await one(`SELECT to_regclass('pgpush.dashboards') IS NULL AND to_regproc('pgpush.registry') IS NULL
                          AND to_regproc('pgpush.register_dashboard') IS NULL`), 't');
  await pg.psqlFile('sql/install.sql');
  await pg.grantDaemon();
  await pg.psqlFile('sql/demo-roles.sql');
  await pg.psqlFile('sql/demo-roles.sql');
  assert.equal((await registry()).length, 1, 'demo-roles.sql registers its dashboard again, once');
});

// ----------------------------------------------------- roles and policies --

/** The document fn returns for role with the given claims, as pgpushd would run it. */
async function docAs(role, claims, fn = 'pgpush.dashboard') {
  const c = await pg.client({ user: 'pgpushd' });
  try {
    await c.query('BEGIN READ ONLY');
    await c.query(`SET LOCAL ROLE ${role}`);
    await c.query(`SELECT set_config('request.jwt.claims', $1, true)`, [JSON.stringify({ role, ...claims })]);
    const doc = (await c.query(`SELECT ${fn}() AS doc`)).rows[0].doc;
    await c.query('COMMIT');
    // Same session, next transaction: the setting reads '' now, which the
    // functions and the policy must take as "no claims".
    await c.query('BEGIN READ ONLY');
    await c.query(`SET LOCAL ROLE ${role}`);
    const again = (await c.query(`SELECT ${fn}() AS doc`)).rows[0].doc;
    await c.query('COMMIT');
    return { doc, again };
  } finally {
    await c.end();
  }
}

test('reference dashboard: customer columns only for roles that may read them; no-auth keeps them', async () => {
  await db.query(`INSERT INTO sales (product_id, quantity, unit_price, customer_name, customer_email, store_id)
                  SELECT id, 1, 4.00, 'Ada Lovelace', 'ada@example.com', s FROM products, generate_series(1, 3) s`);
  const keys = (doc) => [...new Set(doc.recentSales.flatMap((r) => Object.keys(r)))].sort();
  const all = ['amount', 'customerEmail', 'customerName', 'id', 'product', 'productId', 'quantity', 'sku', 'soldAt'];
  const noCustomer = all.filter((k) => !k.startsWith('customer'));

  // pgpushd's own role, as in no-auth mode: as before.
  const c = await pg.client({ user: 'pgpushd' });
  const own = (await c.query('SELECT pgpush.dashboard() AS doc')).rows[0].doc;
  await c.end();
  assert.deepEqual(keys(own), all);
  assert.equal(own.recentSales.length, 3);

  const manager = (await docAs('dashboard_manager', {})).doc;
  assert.deepEqual(keys(manager), all);
  assert.ok(manager.recentSales.every((r) => r.customerEmail === 'ada@example.com'));

  const viewer = (await docAs('dashboard_viewer', {})).doc;
  assert.deepEqual(keys(viewer), noCustomer);
  assert.ok(!JSON.stringify(viewer).includes('ada@example.com'));
  assert.equal(viewer.recentSales.length, 3, 'every store');
  assert.deepEqual(viewer.summary, manager.summary);

  // Column by column.
  await pg.psql(`CREATE ROLE names_only NOLOGIN; GRANT names_only TO pgpushd;
                 GRANT USAGE ON SCHEMA pgpush TO names_only; GRANT SELECT ON products, stock TO names_only;
                 GRANT SELECT (id, product_id, quantity, unit_price, sold_at, customer_name) ON sales TO names_only;
                 CREATE POLICY names_only_all ON sales FOR SELECT TO names_only USING (true)`);
  assert.deepEqual(keys((await docAs('names_only', {})).doc), [...noCustomer, 'customerName'].sort());
  await pg.psql(`REVOKE SELECT (customer_name) ON sales FROM names_only; GRANT SELECT (customer_email) ON sales TO names_only`);
  assert.deepEqual(keys((await docAs('names_only', {})).doc), [...noCustomer, 'customerEmail'].sort());
  await pg.psql(`DROP POLICY names_only_all ON sales; DROP OWNED BY names_only; DROP ROLE names_only`);

  // A role with no access at all gets an error, never a partial document.
  await pg.psql(`CREATE ROLE nobody_role NOLOGIN; GRANT nobody_role TO pgpushd; GRANT USAGE ON SCHEMA pgpush TO nobody_role`);
  await assert.rejects(docAs('nobody_role', {}), /permission denied/);
  await pg.psql(`DROP OWNED BY nobody_role; DROP ROLE nobody_role`);
});

test('tenant policy: a store screen sees its store only, from request.jwt.claims; no claim, no rows', async () => {
  await db.query(`DELETE FROM sales`);
  const ids = { 1: [], 2: [], 3: [] };
  for (const s of [1, 2, 3]) {
    for (let i = 0; i < 4; i++) {
      const r = await db.query(`INSERT INTO sales (product_id, quantity, unit_price, customer_email, store_id)
                                SELECT id, $1, 4.00, 'x@example.com', $2 FROM products RETURNING id`, [s, s]);
      ids[s].push(Number(r.rows[0].id));
    }
  }
  for (const s of [1, 2, 3]) {
    const { doc, again } = await docAs('dashboard_store', { store_id: s, sub: 'user-1' }, 'pgpush_demo.store_dashboard');
    assert.equal(doc.storeId, s);
    assert.deepEqual(doc.recentSales.map((r) => r.id).sort((a, b) => a - b), ids[s]);
    assert.equal(doc.summary.salesToday, 4);
    assert.ok(!JSON.stringify(doc).includes('x@example.com'), 'no customer data for a store screen');
    assert.equal(again.storeId, null);
    assert.equal(again.recentSales.length, 0, 'without a store_id claim a store screen sees no sale');
  }
  // A string claim works as PostgREST passes it; the viewer sees every store.
  assert.equal((await docAs('dashboard_store', { store_id: '2' }, 'pgpush_demo.store_dashboard')).doc.summary.salesToday, 4);
  assert.equal((await docAs('dashboard_viewer', { store_id: 2 }, 'pgpush_demo.store_dashboard')).doc.summary.salesToday, 12);

  // Supabase's helpers, as sql/README.md defines them, read the same setting.
  await pg.psql(`
    CREATE SCHEMA IF NOT EXISTS auth;
    CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE
        SET search_path = pg_catalog, pg_temp
        AS $$ SELECT coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb $$;
    CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE
        SET search_path = pg_catalog, pg_temp
        AS $$ SELECT nullif(auth.jwt() ->> 'sub', '')::uuid $$;
    CREATE OR REPLACE FUNCTION public.whoami() RETURNS json LANGUAGE sql STABLE
        SET search_path = pg_catalog, pg_temp
        AS $$ SELECT json_build_object('uid', auth.uid(), 'store', auth.jwt() ->> 'store_id', 'user', current_user) $$;
    GRANT USAGE ON SCHEMA auth TO dashboard_store; GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA auth TO dashboard_store;`);
  const uid = crypto.randomUUID();
  const who = await docAs('dashboard_store', { store_id: 2, sub: uid }, 'public.whoami');
  assert.deepEqual(who.doc, { uid, store: '2', user: 'dashboard_store' });
  assert.deepEqual(who.again, { uid: null, store: null, user: 'dashboard_store' }, "'' outside the transaction is no claims");
  await pg.psql('DROP FUNCTION public.whoami(); DROP SCHEMA auth CASCADE');

  // The daemon's login role may be NOINHERIT (it then holds none of the
  // privileges of the roles it switches to) and still read as before.
  await pg.psql('ALTER ROLE pgpushd NOINHERIT', { db: 'postgres' });
  try {
    const c = await pg.client({ user: 'pgpushd' });
    assert.equal((await c.query('SELECT pgpush.dashboard() AS doc')).rows[0].doc.summary.salesToday, 12);
    await c.end();
    assert.equal((await docAs('dashboard_store', { store_id: 3 }, 'pgpush_demo.store_dashboard')).doc.summary.salesToday, 4);
  } finally {
    await pg.psql('ALTER ROLE pgpushd INHERIT', { db: 'postgres' });
  }
});

test('demo-data.sql after demo-roles.sql: every sale in store 1, 2 or 3; the viewer and a store see their share', async () => {
  await pg.psqlFile('sql/demo-data.sql');
  const dist = (await db.query(`SELECT store_id, count(*)::int AS n FROM sales GROUP BY 1 ORDER BY 1`)).rows;
  assert.deepEqual(dist.map((r) => r.store_id), [1, 2, 3], JSON.stringify(dist));
  assert.ok(dist.every((r) => r.n > 2000), JSON.stringify(dist));
  const viewer = (await docAs('dashboard_viewer', {})).doc;
  const store = (await docAs('dashboard_store', { store_id: 3 }, 'pgpush_demo.store_dashboard')).doc;
  assert.ok(store.summary.sales30d > 0 && store.summary.sales30d < viewer.summary.sales30d / 2,
    `store 3: ${store.summary.sales30d} of ${viewer.summary.sales30d} sales`);
});
