// Hostile clients (issue 8: findings 2, 5 and 8, the client side of the
// hostile battery).
//
// Each scenario starts its own pgpushd on one shared throwaway PostgreSQL,
// connects a well-behaved socket.io-client with the README's options
// (transports: websocket, reconnection), measures its commit-to-client
// latency while nothing else happens (the quiet baseline), then attacks the
// daemon while the good client keeps receiving sales:
//   - a session flood: 300 polling handshakes that never upgrade, against
//     --max-clients 5;
//   - unread responses: polling GETs and WebSocket clients that stop reading
//     while 6 MB snapshots are pushed;
//   - an ack flood: 2,000 acked requestDashboardData from one session, over
//     polling and over WebSocket, and 10 sessions holding 200 answers each;
//   - clock steps of +120 s and -120 s (libfaketime) while the client
//     answers pings;
//   - dotfiles and a 12 MiB static file (between the 8 MiB pending cap and
//     the 16 MiB file cap);
//   - the global budget: 24 WebSocket clients that stop reading 1 MB
//     snapshots against --max-total-pending-bytes 8 MiB.
// Throughout, the good client must stay connected (one connect, no
// disconnect) and its p95 latency must stay within
//   2 x its quiet p95 + MIN_REFRESH_MS + LATENCY_SLACK_MS.
// Every daemon's RSS (VmRSS of /proc/PID/status) is held to a named bound
// below; the RSS assertions are skipped against an ASan build, where freed
// memory sits in quarantine.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitConnected, waitForUpdate, seedShop, insertSale,
  closeClients, summarize, sleep, now, daemonPath,
} from '../lib/daemon.mjs';

// The sanitizer pass of ./quickstart test runs this file against an ASan build.
const SANITIZED = !!process.env.ASAN_OPTIONS;

// --------------------------------------------------- bounds and limits ------

// The recompute-rate floor the latency bound allows for (issue 8, finding
// 1's --min-refresh-interval); passed to the daemon when it has the option.
const MIN_REFRESH_MS = 50;
// Against scheduling noise on a shared machine (an ASan build is 2-3x slower).
const LATENCY_SLACK_MS = SANITIZED ? 150 : 30;
// A sale the good client has not seen after this counts as lost.
const ON_TIME_MS = SANITIZED ? 8000 : 4000;
// The send timeout these tests assume: every response and every stalled
// WebSocket write is dropped when the client has taken no byte for this
// long. Passed as --send-timeout when the daemon has the option (today it
// has none). Default proposed for the daemon: 10000 ms.
const SEND_TIMEOUT_MS = 2000;
// RSS bounds (growth over the scenario's start, kB):
const FLOOD_RSS_KB = 8 * 1024;        // 300 refused handshakes
const UNREAD_RSS_RETURN_KB = 4 * 1024; // after the stalled readers are dropped
const ACK_RSS_KB = 4 * 1024;           // 2,000 unpolled answers of an 8 KB document
const STATIC_RSS_KB = 16 * 1024;       // ten clients reading a 12 MiB file at once

// The document: a pad whose size a scenario sets, and v = the newest sale id.
const QUERY = "SELECT json_build_object('pad', repeat('x', (SELECT n FROM hc_pad)), " +
  "'v', (SELECT coalesce(max(id), 0) FROM sales))";
const SMALL_PAD = 16;

// Options of the daemon under test (some scenarios use options that are
// not there yet).
const HELP = (() => {
  try { return execFileSync(daemonPath, ['--help'], { encoding: 'utf8' }); } catch { return ''; }
})();
const optional = (name, value) => (HELP.includes(`--${name}=`) ? [`--${name}`, String(value)] : []);

// libfaketime (Debian package faketime / libfaketime).
const FAKETIME_LIB = [
  process.env.FAKETIME_LIB,
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
  '/usr/local/lib/faketime/libfaketime.so.1',
].find((p) => p && fs.existsSync(p));

let pg, db, products;
const scenarios = new Set();

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  products = await seedShop(db, { products: 2 });
  await db.query('CREATE TABLE hc_pad (n int NOT NULL)');
  await db.query('INSERT INTO hc_pad VALUES ($1)', [SMALL_PAD]);
  await db.query(`GRANT SELECT ON hc_pad TO ${pg.daemonRole}`);
});

after(async () => {
  for (const sc of scenarios) await stopScenario(sc).catch(() => {});
  if (db) await db.end().catch(() => {});
  if (pg) await pg.stop();
});

// ------------------------------------------------------------ helpers ------

const setPad = (n) => db.query('UPDATE hc_pad SET n = $1', [n]);
const mb = (kb) => (kb / 1024).toFixed(1);
const rssKb = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const fdCount = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;
const raceTimeout = (p, ms) => Promise.race([p, sleep(ms).then(() => null)]);
const p95 = (xs) => summarize(xs).p95;

/** Sample the daemon's RSS every 10 ms; stop() returns the peak (kB). */
function rssSampler(pid) {
  let peak = rssKb(pid);
  const timer = setInterval(() => { try { peak = Math.max(peak, rssKb(pid)); } catch { /* exited */ } }, 10);
  return { stop() { clearInterval(timer); try { peak = Math.max(peak, rssKb(pid)); } catch { /* */ } return peak; } };
}

/**
 * A daemon with the test document and a good client connected to it.
 * Resolves { d, good, pid, raw: Set of raw sockets to destroy at the end }.
 */
async function startScenario({ args = [], env = {}, pad = SMALL_PAD } = {}) {
  await setPad(pad);
  const d = await startDaemon({
    db: pg.conninfo,
    env,
    args: ['--refresh-interval', '300', '--query', QUERY, ...optional('min-refresh-interval', MIN_REFRESH_MS), ...args],
  });
  const sc = { d, pid: d.pid, raw: new Set(), good: null };
  scenarios.add(sc);
  sc.good = connectClient(d.url, { transports: ['websocket'], reconnection: true });
  await waitConnected(sc.good, 10000);
  await waitForUpdate(sc.good, () => true, 10000);
  return sc;
}

async function stopScenario(sc) {
  if (!scenarios.delete(sc)) return;
  for (const s of sc.raw) s.destroy();
  closeClients([sc.good]);
  await sc.d.stopClean();
}

/** Insert a sale; ms until the good client has the document with v = its id (Infinity if never). */
async function served(sc) {
  const since = sc.good.rec.updates.length;
  const sale = await insertSale(db, products[0].id);
  try {
    const got = await waitForUpdate(sc.good, (doc) => Number(doc.v) >= sale.id, ON_TIME_MS, { since });
    return Math.round((got.t - sale.dbAt) * 10) / 10;
  } catch {
    return Infinity;
  }
}

/** The quiet baseline: n sales, one after the other. */
async function baseline(sc, n = 20) {
  const lat = [];
  for (let i = 0; i < n; i++) { lat.push(await served(sc)); await sleep(20); }
  return lat;
}

/** Sales every gapMs while attack() runs (at least min of them); resolves { result, lat }. */
async function during(sc, attack, { gapMs = 50, min = 15 } = {}) {
  let done = false;
  const lat = [];
  const loop = (async () => {
    while (!done || lat.length < min) { lat.push(await served(sc)); await sleep(gapMs); }
  })();
  let result;
  try { result = await attack(); } finally { done = true; await loop; }
  return { result, lat };
}

/** The good client's verdict: connected throughout, p95 within the bound. */
function goodClientHeld(sc, base, lat, what) {
  const bound = 2 * p95(base) + MIN_REFRESH_MS + LATENCY_SLACK_MS;
  console.log(`${what}: good client quiet ${JSON.stringify(summarize(base))} ms, under attack ` +
    `${JSON.stringify(summarize(lat))} ms (p95 bound ${bound.toFixed(1)} ms); connects ${sc.good.rec.connects}, ` +
    `disconnects ${JSON.stringify(sc.good.rec.disconnects)}`);
  assert.equal(sc.d.exited, null, `${what}: the daemon is alive`);
  assert.ok(sc.good.connected, `${what}: the good client is connected`);
  assert.equal(sc.good.rec.connects, 1, `${what}: one connection throughout`);
  assert.deepEqual(sc.good.rec.disconnects, [], `${what}: never disconnected`);
  assert.ok(lat.every(Number.isFinite), `${what}: every sale reached the good client within ${ON_TIME_MS} ms`);
  assert.ok(p95(lat) <= bound, `${what}: p95 ${p95(lat)} ms within 2 x ${p95(base)} + ${MIN_REFRESH_MS} + ${LATENCY_SLACK_MS} ms`);
}

/** A plain HTTP request (no keep-alive): { status, body: Buffer, headers } or { error }. */
function httpReq(port, method, p, body, { timeoutMs = 10000 } = {}) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method, agent: false,
      headers: body !== undefined ? { 'Content-Type': 'text/plain;charset=UTF-8' } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), headers: res.headers }));
      res.on('error', (e) => resolve({ status: res.statusCode, error: e.code || e.message, body: Buffer.concat(chunks) }));
      res.on('aborted', () => resolve({ status: res.statusCode, error: 'aborted', body: Buffer.concat(chunks) }));
    });
    req.on('error', (e) => resolve({ status: null, error: e.code || e.message }));
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    if (body !== undefined) req.end(body); else req.end();
  });
}

const POLL = '/socket.io/?EIO=4&transport=polling';

/** A polling session joined to the main namespace, its first answer read. Resolves sid. */
async function pollingSession(port) {
  const hs = await httpReq(port, 'GET', POLL);
  assert.equal(hs.status, 200, `polling handshake: ${hs.status} ${hs.error || hs.body}`);
  const sid = JSON.parse(hs.body.toString().slice(1)).sid;
  const post = await httpReq(port, 'POST', `${POLL}&sid=${sid}`, '40');
  assert.equal(post.status, 200, `CONNECT over polling: ${post.status}`);
  return sid;
}

/** A raw TCP connection to the daemon, resolved once connected. */
function tcp(sc) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port: sc.d.port, host: '127.0.0.1' });
    s.setNoDelay(true);
    sc.raw.add(s);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
    s.on('error', () => {});
    s.on('close', () => sc.raw.delete(s));
  });
}

/** One masked client frame. */
function frame(text, opcode = 1) {
  const body = Buffer.from(text);
  const key = crypto.randomBytes(4);
  let head;
  if (body.length < 126) head = Buffer.from([0x80 | opcode, 0x80 | body.length]);
  else if (body.length <= 0xffff) { head = Buffer.from([0x80 | opcode, 0x80 | 126, 0, 0]); head.writeUInt16BE(body.length, 2); }
  else { head = Buffer.alloc(10); head[0] = 0x80 | opcode; head[1] = 0x80 | 127; head.writeBigUInt64BE(BigInt(body.length), 2); }
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([head, key, body]);
}

/**
 * A WebSocket client on a raw socket, without permessage-deflate (the
 * server's frames are the raw ones). Answers Engine.IO pings; joins the
 * main namespace. messages: text messages; closed: a promise.
 */
async function rawWs(sc) {
  const sock = await tcp(sc);
  const ws = { sock, port: sock.localPort, messages: [], bytes: 0, closeCode: null, tcpClosed: false };
  let buf = Buffer.alloc(0), headDone = false;
  const waiters = new Set();
  const poke = () => { for (const w of waiters) w(); };
  ws.closed = new Promise((resolve) => sock.on('close', () => { ws.tcpClosed = true; resolve(); poke(); }));
  ws.until = (pred, ms, what) => new Promise((resolve, reject) => {
    const check = () => { const v = pred(); if (v) { clearTimeout(timer); waiters.delete(check); resolve(v); } };
    const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`timeout (${ms} ms) waiting for ${what}`)); }, ms);
    waiters.add(check);
    check();
  });
  sock.on('data', (c) => {
    ws.bytes += c.length;
    buf = buf.length ? Buffer.concat([buf, c]) : c;
    if (!headDone) {
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      ws.status = Number((buf.subarray(0, i).toString('latin1').match(/^HTTP\/1\.1 (\d{3})/) || [])[1]);
      headDone = true;
      buf = buf.subarray(i + 4);
    }
    for (;;) {
      if (buf.length < 2) break;
      let len = buf[1] & 0x7f, off = 2;
      if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) break; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (buf.length < off + len) break;
      const op = buf[0] & 0x0f, payload = buf.subarray(off, off + len);
      buf = buf.subarray(off + len);
      if (op === 8) ws.closeCode = len >= 2 ? payload.readUInt16BE(0) : 1005;
      else if (op === 1) {
        const m = payload.toString();
        ws.messages.push(m.length > 256 ? m.slice(0, 256) : m);
        if (m === '2' && !sock.destroyed) sock.write(frame('3'));
      }
    }
    poke();
  });
  sock.write('GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n' +
    `Connection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n` +
    'Sec-WebSocket-Version: 13\r\n\r\n');
  const open = await ws.until(() => ws.messages.find((m) => m[0] === '0'), 5000, 'the Engine.IO open packet');
  ws.sid = JSON.parse(open.slice(1)).sid;
  sock.write(frame('40'));
  await ws.until(() => ws.messages.find((m) => m.startsWith('40')), 5000, 'the CONNECT reply');
  return ws;
}

/**
 * The daemon's side of each TCP connection from 127.0.0.1 to port, by the
 * client's port: { state, txq } from /proc/net/tcp (state 1 is ESTABLISHED;
 * a socket the daemon closed with bytes unsent is FIN_WAIT1, 4, or gone).
 * What the kernel says does not depend on a log line that a busy second
 * may suppress.
 */
function daemonSockets(port) {
  const out = new Map();
  for (const line of fs.readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const local = parseInt(f[1].split(':')[1], 16), remote = parseInt(f[2].split(':')[1], 16);
    if (local !== port) continue;
    const [txq, rxq] = f[4].split(':').map((x) => parseInt(x, 16));
    out.set(remote, { state: parseInt(f[3], 16), txq, rxq });
  }
  return out;
}

/** "client disconnected ... sid=SID" (the info line of a session's end). */
const goneRe = (sid) => new RegExp(`client disconnected .*sid=${sid.replace(/[^\w-]/g, '\\$&')}\\b`);

// ---------------------------------------------------- session flood ------

test('session flood: 300 polling handshakes that never upgrade, against --max-clients 5', { timeout: 60000 }, async (t) => {
  // Fewer handshakes at a time than --max-clients allows connections: what
  // must refuse them is the count of sessions, not of TCP connections.
  const MAX_CLIENTS = 5, N = 300, WORKERS = 1;
  // Long heartbeats: no flood session times out while the flood runs.
  const sc = await startScenario({ args: ['--max-clients', String(MAX_CLIENTS), '--ping-interval', '10000', '--ping-timeout', '10000'] });
  try {
    const base = await baseline(sc);
    const rss0 = rssKb(sc.pid);
    const sampler = rssSampler(sc.pid);
    const statuses = {};
    const t0 = now();
    const { lat } = await during(sc, async () => {
      let started = 0;
      await Promise.all(Array.from({ length: WORKERS }, async () => {
        while (started < N) {
          started++;
          const r = await httpReq(sc.d.port, 'GET', POLL, undefined, { timeoutMs: 5000 });
          const k = r.status ?? r.error;
          statuses[k] = (statuses[k] || 0) + 1;
        }
      }));
    });
    const ms = now() - t0;
    const peak = sampler.stop();
    const opened = statuses[200] || 0;
    const refused = (statuses[503] || 0) + (statuses.ECONNRESET || 0) + (statuses.EPIPE || 0);
    console.log(`session flood: ${N} polling handshakes (${WORKERS} at a time) in ${ms.toFixed(0)} ms against ` +
      `--max-clients ${MAX_CLIENTS} with the good client connected: ${JSON.stringify(statuses)}; ` +
      `RSS ${mb(rss0)} -> peak ${mb(peak)} MB (bound +${mb(FLOOD_RSS_KB)} MB)`);
    await t.test('the good client stays connected and on time', () => goodClientHeld(sc, base, lat, 'session flood'));
    await t.test('every session counts: beyond --max-clients the handshake gets 503', () => {
      assert.ok(opened <= MAX_CLIENTS - 1, `at most ${MAX_CLIENTS - 1} sessions beside the good client, got ${opened}`);
      assert.equal(opened + refused, N, `every other handshake refused (503 or reset): ${JSON.stringify(statuses)}`);
    });
    await t.test('RSS bounded', { skip: SANITIZED && 'RSS says nothing under ASan' }, () => {
      assert.ok(peak - rss0 <= FLOOD_RSS_KB, `RSS +${mb(peak - rss0)} MB, bound ${mb(FLOOD_RSS_KB)} MB`);
    });
  } finally {
    await stopScenario(sc);
  }
});

// -------------------------------------------------- unread responses ------

test('unread responses: polling GETs and WebSocket clients that stop reading are dropped by a send timeout', { timeout: 90000 }, async (t) => {
  // 6 MB documents: more than the kernel's socket buffers hold for a peer
  // that never reads, so the rest stays with the daemon.
  const PAD = 6_000_000, N = 5;
  // Heartbeats longer than the wait: what drops the stalled clients must be
  // the send timeout, not the ping timeout.
  const sc = await startScenario({
    pad: PAD,
    args: ['--ping-interval', '15000', '--ping-timeout', '15000', '--log-level', 'debug',
      ...optional('send-timeout', SEND_TIMEOUT_MS)],
  });
  try {
    const base = await baseline(sc, 15);
    await sleep(200);
    const rss0 = rssKb(sc.pid), fds0 = fdCount(sc.pid);
    const sampler = rssSampler(sc.pid);
    const mark = sc.d.mark();
    // Polling: joined sessions whose next GET (the CONNECT reply and a 6 MB
    // snapshot) is never read. Without a 'data' listener Node reads at most
    // its high-water mark, and a receive buffer that is never drained stays
    // at its initial size (no autotuning): the rest stays with the daemon.
    const gets = [];
    for (let i = 0; i < N; i++) {
      const sid = await pollingSession(sc.d.port);
      const s = await tcp(sc);
      s.pause();
      s.write(`GET ${POLL}&sid=${sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      gets.push({ sid, s, port: s.localPort });
    }
    // WebSocket: joined clients that stop reading; every sale pushes them a
    // 6 MB snapshot.
    const wss = [];
    for (let i = 0; i < N; i++) {
      const ws = await rawWs(sc);
      ws.sock.pause();
      wss.push(ws);
    }
    const tStall = now();
    const closedRe = (port) => new RegExp(`connection closed peer=127\\.0\\.0\\.1:${port}\\b`);
    // Dropped: the daemon's side of the connection is no longer
    // ESTABLISHED (closed, or FIN_WAIT1 with the unsent rest), or the log
    // says so.
    const open = (p, socks) => (socks.get(p) || { state: 0 }).state === 1;
    const getGone = (g, socks) => !open(g.port, socks) || sc.d.grep(closedRe(g.port), mark).length > 0;
    const wsGone = (w, socks) => !open(w.port, socks) || sc.d.grep(goneRe(w.sid), mark).length > 0;
    const allGone = () => {
      const socks = daemonSockets(sc.d.port);
      return gets.every((g) => getGone(g, socks)) && wss.every((w) => wsGone(w, socks));
    };
    let pinned = 0;
    const { lat } = await during(sc, async () => {
      await sleep(500);
      pinned = rssKb(sc.pid);
      // The send timeout counts from the last byte the kernel took: a
      // paused socket's receive window keeps growing for a while (more so
      // on a loaded machine), so allow well past one timeout.
      while (now() - tStall < SEND_TIMEOUT_MS + (SANITIZED ? 30000 : 12000) && !allGone()) await sleep(100);
    }, { gapMs: 100 });
    const tWait = Math.round(now() - tStall);
    await sleep(SANITIZED ? 1000 : 300);
    const peak = sampler.stop();
    const rss1 = rssKb(sc.pid), fds1 = fdCount(sc.pid);
    const socks = daemonSockets(sc.d.port);
    const getsGone = gets.filter((g) => getGone(g, socks)).length;
    const wssGone = wss.filter((w) => wsGone(w, socks)).length;
    // What a reader still open looked like (the kernel's queues), for a
    // failure to explain itself.
    const left = [...gets.filter((g) => !getGone(g, socks)).map((g) => ['GET', g.port]),
      ...wss.filter((w) => !wsGone(w, socks)).map((w) => ['WebSocket', w.port])]
      .map(([k, p]) => `${k} :${p} ${JSON.stringify(socks.get(p))} log: ${sc.d.grep(new RegExp(`:${p}\\b`), mark).slice(-3).join(' | ') || '-'}`);
    const suppressed = sc.d.grep(/lines suppressed/, mark).length;
    console.log(`unread responses: ${N} polling GETs and ${N} WebSocket clients stopped reading 6 MB documents; ` +
      `after ${tWait} ms (send timeout assumed: ${SEND_TIMEOUT_MS} ms, --send-timeout ${HELP.includes('--send-timeout=') ? 'passed' : 'unknown to this daemon'}): ` +
      `${getsGone}/${N} GETs and ${wssGone}/${N} WebSockets dropped; daemon RSS ${mb(rss0)} -> ${mb(pinned)} pinned, peak ` +
      `${mb(peak)} -> ${mb(rss1)} MB after; fds ${fds0} -> ${fds1}${suppressed ? ' (log lines were suppressed)' : ''}; ` +
      `daemon: ${sc.d.grep(/client not reading|send timeout|output overflow/, mark).slice(0, 3).join(' | ') || '-'}` +
      (left.length ? `; still open: ${left.join('; ')}` : ''));
    await t.test('the good client stays connected and on time', () => goodClientHeld(sc, base, lat, 'unread responses'));
    await t.test(`every stalled reader is dropped once it takes no byte for the send timeout (${SEND_TIMEOUT_MS} ms), and its memory returned`,
      () => {
        assert.ok(HELP.includes('--send-timeout='), 'the daemon has --send-timeout');
        assert.equal(getsGone, N, 'every unread polling GET closed');
        assert.equal(wssGone, N, 'every WebSocket that stopped reading closed');
        assert.ok(fds1 <= fds0, `descriptors back: ${fds0} -> ${fds1}`);
        if (!SANITIZED) assert.ok(rss1 - rss0 <= UNREAD_RSS_RETURN_KB, `RSS back within ${mb(UNREAD_RSS_RETURN_KB)} MB: +${mb(rss1 - rss0)} MB`);
      });
  } finally {
    await stopScenario(sc);
  }
});

// --------------------------------------------------------- ack flood ------

test('ack flood: 2,000 acked requestDashboardData from one session (polling and WebSocket); 10 sessions x 200 acks', { timeout: 120000 }, async (t) => {
  const PAD = 8000, N = 2000;
  const sc = await startScenario({ pad: PAD, args: ['--ping-interval', '10000', '--ping-timeout', '10000'] });
  try {
    const base = await baseline(sc);
    await sleep(200);
    const requests = (from, n) => Array.from({ length: n }, (_, i) => `42${from + i}["requestDashboardData"]`).join('\x1e');
    const acks = (text) => (text.match(/(^|\x1e)43\d+\[/g) || []).length;

    // (a) Polling: 2,000 requests in 20 POSTs of 100 within about a second,
    // each followed by the GET that collects the answers (so no cap on the
    // outbox is reached: only a rate limit can refuse them).
    const sid = await pollingSession(sc.d.port);
    await httpReq(sc.d.port, 'GET', `${POLL}&sid=${sid}`); // the CONNECT reply and the snapshot
    const poll = await during(sc, async () => {
      let answered = 0, bytes = 0;
      const statuses = {};
      const t0 = now();
      for (let k = 0; k < N / 100; k++) {
        const post = await httpReq(sc.d.port, 'POST', `${POLL}&sid=${sid}`, requests(k * 100 + 1, 100));
        statuses[`POST ${post.status ?? post.error}`] = (statuses[`POST ${post.status ?? post.error}`] || 0) + 1;
        if (post.status !== 200) break;
        const get = await httpReq(sc.d.port, 'GET', `${POLL}&sid=${sid}`, undefined, { timeoutMs: 5000 });
        statuses[`GET ${get.status ?? get.error}`] = (statuses[`GET ${get.status ?? get.error}`] || 0) + 1;
        if (get.body) { answered += acks(get.body.toString()); bytes += get.body.length; }
        if (get.status !== 200) break;
      }
      return { answered, bytes, statuses, ms: Math.round(now() - t0) };
    });
    console.log(`ack flood, polling, one session: ${N} acked requests in ${N / 100} POSTs in ${poll.result.ms} ms -> ` +
      `${poll.result.answered} answered (${(poll.result.bytes / 1048576).toFixed(1)} MB of answers); ${JSON.stringify(poll.result.statuses)}`);

    // (b) WebSocket: 2,000 requests in 80 writes of 25, 12 ms apart, the
    // answers read as they come.
    const ws = await rawWs(sc);
    const wsRes = await during(sc, async () => {
      const m0 = ws.messages.length;
      const count = () => ws.messages.slice(m0).filter((m) => /^43\d+\[/.test(m)).length;
      const t0 = now();
      for (let k = 0; k < N / 25 && !ws.tcpClosed; k++) {
        ws.sock.write(Buffer.concat(Array.from({ length: 25 }, (_, i) => frame(`42${k * 25 + i + 1}["requestDashboardData"]`))));
        await sleep(12);
      }
      // Until every answer came, the connection closed, or nothing came for 1 s.
      let last = -1, quietSince = now();
      while (count() < N && !ws.tcpClosed && now() - quietSince < 1000 && now() - t0 < 20000) {
        const c = count();
        if (c !== last) { last = c; quietSince = now(); }
        await sleep(50);
      }
      return { acks: count(), closed: ws.tcpClosed, closeCode: ws.closeCode, ms: Math.round(now() - t0) };
    });
    console.log(`ack flood, WebSocket, one session: ${N} acked requests in ${N / 25} writes -> ${wsRes.result.acks} answered ` +
      `in ${wsRes.result.ms} ms, connection ${wsRes.result.closed ? `closed (close ${wsRes.result.closeCode})` : 'open'}`);
    ws.sock.destroy();

    // (c) Memory: 10 sessions each POST 200 acked requests (2,000 in all)
    // and do not poll for 1 s. Answers that reference the one snapshot
    // cost a few bytes each; copies cost the document each (8 KB x 2,000).
    const sids = [];
    for (let i = 0; i < 10; i++) {
      const s = await pollingSession(sc.d.port);
      await httpReq(sc.d.port, 'GET', `${POLL}&sid=${s}`);
      sids.push(s);
    }
    await sleep(200);
    const rss0 = rssKb(sc.pid);
    const sampler = rssSampler(sc.pid);
    const mem = await during(sc, async () => {
      await Promise.all(sids.map((s) => httpReq(sc.d.port, 'POST', `${POLL}&sid=${s}`, requests(1, 200))));
      await sleep(1000);
      const gets = await Promise.all(sids.map((s) => httpReq(sc.d.port, 'GET', `${POLL}&sid=${s}`, undefined, { timeoutMs: 5000 })));
      return gets.reduce((a, g) => a + (g.body ? acks(g.body.toString()) : 0), 0);
    });
    const peak = sampler.stop();
    console.log(`ack flood, 10 polling sessions x 200 acked requests, unpolled for 1 s: ${mem.result} answered; ` +
      `RSS ${mb(rss0)} -> peak ${mb(peak)} MB (bound +${mb(ACK_RSS_KB)} MB)`);

    await t.test('the good client stays connected and on time', () =>
      goodClientHeld(sc, base, [...poll.lat, ...wsRes.lat, ...mem.lat], 'ack flood'));
    await t.test('a session is rate-limited', () => {
      assert.ok(poll.result.answered < N, `polling: not all ${N} requests answered (${poll.result.answered})`);
      assert.ok(wsRes.result.acks < N, `WebSocket: not all ${N} requests answered (${wsRes.result.acks})`);
    });
    await t.test(`ack replies are not copies: RSS bounded (+${mb(ACK_RSS_KB)} MB)`,
      { skip: SANITIZED && 'RSS says nothing under ASan' }, () => {
        assert.ok(peak - rss0 <= ACK_RSS_KB, `RSS +${mb(peak - rss0)} MB`);
      });
  } finally {
    await stopScenario(sc);
  }
});

// -------------------------------------------------------- clock steps ------

test('clock steps of +120 s and -120 s: a client that answers pings stays connected',
  { timeout: 60000, skip: !FAKETIME_LIB && 'libfaketime is not installed (Debian: apt-get install faketime)' }, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-faketime-'));
    const offsetFile = path.join(dir, 'offset');
    fs.writeFileSync(offsetFile, '+0\n');
    const PING_INTERVAL = 500, PING_TIMEOUT = 500, HOLD_MS = 2500;
    const env = {
      LD_PRELOAD: [FAKETIME_LIB, process.env.LD_PRELOAD].filter(Boolean).join(':'),
      FAKETIME_TIMESTAMP_FILE: offsetFile,
      FAKETIME_NO_CACHE: '1',
      // A step of the wall clock (NTP, an operator) leaves CLOCK_MONOTONIC alone.
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    };
    // libfaketime preloaded ahead of the ASan runtime makes ASan abort.
    if (process.env.ASAN_OPTIONS) env.ASAN_OPTIONS = `${process.env.ASAN_OPTIONS}:verify_asan_link_order=0`;
    const sc = await startScenario({ env, args: ['--ping-interval', String(PING_INTERVAL), '--ping-timeout', String(PING_TIMEOUT)] });
    try {
      // A raw WebSocket client that answers pings too, to see the server's side.
      const ws = await rawWs(sc);
      const base = await baseline(sc);
      const steps = [];
      const { lat } = await during(sc, async () => {
        for (const [label, offset] of [['+120 s', '+120'], ['-120 s (back to real time)', '+0'], ['-120 s (2 min behind)', '-120']]) {
          const mark = sc.d.mark();
          const pings0 = ws.messages.filter((m) => m === '2').length;
          fs.writeFileSync(offsetFile, `${offset}\n`);
          await sleep(HOLD_MS);
          steps.push({
            label,
            pings: ws.messages.filter((m) => m === '2').length - pings0,
            timeouts: sc.d.grep(/ping timeout/, mark).length,
            disconnects: sc.good.rec.disconnects.length,
            rawClosed: ws.tcpClosed,
          });
        }
      }, { gapMs: 100 });
      fs.writeFileSync(offsetFile, '+0\n');
      console.log(`clock steps (libfaketime ${FAKETIME_LIB}, ping ${PING_INTERVAL}+${PING_TIMEOUT} ms, each held ${HOLD_MS} ms): ` +
        `${steps.map((s) => `${s.label}: ${s.pings} pings answered by the raw client, ${s.timeouts} "ping timeout" lines, ` +
          `good client disconnects so far ${s.disconnects}, raw client ${s.rawClosed ? 'CLOSED' : 'open'}`).join('; ')}`);
      await t.test('no client times out', () => {
        for (const s of steps) assert.equal(s.timeouts, 0, `${s.label}: no ping timeout`);
        assert.equal(ws.tcpClosed, false, 'the raw client that answers pings is still connected');
      });
      await t.test('the good client stays connected and on time', () =>
        goodClientHeld(sc, base, lat, 'clock steps'));
    } finally {
      await stopScenario(sc);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

// ------------------------------------------------------- static files ------

test('static files: dotfiles are 404; a 12 MiB file (between the pending cap and the file cap) is served whole', { timeout: 90000 }, async (t) => {
  const www = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-static-'));
  const SECRET = `secret-${crypto.randomBytes(8).toString('hex')}`;
  fs.writeFileSync(path.join(www, 'index.html'), '<h1>dashboard</h1>');
  fs.writeFileSync(path.join(www, '.env'), `DATABASE_URL=postgres://u:${SECRET}@db/shop\n`);
  fs.mkdirSync(path.join(www, '.git'));
  fs.writeFileSync(path.join(www, '.git', 'config'), `[remote "origin"]\n\turl = https://${SECRET}@example.com/x\n`);
  fs.mkdirSync(path.join(www, 'assets'));
  fs.writeFileSync(path.join(www, 'assets', '.htpasswd'), `admin:${SECRET}\n`);
  fs.symlinkSync('.env', path.join(www, 'env.txt'));
  const BIG = 12 * 1024 * 1024;
  const big = crypto.randomBytes(BIG);
  const bigSha = crypto.createHash('sha256').update(big).digest('hex');
  fs.writeFileSync(path.join(www, 'big.bin'), big);
  const sc = await startScenario({ args: ['--static-dir', www, '--ping-interval', '10000', '--ping-timeout', '10000'] });
  try {
    const base = await baseline(sc);
    const get = (p, o) => httpReq(sc.d.port, 'GET', p, undefined, o);

    await t.test('dotfiles and dot-directories: 404 like a missing file, nothing of them sent', async () => {
      const index = await get('/index.html');
      const missing = await get('/missing.html');
      const res = {};
      for (const p of ['/.env', '/.git/config', '/.git/', '/%2eenv', '/%2Egit/config', '//.env', '/assets/.htpasswd', '/env.txt']) {
        res[p] = await get(p);
      }
      console.log(`static dotfiles: /index.html ${index.status}, /missing.html ${missing.status}; ` +
        `${Object.entries(res).map(([p, r]) => `${p} ${r.status ?? r.error}`).join(', ')}`);
      assert.equal(index.status, 200);
      assert.equal(missing.status, 404);
      for (const [p, r] of Object.entries(res)) {
        assert.equal(r.status, 404, `${p}: 404, got ${r.status ?? r.error}`);
        assert.equal(r.body.toString(), missing.body.toString(), `${p}: the body of a missing file`);
        assert.ok(!r.body.toString().includes(SECRET), `${p}: nothing of the file`);
      }
    });

    const one = await during(sc, () => get('/big.bin', { timeoutMs: 20000 }), { min: 30 });
    const r = one.result;
    const sha = r.body ? crypto.createHash('sha256').update(r.body).digest('hex') : null;
    console.log(`static 12 MiB file: ${r.status ?? '-'} ${r.error ? `(${r.error}) ` : ''}Content-Length ` +
      `${r.headers ? r.headers['content-length'] : '-'}, ${r.body ? r.body.length : 0} bytes received, ` +
      `${sha === bigSha ? 'complete and intact' : 'NOT the file'}; daemon: ` +
      `${sc.d.grep(/client not reading|too large|static/).slice(-2).join(' | ') || '-'}`);

    await sleep(200);
    const rss0 = rssKb(sc.pid);
    const sampler = rssSampler(sc.pid);
    const ten = await during(sc, () => Promise.all(Array.from({ length: 10 }, () => get('/big.bin', { timeoutMs: 30000 }))), { min: 30 });
    const peak = sampler.stop();
    const whole = ten.result.filter((x) => x.status === 200 && x.body &&
      crypto.createHash('sha256').update(x.body).digest('hex') === bigSha).length;
    console.log(`static 12 MiB file, 10 clients at once: ${whole}/10 received it whole; statuses ` +
      `${JSON.stringify(ten.result.map((x) => x.status ?? x.error))}; RSS ${mb(rss0)} -> peak ${mb(peak)} MB ` +
      `(bound +${mb(STATIC_RSS_KB)} MB)`);

    await t.test('the good client stays connected and on time', () =>
      goodClientHeld(sc, base, [...one.lat, ...ten.lat], 'static files'));
    await t.test('a 12 MiB file is served whole', () => {
      assert.equal(r.status, 200, `status ${r.status} ${r.error || ''}`);
      assert.equal(Number(r.headers['content-length']), BIG);
      assert.equal(sha, bigSha, `${r.body ? r.body.length : 0} of ${BIG} bytes, intact`);
    });
    await t.test('ten clients get it at once, without a copy each', () => {
      assert.equal(whole, 10, 'every client received the whole file');
      if (!SANITIZED) assert.ok(peak - rss0 <= STATIC_RSS_KB, `RSS +${mb(peak - rss0)} MB, bound ${mb(STATIC_RSS_KB)} MB`);
    });
  } finally {
    await stopScenario(sc);
    fs.rmSync(www, { recursive: true, force: true });
  }
});

// ------------------------------------------------ the global budget ------

test('global budget: many clients that stop reading 1 MB snapshots; the largest backlogs are dropped first (--max-total-pending-bytes)', { timeout: 120000 }, async (t) => {
  // 1 MB documents; 24 raw WebSocket clients (no compression: each holds
  // the whole frame) stop reading. The per-client cap (8 MiB) and the send
  // timeout (10 min here) never trigger: what must drop them is the budget
  // of all clients' unsent bytes together.
  const PAD = 1_000_000, N = 24, BUDGET = 8 * 1024 * 1024;
  const BUDGET_RSS_KB = 16 * 1024; // growth while they stall: at most the budget (frames are shared) and 8 MB
  const sc = await startScenario({
    pad: PAD,
    args: ['--ping-interval', '60000', '--ping-timeout', '60000', '--send-timeout', '600000',
      '--log-level', 'debug', ...optional('max-total-pending-bytes', BUDGET)],
  });
  try {
    const base = await baseline(sc, 15);
    await sleep(200);
    const rss0 = rssKb(sc.pid);
    const sampler = rssSampler(sc.pid);
    const mark = sc.d.mark();
    const wss = [];
    for (let i = 0; i < N; i++) {
      const ws = await rawWs(sc);
      ws.sock.pause();
      wss.push(ws);
    }
    const t0 = now();
    const gone = () => wss.filter((w) => sc.d.grep(goneRe(w.sid), mark).length).length;
    // Under the budget, at most BUDGET / PAD clients can hold a snapshot's
    // worth each: the rest must go.
    const MUST_GO = N - Math.ceil(BUDGET / PAD);
    const { lat } = await during(sc, async () => {
      while (now() - t0 < 15000 && gone() < MUST_GO) await sleep(100);
      await sleep(1000); // and the good client keeps being served after
    }, { gapMs: 100, min: 30 });
    const ms = Math.round(now() - t0);
    await sleep(300);
    const peak = sampler.stop();
    const dropped = gone();
    const summaries = sc.d.grep(/over --max-total-pending-bytes/, mark);
    const drops = sc.d.grep(/client dropped peer=.*pending=\d+ bytes, the most/, mark);
    const goodPort = sc.good.io.engine.transport.ws?._socket?.localPort;
    console.log(`global budget: ${N} WebSocket clients stopped reading 1 MB snapshots, --max-total-pending-bytes ${BUDGET}: ` +
      `${dropped}/${N} dropped after ${ms} ms (${summaries.length} budget line(s), e.g. ${summaries[0] || '-'}); ` +
      `RSS ${mb(rss0)} -> peak ${mb(peak)} MB (bound +${mb(BUDGET_RSS_KB)} MB)`);
    await t.test('the good client stays connected and on time', () => goodClientHeld(sc, base, lat, 'global budget'));
    await t.test('the clients that stopped reading are dropped, by the budget, largest backlog first', () => {
      assert.ok(HELP.includes('--max-total-pending-bytes='), 'the daemon has --max-total-pending-bytes');
      assert.ok(dropped >= MUST_GO, `at least ${MUST_GO} of ${N} dropped, got ${dropped}`);
      assert.ok(summaries.length >= 1, 'a warn line names --max-total-pending-bytes');
      for (const l of summaries) {
        const after = Number(/, now (\d+)$/.exec(l)?.[1]);
        assert.ok(after <= BUDGET, `under the budget after each pass: ${l}`);
      }
      // Within one pass, the backlogs dropped are in decreasing order.
      let prev = Infinity, prevLine = -1;
      for (const l of drops) {
        const idx = sc.d.grep(/./).indexOf(l);
        const n = Number(/pending=(\d+) bytes, the most/.exec(l)[1]);
        if (idx !== prevLine + 1) prev = Infinity;
        assert.ok(n <= prev, `dropped in decreasing order of backlog: ${n} after ${prev}`);
        prev = n; prevLine = idx;
      }
      if (goodPort) assert.equal(sc.d.grep(new RegExp(`client dropped peer=127\\.0\\.0\\.1:${goodPort}\\b`), mark).length, 0);
    });
    await t.test('RSS bounded', { skip: SANITIZED && 'RSS says nothing under ASan' }, () => {
      assert.ok(peak - rss0 <= BUDGET_RSS_KB, `RSS +${mb(peak - rss0)} MB, bound ${mb(BUDGET_RSS_KB)} MB`);
    });
  } finally {
    await stopScenario(sc);
  }
});
