// The project's own equivalents of the Socket.IO project's published
// conformance suites, run against tests/conformance-server:
//
//   eio #1..#24  engine.io-protocol test-suite (main), against /engine.io/
//   sio #1..#32  socket.io-protocol test-suite (main), against /socket.io/
//                (#1..#16 are its Engine.IO part, #17..#32 its Socket.IO part)
//   extra: ...   cases from docs/reference/socketio-protocol.md that the
//                suites do not cover (upgrade with transport=polling, CORS
//                preflight, 413, octet-stream, the real socket.io-client)
//
// The numbering and the expectations follow sections 3.4 and 3.5 of
// /work/shared/docs/reference/socketio-protocol.md. The suites' code is not
// used: these are independent tests, with robust waits (every WebSocket
// message is queued as it arrives, so frames sharing one TCP read are never
// lost, unlike the suites' waitFor).
//
// One conformance-server for the whole file (the tests run sequentially):
//   CONFORMANCE_SERVER  the binary (default <repo>/tests/conformance-server;
//                       build it with `make tests/conformance-server`)
//   CONFORMANCE_TRACE=1 print every test's client trace, passing ones too
//
// A failing test's error carries the client-side trace (every request,
// response, frame) and the server's debug log lines during that test.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(repoRoot, 'package.json'));
const WebSocket = require('ws');
const { io } = require('socket.io-client');

const serverPath = process.env.CONFORMANCE_SERVER || path.join(repoRoot, 'tests', 'conformance-server');
const traceAll = !!process.env.CONFORMANCE_TRACE;

// The configuration the suites assume (section 3.3) and the server has.
const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const MAX_PAYLOAD = 1000000;
const OPEN_KEYS = ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload'];

// ------------------------------------------------------------ server ------

let proc = null;
let port = 0;
let HTTP_BASE = '';
let WS_BASE = '';
let exitInfo = null;
const logs = []; // the server's stdout/stderr lines

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

function startServer(p) {
  return new Promise((resolve, reject) => {
    const child = spawn(serverPath, ['--port', String(p), '--log-level', 'debug'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      child.kill('SIGKILL');
      reject(new Error(`conformance-server did not log "listening on" within 10 s:\n${logs.join('\n')}`));
    }, 10000);
    const onLine = (line) => {
      logs.push(line);
      if (!done && /listening on 127\.0\.0\.1:\d+/.test(line)) {
        done = true;
        clearTimeout(timer);
        resolve(child);
      }
    };
    readline.createInterface({ input: child.stdout }).on('line', onLine);
    readline.createInterface({ input: child.stderr }).on('line', onLine);
    child.once('exit', (code, signal) => {
      exitInfo = `exit code ${code} signal ${signal}`;
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(new Error(`conformance-server exited before listening (${exitInfo}):\n${logs.join('\n')}`));
      }
    });
  });
}

process.on('exit', () => {
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    try { proc.kill('SIGKILL'); } catch { /* */ }
  }
});

before(async () => {
  if (!fs.existsSync(serverPath)) {
    throw new Error(`${serverPath} does not exist: build it with \`make tests/conformance-server\`, or set CONFORMANCE_SERVER`);
  }
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    port = await freePort();
    exitInfo = null;
    try {
      proc = await startServer(port);
      break;
    } catch (e) {
      lastErr = e;
      proc = null;
    }
  }
  if (!proc) throw lastErr;
  HTTP_BASE = `http://127.0.0.1:${port}`;
  WS_BASE = `ws://127.0.0.1:${port}`;
});

after(async () => {
  if (!proc || exitInfo) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(t);
});

// ------------------------------------------------------ test wrapper ------

let trace = [];
let t0 = 0;
let liveSockets = [];
let liveClients = [];

const now = () => performance.now();
const ms = (t) => `${(t - t0).toFixed(1)}ms`;
function note(s) {
  trace.push(`[${ms(now())}] ${s}`);
}
/** A note function bound to the current test (late events of a previous test's sockets stay out). */
function boundNote() {
  const tr = trace;
  const base = t0;
  return (s) => tr.push(`[${(now() - base).toFixed(1)}ms] ${s}`);
}
function show(v) {
  if (Buffer.isBuffer(v)) return `<binary ${v.length}: ${[...v.subarray(0, 32)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}${v.length > 32 ? ' …' : ''}>`;
  if (typeof v !== 'string') return String(v);
  return JSON.stringify(v.length > 300 ? `${v.slice(0, 300)}…(${v.length} chars)` : v);
}

/** One test per case; on failure the trace and the server log are appended to the error. */
function ctest(name, fn, opts = {}) {
  test(name, { timeout: opts.timeout ?? 10000, skip: opts.skip }, async (t) => {
    const mark = logs.length;
    trace = [];
    liveSockets = [];
    liveClients = [];
    t0 = now();
    try {
      if (exitInfo) throw new Error(`conformance-server is not running (${exitInfo})`);
      await fn();
    } catch (e) {
      await sleep(100); // let the server's log lines about the failure arrive
      const extra = `\n--- client trace ---\n${trace.join('\n')}\n--- conformance-server log during this test ---\n${logs.slice(mark).join('\n')}${exitInfo ? `\n--- conformance-server ${exitInfo}` : ''}`;
      if (e && typeof e === 'object' && typeof e.message === 'string') {
        try { e.message += extra; } catch { /* read-only */ }
        throw e;
      }
      throw new Error(String(e) + extra);
    } finally {
      if (traceAll) for (const l of trace) t.diagnostic(l);
      for (const c of liveClients) { try { c.disconnect(); } catch { /* */ } }
      for (const c of liveSockets) c.terminate();
    }
  });
}

// -------------------------------------------------------------- HTTP ------

function describeRes(r) {
  if (r.error) return `network error ${r.error}`;
  return `HTTP ${r.status} headers=${JSON.stringify(r.headers)} body=${show(r.body)}`;
}

/** fetch, never throws: { status, headers, body, at } or { status: 0, error }. */
async function http(method, urlPath, { body, headers, timeout = 3000 } = {}) {
  const sent = now();
  let r;
  try {
    const res = await fetch(HTTP_BASE + urlPath, { method, body, headers, signal: AbortSignal.timeout(timeout) });
    const text = await res.text();
    r = { status: res.status, headers: Object.fromEntries(res.headers), body: text };
  } catch (e) {
    r = { status: 0, error: `${e.name}: ${e.message}${e.cause ? ` (${e.cause.code || e.cause.message})` : ''}` };
  }
  r.sent = sent;
  r.at = now();
  note(`${method} ${urlPath}${body !== undefined ? ` body=${show(body)}` : ''} (sent at ${ms(sent)}) -> ${describeRes(r)}`);
  return r;
}

/**
 * A raw HTTP/1.1 exchange over one TCP connection (for bodies the server may
 * refuse before reading them, and for exact headers). Never throws.
 */
function rawHttp(method, urlPath, { headers = {}, body = null, timeout = 5000 } = {}) {
  return new Promise((resolve) => {
    const sent = now();
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    let writeError = null;
    let finished = false;
    const finish = (why) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      const buf = Buffer.concat(chunks);
      const sep = buf.indexOf('\r\n\r\n');
      let r;
      if (sep < 0) {
        r = { status: 0, error: `no complete response (${why}); got ${show(buf.toString('latin1'))}${writeError ? `; write error ${writeError}` : ''}` };
      } else {
        const head = buf.subarray(0, sep).toString('latin1').split('\r\n');
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]);
        const hdrs = {};
        for (const l of head.slice(1)) {
          const i = l.indexOf(':');
          if (i > 0) hdrs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        r = { status: m ? Number(m[1]) : 0, statusLine: head[0], headers: hdrs, body: buf.subarray(sep + 4).toString('utf8') };
        if (writeError) r.writeError = writeError;
      }
      r.sent = sent;
      r.at = now();
      note(`raw ${method} ${urlPath}${body !== null ? ` body=${show(typeof body === 'string' ? body : body.toString('latin1'))}` : ''} -> ${describeRes(r)}${r.writeError ? ` (write error ${r.writeError})` : ''}`);
      resolve(r);
    };
    const timer = setTimeout(() => finish('timeout'), timeout);
    sock.on('data', (c) => chunks.push(c));
    sock.on('end', () => finish('end'));
    sock.on('close', () => finish('close'));
    sock.on('error', (e) => { writeError = e.code || e.message; });
    sock.on('connect', () => {
      const b = body === null ? null : Buffer.isBuffer(body) ? body : Buffer.from(body);
      const h = { host: `127.0.0.1:${port}`, ...headers };
      if (b !== null) h['content-length'] = String(b.length);
      let req = `${method} ${urlPath} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(h)) req += `${k}: ${v}\r\n`;
      req += '\r\n';
      sock.write(req);
      if (b !== null) sock.write(b);
    });
  });
}

function expectStatus(r, expected, what) {
  const ok = Array.isArray(expected) ? expected.includes(r.status) : r.status === expected;
  assert.ok(ok, `${what}: expected HTTP ${Array.isArray(expected) ? expected.join(' or ') : expected}, got ${describeRes(r)}`);
}

// ---------------------------------------------------------- WebSocket ------

/** A WebSocket whose incoming messages are all queued (none lost). */
class Conn {
  constructor(url, opts = {}) {
    this.url = url;
    this.queue = [];
    this.closeInfo = null;
    this.wake = null;
    this.note = boundNote();
    const note = this.note;
    this.ws = new WebSocket(url, opts);
    liveSockets.push(this);
    note(`ws connect ${url.replace(WS_BASE, '')}`);
    this.opened = new Promise((resolve) => {
      this.ws.once('open', () => {
        note('ws open (101)');
        resolve({ ok: true });
      });
      this.ws.once('unexpected-response', (req, res) => {
        const parts = [];
        let reported = false;
        res.on('data', (c) => parts.push(c));
        const done = () => {
          if (reported) return;
          reported = true;
          const r = { ok: false, status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString('utf8') };
          note(`ws handshake refused: HTTP ${r.status} headers=${JSON.stringify(r.headers)} body=${show(r.body)}`);
          resolve(r);
          req.destroy();
        };
        res.on('end', done);
        res.on('error', done);
        res.on('close', done);
      });
      this.ws.once('close', () => resolve({ ok: false, error: 'closed before open' }));
    });
    this.ws.on('error', (e) => {
      this.error = e;
      note(`ws error ${e.message}`);
    });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString(), at: now() };
        note(`ws close code=${code} reason=${show(reason.toString())}`);
        resolve(this.closeInfo);
        this._wake();
      });
    });
    this.ws.on('message', (data, isBinary) => {
      const m = isBinary
        ? { binary: true, data: Buffer.isBuffer(data) ? Buffer.from(data) : Buffer.concat(data), at: now() }
        : { binary: false, data: data.toString('utf8'), at: now() };
      note(`ws< ${show(m.data)}`);
      this.queue.push(m);
      this._wake();
    });
  }

  _wake() {
    if (this.wake) {
      const w = this.wake;
      this.wake = null;
      w();
    }
  }

  send(data) {
    this.note(`ws> ${show(data)}`);
    this.ws.send(data);
  }

  terminate() {
    try { this.ws.terminate(); } catch { /* */ }
  }

  /** The next message; pings ("2") are skipped when skipPings. */
  async next({ timeout = 1500, skipPings = false, what = 'a message' } = {}) {
    const start = now();
    for (;;) {
      while (this.queue.length) {
        const m = this.queue.shift();
        if (skipPings && !m.binary && m.data === '2') continue;
        return m;
      }
      if (this.closeInfo) {
        throw new Error(`WebSocket closed (code ${this.closeInfo.code}) while waiting for ${what}`);
      }
      const left = timeout - (now() - start);
      if (left <= 0) throw new Error(`no ${what} within ${timeout} ms (WebSocket still open)`);
      await new Promise((resolve) => {
        const t = setTimeout(() => { this.wake = null; resolve(); }, left);
        this.wake = () => { clearTimeout(t); resolve(); };
      });
    }
  }

  async nextText(opts = {}) {
    const m = await this.next(opts);
    assert.equal(m.binary, false, `expected a text frame (${opts.what || 'a message'}), got ${show(m.data)}`);
    return m.data;
  }

  async nextBinary(opts = {}) {
    const m = await this.next(opts);
    assert.equal(m.binary, true, `expected a binary frame (${opts.what || 'a message'}), got text ${show(m.data)}`);
    return m.data;
  }

  /** Resolves with the close info; throws if still open after timeout ms. */
  async waitClose(timeout, what = 'the server to close the WebSocket') {
    let t;
    const timedOut = new Promise((resolve) => { t = setTimeout(() => resolve(null), timeout); });
    const r = await Promise.race([this.closed, timedOut]);
    clearTimeout(t);
    if (!r) {
      const pending = this.queue.map((m) => show(m.data)).join(', ');
      throw new Error(`expected ${what} within ${timeout} ms; it is still open${pending ? ` (unread frames: ${pending})` : ''}`);
    }
    return r;
  }
}

function parseOpen(text, what = 'open packet') {
  assert.ok(typeof text === 'string' && text.startsWith('0{'), `${what}: expected "0{…}", got ${show(text)}`);
  return JSON.parse(text.slice(1));
}

function checkOpen(open, upgrades) {
  assert.deepEqual(Object.keys(open).sort(), [...OPEN_KEYS].sort(), `open packet keys: ${JSON.stringify(open)}`);
  assert.equal(typeof open.sid, 'string');
  assert.ok(open.sid.length > 0, 'sid must not be empty');
  assert.deepEqual(open.upgrades, upgrades);
  assert.equal(open.pingInterval, PING_INTERVAL);
  assert.equal(open.pingTimeout, PING_TIMEOUT);
  assert.equal(open.maxPayload, MAX_PAYLOAD);
}

/** Per-path helpers: /engine.io/ or /socket.io/. */
function api(p) {
  const q = (extra = '') => `${p}?EIO=4&transport=polling${extra}`;
  return {
    path: p,
    get: (sid, o) => http('GET', q(`&sid=${sid}`), o),
    post: (sid, body, o = {}) => http('POST', q(`&sid=${sid}`), { ...o, body }),
    async handshake() {
      const r = await http('GET', q());
      expectStatus(r, 200, 'polling handshake');
      const open = parseOpen(r.body, 'polling handshake body');
      return { sid: open.sid, open, at: r.at };
    },
    ws(query = '', opts) {
      return new Conn(`${WS_BASE}${p}?EIO=4&transport=websocket${query}`, opts);
    },
    wsRaw(query, opts) {
      return new Conn(`${WS_BASE}${p}${query}`, opts);
    },
    /** A WebSocket-only session: returns the conn once its open packet arrived. */
    async wsSession() {
      const c = this.ws();
      const o = await c.opened;
      assert.ok(o.ok, `WebSocket handshake failed: ${JSON.stringify(o)}`);
      const text = await c.nextText({ what: 'the open packet' });
      c.open = parseOpen(text);
      c.openAt = now();
      return c;
    },
  };
}

const EIO = api('/engine.io/');
const SIO = api('/socket.io/');

/** A WebSocket connection attempt that the server must refuse or close without opening a session. */
async function expectWsRefused(c, what) {
  const o = await c.opened;
  if (!o.ok) {
    if (o.status !== undefined) {
      assert.ok(o.status >= 400 && o.status < 500, `${what}: refused with HTTP ${o.status}, expected a 4xx (400)`);
      return `HTTP ${o.status}`;
    }
    return o.error;
  }
  // 101 then closed (what the reference does in some of these cases): no open packet allowed.
  const info = await c.waitClose(1500, `${what}: the server to close the WebSocket`);
  const frames = c.queue.filter((m) => !m.binary).map((m) => m.data);
  assert.ok(!frames.some((f) => f.startsWith('0')), `${what}: the server opened a session: ${frames.map(show).join(', ')}`);
  return `101 then close ${info.code}`;
}

// ===================================================================================
// Engine.IO suite, shared between eio (#1-7, #16-24) and sio (#1-16)
// ===================================================================================

async function pollingOpensSession(A) {
  const r = await http('GET', `${A.path}?EIO=4&transport=polling`);
  expectStatus(r, 200, 'handshake');
  assert.ok(r.body.startsWith('0'), `body must start with "0": ${show(r.body)}`);
  const open = JSON.parse(r.body.slice(1));
  checkOpen(open, ['websocket']);
}

async function pollingInvalidEio(A) {
  for (const q of ['?transport=polling', '?EIO=abc&transport=polling']) {
    const r = await http('GET', A.path + q);
    expectStatus(r, 400, `GET ${q}`);
  }
}

async function pollingInvalidTransport(A) {
  for (const q of ['?EIO=4', '?EIO=4&transport=abc']) {
    const r = await http('GET', A.path + q);
    expectStatus(r, 400, `GET ${q}`);
  }
}

async function pollingInvalidMethod(A) {
  for (const method of ['POST', 'PUT']) {
    const r = await http(method, `${A.path}?EIO=4&transport=polling`, { body: '' });
    expectStatus(r, 400, `${method} handshake`);
  }
}

async function wsOpensSession(A) {
  const c = A.ws();
  const o = await c.opened;
  assert.ok(o.ok, `WebSocket handshake failed: ${JSON.stringify(o)}`);
  const text = await c.nextText({ what: 'the open packet' });
  assert.ok(text.startsWith('0'), `first frame must start with "0": ${show(text)}`);
  checkOpen(JSON.parse(text.slice(1)), []);
}

async function wsInvalidEio(A) {
  for (const q of ['?transport=websocket', '?EIO=abc&transport=websocket']) {
    const how = await expectWsRefused(A.wsRaw(q), `WebSocket ${q}`);
    note(`WebSocket ${q}: refused (${how})`);
  }
}

async function wsInvalidTransport(A) {
  for (const q of ['?EIO=4', '?EIO=4&transport=abc']) {
    const how = await expectWsRefused(A.wsRaw(q), `WebSocket ${q}`);
    note(`WebSocket ${q}: refused (${how})`);
  }
}

/** Checks a ping arrival time against the 300 ms interval (re-armed by the pong). */
function checkPingDelay(dt, i, from) {
  assert.ok(dt >= PING_INTERVAL - 50 && dt <= PING_INTERVAL + 250,
    `ping ${i + 1} arrived ${dt.toFixed(1)} ms after ${from}; expected about ${PING_INTERVAL} ms`);
}

async function pollingPingPong(A) {
  const { sid, at } = await A.handshake();
  let last = at;
  for (let i = 0; i < 3; i++) {
    const r = await A.get(sid, { timeout: 2000 });
    expectStatus(r, 200, `poll ${i + 1}`);
    assert.equal(r.body, '2');
    checkPingDelay(r.at - last, i, i ? 'the pong was sent' : 'the handshake');
    const p = await A.post(sid, '3');
    expectStatus(p, 200, `POST pong ${i + 1}`);
    assert.equal(p.body, 'ok');
    last = p.sent;
  }
}

// The suite's exact timing: the GET goes out pingInterval+pingTimeout after
// the handshake response arrived, so the server must treat the session as
// expired by then (ping due at 300 ms from the open, pong due 200 ms later).
async function pollingPingTimeout(A) {
  const { sid } = await A.handshake();
  await sleep(PING_INTERVAL + PING_TIMEOUT);
  const r = await A.get(sid);
  expectStatus(r, 400, `GET ${PING_INTERVAL + PING_TIMEOUT} ms after the handshake without any pong`);
}

async function wsPingPong(A) {
  const c = await A.wsSession();
  let last = c.openAt;
  for (let i = 0; i < 3; i++) {
    const m = await c.next({ what: `ping ${i + 1}` });
    assert.equal(m.binary, false);
    assert.equal(m.data, '2');
    checkPingDelay(m.at - last, i, i ? 'the pong was sent' : 'the open packet');
    c.send('3');
    last = now();
  }
}

async function wsPingTimeout(A) {
  const c = await A.wsSession();
  const info = await c.waitClose(1500, 'the server to close the silent WebSocket (ping timeout)');
  const dt = info.at - c.openAt;
  note(`closed ${dt.toFixed(1)} ms after the open packet`);
  assert.ok(dt >= PING_INTERVAL + PING_TIMEOUT - 50,
    `closed ${dt.toFixed(1)} ms after the open packet, before pingInterval+pingTimeout (${PING_INTERVAL + PING_TIMEOUT} ms)`);
}

async function pollingForcefulClose(A) {
  const { sid } = await A.handshake();
  const poll = A.get(sid, { timeout: 2000 });
  await sleep(30); // the GET must be pending when the close arrives
  const post = await A.post(sid, '1');
  note(`POST "1" answered ${describeRes(post)}`);
  const r = await poll;
  expectStatus(r, 200, 'the pending GET when the client POSTs "1"');
  assert.equal(r.body, '6');
  const r2 = await A.get(sid);
  expectStatus(r2, 400, 'GET after the close');
}

async function wsForcefulClose(A) {
  const c = await A.wsSession();
  c.send('1');
  const info = await c.waitClose(1500, 'the server to close the WebSocket after "1"');
  note(`closed ${(info.at - c.openAt).toFixed(1)} ms after the open packet`);
}

/** WebSocket with the polling session's sid, probe answered; returns the conn. */
async function probe(A, sid) {
  const c = A.ws(`&sid=${sid}`);
  const o = await c.opened;
  assert.ok(o.ok, `upgrade WebSocket refused: ${JSON.stringify(o)}`);
  c.send('2probe');
  const m = await c.next({ what: 'the probe answer' });
  assert.equal(m.binary, false);
  assert.equal(m.data, '3probe');
  return c;
}

// ===================================================================================
// Engine.IO suite (engine.io-protocol test-suite), 24 cases, /engine.io/
// ===================================================================================

ctest('eio #1 handshake/polling: successfully opens a session', () => pollingOpensSession(EIO));
ctest("eio #2 handshake/polling: fails with an invalid 'EIO' query parameter", () => pollingInvalidEio(EIO));
ctest("eio #3 handshake/polling: fails with an invalid 'transport' query parameter", () => pollingInvalidTransport(EIO));
ctest('eio #4 handshake/polling: fails with an invalid request method', () => pollingInvalidMethod(EIO));
ctest('eio #5 handshake/WebSocket: successfully opens a session', () => wsOpensSession(EIO));
ctest("eio #6 handshake/WebSocket: fails with an invalid 'EIO' query parameter", () => wsInvalidEio(EIO));
ctest("eio #7 handshake/WebSocket: fails with an invalid 'transport' query parameter", () => wsInvalidTransport(EIO));

ctest('eio #8 message/polling: sends and receives a plain text packet', async () => {
  const { sid } = await EIO.handshake();
  const p = await EIO.post(sid, '4hello');
  expectStatus(p, 200, 'POST "4hello"');
  assert.equal(p.body, 'ok');
  const r = await EIO.get(sid);
  expectStatus(r, 200, 'GET');
  assert.equal(r.body, '4hello');
});

ctest('eio #9 message/polling: sends and receives several plain text packets', async () => {
  const { sid } = await EIO.handshake();
  const payload = '4test1\x1e4test2\x1e4test3';
  const p = await EIO.post(sid, payload);
  expectStatus(p, 200, 'POST three packets');
  assert.equal(p.body, 'ok');
  const r = await EIO.get(sid);
  expectStatus(r, 200, 'GET');
  assert.equal(r.body, payload);
});

ctest('eio #10 message/polling: sends and receives plain text and binary packets', async () => {
  const { sid } = await EIO.handshake();
  const payload = '4hello\x1ebAQIDBA==';
  const p = await EIO.post(sid, payload);
  expectStatus(p, 200, 'POST text + base64 binary');
  assert.equal(p.body, 'ok');
  const r = await EIO.get(sid);
  expectStatus(r, 200, 'GET');
  assert.equal(r.body, payload);
});

ctest('eio #11 message/polling: closes the session upon invalid packet format', async () => {
  const { sid } = await EIO.handshake();
  const p = await EIO.post(sid, 'abc');
  if (!p.error) expectStatus(p, 400, 'POST "abc"'); // a reset connection is accepted too
  const r = await EIO.get(sid);
  expectStatus(r, 400, 'GET after the invalid packet');
});

ctest('eio #12 message/polling: closes the session upon duplicate poll requests', async () => {
  const { sid } = await EIO.handshake();
  const [first, second] = await Promise.all([
    EIO.get(sid, { timeout: 2000 }),
    sleep(30).then(() => EIO.get(sid, { timeout: 2000 })),
  ]);
  expectStatus(first, 200, 'the first GET');
  assert.equal(first.body, '1');
  expectStatus(second, [400, 500], 'the duplicate GET');
  const r = await EIO.get(sid);
  expectStatus(r, 400, 'GET after the duplicate');
});

ctest('eio #13 message/WebSocket: sends and receives a plain text packet', async () => {
  const c = await EIO.wsSession();
  c.send('4hello');
  assert.equal(await c.nextText({ what: 'the echo' }), '4hello');
});

ctest('eio #14 message/WebSocket: sends and receives a binary packet', async () => {
  const c = await EIO.wsSession();
  c.send(Buffer.from([1, 2, 3, 4]));
  const b = await c.nextBinary({ what: 'the binary echo' });
  assert.deepEqual([...b], [1, 2, 3, 4]);
});

ctest('eio #15 message/WebSocket: closes the session upon invalid packet format', async () => {
  const c = await EIO.wsSession();
  c.send('abc');
  await c.waitClose(1500, 'the server to close the WebSocket after "abc"');
});

ctest('eio #16 heartbeat/polling: sends ping/pong packets', () => pollingPingPong(EIO));
ctest('eio #17 heartbeat/polling: closes the session upon ping timeout', () => pollingPingTimeout(EIO));
ctest('eio #18 heartbeat/WebSocket: sends ping/pong packets', () => wsPingPong(EIO));
ctest('eio #19 heartbeat/WebSocket: closes the session upon ping timeout', () => wsPingTimeout(EIO));
ctest('eio #20 close/polling: forcefully closes the session', () => pollingForcefulClose(EIO));
ctest('eio #21 close/WebSocket: forcefully closes the session', () => wsForcefulClose(EIO));

ctest('eio #22 upgrade: successfully upgrades from HTTP long-polling to WebSocket', async () => {
  const { sid } = await EIO.handshake();
  const c = await probe(EIO, sid);
  const r = await EIO.get(sid, { timeout: 2000 });
  expectStatus(r, 200, 'GET while upgrading');
  assert.equal(r.body, '6');
  c.send('5');
  c.send('4hello');
  assert.equal(await c.nextText({ what: 'the echo over the upgraded WebSocket', skipPings: true }), '4hello');
});

ctest('eio #23 upgrade: ignores HTTP requests with same sid after upgrade', async () => {
  const { sid } = await EIO.handshake();
  const c = await probe(EIO, sid);
  c.send('5');
  const r = await EIO.get(sid);
  expectStatus(r, 400, 'polling GET after the upgrade');
  c.send('4hello');
  assert.equal(await c.nextText({ what: 'the echo over the upgraded WebSocket', skipPings: true }), '4hello');
});

ctest('eio #24 upgrade: ignores WebSocket connection with same sid after upgrade', async () => {
  const { sid } = await EIO.handshake();
  const c = await probe(EIO, sid);
  c.send('5');
  await sleep(20); // let the "5" be processed before the second WebSocket
  const c2 = EIO.ws(`&sid=${sid}`);
  const how = await expectWsRefused(c2, 'second WebSocket with the same sid');
  note(`second WebSocket: ${how}`);
  c.send('4hello');
  assert.equal(await c.nextText({ what: 'the echo over the first WebSocket', skipPings: true }), '4hello');
});

// ===================================================================================
// Socket.IO suite (socket.io-protocol test-suite), 32 cases, /socket.io/
// ===================================================================================

// --- its Engine.IO part (#1-16) ---

ctest('sio #1 handshake/polling: successfully opens a session', () => pollingOpensSession(SIO));
ctest("sio #2 handshake/polling: fails with an invalid 'EIO' query parameter", () => pollingInvalidEio(SIO));
ctest("sio #3 handshake/polling: fails with an invalid 'transport' query parameter", () => pollingInvalidTransport(SIO));
ctest('sio #4 handshake/polling: fails with an invalid request method', () => pollingInvalidMethod(SIO));
ctest('sio #5 handshake/WebSocket: successfully opens a session', () => wsOpensSession(SIO));
ctest("sio #6 handshake/WebSocket: fails with an invalid 'EIO' query parameter", () => wsInvalidEio(SIO));
ctest("sio #7 handshake/WebSocket: fails with an invalid 'transport' query parameter", () => wsInvalidTransport(SIO));
ctest('sio #8 heartbeat/polling: sends ping/pong packets', () => pollingPingPong(SIO));
ctest('sio #9 heartbeat/polling: closes the session upon ping timeout', () => pollingPingTimeout(SIO));
ctest('sio #10 heartbeat/WebSocket: sends ping/pong packets', () => wsPingPong(SIO));
ctest('sio #11 heartbeat/WebSocket: closes the session upon ping timeout', () => wsPingTimeout(SIO));
ctest('sio #12 close/polling: forcefully closes the session', () => pollingForcefulClose(SIO));
ctest('sio #13 close/WebSocket: forcefully closes the session', () => wsForcefulClose(SIO));

ctest('sio #14 upgrade: successfully upgrades from HTTP long-polling to WebSocket', async () => {
  const { sid } = await SIO.handshake();
  const c = await probe(SIO, sid);
  c.send('5');
  // Beyond the suite: the upgraded WebSocket carries the Socket.IO session.
  c.send('40');
  const text = await c.nextText({ what: 'the CONNECT reply over the upgraded WebSocket', skipPings: true });
  assert.ok(text.startsWith('40{'), `expected "40{…}", got ${show(text)}`);
  assert.deepEqual(Object.keys(JSON.parse(text.slice(2))), ['sid']);
});

ctest('sio #15 upgrade: ignores HTTP requests with same sid after upgrade', async () => {
  const { sid } = await SIO.handshake();
  const c = await probe(SIO, sid);
  c.send('5');
  const r = await SIO.get(sid);
  expectStatus(r, 400, 'polling GET after the upgrade');
});

ctest('sio #16 upgrade: ignores WebSocket connection with same sid after upgrade', async () => {
  const { sid } = await SIO.handshake();
  const c = await probe(SIO, sid);
  c.send('5');
  await sleep(20);
  const c2 = SIO.ws(`&sid=${sid}`);
  const how = await expectWsRefused(c2, 'second WebSocket with the same sid');
  note(`second WebSocket: ${how}`);
});

// --- its Socket.IO part (#17-32), all over WebSocket ---

/** open → "40" → "40{sid}" → '42["auth",{}]' (section 3.5, initSocketIOConnection). */
async function initSocketIO() {
  const c = await SIO.wsSession();
  c.send('40');
  const reply = await c.nextText({ what: 'the CONNECT reply', skipPings: true });
  assert.ok(reply.startsWith('40{'), `expected "40{…}", got ${show(reply)}`);
  assert.equal(await c.nextText({ what: 'the auth event', skipPings: true }), '42["auth",{}]');
  return c;
}

function checkConnectReply(text, prefix) {
  assert.ok(text.startsWith(prefix + '{'), `expected ${show(prefix + '{"sid":…}')}, got ${show(text)}`);
  const body = JSON.parse(text.slice(prefix.length));
  assert.deepEqual(Object.keys(body), ['sid'], `CONNECT reply keys: ${text}`);
  assert.equal(typeof body.sid, 'string');
  assert.ok(body.sid.length > 0);
}

async function connectCase(packet, prefix, authEvent) {
  const c = await SIO.wsSession();
  c.send(packet);
  checkConnectReply(await c.nextText({ what: 'the CONNECT reply', skipPings: true }), prefix);
  assert.equal(await c.nextText({ what: 'the auth event', skipPings: true }), authEvent);
}

ctest('sio #17 connect: allows connection to the main namespace', () =>
  connectCase('40', '40', '42["auth",{}]'));

ctest('sio #18 connect: allows connection to the main namespace with a payload', () =>
  connectCase('40{"token":"123"}', '40', '42["auth",{"token":"123"}]'));

ctest('sio #19 connect: allows connection to a custom namespace', () =>
  connectCase('40/custom,', '40/custom,', '42/custom,["auth",{}]'));

ctest('sio #20 connect: allows connection to a custom namespace with a payload', () =>
  connectCase('40/custom,{"token":"abc"}', '40/custom,', '42/custom,["auth",{"token":"abc"}]'));

ctest('sio #21 connect: disallows connection to an unknown namespace', async () => {
  const c = await SIO.wsSession();
  c.send('40/random');
  assert.equal(await c.nextText({ what: 'the CONNECT_ERROR', skipPings: true }), '44/random,{"message":"Invalid namespace"}');
});

ctest('sio #22 connect: disallows connection with an invalid handshake', async () => {
  const c = await SIO.wsSession();
  c.send('4abc');
  await c.waitClose(1500, 'the server to close the WebSocket after "4abc"');
});

ctest('sio #23 connect: closes the connection if no handshake is received', async () => {
  const c = await SIO.wsSession();
  const info = await c.waitClose(2000, 'the server to close the WebSocket without a CONNECT');
  note(`closed ${(info.at - c.openAt).toFixed(1)} ms after the open packet`);
});

ctest('sio #24 disconnect: disconnects from the main namespace', async () => {
  const c = await initSocketIO();
  c.send('41');
  const m = await c.next({ what: 'the next frame after "41" (must be the ping)' });
  assert.equal(m.binary, false);
  assert.equal(m.data, '2');
});

ctest('sio #25 disconnect: connects then disconnects from a custom namespace', async () => {
  const c = await initSocketIO();
  assert.equal(await c.nextText({ what: 'the first ping' }), '2'); // deliberately not answered
  c.send('40/custom');
  checkConnectReply(await c.nextText({ what: 'the /custom CONNECT reply' }), '40/custom,');
  assert.equal(await c.nextText({ what: 'the /custom auth event' }), '42/custom,["auth",{}]');
  c.send('41/custom');
  c.send('42["message","message to main namespace"]');
  assert.equal(await c.nextText({ what: 'the message-back' }), '42["message-back","message to main namespace"]');
});

ctest('sio #26 message: sends a plain-text packet', async () => {
  const c = await initSocketIO();
  c.send('42["message",1,"2",{"3":[true]}]');
  assert.equal(await c.nextText({ what: 'the message-back', skipPings: true }), '42["message-back",1,"2",{"3":[true]}]');
});

ctest('sio #27 message: sends a packet with binary attachments', async () => {
  const c = await initSocketIO();
  c.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
  c.send(Buffer.from([1, 2, 3]));
  c.send(Buffer.from([4, 5, 6]));
  assert.equal(await c.nextText({ what: 'the BINARY_EVENT header', skipPings: true }),
    '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
  assert.deepEqual([...await c.nextBinary({ what: 'attachment 0', skipPings: true })], [1, 2, 3]);
  assert.deepEqual([...await c.nextBinary({ what: 'attachment 1', skipPings: true })], [4, 5, 6]);
});

ctest('sio #28 message: sends a plain-text packet with an ack', async () => {
  const c = await initSocketIO();
  c.send('42456["message-with-ack",1,"2",{"3":[false]}]');
  assert.equal(await c.nextText({ what: 'the ACK', skipPings: true }), '43456[1,"2",{"3":[false]}]');
});

ctest('sio #29 message: sends a packet with binary attachments and an ack', async () => {
  const c = await initSocketIO();
  c.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
  c.send(Buffer.from([1, 2, 3]));
  c.send(Buffer.from([4, 5, 6]));
  assert.equal(await c.nextText({ what: 'the BINARY_ACK header', skipPings: true }),
    '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
  assert.deepEqual([...await c.nextBinary({ what: 'attachment 0', skipPings: true })], [1, 2, 3]);
  assert.deepEqual([...await c.nextBinary({ what: 'attachment 1', skipPings: true })], [4, 5, 6]);
});

ctest('sio #30 message: closes the connection upon invalid format (unknown packet type)', async () => {
  const c = await initSocketIO();
  c.send('4abc');
  await c.waitClose(1500, 'the server to close the WebSocket after "4abc"');
});

ctest('sio #31 message: closes the connection upon invalid format (invalid payload format)', async () => {
  const c = await initSocketIO();
  c.send('42{}');
  await c.waitClose(1500, 'the server to close the WebSocket after "42{}"');
});

ctest('sio #32 message: closes the connection upon invalid format (invalid ack id)', async () => {
  const c = await initSocketIO();
  c.send('42abc["message-with-ack",1,"2",{"3":[false]}]');
  await c.waitClose(1500, 'the server to close the WebSocket after an invalid ack id');
});

// Unmerged socket.io-protocol PR #33 ("acknowledgements"): the server itself
// emits "emit-with-ack" requesting an ack; the client answers; the server then
// emits the answer back. The ack id is the server's choice (the reference
// counts per namespace), so the test reads it from the packet.
ctest('sio PR#33 acknowledgements: the server requests an ack (emit-with-ack)', async () => {
  const c = await initSocketIO();
  c.send('42["emit-with-ack",1,"2",{"3":[true]}]');
  const req = await c.nextText({ what: 'the ack request', skipPings: true });
  const m = /^42(\d+)\["emit-with-ack",1,"2",\{"3":\[true\]\}\]$/.exec(req);
  assert.ok(m, `expected 42<id>["emit-with-ack",1,"2",{"3":[true]}], got ${show(req)}`);
  c.send(`43${m[1]}[{"answer":[1,2]},"x"]`);
  assert.equal(await c.nextText({ what: 'the answer emitted back', skipPings: true }),
    '42["emit-with-ack",{"answer":[1,2]},"x"]');
});

ctest('sio PR#33 acknowledgements with binary attachments', async () => {
  const c = await initSocketIO();
  c.send('452-["emit-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
  c.send(Buffer.from([1, 2, 3]));
  c.send(Buffer.from([4, 5, 6]));
  const req = await c.nextText({ what: 'the binary ack request', skipPings: true });
  const m = /^452-(\d+)\["emit-with-ack",\{"_placeholder":true,"num":0\},\{"_placeholder":true,"num":1\}\]$/.exec(req);
  assert.ok(m, `expected 452-<id>["emit-with-ack",<2 placeholders>], got ${show(req)}`);
  assert.deepEqual([...(await c.nextBinary({ what: 'attachment 0' }))], [1, 2, 3]);
  assert.deepEqual([...(await c.nextBinary({ what: 'attachment 1' }))], [4, 5, 6]);
  c.send(`461-${m[1]}[{"_placeholder":true,"num":0}]`);
  c.send(Buffer.from([9, 8]));
  assert.equal(await c.nextText({ what: 'the answer emitted back', skipPings: true }),
    '451-["emit-with-ack",{"_placeholder":true,"num":0}]');
  assert.deepEqual([...(await c.nextBinary({ what: 'the answer attachment' }))], [9, 8]);
});

// ===================================================================================
// Extra cases from the digest
// ===================================================================================

ctest('extra: a WebSocket upgrade request with transport=polling is refused', async () => {
  for (const A of [EIO, SIO]) {
    const how = await expectWsRefused(A.wsRaw('?EIO=4&transport=polling'), `${A.path} WebSocket with transport=polling`);
    note(`${A.path} transport=polling, no sid: refused (${how})`);
    const { sid } = await A.handshake();
    const how2 = await expectWsRefused(A.wsRaw(`?EIO=4&transport=polling&sid=${sid}`),
      `${A.path} WebSocket with transport=polling and a polling session's sid`);
    note(`${A.path} transport=polling with sid: refused (${how2})`);
  }
});

ctest('extra: overlapping POSTs close the session (the second gets 400)', async () => {
  const { sid } = await EIO.handshake();
  const url = `/engine.io/?EIO=4&transport=polling&sid=${sid}`;
  // The first POST announces 10 bytes and sends 3: it is still receiving.
  const first = net.connect(port, '127.0.0.1');
  await new Promise((r) => first.once('connect', r));
  first.write(`POST ${url} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n4he`);
  await sleep(50);
  const second = await rawHttp('POST', url, { body: '4hello', headers: { 'content-type': 'text/plain' } });
  expectStatus(second, 400, 'the overlapping POST');
  first.destroy();
  expectStatus(await EIO.get(sid), 400, 'a GET on the closed session');
});

ctest('extra: OPTIONS preflight answered 204 with the CORS headers', async () => {
  const cases = [
    { A: EIO, q: '?EIO=4&transport=polling' },
    { A: SIO, q: '?EIO=4&transport=polling' },
  ];
  for (const { A, q } of cases) {
    const r = await rawHttp('OPTIONS', A.path + q, {
      headers: {
        origin: 'http://example.test',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expectStatus(r, 204, `OPTIONS ${A.path}`);
    assert.equal(r.headers['access-control-allow-origin'], '*', `Access-Control-Allow-Origin: ${describeRes(r)}`);
    assert.equal(r.headers['access-control-allow-methods'], 'GET,HEAD,PUT,PATCH,POST,DELETE', `Access-Control-Allow-Methods: ${describeRes(r)}`);
    assert.equal(r.headers['access-control-allow-headers'], 'content-type', `Access-Control-Allow-Headers (reflected): ${describeRes(r)}`);
  }
  // An existing session's URL, too.
  const { sid } = await SIO.handshake();
  const r = await rawHttp('OPTIONS', `/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
    headers: { origin: 'http://example.test', 'access-control-request-method': 'POST' },
  });
  expectStatus(r, 204, 'OPTIONS with a sid');
  assert.equal(r.headers['access-control-allow-origin'], '*', `Access-Control-Allow-Origin: ${describeRes(r)}`);
  // And the polling responses themselves carry Access-Control-Allow-Origin.
  const g = await http('GET', '/socket.io/?EIO=4&transport=polling', { headers: { origin: 'http://example.test' } });
  expectStatus(g, 200, 'cross-origin handshake');
  assert.equal(g.headers['access-control-allow-origin'], '*', `handshake Access-Control-Allow-Origin: ${describeRes(g)}`);
  const sid2 = parseOpen(g.body).sid;
  const p = await http('POST', `/socket.io/?EIO=4&transport=polling&sid=${sid2}`, { body: '40', headers: { origin: 'http://example.test' } });
  expectStatus(p, 200, 'cross-origin POST');
  assert.equal(p.headers['access-control-allow-origin'], '*', `POST Access-Control-Allow-Origin: ${describeRes(p)}`);
});

ctest('extra: a polling POST over maxPayload gets 413', async () => {
  const { sid } = await EIO.handshake();
  const big = '4' + 'x'.repeat(MAX_PAYLOAD); // maxPayload + 1 bytes
  const r = await rawHttp('POST', `/engine.io/?EIO=4&transport=polling&sid=${sid}`, {
    headers: { 'content-type': 'text/plain;charset=UTF-8' },
    body: big,
  });
  expectStatus(r, 413, `POST of ${big.length} bytes`);
  // Exactly maxPayload is still accepted and echoed.
  const s2 = (await EIO.handshake()).sid;
  const exact = '4' + 'y'.repeat(MAX_PAYLOAD - 1);
  const p = await EIO.post(s2, exact);
  expectStatus(p, 200, `POST of exactly ${exact.length} bytes`);
  const g = await EIO.get(s2);
  expectStatus(g, 200, 'GET of the echo');
  assert.ok(g.body === exact, `echo of the ${exact.length}-byte message: got ${g.body.length} bytes ${show(g.body)}`);
});

ctest('extra: a polling POST with Content-Type application/octet-stream gets 400', async () => {
  const { sid } = await EIO.handshake();
  const r = await http('POST', `/engine.io/?EIO=4&transport=polling&sid=${sid}`, {
    headers: { 'content-type': 'application/octet-stream' },
    body: Buffer.from('4hello'),
  });
  expectStatus(r, 400, 'octet-stream POST');
});

async function clientRoundTrip(opts, expectTransport) {
  const url = `${HTTP_BASE}`;
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 5000, ...opts });
  liveClients.push(socket);
  const auth = new Promise((resolve) => socket.once('auth', (a) => resolve(a)));
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('socket.io-client: no connect within 5 s')), 5000);
    socket.once('connect', () => { clearTimeout(t); note(`client connect id=${socket.id} transport=${socket.io.engine.transport.name}`); resolve(); });
    socket.once('connect_error', (e) => { clearTimeout(t); reject(new Error(`socket.io-client connect_error: ${e.message} ${e.description ?? ''}`)); });
  });
  assert.deepEqual(await Promise.race([auth, sleep(2000).then(() => 'no "auth" event within 2 s')]), {});
  if (expectTransport === 'websocket') {
    const engine = socket.io.engine;
    if (engine.transport.name !== 'websocket') {
      await Promise.race([
        new Promise((resolve) => engine.once('upgrade', resolve)),
        sleep(3000),
      ]);
    }
  }
  note(`client transport now ${socket.io.engine.transport.name}`);
  const back = new Promise((resolve) => socket.once('message-back', (...a) => resolve(a)));
  socket.emit('message', 1, '2', { 3: [true] }, Buffer.from([1, 2, 3]));
  const got = await Promise.race([back, sleep(3000).then(() => 'no message-back within 3 s')]);
  assert.ok(Array.isArray(got), got);
  assert.deepEqual(got.slice(0, 3), [1, '2', { 3: [true] }]);
  assert.ok(Buffer.isBuffer(got[3]) || got[3] instanceof ArrayBuffer, `4th argument: ${got[3]}`);
  assert.deepEqual([...new Uint8Array(got[3])], [1, 2, 3]);
  const ack = await socket.timeout(3000).emitWithAck('message-with-ack', 'a', { b: 1 });
  assert.equal(ack, 'a'); // emitWithAck resolves with the first ack argument
  // The session survives several heartbeats.
  await sleep(PING_INTERVAL * 3);
  assert.equal(socket.connected, true, 'the client got disconnected during heartbeats');
  assert.equal(socket.io.engine.transport.name, expectTransport, `transport after the exchange`);
  socket.disconnect();
}

ctest('extra: socket.io-client (default options) connects, upgrades to WebSocket and exchanges message/message-back', () =>
  clientRoundTrip({}, 'websocket'));

ctest("extra: socket.io-client with transports:['polling'] connects and exchanges message/message-back", () =>
  clientRoundTrip({ transports: ['polling'] }, 'polling'));
