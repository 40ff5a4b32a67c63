// Bad input: each item gets a clean error or close, while a well-behaved
// socket.io-client connected at the same time keeps receiving updates.
// Ends with SIGTERM: every client sees the disconnect, exit 0 within 1 s.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitConnected, waitForUpdate, nextEvent, seedShop, insertSale,
  rawRequest, rawEngineIO, closeClients, now,
} from '../lib/daemon.mjs';

let pg, db, products, daemon, observer;
const sockets = [];

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  products = await seedShop(db, { products: 2 });
  daemon = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300', '--max-payload', '1000',
    '--request-timeout', '1000', '--connect-timeout', '1000'] });
  observer = connectClient(daemon.url);
  sockets.push(observer);
  await waitForUpdate(observer, () => true, 10000);
});

after(async () => {
  closeClients(sockets);
  try {
    if (daemon) await daemon.stopClean();
  } finally {
    if (pg) await pg.stop();
  }
});

/** The well-behaved client still works: a new sale reaches it. */
async function observerStillServed(what) {
  const since = observer.rec.updates.length;
  const sale = await insertSale(db, products[0].id);
  const got = await waitForUpdate(observer,
    (d) => d.recentSales && d.recentSales[0] && Number(d.recentSales[0].id) === sale.id, 5000, { since });
  assert.ok(observer.connected, `${what}: observer still connected`);
  assert.deepEqual(observer.rec.disconnects, [], `${what}: observer never disconnected`);
  assert.ok(daemon.exited === null, `${what}: daemon alive`);
  return (got.t - sale.committedAt).toFixed(1);
}

const head = (r) => r.text.split('\r\n')[0];

test('garbage instead of HTTP: 400 and close', { timeout: 30000 }, async () => {
  const inputs = {
    'binary junk': Buffer.from([0x00, 0x01, 0x02, 0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a]),
    'TLS ClientHello': Buffer.from('16030100a5010000a10303' + '00'.repeat(40) + '0d0a0d0a', 'hex'),
    'not a request line': Buffer.from('hello there, this is not http\r\n\r\n'),
    'bad header line': Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n'),
    'bad version': Buffer.from('GET / HTTP/9.9\r\nHost: x\r\n\r\n'),
  };
  for (const [name, bytes] of Object.entries(inputs)) {
    const r = await rawRequest(daemon.port, bytes, { timeoutMs: 3000 });
    const lat = await observerStillServed(name);
    console.log(`${name}: "${head(r)}", closed=${r.closed} after ${r.ms} ms; observer got the next sale in ${lat} ms`);
    assert.ok(r.closed, `${name}: the server closes the connection`);
    if (name === 'bad version') assert.ok([400, 505].includes(r.status), `${name}: 400 or 505, got ${head(r)}`);
    else assert.equal(r.status, 400, `${name}: HTTP 400, got ${JSON.stringify(head(r))}`);
  }
});

test('oversized request: 431 (headers) and close', { timeout: 30000 }, async () => {
  const big = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`;
  let r = await rawRequest(daemon.port, big, { timeoutMs: 3000 });
  let lat = await observerStillServed('big header');
  console.log(`one 17 KB header: "${head(r)}", closed=${r.closed} after ${r.ms} ms${r.error ? ` (${r.error})` : ''}; observer ${lat} ms`);
  assert.equal(r.status, 431, `got ${JSON.stringify(head(r))}`);
  assert.ok(r.closed);

  const many = 'GET /healthz HTTP/1.1\r\nHost: x\r\n' +
    Array.from({ length: 200 }, (_, i) => `X-H${i}: ${'b'.repeat(90)}\r\n`).join('') + '\r\n';
  r = await rawRequest(daemon.port, many, { timeoutMs: 3000 });
  lat = await observerStillServed('many headers');
  console.log(`200 headers (${many.length} bytes): "${head(r)}", closed=${r.closed}; observer ${lat} ms`);
  assert.equal(r.status, 431, `got ${JSON.stringify(head(r))}`);
  assert.ok(r.closed);

  // Headers that never end: the limit applies before the blank line arrives.
  const endless = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'c'.repeat(20 * 1024)}`;
  r = await rawRequest(daemon.port, endless, { timeoutMs: 3000 });
  lat = await observerStillServed('unterminated');
  console.log(`20 KB of headers without the end: "${head(r)}", closed=${r.closed}; observer ${lat} ms`);
  assert.equal(r.status, 431, `got ${JSON.stringify(head(r))}`);
  assert.ok(r.closed);

  const longUri = `GET /${'u'.repeat(20 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`;
  r = await rawRequest(daemon.port, longUri, { timeoutMs: 3000 });
  lat = await observerStillServed('long URI');
  console.log(`20 KB request line: "${head(r)}", closed=${r.closed}; observer ${lat} ms`);
  assert.ok([400, 414, 431].includes(r.status), `got ${JSON.stringify(head(r))}`);
  assert.ok(r.closed);
});

test('bad WebSocket upgrades: an HTTP error and close', { timeout: 30000 }, async () => {
  const up = (query, extra) => `GET /socket.io/?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
    `Connection: Upgrade\r\n${extra}\r\n`;
  const key = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
  const cases = [
    ['no Sec-WebSocket-Key', up('EIO=4&transport=websocket', 'Sec-WebSocket-Version: 13\r\n'), [400]],
    ['Sec-WebSocket-Version 12', up('EIO=4&transport=websocket', `${key}Sec-WebSocket-Version: 12\r\n`), [400, 426]],
    ['EIO=3', up('EIO=3&transport=websocket', `${key}Sec-WebSocket-Version: 13\r\n`), [400]],
    ['no EIO', up('transport=websocket', `${key}Sec-WebSocket-Version: 13\r\n`), [400]],
  ];
  for (const [name, req, statuses] of cases) {
    const r = await rawRequest(daemon.port, req, { timeoutMs: 3000 });
    const lat = await observerStillServed(name);
    console.log(`upgrade with ${name}: "${head(r)}", closed=${r.closed}; observer ${lat} ms`);
    assert.ok(statuses.includes(r.status), `${name}: expected ${statuses.join(' or ')}, got ${JSON.stringify(head(r))}`);
    assert.ok(r.closed, `${name}: connection closed`);
  }
});

test('clients that say too little: timed out and closed (--request-timeout/--connect-timeout 1000)', { timeout: 30000 }, async () => {
  const t0 = now();
  const [partial, silent, noJoin] = await Promise.all([
    rawRequest(daemon.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', { timeoutMs: 5000 }),
    rawRequest(daemon.port, '', { timeoutMs: 5000 }),
    rawEngineIO(daemon.port, { join: false }).then(async (c) => {
      const t = now();
      const closed = await Promise.race([c.closed, new Promise((r) => setTimeout(() => r(null), 5000))]);
      if (!closed) c.ws.terminate();
      return { closed, ms: Math.round(now() - t) };
    }),
  ]);
  const lat = await observerStillServed('timeouts');
  console.log(`half a request head: "${head(partial)}" closed=${partial.closed} after ${partial.ms} ms; ` +
    `nothing sent: closed=${silent.closed} after ${silent.ms} ms; WebSocket without Socket.IO CONNECT: ` +
    `${noJoin.closed ? `close ${noJoin.closed.code} after ${noJoin.ms} ms` : 'still open after 5 s'}; ` +
    `observer ${lat} ms (${(now() - t0).toFixed(0)} ms in all)`);
  assert.ok(partial.closed && partial.ms < 4000, 'an incomplete request head is closed after --request-timeout');
  if (partial.status !== null) assert.equal(partial.status, 408);
  assert.ok(silent.closed && silent.ms < 4000, 'a silent connection is closed after --request-timeout');
  assert.ok(noJoin.closed, 'a WebSocket that never joins is closed after --connect-timeout');
});

test('WebSocket message over --max-payload: close 1009', { timeout: 30000 }, async () => {
  // Control: a message under the limit is fine.
  let c = await rawEngineIO(daemon.port);
  c.ws.send('42["requestDashboardData"]');
  let m;
  do { m = await c.next(); } while (m === '2' && (c.ws.send('3'), true));
  assert.ok(m.startsWith('42["dashboardDataUpdate",'), `raw client answered, got ${String(m).slice(0, 60)}`);
  c.ws.close();

  c = await rawEngineIO(daemon.port);
  const t0 = now();
  c.ws.send('4' + JSON.stringify(['requestDashboardData', 'x'.repeat(2000)]).slice(0, 1999));
  let closed = await c.closed;
  let lat = await observerStillServed('2000-byte message');
  console.log(`2000-byte text message: close ${closed.code} after ${(now() - t0).toFixed(0)} ms; observer ${lat} ms`);
  assert.equal(closed.code, 1009);

  // Fragmented: 3 x 400 bytes, each frame under the limit, the message over it.
  c = await rawEngineIO(daemon.port);
  const part = 'y'.repeat(400);
  c.ws.send('4' + part, { fin: false });
  c.ws.send(part, { fin: false });
  c.ws.send(part, { fin: true });
  closed = await c.closed;
  lat = await observerStillServed('fragmented message');
  console.log(`1201-byte message in 3 fragments: close ${closed.code}; observer ${lat} ms`);
  assert.equal(closed.code, 1009, 'the limit applies to the reassembled message');
});

test('malformed Engine.IO and Socket.IO packets: the server closes that WebSocket', { timeout: 60000 }, async () => {
  const packets = [
    ['Engine.IO', 'x'], ['Engine.IO', '9'], ['Engine.IO', '2'], ['Engine.IO', ''],
    ['Socket.IO', '4abc'], ['Socket.IO', '42{}'], ['Socket.IO', '42["connect"]'], ['Socket.IO', '42abc["requestDashboardData"]'],
    ['Socket.IO', '42[]'], ['Socket.IO', '42[{}]'], ['Socket.IO', '42["unterminated'], ['Socket.IO', '41{"x":1}'],
    ['Socket.IO', '40'], // a second CONNECT on the same namespace
  ];
  const results = [];
  for (const [layer, pkt] of packets) {
    const c = await rawEngineIO(daemon.port);
    const t0 = now();
    c.ws.send(pkt);
    let closed;
    try {
      closed = await Promise.race([c.closed, new Promise((_, rej) => setTimeout(() => rej(new Error('no close')), 3000))]);
    } catch {
      c.ws.terminate();
      assert.fail(`${layer} ${JSON.stringify(pkt)}: the server did not close the WebSocket within 3 s ` +
        `(received ${JSON.stringify(c.messages.slice(-3))})`);
    }
    await observerStillServed(`${layer} ${JSON.stringify(pkt)}`);
    results.push(`${JSON.stringify(pkt)} -> close ${closed.code} in ${(now() - t0).toFixed(0)} ms`);
  }
  console.log(`malformed packets (observer served after each): ${results.join('; ')}`);
});

test('SIGTERM: every client sees a disconnect, the daemon exits 0 within 1 s', { timeout: 30000 }, async () => {
  const more = Array.from({ length: 5 }, () => connectClient(daemon.url, { reconnection: false }));
  sockets.push(...more);
  await Promise.all(more.map((s) => waitConnected(s)));
  const raw = await rawEngineIO(daemon.port);
  const all = [observer, ...more];
  const disc = Promise.all(all.map((s) => nextEvent(s, 'disconnect', 3000)));
  const st = await daemon.stop('SIGTERM');
  const reasons = await disc;
  const rawClose = await raw.closed;
  console.log(`SIGTERM: exit code ${st.code} signal ${st.signal} after ${st.ms} ms; ${reasons.length} socket.io clients ` +
    `disconnected (${[...new Set(reasons)].join(', ')}); raw WebSocket close code ${rawClose.code}`);
  assert.equal(st.killed, false, 'exited by itself');
  assert.equal(st.code, 0, `exit status 0\n${daemon.logTail()}`);
  assert.deepEqual(daemon.sanitizerReport(), [], 'no sanitizer report');
  assert.ok(st.ms < 1000, `exit within 1 s, took ${st.ms} ms`);
  assert.equal(rawClose.code, 1001, 'WebSocket close code 1001 (going away)');
  daemon = null;
});
