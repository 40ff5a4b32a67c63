// What a hostile database role can do to the dashboard (issue 8): a trojan
// function planted in a schema on everyone's search_path, notifications with
// any payload and floods of them, databases in other encodings. Throughout,
// well-behaved clients must stay connected and get clean documents.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitConnected, waitForUpdate, waitForError, closeClients, seedShop,
} from '../lib/daemon.mjs';

let pg;
let admin;     // superuser client
let mallory;   // an unprivileged role: LOGIN and nothing else
const sockets = [];

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  admin = await pg.client();
  await seedShop(admin, { products: 3 });
  await admin.query('CREATE ROLE mallory LOGIN');
  mallory = await pg.client({ user: 'mallory' });
});

after(async () => {
  closeClients(sockets);
  if (pg) await pg.stop();
});

// ------------------------------------------------------------ search_path --

test('a trojan json_build_object in public is never called by pgpush.dashboard()', { timeout: 30000 }, async () => {
  // PostgreSQL < 15 lets PUBLIC create in schema public; emulate it.
  await admin.query('GRANT CREATE ON SCHEMA public TO PUBLIC');
  try {
    // An exact-type overload beats pg_catalog's variadic json_build_object
    // for the forecast entries ('day', date, 'stock', numeric).
    await mallory.query(`CREATE FUNCTION public.json_build_object(text, date, text, numeric)
      RETURNS json LANGUAGE sql AS $$ SELECT '{"trojan":true}'::json $$`);
    // The daemon's session has the default search_path ("$user", public).
    const direct = await admin.query('SELECT pgpush.dashboard()::text AS doc');
    assert.ok(!direct.rows[0].doc.includes('trojan'), 'a direct call does not reach the trojan');

    const d = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300'] });
    try {
      const s = connectClient(d.url); sockets.push(s);
      await waitConnected(s);
      const { data } = await waitForUpdate(s, () => true, 10000);
      assert.ok(!JSON.stringify(data).includes('trojan'), 'the pushed document does not come from the trojan');
      assert.ok(data.stockPredictions.length > 0);
      for (const p of data.stockPredictions) {
        for (const f of p.forecast) assert.deepEqual(Object.keys(f), ['day', 'stock']);
      }
      s.close();
    } finally {
      await d.stopClean();
    }
    // Every function in schema pgpush pins its search_path.
    const r = await admin.query(`SELECT p.oid::regprocedure::text AS f, p.proconfig
      FROM pg_proc p WHERE p.pronamespace = 'pgpush'::regnamespace ORDER BY 1`);
    assert.ok(r.rows.length >= 6);
    for (const row of r.rows) {
      assert.deepEqual(row.proconfig, ['search_path=pg_catalog, pg_temp'], `${row.f} pins search_path`);
    }
  } finally {
    await admin.query('DROP FUNCTION IF EXISTS public.json_build_object(text, date, text, numeric)');
    await admin.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
  }
});

// -------------------------------------------------------------- encodings --

async function databaseIn(name, encoding) {
  await admin.query(`CREATE DATABASE ${name} ENCODING '${encoding}' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'`);
  for (const f of ['sql/schema.sql', 'sql/install.sql']) await pg.psqlFile(f, { db: name });
  const c = await pg.client({ database: name });
  return c;
}

test('a LATIN1 database with non-ASCII text gives a UTF-8 document', { timeout: 30000 }, async () => {
  const c = await databaseIn('latin', 'LATIN1');
  await c.query("INSERT INTO products (sku, name, unit_price) VALUES ('L-1', 'Café crème à 5 ¤', 1)");
  await c.end();
  const d = await startDaemon({ db: `${pg.conninfo} dbname=latin`, args: ['--refresh-interval', '300'],
    env: { PGCLIENTENCODING: 'LATIN1' } });
  try {
    const s = connectClient(d.url); sockets.push(s);
    await waitConnected(s);
    const { data } = await waitForUpdate(s, () => true, 10000);
    // No stock row, so no prediction: check the summary came, then the name
    // through a sale.
    assert.equal(typeof data.version, 'number');
    const w = await pg.client({ database: 'latin' });
    await w.query("INSERT INTO sales (product_id, quantity, unit_price, customer_name) SELECT id, 1, 1, 'Zoë' FROM products WHERE sku = 'L-1'");
    await w.end();
    const { data: doc } = await waitForUpdate(s, (x) => x.recentSales.length > 0, 10000);
    assert.equal(doc.recentSales[0].product, 'Café crème à 5 ¤');
    assert.equal(doc.recentSales[0].customerName, 'Zoë');
    assert.deepEqual(s.rec.errors, []);
    s.close();
  } finally {
    await d.stopClean();
  }
});

test('a SQL_ASCII database holding raw high bytes gives bad_result, never a broken frame', { timeout: 30000 }, async () => {
  const c = await databaseIn('ascii', 'SQL_ASCII');
  // 0xE9 alone: Latin-1 'é', invalid as UTF-8. SQL_ASCII stores it unchecked.
  await c.query("INSERT INTO products (sku, name, unit_price) VALUES ('A-1', E'caf\\xe9', 1)");
  await c.query("INSERT INTO sales (product_id, quantity, unit_price) SELECT id, 1, 1 FROM products");
  await c.end();
  const d = await startDaemon({ db: `${pg.conninfo} dbname=ascii`, args: ['--refresh-interval', '300'] });
  try {
    const s = connectClient(d.url); sockets.push(s);
    await waitConnected(s);
    const { data: e } = await waitForError(s, () => true, 10000);
    assert.equal(e.code, 'bad_result');
    assert.ok(d.grep(/(not valid UTF-8|cannot be sent as UTF-8) \(server_encoding=SQL_ASCII/).length > 0, 'the log says why');
    assert.equal(s.rec.updates.length, 0);
    assert.ok(s.connected);
    assert.deepEqual(s.rec.disconnects, []);
    s.close();
  } finally {
    await d.stopClean();
  }
});
