// --query-db (issue 12, part 5): the dashboard queries run on a streaming
// replica (pg_basebackup -R of the throwaway cluster) while the listener
// stays on the primary. The replica lags on purpose (recovery_min_apply_delay):
// the snapshot sent for a sale must still contain it, because each recompute
// waits until the replica has replayed the primary's WAL insert position;
// past --replica-max-lag-wait clients get dashboardDataError replica_lagging
// and the recompute is retried until the replica catches up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitConnected, waitForUpdate, waitForError, seedShop, insertSale,
  closeClients, now,
} from '../lib/daemon.mjs';

const APPLY_DELAY_MS = 1500;

let pg, rep, db, products;
const sockets = [];

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  // The writer commits asynchronously: its commit record may not even be
  // written when the notification arrives (the insert LSN covers it).
  await db.query('SET synchronous_commit = off');
  products = await seedShop(db);
  // Roles for the --anon-role case (in the base backup with the rest).
  await pg.psqlFile('sql/demo-roles.sql');
  rep = await pg.startReplica({ applyDelayMs: APPLY_DELAY_MS });
  await rep.waitCaughtUp();
});

after(async () => {
  closeClients(sockets);
  if (pg) await pg.stop();
});

// The first snapshot a notification asked for after the commit: a
// recompute that started before the commit (startup, registry) may still
// finish after it, with the old data, legitimately.
const byNotify = (doc) => typeof doc.reason === 'string' && doc.reason.startsWith('notify');
const hasSale = (id) => (doc) => Array.isArray(doc.recentSales) &&
  doc.recentSales.some((x) => Number(x.id) === id);

async function metric(d, name) {
  const r = await fetch(`${d.url}/metrics`, { headers: { connection: 'close' } });
  const m = (await r.text()).match(new RegExp(`^${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : null;
}

test('a sale reaches clients once the lagging replica has replayed it, never before', { timeout: 60000 }, async () => {
  const d = await startDaemon({ db: pg.conninfo,
    args: ['--query-db', rep.conninfo, '--refresh-interval', '300', '--replica-max-lag-wait', '20'] });
  try {
    const s = connectClient(d.url); sockets.push(s);
    await waitConnected(s);
    await waitForUpdate(s, () => true, 20000);
    const waits = [];
    for (let i = 0; i < 3; i++) {
      const since = s.rec.updates.length;
      const sale = await insertSale(db, products[i % products.length].id);
      // The replica does not have it yet: without the wait the query
      // would read the old document there.
      const onReplica = (await rep.psql(`SELECT count(*) FROM sales WHERE id = ${sale.id}`)).trim();
      const u = await waitForUpdate(s, byNotify, 20000, { since });
      const ms = u.t - sale.committedAt;
      waits.push(ms);
      console.log(`sale ${sale.id}: on the replica at commit: ${onReplica}; first snapshot after the commit ` +
        `in ${ms.toFixed(0)} ms (recovery_min_apply_delay ${APPLY_DELAY_MS} ms), version ${u.data.version}`);
      assert.ok(hasSale(sale.id)(u.data), `the first snapshot after the commit has sale ${sale.id}`);
      // The replica cannot have applied the commit before the delay.
      assert.ok(ms >= APPLY_DELAY_MS * 0.6, `the wait shows in the time to the snapshot (${ms.toFixed(0)} ms)`);
    }
    const count = await metric(d, 'pgpush_replica_wait_seconds_count');
    const sum = await metric(d, 'pgpush_replica_wait_seconds_sum');
    console.log(`pgpush_replica_wait_seconds: count ${count}, sum ${sum.toFixed(3)} s; ` +
      `snapshot after commit: ${waits.map((w) => w.toFixed(0)).join(', ')} ms`);
    assert.ok(count >= 3, 'every recompute waited on the replica');
    assert.ok(sum >= 3 * APPLY_DELAY_MS * 0.6 / 1000, 'the waits add up to the apply delays');
    assert.equal(await metric(d, 'pgpush_replica_lag_timeouts_total'), 0);
    // Without the injected delay: what the wait costs, with the writer's
    // commit asynchronous (its WAL goes out when the WAL writer flushes)
    // and synchronous. Printed, not asserted (a shared machine).
    await rep.setApplyDelay(0);
    await rep.waitCaughtUp();
    for (const sync of ['off', 'on']) {
      await db.query(`SET synchronous_commit = ${sync}`);
      const c0 = await metric(d, 'pgpush_replica_wait_seconds_count');
      const s0 = await metric(d, 'pgpush_replica_wait_seconds_sum');
      const times = [];
      for (let i = 0; i < 5; i++) {
        const since = s.rec.updates.length;
        const sale = await insertSale(db, products[i % products.length].id);
        const u = await waitForUpdate(s, byNotify, 20000, { since });
        assert.ok(hasSale(sale.id)(u.data), `the first snapshot after the commit has sale ${sale.id}`);
        times.push(u.t - sale.committedAt);
      }
      const n = await metric(d, 'pgpush_replica_wait_seconds_count') - c0;
      const w = await metric(d, 'pgpush_replica_wait_seconds_sum') - s0;
      console.log(`no apply delay, writer synchronous_commit=${sync}: snapshot after commit ` +
        `${times.map((x) => x.toFixed(0)).join(', ')} ms; replica wait mean ${(w / n * 1000).toFixed(1)} ms over ${n}`);
    }
    await db.query('SET synchronous_commit = off');
    await rep.setApplyDelay(APPLY_DELAY_MS);
    assert.deepEqual(s.rec.errors, [], 'no dashboardDataError');
  } finally {
    await d.stopClean();
  }
});

test('with a role: the wait comes before BEGIN READ ONLY and SET LOCAL ROLE', { timeout: 60000 }, async () => {
  await rep.waitCaughtUp();
  const d = await startDaemon({ db: pg.conninfo,
    args: ['--query-db', rep.conninfo, '--refresh-interval', '300', '--anon-role', 'dashboard_manager', '--log-level', 'debug'] });
  try {
    const s = connectClient(d.url); sockets.push(s);
    await waitConnected(s);
    await waitForUpdate(s, () => true, 20000);
    const since = s.rec.updates.length;
    const sale = await insertSale(db, products[2].id);
    const u = await waitForUpdate(s, byNotify, 20000, { since });
    console.log(`role dashboard_manager: first snapshot ${(u.t - sale.committedAt).toFixed(0)} ms after the commit`);
    assert.ok(hasSale(sale.id)(u.data), 'the first snapshot after the commit has the sale');
    assert.ok(u.t - sale.committedAt >= APPLY_DELAY_MS * 0.6, 'it waited for the replica');
    assert.ok(d.grep(/recompute done .*role=dashboard_manager reason=notify/).length >= 1);
  } finally {
    await d.stopClean();
  }
});

test('--query-db naming a primary: no wait, said once', { timeout: 30000 }, async () => {
  const d = await startDaemon({ db: pg.conninfo,
    args: ['--query-db', pg.conninfo, '--refresh-interval', '300', '--query-connections', '2'] });
  try {
    const s = connectClient(d.url); sockets.push(s);
    await waitConnected(s);
    await waitForUpdate(s, () => true, 10000);
    const since = s.rec.updates.length;
    const sale = await insertSale(db, products[0].id);
    const u = await waitForUpdate(s, hasSale(sale.id), 10000, { since });
    console.log(`--query-db = --db: snapshot ${(u.t - sale.committedAt).toFixed(0)} ms after the commit`);
    await d.waitForLog(/--query-db is not in recovery/, 5000);
    assert.equal(d.grep(/--query-db is not in recovery/).length, 1, 'logged once');
    assert.equal(await metric(d, 'pgpush_replica_wait_seconds_count'), 0, 'nothing waited');
  } finally {
    await d.stopClean();
  }
});

test('a replica lagging past --replica-max-lag-wait: dashboardDataError replica_lagging, then recovery', { timeout: 60000 }, async () => {
  await rep.waitCaughtUp();
  const d = await startDaemon({ db: pg.conninfo,
    args: ['--query-db', rep.conninfo, '--refresh-interval', '300', '--replica-max-lag-wait', '0.5'] });
  try {
    const s = connectClient(d.url); sockets.push(s);
    await waitConnected(s);
    await rep.setApplyDelay(0);
    await waitForUpdate(s, () => true, 20000);
    await rep.setApplyDelay(4000);
    const since = s.rec.updates.length;
    const sale = await insertSale(db, products[1].id);
    const { data: e, t } = await waitForError(s, (x) => x.code === 'replica_lagging', 20000);
    console.log(`dashboardDataError ${(t - sale.committedAt).toFixed(0)} ms after the commit: ${JSON.stringify(e)}`);
    assert.doesNotMatch(e.message, /\/tmp|127\.0\.0\.1|port|host=/, 'no connection details reach clients');
    const line = await d.waitForLog(/recompute failed .*replica.*not replayed/, 5000);
    console.log(`log: ${String(line.line || line).trim()}`);
    const h = await fetch(`${d.url}/healthz`, { headers: { connection: 'close' } });
    const hj = JSON.parse(await h.text());
    assert.equal(hj.error && hj.error.code, 'replica_lagging', '/healthz says why');
    assert.match(hj.lastError, /replica-max-lag-wait/, 'loopback /healthz has the detail');
    assert.ok(await metric(d, 'pgpush_replica_lag_timeouts_total') >= 1, 'the timeout is counted');
    assert.equal(s.rec.updates.length, since, 'no stale snapshot was sent meanwhile');
    // The lag goes away: the retry (existing backoff) delivers the sale.
    const tFix = now();
    await rep.setApplyDelay(0);
    const u = await waitForUpdate(s, hasSale(sale.id), 20000, { since });
    console.log(`recovered ${(u.t - tFix).toFixed(0)} ms after the apply delay was lifted`);
    assert.ok(s.connected, 'the client stayed connected');
    await d.waitForLog(/dashboard recovered/, 5000);
  } finally {
    await rep.setApplyDelay(APPLY_DELAY_MS).catch(() => {});
    await d.stopClean();
  }
});

test('the replica restarts while a recompute waits on it: the sale still arrives, never an old document', { timeout: 60000 }, async () => {
  await rep.waitCaughtUp();
  const d = await startDaemon({ db: pg.conninfo,
    args: ['--query-db', rep.conninfo, '--refresh-interval', '300', '--replica-max-lag-wait', '20'] });
  try {
    const s = connectClient(d.url); sockets.push(s);
    await waitConnected(s);
    await waitForUpdate(s, () => true, 20000);
    const since = s.rec.updates.length;
    const sale = await insertSale(db, products[0].id);
    // The recompute is waiting out the apply delay when the replica goes.
    const mark = d.logs.length;
    await rep.stopServer({ mode: 'fast' });
    const lost = await d.waitForLog(/database unavailable conn=pgpushd-query/, 10000);
    await rep.startServer();
    const u = await waitForUpdate(s, () => true, 30000, { since });
    const done = await d.waitForLog(/recompute done .*reason=/, 5000, { since: lost.index });
    assert.ok(done.index > lost.index, 'the recompute ran again after the loss');
    assert.equal(d.logs.slice(mark, lost.index).filter((l) => /recompute done.* reason=notify/.test(l)).length, 0,
      `no recompute for the sale finished before the replica went away: it was waiting\n${d.logs.slice(mark, lost.index + 1).join('\n')}`);
    console.log(`replica restarted: first snapshot ${(u.t - sale.committedAt).toFixed(0)} ms after the commit`);
    assert.ok(hasSale(sale.id)(u.data), 'the first snapshot after the commit has the sale');
    assert.ok(s.connected);
  } finally {
    await d.stopClean();
  }
});
