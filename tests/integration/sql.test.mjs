// The database side on its own, against a real throwaway cluster: install /
// uninstall idempotence, the doorbell (once per statement, never on
// rollback), attach/detach, the dashboard document of docs/protocol.md on a
// small known data set, and the dashboard's speed on sql/demo-data.sql.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { startCluster, repoRoot } from '../lib/pgcluster.mjs';

let pg;        // the cluster
let listener;  // a pg Client that LISTENs
let writer;    // a pg Client that writes

before(async () => {
  pg = await startCluster();
  listener = await pg.client();
  writer = await pg.client();
});

after(async () => {
  if (pg) await pg.stop();
});

const one = async (sql) => (await pg.psql(sql)).trim();

// pg.psqlFile() keeps only stdout; warnings go to stderr.
function psqlFileStderr(file, db) {
  return new Promise((resolve, reject) => {
    execFile(path.join(pg.bindir, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db, '-f', path.join(repoRoot, file)],
      { env: { ...process.env, ...pg.env } },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stderr)));
  });
}

// ------------------------------------------------------------- helpers ----

let sentinels = 0;
/**
 * Run fn(writer), then return every notification `listener` received
 * because of it. A sentinel NOTIFY sent after fn's transactions marks the
 * end: notifications reach a listener in commit order, so once the sentinel
 * arrives everything fn caused has arrived too, and nothing is missed or
 * waited for by guesswork.
 */
async function notificationsDuring(fn) {
  const seen = [];
  const token = `sentinel-${++sentinels}`;
  let done;
  const arrived = new Promise((resolve) => { done = resolve; });
  const onNote = (m) => {
    if (m.channel === 'pgpush_sentinel' && m.payload === token) done();
    else seen.push({ channel: m.channel, payload: m.payload });
  };
  listener.on('notification', onNote);
  await listener.query('LISTEN pgpush_sentinel');
  try {
    await fn(writer);
    await writer.query('SELECT pg_notify($1, $2)', ['pgpush_sentinel', token]);
    let timer;
    await Promise.race([
      arrived,
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('sentinel notification never arrived')), 10000); }),
    ]);
    clearTimeout(timer);
  } finally {
    listener.off('notification', onNote);
  }
  return seen;
}

async function attachedTables() {
  const r = await writer.query('SELECT relation::text AS t, channel FROM pgpush.attached() ORDER BY 1');
  return r.rows;
}

async function doorbellTriggerCount() {
  return Number(await one(`SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgfoid = 'pgpush.doorbell()'::regprocedure`));
}

// 'YYYY-MM-DD' + n days, calendar arithmetic (no time zone involved).
function addDays(isoDay, n) {
  const d = new Date(`${isoDay}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

// Integer division rounded half away from zero, for non-negative operands:
// numeric round() in PostgreSQL. Money is kept in integer cents in the
// expectations so no float rounding creeps in.
const roundDiv = (a, b) => Math.floor((2 * a + b) / (2 * b));

// ------------------------------------------------------ install/uninstall --

test('install: schema.sql and install.sql are idempotent and attach sales and stock once', async () => {
  for (let i = 0; i < 2; i++) {
    await pg.psqlFile('sql/schema.sql');
    await pg.psqlFile('sql/install.sql');
  }
  assert.deepEqual(await attachedTables(), [{ t: 'sales', channel: null }, { t: 'stock', channel: null }]);
  assert.equal(await doorbellTriggerCount(), 2, 'one doorbell trigger per table after two installs');
  assert.equal(await one('SELECT pgpush.channel()'), 'pgpush');
  assert.equal(await one(`SELECT provolatile FROM pg_proc WHERE oid = 'pgpush.dashboard()'::regprocedure`), 's',
    'dashboard() is STABLE');
  assert.equal(await one(`SELECT prorettype::regtype FROM pg_proc WHERE oid = 'pgpush.dashboard()'::regprocedure`), 'json');
  for (const tbl of ['sales', 'stock']) {
    const def = await one(`SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = '${tbl}'::regclass AND NOT tgisinternal`);
    assert.match(def, /AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON public\.\w+ FOR EACH STATEMENT/, def);
  }
});

test('install: without the reference tables it still installs, attaches nothing and says so', async () => {
  await pg.psql('CREATE DATABASE bare', { db: 'postgres' });
  const stderr = await psqlFileStderr('sql/install.sql', 'bare');
  assert.match(stderr, /WARNING: +pgpush: public\.sales does not exist, so it was not attached/);
  assert.match(stderr, /WARNING: +pgpush: public\.stock does not exist/);
  assert.equal((await pg.psql('SELECT count(*) FROM pgpush.attached()', { db: 'bare' })).trim(), '0');
  await pg.psqlFile('sql/uninstall.sql', { db: 'bare' });
  await pg.psql('DROP DATABASE bare', { db: 'postgres' });
});

test('install: a rerun keeps the DBA\'s channel and detached tables', async () => {
  await pg.psql(`UPDATE pgpush.settings SET channel = 'shop_events'; SELECT pgpush.detach('stock')`);
  await pg.psqlFile('sql/install.sql');
  assert.equal(await one('SELECT pgpush.channel()'), 'shop_events');
  assert.deepEqual(await attachedTables(), [{ t: 'sales', channel: null }]);
  // Back to the reference setup for the tests below.
  await pg.psql(`UPDATE pgpush.settings SET channel = DEFAULT; SELECT pgpush.attach('stock')`);
  assert.equal(await doorbellTriggerCount(), 2);
});

test('uninstall: removes pgpush and the triggers, keeps data tables and rows; reinstall works', async () => {
  await pg.psql(`
    INSERT INTO products (sku, name, unit_price) VALUES ('U-1', 'Uninstall probe', 1.50);
    INSERT INTO stock (product_id, quantity) SELECT id, 7 FROM products WHERE sku = 'U-1';
    INSERT INTO sales (product_id, quantity, unit_price) SELECT id, 2, 1.50 FROM products WHERE sku = 'U-1';
    CREATE TABLE public.audit_log (id int PRIMARY KEY);
    SELECT pgpush.attach('audit_log', 'audit');`);
  const counts = `SELECT (SELECT count(*) FROM products) || ',' || (SELECT count(*) FROM stock) || ',' || (SELECT count(*) FROM sales)`;
  const before = await one(counts);
  assert.equal(await doorbellTriggerCount(), 3);

  // Something outside pgpush built on it: uninstall refuses and changes nothing.
  await pg.psql('CREATE VIEW public.dash_view AS SELECT pgpush.dashboard() AS doc');
  await assert.rejects(pg.psqlFile('sql/uninstall.sql'), /objects outside schema pgpush depend on it: .*dash_view/);
  assert.equal(await doorbellTriggerCount(), 3, 'a refused uninstall drops no trigger');
  await pg.psql('DROP VIEW public.dash_view');

  for (let i = 0; i < 2; i++) {
    await pg.psqlFile('sql/uninstall.sql');
    assert.equal(await one(`SELECT to_regnamespace('pgpush') IS NULL`), 't', 'schema pgpush is gone');
    assert.equal(await one(`SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                            WHERE NOT t.tgisinternal AND c.relname IN ('sales', 'stock', 'audit_log')`), '0',
      'no trigger left on any attached table');
    assert.equal(await one(`SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                            WHERE p.proname IN ('doorbell', 'dashboard', 'attach', 'detach', 'attached', 'channel')
                              AND n.nspname <> 'pg_catalog'`), '0');
    assert.equal(await one(counts), before, 'data tables and their rows are untouched');
    assert.equal(await one(`SELECT to_regclass('public.audit_log') IS NOT NULL`), 't');
  }

  await pg.psqlFile('sql/install.sql');
  assert.deepEqual(await attachedTables(), [{ t: 'sales', channel: null }, { t: 'stock', channel: null }],
    'a fresh install attaches the reference tables again, and only them');
  await pg.psql('DROP TABLE public.audit_log; TRUNCATE sales, stock, products RESTART IDENTITY CASCADE');
});

// ---------------------------------------------------------------- doorbell --

test('doorbell: one notification per statement, table name as payload, nothing on rollback', async () => {
  await listener.query('LISTEN pgpush');
  await pg.psql(`INSERT INTO products (sku, name, unit_price) VALUES ('D-1', 'Doorbell probe', 3.00);
                 INSERT INTO stock (product_id, quantity) SELECT id, 50 FROM products WHERE sku = 'D-1'`);
  const pid = await one(`SELECT id FROM products WHERE sku = 'D-1'`);
  const only = (table) => [{ channel: 'pgpush', payload: table }];

  let seen = await notificationsDuring((w) => w.query(
    `INSERT INTO sales (product_id, quantity, unit_price, sold_at)
     SELECT ${pid}, 1 + i % 3, 3.00, now() - i * interval '1 second' FROM generate_series(1, 10000) i`));
  assert.deepEqual(seen, only('sales'), '10,000 rows in one INSERT ... SELECT: exactly one notification');
  assert.equal(await one('SELECT count(*) FROM sales'), '10000');

  seen = await notificationsDuring((w) => w.query(`UPDATE sales SET quantity = quantity + 1 WHERE id % 2 = 0`));
  assert.deepEqual(seen, only('sales'), 'UPDATE of 5,000 rows');

  seen = await notificationsDuring((w) => w.query(`DELETE FROM sales WHERE id % 10 = 0`));
  assert.deepEqual(seen, only('sales'), 'DELETE');

  seen = await notificationsDuring((w) => w.query(`UPDATE stock SET quantity = 49 WHERE product_id = ${pid}`));
  assert.deepEqual(seen, only('stock'), 'stock rings with its own name');

  seen = await notificationsDuring((w) => w.query(`UPDATE sales SET quantity = 1 WHERE false`));
  assert.deepEqual(seen, only('sales'), 'statement-level: even a statement that touches no row rings');

  // PostgreSQL folds identical notifications of one transaction.
  seen = await notificationsDuring((w) => w.query(`BEGIN;
    INSERT INTO sales (product_id, quantity, unit_price) VALUES (${pid}, 1, 3.00);
    INSERT INTO sales (product_id, quantity, unit_price) VALUES (${pid}, 2, 3.00);
    UPDATE sales SET quantity = 5 WHERE quantity = 2;
    UPDATE stock SET quantity = 48;
    COMMIT`));
  assert.deepEqual(seen.map((n) => n.payload).sort(), ['sales', 'stock'], 'one per table per transaction');

  seen = await notificationsDuring((w) => w.query(`BEGIN;
    INSERT INTO sales (product_id, quantity, unit_price) SELECT ${pid}, 1, 3.00 FROM generate_series(1, 100);
    UPDATE stock SET quantity = 0;
    ROLLBACK`));
  assert.deepEqual(seen, [], 'a rolled-back transaction notifies nothing');

  seen = await notificationsDuring((w) => w.query('TRUNCATE sales'));
  assert.deepEqual(seen, only('sales'), 'TRUNCATE');
  assert.equal(await one('SELECT count(*) FROM sales'), '0');

  // The channel comes from pgpush.settings at each write, no re-attach needed.
  await listener.query('LISTEN moved');
  await pg.psql(`UPDATE pgpush.settings SET channel = 'moved'`);
  seen = await notificationsDuring((w) => w.query(`INSERT INTO sales (product_id, quantity, unit_price) VALUES (${pid}, 1, 3.00)`));
  assert.deepEqual(seen, [{ channel: 'moved', payload: 'sales' }]);
  await pg.psql(`UPDATE pgpush.settings SET channel = DEFAULT`);
  await listener.query('UNLISTEN moved');

  // A writer needs no privilege on schema pgpush (the doorbell is SECURITY DEFINER).
  await pg.psql(`CREATE ROLE shop_writer; GRANT INSERT ON sales TO shop_writer`);
  seen = await notificationsDuring(async (w) => {
    await w.query('SET ROLE shop_writer');
    try {
      await w.query(`INSERT INTO sales (product_id, quantity, unit_price) VALUES (${pid}, 1, 3.00)`);
    } finally {
      await w.query('RESET ROLE');
    }
  });
  assert.deepEqual(seen, only('sales'), 'an unprivileged writer rings the doorbell');
  await pg.psql('REVOKE ALL ON sales FROM shop_writer; DROP ROLE shop_writer');
  await pg.psql('TRUNCATE sales, stock, products RESTART IDENTITY CASCADE');
});

test('attach/detach: the doorbell on any table, with an optional channel of its own', async () => {
  await pg.psql('CREATE TABLE public.orders (id int PRIMARY KEY, note text)');
  await listener.query('LISTEN pgpush');
  await listener.query('LISTEN order_desk');
  const insert = (id) => (w) => w.query('INSERT INTO orders VALUES ($1, $2)', [id, 'x']);

  let seen = await notificationsDuring(insert(1));
  assert.deepEqual(seen, [], 'not attached yet');

  await pg.psql(`SELECT pgpush.attach('orders'); SELECT pgpush.attach('public.orders')`);
  assert.deepEqual((await attachedTables()).find((r) => r.t === 'orders'), { t: 'orders', channel: null });
  assert.equal(await one(`SELECT count(*) FROM pg_trigger WHERE tgrelid = 'orders'::regclass AND NOT tgisinternal`), '1',
    'attach twice: still one trigger');
  seen = await notificationsDuring(insert(2));
  assert.deepEqual(seen, [{ channel: 'pgpush', payload: 'orders' }]);
  seen = await notificationsDuring((w) => w.query('TRUNCATE orders'));
  assert.deepEqual(seen, [{ channel: 'pgpush', payload: 'orders' }]);

  await pg.psql(`SELECT pgpush.attach('orders', 'order_desk')`);
  assert.deepEqual((await attachedTables()).find((r) => r.t === 'orders'), { t: 'orders', channel: 'order_desk' });
  seen = await notificationsDuring(insert(3));
  assert.deepEqual(seen, [{ channel: 'order_desk', payload: 'orders' }], 'the per-table channel replaces the default');

  await pg.psql(`SELECT pgpush.detach('orders'); SELECT pgpush.detach('orders')`);
  assert.equal((await attachedTables()).find((r) => r.t === 'orders'), undefined);
  seen = await notificationsDuring(insert(4));
  assert.deepEqual(seen, [], 'detached: silent');

  // Refused up front, rather than failing every later write to the table.
  await assert.rejects(pg.psql(`SELECT pgpush.attach('orders', '')`), /invalid channel name/);
  await assert.rejects(pg.psql(`SELECT pgpush.attach('orders', repeat('x', 64))`), /invalid channel name/);
  await assert.rejects(pg.psql(`UPDATE pgpush.settings SET channel = ''`), /settings_channel_check/);
  await pg.psql('CREATE VIEW orders_view AS SELECT * FROM orders');
  await assert.rejects(pg.psql(`SELECT pgpush.attach('orders_view')`), /is not a table/);
  assert.equal(await one(`SELECT count(*) FROM pg_trigger WHERE tgrelid = 'orders'::regclass AND NOT tgisinternal`), '0');
  await pg.psql('DROP VIEW orders_view; DROP TABLE orders');
  await listener.query('UNLISTEN *');
});

// --------------------------------------------------------------- dashboard --

// A small shop, in a session whose TimeZone is not the server's, so "today"
// and day buckets must follow the session. Days are local calendar days
// relative to today; times are local wall-clock times.
const TZ = 'Asia/Kolkata'; // +05:30, no DST
const PRODUCTS = [
  // key, sku, name, price in cents, stock (null = no stock row), reorder level
  { key: 'A', sku: 'T-A', name: 'Alpha Mug', cents: 1250, stock: 40, reorder: 10 },
  { key: 'B', sku: 'T-B', name: 'Beta Pen', cents: 200, stock: 3, reorder: 5 },
  { key: 'C', sku: 'T-C', name: 'Gamma Tea', cents: 725, stock: 0, reorder: 0 },
  { key: 'D', sku: 'T-D', name: 'Delta Bag', cents: 3000, stock: 12, reorder: 12 },
  { key: 'E', sku: 'T-E', name: 'Epsilon Card', cents: 500, stock: null, reorder: null },
  { key: 'F', sku: 'T-F', name: 'Zeta Spoon', cents: 100, stock: -2, reorder: 5 },
  { key: 'G', sku: 'T-G', name: 'Eta Kettle', cents: 4999, stock: 500, reorder: 20 },
];
const SALES = [
  // product, quantity, unit price in cents (may differ from the list price), days ago, local time, customer
  { p: 'A', q: 2, cents: 1250, ago: 0, at: '00:05', who: ['Ada Lovelace', 'ada@example.com'] },
  { p: 'B', q: 3, cents: 200, ago: 0, at: '00:10', who: null },
  { p: 'C', q: 1, cents: 650, ago: 0, at: '00:15', who: ['Chen Wei', 'chen@example.org'] },
  { p: 'A', q: 1, cents: 1250, ago: 1, at: '23:55', who: null }, // yesterday, though already "today" in UTC
  { p: 'A', q: 4, cents: 1250, ago: 5, at: '10:00', who: ['Ada Lovelace', 'ada@example.com'] },
  { p: 'B', q: 10, cents: 200, ago: 5, at: '10:00', who: null }, // same instant: id breaks the tie
  { p: 'F', q: 6, cents: 100, ago: 5, at: '18:30', who: null },
  { p: 'G', q: 7, cents: 4999, ago: 5, at: '19:00', who: null },
  { p: 'B', q: 1, cents: 200, ago: 10, at: '12:00', who: null },
  { p: 'E', q: 1, cents: 500, ago: 10, at: '12:30', who: null },
  { p: 'C', q: 2, cents: 725, ago: 29, at: '00:00', who: null }, // first instant of the window
  { p: 'A', q: 100, cents: 1250, ago: 30, at: '23:59', who: null }, // last minute before it
  { p: 'D', q: 5, cents: 3000, ago: 40, at: '09:00', who: null },
];

test('dashboard: every field of docs/protocol.md, computed from a known data set', async () => {
  await pg.psql('TRUNCATE sales, stock, products RESTART IDENTITY CASCADE');
  const c = writer;
  await c.query(`SET TIME ZONE '${TZ}'`);
  // One transaction: the rows are placed relative to current_date, and the
  // dashboard of the same transaction sees the same current_date, so a run
  // across midnight cannot split the two.
  await c.query('BEGIN');
  let doc, today;
  try {
    today = (await c.query('SELECT current_date::text AS d')).rows[0].d;
    const ids = {};
    for (const p of PRODUCTS) {
      const r = await c.query('INSERT INTO products (sku, name, unit_price) VALUES ($1, $2, $3::numeric / 100) RETURNING id',
        [p.sku, p.name, p.cents]);
      p.id = r.rows[0].id;
      ids[p.key] = p.id;
      if (p.stock !== null) {
        await c.query('INSERT INTO stock (product_id, quantity, reorder_level) VALUES ($1, $2, $3)', [p.id, p.stock, p.reorder]);
      }
    }
    for (const s of SALES) {
      const r = await c.query(
        `INSERT INTO sales (product_id, quantity, unit_price, customer_name, customer_email, sold_at)
         VALUES ($1, $2, $3::numeric / 100, $4, $5, (current_date - $6::integer) + $7::time)
         RETURNING id, sold_at`,
        [ids[s.p], s.q, s.cents, s.who?.[0] ?? null, s.who?.[1] ?? null, s.ago, s.at]);
      s.id = Number(r.rows[0].id);
      s.soldAt = r.rows[0].sold_at; // a Date
    }
    doc = (await c.query('SELECT pgpush.dashboard() AS doc')).rows[0].doc;
  } finally {
    await c.query('ROLLBACK');
    await c.query('RESET TIME ZONE');
  }

  assert.deepEqual(Object.keys(doc).sort(), ['lowStock', 'recentSales', 'salesByDay', 'stockPredictions', 'summary']);
  const byKey = Object.fromEntries(PRODUCTS.map((p) => [p.key, p]));
  const amount = (s) => s.q * s.cents;

  // summary
  const todays = SALES.filter((s) => s.ago === 0);
  const window = SALES.filter((s) => s.ago <= 29);
  const sum = (xs, f) => xs.reduce((a, x) => a + f(x), 0);
  const rev30 = sum(window, amount);
  const lowStock = PRODUCTS.filter((p) => p.stock !== null && p.stock <= p.reorder);
  assert.deepEqual(doc.summary, {
    revenueToday: sum(todays, amount) / 100,
    salesToday: todays.length,
    revenue30d: rev30 / 100,
    sales30d: window.length,
    avgOrderValue30d: roundDiv(rev30, window.length) / 100,
    lowStockCount: lowStock.length,
  });
  assert.ok(doc.summary.salesToday === 3 && doc.summary.sales30d === 11 && lowStock.length === 4,
    'the data set exercises what it is meant to (boundaries, time zone)');

  // recentSales: newest ten, (sold_at desc, id desc)
  const newest = [...SALES].sort((a, b) => (b.soldAt - a.soldAt) || (b.id - a.id)).slice(0, 10);
  assert.equal(doc.recentSales.length, 10);
  doc.recentSales.forEach((r, i) => {
    const s = newest[i];
    const p = byKey[s.p];
    assert.deepEqual(Object.keys(r).sort(),
      ['amount', 'customerEmail', 'customerName', 'id', 'product', 'productId', 'quantity', 'sku', 'soldAt']);
    const { soldAt, ...rest } = r;
    assert.deepEqual(rest, {
      id: s.id, productId: p.id, sku: p.sku, product: p.name, quantity: s.q, amount: amount(s) / 100,
      customerName: s.who?.[0] ?? null, customerEmail: s.who?.[1] ?? null,
    }, `recentSales[${i}]`);
    assert.match(soldAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+05:30$/, 'ISO 8601, ms, in the session time zone');
    assert.equal(Date.parse(soldAt), s.soldAt.getTime(), `recentSales[${i}].soldAt`);
  });
  const tie = SALES.filter((s) => s.ago === 5 && s.at === '10:00').map((s) => s.id).sort((a, b) => b - a);
  const tiePos = doc.recentSales.map((r) => r.id).filter((id) => tie.includes(id));
  assert.deepEqual(tiePos, tie, 'same sold_at: higher id first');

  // salesByDay: 30 local days, oldest first, zero-filled
  assert.equal(doc.salesByDay.length, 30);
  doc.salesByDay.forEach((d, i) => {
    const ago = 29 - i;
    const xs = SALES.filter((s) => s.ago === ago);
    assert.deepEqual(d, {
      day: addDays(today, -ago), revenue: sum(xs, amount) / 100, sales: xs.length, units: sum(xs, (s) => s.q),
    }, `salesByDay[${i}]`);
  });
  assert.equal(doc.salesByDay.filter((d) => d.sales === 0).length, 30 - new Set(window.map((s) => s.ago)).size);

  // stockPredictions: every stocked product, soonest stock-out first
  const expected = PRODUCTS.filter((p) => p.stock !== null).map((p) => {
    const units = sum(window.filter((s) => s.p === p.key), (s) => s.q);
    const avg = roundDiv(units * 100, 30); // hundredths
    const tenths = avg > 0 ? roundDiv(Math.max(p.stock, 0) * 1000, avg) : null;
    return {
      productId: p.id, sku: p.sku, product: p.name, stock: p.stock, reorderLevel: p.reorder,
      avgDailyUnits: avg / 100,
      daysUntilStockout: tenths === null ? null : tenths / 10,
      stockoutDate: tenths === null ? null : addDays(today, Math.floor(tenths / 10)),
      forecast: Array.from({ length: 14 }, (_, k) => ({
        day: addDays(today, k + 1), stock: Math.max(0, p.stock * 100 - avg * (k + 1)) / 100,
      })),
    };
  }).sort((a, b) => {
    if (a.daysUntilStockout === null || b.daysUntilStockout === null) {
      if (a.daysUntilStockout !== b.daysUntilStockout) return a.daysUntilStockout === null ? 1 : -1;
    } else if (a.daysUntilStockout !== b.daysUntilStockout) return a.daysUntilStockout - b.daysUntilStockout;
    return a.productId - b.productId;
  });
  assert.deepEqual(doc.stockPredictions, expected);
  assert.ok(expected.some((e) => e.daysUntilStockout === null) && expected.some((e) => e.daysUntilStockout > 14)
    && expected.some((e) => e.forecast.at(-1).stock === 0 && e.daysUntilStockout > 0),
  'the data set has a never, a beyond-the-forecast and a runs-out-within-the-forecast product');
  assert.equal(doc.stockPredictions.find((e) => e.sku === 'T-F').daysUntilStockout, 0,
    'negative stock has run out already: 0 days, not negative');

  // lowStock: lowest quantity first
  assert.deepEqual(doc.lowStock, lowStock
    .sort((a, b) => (a.stock - b.stock) || (a.id - b.id))
    .map((p) => ({ productId: p.id, sku: p.sku, product: p.name, stock: p.stock, reorderLevel: p.reorder })));
});

test('dashboard: an empty shop is a complete document too', async () => {
  await pg.psql('TRUNCATE sales, stock, products RESTART IDENTITY CASCADE');
  const doc = (await writer.query('SELECT pgpush.dashboard() AS doc')).rows[0].doc;
  assert.deepEqual(doc.summary, {
    revenueToday: 0, salesToday: 0, revenue30d: 0, sales30d: 0, avgOrderValue30d: 0, lowStockCount: 0,
  });
  assert.deepEqual([doc.recentSales, doc.stockPredictions, doc.lowStock], [[], [], []]);
  assert.equal(doc.salesByDay.length, 30);
  assert.ok(doc.salesByDay.every((d) => d.sales === 0 && d.revenue === 0 && d.units === 0));
});

// ------------------------------------------------------------ demo + speed --

test('demo-data.sql: a realistic shop, same shape on reload; dashboard() is fast on it', async () => {
  // Sales are drawn up to now(), so a reload a moment later may add one of
  // today's: compare the sales up to the first load, and the stock only
  // when no sale was added in between.
  const t1 = await one('SELECT now()');
  await pg.psqlFile('sql/demo-data.sql');
  const shape = async () => ({
    day: await one('SELECT current_date'),
    sales: await one(`SELECT count(*) || ' ' || md5(string_agg(concat_ws(',', product_id, quantity, unit_price, customer_email, sold_at), ';'
                        ORDER BY sold_at, product_id, quantity)) FROM sales WHERE sold_at <= '${t1}'`),
    all: await one('SELECT count(*) FROM sales'),
    products: await one(`SELECT string_agg(sku || '=' || id, ',' ORDER BY sku) FROM products`),
    stock: await one(`SELECT string_agg(product_id || ':' || quantity || '/' || reorder_level, ',' ORDER BY product_id) FROM stock`),
  });
  const first = await shape();
  await pg.psqlFile('sql/demo-data.sql');
  const second = await shape();
  if (first.day === second.day) { // not across midnight
    assert.equal(second.sales, first.sales, 'a reload draws the same sales');
    assert.equal(second.products, first.products, 'a reload keeps the product ids');
    if (first.all === second.all) assert.equal(second.stock, first.stock, 'a reload gives the same stock');
  }

  const stats = (await writer.query(`
    SELECT count(*)::int AS sales, count(DISTINCT product_id)::int AS products,
           min(sold_at) >= now() - interval '91 days' AS within_90_days,
           max(sold_at) <= now() AS none_in_future,
           count(DISTINCT customer_email)::int AS customers
    FROM sales`)).rows[0];
  const perDay = (await writer.query(`
    SELECT min(n)::int AS min, max(n)::int AS max FROM (
      SELECT count(*) AS n FROM sales WHERE sold_at < current_date GROUP BY sold_at::date) d`)).rows[0];
  console.log(`demo data: ${stats.sales} sales, ${stats.products} products, ${stats.customers} customers, `
    + `${perDay.min}-${perDay.max} sales per full day`);
  assert.equal(stats.products, 36);
  assert.ok(stats.within_90_days && stats.none_in_future);
  assert.ok(stats.sales > 9000 && stats.sales < 18000, `about 90 days x 100-200 sales, got ${stats.sales}`);
  assert.ok(perDay.min >= 60 && perDay.max <= 260, `daily variation within reason: ${perDay.min}-${perDay.max}`);
  assert.ok(stats.customers >= 5);

  // Planning is part of the cost of a first call; pgpushd then calls on one
  // connection over and over, so measure warm calls on one connection.
  const c = await pg.client();
  let t0 = performance.now();
  const doc = (await c.query('SELECT pgpush.dashboard() AS doc')).rows[0].doc;
  const firstMs = performance.now() - t0;
  const times = [];
  for (let i = 0; i < 30; i++) {
    t0 = performance.now();
    await c.query('SELECT pgpush.dashboard()');
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const median = times[times.length >> 1];
  console.log(`pgpush.dashboard() on demo data: first call ${firstMs.toFixed(2)} ms, `
    + `then median ${median.toFixed(2)} ms, max ${times.at(-1).toFixed(2)} ms over ${times.length} calls (round trip from node)`);
  assert.ok(median < 200, `dashboard() median ${median.toFixed(1)} ms`);
  await c.end();

  // The demo shows what the dashboard is for.
  assert.equal(doc.stockPredictions.length, 36);
  assert.ok(doc.lowStock.length >= 3 && doc.summary.lowStockCount === doc.lowStock.length);
  const days = doc.stockPredictions.map((e) => e.daysUntilStockout).filter((d) => d !== null);
  assert.ok(Math.min(...days) < 7 && Math.max(...days) > 90, `predictions from days to months: ${Math.min(...days)}..${Math.max(...days)}`);
  assert.ok(doc.stockPredictions.some((e) => e.daysUntilStockout === null), 'a product that stopped selling');
  assert.equal(doc.recentSales.length, 10);
  // The summary and the chart agree.
  const cents = (x) => Math.round(x * 100);
  assert.equal(doc.salesByDay.reduce((a, d) => a + d.sales, 0), doc.summary.sales30d);
  assert.equal(doc.salesByDay.reduce((a, d) => a + cents(d.revenue), 0), cents(doc.summary.revenue30d));
  assert.equal(doc.salesByDay.at(-1).sales, doc.summary.salesToday);
});
