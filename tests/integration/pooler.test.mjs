// Connection poolers (issue 12 part 6): LISTEN through pgbouncer's
// transaction mode would lose notifications silently, and the query
// sessions' SETs would land on other clients' server sessions. pgpushd
// tells a pooler by the backend PID it announces (pgbouncer's own key)
// against pg_backend_pid(), refuses the connection with a clear error, is
// not ready, tells clients, and retries; a direct connection still works.
// Real pgbouncer (Debian's package) in front of a throwaway cluster, in
// transaction and in session mode; skipped when pgbouncer is not installed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startCluster, freePort, DAEMON_ROLE } from '../lib/pgcluster.mjs';
import {
  startDaemon, rawRequest, seedShop, connectClient, waitForUpdate, waitForError, closeClients, sleep,
} from '../lib/daemon.mjs';

const PGBOUNCER = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => fs.existsSync(p));
const skip = PGBOUNCER ? false : 'pgbouncer is not installed (apt-get install pgbouncer; quickstart lists it in TEST_PACKAGES)';

let pg, products;
const bouncers = {};

function waitPort(port, timeoutMs) {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tryOnce = () => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(); });
      s.once('error', () => {
        s.destroy();
        if (Date.now() - t0 > timeoutMs) reject(new Error(`pgbouncer did not listen on ${port}`));
        else setTimeout(tryOnce, 100);
      });
    };
    tryOnce();
  });
}

/** pgbouncer in pool_mode `mode` in front of the cluster, on a free port,
 * from its own ini in a private directory; as `postgres` when root
 * (pgbouncer refuses to run as root). */
async function startBouncer(mode) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pgpush-pgbouncer-${mode}-`));
  // The cluster trusts 127.0.0.1 (pgcluster.mjs); pgbouncer's trust still
  // wants the user names listed.
  fs.writeFileSync(path.join(dir, 'userlist.txt'), `"${DAEMON_ROLE}" ""\n"postgres" ""\n`);
  fs.writeFileSync(path.join(dir, 'pgbouncer.ini'), [
    '[databases]',
    `* = host=127.0.0.1 port=${pg.port}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${path.join(dir, 'userlist.txt')}`,
    `pool_mode = ${mode}`,
    `logfile = ${path.join(dir, 'pgbouncer.log')}`,
    // One server session per pool: a transaction pool then reuses the
    // same backend, the case that looks most like a session.
    'default_pool_size = 1',
    '',
  ].join('\n'));
  let cmd = PGBOUNCER;
  let args = [path.join(dir, 'pgbouncer.ini')];
  if (process.getuid && process.getuid() === 0) {
    execFileSync('chown', ['-R', 'postgres', dir]);
    args = ['-u', 'postgres', '--', cmd, ...args];
    cmd = 'runuser';
  }
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (b) => { err += b; });
  await waitPort(port, 10000).catch((e) => {
    throw new Error(`${e.message}: ${err}`);
  });
  return {
    port, dir, proc,
    conninfo: `host=127.0.0.1 port=${port} dbname=${pg.dbname} user=${DAEMON_ROLE}`,
    stop: () => new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once('exit', () => { fs.rmSync(dir, { recursive: true, force: true }); resolve(); });
      proc.kill('SIGTERM');
    }),
  };
}

before(async () => {
  if (skip) return;
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  const db = await pg.client();
  products = await seedShop(db, { products: 2 });
  await db.end();
  bouncers.transaction = await startBouncer('transaction');
  bouncers.session = await startBouncer('session');
});

after(async () => {
  try {
    for (const b of Object.values(bouncers)) await b.stop();
  } finally {
    if (pg) await pg.stop();
  }
});

function parse(text) {
  const [h, ...rest] = text.split('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(h)?.[1]), body: rest.join('\r\n\r\n') };
}

async function get(port, p) {
  return parse((await rawRequest(port, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).text);
}

test('pgbouncer announces a backend PID of its own in both pool modes (what the detection rests on)', { skip }, async () => {
  const { default: pgmod } = await import('pg');
  for (const mode of ['transaction', 'session']) {
    const c = new pgmod.Client({ host: '127.0.0.1', port: bouncers[mode].port, database: pg.dbname, user: DAEMON_ROLE });
    await c.connect();
    try {
      const r = await c.query('SELECT pg_backend_pid() AS pid');
      console.log(`pgbouncer ${mode} mode: BackendKeyData PID ${c.processID}, pg_backend_pid() ${r.rows[0].pid}`);
      assert.notEqual(Number(r.rows[0].pid), c.processID, `${mode}: the announced PID is pgbouncer's`);
    } finally {
      await c.end();
    }
  }
});

for (const mode of ['transaction', 'session']) {
  test(`--db through pgbouncer in ${mode} mode: refused with a clear error, not ready, clients told, retried`, { skip, timeout: 60000 }, async () => {
    const d = await startDaemon({ db: bouncers[mode].conninfo, args: ['--refresh-interval', '300'] });
    const s = connectClient(d.url);
    try {
      const m = await d.waitForLog(/conn=pgpushd-listener reaches PostgreSQL through a connection pooler.*/, 15000);
      console.log(`${mode}: ${m[0].slice(0, 240)}...`);
      assert.match(m[0], /LISTEN/, 'says what cannot work');
      assert.match(m[0], /Point --db directly at PostgreSQL/, 'says what to do');
      await d.waitForLog(/conn=pgpushd-query reaches PostgreSQL through a connection pooler.*session settings/, 15000);
      const e = await waitForError(s, (x) => x.code === 'db_unavailable', 15000);
      // Clients get the usual outage (the details stay in the log and on
      // loopback /healthz), with the time of the next attempt.
      console.log(`${mode}: client error ${JSON.stringify(e.data)}`);
      // Retried with the backoff: a second attempt meets the same refusal.
      await d.waitForLog(/database unavailable conn=pgpushd-listener: connected through a connection pooler/, 15000);
      const since = d.mark();
      await d.waitForLog(/database unavailable conn=pgpushd-listener: connected through a connection pooler/, 15000, { since });
      const ready = await get(d.port, '/readyz');
      assert.equal(ready.status, 503, '/readyz is not ready');
      const health = await get(d.port, '/healthz');
      assert.equal(health.status, 503);
      const h = JSON.parse(health.body);
      assert.equal(h.listener, false);
      assert.match(h.lastError, /connection pooler/, '/healthz says why');
      assert.equal(s.rec.updates.length, 0, 'no document was served');
      // Never silently run: no server session behind pgbouncer ever got
      // LISTEN or the query sessions' SETs.
      const last = (await pg.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE query ~* '^(LISTEN|SET default_transaction_read_only)'")).trim();
      assert.equal(last, '0', 'no LISTEN and no SET reached PostgreSQL through the pooler');
    } finally {
      closeClients([s]);
      await d.stopClean();
    }
  });
}

test('--db straight at PostgreSQL (same cluster, same role): ready and serving', { skip, timeout: 60000 }, async () => {
  const d = await startDaemon({ db: pg.tcpConninfo, args: ['--refresh-interval', '300'] });
  const s = connectClient(d.url);
  try {
    await waitForUpdate(s, (x) => Array.isArray(x.recentSales), 15000);
    let ready;
    for (let i = 0; i < 100; i++) {
      ready = await get(d.port, '/readyz');
      if (ready.status === 200) break;
      await sleep(100);
    }
    assert.equal(ready.status, 200, '/readyz ready');
    assert.equal(d.grep(/connection pooler/).length, 0, 'no pooler reported');
    assert.ok(products.length === 2);
  } finally {
    closeClients([s]);
    await d.stopClean();
  }
});
