#!/usr/bin/env node
// The benchmark suite of issue 4: pgpushd against the Node.js reference
// (tests/bench/reference-server.mjs), same machine, same run, same database.
//
//   tests/bench/run [--quick] [--scenarios LIST] [--servers pgpushd,node]
//       [--sizes 1k,10k,50k] [--clients 1,100,1000,10000] [--samples 10]
//       [--mem-clients 1000,10000] [--concurrency 100] [--storm-seconds 20]
//       [--storm-clients 1000] [--storm-writers 8] [--storm-idle-seconds 10]
//       [--insert-seconds 5] [--tls-clients 1000] [--writers 1,8,32] [--perf DIR] [--durable] [--out FILE]
//       [--max-minutes 90] [--baseline FILE] [--aud-clients 1000]
//       [--audiences 1,10,100] [--delta-clients 1000,10000]
//       [--pmd-clients 1000,10000] [--pmd-mem-clients 10000] [--pmd-sales 20]
//
// Scenarios (--scenarios, comma-separated; default all, in this order):
//   query    time of SELECT pgpush.dashboard() on the demo data (median of 20)
//   latency  commit-to-client latency, p50/p99/max over all clients, for each
//            --clients count and --sizes snapshot size (padded documents);
//            with --perf DIR, extra broadcasts to the most clients at the
//            second size run under `perf record` (not counted in the table)
//   memory   RSS per idle connection (VmRSS delta) at --mem-clients; the same
//            connects give the Socket.IO handshake rate (--concurrency in flight)
//   bytes    bytes on the wire per snapshot, raw and with permessage-deflate
//   storm    pgbench inserting sales for --storm-seconds with --storm-clients
//            connected: notifications, recomputes, server CPU, time from the
//            last commit to every client having the final state; then the
//            same storm with no client (--storm-idle-seconds, 0 = skip)
//   insert   pgbench INSERT throughput with and without the doorbell trigger
//   tls      direct TLS against the clear port, each server in the same run:
//            commit → first/last of --tls-clients (default 1000) clients at
//            the second --sizes size, server CPU per broadcast, and RSS per
//            idle client (loadgen --tls; pgpushd --tls-cert, the reference
//            server's --tls-cert: Node's https server), certificates from a
//            throwaway CA (tests/lib/testca.mjs)
//   audiences (pgpushd only; not in the default list) --aud-clients clients
//            (1,000) with tokens (HS256) spread over each --audiences count
//            of roles (1, 10, 100) on the main namespace, against the same
//            clients without authentication: dashboard queries per sale
//            (/healthz), commit -> last client (median over --samples
//            sales of the per-sale maximum), RSS per audience (one client
//            each first) and per client on top of that
//   changesrc  (not in the default list; issue 13) pgbench INSERT throughput
//            with 1, 8 and 32 writers under no doorbell, the NOTIFY doorbell
//            (pgpushd --change-source notify running) and the logical source
//            (pgpushd --change-source logical attached and streaming), each
//            --insert-seconds; the walsender's CPU; then commit -> first
//            client p50 for notify and logical (--samples commits, one
//            client). Starts the cluster with wal_level=logical. Durability
//            is the cluster's: run it with and without --durable. Cells are
//            interleaved, --rounds times (default 3), medians reported;
//            --writers 1,8,32, --modes none,notify,logical and
//            --daemon-args '...' (extra pgpushd options) narrow it.
//   deltas   (pgpushd only; not in the default list) one demo sale as the
//            full dashboardDataUpdate against the dashboardDataPatch that
//            clients opting in ({deltas: true} in the CONNECT) get: bytes per
//            client per sale, raw and with permessage-deflate; the diff's CPU
//            time (/healthz diffMicroseconds / diffs) against the query time
//            (the daemon's log); commit -> last client for each
//            --delta-clients count (1,000 and 10,000), full documents and
//            patches in the same run (median over --samples sales)
//   pmd      (not in the default list; issue 14) permessage-deflate with the
//            server's context kept (--permessage-deflate shared) against
//            standalone frames (--permessage-deflate standalone) and the Node
//            reference with context takeover (ws, --deflate), in one run;
//            every loadgen client offers permessage-deflate with context
//            takeover and inflates with one zlib stream per connection. Bytes
//            per client per demo sale (frame bytes of every update received
//            ÷ updates received, --pmd-sales sales, 2 clients); RSS per idle
//            client (--pmd-mem-clients, 10,000), shared against standalone
//            (and once the Node reference, which keeps a deflate per client);
//            server CPU per broadcast (/proc utime+stime over --samples
//            sales) and commit -> last client (median of the per-sale
//            maximum) at each --pmd-clients count (1,000 and 10,000), shared
//            against standalone, --rounds rounds in alternating order
// --quick: a 1-2 minute smoke run of every scenario (smaller counts).
// --durable: PostgreSQL with fsync and synchronous_commit on (default: off,
// like the integration tests).
//
// Everything runs on loopback, against a private throwaway PostgreSQL cluster
// (tests/lib/pgcluster.mjs) loaded with sql/schema.sql, install.sql and
// demo-data.sql; every wait is bounded, and every process is stopped at the
// end (or on Ctrl-C). Results: a table on stdout, every raw number in --out
// (JSON; default bench-results.json in a temporary directory).
// --baseline FILE: also run FILE, another pgpushd binary (say the build of an
// earlier commit), as the server `baseline`, in the same run and on the same
// database, and print a before/after table (baseline ÷ pgpushd): how a change
// is shown to be no slower. --servers may then name baseline,pgpushd.
// Environment: PGPUSHD, LOADGEN (binaries to use), PGPUSHD_COMMIT (recorded),
// PGPUSHD_BASELINE (the same as --baseline).

import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { startCluster, freePort, repoRoot } from '../lib/pgcluster.mjs';
import { makeCA } from '../lib/testca.mjs';

// ------------------------------------------------------------- options ----

const argv = process.argv.slice(2);
const opt = {
  quick: false,
  scenarios: ['query', 'latency', 'memory', 'bytes', 'storm', 'insert', 'tls'],
  tlsClients: 1000,
  sizes: [1000, 10000, 50000],
  clients: [1, 100, 1000, 10000],
  memClients: [1000, 10000],
  samples: 10,
  servers: ['pgpushd', 'node'],
  deltaClients: [1000, 10000],
  out: null,
  stormSeconds: 20,
  stormClients: 1000,
  stormWriters: 8,
  stormIdleSeconds: 10,
  insertSeconds: 5,
  writers: [1, 8, 32],
  modes: ['none', 'notify', 'logical'],
  rounds: 3,
  daemonArgs: [],
  perf: null,
  durable: false,
  maxMinutes: 90,
  concurrency: 100,
  baseline: process.env.PGPUSHD_BASELINE || null,
  audClients: 1000,
  audiences: [1, 10, 100],
  pmdClients: [1000, 10000],
  pmdMemClients: [10000],
  pmdSales: 20,
};
const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
const size = (s) => { const m = /^(\d+(?:\.\d+)?)([kK])?$/.exec(s); if (!m) throw new Error(`bad size ${s}`); return Math.round(Number(m[1]) * (m[2] ? 1000 : 1)); };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const v = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i]; };
  switch (a) {
    case '--quick': opt.quick = true; break;
    case '--scenarios': opt.scenarios = list(v()); break;
    case '--writers': opt.writers = list(v()).map(Number); break;
    case '--modes': opt.modes = list(v()); break;
    case '--rounds': opt.rounds = Number(v()); break;
    case '--daemon-args': opt.daemonArgs = v().split(/\s+/).filter(Boolean); break;
    case '--sizes': opt.sizes = list(v()).map(size); break;
    case '--clients': opt.clients = list(v()).map(size); break;
    case '--mem-clients': opt.memClients = list(v()).map(size); break;
    case '--samples': opt.samples = Number(v()); break;
    case '--servers': opt.servers = list(v()); break;
    case '--out': opt.out = v(); break;
    case '--storm-seconds': opt.stormSeconds = Number(v()); break;
    case '--storm-clients': opt.stormClients = size(v()); break;
    case '--storm-writers': opt.stormWriters = Number(v()); break;
    case '--storm-idle-seconds': opt.stormIdleSeconds = Number(v()); break;
    case '--insert-seconds': opt.insertSeconds = Number(v()); break;
    case '--tls-clients': opt.tlsClients = size(v()); break;
    case '--concurrency': opt.concurrency = Number(v()); break;
    case '--perf': opt.perf = path.resolve(v()); break;
    case '--durable': opt.durable = true; break;
    case '--max-minutes': opt.maxMinutes = Number(v()); break;
    case '--baseline': opt.baseline = path.resolve(v()); break;
    case '--aud-clients': opt.audClients = size(v()); break;
    case '--audiences': opt.audiences = list(v()).map(Number); break;
    case '--delta-clients': opt.deltaClients = list(v()).map(size); break;
    case '--pmd-clients': opt.pmdClients = list(v()).map(size); break;
    case '--pmd-mem-clients': opt.pmdMemClients = list(v()).map(size); break;
    case '--pmd-sales': opt.pmdSales = Number(v()); break;
    case '-h': case '--help':
      console.log(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1).filter((l, i, a) => a.slice(0, i + 1).every((x) => x.startsWith('//'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
      process.exit(0);
      break;
    default: throw new Error(`unknown option ${a} (try --help)`);
  }
}
if (opt.quick) {
  // A 1-2 minute smoke run of every scenario, unless the sizes were given.
  if (!argv.includes('--sizes')) opt.sizes = [1000, 10000];
  if (!argv.includes('--clients')) opt.clients = [1, 100, 1000];
  if (!argv.includes('--mem-clients')) opt.memClients = [1000];
  if (!argv.includes('--samples')) opt.samples = 3;
  if (!argv.includes('--storm-seconds')) opt.stormSeconds = 5;
  if (!argv.includes('--storm-clients')) opt.stormClients = 200;
  if (!argv.includes('--storm-idle-seconds')) opt.stormIdleSeconds = 3;
  if (!argv.includes('--insert-seconds')) opt.insertSeconds = 2;
  if (!argv.includes('--tls-clients')) opt.tlsClients = 200;
  if (!argv.includes('--aud-clients')) opt.audClients = 200;
  if (!argv.includes('--delta-clients')) opt.deltaClients = [200];
  if (!argv.includes('--pmd-clients')) opt.pmdClients = [200];
  if (!argv.includes('--pmd-mem-clients')) opt.pmdMemClients = [1000];
  if (!argv.includes('--pmd-sales')) opt.pmdSales = 5;
}
if (opt.baseline && !argv.includes('--servers')) opt.servers = ['baseline', ...opt.servers];
for (const s of opt.servers) if (!['pgpushd', 'node', 'baseline'].includes(s)) throw new Error(`unknown server ${s}`);
if (opt.servers.includes('baseline') && !opt.baseline) throw new Error('server baseline needs --baseline FILE');
/** Both pgpushd kinds: the binary under test and the baseline build. */
const isPgpushd = (kind) => kind === 'pgpushd' || kind === 'baseline';

const PGPUSHD = process.env.PGPUSHD || path.join(repoRoot, 'src', 'pgpushd');
const LOADGEN = process.env.LOADGEN || path.join(repoRoot, 'tests', 'bench', 'loadgen');
const REFSRV = path.join(repoRoot, 'tests', 'bench', 'reference-server.mjs');
for (const f of [PGPUSHD, LOADGEN, ...(opt.baseline ? [opt.baseline] : [])]) {
  if (!fs.existsSync(f)) throw new Error(`${f} is missing: build it (make && make tests/bench/loadgen), or use tests/bench/run`);
}
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-bench-'));
const outFile = opt.out ? path.resolve(opt.out) : path.join(workDir, 'bench-results.json');
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

const log = (...a) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${a.join(' ')}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

// ------------------------------------------------------ process hygiene ----

const children = new Set();
function track(p) {
  children.add(p);
  p.on('exit', () => children.delete(p));
  return p;
}
function killAll() {
  for (const p of children) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
}
process.on('exit', killAll);
const deadline = setTimeout(() => {
  log(`--max-minutes ${opt.maxMinutes} reached: stopping`);
  process.exit(3);
}, opt.maxMinutes * 60000);
deadline.unref();

// ------------------------------------------------------------- helpers ----

function procStatus(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => { const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s); return m ? Number(m[1]) : null; };
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch { return { rssKb: null, hwmKb: null }; }
}
/** CPU time of a process, all threads (schedstat: ns; /proc/<pid>/stat ticks as a fallback). */
function cpuSeconds(pid) {
  try {
    let ns = 0;
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    }
    return ns / 1e9;
  } catch { /* no schedstat */ }
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime + stime (fields 14, 15)
  } catch { return null; }
}
function httpJson(port, p, timeoutMs = 2000, tls = false) {
  return new Promise((resolve) => {
    const req = (tls ? https : http).get({ host: '127.0.0.1', port, path: p, timeout: timeoutMs, agent: false, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => { try { resolve({ status: res.statusCode, json: JSON.parse(body) }); } catch { resolve({ status: res.statusCode, json: null }); } });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, json: null }));
  });
}
function pctl(values, p) {
  if (!values.length) return null;
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.floor(p * v.length))];
}
const median = (v) => pctl(v, 0.5);

// CPU used by processes that are not part of this benchmark (other work on
// a shared machine): everything but this process's descendants and the
// PostgreSQL cluster's. Processes that start and end inside the interval
// are missed.
function procSnapshot() {
  const m = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      m.set(Number(d), { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK, start: Number(f[19]) });
    } catch { /* gone */ }
  }
  return m;
}
function foreignCpu(before, after, wallSec) {
  let pmPid = null;
  try { pmPid = Number(fs.readFileSync(path.join(pg.datadir, 'postmaster.pid'), 'utf8').split('\n')[0]); } catch { /* */ }
  const mine = (pid) => {
    for (let p = pid, i = 0; p > 1 && i < 50; i++) {
      if (p === process.pid || p === pmPid) return true;
      const e = after.get(p) || before.get(p);
      if (!e) return false;
      p = e.ppid;
    }
    return false;
  };
  let sec = 0;
  for (const [pid, e] of after) {
    if (mine(pid)) continue;
    const b = before.get(pid);
    sec += b && b.start === e.start ? e.cpu - b.cpu : e.cpu;
  }
  return Math.round(sec / wallSec * 100) / 100; // cores
}

// ------------------------------------------------------------- servers ----

/** Start pgpushd or the Node reference; resolves once /healthz says ok. */
async function startServer(kind, { query, logLevel = 'warn', extra = [], tls = null } = {}) {
  if (tls) extra = [...extra, '--tls-cert', tls.cert, '--tls-key', tls.key];
  const port = await freePort();
  const logFile = path.join(workDir, `${kind}-${port}.log`);
  const out = fs.openSync(logFile, 'a');
  let cmd, args;
  if (isPgpushd(kind)) {
    cmd = kind === 'baseline' ? opt.baseline : PGPUSHD;
    args = ['--listen', `127.0.0.1:${port}`, '--db', pg.conninfo, '--log-level', logLevel,
      '--max-clients', '30000', '--refresh-interval', '30', ...extra];
    if (query) args.push('--query', query);
  } else {
    cmd = process.execPath;
    args = [REFSRV, '--port', String(port), '--db', pg.conninfo, '--refresh-interval', '30', ...extra];
    if (query) args.push('--query', query);
  }
  const proc = track(spawn(cmd, args, { stdio: ['ignore', out, out] }));
  fs.closeSync(out);
  let exited = null;
  proc.on('exit', (code, sig) => { exited = { code, sig }; });
  const t0 = Date.now();
  for (;;) {
    if (exited) throw new Error(`${kind} exited (${JSON.stringify(exited)}) during start-up; see ${logFile}`);
    const h = await httpJson(port, '/healthz', 1000, !!tls);
    if (h.status === 200) break;
    if (Date.now() - t0 > 20000) throw new Error(`${kind} not healthy after 20 s; see ${logFile}`);
    await sleep(100);
  }
  return {
    kind, port, pid: proc.pid, proc, logFile,
    health: async () => (await httpJson(port, '/healthz', 5000, !!tls)).json,
    rss: () => procStatus(proc.pid),
    cpu: () => cpuSeconds(proc.pid),
    logText: () => fs.readFileSync(logFile, 'utf8'),
    async stop() {
      if (exited) return;
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([gone, sleep(5000)]);
      if (!exited) { proc.kill('SIGKILL'); await gone; }
    },
  };
}

// ------------------------------------------------------------- loadgen ----

/** Spawn the C load generator; resolves after its "connected" line. */
async function startLoadgen(port, n, { tagKey, deflate = false, tls = false, concurrency = opt.concurrency, timeoutMs, authFile } = {}) {
  const args = ['--port', String(port), '-n', String(n), '--concurrency', String(concurrency),
    '--per-ip', '20000', '--max-seconds', String(opt.maxMinutes * 60)];
  if (tagKey) args.push('--tag-key', tagKey);
  if (authFile) args.push('--auth-file', authFile);
  if (deflate) args.push('--deflate');
  if (tls) args.push('--tls');
  const proc = track(spawn(LOADGEN, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
  const errLines = [];
  readline.createInterface({ input: proc.stderr }).on('line', (l) => { if (errLines.length < 50) errLines.push(l); });
  const queue = [];
  const waiters = [];
  let exited = false;
  proc.on('exit', () => { exited = true; for (const w of waiters.splice(0)) w.reject(new Error(`loadgen exited: ${errLines.slice(-3).join(' | ')}`)); });
  readline.createInterface({ input: proc.stdout }).on('line', (l) => {
    let o;
    try { o = JSON.parse(l); } catch { return; }
    const i = waiters.findIndex((w) => w.pred(o));
    if (i >= 0) { const [w] = waiters.splice(i, 1); clearTimeout(w.timer); w.resolve(o); } else queue.push(o);
  });
  const lg = {
    proc, errLines,
    next(pred, ms = 30000) {
      const i = queue.findIndex(pred);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]);
      if (exited) return Promise.reject(new Error(`loadgen exited: ${errLines.slice(-3).join(' | ')}`));
      return new Promise((resolve, reject) => {
        const w = { pred, resolve, reject };
        w.timer = setTimeout(() => { waiters.splice(waiters.indexOf(w), 1); reject(new Error(`loadgen: timeout waiting (${ms} ms)`)); }, ms);
        waiters.push(w);
      });
    },
    send(line) { proc.stdin.write(`${line}\n`); },
    async report() {
      const versions = [];
      this.send('report');
      for (;;) {
        const o = await this.next((x) => x.ev === 'version' || x.ev === 'summary', 60000);
        if (o.ev === 'summary') return { versions, summary: o };
        versions.push(o);
      }
    },
    async stats() { this.send('stats'); return this.next((x) => x.ev === 'stats', 10000); },
    async quit() {
      if (exited) return;
      const gone = new Promise((r) => proc.once('exit', r));
      this.send('quit');
      await Promise.race([gone, sleep(10000)]);
      if (!exited) proc.kill('SIGKILL');
    },
  };
  lg.connected = await lg.next((o) => o.ev === 'connected', timeoutMs || Math.max(30000, n * 10));
  if (lg.connected.joined < n) log(`  loadgen: only ${lg.connected.joined}/${n} clients joined (${errLines.slice(0, 3).join(' | ')})`);
  return lg;
}

// ------------------------------------------------------------- database ---

let pg;
let db; // a pg Client for the driver's own inserts
async function insertSale(who = 'bench') {
  const r = await db.query(
    `INSERT INTO sales (product_id, quantity, unit_price, customer_name, customer_email)
     VALUES ($1, 1, 9.99, $2, 'bench@example.com')
     RETURNING id, (extract(epoch FROM clock_timestamp()) * 1000000)::int8 AS t`, [productIds[0], who]);
  return { id: Number(r.rows[0].id), t: Number(r.rows[0].t) };
}
let productIds = [];
// The latency and bytes scenarios' documents: "v" (max(sales.id), so every
// new sale makes a new snapshot) in front of "pad", a JSON array of sale rows
// from the demo data (it compresses like a real dashboard, unlike a run of
// one character), precomputed once per size in bench_pad so that the query
// costs about the same at every size.
const paddedQuery = (bytes) =>
  `SELECT json_build_object('v', (SELECT max(id) FROM public.sales), 'pad', (SELECT doc FROM public.bench_pad WHERE bytes = ${bytes}))`;
async function preparePadding(sizes) {
  await db.query('CREATE TABLE IF NOT EXISTS public.bench_pad (bytes integer PRIMARY KEY, doc json NOT NULL)');
  await db.query(`GRANT SELECT ON public.bench_pad TO ${pg.daemonRole}`); // servers run as it
  const rowSql = `SELECT json_build_object('id', s.id, 'sku', p.sku, 'product', p.name, 'quantity', s.quantity,
      'amount', round(s.quantity * s.unit_price, 2), 'customerName', s.customer_name,
      'customerEmail', s.customer_email, 'soldAt', s.sold_at) AS r
    FROM public.sales s JOIN public.products p ON p.id = s.product_id ORDER BY s.id`;
  for (const bytes of sizes) {
    // Rows until the document (with its ~110 bytes of other keys) has the size.
    await db.query(`INSERT INTO public.bench_pad (bytes, doc)
      SELECT $1, coalesce(json_agg(r), '[]') FROM (
        SELECT r, sum(octet_length(r::text) + 2) OVER (ORDER BY n) AS acc
        FROM (SELECT r, row_number() OVER () AS n FROM (${rowSql}) q) q2) q3
      WHERE acc <= greatest($1 - 110, 0)
      ON CONFLICT (bytes) DO NOTHING`, [bytes]);
  }
}

async function cleanupRows() {
  await db.query(`DELETE FROM sales WHERE customer_name IN ('bench', 'storm')`);
  await db.query('VACUUM ANALYZE sales');
}

function pgbench(args, { timeoutMs } = {}) {
  return new Promise((resolve, reject) => {
    const p = track(spawn(path.join(pg.bindir, 'pgbench'), args, {
      env: { ...process.env, PGHOST: pg.dir, PGPORT: String(pg.port), PGUSER: 'postgres', PGDATABASE: pg.dbname },
      stdio: ['ignore', 'pipe', 'pipe'],
    }));
    let out = '';
    p.stdout.on('data', (c) => { out += c; });
    p.stderr.on('data', (c) => { out += c; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs || 120000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      const tps = /tps = ([\d.]+) \((?:without|excluding)/.exec(out);
      const tx = /number of transactions actually processed: (\d+)/.exec(out);
      if (code !== 0 || !tps) reject(new Error(`pgbench failed (${code}): ${out.slice(-600)}`));
      else resolve({ tps: Number(tps[1]), tx: tx ? Number(tx[1]) : null, output: out });
    });
  });
}

// ------------------------------------------------------------- scenarios --

const results = { machine: {}, options: opt, started: new Date().toISOString(), query: null, latency: [], memory: [], bytes: [], storm: [], insert: null, audiences: [], tls: [], deltas: null };

function machineInfo() {
  const cpu = (() => { try { return /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))[1]; } catch { return os.cpus()[0]?.model; } })();
  let pgVersion = null;
  try { pgVersion = execFileSync(path.join(pg.bindir, 'postgres'), ['--version'], { encoding: 'utf8' }).trim(); } catch { /* */ }
  return {
    nproc: os.cpus().length, cpu, kernel: `${os.type()} ${os.release()}`,
    memGiB: Math.round(os.totalmem() / 2 ** 30 * 10) / 10, node: process.version, postgres: pgVersion,
    nofile: (() => { try { return execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim(); } catch { return null; } })(),
    somaxconn: (() => { try { return fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim(); } catch { return null; } })(),
  };
}

function binaryInfo(file) {
  const info = { path: file };
  try { info.sha256 = execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]; } catch { /* */ }
  try { info.mtime = fs.statSync(file).mtime.toISOString(); } catch { /* */ }
  try { info.commit = execFileSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim(); } catch { /* */ }
  if (process.env.PGPUSHD_COMMIT) info.commit = process.env.PGPUSHD_COMMIT;
  return info;
}

async function scenarioQuery() {
  log('query: timing SELECT pgpush.dashboard() (psql \\timing, 1 warm-up + 20)');
  const input = '\\timing on\n' + 'SELECT pgpush.dashboard() \\g /dev/null\n'.repeat(21);
  const out = await new Promise((resolve, reject) => {
    const p = track(spawn(path.join(pg.bindir, 'psql'), ['-X', '-q', '-h', pg.dir, '-p', String(pg.port), '-U', 'postgres', '-d', pg.dbname],
      { stdio: ['pipe', 'pipe', 'pipe'] }));
    let o = '';
    p.stdout.on('data', (c) => { o += c; });
    p.stderr.on('data', (c) => { o += c; });
    p.on('exit', (code) => (code === 0 ? resolve(o) : reject(new Error(o))));
    p.stdin.end(input);
  });
  const times = [...out.matchAll(/Time: ([\d.]+) ms/g)].map((m) => Number(m[1]));
  const runs = times.slice(1);
  const bytes = Number((await db.query('SELECT octet_length(pgpush.dashboard()::text) AS n')).rows[0].n);
  const sales = Number((await db.query('SELECT count(*) AS n FROM sales')).rows[0].n);
  const plan = (await db.query('EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF, SUMMARY ON) SELECT pgpush.dashboard()')).rows.map((r) => r['QUERY PLAN']).join(' | ');
  results.query = { medianMs: median(runs), minMs: Math.min(...runs), maxMs: Math.max(...runs), firstMs: times[0], runs, docBytes: bytes, sales, explain: plan };
  log(`  median ${results.query.medianMs} ms (min ${results.query.minMs}, max ${results.query.maxMs}), document ${bytes} B, ${sales} sales`);
}

/** Extra broadcasts under perf record (not counted in the latency table: perf slows the daemon down). */
async function profile(srv, lg, n, bytes, waitMs) {
  fs.mkdirSync(opt.perf, { recursive: true });
  const base = path.join(opt.perf, `pgpushd-${n}-${bytes}`);
  const perf = track(spawn('perf', ['record', '-F', '1000', '-g', '-p', String(srv.pid), '-o', `${base}.perf.data`], { stdio: 'ignore' }));
  await sleep(500);
  for (let k = 0; k < opt.samples; k++) {
    const s = await insertSale();
    lg.send(`wait ${s.id} ${Math.round(waitMs)}`);
    await lg.next((o) => o.ev === 'wait' && o.tag === s.id, waitMs + 10000);
    await sleep(200);
  }
  perf.kill('SIGINT');
  await new Promise((r) => perf.once('exit', r));
  const rep = (sort) => { try { return execFileSync('perf', ['report', '-i', `${base}.perf.data`, '--stdio', '--no-children', '-g', 'none', '--percent-limit', '0.8', '--sort', sort], { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'ignore'] }); } catch (e) { return String(e.message); } };
  fs.writeFileSync(`${base}.perf.txt`, `# perf record -F 1000 -g -p <pgpushd> during ${opt.samples} broadcasts to ${n} clients, ${bytes} B\n\n## by DSO\n${rep('dso')}\n## by symbol\n${rep('dso,sym')}`);
  log(`  perf profile (extra ${opt.samples} broadcasts, not in the table) -> ${base}.perf.txt`);
}

async function scenarioLatency() {
  for (const bytes of opt.sizes) {
    const query = paddedQuery(bytes);
    for (const kind of opt.servers) {
      const srv = await startServer(kind, { query });
      try {
        for (const n of opt.clients) {
          log(`latency: ${kind} ${n} clients, ${bytes} B snapshot, ${opt.samples} commits`);
          const lg = await startLoadgen(srv.port, n, { tagKey: 'v' });
          await sleep(n >= 1000 ? 1500 : 300);
          const cpu0 = srv.cpu();
          const lgCpu0 = cpuSeconds(lg.proc.pid);
          const timeouts = [];
          const waitMs = Math.min(60000, 5000 + n * (bytes / 1000) * 0.5);
          for (let k = 0; k < opt.samples; k++) {
            const s = await insertSale();
            lg.send(`ref ${s.id} ${s.t}`);
            lg.send(`wait ${s.id} ${Math.round(waitMs)}`);
            const w = await lg.next((o) => o.ev === 'wait' && o.tag === s.id, waitMs + 10000);
            if (!w.ok) timeouts.push(w);
            await sleep(n >= 1000 ? 200 : 50);
          }
          const cpu1 = srv.cpu();
          const rep = await lg.report();
          const withRef = rep.versions.filter((v) => v.ref_us);
          const st = await lg.stats();
          const lgCpu1 = cpuSeconds(lg.proc.pid);
          if (opt.perf && kind === 'pgpushd' && n === Math.max(...opt.clients) && bytes === opt.sizes[Math.min(1, opt.sizes.length - 1)]) {
            await profile(srv, lg, n, bytes, waitMs);
          }
          results.latency.push({
            server: kind, clients: n, bytes, joined: lg.connected.joined,
            wireBytes: withRef.length ? withRef[0].wire_bytes : null,
            payloadBytes: withRef.length ? withRef[0].payload_bytes : null,
            summary: rep.summary, versions: withRef.length, timeouts: timeouts.length,
            closedClients: st.closed, cpuSec: cpu1 - cpu0, loadgenCpuSec: lgCpu1 - lgCpu0, handshake: lg.connected,
            perVersion: withRef.map((v) => ({ n: v.n, p50: v.lat_p50_ms, p99: v.lat_p99_ms, max: v.lat_max_ms, first: v.lat_min_ms })),
          });
          const s = rep.summary;
          log(`  p50 ${s.lat_p50_ms} p99 ${s.lat_p99_ms} max ${s.lat_max_ms} ms; first ${s.first_p50_ms}, spread ${s.spread_p50_ms} ms${timeouts.length ? `; ${timeouts.length} waits timed out` : ''}`);
          await lg.quit();
          await sleep(n >= 1000 ? 1000 : 100);
        }
      } finally {
        await srv.stop();
      }
    }
  }
}

/** Direct TLS against the clear port: latency, CPU and memory, per server. */
async function scenarioTls() {
  const ca = makeCA(path.join(workDir, 'ca'));
  const cert = ca.issue('server', { serial: '1001' });
  const bytes = opt.sizes[Math.min(1, opt.sizes.length - 1)];
  const query = paddedQuery(bytes);
  const n = opt.tlsClients;
  for (const kind of opt.servers) {
    for (const mode of ['clear', 'tls']) {
      const tls = mode === 'tls' ? cert : null;
      log(`tls: ${kind} ${mode}, ${n} clients, ${bytes} B snapshot, ${opt.samples} commits`);
      const srv = await startServer(kind, { query, tls });
      try {
        await sleep(1000);
        const before = srv.rss();
        const lg = await startLoadgen(srv.port, n, { tagKey: 'v', tls: !!tls });
        await sleep(n >= 1000 ? 3000 : 1500);
        const after = srv.rss();
        const cpu0 = srv.cpu();
        const timeouts = [];
        const waitMs = Math.min(60000, 5000 + n * (bytes / 1000) * 0.5);
        for (let k = 0; k < opt.samples; k++) {
          const s = await insertSale();
          lg.send(`ref ${s.id} ${s.t}`);
          lg.send(`wait ${s.id} ${Math.round(waitMs)}`);
          const w = await lg.next((o) => o.ev === 'wait' && o.tag === s.id, waitMs + 10000);
          if (!w.ok) timeouts.push(w);
          await sleep(n >= 1000 ? 200 : 50);
        }
        const cpu1 = srv.cpu();
        const rep = await lg.report();
        const withRef = rep.versions.filter((v) => v.ref_us);
        const st = await lg.stats();
        results.tls.push({
          server: kind, mode, clients: n, bytes, joined: lg.connected.joined, summary: rep.summary,
          versions: withRef.length, timeouts: timeouts.length, closedClients: st.closed,
          cpuSec: cpu1 - cpu0, rssBeforeKb: before.rssKb, rssAfterKb: after.rssKb,
          bytesPerClient: Math.round((after.rssKb - before.rssKb) * 1024 / Math.max(1, lg.connected.joined)),
          handshake: lg.connected,
        });
        const r = results.tls.at(-1);
        log(`  last client p50 ${rep.summary.last_p50_ms} ms, p99 ${rep.summary.lat_p99_ms} ms; ${r.bytesPerClient} B/client; ${fmt(r.cpuSec * 1000 / Math.max(1, r.versions))} ms CPU/broadcast; ${lg.connected.rate} handshakes/s`);
        await lg.quit();
      } finally {
        await srv.stop();
      }
      await sleep(1000);
    }
  }
}

async function scenarioMemory() {
  for (const kind of opt.servers) {
    for (const n of opt.memClients) {
      log(`memory: ${kind} ${n} idle clients`);
      const srv = await startServer(kind, {});
      try {
        await sleep(1000);
        const before = srv.rss();
        const lg = await startLoadgen(srv.port, n, { tagKey: 'id' });
        await sleep(n >= 5000 ? 5000 : 3000);
        const after = srv.rss();
        const h = await srv.health();
        const st = await lg.stats();
        const lgRss = procStatus(lg.proc.pid);
        const rep0 = await lg.report();
        results.memory.push({
          server: kind, clients: n, joined: lg.connected.joined, rssBeforeKb: before.rssKb, rssAfterKb: after.rssKb,
          bytesPerClient: Math.round((after.rssKb - before.rssKb) * 1024 / lg.connected.joined),
          handshake: lg.connected, serverClients: h && h.clients, closed: st.closed, loadgenRssKb: lgRss.rssKb,
          heapUsed: h && h.heapUsed, snapshotBytes: rep0.versions.length ? rep0.versions[0].wire_bytes : null,
        });
        const m = results.memory.at(-1);
        log(`  RSS ${before.rssKb} -> ${after.rssKb} kB: ${m.bytesPerClient} B/client; ${lg.connected.rate} handshakes/s (p99 ${lg.connected.hs_p99_ms} ms)`);
        await lg.quit();
      } finally {
        await srv.stop();
      }
      await sleep(1000);
    }
  }
}

async function scenarioBytes() {
  const queries = [['dashboard', null, 'id'], ...opt.sizes.map((b) => [`${b} B padded`, paddedQuery(b), 'v'])];
  for (const [label, query, tagKey] of queries) {
    for (const kind of opt.servers) {
      const srv = await startServer(kind, { query, extra: kind === 'node' ? ['--deflate'] : [] });
      try {
        const out = { server: kind, doc: label };
        for (const deflate of [false, true]) {
          const lg = await startLoadgen(srv.port, 2, { tagKey, deflate });
          await sleep(100);
          const s = await insertSale();
          // The dashboard's tag is recentSales[0].id: the new sale.
          lg.send(`wait ${s.id} 10000`);
          const w = await lg.next((o) => o.ev === 'wait', 20000);
          const rep = await lg.report();
          const v = rep.versions.filter((x) => x.tag === s.id).at(-1);
          if (deflate) {
            // The first message on a connection is compressed from an empty
            // window; later ones may reuse the previous one (context
            // takeover), unless the server said server_no_context_takeover.
            const first = rep.versions[0];
            out.deflateNegotiated = !!(v && v.compressed);
            out.deflateFirstWire = first && first.compressed ? first.wire_bytes : null;
            out.deflateNextWire = v && v.compressed && v !== first ? v.wire_bytes : null;
          } else {
            out.payload = v ? v.payload_bytes : null;
            out.rawWire = v ? v.wire_bytes : null;
          }
          if (!w.ok) out.timeout = true;
          await lg.quit();
        }
        results.bytes.push(out);
        log(`bytes: ${kind} ${label}: raw ${out.rawWire} B, deflate ${out.deflateNegotiated ? `${out.deflateFirstWire} B first, ${out.deflateNextWire} B next` : 'not negotiated'}`);
      } finally {
        await srv.stop();
      }
    }
  }
}

async function scenarioStorm() {
  const [{ lo, hi }] = (await db.query('SELECT min(id) AS lo, max(id) AS hi FROM products')).rows;
  const script = path.join(workDir, 'storm.sql');
  fs.writeFileSync(script, `\\set pid random(${lo}, ${hi})\nINSERT INTO sales (product_id, quantity, unit_price, customer_name, customer_email) VALUES (:pid, 1, 9.99, 'storm', 'storm@example.com');\n`);
  for (const kind of opt.servers) {
    await cleanupRows();
    log(`storm: ${kind}, ${opt.stormClients} clients, pgbench -c ${opt.stormWriters} for ${opt.stormSeconds} s`);
    const srv = await startServer(kind, { logLevel: 'info' }); // pgpushd logs query_ms per recompute
    try {
      const lg = await startLoadgen(srv.port, opt.stormClients, { tagKey: 'id' });
      // An independent listener counts what PostgreSQL delivers on the channel.
      const observer = await pg.client();
      let observed = 0;
      observer.on('notification', () => { observed++; });
      await observer.query('LISTEN pgpush');
      await sleep(1500);
      const h0 = await srv.health();
      const st0 = await lg.stats();
      const cpu0 = srv.cpu();
      const t0 = nowUs();
      const prefix = path.join(workDir, `storm-${kind}`);
      const bench = await pgbench(['-n', '-c', String(opt.stormWriters), '-j', '2', '-T', String(opt.stormSeconds),
        '-f', script, '-l', `--log-prefix=${prefix}`], { timeoutMs: (opt.stormSeconds + 60) * 1000 });
      const t1 = nowUs();
      const cpu1 = srv.cpu();
      // The last commit: the latest completion time in pgbench's per-transaction logs.
      let lastCommitUs = 0;
      for (const f of fs.readdirSync(workDir).filter((x) => x.startsWith(`storm-${kind}`))) {
        for (const line of fs.readFileSync(path.join(workDir, f), 'utf8').split('\n')) {
          const p = line.split(' ');
          if (p.length >= 6) lastCommitUs = Math.max(lastCommitUs, Number(p[4]) * 1e6 + Number(p[5]));
        }
        fs.rmSync(path.join(workDir, f));
      }
      const finalTag = Number((await db.query('SELECT id FROM sales ORDER BY sold_at DESC, id DESC LIMIT 1')).rows[0].id);
      lg.send(`wait ${finalTag} 20000`);
      const w = await lg.next((o) => o.ev === 'wait' && o.tag === finalTag, 30000);
      await sleep(500);
      const cpu2 = srv.cpu();
      const h1 = await srv.health();
      const st1 = await lg.stats();
      await observer.query('UNLISTEN *');
      const rep = await lg.report();
      const stormVersions = rep.versions.filter((v) => v.first_us >= t0);
      const r = {
        server: kind, clients: opt.stormClients, joined: lg.connected.joined, writers: opt.stormWriters, seconds: opt.stormSeconds,
        tps: bench.tps, commits: bench.tx, notificationsObserved: observed,
        notificationsServer: h1 && h0 ? h1.notifications - h0.notifications : null,
        recomputes: h1 && h0 ? h1.recomputes - h0.recomputes : null,
        cpuSec: cpu1 - cpu0, cpuPctOfCore: Math.round((cpu1 - cpu0) / ((t1 - t0) / 1e6) * 1000) / 10,
        cpuSecIncludingTail: cpu2 - cpu0,
        versionsDelivered: stormVersions.length,
        updatesPerClient: Math.round((st1.updates - st0.updates) / Math.max(1, lg.connected.joined) * 10) / 10,
        finalOk: w.ok, finalHave: w.have, finalOf: w.of,
        finalAfterLastCommitMs: w.ok && lastCommitUs ? Math.round((w.t_us - lastCommitUs) / 100) / 10 : null,
        closedClients: st1.closed,
        queryMsMean: h1 && h1.queryMsMean, queryMsMax: h1 && h1.queryMsMax, queryMsLast: h1 && h1.queryMsLast,
      };
      if (isPgpushd(kind)) {
        const qms = [...srv.logText().matchAll(/recompute done .*query_ms=([\d.]+)/g)].map((m) => Number(m[1]));
        if (qms.length) { r.queryMsMedian = median(qms); r.queryMsMax = Math.max(...qms); r.queryMsLast = qms.at(-1); }
      }
      results.storm.push(r);
      log(`  ${r.commits} commits (${r.tps} tps), ${r.notificationsObserved} notifications observed, server got ${r.notificationsServer}, ` +
        `${r.recomputes} recomputes, CPU ${r.cpuSec.toFixed(2)} s (${r.cpuPctOfCore} % of a core), final state to all ${r.finalOk ? `${r.finalAfterLastCommitMs} ms after the last commit` : `NOT reached (${w.have}/${w.of})`}`);
      await observer.end();
      await lg.quit();
    } finally {
      await srv.stop();
    }
  }
  // The same storm with no client connected: what ingesting notifications
  // and recomputing cost the daemon, without any fan-out.
  if (opt.stormIdleSeconds > 0) {
    for (const kind of opt.servers) {
      await cleanupRows();
      const srv = await startServer(kind, {});
      try {
        await sleep(1000);
        const h0 = await srv.health();
        const cpu0 = srv.cpu();
        const t0 = Date.now();
        const bench = await pgbench(['-n', '-c', String(opt.stormWriters), '-j', '2', '-T', String(opt.stormIdleSeconds), '-f', script],
          { timeoutMs: (opt.stormIdleSeconds + 60) * 1000 });
        const wall = (Date.now() - t0) / 1000;
        const cpu1 = srv.cpu();
        const h1 = await srv.health();
        const r = results.storm.find((x) => x.server === kind) || { server: kind };
        if (!results.storm.includes(r)) results.storm.push(r);
        r.idle = { seconds: opt.stormIdleSeconds, commits: bench.tx, tps: bench.tps, recomputes: h1.recomputes - h0.recomputes,
          notifications: h1.notifications - h0.notifications, cpuSec: cpu1 - cpu0, cpuPctOfCore: Math.round((cpu1 - cpu0) / wall * 1000) / 10 };
        log(`storm without clients: ${kind}: ${bench.tx} commits, ${r.idle.notifications} notifications, ${r.idle.recomputes} recomputes, CPU ${r.idle.cpuPctOfCore} % of a core`);
      } finally {
        await srv.stop();
      }
    }
  }
  await cleanupRows();
}

// Issue 9: the same 1,000 clients in 1, 10 and 100 audiences. Roles
// bench_aud_1..100 read what pgpush.dashboard() reads (the same document
// for all: the cost measured is the per-audience query and frame, not a
// difference in content); tokens are HS256 with a secret of this run.
async function scenarioAudiences() {
  if (!opt.servers.includes('pgpushd')) return;
  const maxA = Math.max(...opt.audiences);
  await db.query(`DO $$ BEGIN
    FOR i IN 1..${maxA} LOOP
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_aud_' || i) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', 'bench_aud_' || i);
      END IF;
      EXECUTE format('GRANT USAGE ON SCHEMA pgpush TO %I', 'bench_aud_' || i);
      EXECUTE format('GRANT EXECUTE ON FUNCTION pgpush.dashboard() TO %I', 'bench_aud_' || i);
      EXECUTE format('GRANT SELECT ON public.products, public.stock, public.sales TO %I', 'bench_aud_' || i);
      EXECUTE format('GRANT %I TO %I', 'bench_aud_' || i, '${pg.daemonRole}');
    END LOOP; END $$`);
  const secret = crypto.randomBytes(32).toString('hex');
  const secretFile = path.join(workDir, 'jwt.secret');
  fs.writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const b64u = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const token = (role) => {
    const head = `${b64u({ alg: 'HS256', typ: 'JWT' })}.${b64u({ role, sub: `${role}-${crypto.randomUUID()}`, exp: Math.floor(Date.now() / 1000) + 86400 })}`;
    return `${head}.${crypto.createHmac('sha256', secret).update(head).digest('base64url')}`;
  };
  const n = opt.audClients;
  for (const a of [0, ...opt.audiences]) {
    const what = a ? `${a} audience${a > 1 ? 's' : ''}` : 'no authentication';
    log(`audiences: ${n} clients, ${what}, ${opt.samples} sales`);
    let authFile;
    const extra = [];
    if (a) {
      // One token per client (each its own sub, which the default dashboard
      // does not declare, so it never splits an audience).
      authFile = path.join(workDir, `auth-${a}.jsonl`);
      fs.writeFileSync(authFile, Array.from({ length: n }, (_, i) => JSON.stringify({ token: token(`bench_aud_${(i % a) + 1}`) })).join('\n'));
      extra.push('--jwt-secret-file', secretFile, '--max-audiences', String(a + 16));
    }
    let srv;
    try {
      srv = await startServer('pgpushd', { extra });
    } catch (err) {
      log(`  ${err.message}`);
      results.audiences.push({ audiences: a, clients: n, samples: opt.samples, error: String(err.message || err) });
      continue;
    }
    let seed;
    try {
      await sleep(1000);
      const before = srv.rss();
      // First one client per audience, so that every audience (its feed,
      // document and frames) exists; then the n clients, whose RSS delta is
      // what a client costs on top of its audience.
      seed = await startLoadgen(srv.port, Math.max(1, a), { tagKey: 'id', authFile });
      await sleep(1500);
      const mid = srv.rss();
      const lg = await startLoadgen(srv.port, n, { tagKey: 'id', authFile });
      await sleep(n >= 1000 ? 3000 : 1000);
      const after = srv.rss();
      const q = (h) => (h ? (h.queries ?? h.counters?.queries ?? h.recomputes ?? null) : null);
      const h0 = await srv.health();
      const cpu0 = srv.cpu();
      const waitMs = 30000;
      let timeouts = 0;
      for (let k = 0; k < opt.samples; k++) {
        const sale = await insertSale();
        lg.send(`ref ${sale.id} ${sale.t}`);
        lg.send(`wait ${sale.id} ${waitMs}`);
        const w = await lg.next((o) => o.ev === 'wait' && o.tag === sale.id, waitMs + 10000);
        if (!w.ok) timeouts++;
        await sleep(300);
      }
      const cpu1 = srv.cpu();
      const h1 = await srv.health();
      const rep = await lg.report();
      const withRef = rep.versions.filter((v) => v.ref_us);
      // Several audiences: one version per audience per sale; a sale's last
      // client is the largest latency over all of them.
      const lastPerSale = new Map();
      for (const v of withRef) lastPerSale.set(v.tag ?? v.ref_us, Math.max(lastPerSale.get(v.tag ?? v.ref_us) ?? 0, v.lat_max_ms));
      const q0 = q(h0), q1 = q(h1);
      results.audiences.push({
        audiences: a, clients: n, joined: lg.connected.joined, samples: opt.samples, timeouts,
        queriesPerSale: q0 !== null && q1 !== null ? (q1 - q0) / opt.samples : null,
        lastClientMedianMs: median([...lastPerSale.values()]),
        latP50Ms: rep.summary.lat_p50_ms, latP99Ms: rep.summary.lat_p99_ms,
        bytesPerClient: Math.round((after.rssKb - mid.rssKb) * 1024 / Math.max(1, lg.connected.joined)),
        bytesPerAudience: Math.round((mid.rssKb - before.rssKb) * 1024 / Math.max(1, a)),
        cpuMsPerSale: (cpu1 - cpu0) * 1000 / opt.samples,
        serverAudiences: h1 && (h1.audiences ?? null),
      });
      const r = results.audiences.at(-1);
      log(`  ${r.joined}/${n} joined; queries/sale ${r.queriesPerSale}; last client ${fmt(r.lastClientMedianMs)} ms; ${r.bytesPerClient} B/client, ${r.bytesPerAudience} B/audience${timeouts ? `; ${timeouts} waits timed out` : ''}`);
      await lg.quit();
    } finally {
      if (seed) await seed.quit();
      await srv.stop();
    }
  }
}

// The version a sale produced: /healthz's snapshotVersion once it moved
// (no --tag-key: the loadgen tags each message with its version, a patch
// with its "to").
async function nextVersion(srv, after, timeoutMs = 10000) {
  const t0 = Date.now();
  for (;;) {
    const h = await srv.health();
    if (h && h.snapshotVersion > after) return h.snapshotVersion;
    if (Date.now() - t0 > timeoutMs) throw new Error(`no version after ${after} within ${timeoutMs} ms`);
    await sleep(5);
  }
}

async function scenarioDeltas() {
  if (!opt.servers.includes('pgpushd')) return;
  const authFile = path.join(workDir, 'auth-deltas.jsonl');
  fs.writeFileSync(authFile, '{"deltas":true}\n');
  const out = { bytes: {}, fanout: [] };
  results.deltas = out;
  // Bytes: two clients per mode, one sale each; the record of the sale's
  // version has its payload (inflated) and wire bytes.
  const srv = await startServer('pgpushd', { logLevel: 'info' });
  try {
    await sleep(500);
    const h0 = await srv.health();
    for (const mode of ['full', 'patch']) {
      for (const deflate of [false, true]) {
        const lg = await startLoadgen(srv.port, 2, { deflate, authFile: mode === 'patch' ? authFile : undefined });
        await sleep(300);
        const v0 = (await srv.health()).snapshotVersion;
        await insertSale('bench deltas');
        const ver = await nextVersion(srv, v0);
        lg.send(`wait ${ver} 10000`);
        const w = await lg.next((o) => o.ev === 'wait', 20000);
        const rep = await lg.report();
        const st = await lg.stats();
        const v = rep.versions.find((x) => x.version === ver);
        out.bytes[`${mode}${deflate ? 'Deflate' : 'Raw'}`] = v ? { payload: v.payload_bytes, wire: v.wire_bytes, compressed: v.compressed, patches: st.patches, ok: w.ok } : null;
        await lg.quit();
      }
    }
    const h1 = await srv.health();
    out.diffs = h1.diffs - h0.diffs;
    out.diffUsMean = out.diffs ? (h1.diffMicroseconds - h0.diffMicroseconds) / out.diffs : null;
    const lines = srv.logText().split('\n').filter((l) => /recompute done .*diff_us=/.test(l) && !/patch=0 /.test(l));
    out.diffUs = lines.map((l) => Number(/diff_us=(\d+)/.exec(l)[1]));
    out.queryMs = lines.map((l) => Number(/query_ms=([\d.]+)/.exec(l)[1]));
    out.docBytes = Number((/bytes=(\d+)/.exec(lines.at(-1) || '') || [])[1]) || null;
    const b = out.bytes;
    log(`deltas: bytes per client per sale: full ${b.fullRaw?.wire} raw / ${b.fullDeflate?.wire} deflate; patch ${b.patchRaw?.wire} raw / ${b.patchDeflate?.wire} deflate; diff ${fmt(out.diffUsMean, 0)} µs (query ${fmt(median(out.queryMs), 1)} ms)`);
  } finally {
    await srv.stop();
  }
  // Fan-out: n clients, full documents against patches, one server each.
  for (const n of opt.deltaClients) {
    for (const mode of ['full', 'patch']) {
      const s = await startServer('pgpushd');
      let lg;
      try {
        await sleep(500);
        lg = await startLoadgen(s.port, n, { authFile: mode === 'patch' ? authFile : undefined });
        await sleep(n >= 1000 ? 2000 : 500);
        const waitMs = 30000;
        let timeouts = 0;
        const cpu0 = s.cpu();
        for (let k = 0; k < opt.samples; k++) {
          const v0 = (await s.health()).snapshotVersion;
          const sale = await insertSale('bench fanout');
          const ver = await nextVersion(s, v0);
          lg.send(`ref ${ver} ${sale.t}`);
          lg.send(`wait ${ver} ${waitMs}`);
          const w = await lg.next((o) => o.ev === 'wait' && o.tag === ver, waitMs + 10000);
          if (!w.ok) timeouts++;
          await sleep(300);
        }
        const cpu1 = s.cpu();
        const rep = await lg.report();
        const st = await lg.stats();
        const withRef = rep.versions.filter((v) => v.ref_us);
        const r = {
          clients: n, mode, joined: lg.connected.joined, samples: opt.samples, timeouts,
          lastClientMedianMs: median(withRef.map((v) => v.lat_max_ms)),
          latP50Ms: rep.summary.lat_p50_ms, latP99Ms: rep.summary.lat_p99_ms,
          cpuMsPerSale: (cpu1 - cpu0) * 1000 / opt.samples,
          bytesPerSale: withRef.length ? Math.round(median(withRef.map((v) => v.wire_bytes))) : null,
          patches: st.patches, updates: st.updates,
        };
        out.fanout.push(r);
        log(`deltas: ${n} clients, ${mode}: ${r.joined} joined; last client ${fmt(r.lastClientMedianMs)} ms (median of ${opt.samples}); p50 ${fmt(r.latP50Ms)} ms; CPU ${fmt(r.cpuMsPerSale)} ms/sale; ${r.patches} patches received${timeouts ? `; ${timeouts} waits timed out` : ''}`);
      } finally {
        if (lg) await lg.quit();
        await s.stop();
      }
    }
  }
}

// Issue 14: --permessage-deflate shared against standalone and Node's ws
// with context takeover. The loadgen's clients all offer
// "permessage-deflate; client_max_window_bits" and inflate with one zlib
// stream per connection (context kept unless the server said
// server_no_context_takeover), so a frame they could not decode fails
// them ("failed" in stats) or leaves them without the sale's tag.
const PMD_MODES = (() => {
  let help = '';
  try { help = execFileSync(PGPUSHD, ['--help'], { encoding: 'utf8' }); } catch (e) { help = String(e.stdout || ''); }
  const shared = /shared/.test((/--permessage-deflate[\s\S]*?(?=\n  --|$)/.exec(help) || [''])[0]);
  // Before the option took modes, "on" was the standalone mode.
  return shared ? { shared: ['--permessage-deflate', 'shared'], standalone: ['--permessage-deflate', 'standalone'] }
    : { standalone: ['--permessage-deflate', 'on'] };
})();

/** n clients with deflate on a fresh server; sales one at a time. */
async function pmdFanout(kind, extra, n, sales, { rssIdle = false } = {}) {
  const srv = await startServer(kind, { extra });
  let lg;
  try {
    await sleep(1000);
    const before = srv.rss();
    lg = await startLoadgen(srv.port, n, { tagKey: 'id', deflate: true });
    await sleep(n >= 5000 ? 5000 : n >= 1000 ? 3000 : 1000);
    const idle = srv.rss();
    const st0 = await lg.stats();
    const cpu0 = srv.cpu();
    let timeouts = 0;
    const waitMs = 30000;
    for (let k = 0; k < sales; k++) {
      const sale = await insertSale('bench pmd');
      lg.send(`ref ${sale.id} ${sale.t}`);
      lg.send(`wait ${sale.id} ${waitMs}`);
      const w = await lg.next((o) => o.ev === 'wait' && o.tag === sale.id, waitMs + 10000);
      if (!w.ok) timeouts++;
      await sleep(n >= 1000 ? 300 : 100);
    }
    const cpu1 = srv.cpu();
    const st1 = await lg.stats();
    const rep = await lg.report();
    const withRef = rep.versions.filter((v) => v.ref_us);
    const updates = st1.updates - st0.updates;
    return {
      server: kind, extra, clients: n, joined: lg.connected.joined, sales, timeouts,
      failed: st1.failed, closed: st1.closed,
      rssBeforeKb: before.rssKb, rssIdleKb: idle.rssKb,
      bytesPerIdleClient: Math.round((idle.rssKb - before.rssKb) * 1024 / Math.max(1, lg.connected.joined)),
      firstWire: rep.versions.length ? rep.versions[0].wire_bytes : null,
      updates, wirePerUpdate: updates ? (st1.update_wire - st0.update_wire) / updates : null,
      payloadPerUpdate: updates ? (st1.update_payload - st0.update_payload) / updates : null,
      cpuMsPerSale: (cpu1 - cpu0) * 1000 / sales,
      lastClientMedianMs: median(withRef.map((v) => v.lat_max_ms)),
      latP50Ms: rep.summary.lat_p50_ms, latP99Ms: rep.summary.lat_p99_ms,
      handshakeRate: lg.connected.rate,
      loadgenRssKb: procStatus(lg.proc.pid).rssKb,
    };
  } finally {
    if (lg) await lg.quit();
    await srv.stop();
  }
}

async function scenarioPmd() {
  const out = { modes: PMD_MODES, bytes: [], memory: [], fanout: [] };
  results.pmd = out;
  const kinds = [
    ...Object.entries(PMD_MODES).map(([mode, extra]) => ({ label: `pgpushd ${mode}`, server: 'pgpushd', mode, extra })),
    { label: 'node (ws, context takeover)', server: 'node', mode: 'node', extra: ['--deflate'] },
  ].filter((k) => opt.servers.includes(k.server));
  if (!PMD_MODES.shared) log('pmd: this pgpushd has no --permessage-deflate shared; standalone ("on") only');
  // Bytes per client per demo sale.
  for (const k of kinds) {
    log(`pmd: bytes, ${k.label}, 2 clients, ${opt.pmdSales} sales`);
    const r = await pmdFanout(k.server, k.extra, 2, opt.pmdSales);
    out.bytes.push({ label: k.label, mode: k.mode, ...r });
    log(`  ${fmt(r.wirePerUpdate, 0)} B per client per sale (payload ${fmt(r.payloadPerUpdate, 0)} B); first message ${r.firstWire} B; ${r.failed} failed${r.timeouts ? `; ${r.timeouts} timeouts` : ''}`);
  }
  const pg2 = kinds.filter((k) => k.server === 'pgpushd');
  // Memory per idle client, then CPU and latency per broadcast; modes
  // alternate, --rounds rounds, a fresh server each time.
  const rounds = Math.max(1, Math.min(opt.rounds, 3));
  for (const n of opt.pmdMemClients) {
    for (let round = 0; round < rounds; round++) {
      for (const k of round % 2 ? [...pg2].reverse() : pg2) {
        log(`pmd: memory, ${k.label}, ${n} idle clients (round ${round + 1})`);
        const r = await pmdFanout(k.server, k.extra, n, 0);
        out.memory.push({ label: k.label, mode: k.mode, round, ...r });
        log(`  RSS ${r.rssBeforeKb} -> ${r.rssIdleKb} kB: ${r.bytesPerIdleClient} B/client (${r.joined} joined, ${r.failed} failed; ${r.handshakeRate} handshakes/s)`);
        await sleep(1000);
      }
    }
    // What context takeover costs a server with a deflate stream per
    // client (ws): once, for scale.
    const node = kinds.find((k) => k.server === 'node');
    if (node) {
      log(`pmd: memory, ${node.label}, ${n} idle clients`);
      const r = await pmdFanout(node.server, node.extra, n, 0);
      out.memory.push({ label: node.label, mode: node.mode, round: 0, ...r });
      log(`  RSS ${r.rssBeforeKb} -> ${r.rssIdleKb} kB: ${r.bytesPerIdleClient} B/client (${r.joined} joined, ${r.failed} failed; ${r.handshakeRate} handshakes/s)`);
    }
  }
  for (const n of opt.pmdClients) {
    for (let round = 0; round < rounds; round++) {
      for (const k of round % 2 ? [...pg2].reverse() : pg2) {
        log(`pmd: fan-out, ${k.label}, ${n} clients, ${opt.samples} sales (round ${round + 1})`);
        const r = await pmdFanout(k.server, k.extra, n, opt.samples);
        out.fanout.push({ label: k.label, mode: k.mode, round, ...r });
        log(`  CPU ${fmt(r.cpuMsPerSale)} ms/sale; last client ${fmt(r.lastClientMedianMs)} ms (median of ${opt.samples}); p50 ${fmt(r.latP50Ms)} ms; ${fmt(r.wirePerUpdate, 0)} B per client per sale; ${r.joined} joined, ${r.failed} failed${r.timeouts ? `; ${r.timeouts} waits timed out` : ''}`);
        await sleep(1000);
      }
    }
  }
}

async function scenarioInsert() {
  const [{ lo, hi }] = (await db.query('SELECT min(id) AS lo, max(id) AS hi FROM products')).rows;
  const script = path.join(workDir, 'insert.sql');
  fs.writeFileSync(script, `\\set pid random(${lo}, ${hi})\nINSERT INTO sales (product_id, quantity, unit_price, customer_name, customer_email) VALUES (:pid, 1, 9.99, 'bench', 'bench@example.com');\n`);
  const observer = await pg.client();
  await observer.query('LISTEN pgpush');
  const r = {};
  for (const clients of [1, 8]) {
    for (const trig of [true, false]) {
      await cleanupRows();
      if (!trig) await db.query(`SELECT pgpush.detach('public.sales')`);
      try {
        const b = await pgbench(['-n', '-c', String(clients), '-j', String(Math.min(2, clients)), '-T', String(opt.insertSeconds), '-f', script]);
        r[`c${clients}_${trig ? 'trigger' : 'none'}`] = b.tps;
        log(`insert: -c ${clients} ${trig ? 'with the doorbell' : 'without a trigger'}: ${b.tps} tps`);
      } finally {
        if (!trig) await db.query(`SELECT pgpush.attach('public.sales')`);
      }
    }
  }
  await observer.end();
  await cleanupRows();
  results.insert = r;
}

/** pid of the walsender serving a logical slot (pg_stat_replication), or null. */
async function walsenderPid() {
  const r = await db.query(`SELECT pid FROM pg_stat_replication WHERE application_name = 'pgpushd-changes'`);
  return r.rows.length ? r.rows[0].pid : null;
}

async function scenarioChangeSource() {
  const [{ lo, hi }] = (await db.query('SELECT min(id) AS lo, max(id) AS hi FROM products')).rows;
  const script = path.join(workDir, 'changesrc.sql');
  fs.writeFileSync(script, `\\set pid random(${lo}, ${hi})\nINSERT INTO sales (product_id, quantity, unit_price, customer_name, customer_email) VALUES (:pid, 1, 9.99, 'bench', 'bench@example.com');\n`);
  await db.query(`ALTER ROLE ${pg.daemonRole} REPLICATION`);
  const query = paddedQuery(opt.sizes[0]);
  const r = { settings: results.machine.pgSettings, seconds: opt.insertSeconds, rounds: opt.rounds, runs: [], tps: {}, walsender: {}, latency: {} };
  const start = async (mode) => {
    // none: no trigger and no slot (the publication alone costs writers nothing).
    await db.query(`SELECT pgpush.set_change_source($1)`, [mode === 'notify' ? 'notify' : 'logical']);
    return mode === 'none' ? null : startServer('pgpushd', { query, extra: ['--change-source', mode, ...opt.daemonArgs] });
  };
  // Cells interleaved (every mode at a writer count, then again, --rounds
  // times) and reported as medians: on a shared machine the load drifts
  // between cells more than the modes differ.
  for (let round = 1; round <= opt.rounds; round++) {
    for (const clients of opt.writers) {
      for (const mode of opt.modes) {
        const srv = await start(mode);
        try {
          await cleanupRows();
          const ws = mode === 'logical' ? await walsenderPid() : null;
          const wsCpu0 = ws ? cpuSeconds(ws) : null;
          const dCpu0 = srv ? srv.cpu() : null;
          const h0 = srv ? await srv.health() : null;
          const t0 = Date.now();
          const b = await pgbench(['-n', '-c', String(clients), '-j', String(Math.min(2, clients)), '-T', String(opt.insertSeconds), '-f', script]);
          const wall = (Date.now() - t0) / 1000;
          const run = { round, mode, clients, tps: b.tps };
          if (srv) {
            const h1 = await srv.health();
            run.recomputes = h1.recomputes - h0.recomputes;
            run.daemonCpuPct = Math.round((srv.cpu() - dCpu0) / wall * 1000) / 10;
          }
          if (ws) run.walsenderCpuPct = Math.round((cpuSeconds(ws) - wsCpu0) / wall * 1000) / 10;
          r.runs.push(run);
          log(`changesrc: round ${round} ${mode} -c ${clients}: ${b.tps.toFixed(0)} tps` +
            (srv ? `; pgpushd ${run.daemonCpuPct} % of a core, ${run.recomputes} recomputes` : '') +
            (ws ? `; walsender ${run.walsenderCpuPct} % of a core` : ''));
        } finally {
          if (srv) await srv.stop();
        }
      }
    }
  }
  for (const clients of opt.writers) {
    for (const mode of opt.modes) {
      const cell = r.runs.filter((x) => x.mode === mode && x.clients === clients);
      if (cell.length) r.tps[`${mode}_c${clients}`] = median(cell.map((x) => x.tps));
      if (mode === 'logical' && cell.length) r.walsender[`c${clients}`] = median(cell.map((x) => x.walsenderCpuPct));
    }
  }
  for (const mode of opt.modes.filter((m) => m !== 'none')) {
    if (r.latency[mode]) continue;
    const srv = await start(mode);
    try {
      const lg = await startLoadgen(srv.port, 1, { tagKey: 'v' });
      await sleep(300);
      for (let k = 0; k < opt.samples; k++) {
        const s = await insertSale();
        lg.send(`ref ${s.id} ${s.t}`);
        lg.send(`wait ${s.id} 5000`);
        await lg.next((o) => o.ev === 'wait' && o.tag === s.id, 15000);
        await sleep(100); // past --min-refresh-interval: every commit is measured alone
      }
      const rep = await lg.report();
      r.latency[mode] = { first_p50_ms: rep.summary.first_p50_ms, p50_ms: rep.summary.lat_p50_ms, p99_ms: rep.summary.lat_p99_ms, samples: opt.samples };
      log(`changesrc: ${mode}: commit -> first client p50 ${rep.summary.first_p50_ms} ms (p99 ${rep.summary.lat_p99_ms} ms)`);
      await lg.quit();
    } finally {
      await srv.stop();
    }
  }
  await db.query(`SELECT pgpush.set_change_source('notify')`);
  await cleanupRows();
  results.changesrc = r;
}

// ------------------------------------------------------------- table ------

function fmt(x, d = 1) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  if (typeof x !== 'number') return String(x);
  return x >= 100 ? x.toFixed(0) : x.toFixed(d);
}
function ratio(a, b) { return a && b ? `${(a / b).toFixed(1)}×` : '–'; }
const kb = (b) => (b >= 1000 ? `${Math.round(b / 100) / 10} KB` : `${b} B`);

// Before/after: the baseline build against the binary under test, cell by
// cell, with after ÷ before (above 1 is slower or bigger).
function beforeAfter() {
  const L = ['0. Before (baseline) and after (pgpushd), same run; after ÷ before', ''];
  const rel = (a, b) => (a && b ? `${(a / b).toFixed(2)}` : '–');
  const lat = results.latency.filter((r) => r.server === 'baseline');
  if (lat.length) {
    L.push('| clients | snapshot | p50 ms before / after | p99 ms before / after | last client ms (median) before / after | CPU per broadcast ms before / after | p99 after ÷ before |');
    L.push('|---:|---:|---|---|---|---|---:|');
    for (const b of lat) {
      const a = results.latency.find((r) => r.server === 'pgpushd' && r.bytes === b.bytes && r.clients === b.clients);
      if (!a) continue;
      const cpb = (r) => (r.versions ? fmt(r.cpuSec * 1000 / r.versions) : '–');
      L.push(`| ${b.clients} | ${kb(b.wireBytes || b.bytes)} | ${fmt(b.summary.lat_p50_ms)} / ${fmt(a.summary.lat_p50_ms)} | ${fmt(b.summary.lat_p99_ms)} / ${fmt(a.summary.lat_p99_ms)} | ${fmt(b.summary.last_p50_ms)} / ${fmt(a.summary.last_p50_ms)} | ${cpb(b)} / ${cpb(a)} | ${rel(a.summary.lat_p99_ms, b.summary.lat_p99_ms)} |`);
    }
    L.push('');
  }
  const mem = results.memory.filter((r) => r.server === 'baseline');
  if (mem.length) {
    L.push('| clients | B/client before / after | handshakes/s before / after | B/client after ÷ before |');
    L.push('|---:|---|---|---:|');
    for (const b of mem) {
      const a = results.memory.find((r) => r.server === 'pgpushd' && r.clients === b.clients);
      if (a) L.push(`| ${b.clients} | ${b.bytesPerClient} / ${a.bytesPerClient} | ${fmt(b.handshake.rate, 0)} / ${fmt(a.handshake.rate, 0)} | ${rel(a.bytesPerClient, b.bytesPerClient)} |`);
    }
  }
  return L;
}

function table() {
  const L = [];
  const m = results.machine;
  L.push(`Machine: ${m.nproc} × ${m.cpu}, ${m.memGiB} GiB, ${m.kernel}; ${m.postgres}; Node ${m.node}`);
  if (results.pgpushd) L.push(`pgpushd: ${results.pgpushd.path} (commit ${results.pgpushd.commit}, sha256 ${String(results.pgpushd.sha256).slice(0, 12)})`);
  if (results.foreignCores) L.push(`CPU used by processes outside the benchmark, average cores during each scenario (0 = the machine was ours): ${Object.entries(results.foreignCores).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (results.loadavg) L.push(`Load average (1/5/15 min) when each scenario started: ${Object.entries(results.loadavg).map(([k, v]) => `${k} ${v.split(' ').slice(0, 3).join('/')}`).join(', ')}`);
  if (results.baseline) L.push(`baseline: ${results.baseline.path} (commit ${results.baseline.commit || 'not given: PGPUSHD_BASELINE_COMMIT'}, sha256 ${String(results.baseline.sha256).slice(0, 12)})`);
  L.push('');
  if (results.baseline) L.push(...beforeAfter(), '');
  if (results.query) {
    const q = results.query;
    L.push(`pgpush.dashboard() on the demo data (${q.sales} sales, ${q.docBytes} B document): median ${fmt(q.medianMs, 2)} ms of 20 (min ${fmt(q.minMs, 2)}, max ${fmt(q.maxMs, 2)}; first call ${fmt(q.firstMs, 2)} ms)`);
    L.push('');
  }
  if (results.latency.length) {
    L.push('1. Commit-to-client latency, ms over all clients and commits (p50 / p99 / max); node ÷ pgpushd. First/last client: when the first and the last client had the snapshot, after the commit; fan-out: last minus first');
    L.push('');
    L.push('| clients | snapshot | pgpushd p50 / p99 / max | node p50 / p99 / max | p99 ratio | pgpushd first / last client, fan-out (medians) | node first / last client, fan-out (medians) | server CPU per broadcast, ms: pgpushd / node |');
    L.push('|---:|---:|---|---|---:|---|---|---|');
    const keys = [...new Set(results.latency.map((r) => `${r.bytes}|${r.clients}`))];
    for (const k of keys) {
      const [bytes, n] = k.split('|').map(Number);
      const a = results.latency.find((r) => r.server === 'pgpushd' && r.bytes === bytes && r.clients === n);
      const b = results.latency.find((r) => r.server === 'node' && r.bytes === bytes && r.clients === n);
      const cpb = (r) => (r && r.versions ? fmt(r.cpuSec * 1000 / r.versions) : '–');
      const fl = (r) => (r ? `${fmt(r.summary.first_p50_ms)} / ${fmt(r.summary.last_p50_ms)}, ${fmt(r.summary.spread_p50_ms)}` : '–');
      const cell = (r) => (r ? `${fmt(r.summary.lat_p50_ms)} / ${fmt(r.summary.lat_p99_ms)} / ${fmt(r.summary.lat_max_ms)}${r.joined < r.clients ? ` (${r.joined} joined)` : ''}${r.timeouts ? ` (${r.timeouts} timeouts)` : ''}` : '–');
      L.push(`| ${n} | ${kb((a || b).wireBytes || bytes)} | ${cell(a)} | ${cell(b)} | ${ratio(b && b.summary.lat_p99_ms, a && a.summary.lat_p99_ms)} | ${fl(a)} | ${fl(b)} | ${cpb(a)} / ${cpb(b)} |`);
    }
    L.push('');
  }
  if (results.memory.length) {
    L.push('2. Memory per idle connection (VmRSS delta ÷ clients) and 3. Socket.IO handshakes per second');
    L.push('');
    L.push('| clients | pgpushd B/client | node B/client | ratio | pgpushd handshakes/s | node handshakes/s | ratio |');
    L.push('|---:|---:|---:|---:|---:|---:|---:|');
    for (const n of [...new Set(results.memory.map((r) => r.clients))]) {
      const a = results.memory.find((r) => r.server === 'pgpushd' && r.clients === n);
      const b = results.memory.find((r) => r.server === 'node' && r.clients === n);
      L.push(`| ${n} | ${a ? a.bytesPerClient : '–'} | ${b ? b.bytesPerClient : '–'} | ${ratio(b && b.bytesPerClient, a && a.bytesPerClient)} | ${a ? fmt(a.handshake.rate, 0) : '–'} | ${b ? fmt(b.handshake.rate, 0) : '–'} | ${ratio(a && a.handshake.rate, b && b.handshake.rate)} |`);
    }
    const nmax = Math.max(...results.latency.map((r) => r.clients));
    const small = Math.min(...results.latency.map((r) => r.bytes));
    const la = results.latency.find((r) => r.server === 'pgpushd' && r.clients === nmax && r.bytes === small);
    const lb = results.latency.find((r) => r.server === 'node' && r.clients === nmax && r.bytes === small);
    if (la || lb) {
      L.push(`| ${nmax} (${kb(small)} initial snapshot) | | | | ${la ? fmt(la.handshake.rate, 0) : '–'} | ${lb ? fmt(lb.handshake.rate, 0) : '–'} | ${ratio(la && la.handshake.rate, lb && lb.handshake.rate)} |`);
    }
    L.push('');
    L.push(`(handshakes: ${opt.concurrency} in flight at a time; every new client is sent the current snapshot right after it joins, ${results.memory.length ? `${kb(results.memory[0].snapshotBytes || 0)} for the demo dashboard` : ''})`);
    L.push('');
  }
  if (results.storm.length) {
    const a = results.storm.find((r) => r.server === 'pgpushd');
    const b = results.storm.find((r) => r.server === 'node');
    const s0 = a || b;
    L.push(`4. Write storm: pgbench -c ${s0.writers} inserting sales for ${s0.seconds} s, ${s0.clients} clients connected`);
    L.push('');
    L.push('| | pgpushd | node |');
    L.push('|---|---:|---:|');
    const row = (label, f) => L.push(`| ${label} | ${a ? f(a) : '–'} | ${b ? f(b) : '–'} |`);
    row('commits (pgbench tps)', (r) => `${r.commits} (${fmt(r.tps, 0)})`);
    row('notifications delivered (observer / server counter)', (r) => `${r.notificationsObserved} / ${r.notificationsServer ?? '–'}`);
    row('recomputes', (r) => r.recomputes);
    row('snapshots delivered (versions; per client)', (r) => `${r.versionsDelivered}; ${r.updatesPerClient}`);
    row('server CPU during the storm (s; % of one core)', (r) => `${fmt(r.cpuSec, 2)}; ${fmt(r.cpuPctOfCore)} %`);
    row('query time mean (node) or median (pgpushd) / max / last (ms)', (r) => `${fmt(r.queryMsMean ?? r.queryMsMedian, 1)} / ${fmt(r.queryMsMax, 1)} / ${fmt(r.queryMsLast, 1)}`);
    if ((a || b).idle) {
      row(`same storm, no client connected (${(a || b).idle.seconds} s): commits / notifications / recomputes`, (r) => (r.idle ? `${r.idle.commits} / ${r.idle.notifications} / ${r.idle.recomputes}` : '–'));
      row('same storm, no client connected: server CPU (% of one core)', (r) => (r.idle ? `${fmt(r.idle.cpuPctOfCore)} %` : '–'));
    }
    row('last commit → every client has the final state (ms)', (r) => (r.finalOk ? fmt(r.finalAfterLastCommitMs) : `not reached (${r.finalHave}/${r.finalOf})`));
    L.push('');
  }
  if (results.bytes.length) {
    L.push('5. Bytes on the wire per snapshot (WebSocket frame, header included)');
    L.push('');
    L.push('| document | payload | pgpushd raw | pgpushd deflate | node raw | node deflate, 1st message | node deflate, next message (context takeover) |');
    L.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const d of [...new Set(results.bytes.map((r) => r.doc))]) {
      const a = results.bytes.find((r) => r.server === 'pgpushd' && r.doc === d);
      const b = results.bytes.find((r) => r.server === 'node' && r.doc === d);
      const dfl = (r, w) => (!r ? '–' : !r.deflateNegotiated ? 'not negotiated' : w ? `${w} (${(r.rawWire / w).toFixed(1)}×)` : '–');
      L.push(`| ${d} | ${(a || b).payload} | ${a ? a.rawWire : '–'} | ${dfl(a, a && (a.deflateFirstWire || a.deflateNextWire))} | ${b ? b.rawWire : '–'} | ${dfl(b, b && b.deflateFirstWire)} | ${dfl(b, b && b.deflateNextWire)} |`);
    }
    L.push('');
  }
  if (results.audiences.length) {
    const base = results.audiences.find((r) => r.audiences === 0);
    L.push(`7. Audiences: ${results.audiences[0].clients} clients, ${results.audiences[0].samples} sales; the first row without authentication (one document for all)`);
    L.push('');
    L.push('| audiences | joined | dashboard queries per sale | commit → last client, ms (median) | p50 / p99, ms | server CPU per sale, ms | memory per client, B | memory per audience, B | vs no authentication |');
    L.push('|---:|---:|---:|---:|---|---:|---:|---:|---:|');
    for (const r of results.audiences) {
      if (r.error) { L.push(`| ${r.audiences} | – | – | – | – | – | – | – | failed: ${r.error.split('\n')[0].slice(0, 80)} |`); continue; }
      const mem = base && base.bytesPerClient > 0 ? `${r.bytesPerClient >= base.bytesPerClient ? '+' : ''}${fmt((r.bytesPerClient / base.bytesPerClient - 1) * 100)} % memory, ${ratio(r.lastClientMedianMs, base.lastClientMedianMs)} latency` : '–';
      L.push(`| ${r.audiences || 'none (no auth)'} | ${r.joined} | ${r.queriesPerSale ?? '–'} | ${fmt(r.lastClientMedianMs)} | ${fmt(r.latP50Ms)} / ${fmt(r.latP99Ms)} | ${fmt(r.cpuMsPerSale)} | ${r.bytesPerClient} | ${r.audiences ? r.bytesPerAudience : '–'} | ${r === base ? '' : mem} |`);
    }
    L.push('');
  }
  if (results.deltas) {
    const d = results.deltas;
    const b = d.bytes;
    const cell = (x) => (x ? `${x.wire}${x.compressed ? '' : x === b.fullDeflate || x === b.patchDeflate ? ' (not compressed)' : ''}` : '–');
    const pct = (p, f) => (p && f ? `${fmt(p.wire / f.wire * 100)} %` : '–');
    L.push(`8. Deltas: one demo sale (${d.docBytes} B document), bytes per client (WebSocket frame, header included)`);
    L.push('');
    L.push('| | full dashboardDataUpdate | dashboardDataPatch | patch / full |');
    L.push('|---|---:|---:|---:|');
    L.push(`| raw | ${cell(b.fullRaw)} | ${cell(b.patchRaw)} | ${pct(b.patchRaw, b.fullRaw)} |`);
    L.push(`| permessage-deflate | ${cell(b.fullDeflate)} | ${cell(b.patchDeflate)} | ${pct(b.patchDeflate, b.fullDeflate)} |`);
    L.push('');
    L.push(`Diff CPU time: ${fmt(d.diffUsMean, 0)} µs per patch (${d.diffs} patches; per recompute ${d.diffUs.join(', ')} µs) against the query's ${d.queryMs.map((x) => fmt(x, 1)).join(', ')} ms.`);
    L.push('');
    if (d.fanout.length) {
      L.push('| clients | sent | joined | commit → last client, ms (median) | p50 / p99, ms | server CPU per sale, ms | frame per client, B |');
      L.push('|---:|---|---:|---:|---|---:|---:|');
      for (const r of d.fanout) L.push(`| ${r.clients} | ${r.mode === 'patch' ? `patches (${r.patches} received)` : 'full documents'} | ${r.joined} | ${fmt(r.lastClientMedianMs)} | ${fmt(r.latP50Ms)} / ${fmt(r.latP99Ms)} | ${fmt(r.cpuMsPerSale)} | ${r.bytesPerSale ?? '–'} |`);
      L.push('');
    }
  }
  if (results.pmd) {
    const p = results.pmd;
    const avg = (a) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : null);
    const rel = (a, b) => (a && b ? `${a >= b ? '+' : ''}${fmt((a / b - 1) * 100)} %` : '–');
    L.push('9. permessage-deflate with context takeover (issue 14): bytes per client per demo sale (frames of every update received ÷ updates; header included)');
    L.push('');
    L.push('| server | per client per sale | first message | payload | failed |');
    L.push('|---|---:|---:|---:|---:|');
    for (const r of p.bytes) L.push(`| ${r.label} | ${fmt(r.wirePerUpdate, 0)} B | ${r.firstWire} B | ${fmt(r.payloadPerUpdate, 0)} B | ${r.failed} |`);
    L.push('');
    const modes = [...new Set([...p.memory, ...p.fanout].map((r) => r.mode))];
    const pick = (arr, m, n) => arr.filter((r) => r.mode === m && r.clients === n);
    if (p.memory.length) {
      L.push('| idle clients | ' + modes.map((m) => `${m} B/client (rounds)`).join(' | ') + ' | shared vs standalone (mean) |');
      L.push('|---:|' + modes.map(() => '---:|').join('') + '---:|');
      for (const n of [...new Set(p.memory.map((r) => r.clients))]) {
        const cells = modes.map((m) => pick(p.memory, m, n).map((r) => r.bytesPerIdleClient).join(', '));
        const a = avg(pick(p.memory, 'shared', n).map((r) => r.bytesPerIdleClient));
        const b = avg(pick(p.memory, 'standalone', n).map((r) => r.bytesPerIdleClient));
        L.push(`| ${n} | ${cells.join(' | ')} | ${rel(a, b)} |`);
      }
      L.push('');
    }
    if (p.fanout.length) {
      L.push('| clients | mode | round | joined | server CPU per broadcast, ms | commit → last client, ms (median) | p50 / p99, ms | B per client per sale | failed / timeouts |');
      L.push('|---:|---|---:|---:|---:|---:|---|---:|---|');
      for (const r of p.fanout) L.push(`| ${r.clients} | ${r.mode} | ${r.round + 1} | ${r.joined} | ${fmt(r.cpuMsPerSale)} | ${fmt(r.lastClientMedianMs)} | ${fmt(r.latP50Ms)} / ${fmt(r.latP99Ms)} | ${fmt(r.wirePerUpdate, 0)} | ${r.failed} / ${r.timeouts} |`);
      L.push('');
      for (const n of [...new Set(p.fanout.map((r) => r.clients))]) {
        const c = (m) => avg(pick(p.fanout, m, n).map((r) => r.cpuMsPerSale));
        const l = (m) => avg(pick(p.fanout, m, n).map((r) => r.lastClientMedianMs));
        L.push(`${n} clients, mean over rounds: CPU per broadcast shared ${fmt(c('shared'))} ms vs standalone ${fmt(c('standalone'))} ms (${rel(c('shared'), c('standalone'))}); commit → last client shared ${fmt(l('shared'))} ms vs standalone ${fmt(l('standalone'))} ms`);
      }
      L.push('');
    }
  }
  if (results.insert) {
    const r = results.insert;
    L.push('6. INSERT throughput (pgbench, one row per transaction, tps)');
    L.push('');
    L.push('| writers | no trigger | with the doorbell | cost |');
    L.push('|---:|---:|---:|---:|');
    for (const c of [1, 8]) {
      if (r[`c${c}_none`]) L.push(`| ${c} | ${fmt(r[`c${c}_none`], 0)} | ${fmt(r[`c${c}_trigger`], 0)} | ${ratio(r[`c${c}_none`], r[`c${c}_trigger`])} slower |`);
    }
    L.push('');
  }
  if (results.tls.length) {
    const t0 = results.tls[0];
    L.push(`8. Direct TLS: ${t0.clients} clients, ${kb(t0.bytes)} snapshot, ${opt.samples} commits: commit → first / last client (medians over commits), p99 over all clients, server CPU per broadcast, RSS per idle client, handshakes/s (loadgen --tls)`);
    L.push('');
    L.push('| server | transport | first / last client, ms | p99, ms | CPU per broadcast, ms | B/client | handshakes/s |');
    L.push('|---|---|---|---:|---:|---:|---:|');
    for (const r of results.tls) {
      const sm = r.summary;
      L.push(`| ${r.server} | ${r.mode === 'tls' ? 'wss:// (TLS)' : 'ws:// (clear)'} | ${fmt(sm.first_p50_ms)} / ${fmt(sm.last_p50_ms)}${r.joined < r.clients ? ` (${r.joined} joined)` : ''}${r.timeouts ? ` (${r.timeouts} timeouts)` : ''} | ${fmt(sm.lat_p99_ms)} | ${fmt(r.cpuSec * 1000 / Math.max(1, r.versions))} | ${r.bytesPerClient} | ${fmt(r.handshake.rate, 0)} |`);
    }
    L.push('');
  }
  if (results.changesrc) {
    const r = results.changesrc;
    const st = r.settings || {};
    L.push(`7. INSERT throughput by change source (pgbench, one row per transaction, tps, median of ${r.rounds} interleaved rounds; fsync=${st.fsync}, synchronous_commit=${st.synchronous_commit}, wal_level=logical, ${r.seconds} s per cell)`);
    L.push('');
    L.push('| writers | no doorbell | NOTIFY doorbell | logical | logical ÷ none | notify ÷ none | walsender CPU |');
    L.push('|---:|---:|---:|---:|---:|---:|---:|');
    for (const c of opt.writers) {
      const n = r.tps[`none_c${c}`], d = r.tps[`notify_c${c}`], l = r.tps[`logical_c${c}`];
      const q = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : '–');
      L.push(`| ${c} | ${fmt(n, 0)} | ${fmt(d, 0)} | ${fmt(l, 0)} | ${q(l, n)} | ${q(d, n)} | ${r.walsender[`c${c}`] !== undefined ? `${r.walsender[`c${c}`]} %` : '–'} |`);
    }
    L.push('');
    if (r.latency.notify || r.latency.logical) {
      L.push('| source | commit → first client p50 | p99 |');
      L.push('|---|---:|---:|');
      for (const m of ['notify', 'logical']) {
        if (r.latency[m]) L.push(`| ${m} | ${r.latency[m].first_p50_ms} ms | ${r.latency[m].p99_ms} ms |`);
      }
      L.push('');
    }
  }
  return L.join('\n');
}

// ------------------------------------------------------------- main -------

async function main() {
  log(`work directory ${workDir}`);
  const settings = opt.durable ? { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on' } : {};
  if (opt.scenarios.includes('changesrc')) Object.assign(settings, { wal_level: 'logical', max_wal_senders: 10, max_replication_slots: 10 });
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql', 'sql/demo-data.sql'], settings: { max_connections: 100, ...settings } });
  db = await pg.client();
  productIds = (await db.query('SELECT id FROM products ORDER BY id')).rows.map((r) => r.id);
  await preparePadding([...new Set([...opt.sizes])]);
  await db.query('VACUUM ANALYZE');
  results.machine = machineInfo();
  results.pgpushd = binaryInfo(PGPUSHD);
  if (opt.baseline) results.baseline = { ...binaryInfo(opt.baseline), commit: process.env.PGPUSHD_BASELINE_COMMIT || null };
  results.machine.pgSettings = { fsync: opt.durable ? 'on' : 'off', synchronous_commit: opt.durable ? 'on' : 'off' };
  const order = ['query', 'latency', 'memory', 'bytes', 'storm', 'insert', 'tls', 'audiences', 'changesrc', 'deltas', 'pmd'];
  const fns = { query: scenarioQuery, latency: scenarioLatency, memory: scenarioMemory, bytes: scenarioBytes, storm: scenarioStorm, insert: scenarioInsert, tls: scenarioTls, audiences: scenarioAudiences, changesrc: scenarioChangeSource, deltas: scenarioDeltas, pmd: scenarioPmd };
  for (const s of order) {
    if (!opt.scenarios.includes(s)) continue;
    results.loadavg = results.loadavg || {};
    results.loadavg[s] = fs.readFileSync('/proc/loadavg', 'utf8').trim();
    results.foreignCores = results.foreignCores || {};
    const snap0 = procSnapshot();
    const w0 = Date.now();
    try {
      await fns[s]();
    } catch (err) {
      log(`scenario ${s} failed: ${err.stack || err}`);
      results[`${s}Error`] = String(err.message || err);
    }
    results.foreignCores[s] = foreignCpu(snap0, procSnapshot(), (Date.now() - w0) / 1000);
    if (results.foreignCores[s] > 0.1) log(`  note: other processes on this machine used ${results.foreignCores[s]} cores on average during ${s}`);
    fs.writeFileSync(outFile, JSON.stringify(results, null, 1));
  }
  results.finished = new Date().toISOString();
  fs.writeFileSync(outFile, JSON.stringify(results, null, 1));
  console.log(table());
  console.log(`\nraw results: ${outFile}`);
  await db.end();
  await pg.stop();
}

main().then(() => process.exit(0), (err) => { log(err.stack || String(err)); process.exit(1); });
