// A private, throwaway PostgreSQL cluster for the integration tests.
//
//   import { startCluster } from '../lib/pgcluster.mjs';
//   const pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
//   await pg.psql('SELECT 1');          // -> "1\n"
//   ... daemon --db pg.conninfo ...       // as role pgpushd, with only sql/grant.sql's grants
//   await pg.stop();
//
// pg.conninfo connects as DAEMON_ROLE (`pgpushd`), which has nothing but the
// documented grants (sql/grant.sql, applied after opts.sql when schema pgpush
// exists, or by pg.grantDaemon()); pg.superConninfo, psql() and client()
// connect as the superuser `postgres`.
//
// A streaming replica of a cluster (pg_basebackup -R, physical replication):
//
//   const rep = await pg.startReplica({ applyDelayMs: 1500 });
//   ... daemon --db pg.conninfo --query-db rep.conninfo ...
//   await rep.psql('SELECT pg_is_in_recovery()');   // -> "t\n" (as postgres)
//   await rep.setApplyDelay(0);                     // recovery_min_apply_delay, live
//   await rep.waitCaughtUp();                       // replayed the primary's insert position
//   await rep.stop();                               // also done by pg.stop() and at exit
//
// rep.conninfo / tcpConninfo connect as DAEMON_ROLE (roles and grants come
// with the base backup); rep.superConninfo as postgres. The replica has its
// own temp directory and free port; opts.settings adds server settings.
//
// Every cluster lives in its own mkdtemp() directory (data directory, Unix
// socket and server log) and listens on a free TCP port on 127.0.0.1, so test
// files can run in parallel. When running as root the server runs as the
// unprivileged `postgres` user (initdb refuses root). Clusters still running
// when the process exits are stopped (-m immediate) and their directory is
// removed.

import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
export const DAEMON_ROLE = 'pgpushd';
const RUN_AS = 'postgres';

// ---------------------------------------------------------------- helpers --

function versionKey(dir) {
  // "/usr/lib/postgresql/15/bin" -> [15]; "9.6" -> [9, 6]
  return path.basename(path.dirname(dir)).split('.').map((n) => parseInt(n, 10) || 0);
}

let cachedBindir;
export function findBindir() {
  if (cachedBindir) return cachedBindir;
  if (process.env.PG_BINDIR && fs.existsSync(path.join(process.env.PG_BINDIR, 'initdb'))) {
    return (cachedBindir = process.env.PG_BINDIR);
  }
  const base = '/usr/lib/postgresql';
  let candidates = [];
  try {
    candidates = fs.readdirSync(base)
      .map((v) => path.join(base, v, 'bin'))
      .filter((d) => fs.existsSync(path.join(d, 'initdb')));
  } catch { /* no Debian layout */ }
  candidates.sort((a, b) => {
    const ka = versionKey(a), kb = versionKey(b);
    for (let i = 0; i < Math.max(ka.length, kb.length); i++) {
      const d = (kb[i] || 0) - (ka[i] || 0);
      if (d) return d;
    }
    return 0;
  });
  if (candidates.length) return (cachedBindir = candidates[0]);
  try {
    const d = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    if (d && fs.existsSync(path.join(d, 'initdb'))) return (cachedBindir = d);
  } catch { /* no pg_config */ }
  throw new Error('pgcluster: cannot find initdb (install postgresql, e.g. `apt-get install postgresql`, or set PG_BINDIR)');
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function run(cmd, args, { env, cwd, input, timeout = 120000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, {
      env: env || process.env, cwd, timeout, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8',
    }, (err, stdout, stderr) => {
      if (err) {
        err.stdout = stdout;
        err.stderr = stderr;
        reject(err);
      } else resolve({ stdout, stderr });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

function tail(file, lines = 40) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no server log)';
  }
}

// --------------------------------------------------- cleanup on exit -------

const live = new Set(); // clusters not yet stopped

function cleanupSync() {
  for (const c of live) {
    try { c._stopSync(); } catch { /* best effort */ }
  }
  live.clear();
}

const HOOK = Symbol.for('pgpush.tests.exitHooks');
if (!globalThis[HOOK]) {
  globalThis[HOOK] = true;
  // Turn signals into a normal exit so every module's 'exit' hook runs.
  for (const [sig, n] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
    process.once(sig, () => process.exit(128 + n));
  }
}
process.on('exit', cleanupSync);

// ---------------------------------------------------------------- cluster --

/**
 * Create, start and return a private cluster.
 * opts.sql        array of SQL files (relative to the repo root or absolute) to load into the database
 * opts.dbname     database to create (default 'pgpush')
 * opts.settings   extra server settings, e.g. { max_connections: 50 }
 * opts.hba        pg_hba.conf lines put before the default ones (e.g. a scram-sha-256 rule)
 */
/** Stops a server (-m immediate; already stopped is fine) and removes its directory. */
async function removeServer({ asOwner, bin }, datadir, dir) {
  try {
    await asOwner(bin('pg_ctl'), ['stop', '-w', '-t', '30', '-m', 'immediate', '-D', datadir]);
  } catch { /* already stopped */ }
  fs.rmSync(dir, { recursive: true, force: true });
}

function removeServerSync({ asOwnerSync, bin }, datadir, dir) {
  try { asOwnerSync(bin('pg_ctl'), ['stop', '-w', '-t', '30', '-m', 'immediate', '-D', datadir]); } catch { /* */ }
  fs.rmSync(dir, { recursive: true, force: true });
}

export async function startCluster(opts = {}) {
  const bindir = findBindir();
  const dbname = opts.dbname || 'pgpush';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-pg-'));
  const datadir = path.join(dir, 'data');
  const logfile = path.join(dir, 'postgres.log');
  const port = await freePort();
  const bin = (name) => path.join(bindir, name);

  let owner = null;
  if (isRoot) {
    const uid = parseInt(execFileSync('id', ['-u', RUN_AS], { encoding: 'utf8' }), 10);
    const gid = parseInt(execFileSync('id', ['-g', RUN_AS], { encoding: 'utf8' }), 10);
    if (!Number.isFinite(uid)) throw new Error(`pgcluster: running as root but there is no '${RUN_AS}' user`);
    fs.chownSync(dir, uid, gid);
    owner = { uid, gid };
  }
  fs.writeFileSync(logfile, '');
  if (owner) fs.chownSync(logfile, owner.uid, owner.gid);

  // Commands that touch the data directory run as the cluster owner.
  const asOwner = (cmd, args, o = {}) => (isRoot
    ? run('runuser', ['-u', RUN_AS, '--', cmd, ...args], { cwd: dir, ...o })
    : run(cmd, args, { cwd: dir, ...o }));
  const asOwnerSync = (cmd, args) => (isRoot
    ? execFileSync('runuser', ['-u', RUN_AS, '--', cmd, ...args], { cwd: dir, stdio: 'ignore', timeout: 30000 })
    : execFileSync(cmd, args, { cwd: dir, stdio: 'ignore', timeout: 30000 }));

  const settings = {
    listen_addresses: '127.0.0.1',
    port,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    ...(opts.settings || {}),
  };
  const serverOpts = [`-k ${dir}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');

  const env = {
    PGHOST: dir,
    PGPORT: String(port),
    PGDATABASE: dbname,
    PGUSER: 'postgres',
  };
  const psqlEnv = { ...process.env, ...env, PGAPPNAME: 'pgpush-tests', PGCONNECT_TIMEOUT: '10' };
  delete psqlEnv.PGPASSWORD; delete psqlEnv.PGSERVICE; delete psqlEnv.DATABASE_URL;

  const fail = (what, err) => {
    const e = new Error(`pgcluster: ${what} failed: ${(err && (err.stderr || err.message)) || err}\n` +
      `--- ${logfile} (tail) ---\n${tail(logfile)}`);
    e.cause = err;
    return e;
  };

  const clients = new Set();
  const replicas = new Set();
  let stopped = false;

  const cluster = {
    dir,
    datadir,
    logfile,
    port,
    bindir,
    dbname,
    conninfo: `host=${dir} port=${port} dbname=${dbname} user=${DAEMON_ROLE}`,
    tcpConninfo: `host=127.0.0.1 port=${port} dbname=${dbname} user=${DAEMON_ROLE}`,
    superConninfo: `host=${dir} port=${port} dbname=${dbname} user=postgres`,
    daemonRole: DAEMON_ROLE,

    /** Give DAEMON_ROLE (or role) sql/grant.sql's grants in db (after install.sql). */
    async grantDaemon({ db = dbname, role = DAEMON_ROLE } = {}) {
      const abs = path.join(repoRoot, 'sql', 'grant.sql');
      try {
        await run(bin('psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', `role=${role}`, '-d', db, '-f', abs],
          { env: psqlEnv });
      } catch (err) {
        throw fail(`psql -f ${abs}`, err);
      }
    },
    env,

    /** Run SQL with psql (-X -A -t -q: unaligned, tuples only). Resolves stdout; throws with stderr. */
    async psql(sql, { db = dbname } = {}) {
      try {
        const { stdout } = await run(bin('psql'), ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', sql],
          { env: psqlEnv });
        return stdout;
      } catch (err) {
        throw fail(`psql -c ${JSON.stringify(sql.length > 200 ? sql.slice(0, 200) + '...' : sql)}`, err);
      }
    },

    /** Load a SQL file (relative to the repo root, or absolute). */
    async psqlFile(file, { db = dbname } = {}) {
      const abs = path.isAbsolute(file) ? file : path.join(repoRoot, file);
      try {
        const { stdout } = await run(bin('psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db, '-f', abs],
          { env: psqlEnv });
        return stdout;
      } catch (err) {
        throw fail(`psql -f ${abs}`, err);
      }
    },

    /** A connected `pg` Client (node_modules). Closed by stop(). */
    async client(extra = {}) {
      const pg = await loadPg();
      const c = new pg.Client({ host: dir, port, database: dbname, user: 'postgres',
        application_name: 'pgpush-tests', ...extra });
      // A server restart kills the backend; without a listener that 'error' would crash the test process.
      c.on('error', () => {});
      c.on('end', () => clients.delete(c));
      await c.connect();
      clients.add(c);
      return c;
    },

    async startServer() {
      try {
        await asOwner(bin('pg_ctl'), ['start', '-w', '-t', '60', '-D', datadir, '-l', logfile, '-o', serverOpts]);
      } catch (err) {
        throw fail('pg_ctl start', err);
      }
    },

    async stopServer({ mode = 'fast' } = {}) {
      try {
        await asOwner(bin('pg_ctl'), ['stop', '-w', '-t', '60', '-m', mode, '-D', datadir]);
      } catch (err) {
        throw fail('pg_ctl stop', err);
      }
    },

    async restart({ mode = 'fast' } = {}) {
      try {
        await asOwner(bin('pg_ctl'), ['restart', '-w', '-t', '60', '-m', mode, '-D', datadir, '-l', logfile, '-o', serverOpts]);
      } catch (err) {
        throw fail('pg_ctl restart', err);
      }
    },

    /** A streaming replica of this cluster (see the file header). */
    async startReplica(ropts = {}) {
      const r = await startReplicaOf(cluster, { ...ropts, owner, asOwner, asOwnerSync, bin, dbname, primarySettings: settings });
      replicas.add(r);
      return r;
    },

    /** Stop the server (-m immediate) and remove the directory. Idempotent. */
    async stop() {
      if (stopped) return;
      stopped = true;
      live.delete(cluster);
      for (const r of replicas) await r.stop().catch(() => {});
      for (const c of clients) c.end().catch(() => {});
      clients.clear();
      await removeServer({ asOwner, bin }, datadir, dir);
    },

    _stopSync() {
      if (stopped) return;
      stopped = true;
      removeServerSync({ asOwnerSync, bin }, datadir, dir);
    },
  };
  live.add(cluster);

  try {
    try {
      await asOwner(bin('initdb'), ['-D', datadir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8',
        '--locale=C', '--no-instructions'].filter((a) => a !== '--no-instructions' || hasNoInstructions(bindir)));
    } catch (err) {
      throw fail('initdb', err);
    }
    if (opts.hba && opts.hba.length) {
      const hba = path.join(datadir, 'pg_hba.conf');
      fs.writeFileSync(hba, `${opts.hba.join('\n')}\n${fs.readFileSync(hba, 'utf8')}`);
    }
    await cluster.startServer();
    await cluster.psql(`CREATE DATABASE ${dbname}`, { db: 'postgres' });
    // The daemon's role: LOGIN and the documented grants, nothing else.
    await cluster.psql(`CREATE ROLE ${DAEMON_ROLE} LOGIN`, { db: 'postgres' });
    for (const f of opts.sql || []) await cluster.psqlFile(f);
    if ((await cluster.psql("SELECT to_regnamespace('pgpush') IS NOT NULL")).trim() === 't') {
      await cluster.grantDaemon();
    }
  } catch (err) {
    await cluster.stop().catch(() => {});
    throw err;
  }
  return cluster;
}

// A physical streaming replica of primary: a base backup taken over the
// primary's Unix socket as postgres (initdb's pg_hba trusts local
// replication), started with the primary's settings on its own port. The
// apply delay goes to postgresql.auto.conf, not the command line, so that
// setApplyDelay (ALTER SYSTEM + reload) can change it.
async function startReplicaOf(primary, o) {
  const { owner, asOwner, asOwnerSync, bin, dbname } = o;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-pgr-'));
  const datadir = path.join(dir, 'data');
  const logfile = path.join(dir, 'postgres.log');
  const port = await freePort();
  if (owner) fs.chownSync(dir, owner.uid, owner.gid);
  fs.writeFileSync(logfile, '');
  if (owner) fs.chownSync(logfile, owner.uid, owner.gid);
  const settings = { ...o.primarySettings, ...(o.settings || {}), port };
  const serverOpts = [`-k ${dir}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
  const env = { PGHOST: dir, PGPORT: String(port), PGDATABASE: dbname, PGUSER: 'postgres' };
  const psqlEnv = { ...process.env, ...env, PGAPPNAME: 'pgpush-tests', PGCONNECT_TIMEOUT: '10' };
  delete psqlEnv.PGPASSWORD; delete psqlEnv.PGSERVICE; delete psqlEnv.DATABASE_URL;
  const fail = (what, err) => new Error(`pgcluster replica: ${what} failed: ${(err && (err.stderr || err.message)) || err}\n` +
    `--- ${logfile} (tail) ---\n${tail(logfile)}`);
  let stopped = false;

  const replica = {
    dir, datadir, logfile, port, dbname, env, primary,
    conninfo: `host=${dir} port=${port} dbname=${dbname} user=${DAEMON_ROLE}`,
    tcpConninfo: `host=127.0.0.1 port=${port} dbname=${dbname} user=${DAEMON_ROLE}`,
    superConninfo: `host=${dir} port=${port} dbname=${dbname} user=postgres`,
    daemonRole: DAEMON_ROLE,

    /** Run SQL on the replica as postgres (psql -X -A -t -q). */
    async psql(sql, { db = dbname } = {}) {
      try {
        const { stdout } = await run(bin('psql'), ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', sql],
          { env: psqlEnv });
        return stdout;
      } catch (err) {
        throw fail(`psql -c ${JSON.stringify(sql.length > 200 ? sql.slice(0, 200) + '...' : sql)}`, err);
      }
    },

    /** recovery_min_apply_delay, in ms, applied at once (ALTER SYSTEM + reload). */
    async setApplyDelay(ms) {
      await replica.psql(`ALTER SYSTEM SET recovery_min_apply_delay = '${Math.max(0, ms | 0)}ms'`);
      await replica.psql('SELECT pg_reload_conf()');
    },

    /** Resolves once the replica has replayed the primary's current insert position. */
    async waitCaughtUp({ timeoutMs = 30000 } = {}) {
      const lsn = (await primary.psql('SELECT pg_current_wal_insert_lsn()')).trim();
      const until = Date.now() + timeoutMs;
      for (;;) {
        const ok = (await replica.psql(`SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn`)).trim();
        if (ok === 't') return;
        if (Date.now() > until) throw new Error(`pgcluster replica: not caught up with ${lsn} in ${timeoutMs}ms`);
        await new Promise((res) => setTimeout(res, 50));
      }
    },

    async startServer() {
      try {
        await asOwner(bin('pg_ctl'), ['start', '-w', '-t', '60', '-D', datadir, '-l', logfile, '-o', serverOpts]);
      } catch (err) {
        throw fail('pg_ctl start', err);
      }
    },

    async stopServer({ mode = 'fast' } = {}) {
      try {
        await asOwner(bin('pg_ctl'), ['stop', '-w', '-t', '60', '-m', mode, '-D', datadir]);
      } catch (err) {
        throw fail('pg_ctl stop', err);
      }
    },

    /** Stop the replica (-m immediate) and remove its directory. Idempotent. */
    async stop() {
      if (stopped) return;
      stopped = true;
      live.delete(replica);
      await removeServer({ asOwner, bin }, datadir, dir);
    },

    _stopSync() {
      if (stopped) return;
      stopped = true;
      removeServerSync({ asOwnerSync, bin }, datadir, dir);
    },
  };
  live.add(replica);
  try {
    try {
      await asOwner(bin('pg_basebackup'), ['-D', datadir, '-R', '-X', 'stream', '-c', 'fast', '--no-sync',
        '-h', primary.dir, '-p', String(primary.port), '-U', 'postgres', '-d', `application_name=pgpush-replica-${port}`]);
    } catch (err) {
      throw fail('pg_basebackup', err);
    }
    const delay = o.applyDelayMs ? Math.max(0, o.applyDelayMs | 0) : 0;
    fs.appendFileSync(path.join(datadir, 'postgresql.auto.conf'), `recovery_min_apply_delay = '${delay}ms'\n`);
    await replica.startServer();
  } catch (err) {
    await replica.stop().catch(() => {});
    throw err;
  }
  return replica;
}

let noInstr;
function hasNoInstructions(bindir) {
  if (noInstr === undefined) {
    try {
      noInstr = execFileSync(path.join(bindir, 'initdb'), ['--help'], { encoding: 'utf8' }).includes('--no-instructions');
    } catch { noInstr = false; }
  }
  return noInstr;
}

let pgModule;
async function loadPg() {
  if (!pgModule) {
    // Resolve `pg` from the repository's node_modules, wherever the caller lives.
    const require = createRequire(path.join(repoRoot, 'package.json'));
    const mod = await import(require.resolve('pg'));
    pgModule = mod.default || mod;
  }
  return pgModule;
}

export default startCluster;
