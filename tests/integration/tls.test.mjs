// Direct TLS (--tls-cert, --tls-key): socket.io-client over wss:// and
// https:// polling with a throwaway CA, the bad inputs a TLS port gets
// (plain HTTP, garbage, a stalled handshake, a ClientHello and gone, an
// h2-only client), and a certificate reload under load: 100 clients stay
// connected through SIGHUP while new connections see the new certificate.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { createRequire } from 'node:module';
import { startCluster, repoRoot } from '../lib/pgcluster.mjs';
import { makeCA } from '../lib/testca.mjs';
import {
  startDaemon, connectClient, waitConnected, waitForUpdate, insertSale, closeClients, sleep,
} from '../lib/daemon.mjs';

let pg, db, products, daemon, dir, ca, certFile, keyFile, first;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const noBrowser = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (./quickstart test installs Debian's chromium)`;
const sockets = [];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-tls-test-'));
  ca = makeCA(dir);
  first = ca.issue('first', { serial: '1001' });
  // The daemon reads these paths; the reload test swaps what they hold.
  certFile = path.join(dir, 'server.pem');
  keyFile = path.join(dir, 'server.key');
  fs.copyFileSync(first.cert, certFile);
  fs.copyFileSync(first.key, keyFile);
  // The demo dashboard, staged as ./quickstart demo does.
  const www = path.join(dir, 'www');
  fs.mkdirSync(www);
  const dashboard = path.join(repoRoot, 'contrib', 'dashboard');
  for (const f of fs.readdirSync(dashboard)) fs.copyFileSync(path.join(dashboard, f), path.join(www, f));
  fs.copyFileSync(path.join(repoRoot, 'node_modules', 'socket.io-client', 'dist', 'socket.io.min.js'),
    path.join(www, 'socket.io.min.js'));
  // Far more than the socket buffers hold: a slow reader makes the TLS
  // records wait in pgpushd's buffer (conn_io.flush) many times over.
  fs.writeFileSync(path.join(www, 'big.bin'), crypto.randomBytes(12 << 20));
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql', 'sql/demo-data.sql'] });
  db = await pg.client();
  products = (await db.query('SELECT id FROM products ORDER BY id LIMIT 3')).rows;
  daemon = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300', '--static-dir', www,
    '--tls-cert', certFile, '--tls-key', keyFile, '--request-timeout', '1500'] });
});

after(async () => {
  closeClients(sockets);
  try {
    if (daemon) await daemon.stopClean();
  } finally {
    if (pg) await pg.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});

const url = () => `https://127.0.0.1:${daemon.port}`;
const client = (opts = {}) => {
  const s = connectClient(url(), { ca: ca.ca, ...opts });
  sockets.push(s);
  return s;
};

/** The serial of the certificate a new TLS connection sees. */
function peerSerial() {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: daemon.port, ca: ca.ca, servername: 'localhost' }, () => {
      const c = s.getPeerCertificate();
      resolve({ serial: c.serialNumber, protocol: s.getProtocol(), alpn: s.alpnProtocol });
      s.end();
    });
    s.on('error', reject);
  });
}

/** Opens a TCP connection, sends bytes, resolves with what came back and how it ended. */
function rawExchange(bytes, { endAfter = false, timeoutMs = 8000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const chunks = [];
    const s = net.connect(daemon.port, '127.0.0.1', () => {
      if (bytes) s.write(bytes);
      if (endAfter) s.end();
    });
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no close within ${timeoutMs} ms`)); }, timeoutMs);
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {}); // a reset counts as a close
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), ms: Date.now() - t0 });
    });
  });
}

test('socket.io-client over wss:// and https:// polling, checked against the test CA', { timeout: 30000 }, async () => {
  const info = await peerSerial();
  assert.equal(info.serial, first.serial);
  assert.match(info.protocol, /^TLSv1\.[23]$/);
  assert.equal(info.alpn, false, 'no ALPN offered, none chosen');

  const ws = client({ transports: ['websocket'] });
  const poll = client({ transports: ['polling'] });
  await Promise.all([waitConnected(ws), waitConnected(poll)]);
  await Promise.all([waitForUpdate(ws, () => true), waitForUpdate(poll, () => true)]);
  const { id } = await insertSale(db, products[0].id);
  const hasSale = (d) => d.recentSales.some((r) => r.id === id);
  await Promise.all([waitForUpdate(ws, hasSale, 5000), waitForUpdate(poll, hasSale, 5000)]);

  // Without the CA the client refuses the certificate.
  const stranger = connectClient(url(), { transports: ['websocket'], reconnection: false });
  sockets.push(stranger);
  await new Promise((resolve) => stranger.on('connect_error', resolve));
  assert.match(stranger.rec.connectErrors[0].message, /websocket error|self[- ]signed|certificate/i);
});

test('ALPN: http/1.1 is selected; an h2-only client gets an alert, not a stream', { timeout: 10000 }, async () => {
  const alpn = await new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: daemon.port, ca: ca.ca, servername: 'localhost',
      ALPNProtocols: ['h2', 'http/1.1'] }, () => { resolve(s.alpnProtocol); s.end(); });
    s.on('error', reject);
  });
  assert.equal(alpn, 'http/1.1');
  const err = await new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: daemon.port, ca: ca.ca, servername: 'localhost',
      ALPNProtocols: ['h2'] }, () => resolve(null));
    s.on('error', resolve);
  });
  assert.ok(err, 'the handshake fails');
  assert.match(String(err.message), /no application protocol|alert number 120/i);
});

test('a client resumes its session with a ticket (no server-side cache)', { timeout: 10000 }, async () => {
  for (const maxVersion of ['TLSv1.2', 'TLSv1.3']) {
    const base = { host: '127.0.0.1', port: daemon.port, ca: ca.ca, servername: 'localhost', maxVersion };
    const session = await new Promise((resolve, reject) => {
      const s = tls.connect(base, () => { s.write('GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n'); });
      let got = null;
      s.on('session', (sess) => { got = got || sess; });
      s.on('data', () => {});
      s.on('close', () => (got ? resolve(got) : reject(new Error(`${maxVersion}: no session ticket`))));
      s.on('error', () => {});
    });
    const reused = await new Promise((resolve, reject) => {
      const s = tls.connect({ ...base, session }, () => { resolve(s.isSessionReused()); s.end(); });
      s.on('error', reject);
    });
    assert.equal(reused, true, `${maxVersion}: the second connection resumes`);
  }
});

test('a slow reader over TLS gets every byte of a 12 MB file, intact', { timeout: 60000 }, async () => {
  const want = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, 'www', 'big.bin'))).digest('hex');
  const got = await new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: daemon.port, path: '/big.bin', ca: ca.ca, servername: 'localhost', agent: false }, (res) => {
      const h = crypto.createHash('sha256');
      let n = 0, pauses = 0;
      res.on('data', (d) => {
        h.update(d);
        n += d.length;
        // Stop reading now and then, long enough for the socket to fill.
        if (n > (pauses + 1) * (2 << 20)) { pauses++; res.pause(); setTimeout(() => res.resume(), 300); }
      });
      res.on('end', () => resolve({ hash: h.digest('hex'), n, pauses, status: res.statusCode }));
      res.on('error', reject);
    }).on('error', reject);
  });
  assert.equal(got.status, 200);
  assert.equal(got.n, 12 << 20);
  assert.ok(got.pauses >= 4, `the reader paused ${got.pauses} times`);
  assert.equal(got.hash, want, 'the bytes are the file\'s');
});

test('bad input on the TLS port gets a clean close and blocks no one', { timeout: 30000 }, async () => {
  // A live client keeps receiving through all of it.
  const live = client({ transports: ['websocket'] });
  await waitConnected(live);
  await waitForUpdate(live, () => true);

  // A real ClientHello, for the client that sends it and vanishes.
  const hello = await new Promise((resolve) => {
    const srv = net.createServer((sock) => sock.once('data', (d) => { resolve(d); sock.destroy(); srv.close(); }));
    srv.listen(0, '127.0.0.1', () => {
      const c = tls.connect({ host: '127.0.0.1', port: srv.address().port, rejectUnauthorized: false });
      c.on('error', () => {});
    });
  });

  const plain = rawExchange('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const garbage = rawExchange(Buffer.from('\x16\x03\x01\xff\xffnot a handshake at all'.repeat(10), 'latin1'));
  const random = rawExchange(Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 131 + 7) & 0xff)));
  const stalled = rawExchange(null);                      // connects, says nothing
  const partial = rawExchange(hello.subarray(0, 20));     // half a ClientHello, then silence
  const helloThenGone = rawExchange(hello, { endAfter: true });
  const helloThenSilent = rawExchange(hello);             // a whole ClientHello, then nothing

  // Meanwhile a sale still reaches the live client at once.
  const { id } = await insertSale(db, products[1].id);
  await waitForUpdate(live, (d) => d.recentSales.some((r) => r.id === id), 3000);

  const p = await plain;
  assert.ok(!p.data.toString('latin1').startsWith('HTTP/'), 'no plain HTTP answer on the TLS port');
  assert.ok(p.data.length === 0 || p.data[0] === 0x15, `nothing, or a TLS alert (got ${p.data.subarray(0, 8).toString('hex')})`);
  for (const [what, r] of [['garbage', await garbage], ['random bytes', await random]]) {
    assert.ok(r.data.length === 0 || r.data[0] === 0x15, `${what}: nothing, or a TLS alert`);
    assert.ok(r.ms < 1000, `${what}: closed at once (${r.ms} ms)`);
  }
  for (const [what, r] of [['stalled', await stalled], ['partial ClientHello', await partial]]) {
    assert.equal(r.data.length, 0, `${what}: nothing sent`);
    assert.ok(r.ms >= 1000 && r.ms < 4000, `${what}: closed at the handshake timeout (${r.ms} ms)`);
  }
  const q = await helloThenSilent;
  assert.equal(q.data[0], 0x16, 'ClientHello then silence: the server flight was sent');
  assert.ok(q.ms >= 1000 && q.ms < 4000, `ClientHello then silence: closed at the handshake timeout (${q.ms} ms)`);
  const g = await helloThenGone;
  assert.ok(g.ms < 4000, `ClientHello then EOF: closed (${g.ms} ms)`);
  assert.equal(live.rec.disconnects.length, 0, 'the live client was never dropped');
  assert.ok(live.connected);
  live.close();
});

test('headless Chromium loads the dashboard over https:// (the leaf key pinned, nothing else trusted)', { skip: noBrowser, timeout: 60000 }, async () => {
  const require = createRequire(path.join(repoRoot, 'package.json'));
  const { chromium } = require('playwright-core');
  const context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    // The certificate is checked, but its issuer (the test CA) is accepted
    // through the pin of the server's public key, without installing it.
    args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${first.spki}`],
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    const errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    const res = await page.goto(`https://localhost:${daemon.port}/`);
    assert.equal(res.status(), 200);
    const sec = await res.securityDetails();
    assert.match(sec.protocol, /^TLS 1\.[23]$/, `protocol ${sec.protocol}`);
    assert.equal(sec.subjectName, 'localhost');
    await page.waitForSelector('#status[data-state="connected"]', { timeout: 10000 });
    // The page's socket.io-client is on wss:// (upgraded from https:// polling).
    const { id } = await insertSale(db, products[0].id, { customer: `TLS browser ${process.pid}` });
    await page.locator(`#recent-sales tbody tr[data-id="${id}"]`).waitFor({ timeout: 5000 });
    assert.deepEqual(errors, []);
  } finally {
    await context.close().catch(() => {});
  }
});

test('SIGHUP reloads the certificate under load: 100 clients stay, new ones see the new serial', { timeout: 60000 }, async () => {
  const crowd = [];
  for (let i = 0; i < 100; i++) crowd.push(client({ transports: [i % 4 === 0 ? 'polling' : 'websocket'], reconnection: false }));
  await Promise.all(crowd.map((s) => waitConnected(s, 15000)));
  await Promise.all(crowd.map((s) => waitForUpdate(s, () => true, 15000)));
  assert.equal((await peerSerial()).serial, first.serial);

  // Load while the certificate changes: sales keep coming.
  let stop = false;
  const writer = (async () => {
    while (!stop) { await insertSale(db, products[2].id); await sleep(50); }
  })();

  const second = ca.issue('second', { serial: '2002' });
  fs.copyFileSync(second.cert, certFile);
  fs.copyFileSync(second.key, keyFile);
  let mark = daemon.mark();
  daemon.proc.kill('SIGHUP');
  await daemon.waitForLog(/tls: reloaded .* serial=2002/, 5000, { since: mark });
  assert.equal((await peerSerial()).serial, '2002', 'a new connection sees the new certificate');

  // A broken certificate keeps the current one.
  fs.writeFileSync(certFile, 'not a certificate\n');
  mark = daemon.mark();
  daemon.proc.kill('SIGHUP');
  await daemon.waitForLog(/tls: reload failed, keeping the current certificate/, 5000, { since: mark });
  assert.equal((await peerSerial()).serial, '2002', 'still the second certificate');

  await sleep(300);
  stop = true;
  await writer;
  const { id } = await insertSale(db, products[0].id);
  await Promise.all(crowd.map((s) => waitForUpdate(s, (d) => d.recentSales.some((r) => r.id === id), 10000)));
  const dropped = crowd.filter((s) => s.rec.disconnects.length || !s.connected);
  assert.equal(dropped.length, 0, `${dropped.length} of 100 clients dropped`);
  closeClients(crowd);
});
