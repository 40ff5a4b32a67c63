// Run the real pgpushd and talk to it with the real socket.io-client.
//
//   import { startCluster } from '../lib/pgcluster.mjs';
//   import { startDaemon, connectClient, waitForUpdate } from '../lib/daemon.mjs';
//   const pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
//   const d = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300'] });
//   const s = connectClient(d.url);
//   const first = await waitForUpdate(s, () => true);
//
// Environment:
//   PGPUSHD          the daemon binary (default <repo>/src/pgpushd)
//   PGPUSHD_WRAPPER  a command prefix, e.g. "valgrind --error-exitcode=99 --leak-check=full"
//   PGPUSH_TEST_VERBOSE=1  echo the daemon's log lines to stderr as they come
//
// Every daemon still running when the process exits is killed (SIGKILL).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { repoRoot } from './pgcluster.mjs';

const require = createRequire(path.join(repoRoot, 'package.json'));
const { io } = require('socket.io-client');
export const WebSocket = require('ws');
export { io };

export const daemonPath = process.env.PGPUSHD || path.join(repoRoot, 'src', 'pgpushd');
const verbose = !!process.env.PGPUSH_TEST_VERBOSE;

// ------------------------------------------------------- exit cleanup ------

const liveProcs = new Set();
const liveSockets = new Set();
process.on('exit', () => {
  for (const s of liveSockets) { try { s.disconnect(); } catch { /* */ } }
  for (const p of liveProcs) { try { p.kill('SIGKILL'); } catch { /* */ } }
});
const HOOK = Symbol.for('pgpush.tests.exitHooks');
if (!globalThis[HOOK]) {
  globalThis[HOOK] = true;
  for (const [sig, n] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
    process.once(sig, () => process.exit(128 + n));
  }
}

// ------------------------------------------------------------- daemon ------

// AddressSanitizer / UBSan / LeakSanitizer / valgrind error reports.
const SANITIZER_RE = /ERROR: (Address|Leak|Memory|Thread|UndefinedBehavior)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer|==\d+== (Invalid|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap)|==\d+== ERROR SUMMARY: [1-9]|definitely lost: [1-9]/;

/**
 * Start pgpushd. Resolves once it logged "listening on HOST:PORT".
 *   db      libpq conninfo (--db)
 *   args    extra command-line arguments
 *   env     extra environment
 *   listen  --listen value (default 127.0.0.1:0); ignored when args contain --listen
 *   timeoutMs  how long to wait for "listening on"
 */
export async function startDaemon({ db, args = [], env = {}, listen = '127.0.0.1:0', timeoutMs = 10000 } = {}) {
  if (!fs.existsSync(daemonPath)) {
    throw new Error(`daemon binary ${daemonPath} does not exist (build it: autoreconf -fi && ./configure && make; or set PGPUSHD)`);
  }
  const argv = [];
  if (!args.includes('--listen')) argv.push('--listen', listen);
  if (db !== undefined && !args.includes('--db')) argv.push('--db', db);
  argv.push(...args);

  const wrapper = (process.env.PGPUSHD_WRAPPER || '').split(/\s+/).filter(Boolean);
  const cmd = wrapper.length ? wrapper[0] : daemonPath;
  const cmdArgs = wrapper.length ? [...wrapper.slice(1), daemonPath, ...argv] : argv;
  // Option fallbacks from the caller's environment (DATABASE_URL, PGPUSH_*)
  // must not change what a test runs; `env` may still set them on purpose.
  const childEnv = { ...process.env };
  for (const k of Object.keys(childEnv)) {
    if (k === 'DATABASE_URL' || k.startsWith('PGPUSH_')) delete childEnv[k];
  }
  Object.assign(childEnv, env);

  const t0 = performance.now();
  const proc = spawn(cmd, cmdArgs, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  liveProcs.add(proc);

  const logs = [];
  const logWaiters = new Set();
  let exitInfo = null;
  const exitWaiters = new Set();

  const onLine = (line) => {
    logs.push(line);
    if (verbose) process.stderr.write(`[pgpushd ${proc.pid}] ${line}\n`);
    for (const w of logWaiters) w.check();
  };
  for (const stream of [proc.stderr, proc.stdout]) {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      partial += chunk;
      let i;
      while ((i = partial.indexOf('\n')) >= 0) {
        onLine(partial.slice(0, i));
        partial = partial.slice(i + 1);
      }
    });
    stream.on('end', () => { if (partial) onLine(partial); partial = ''; });
  }

  proc.on('exit', (code, signal) => {
    exitInfo = { code, signal, at: performance.now() };
    liveProcs.delete(proc);
    for (const w of logWaiters) w.check();
    for (const w of exitWaiters) w();
  });
  proc.on('error', (err) => {
    exitInfo = exitInfo || { code: null, signal: null, error: err, at: performance.now() };
    liveProcs.delete(proc);
    for (const w of logWaiters) w.check();
    for (const w of exitWaiters) w();
  });

  const logTail = (n = 30) => logs.slice(-n).join('\n');

  /** Resolve with the first log line (from index `since`) matching re; reject after timeoutMs or on exit. */
  function waitForLog(re, timeoutMs = 5000, { since = 0 } = {}) {
    return new Promise((resolve, reject) => {
      let next = since;
      const w = {
        check() {
          for (; next < logs.length; next++) {
            const m = logs[next].match(re);
            if (m) { done(); resolve(Object.assign(m, { line: logs[next], index: next })); return; }
          }
          if (exitInfo) {
            done();
            reject(new Error(`pgpushd exited (code ${exitInfo.code}, signal ${exitInfo.signal}) before logging ${re}\n--- log ---\n${logTail()}`));
          }
        },
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timeout (${timeoutMs} ms) waiting for pgpushd log ${re}\n--- log ---\n${logTail()}`));
      }, timeoutMs);
      function done() { clearTimeout(timer); logWaiters.delete(w); }
      logWaiters.add(w);
      w.check();
    });
  }

  /** Log lines (from index since) matching re. */
  const grep = (re, since = 0) => logs.slice(since).filter((l) => re.test(l));

  function waitExit(timeoutMs) {
    if (exitInfo) return Promise.resolve(exitInfo);
    return new Promise((resolve) => {
      const timer = timeoutMs ? setTimeout(() => { exitWaiters.delete(fn); resolve(null); }, timeoutMs) : null;
      const fn = () => { if (timer) clearTimeout(timer); exitWaiters.delete(fn); resolve(exitInfo); };
      exitWaiters.add(fn);
    });
  }

  let m;
  try {
    m = await waitForLog(/listening on [^ ]*:(\d+)/, timeoutMs);
  } catch (err) {
    if (!exitInfo) proc.kill('SIGKILL');
    throw new Error(`pgpushd did not start: ${err.message}\ncommand: ${[cmd, ...cmdArgs].join(' ')}`);
  }
  const port = Number(m[1]);

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    proc,
    pid: proc.pid,
    logs,
    argv: [cmd, ...cmdArgs],
    startMs: performance.now() - t0,
    waitForLog,
    grep,
    logTail,
    /** Index of the next log line (for waitForLog(re, ms, { since })). */
    mark: () => logs.length,
    get exited() { return exitInfo; },
    /** Sanitizer or valgrind error report lines in the log so far. */
    sanitizerReport: () => logs.filter((l) => SANITIZER_RE.test(l)),
    /**
     * Stop with SIGTERM and throw unless the daemon exited by itself with
     * status 0 and logged no sanitizer/valgrind error (use in after hooks).
     */
    async stopClean(what = 'pgpushd') {
      const st = await this.stop('SIGTERM');
      const report = this.sanitizerReport();
      if (st.killed || st.code !== 0 || report.length) {
        throw new Error(`${what} did not exit cleanly: code ${st.code} signal ${st.signal}` +
          `${st.killed ? ' (killed after 5 s)' : ''}${report.length ? `\nreport:\n${report.join('\n')}` : ''}` +
          `\n--- log (tail) ---\n${logTail(60)}`);
      }
      return st;
    },
    /** Exit status, or null if it does not exit within timeoutMs. */
    waitExit,
    /**
     * Send `signal` and wait for the exit. Resolves { code, signal, ms } where ms is
     * the time from the kill to the exit. If the daemon has not exited after
     * killAfterMs it gets SIGKILL and `killed: true` is set.
     */
    async stop(signal = 'SIGTERM', { killAfterMs = 5000 } = {}) {
      if (exitInfo) return { code: exitInfo.code, signal: exitInfo.signal, ms: 0, alreadyExited: true };
      const t = performance.now();
      proc.kill(signal);
      let info = await waitExit(killAfterMs);
      let killed = false;
      if (!info) {
        killed = true;
        proc.kill('SIGKILL');
        info = await waitExit();
      }
      return { code: info.code, signal: info.signal, ms: Math.round(info.at - t), killed };
    },
  };
}

// ------------------------------------------------------------ clients ------

/**
 * A socket.io-client connected (asynchronously) to url with the options the
 * reference frontend uses. The socket records what it receives from the
 * moment it is created, so nothing that arrives before a test starts waiting
 * is lost:
 *   socket.rec.updates      [{ data, t }]  dashboardDataUpdate payloads, t = performance.now() at receipt
 *   socket.rec.errors       [{ data, t }]  dashboardDataError payloads
 *   socket.rec.events       [{ name, args, t }] every incoming event
 *   socket.rec.connects     number of 'connect' events
 *   socket.rec.disconnects  [{ reason, t }]
 *   socket.rec.connectErrors [{ message, t }]
 */
export function connectClient(url, opts = {}) {
  const socket = io(url, {
    transports: ['websocket'],
    reconnectionAttempts: 5,
    reconnectionDelay: 1000,
    forceNew: true,
    ...opts,
  });
  const rec = { updates: [], errors: [], events: [], connects: 0, disconnects: [], connectErrors: [] };
  socket.rec = rec;
  socket.onAny((name, ...args) => {
    const t = performance.now();
    rec.events.push({ name, args, t });
    if (name === 'dashboardDataUpdate') rec.updates.push({ data: args[0], t });
    else if (name === 'dashboardDataError') rec.errors.push({ data: args[0], t });
  });
  socket.on('connect', () => { rec.connects++; });
  socket.on('disconnect', (reason) => { rec.disconnects.push({ reason, t: performance.now() }); });
  socket.on('connect_error', (err) => { rec.connectErrors.push({ message: err && err.message, t: performance.now() }); });
  liveSockets.add(socket);
  const origDisconnect = Object.getPrototypeOf(socket).disconnect.bind(socket);
  socket.close = socket.disconnect = () => { liveSockets.delete(socket); return origDisconnect(); };
  return socket;
}

/** Close every client (sockets from connectClient). */
export function closeClients(sockets) {
  for (const s of sockets) s.close();
}

function withTimeout(promise, timeoutMs, what, cleanup) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => { if (cleanup) cleanup(); reject(new Error(`timeout (${timeoutMs} ms) waiting for ${what}`)); }, timeoutMs);
    }),
  ]);
}

/** The first argument of the next `name` event on socket (including 'connect', 'disconnect'). */
export function nextEvent(socket, name, timeoutMs = 5000) {
  let handler;
  const p = new Promise((resolve) => {
    handler = (...args) => resolve(args[0]);
    socket.once(name, handler);
  });
  return withTimeout(p, timeoutMs, `'${name}' event`, () => socket.off(name, handler));
}

/** Resolves when the socket is connected (at once if it already is). */
export function waitConnected(socket, timeoutMs = 5000) {
  if (socket.connected) return Promise.resolve(socket);
  return nextEvent(socket, 'connect', timeoutMs).then(() => socket).catch((err) => {
    const ce = socket.rec && socket.rec.connectErrors.slice(-1)[0];
    throw new Error(`${err.message}${ce ? ` (last connect_error: ${ce.message})` : ''}`);
  });
}

/**
 * Resolve with the first dashboardDataUpdate (recorded from index `since`,
 * default 0, so updates that already arrived count) for which pred(data) is
 * true: { data, t, index }. Rejects after timeoutMs.
 */
export function waitForUpdate(socket, pred, timeoutMs = 5000, { since = 0 } = {}) {
  const rec = socket.rec;
  for (let i = since; i < rec.updates.length; i++) {
    if (pred(rec.updates[i].data)) return Promise.resolve({ ...rec.updates[i], index: i });
  }
  let handler;
  const p = new Promise((resolve) => {
    handler = (name, data) => {
      if (name !== 'dashboardDataUpdate') return;
      // onAny listeners run in registration order: the recorder's push came first.
      const i = rec.updates.length - 1;
      if (pred(data)) { socket.offAny(handler); resolve({ ...rec.updates[i], index: i }); }
    };
    socket.onAny(handler);
  });
  return withTimeout(p, timeoutMs, 'a matching dashboardDataUpdate', () => socket.offAny(handler));
}

/** Same as waitForUpdate, for dashboardDataError. */
export function waitForError(socket, pred = () => true, timeoutMs = 5000, { since = 0 } = {}) {
  const rec = socket.rec;
  for (let i = since; i < rec.errors.length; i++) {
    if (pred(rec.errors[i].data)) return Promise.resolve({ ...rec.errors[i], index: i });
  }
  let handler;
  const p = new Promise((resolve) => {
    handler = (name, data) => {
      if (name !== 'dashboardDataError') return;
      const i = rec.errors.length - 1;
      if (pred(data)) { socket.offAny(handler); resolve({ ...rec.errors[i], index: i }); }
    };
    socket.onAny(handler);
  });
  return withTimeout(p, timeoutMs, 'a matching dashboardDataError', () => socket.offAny(handler));
}

/** Emit with an ack; resolves the ack's first argument. */
export function emitWithAck(socket, event, timeoutMs = 5000, ...args) {
  return withTimeout(new Promise((resolve) => socket.emit(event, ...args, (res) => resolve(res))),
    timeoutMs, `ack of '${event}'`);
}

// ------------------------------------------------------- raw transports ----

/**
 * Open a raw WebSocket to the Engine.IO endpoint (package `ws`), without the
 * Socket.IO client. Resolves { ws, open, messages, next(timeoutMs), closed }
 * once the Engine.IO open packet arrived; with { join: true } (default) it
 * also sends the Socket.IO CONNECT `40` and waits for the reply.
 *   open      the parsed Engine.IO open packet
 *   messages  every text message received, in order
 *   closed    a promise of { code, reason } for the close
 */
export async function rawEngineIO(port, { join = true, timeoutMs = 5000, wsOptions = {}, path: p = '/socket.io/' } = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${p}?EIO=4&transport=websocket`, { perMessageDeflate: false, ...wsOptions });
  const messages = [];
  const waiters = [];
  let closeInfo = null;
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      closeInfo = { code, reason: reason.toString() };
      resolve(closeInfo);
      while (waiters.length) waiters.shift().reject(new Error(`WebSocket closed (${code}) while waiting for a message`));
    });
  });
  ws.on('error', () => { /* surfaces as close */ });
  ws.on('message', (data, isBinary) => {
    const m = isBinary ? data : data.toString();
    messages.push(m);
    const w = waiters.shift();
    if (w) w.resolve(m);
  });
  let read = 0;
  const next = (ms = timeoutMs) => {
    if (read < messages.length) return Promise.resolve(messages[read++]);
    if (closeInfo) return Promise.reject(new Error(`WebSocket closed (${closeInfo.code})`));
    return withTimeout(new Promise((resolve, reject) => waiters.push({
      resolve: (m) => { read++; resolve(m); }, reject,
    })), ms, 'a WebSocket message');
  };
  await withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket upgrade refused: HTTP ${res.statusCode}`)));
    ws.once('close', (code) => reject(new Error(`WebSocket closed (${code}) during the handshake`)));
  }), timeoutMs, 'the WebSocket handshake');
  const openPkt = await next();
  if (typeof openPkt !== 'string' || openPkt[0] !== '0') throw new Error(`expected an Engine.IO open packet, got ${String(openPkt).slice(0, 100)}`);
  const open = JSON.parse(openPkt.slice(1));
  const conn = { ws, open, messages, next, closed, get closeInfo() { return closeInfo; } };
  if (join) {
    ws.send('40');
    // Skip anything that is not the CONNECT reply (e.g. a ping).
    for (;;) {
      const m = await next();
      if (typeof m === 'string' && m.startsWith('40')) { conn.connect = JSON.parse(m.slice(2) || '{}'); break; }
      if (typeof m === 'string' && m === '2') ws.send('3');
    }
  }
  return conn;
}

/**
 * Write raw bytes to host:port and collect the response until the server
 * closes the connection (or timeoutMs). Resolves
 * { data: Buffer, text, status, closed: bool, ms, error }.
 */
export function rawRequest(port, bytes, { timeoutMs = 5000, host = '127.0.0.1', endAfterWrite = false } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const chunks = [];
    let settled = false;
    let error = null;
    const sock = net.connect(port, host, () => {
      sock.write(bytes, () => { if (endAfterWrite) sock.end(); });
    });
    const finish = (closed) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      const data = Buffer.concat(chunks);
      const text = data.toString('latin1');
      const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
      resolve({ data, text, status: m ? Number(m[1]) : null, closed, ms: Math.round(performance.now() - t0), error });
    };
    sock.on('data', (c) => chunks.push(c));
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    // A reset after the response (unread request bytes on close) still means "closed".
    sock.on('error', (err) => { error = err.code || err.message; });
    const timer = setTimeout(() => finish(false), timeoutMs);
  });
}

// ----------------------------------------------------------- fixtures ------

/**
 * Small known data set, through a pg Client or a pgcluster (anything with
 * .query(sql, params), or .client()). Uses the reference schema of
 * sql/schema.sql: products, stock, sales.
 *   seedShop(db, { products: 3 }) -> [{ id, sku, name, unit_price }]
 */
export async function seedShop(db, { products = 3 } = {}) {
  const rows = [];
  for (let i = 1; i <= products; i++) {
    const sku = `T-${String(i).padStart(3, '0')}`;
    const r = await db.query(
      'INSERT INTO products (sku, name, unit_price) VALUES ($1, $2, $3) RETURNING id, sku, name, unit_price',
      [sku, `Test product ${i}`, (5 * i + 0.5).toFixed(2)]);
    rows.push(r.rows[0]);
    await db.query('INSERT INTO stock (product_id, quantity, reorder_level) VALUES ($1, $2, $3)',
      [r.rows[0].id, 100 * i, 10]);
  }
  return rows;
}

let saleCounter = 0;
/**
 * INSERT one sale (autocommit). Resolves
 *   { id, sentAt, committedAt, dbAt }
 * as performance.now() values: sentAt just before the INSERT is sent,
 * committedAt right after the COMMIT returned, dbAt the server's
 * clock_timestamp() at the INSERT (same host, so the same clock; it does not
 * depend on when this process gets round to reading the reply).
 */
export async function insertSale(db, productId, { quantity = 1, unitPrice = '9.99', customer } = {}) {
  const n = ++saleCounter;
  const sentAt = performance.now();
  const r = await db.query(
    `INSERT INTO sales (product_id, quantity, unit_price, customer_name, customer_email)
     VALUES ($1, $2, $3, $4, $5) RETURNING id, (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms`,
    [productId, quantity, unitPrice, customer || `Customer ${process.pid}-${n}`, `c${n}@example.com`]);
  const committedAt = performance.now();
  return { id: Number(r.rows[0].id), sentAt, committedAt, dbAt: r.rows[0].ms - performance.timeOrigin };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const now = () => performance.now();

/** { n, min, p50, p95, max, mean } of an array of numbers, rounded to 0.1. */
export function summarize(values) {
  const v = [...values].sort((a, b) => a - b);
  const r = (x) => Math.round(x * 10) / 10;
  if (!v.length) return { n: 0 };
  const q = (p) => v[Math.min(v.length - 1, Math.floor(p * v.length))];
  return { n: v.length, min: r(v[0]), p50: r(q(0.5)), p95: r(q(0.95)), max: r(v[v.length - 1]),
    mean: r(v.reduce((a, b) => a + b, 0) / v.length) };
}

/** The recompute log lines (from index since) as { line, reason, ms }. */
export function recomputeLines(daemon, since = 0) {
  return daemon.grep(/recompute/i, since).filter((l) => /reason=/.test(l)).map((line) => {
    const reason = (line.match(/reason=("[^"]*"|\S+)/) || [])[1];
    const ms = (line.match(/query_ms=(\d+(?:\.\d+)?)/) || line.match(/(\d+(?:\.\d+)?) ?ms\b/) || [])[1];
    return { line, reason: reason && reason.replace(/^"|"$/g, ''), ms: ms === undefined ? null : Number(ms) };
  });
}

/** Distinct versions among socket.rec.updates from index since. */
export function versionsSince(socket, since = 0) {
  return [...new Set(socket.rec.updates.slice(since).map((u) => u.data && u.data.version))];
}
