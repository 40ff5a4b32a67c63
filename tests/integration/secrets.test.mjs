// Secrets and privileges of the daemon's database role (issue 8.10, 8.12,
// 8.3): a password never needs the command line (--db-file, PGPASSWORD,
// PGPASSFILE), a failed login never reaches clients, and the role with only
// the documented grants cannot write the application's tables.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, daemonPath, connectClient, waitConnected, waitForUpdate, waitForError, closeClients, seedShop,
} from '../lib/daemon.mjs';

const PASSWORD = 'Pw-s3cret-9f2c';
let pg, admin;
const sockets = [];

before(async () => {
  pg = await startCluster({
    sql: ['sql/schema.sql', 'sql/install.sql'],
    hba: ['host all pw_daemon 127.0.0.1/32 scram-sha-256'],
  });
  admin = await pg.client();
  await seedShop(admin, { products: 2 });
  await admin.query(`CREATE ROLE pw_daemon LOGIN PASSWORD '${PASSWORD}'`);
  await pg.grantDaemon({ role: 'pw_daemon' });
});

after(async () => {
  closeClients(sockets);
  if (pg) await pg.stop();
});

const tcp = () => `host=127.0.0.1 port=${pg.port} dbname=${pg.dbname} user=pw_daemon`;

async function firstUpdate(d) {
  const s = connectClient(d.url); sockets.push(s);
  await waitConnected(s);
  const { data } = await waitForUpdate(s, () => true, 10000);
  s.close();
  return data;
}

function cmdline(pid) {
  return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
}

test('--db-file: the password stays out of the command line', { timeout: 30000 }, async () => {
  const file = path.join(pg.dir, 'conninfo');
  fs.writeFileSync(file, `${tcp()} password=${PASSWORD}\n`, { mode: 0o600 });
  const d = await startDaemon({ args: ['--refresh-interval', '300', '--db-file', file] });
  try {
    assert.equal(typeof (await firstUpdate(d)).version, 'number');
    assert.ok(!cmdline(d.pid).includes(PASSWORD), 'ps does not show the password');
  } finally {
    await d.stopClean();
  }
});

test('PGPASSWORD and PGPASSFILE work as in libpq', { timeout: 30000 }, async () => {
  let d = await startDaemon({ db: tcp(), args: ['--refresh-interval', '300'], env: { PGPASSWORD: PASSWORD } });
  try {
    assert.equal(typeof (await firstUpdate(d)).version, 'number');
  } finally {
    await d.stopClean();
  }
  const passfile = path.join(pg.dir, 'pgpass');
  fs.writeFileSync(passfile, `127.0.0.1:${pg.port}:${pg.dbname}:pw_daemon:${PASSWORD}\n`, { mode: 0o600 });
  d = await startDaemon({ db: tcp(), args: ['--refresh-interval', '300'], env: { PGPASSFILE: passfile } });
  try {
    assert.equal(typeof (await firstUpdate(d)).version, 'number');
  } finally {
    await d.stopClean();
  }
});

test('--db and --db-file together are refused', () => {
  const r = spawnSync(daemonPath, ['--db', 'host=/x', '--db-file', '/dev/null'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--db-file/);
});

test('a failed login: clients get db_unavailable and a fixed message, the log has the detail', { timeout: 30000 }, async () => {
  const d = await startDaemon({ db: `${tcp()} password=wrong`, args: ['--refresh-interval', '300'] });
  try {
    const s = connectClient(d.url); sockets.push(s);
    await waitConnected(s);
    const { data: e } = await waitForError(s, () => true, 10000);
    assert.equal(e.code, 'db_unavailable');
    assert.doesNotMatch(JSON.stringify(e), /password|FATAL|pw_daemon|127\.0\.0\.1|port/i);
    // The log line can reach the test after the client's event (the
    // daemon's stderr pipe against the client's socket; an ASan build).
    await d.waitForLog(/password authentication failed for user "pw_daemon"/, 5000);
    s.close();
  } finally {
    await d.stopClean();
  }
});

test('the daemon role (documented grants only) cannot write the application tables', { timeout: 30000 }, async () => {
  const c = await pg.client({ user: pg.daemonRole });
  try {
    for (const sql of [
      "INSERT INTO public.sales (product_id, quantity, unit_price) SELECT id, 1, 1 FROM public.products LIMIT 1",
      'UPDATE public.stock SET quantity = 0',
      'DELETE FROM public.products',
      'TRUNCATE public.sales',
      "UPDATE pgpush.settings SET channel = 'x'",
      "SELECT pgpush.attach('public.products')",
      'CREATE TABLE pgpush.x (a int)',
    ]) {
      await assert.rejects(c.query(sql), /permission denied|must be owner/, sql);
    }
    const r = await c.query('SELECT pgpush.dashboard() IS NOT NULL AS ok, nextval(\'pgpush.version_seq\') > 0 AS v');
    assert.deepEqual(r.rows[0], { ok: true, v: true }, 'what it needs, it has');
  } finally {
    await c.end();
  }
  // The daemon runs as that role in every integration test.
  const d = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300'] });
  try {
    await firstUpdate(d);
    const who = await admin.query("SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name LIKE 'pgpushd-%'");
    assert.deepEqual(who.rows.map((x) => x.usename), [pg.daemonRole]);
  } finally {
    await d.stopClean();
  }
});

test('without USAGE on pgpush.version_seq: query_failed, a log line that says so, retried with backoff', { timeout: 30000 }, async () => {
  await admin.query('CREATE ROLE noseq LOGIN');
  await pg.grantDaemon({ role: 'noseq' });
  await admin.query('REVOKE USAGE ON SEQUENCE pgpush.version_seq FROM noseq');
  const d = await startDaemon({ db: `${pg.conninfo} user=noseq`, args: ['--refresh-interval', '300'] });
  try {
    const s = connectClient(d.url); sockets.push(s);
    await waitConnected(s);
    const { data: e } = await waitForError(s, () => true, 10000);
    assert.equal(e.code, 'query_failed');
    await new Promise((r) => setTimeout(r, 2500));
    const draws = d.grep(/drawing a version from pgpush\.version_seq failed: permission denied.*USAGE on the sequence/);
    assert.ok(draws.length >= 1, 'the log names the sequence and the grant');
    assert.ok(draws.length <= 3, `retried with backoff, not in a loop (${draws.length} attempts in 2.5 s)`);
    assert.equal(s.rec.updates.length, 0, 'nothing published without a version');
    s.close();
  } finally {
    await d.stopClean();
  }
});
