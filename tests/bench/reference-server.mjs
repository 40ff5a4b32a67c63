#!/usr/bin/env node
// The Node.js reference for the benchmark: pgpushd's feature built the way a
// Node developer would build it, with socket.io 4.x and pg.
//
//   node tests/bench/reference-server.mjs [--port 3000] [--host 127.0.0.1]
//        [--db CONNINFO] [--query SQL] [--channel pgpush] [--refresh-interval 30]
//        [--ping-interval 25000] [--ping-timeout 20000] [--deflate]
//        [--tls-cert FILE --tls-key FILE]
//
// With --tls-cert and --tls-key it serves https:// and wss:// through Node's
// https server (Node's TLS defaults), as pgpushd does with the same options.
//
// Environment: PORT, HOST, DATABASE_URL (or PG*), PGPUSH_QUERY, PGPUSH_CHANNEL,
// PGPUSH_REFRESH_INTERVAL. Prints "listening on HOST:PORT" once it accepts.
//
// Same contract as pgpushd (docs/protocol.md): LISTEN on the doorbell
// channel, run the dashboard query (one in flight, at most one pending: a
// burst of notifications becomes at most two queries), a fallback recompute
// after refresh-interval seconds without one, `dashboardDataUpdate` to every
// client on a new snapshot and to a new client on connect,
// `dashboardDataError` while the database is unreachable or the query fails,
// and `requestDashboardData` answered from memory (through the ack when the
// client passes one).
//
// Counters for the benchmark: GET /healthz (like pgpushd's), and SIGUSR2
// prints one JSON line on stdout ({"ev":"stats", ..., rss, heapUsed}).

import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(repoRoot, 'package.json'));
const { Server } = require('socket.io');
const pg = require('pg');

// ------------------------------------------------------------- options ----

function parseArgs(argv) {
  const o = {
    port: Number(process.env.PORT || 3000),
    host: process.env.HOST || '127.0.0.1',
    db: process.env.DATABASE_URL || undefined,
    query: process.env.PGPUSH_QUERY || 'SELECT pgpush.dashboard()',
    channel: process.env.PGPUSH_CHANNEL || 'pgpush',
    refreshInterval: Number(process.env.PGPUSH_REFRESH_INTERVAL || 30),
    pingInterval: 25000,
    pingTimeout: 20000,
    deflate: false,
    tlsCert: null,
    tlsKey: null,
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--port') o.port = Number(v());
    else if (a === '--host') o.host = v();
    else if (a === '--db') o.db = v();
    else if (a === '--query') o.query = v();
    else if (a === '--channel') o.channel = v();
    else if (a === '--refresh-interval') o.refreshInterval = Number(v());
    else if (a === '--ping-interval') o.pingInterval = Number(v());
    else if (a === '--ping-timeout') o.pingTimeout = Number(v());
    else if (a === '--deflate') o.deflate = true;
    else if (a === '--tls-cert') o.tlsCert = v();
    else if (a === '--tls-key') o.tlsKey = v();
    else { console.error(`unknown option ${a}`); process.exit(2); }
  }
  return o;
}

const opts = parseArgs(process.argv);

// A libpq-style "host=... port=..." conninfo becomes pg's config object.
function pgConfig(db) {
  if (!db) return {};
  if (/^postgres(ql)?:\/\//.test(db)) return { connectionString: db };
  const cfg = {};
  for (const m of db.matchAll(/(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/g)) {
    const k = m[1];
    const val = m[2].replace(/^'|'$/g, '').replace(/\\(.)/g, '$1');
    if (k === 'dbname') cfg.database = val;
    else if (k === 'port') cfg.port = Number(val);
    else if (k === 'host' || k === 'user' || k === 'password') cfg[k] = val;
  }
  return cfg;
}

// ------------------------------------------------------------ state -------

const stats = { notifications: 0, recomputes: 0, queryMsTotal: 0, queryMsMax: 0, queryMsLast: 0, failures: 0, maxInFlight: 0 };
let version = Date.now();
let snapshot = null;       // the last good document, with version/generatedAt/reason
let lastError = null;      // the dashboardDataError payload while failing
let inFlight = false;
let pending = null;        // Set of reasons waiting for the next run
let fallbackTimer = null;
let listener = null;       // the LISTEN connection
let retryMs = 1000;
let errorSince = null;

const pool = new pg.Pool({ ...pgConfig(opts.db), max: 1, application_name: 'pgpush-reference' });
pool.on('error', () => { /* a dropped idle client; the next query reconnects */ });

// /healthz: the same counters as pgpushd's, for the benchmark.
const handler = (req, res) => {
  if (req.url === '/healthz') {
    const ok = !!(listener && snapshot);
    res.writeHead(ok ? 200 : 503, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify({
      status: ok ? 'ok' : 'unavailable', listener: !!listener, snapshotVersion: snapshot ? snapshot.version : 0,
      clients: io.engine.clientsCount, recomputes: stats.recomputes, notifications: stats.notifications,
      queryMsMax: stats.queryMsMax, queryMsLast: stats.queryMsLast, queryMsMean: stats.recomputes ? stats.queryMsTotal / stats.recomputes : 0,
      error: lastError, heapUsed: process.memoryUsage().heapUsed,
    }));
    return;
  }
  res.writeHead(404);
  res.end();
};
const httpServer = opts.tlsCert
  ? https.createServer({ cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey),
    ALPNProtocols: ['http/1.1'] }, handler)
  : http.createServer(handler);

const io = new Server(httpServer, {
  cors: { origin: '*' },
  pingInterval: opts.pingInterval,
  pingTimeout: opts.pingTimeout,
  perMessageDeflate: opts.deflate ? { threshold: 0 } : false,
});

// ------------------------------------------------------------ recompute ---

function armFallback() {
  clearTimeout(fallbackTimer);
  fallbackTimer = setTimeout(() => requestRecompute('timer'), opts.refreshInterval * 1000);
}

function requestRecompute(reason) {
  if (inFlight) {
    if (!pending) pending = new Set();
    pending.add(reason);
    return;
  }
  runRecompute(new Set([reason]));
}

function reasonString(reasons) {
  const tables = [...reasons].filter((r) => r.startsWith('notify:')).map((r) => r.slice(7));
  if (tables.length) return `notify:${[...new Set(tables)].sort().join(',')}`;
  return [...reasons][0];
}

async function runRecompute(reasons) {
  inFlight = true;
  stats.maxInFlight = Math.max(stats.maxInFlight, 1);
  armFallback();
  const t0 = performance.now();
  try {
    const { rows } = await pool.query(opts.query);
    const ms = performance.now() - t0;
    stats.recomputes++;
    stats.queryMsTotal += ms;
    stats.queryMsMax = Math.max(stats.queryMsMax, ms);
    stats.queryMsLast = ms;
    let doc = rows[0] && Object.values(rows[0])[0];
    if (typeof doc === 'string') doc = JSON.parse(doc);
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw Object.assign(new Error('the query did not return one JSON object'), { pushCode: 'bad_result' });
    version = Math.max(version + 1, Date.now());
    snapshot = { version, generatedAt: new Date().toISOString(), reason: reasonString(reasons), ...doc };
    if (lastError) { lastError = null; errorSince = null; }
    retryMs = 1000;
    io.emit('dashboardDataUpdate', snapshot);
  } catch (err) {
    stats.failures++;
    const code = err.pushCode || (err.code && /^[0-9A-Z]{5}$/.test(err.code) ? 'query_failed' : 'db_unavailable');
    errorSince = errorSince || new Date();
    const next = new Date(Date.now() + retryMs);
    lastError = { message: err.message, code, since: errorSince.toISOString(), nextAttemptAt: next.toISOString(), retryInMs: retryMs };
    io.emit('dashboardDataError', lastError);
    setTimeout(() => requestRecompute('reconnect'), retryMs);
    retryMs = Math.min(retryMs * 2, 30000);
  } finally {
    inFlight = false;
    if (pending) {
      const p = pending;
      pending = null;
      runRecompute(p);
    }
  }
}

// ------------------------------------------------------------ LISTEN ------

async function connectListener() {
  const client = new pg.Client({ ...pgConfig(opts.db), application_name: 'pgpush-reference-listen' });
  client.on('notification', (msg) => {
    stats.notifications++;
    requestRecompute(`notify:${msg.payload || 'unknown'}`);
  });
  client.on('error', () => { /* handled by 'end' */ });
  client.on('end', () => {
    listener = null;
    setTimeout(() => connectListener().catch(() => {}), 1000);
  });
  try {
    await client.connect();
    await client.query(`LISTEN "${opts.channel.replace(/"/g, '""')}"`);
    listener = client;
    // Anything may have changed while we were not listening.
    requestRecompute(snapshot ? 'reconnect' : 'startup');
  } catch (err) {
    client.end().catch(() => {});
    if (!snapshot) requestRecompute('startup'); // reports the error to clients
  }
}

// ------------------------------------------------------------ clients -----

io.on('connection', (socket) => {
  if (snapshot) socket.emit('dashboardDataUpdate', snapshot);
  else if (lastError) socket.emit('dashboardDataError', lastError);
  socket.on('requestDashboardData', (...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : null;
    if (ack) ack(snapshot || { error: lastError || { message: 'no dashboard data yet', code: 'not_ready' } });
    else if (snapshot) socket.emit('dashboardDataUpdate', snapshot);
    else if (lastError) socket.emit('dashboardDataError', lastError);
  });
});

process.on('SIGUSR2', () => {
  const m = process.memoryUsage();
  process.stdout.write(JSON.stringify({
    ev: 'stats', ...stats, clients: io.engine.clientsCount, version: snapshot && snapshot.version,
    rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external,
  }) + '\n');
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    io.close();
    if (listener) listener.end().catch(() => {});
    pool.end().catch(() => {});
    setTimeout(() => process.exit(0), 200).unref();
  });
}

httpServer.listen(opts.port, opts.host, () => {
  const a = httpServer.address();
  console.log(`listening on ${a.address}:${a.port}`);
  connectListener();
});
