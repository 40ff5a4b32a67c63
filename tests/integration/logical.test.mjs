// --change-source logical: pgpushd learns of changes from logical
// replication (src/changes.c over src/pgoutput.c) instead of the NOTIFY
// doorbell. A throwaway cluster with wal_level=logical; the daemon role gets
// REPLICATION here, as sql/grant.sql documents.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, closeClients, waitForUpdate, waitForError, seedShop, insertSale, sleep,
} from '../lib/daemon.mjs';

let pg, db;
const LOGICAL = ['--change-source', 'logical', '--refresh-interval', '300'];

before(async () => {
  pg = await startCluster({
    sql: ['sql/schema.sql', 'sql/install.sql'],
    settings: { wal_level: 'logical', max_wal_senders: 10, max_replication_slots: 10 },
  });
  await pg.psql('ALTER ROLE pgpushd REPLICATION');
  db = await pg.client();
  await seedShop(db);
});

after(async () => {
  if (pg) await pg.stop();
});

async function health(d) {
  const r = await fetch(`${d.url}/healthz`, { headers: { connection: 'close' } });
  return r.json();
}

const doorbells = async () => (await pg.psql(
  `SELECT string_agg(tgrelid::regclass::text, ',' ORDER BY tgrelid::regclass::text) FROM pg_trigger
   WHERE tgfoid = 'pgpush.doorbell()'::regprocedure`)).trim();
const published = async () => (await pg.psql(
  `SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'pgpush'`)).trim();
const slots = async () => (await pg.psql('SELECT count(*) FROM pg_replication_slots')).trim();
const source = async () => (await pg.psql('SELECT pgpush.change_source()')).trim();

test('sql: set_change_source swaps the doorbell triggers for the publication and back', async () => {
  assert.equal(await source(), 'notify');
  assert.equal(await doorbells(), 'sales,stock');
  await pg.psql(`SELECT pgpush.set_change_source('logical')`);
  assert.equal(await source(), 'logical');
  assert.equal(await doorbells(), '', 'no doorbell trigger in logical mode');
  assert.equal(await published(), 'sales,stock');
  assert.equal((await pg.psql('SELECT string_agg(relation::text, \',\' ORDER BY relation::text) FROM pgpush.attached()')).trim(),
    'sales,stock', 'the same watched tables');

  // attach and detach follow the choice.
  await pg.psql('CREATE TABLE keyed (id int PRIMARY KEY); CREATE TABLE loose (v int)');
  await pg.psql(`SELECT pgpush.attach('keyed')`);
  assert.equal(await published(), 'keyed,sales,stock');
  assert.equal(await doorbells(), '');
  await assert.rejects(pg.psql(`SELECT pgpush.attach('loose')`),
    /loose cannot be published for logical replication: it has no primary key and REPLICA IDENTITY DEFAULT/);
  await pg.psql('ALTER TABLE keyed REPLICA IDENTITY NOTHING');
  await assert.rejects(pg.psql(`SELECT pgpush.attach('keyed')`), /REPLICA IDENTITY NOTHING/);
  await pg.psql('ALTER TABLE loose REPLICA IDENTITY FULL');
  await pg.psql(`SELECT pgpush.attach('loose')`);
  assert.equal(await published(), 'keyed,loose,sales,stock');
  await pg.psql(`SELECT pgpush.detach('keyed'); SELECT pgpush.detach('loose')`);
  assert.equal(await published(), 'sales,stock');

  // Back to notify: the triggers return, the publication goes.
  await pg.psql(`SELECT pgpush.set_change_source('notify')`);
  assert.equal(await doorbells(), 'sales,stock');
  assert.equal((await pg.psql(`SELECT count(*) FROM pg_publication WHERE pubname = 'pgpush'`)).trim(), '0');
  // A table that cannot be published blocks the switch, with its name.
  await pg.psql(`CREATE TABLE loose2 (v int); SELECT pgpush.attach('loose2')`);
  await assert.rejects(pg.psql(`SELECT pgpush.set_change_source('logical')`), /loose2 \(it has no primary key/);
  assert.equal(await source(), 'notify');
  await pg.psql(`SELECT pgpush.detach('loose2')`);
  await assert.rejects(pg.psql(`SELECT pgpush.set_change_source('carrier pigeon')`), /is not notify or logical/);
});

test('mismatch: a daemon whose --change-source differs from the database says so and keeps retrying', async () => {
  // The database says notify.
  const d = await startDaemon({ db: pg.conninfo, args: LOGICAL });
  const s = connectClient(d.url);
  try {
    const e = await waitForError(s, (x) => x.code === 'change_source_mismatch', 10000);
    assert.match(e.data.message, /disagree/);
    await d.waitForLog(/change source mismatch: the database rings through notify, pgpushd runs with --change-source logical/);
    // Switching the database over ends it, at the next attempt.
    await pg.psql(`SELECT pgpush.set_change_source('logical')`);
    await waitForUpdate(s, () => true, 15000);
  } finally {
    closeClients([s]);
    await d.stopClean();
  }
  // The database says logical; a notify daemon refuses too.
  const n = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300'] });
  const s2 = connectClient(n.url);
  try {
    await waitForError(s2, (x) => x.code === 'change_source_mismatch', 10000);
    await n.waitForLog(/change source mismatch: the database rings through logical/);
  } finally {
    closeClients([s2]);
    await n.stopClean();
  }
});

test('live updates through the logical source; a killed walsender reconnects and recomputes; no slot left', async () => {
  await pg.psql(`SELECT pgpush.set_change_source('logical')`);
  const d = await startDaemon({ db: pg.conninfo, args: LOGICAL });
  const s = connectClient(d.url);
  try {
    await d.waitForLog(/change stream started slot=pgpush_/, 10000);
    const first = await waitForUpdate(s, () => true, 10000);
    const sale = await insertSale(db, 1, { customer: 'Logical Lu' });
    const u = await waitForUpdate(s, (x) => x.recentSales.some((r) => r.id === sale.id), 5000,
      { since: first.index + 1 });
    assert.equal(u.data.reason, 'notify:sales', 'the reason names the table, as the doorbell does');
    // Every commit is in the document its recompute makes: the walsender can
    // send a Commit before the transaction is visible to other sessions, so
    // pgpushd waits until a snapshot sees it (without that, about one commit
    // in four on a loaded 2-core machine was missing from its document).
    for (let i = 0; i < 30; i++) {
      const n = s.rec.updates.length;
      const x = await insertSale(db, 1 + (i % 3));
      await waitForUpdate(s, (doc) => doc.recentSales.some((r) => r.id === x.id), 3000, { since: n });
      await sleep(60);
    }
    assert.equal(await slots(), '1', 'one temporary slot while streaming');
    assert.equal((await pg.psql('SELECT temporary FROM pg_replication_slots')).trim(), 't');

    // Standby status updates: the slot's confirmed position follows.
    const lsn = (await pg.psql('SELECT pg_current_wal_lsn()')).trim();
    await insertSale(db, 2);
    let confirmed = false;
    for (let i = 0; i < 40 && !confirmed; i++) {
      confirmed = (await pg.psql(`SELECT confirmed_flush_lsn >= '${lsn}' FROM pg_replication_slots`)).trim() === 't';
      if (!confirmed) await sleep(100);
    }
    assert.ok(confirmed, 'the slot confirms within 4 s');

    // attach and detach while streaming: the publication changes under the
    // running walsender, which follows it from the next transaction.
    await pg.psql(`CREATE TABLE late (id int PRIMARY KEY); SELECT pgpush.attach('late')`);
    let m = d.mark();
    await pg.psql('INSERT INTO late VALUES (1)');
    await d.waitForLog(/recompute done.*reason=notify/, 5000, { since: m });
    await pg.psql(`SELECT pgpush.detach('late')`);
    await sleep(200);
    m = d.mark();
    await pg.psql('INSERT INTO late VALUES (2)');
    await sleep(700);
    assert.deepEqual(d.grep(/recompute (started|done)/, m), [], 'a detached table no longer rings');

    // Kill the walsender: reconnect, recompute, and changes flow again.
    const mark = d.mark();
    const killed = (await pg.psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_replication`)).trim();
    assert.equal(killed, 't');
    await d.waitForLog(/change stream unavailable/, 5000, { since: mark });
    await d.waitForLog(/change stream started/, 10000, { since: mark });
    await d.waitForLog(/recompute done.*reason=reconnect/, 10000, { since: mark });
    const n = s.rec.updates.length;
    const sale2 = await insertSale(db, 1);
    await waitForUpdate(s, (x) => x.recentSales.some((r) => r.id === sale2.id), 5000, { since: n });
    const h = await health(d);
    assert.equal(h.changeSource, 'logical');
  } finally {
    closeClients([s]);
    await d.stopClean();
  }
  let left = await slots();
  for (let i = 0; i < 20 && left !== '0'; i++) { await sleep(100); left = await slots(); }
  assert.equal(left, '0', 'the temporary slot died with the daemon');
});

test('a million-row transaction gives one recompute, and memory stays flat', async () => {
  await pg.psql(`SELECT pgpush.set_change_source('logical')`);
  await pg.psql(`CREATE TABLE bulk (id int PRIMARY KEY, pad text); SELECT pgpush.attach('bulk')`);
  await pg.psql('GRANT SELECT ON bulk TO pgpushd');
  const d = await startDaemon({ db: pg.conninfo, args: [...LOGICAL, '--log-level', 'info'] });
  try {
    await d.waitForLog(/recompute done/, 10000);
    await sleep(300);
    const asan = fs.readFileSync(`/proc/${d.pid}/maps`, 'utf8').includes('asan') || !!process.env.PGPUSHD_WRAPPER;
    const rss = () => Number(fs.readFileSync(`/proc/${d.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
    // A small transaction first, so that what the stream needs once is there.
    await pg.psql(`INSERT INTO bulk VALUES (0, 'x')`);
    await d.waitForLog(/recompute done.*reason=notify:bulk/, 5000);
    const before = rss();
    const h0 = await health(d);
    // The loop keeps serving while the stream delivers a million Insert
    // messages: /healthz answers throughout.
    let polling = true, slowest = 0;
    const poller = (async () => {
      while (polling) {
        const t = performance.now();
        await health(d);
        slowest = Math.max(slowest, performance.now() - t);
        await sleep(20);
      }
    })();
    const mark = d.mark();
    await pg.psql(`INSERT INTO bulk SELECT i, 'row ' || i FROM generate_series(1, 1000000) i`);
    // Its recompute (the confirmation to the server can come first: the
    // recompute waits for the visibility check).
    await d.waitForLog(/recompute done.*reason=notify:bulk/, 60000, { since: mark });
    // Wait for the stream to catch up with the commit, then settle.
    const lsn = (await pg.psql('SELECT pg_current_wal_lsn()')).trim();
    let caughtUp = false;
    for (let i = 0; i < 600 && !caughtUp; i++) {
      caughtUp = (await pg.psql(`SELECT confirmed_flush_lsn >= '${lsn}' FROM pg_replication_slots`)).trim() === 't';
      if (!caughtUp) await sleep(100);
    }
    assert.ok(caughtUp, 'the stream caught up');
    polling = false;
    await poller;
    assert.ok(slowest < 1000, `/healthz answered within ${Math.round(slowest)} ms while decoding`);
    await sleep(500);
    const h1 = await health(d);
    assert.equal(h1.recomputes - h0.recomputes, 1, `one recompute for the whole transaction: ${JSON.stringify(h1)}`);
    assert.equal(h1.notifications - h0.notifications, 1, 'one committed transaction');
    const after = rss();
    if (!asan) {
      assert.ok(after - before < 8 * 1024, `VmRSS ${before} kB before, ${after} kB after: within 8 MB`);
    }
    console.log(`# million rows: VmRSS ${before} -> ${after} kB; slowest /healthz ${Math.round(slowest)} ms while decoding`);
  } finally {
    await d.stopClean();
    await pg.psql(`SELECT pgpush.detach('bulk'); DROP TABLE bulk`);
  }
});

test('a role without REPLICATION gets the clear error; --change-source-fallback notify falls back', async () => {
  await pg.psql(`SELECT pgpush.set_change_source('logical')`);
  await pg.psql('CREATE ROLE norepl LOGIN');
  await pg.grantDaemon({ role: 'norepl' });
  const conninfo = pg.conninfo.replace('user=pgpushd', 'user=norepl');
  const d = await startDaemon({ db: conninfo, args: LOGICAL });
  const s = connectClient(d.url);
  try {
    await d.waitForLog(/change stream unavailable: the role lacks REPLICATION/, 10000);
    const e = await waitForError(s, (x) => x.code === 'change_stream_unavailable', 10000);
    assert.match(e.data.message, /change stream is unavailable/);
  } finally {
    closeClients([s]);
    await d.stopClean();
  }
  const f = await startDaemon({ db: conninfo, args: [...LOGICAL, '--change-source-fallback', 'notify'] });
  try {
    await f.waitForLog(/falling back to the doorbell/, 10000);
    await f.waitForLog(/recompute done.*reason=startup/, 10000);
    assert.equal((await health(f)).changeSource, 'notify (fallback)');
  } finally {
    await f.stopClean();
  }
});

test('wal_level other than logical gets the clear error', async () => {
  const other = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  try {
    await other.psql(`ALTER ROLE pgpushd REPLICATION; SELECT pgpush.set_change_source('logical')`);
    const d = await startDaemon({ db: other.conninfo, args: LOGICAL });
    try {
      await d.waitForLog(/wal_level is replica: --change-source logical needs wal_level = logical/, 10000);
    } finally {
      await d.stopClean();
    }
  } finally {
    await other.stop();
  }
});
