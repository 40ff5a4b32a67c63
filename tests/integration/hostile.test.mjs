// Hostile client battery (issue 3, "Hostile input").
//
// One pgpushd with short limits, one well-behaved socket.io-client
// (transports: websocket) connected throughout, and a battery of hostile
// peers built by hand on raw `net` sockets: slowloris, a byte-at-a-time
// request, a 100 MB header stream, WebSocket framing violations (a frame
// announcing 2^63-1 bytes, unmasked frames, invalid UTF-8, fragmented and
// oversized control frames), a client that stops reading while 1 MB
// snapshots are pushed, 1,000 connect/disconnect cycles, half-open sockets,
// abandoned polling sessions and an oversized POST body. After every item a
// sale is inserted and the good client must receive it within 2 s; the
// latencies are printed. Before and after the battery: the daemon's RSS and
// open descriptors; at the end the good client must have seen every sale,
// with strictly increasing versions, and never disconnected.
//
// The good client declines permessage-deflate, so that it receives the same
// raw 1 MB snapshot frames as the client that stops reading.
//
// The daemon runs with --log-level debug; its whole log is written to
// $TMPDIR/pgpush-hostile-<pid>.log (path printed at the end) and the lines
// about each hostile peer are printed with its item.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitConnected, waitForUpdate, seedShop, insertSale,
  closeClients, summarize, sleep, now, WebSocket,
} from '../lib/daemon.mjs';

// The sanitizer pass of ./quickstart test runs this file against an ASan build.
const SANITIZED = !!process.env.ASAN_OPTIONS;

// ------------------------------------------------------------- limits ------

const REQUEST_TIMEOUT = 1000;
const CONNECT_TIMEOUT = 1000;
const PING_INTERVAL = 500;
const PING_TIMEOUT = 500;
const MAX_PAYLOAD = 64 * 1024;
const MAX_HEADER_BYTES = 8192;
const MAX_PENDING = 1_200_000;   // above one 1 MB snapshot, below two
const BIG_PAD = 1_000_000;       // the padded document of the stalled-reader item
const SMALL_PAD = 16;
// the good client gets each sale within this (an ASan build runs 2-3x slower)
const ON_TIME_MS = SANITIZED ? 5000 : 2000;

// The document: a pad whose size the test sets (table hostile_pad, no
// trigger: the next sale picks the new size up) and v = the newest sale id.
const QUERY = "SELECT json_build_object('pad', repeat('x', (SELECT n FROM hostile_pad)), " +
  "'v', (SELECT coalesce(max(id), 0) FROM sales))";

let pg, db, products, daemon, good;
const sockets = [];
const saleIds = [];
const latencies = {};          // item -> [ms]
const rawLive = new Set();     // raw sockets to destroy at the end
let baseline;                  // { rss, fds }

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  products = await seedShop(db, { products: 2 });
  await db.query('CREATE TABLE hostile_pad (n int NOT NULL)');
  await db.query('INSERT INTO hostile_pad VALUES ($1)', [SMALL_PAD]);
  // The daemon's role reads only what it is granted (sql/grant.sql + this).
  await db.query(`GRANT SELECT ON hostile_pad TO ${pg.daemonRole}`);
  daemon = await startDaemon({
    db: pg.conninfo,
    args: ['--refresh-interval', '300', '--log-level', 'debug',
      '--request-timeout', String(REQUEST_TIMEOUT), '--connect-timeout', String(CONNECT_TIMEOUT),
      '--ping-interval', String(PING_INTERVAL), '--ping-timeout', String(PING_TIMEOUT),
      '--max-payload', String(MAX_PAYLOAD), '--max-header-bytes', String(MAX_HEADER_BYTES),
      '--max-pending-bytes', String(MAX_PENDING), '--query', QUERY],
  });
  // Without permessage-deflate: the good client gets the same raw 1 MB
  // frames as the stalled reader, not a few compressed kilobytes.
  good = connectClient(daemon.url, { reconnection: false, perMessageDeflate: false });
  sockets.push(good);
  await waitConnected(good, 10000);
  await waitForUpdate(good, () => true, 10000);
});

after(async () => {
  for (const s of rawLive) s.destroy();
  closeClients(sockets);
  try {
    if (daemon) {
      const file = path.join(os.tmpdir(), `pgpush-hostile-${daemon.pid}.log`);
      try {
        fs.writeFileSync(file, daemon.logs.join('\n') + '\n');
        console.log(`daemon log (${daemon.logs.length} lines, --log-level debug): ${file}`);
      } catch { /* best effort */ }
      await daemon.stopClean();
    }
  } finally {
    if (db) await db.end().catch(() => {});
    if (pg) await pg.stop();
  }
});

// ------------------------------------------------------------ helpers ------

const rssKb = () => Number(fs.readFileSync(`/proc/${daemon.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const fdCount = () => fs.readdirSync(`/proc/${daemon.pid}/fd`).length;
const mb = (kb) => (kb / 1024).toFixed(1);

/** Sample the daemon's RSS every 10 ms; stop() returns the peak (kB). */
function rssSampler() {
  let peak = rssKb();
  const timer = setInterval(() => { try { peak = Math.max(peak, rssKb()); } catch { /* exited */ } }, 10);
  return { stop() { clearInterval(timer); try { peak = Math.max(peak, rssKb()); } catch { /* */ } return peak; } };
}

/** Insert a sale; the good client must get the document with v = its id within ON_TIME_MS. */
async function served(item) {
  const since = good.rec.updates.length;
  const sale = await insertSale(db, products[0].id);
  saleIds.push(sale.id);
  let got;
  try {
    got = await waitForUpdate(good, (d) => Number(d.v) === sale.id, ON_TIME_MS, { since });
  } catch (err) {
    assert.fail(`${item}: the good client did not get sale ${sale.id} within ${ON_TIME_MS} ms ` +
      `(${err.message}); connected=${good.connected} disconnects=${JSON.stringify(good.rec.disconnects)}\n` +
      `--- daemon log (tail) ---\n${daemon.logTail(25)}`);
  }
  // From the INSERT on the server's clock (same host) to the receipt.
  const ms = Math.round((got.t - sale.dbAt) * 10) / 10;
  (latencies[item] ||= []).push(ms);
  assert.ok(good.connected, `${item}: good client still connected`);
  assert.deepEqual(good.rec.disconnects, [], `${item}: good client never disconnected`);
  assert.equal(daemon.exited, null, `${item}: daemon alive`);
  return ms;
}

/** The daemon's log lines about a peer (by our local port). */
function peerLog(port, since = 0) {
  const re = new RegExp(`peer=127\\.0\\.0\\.1:${port}\\b`);
  return daemon.grep(re, since);
}

/** A raw TCP connection, resolved once connected. */
function tcp({ allowHalfOpen = false } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port: daemon.port, host: '127.0.0.1', allowHalfOpen });
    s.setNoDelay(true);
    rawLive.add(s);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
    s.on('close', () => rawLive.delete(s));
  });
}

/**
 * Watch what the server answers on a raw socket: { data, status, tData (first
 * byte), tEnd (FIN or close), tClose, error } with times relative to t0.
 */
function watch(sock, t0 = now()) {
  const r = { chunks: [], bytes: 0, status: null, tData: null, tEnd: null, tClose: null, error: null };
  let onDone;
  r.done = new Promise((resolve) => { onDone = resolve; });
  sock.on('data', (c) => {
    if (r.tData === null) r.tData = Math.round(now() - t0);
    r.bytes += c.length;
    if (r.bytes <= 65536) r.chunks.push(c);
    if (r.status === null) {
      const m = Buffer.concat(r.chunks).toString('latin1').match(/^HTTP\/1\.[01] (\d{3})/);
      if (m) r.status = Number(m[1]);
    }
  });
  sock.on('end', () => { if (r.tEnd === null) r.tEnd = Math.round(now() - t0); });
  sock.on('error', (e) => { r.error = r.error || e.code || e.message; });
  sock.on('close', () => {
    r.tClose = Math.round(now() - t0);
    if (r.tEnd === null) r.tEnd = r.tClose;
    onDone(r);
  });
  r.text = () => Buffer.concat(r.chunks).toString('latin1');
  r.head = () => r.text().split('\r\n')[0];
  return r;
}

const raceTimeout = (p, ms) => Promise.race([p, sleep(ms).then(() => null)]);

/** "client disconnected ... sid=SID" (info line logged when a session ends). */
const goneRe = (sid) => new RegExp(`client disconnected .*sid=${sid.replace(/[^\w-]/g, '\\$&')}\\b`);

/** Wait (bounded) until every regexp has a log line from index since: the log arrives through a pipe. */
async function logsArrived(res, since, ms = 2000) {
  const t = now();
  while (now() - t < ms && !res.every((re) => daemon.grep(re, since).length)) await sleep(50);
}

// ---------------------------------------------------- WebSocket frames ------

/**
 * One client frame, built by hand. `announce` overrides the payload length
 * written in the header (BigInt or number); rsv is the 3-bit RSV field.
 */
function frame({ opcode = 1, fin = true, rsv = 0, payload = Buffer.alloc(0), mask = true, announce } = {}) {
  const body = Buffer.from(payload);
  const len = BigInt(announce ?? body.length);
  let b1, ext;
  if (len < 126n) { b1 = Number(len); ext = Buffer.alloc(0); }
  else if (len <= 0xffffn) { b1 = 126; ext = Buffer.alloc(2); ext.writeUInt16BE(Number(len)); }
  else { b1 = 127; ext = Buffer.alloc(8); ext.writeBigUInt64BE(len); }
  let key = Buffer.alloc(0);
  if (mask) {
    b1 |= 0x80;
    key = crypto.randomBytes(4);
    for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  }
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | (rsv << 4) | opcode, b1]), ext, key, body]);
}

const upgradeHead = (key, extra = '') =>
  'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
  'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

/**
 * A WebSocket client on a raw socket: no permessage-deflate offered, so the
 * server's frames are the raw ones. Parses server frames (unmasked), answers
 * Engine.IO pings unless answerPings is false.
 *   open(): the HTTP upgrade, then the Engine.IO open packet, then (join) `40`.
 */
class RawWs {
  constructor(sock) {
    this.sock = sock;
    this.port = sock.localPort;
    this.buf = Buffer.alloc(0);
    this.headDone = false;
    this.status = null;
    this.frames = [];           // { opcode, fin, rsv, len, payload (when <= 64 KB) }
    this.messages = [];         // text messages
    this.closeFrame = null;     // { code, reason, t }
    this.tcpClosed = null;      // t
    this.bytes = 0;
    this.answerPings = true;
    this.waiters = new Set();
    this.t0 = now();
    this.closed = new Promise((resolve) => {
      sock.on('close', () => { this.tcpClosed = now(); resolve(this); this.poke(); });
    });
    sock.on('error', (e) => { this.error = this.error || e.code || e.message; });
    sock.on('end', () => { this.fin = true; });
    sock.on('data', (c) => { this.bytes += c.length; this.onData(c); });
  }

  static async open(opts = {}) {
    const { join = true, headWriter } = opts;
    const sock = await tcp();
    const ws = new RawWs(sock);
    ws.key = crypto.randomBytes(16).toString('base64');
    const head = upgradeHead(ws.key);
    if (headWriter) await headWriter(sock, Buffer.from(head));
    else sock.write(head);
    await ws.until(() => ws.headDone || ws.tcpClosed, 3000, 'the 101 response');
    assert.equal(ws.status, 101, `upgrade answered ${ws.status}`);
    const open = await ws.until(() => ws.messages.find((m) => m[0] === '0'), 3000, 'the Engine.IO open packet');
    ws.open = JSON.parse(open.slice(1));
    ws.sid = ws.open.sid;
    if (join) {
      ws.send('40');
      await ws.until(() => ws.messages.find((m) => m.startsWith('40')), 3000, 'the Socket.IO CONNECT reply');
    }
    return ws;
  }

  onData(c) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, c]) : c;
    if (!this.headDone) {
      const i = this.buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      const head = this.buf.subarray(0, i).toString('latin1');
      this.status = Number((head.match(/^HTTP\/1\.1 (\d{3})/) || [])[1]) || null;
      const accept = (head.match(/\r\nSec-WebSocket-Accept: *(\S+)/i) || [])[1];
      const want = crypto.createHash('sha1').update(this.key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      this.acceptOk = accept === want;
      this.headDone = true;
      this.buf = this.buf.subarray(i + 4);
    }
    for (;;) {
      if (this.buf.length < 2) break;
      const b0 = this.buf[0], b1 = this.buf[1];
      let len = b1 & 0x7f, off = 2;
      if (len === 126) { if (this.buf.length < 4) break; len = this.buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (this.buf.length < 10) break; len = Number(this.buf.readBigUInt64BE(2)); off = 10; }
      if (b1 & 0x80) off += 4; // servers do not mask; tolerate it anyway
      if (this.buf.length < off + len) break;
      const payload = this.buf.subarray(off, off + len);
      this.buf = this.buf.subarray(off + len);
      const f = { opcode: b0 & 0x0f, fin: !!(b0 & 0x80), rsv: (b0 >> 4) & 7, len, masked: !!(b1 & 0x80) };
      if (len <= 65536) f.payload = Buffer.from(payload);
      this.frames.push(f);
      if (f.opcode === 8) {
        this.closeFrame = {
          code: len >= 2 ? payload.readUInt16BE(0) : 1005,
          reason: len > 2 ? payload.subarray(2).toString() : '',
          t: now(),
        };
      } else if (f.opcode === 1) {
        const m = payload.toString();
        this.messages.push(m);
        if (m === '2' && this.answerPings && !this.sock.destroyed) this.send('3');
      }
    }
    this.poke();
  }

  poke() { for (const w of this.waiters) w(); }

  /** Resolve pred()'s first truthy value; reject after ms. */
  until(pred, ms, what) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = pred();
        if (v) { cleanup(); resolve(v); }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timeout (${ms} ms) waiting for ${what}; status ${this.status}, ` +
          `${this.frames.length} frames, close ${JSON.stringify(this.closeFrame)}, tcp closed ${!!this.tcpClosed}`));
      }, ms);
      const cleanup = () => { clearTimeout(timer); this.waiters.delete(check); };
      this.waiters.add(check);
      check();
    });
  }

  send(text, o = {}) { this.sock.write(frame({ opcode: 1, payload: Buffer.from(text), ...o })); }
  write(bytes) { if (!this.sock.destroyed) this.sock.write(bytes); }

  /** { code, tClose, closeMs, tcpMs } once the server closed (frame and/or TCP), or after ms. */
  async outcome(ms = 3000, t0 = now()) {
    await raceTimeout(this.closed, ms);
    return {
      code: this.closeFrame ? this.closeFrame.code : null,
      reason: this.closeFrame ? this.closeFrame.reason : null,
      closeMs: this.closeFrame ? Math.round(this.closeFrame.t - t0) : null,
      tcpMs: this.tcpClosed ? Math.round(this.tcpClosed - t0) : null,
      how: this.tcpClosed ? (this.error ? `${this.error}` : this.fin ? 'FIN' : 'closed') : 'open',
    };
  }
}

/** Write bytes one at a time, gapMs apart, each in its own segment. */
async function trickle(sock, bytes, gapMs, { stop = () => false } = {}) {
  for (let i = 0; i < bytes.length; i++) {
    if (sock.destroyed || !sock.writable || stop()) return i;
    sock.write(bytes.subarray(i, i + 1));
    await sleep(gapMs);
  }
  return bytes.length;
}

/** A plain HTTP request (node http, no keep-alive). Resolves { status, body, headers }. */
function httpReq(method, p, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: daemon.port, path: p, method, agent: false,
      headers: body !== undefined ? { 'Content-Type': 'text/plain;charset=UTF-8', ...headers } : headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString(), headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('http timeout')));
    if (body !== undefined) req.end(body); else req.end();
  });
}

const setPad = (n) => db.query('UPDATE hostile_pad SET n = $1', [n]);

// ------------------------------------------------------------ battery ------

test('baseline: the good client is served; RSS and descriptors', async () => {
  await served('baseline');
  await served('baseline');
  await sleep(300);
  baseline = { rss: rssKb(), fds: fdCount() };
  const t = good.io.engine.transport;
  console.log(`baseline: daemon pid ${daemon.pid} RSS ${mb(baseline.rss)} MB, ${baseline.fds} open fds; good client ` +
    `transport ${t.name}, extensions ${JSON.stringify((t.ws && t.ws.extensions) || '')}; ` +
    `good client latency ${latencies.baseline.join(', ')} ms`);
});

test('slowloris: 200 sockets trickling headers (1 byte / 100 ms) get 408 at --request-timeout', { timeout: 20000 }, async () => {
  const N = 200;
  const head = Buffer.from('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + 'a'.repeat(200));
  const t0 = now();
  const socks = await Promise.all(Array.from({ length: N }, () => tcp()));
  const tConnected = now() - t0;
  const results = socks.map((s) => {
    const r = watch(s, now());
    r.sent = trickle(s, head, 100, { stop: () => r.tEnd !== null || now() - t0 > 6000 });
    return r;
  });
  // The good client, while the 200 trickle.
  await sleep(300);
  const during = await served('slowloris (during)');
  await Promise.all(results.map((r) => raceTimeout(r.done, 6000)));
  const sent = await Promise.all(results.map((r) => r.sent));
  for (const s of socks) s.destroy();
  const ends = results.map((r) => r.tEnd ?? Infinity);
  const statuses = {};
  for (const r of results) statuses[r.status] = (statuses[r.status] || 0) + 1;
  const after = await served('slowloris');
  console.log(`slowloris x${N} (connected in ${tConnected.toFixed(0)} ms): statuses ${JSON.stringify(statuses)}; ` +
    `closed after ${JSON.stringify(summarize(ends.filter(Number.isFinite)))} ms; bytes trickled per socket ` +
    `${JSON.stringify(summarize(sent))}; good client ${during} ms during, ${after} ms after`);
  const held = results.filter((r) => r.tEnd === null);
  assert.equal(held.length, 0, `${held.length} slowloris sockets still open after 6 s`);
  for (const r of results) {
    assert.ok(r.status === 408 || (r.status === null && r.bytes === 0),
      `answer 408 or a bare close, got ${JSON.stringify(r.head())}`);
    assert.ok(r.tEnd >= REQUEST_TIMEOUT - 100 && r.tEnd <= REQUEST_TIMEOUT + 1500,
      `closed at the request timeout (${REQUEST_TIMEOUT} ms), not at ${r.tEnd} ms`);
  }
});

test('byte-at-a-time requests that finish in time are served', { timeout: 20000 }, async () => {
  // HTTP: GET /healthz, one byte per segment, 5 ms apart (well within --request-timeout).
  const req = Buffer.from('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  const s = await tcp();
  let t0 = now();
  const r = watch(s, t0);
  await trickle(s, req, 5);
  await raceTimeout(r.done, 3000);
  s.destroy();
  const body = r.text().split('\r\n\r\n')[1] || '';
  console.log(`GET /healthz in ${req.length} one-byte segments (${(now() - t0).toFixed(0)} ms): ` +
    `"${r.head()}" body ${JSON.stringify(body.slice(0, 120))}`);
  assert.equal(r.status, 200, `got ${JSON.stringify(r.head())}`);
  assert.doesNotThrow(() => JSON.parse(body), 'a JSON body');

  // WebSocket: the upgrade head one byte at a time (1 ms apart: the whole
  // head must still arrive within --request-timeout), then the
  // Socket.IO CONNECT and an event, each frame one byte at a time.
  t0 = now();
  const ws = await RawWs.open({ join: false, headWriter: (sock, bytes) => trickle(sock, bytes, 1) });
  const tHead = now() - t0;
  await trickle(ws.sock, frame({ payload: Buffer.from('40') }), 10);
  await ws.until(() => ws.messages.find((m) => m.startsWith('40')), 3000, 'the CONNECT reply');
  await ws.until(() => ws.messages.find((m) => m.startsWith('42["dashboardDataUpdate"')), 3000, 'the pushed snapshot');
  const n = ws.messages.filter((m) => m.startsWith('42["dashboardDataUpdate"')).length;
  await trickle(ws.sock, frame({ payload: Buffer.from('42["requestDashboardData"]') }), 5);
  const reply = await ws.until(() => ws.messages.filter((m) => m.startsWith('42["dashboardDataUpdate"'))[n],
    3000, 'the answer to requestDashboardData');
  const doc = JSON.parse(reply.slice(2))[1];
  console.log(`WebSocket upgrade byte by byte in ${tHead.toFixed(0)} ms (accept key ok: ${ws.acceptOk}); ` +
    `CONNECT and requestDashboardData frames byte by byte: answered with version ${doc.version}, v ${doc.v}`);
  assert.ok(ws.acceptOk, 'Sec-WebSocket-Accept is right');
  assert.equal(Number(doc.v), saleIds.at(-1), 'the current document');
  ws.sock.destroy();
  await served('byte-at-a-time');
});

test('100 MB header stream: 431 after --max-header-bytes, closed by the lingering close, nothing buffered (RSS)', { timeout: 30000 }, async () => {
  const TOTAL = 100 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 'a');
  const rss0 = rssKb();
  const sampler = rssSampler();
  const mark = daemon.mark();
  // allowHalfOpen: a hostile writer does not stop at the server's FIN.
  const s = await tcp({ allowHalfOpen: true });
  const port = s.localPort;
  const t0 = now();
  const r = watch(s, t0);
  let sent = 0, sentAt431 = null, t431 = null, tFail = null, probes = 0;
  s.on('data', () => { if (t431 === null && r.status !== null) { t431 = Math.round(now() - t0); sentAt431 = sent; } });
  const fail = () => { if (tFail === null) tFail = Math.round(now() - t0); };
  s.on('error', fail);
  s.on('close', fail);
  s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Flood: ');
  // The good client while the flood runs.
  const goodDuring = (async () => { await sleep(20); return served('100 MB header stream (during)'); })();
  // As fast as the socket takes it; once all 100 MB are out, one byte every
  // 50 ms to see when the server has really closed (EPIPE / ECONNRESET).
  while (tFail === null && now() - t0 < 10000) {
    if (sent < TOTAL) {
      const ok = s.write(chunk);
      sent += chunk.length;
      if (!ok) await Promise.race([new Promise((res) => s.once('drain', res)), r.done]);
    } else {
      s.write('a');
      probes++;
      await sleep(50);
    }
  }
  const tWritten = Math.round(now() - t0);
  const peak = sampler.stop();
  s.destroy();
  const during = await goodDuring;
  const rss1 = rssKb();
  const after = await served('100 MB header stream');
  const closedLine = peerLog(port, mark).find((l) => /connection closed/.test(l));
  const tLog = (l) => (l ? Date.parse(l.slice(0, 24)) : NaN);
  const lingerMs = tLog(closedLine) - tLog(peerLog(port, mark).find((l) => /http 431/.test(l)));
  console.log(`100 MB header stream: "${r.head()}" at ${t431} ms, ${(sentAt431 / 1048576).toFixed(1)} MB handed to the ` +
    `socket by then; ${(sent / 1048576).toFixed(1)} MB handed to the socket in all (${sent >= TOTAL ? 'all of it' : 'stopped by the close'}), ` +
    `${probes} probe bytes after it; server FIN at ${r.tEnd} ms, connection refused writes (${r.error || 'close'}) at ${tFail} ms ` +
    `(writer loop ended at ${tWritten} ms); daemon closed it ${lingerMs} ms after the 431 (lingering close, reading and ` +
    `discarding); RSS ${mb(rss0)} -> peak ${mb(peak)} -> ${mb(rss1)} MB; good client ${during} ms during, ${after} ms after; ` +
    `daemon: ${peerLog(port, mark).map((l) => l.replace(/^\S+ /, '')).join(' | ') || '-'}`);
  assert.equal(r.status, 431, `got ${JSON.stringify(r.head())}`);
  assert.ok(t431 !== null && t431 < 1000, `431 answered early (at ${t431} ms)`);
  assert.ok(tFail !== null && tFail - t431 <= 3000, `connection closed within the lingering close (at ${tFail} ms)`);
  assert.ok(peak - rss0 < 4 * 1024, `no buffering: RSS peak +${mb(peak - rss0)} MB`);
});

// Each framing violation on its own joined WebSocket: the expected close code,
// then the TCP connection closed by the server.
async function framingCase(name, bytes, codes, { rssCheck = false, wait = 3000 } = {}) {
  const ws = await RawWs.open();
  const mark = daemon.mark();
  const rss0 = rssKb();
  const sampler = rssCheck ? rssSampler() : null;
  const t0 = now();
  const b0 = ws.bytes, f0 = ws.frames.length;
  ws.write(bytes);
  const o = await ws.outcome(wait, t0);
  const after = ws.frames.slice(f0).map((f) => `op ${f.opcode} len ${f.len}`);
  const peak = sampler ? sampler.stop() : null;
  ws.sock.destroy();
  const lat = await served(name);
  const lines = peerLog(ws.port, mark).map((l) => l.replace(/^.*?(websocket closed|close received|client disconnected)/, '$1'));
  console.log(`${name}: close ${o.code ?? 'none'} ${JSON.stringify(o.reason)} at ${o.closeMs} ms, TCP closed (${o.how}) at ${o.tcpMs} ms, ` +
    `${ws.bytes - b0} bytes received after it (${after.length ? after.join(', ') : 'no frame'})` +
    `${rssCheck ? `; RSS ${mb(rss0)} -> peak ${mb(peak)} MB` : ''}; good client ${lat} ms; daemon: ${lines.join(' | ')}`);
  assert.ok(codes.includes(o.code), `${name}: close code ${codes.join(' or ')}, got ${o.code} ` +
    `(frames ${JSON.stringify(ws.frames.slice(-3).map((f) => ({ op: f.opcode, len: f.len })))})`);
  assert.ok(o.tcpMs !== null, `${name}: the server closed the TCP connection within ${wait} ms`);
  if (rssCheck) assert.ok(peak - rss0 < 2048, `${name}: no allocation, RSS +${mb(peak - rss0)} MB`);
  return o;
}

// Each case is a subtest: every case runs and reports, even after a failure.
const cases = (t, list) => list.reduce((p, [name, bytes, codes, o]) =>
  p.then(() => t.test(name, () => framingCase(name, bytes, codes, o))), Promise.resolve());

test('a frame header announcing 2^63-1 bytes: close 1009 (or 1002), nothing allocated', { timeout: 20000 }, async (t) => {
  await cases(t, [
    ['frame announcing 2^63-1 bytes', Buffer.concat([frame({ opcode: 1, announce: (1n << 63n) - 1n }), crypto.randomBytes(4096)]),
      [1009, 1002], { rssCheck: true }],
    // The issue's "2^63 bytes": the most significant bit of the 64-bit
    // length set, which RFC 6455 5.2 forbids.
    ['frame announcing 2^63 bytes', Buffer.concat([frame({ opcode: 2, announce: 1n << 63n }), crypto.randomBytes(4096)]),
      [1002, 1009], { rssCheck: true }],
  ]);
});

test('unmasked client frames: close 1002', { timeout: 20000 }, async (t) => {
  await cases(t, [
    ['unmasked text frame', frame({ payload: '42["requestDashboardData"]', mask: false }), [1002]],
    ['unmasked ping', frame({ opcode: 9, payload: 'x', mask: false }), [1002]],
  ]);
});

test('invalid UTF-8 in a text frame: close 1007', { timeout: 20000 }, async (t) => {
  const bad = (b) => frame({ payload: Buffer.concat([Buffer.from('42["'), Buffer.from(b), Buffer.from('"]')]) });
  await cases(t, [
    ['invalid UTF-8 (lone 0xFF)', bad([0xff]), [1007]],
    ['invalid UTF-8 (truncated sequence)', bad([0xc3]), [1007]],
    ['invalid UTF-8 (overlong "/")', bad([0xc0, 0xaf]), [1007]],
    ['invalid UTF-8 (UTF-16 surrogate)', bad([0xed, 0xa0, 0x80]), [1007]],
    // Two fragments, each fine on its own, invalid where they join.
    ['invalid UTF-8 across fragments', Buffer.concat([
      frame({ fin: false, payload: Buffer.concat([Buffer.from('42["'), Buffer.from([0xe2, 0x82])]) }),
      frame({ opcode: 0, payload: Buffer.from([0x28, 0x22, 0x5d]) }),
    ]), [1007]],
  ]);
});

test('control frames: fragmented (FIN=0) or over 125 bytes: close 1002; a ping inside a fragmented message is fine', { timeout: 20000 }, async (t) => {
  await cases(t, [
    ['ping with FIN=0', frame({ opcode: 9, fin: false, payload: 'a' }), [1002]],
    ['ping with FIN=0 then a continuation', Buffer.concat([
      frame({ opcode: 9, fin: false, payload: 'a' }), frame({ opcode: 0, payload: 'b' })]), [1002]],
    ['close with FIN=0', frame({ opcode: 8, fin: false, payload: Buffer.from([0x03, 0xe8]) }), [1002]],
    ['ping of 126 bytes', frame({ opcode: 9, payload: Buffer.alloc(126, 'p') }), [1002]],
    ['pong of 1000 bytes', frame({ opcode: 10, payload: Buffer.alloc(1000, 'p') }), [1002]],
    ['close of 200 bytes', frame({ opcode: 8, payload: Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.alloc(198, 'r')]) }), [1002]],
  ]);

  await t.test('control: a ping between the fragments of a message (allowed by RFC 6455 5.4)', async () => {
    const ws = await RawWs.open();
    const n = ws.messages.filter((m) => m.startsWith('42["dashboardDataUpdate"')).length;
    ws.write(frame({ fin: false, payload: '42["requestDash' }));
    ws.write(frame({ opcode: 9, payload: 'hello' }));
    ws.write(frame({ opcode: 0, payload: 'boardData"]' }));
    const pong = await ws.until(() => ws.frames.find((f) => f.opcode === 10), 3000, 'the pong');
    await ws.until(() => ws.messages.filter((m) => m.startsWith('42["dashboardDataUpdate"'))[n], 3000, 'the reassembled request answered');
    console.log(`ping between two fragments: pong ${JSON.stringify(pong.payload.toString())}, the message was answered`);
    assert.equal(pong.payload.toString(), 'hello');
    assert.equal(ws.closeFrame, null);
    ws.sock.destroy();
    await served('control frames');
  });
});

test('other framing violations: close 1002', { timeout: 20000 }, async (t) => {
  await cases(t, [
    ['RSV1 without permessage-deflate', frame({ rsv: 4, payload: '42["requestDashboardData"]' }), [1002]],
    ['RSV2 set', frame({ rsv: 2, payload: '42["requestDashboardData"]' }), [1002]],
    ['reserved opcode 0x3', frame({ opcode: 3, payload: 'x' }), [1002]],
    ['reserved opcode 0xB', frame({ opcode: 0xb, payload: 'x' }), [1002]],
    ['continuation without a start', frame({ opcode: 0, payload: '42["requestDashboardData"]' }), [1002]],
    ['new text frame inside a fragmented message', Buffer.concat([
      frame({ fin: false, payload: '42["a' }), frame({ payload: '42["b"]' })]), [1002]],
  ]);
});

test('a client that stops reading while 1 MB snapshots are pushed is dropped; the good client stays on time', { timeout: 30000 }, async () => {
  const mark = daemon.mark();
  const ws = await RawWs.open();
  const rss0 = rssKb();
  const sampler = rssSampler();
  await setPad(BIG_PAD);
  ws.sock.pause();                     // stops reading: the kernel buffers fill, then the daemon's queue
  const tPause = now();
  const bytesAtPause = ws.bytes;
  const dropRe = goneRe(ws.sid);
  const lat = [];
  let drop = null;
  for (let i = 0; i < 10 && !drop; i++) {
    lat.push(await served('stalled reader (during)'));
    drop = daemon.grep(dropRe, mark)[0] || null;
  }
  if (!drop) {
    try { drop = (await daemon.waitForLog(dropRe, 3000, { since: mark })).line; } catch { drop = null; }
  }
  const tDrop = drop ? now() - tPause : null;
  const overflow = daemon.grep(/client not reading, dropped/, mark).filter((l) => new RegExp(`:${ws.port}\\b`).test(l));
  const pingTo = daemon.grep(new RegExp(`ping timeout sid=${ws.sid.replace(/[^\w-]/g, '\\$&')}`), mark);
  const peak = sampler.stop();
  // Read what the kernel held for it, then see the end.
  ws.sock.resume();
  await raceTimeout(ws.closed, 5000);
  const snapshotsSeen = ws.frames.filter((f) => f.opcode === 1 && f.len > BIG_PAD).length;
  await setPad(SMALL_PAD);
  const after = await served('stalled reader');
  console.log(`stalled reader (sid ${ws.sid}, port ${ws.port}): ${lat.length} sales of ~1 MB pushed; ` +
    `${drop ? `dropped ${Math.round(tDrop)} ms after it stopped reading` : 'NOT dropped'}; ` +
    `mechanism: ${overflow.length ? `--max-pending-bytes (${overflow[0].replace(/^.*client not reading/, 'client not reading')})` : ''}` +
    `${pingTo.length ? 'ping timeout' : ''}; disconnect line: ${drop ? drop.replace(/^.*client disconnected/, 'client disconnected') : '-'}; ` +
    `it received ${bytesAtPause} bytes before the pause, ${((ws.bytes - bytesAtPause) / 1048576).toFixed(2)} MB ` +
    `(${snapshotsSeen} complete 1 MB snapshots) from kernel buffers after resuming, TCP closed: ${!!ws.tcpClosed}; ` +
    `daemon RSS ${mb(rss0)} -> peak ${mb(peak)} MB; good client latencies during: ${lat.join(', ')} ms (max ${Math.max(...lat)}), after: ${after} ms`);
  console.log(`stalled reader, daemon: ${peerLog(ws.port, mark).join(' | ')}`);
  ws.sock.destroy();
  assert.ok(drop, `the daemon dropped the client that stopped reading\n${daemon.logTail(20)}`);
  assert.ok(tDrop <= PING_INTERVAL + PING_TIMEOUT + (SANITIZED ? 5000 : 2000), `dropped in time (${Math.round(tDrop)} ms)`);
  assert.ok(Math.max(...lat) < ON_TIME_MS, 'the good client stayed on time');
  // Under AddressSanitizer freed memory sits in quarantine and RSS says
  // nothing about leaks (LeakSanitizer does): the bound is for real builds.
  if (!SANITIZED) assert.ok(peak - rss0 < 32 * 1024, `the daemon's memory stayed bounded (+${mb(peak - rss0)} MB)`);
});

test('1,000 WebSocket connect/disconnect cycles (handshake, 40, close) in a few seconds', { timeout: 60000 }, async () => {
  const N = 1000, WORKERS = 20;
  const url = `ws://127.0.0.1:${daemon.port}/socket.io/?EIO=4&transport=websocket`;
  let ok = 0, failed = 0, started = 0;
  const failures = [];
  const cycle = (i) => new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    let joined = false, finished = false;
    const done = (why) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (joined) ok++; else { failed++; if (failures.length < 5) failures.push(`#${i}: ${why}`); }
      resolve();
    };
    const timer = setTimeout(() => { ws.terminate(); done('timeout'); }, 5000);
    ws.on('message', (d) => {
      const m = d.toString();
      if (m[0] === '0') ws.send('40');
      else if (m.startsWith('40') && !joined) {
        joined = true;
        // Half close properly, half drop the TCP connection.
        if (i % 2) ws.close(1000); else ws.terminate();
      }
    });
    ws.on('error', (e) => { if (!joined) done(e.message); });
    ws.on('close', (code) => done(`close ${code} before the CONNECT reply`));
  });
  const t0 = now();
  let running = true;
  const lat = [];
  const goodLoop = (async () => {
    while (running) { lat.push(await served('1000 cycles (during)')); await sleep(50); }
  })();
  await Promise.all(Array.from({ length: WORKERS }, async () => {
    while (started < N) await cycle(started++);
  }));
  const ms = now() - t0;
  running = false;
  await goodLoop;
  await sleep(300);
  const fds = fdCount();
  const after = await served('1000 cycles');
  console.log(`${N} connect/40/disconnect cycles (${WORKERS} at a time): ${ok} ok, ${failed} failed in ${ms.toFixed(0)} ms ` +
    `(${(N / (ms / 1000)).toFixed(0)}/s); daemon fds right after: ${fds} (baseline ${baseline.fds}); ` +
    `good client during: ${JSON.stringify(summarize(lat))} ms, after: ${after} ms` +
    `${failures.length ? `; failures: ${failures.join('; ')}` : ''}`);
  assert.equal(ok, N, `every cycle completed (${failures.join('; ')})`);
  assert.ok(ms < 15000, `in a few seconds (${ms.toFixed(0)} ms)`);
  assert.ok(Math.max(...lat) < ON_TIME_MS, 'the good client stayed on time');
});

test('half-open sockets are reaped by the timeouts', { timeout: 30000 }, async () => {
  const mark = daemon.mark();
  const t0 = now();
  // 50 TCP sockets that send half a WebSocket upgrade head and go silent.
  const half = await Promise.all(Array.from({ length: 50 }, async () => {
    const s = await tcp();
    const r = watch(s, now());
    s.write('GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
    return { s, r };
  }));
  // 20 WebSocket clients that join, keep reading, and never answer a ping.
  const mute = await Promise.all(Array.from({ length: 20 }, async () => {
    const ws = await RawWs.open();
    ws.answerPings = false;
    ws.tMute = now();
    return ws;
  }));
  // 10 WebSocket clients that upgrade, then say nothing at all (no 40, no pong).
  const silent = await Promise.all(Array.from({ length: 10 }, async () => {
    const ws = await RawWs.open({ join: false });
    ws.answerPings = false;
    ws.tMute = now();
    return ws;
  }));
  await sleep(200);
  const during = await served('half-open (during)');
  await Promise.all([...half.map((h) => raceTimeout(h.r.done, 5000)), ...mute.map((w) => raceTimeout(w.closed, 5000)),
    ...silent.map((w) => raceTimeout(w.closed, 5000))]);
  const halfEnds = half.map((h) => h.r.tEnd);
  // When the server's close frame came (else its TCP close), and its TCP close.
  const endOf = (w) => { const t = w.closeFrame ? w.closeFrame.t : w.tcpClosed; return t ? Math.round(t - w.tMute) : null; };
  const tcpOf = (w) => (w.tcpClosed ? Math.round(w.tcpClosed - w.tMute) : null);
  const muteEnds = mute.map(endOf), silentEnds = silent.map(endOf);
  const codes = (list) => [...new Set(list.map((w) => (w.closeFrame ? w.closeFrame.code : 'none')))].join(',');
  await logsArrived([...mute, ...silent].map((w) => goneRe(w.sid)), mark);
  const pingTimeouts = mute.filter((w) => daemon.grep(new RegExp(`ping timeout sid=${w.sid.replace(/[^\w-]/g, '\\$&')}`), mark).length).length;
  const reasons = (list) => [...new Set(list.map((w) => {
    const l = daemon.grep(goneRe(w.sid), mark)[0];
    return l ? l.replace(/^.*reason=/, '') : 'no disconnect line';
  }))].join(', ');
  for (const h of half) h.s.destroy();
  for (const w of [...mute, ...silent]) w.sock.destroy();
  const after = await served('half-open');
  console.log(`half-open: 50 half upgrade heads -> ${JSON.stringify([...new Set(half.map((h) => h.r.status))])}, closed after ` +
    `${JSON.stringify(summarize(halfEnds.filter((x) => x !== null)))} ms; 20 joined clients that never pong -> close ` +
    `${codes(mute)} after ${JSON.stringify(summarize(muteEnds.filter((x) => x !== null)))} ms, TCP closed after ` +
    `${JSON.stringify(summarize(mute.map(tcpOf).filter((x) => x !== null)))} ms (${pingTimeouts} "ping timeout" ` +
    `lines; reasons: ${reasons(mute)}); 10 upgraded clients that never join -> close ${codes(silent)} after ` +
    `${JSON.stringify(summarize(silentEnds.filter((x) => x !== null)))} ms, TCP closed after ` +
    `${JSON.stringify(summarize(silent.map(tcpOf).filter((x) => x !== null)))} ms (reasons: ${reasons(silent)}); ` +
    `${(now() - t0).toFixed(0)} ms in all; good client ${during} ms during, ${after} ms after`);
  for (const h of half) {
    assert.equal(h.r.status, 408, `half an upgrade head: 408, got ${JSON.stringify(h.r.head())}`);
    assert.ok(h.r.tEnd !== null && h.r.tEnd <= REQUEST_TIMEOUT + 1500, `half an upgrade head closed at ${h.r.tEnd} ms`);
  }
  for (const w of mute) {
    assert.ok(w.tcpClosed, 'a client that never answers pings is closed');
    assert.ok(endOf(w) <= PING_INTERVAL + PING_TIMEOUT + 500,
      `closed by the ping timeout (close after ${endOf(w)} ms)`);
    // The server waits up to 1 s for the close handshake, then drops the TCP connection.
    assert.ok(tcpOf(w) <= PING_INTERVAL + PING_TIMEOUT + 2000, `TCP closed after ${tcpOf(w)} ms`);
  }
  assert.equal(pingTimeouts, mute.length, 'every mute client logged as a ping timeout');
  for (const w of silent) {
    assert.ok(w.tcpClosed && endOf(w) <= Math.max(CONNECT_TIMEOUT, PING_INTERVAL + PING_TIMEOUT) + 500,
      `a WebSocket that never joins is closed by the connect or ping timeout (after ${endOf(w)} ms)`);
  }
});

test('polling sessions abandoned mid-way are reaped; a stalled POST body gets 408', { timeout: 30000 }, async () => {
  const mark = daemon.mark();
  const base = '/socket.io/?EIO=4&transport=polling';
  const handshake = async () => {
    const r = await httpReq('GET', base);
    assert.equal(r.status, 200, `polling handshake: ${r.status} ${r.body}`);
    return JSON.parse(r.body.slice(1)).sid;
  };
  // (a) joined, read the first answer, then never polls again.
  const sidA = await handshake();
  const postA = await httpReq('POST', `${base}&sid=${sidA}`, '40');
  const getA = await httpReq('GET', `${base}&sid=${sidA}`);
  const tA = now();
  // (b) joined, a GET held, then the client vanishes with the GET pending.
  const sidB = await handshake();
  await httpReq('POST', `${base}&sid=${sidB}`, '40');
  await httpReq('GET', `${base}&sid=${sidB}`); // the CONNECT reply and the snapshot
  const held = await tcp();
  const heldR = watch(held, now());
  held.write(`GET ${base}&sid=${sidB} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  await sleep(100);
  const heldAnsweredBeforeVanish = heldR.bytes > 0;
  held.destroy();
  const tB = now();
  // (c) a POST whose body stops half-way.
  const sidC = await handshake();
  const s = await tcp();
  const tC0 = now();
  const r = watch(s, tC0);
  s.write(`POST ${base}&sid=${sidC} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\n` +
    'Content-Length: 100\r\n\r\n40' + 'x'.repeat(30));
  await raceTimeout(r.done, 4000);
  s.destroy();

  const waitGone = async (sid, t) => {
    try {
      const m = await daemon.waitForLog(goneRe(sid), 4000, { since: mark });
      return { ms: Math.round(now() - t), line: m.line.replace(/^.*client disconnected/, 'client disconnected') };
    } catch { return null; }
  };
  const [goneA, goneB] = await Promise.all([waitGone(sidA, tA), waitGone(sidB, tB)]);
  const laterA = await httpReq('GET', `${base}&sid=${sidA}`);
  const laterB = await httpReq('GET', `${base}&sid=${sidB}`);
  const lat = await served('abandoned polling');
  console.log(`polling (a) joined (POST ${postA.status} ${postA.body}, GET ${getA.status} ${JSON.stringify(getA.body.slice(0, 40))}...) ` +
    `then abandoned: ${goneA ? `reaped after ${goneA.ms} ms (${goneA.line})` : 'NOT reaped in 4 s'}; a later GET: ` +
    `${laterA.status} ${laterA.body}`);
  console.log(`polling (b) vanished with a held GET (answered before: ${heldAnsweredBeforeVanish}): ` +
    `${goneB ? `reaped after ${goneB.ms} ms (${goneB.line})` : 'NOT reaped in 4 s'}; a later GET: ${laterB.status} ${laterB.body}`);
  console.log(`polling (c) POST body stalled at 32 of 100 bytes: "${r.head()}" at ${r.tData} ms, closed at ${r.tEnd} ms; ` +
    `good client ${lat} ms`);
  assert.ok(goneA && goneA.ms <= PING_INTERVAL + PING_TIMEOUT + 1500, 'an abandoned polling session is closed by the ping timeout');
  // The daemon caps its log at 200 lines a second per level; when lines were
  // suppressed the disconnect line may be among them: then the session must
  // at least be gone.
  if (!goneB && daemon.logs.slice(mark).some((l) => /lines suppressed/.test(l))) {
    console.log('polling (b): its disconnect line fell under the log rate limit; checking that the session is gone instead');
    assert.equal(laterB.status, 400, 'the vanished session is gone');
  } else {
    assert.ok(goneB && goneB.ms <= PING_INTERVAL + PING_TIMEOUT + 1500, 'a session whose held GET vanished is closed by the ping timeout');
  }
  assert.equal(laterA.status, 400);
  assert.deepEqual(JSON.parse(laterA.body), { code: 1, message: 'Session ID unknown' });
  assert.equal(laterB.status, 400);
  assert.equal(r.status, 408, `stalled body: 408, got ${JSON.stringify(r.head())}`);
  assert.ok(r.tEnd !== null && r.tEnd >= REQUEST_TIMEOUT - 100 && r.tEnd <= REQUEST_TIMEOUT + 1500,
    `closed at the request timeout (${r.tEnd} ms)`);
});

test('a POST body larger than --max-payload: 413 and close, nothing buffered', { timeout: 30000 }, async () => {
  const base = '/socket.io/?EIO=4&transport=polling';
  const hs = await httpReq('GET', base);
  const sid = JSON.parse(hs.body.slice(1)).sid;
  await httpReq('POST', `${base}&sid=${sid}`, '40');
  const rss0 = rssKb();
  const sampler = rssSampler();
  const results = [];
  for (const [name, len, send] of [
    ['Content-Length max+1, body sent', MAX_PAYLOAD + 1, MAX_PAYLOAD + 1],
    ['Content-Length 1 MB, body sent', 1 << 20, 1 << 20],
    ['Content-Length 10 GB, 64 KB sent', 10 * 1024 ** 3, 64 * 1024],
  ]) {
    const s = await tcp();
    const r = watch(s, now());
    s.write(`POST ${base}&sid=${sid} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\n` +
      `Content-Length: ${len}\r\n\r\n`);
    s.write(Buffer.alloc(send, '4'));
    await raceTimeout(r.done, 4000);
    s.destroy();
    results.push({ name, r });
  }
  const peak = sampler.stop();
  const after = await httpReq('GET', `${base}&sid=${sid}`).catch((e) => ({ status: e.message, body: '' }));
  const lat = await served('oversized POST');
  console.log(`oversized POST bodies (max ${MAX_PAYLOAD}): ${results.map(({ name, r }) =>
    `${name}: "${r.head()}" at ${r.tData} ms, closed at ${r.tClose} ms${r.error ? ` (${r.error})` : ''}`).join('; ')}; ` +
    `RSS ${mb(rss0)} -> peak ${mb(peak)} MB; the session afterwards: GET ${after.status} ${JSON.stringify(after.body.slice(0, 60))}; ` +
    `good client ${lat} ms`);
  for (const { name, r } of results) {
    assert.equal(r.status, 413, `${name}: got ${JSON.stringify(r.head())}`);
    assert.ok(r.tClose !== null, `${name}: connection closed`);
  }
  assert.ok(peak - rss0 < 4096, `nothing buffered: RSS +${mb(peak - rss0)} MB`);
});

test('after the battery: RSS near the start, no descriptor leak, the good client saw every sale in order', { timeout: 30000 }, async () => {
  // Let every timeout and lingering close run out.
  const t0 = now();
  let fds = fdCount();
  while (Math.abs(fds - baseline.fds) > 5 && now() - t0 < 8000) { await sleep(200); fds = fdCount(); }
  await sleep(Math.max(0, 1500 - (now() - t0)));
  fds = fdCount();
  const last = await served('final');
  const rss = rssKb();
  const versions = good.rec.updates.map((u) => Number(u.data.version));
  const vs = new Set(good.rec.updates.map((u) => Number(u.data.v)));
  const missing = saleIds.filter((id) => !vs.has(id));
  const notIncreasing = versions.filter((v, i) => i > 0 && v <= versions[i - 1]);
  const all = Object.values(latencies).flat();
  console.log(`good client latency per item (ms): ${Object.entries(latencies).map(([k, v]) => `${k}: ${v.length > 3
    ? JSON.stringify(summarize(v)) : v.join('/')}`).join('; ')}`);
  console.log(`good client overall: ${JSON.stringify(summarize(all))} ms over ${all.length} sales; ` +
    `${good.rec.updates.length} updates, versions ${versions[0]}..${versions.at(-1)}, ${good.rec.connects} connect(s), ` +
    `${good.rec.disconnects.length} disconnect(s), ${missing.length} of ${saleIds.length} sales missing`);
  console.log(`daemon RSS: before ${mb(baseline.rss)} MB, after ${mb(rss)} MB (${rss >= baseline.rss ? '+' : ''}${mb(rss - baseline.rss)} MB); ` +
    `open fds: before ${baseline.fds}, after ${fds} (settled ${(now() - t0).toFixed(0)} ms after the battery); ` +
    `last sale ${last} ms; sanitizer reports: ${daemon.sanitizerReport().length}`);
  if (!SANITIZED) assert.ok(rss <= baseline.rss + 20 * 1024, `RSS back near the start: +${mb(rss - baseline.rss)} MB`);
  assert.ok(Math.abs(fds - baseline.fds) <= 5, `no descriptor leak: ${baseline.fds} -> ${fds}`);
  assert.deepEqual(missing, [], 'the good client saw every sale');
  assert.deepEqual(notIncreasing, [], 'versions strictly increase');
  assert.equal(good.rec.connects, 1, 'one connection throughout');
  assert.deepEqual(good.rec.disconnects, []);
  assert.deepEqual(daemon.sanitizerReport(), []);
});
