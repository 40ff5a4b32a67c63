// The Origin policy on both transports, and CORS for long-polling (issue 8,
// finding 11). By default only the same origin (the Origin names the Host
// the browser sent) and requests without an Origin (not a browser's page)
// are allowed; --allowed-origin adds origins, "*" allows any (explicitly).
// Refused origins get 403 (polling, the reference server's JSON error code
// 4) or a refused upgrade (WebSocket, plain 400 "Forbidden"), and one log
// line that names the option to set; allowed ones get their origin echoed
// with credentials and Vary: Origin, never "*" unless "*" was asked for.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/pgcluster.mjs';
import { startDaemon, rawRequest, seedShop } from '../lib/daemon.mjs';

const GOOD = 'http://dashboard.example';
let pg, db, strict, dflt, dev, any;

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  await seedShop(db, { products: 2 });
  strict = await startDaemon({ db: pg.conninfo, args: ['--allowed-origin', `${GOOD}, https://other.example`] });
  dflt = await startDaemon({ db: pg.conninfo });
  dev = await startDaemon({ db: pg.conninfo, args: ['--allowed-origin', 'http://localhost:5173'] });
  any = await startDaemon({ db: pg.conninfo, args: ['--allowed-origin', '*'] });
});

after(async () => {
  try {
    if (strict) await strict.stopClean();
    for (const d of [dflt, dev, any]) if (d) await d.stopClean();
  } finally {
    if (db) await db.end();
    if (pg) await pg.stop();
  }
});

function head(text) {
  const [h, ...rest] = text.split('\r\n\r\n');
  const lines = h.split('\r\n');
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])?.[1]), headers, body: rest.join('\r\n\r\n') };
}

const upgrade = (origin, host = 'x') => `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\n` +
  'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
  (origin ? `Origin: ${origin}\r\n` : '') + '\r\n';
const poll = (origin, method = 'GET', extra = '', host = 'x') => `${method} /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: ${host}\r\n` +
  (origin ? `Origin: ${origin}\r\n` : '') + extra + 'Connection: close\r\n\r\n';

test('WebSocket: a listed origin upgrades, an unlisted one is refused, no Origin (not a browser) upgrades', async () => {
  for (const [origin, want] of [[GOOD, 101], ['http://evil.example', 400], [null, 101], ['https://other.example', 101]]) {
    const r = head((await rawRequest(strict.port, upgrade(origin), { timeoutMs: 600 })).text);
    console.log(`WebSocket upgrade, Origin ${origin ?? '(none)'}: ${r.status}${r.status === 400 ? ` "${r.body.trim()}"` : ''}`);
    assert.equal(r.status, want);
    if (want === 400) assert.equal(r.body.trim(), 'Forbidden');
  }
});

test('polling: an unlisted origin gets 403 {"code":4}; a listed one its origin back with credentials', async () => {
  const bad = head((await rawRequest(strict.port, poll('http://evil.example'))).text);
  assert.equal(bad.status, 403);
  assert.deepEqual(JSON.parse(bad.body), { code: 4, message: 'Forbidden' });
  const good = head((await rawRequest(strict.port, poll(GOOD))).text);
  assert.equal(good.status, 200);
  assert.equal(good.headers['access-control-allow-origin'], GOOD);
  assert.equal(good.headers['access-control-allow-credentials'], 'true');
  assert.match(good.headers.vary || '', /Origin/);
  console.log(`polling: evil origin ${bad.status} ${bad.body}; listed origin ${good.status}, ACAO ${good.headers['access-control-allow-origin']}`);
});

test('preflight: OPTIONS answered 204 for a listed origin, 403 for another', async () => {
  const extra = 'Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n';
  const good = head((await rawRequest(strict.port, poll(GOOD, 'OPTIONS', extra))).text);
  assert.equal(good.status, 204);
  assert.equal(good.headers['access-control-allow-origin'], GOOD);
  assert.match(good.headers['access-control-allow-methods'] || '', /POST/);
  assert.equal(good.headers['access-control-allow-headers'], 'content-type');
  const bad = head((await rawRequest(strict.port, poll('http://evil.example', 'OPTIONS', extra))).text);
  assert.equal(bad.status, 403);
});

// ------------------------------------------- the default: same origin ------

const EVIL = 'http://evil.example';

test('default: another site\'s Origin is refused on both transports (403 / refused upgrade), and the preflight too', async () => {
  const host = `127.0.0.1:${dflt.port}`;
  const p = head((await rawRequest(dflt.port, poll(EVIL, 'GET', '', host))).text);
  assert.equal(p.status, 403, 'polling handshake');
  assert.deepEqual(JSON.parse(p.body), { code: 4, message: 'Forbidden' });
  assert.equal(p.headers['access-control-allow-origin'], undefined, 'no CORS for a refused origin');
  const w = head((await rawRequest(dflt.port, upgrade(EVIL, host), { timeoutMs: 600 })).text);
  assert.equal(w.status, 400, 'WebSocket upgrade refused');
  assert.equal(w.body.trim(), 'Forbidden');
  const extra = 'Access-Control-Request-Method: POST\r\n';
  const o = head((await rawRequest(dflt.port, poll(EVIL, 'OPTIONS', extra, host))).text);
  assert.equal(o.status, 403, 'preflight');
  // A page on the same host but another port (a dev server) is another origin.
  const d = head((await rawRequest(dflt.port, poll('http://127.0.0.1:5173', 'GET', '', host))).text);
  assert.equal(d.status, 403, 'another port of the same host');
  console.log(`default policy, Origin ${EVIL} with Host ${host}: polling ${p.status} ${p.body}, upgrade ${w.status}, preflight ${o.status}; ` +
    `Origin http://127.0.0.1:5173: ${d.status}`);
});

test('default: a POST from another site never reaches a session', async () => {
  const host = `127.0.0.1:${dflt.port}`;
  const hs = head((await rawRequest(dflt.port, poll(null, 'GET', '', host))).text);
  assert.equal(hs.status, 200);
  const sid = JSON.parse(hs.body.slice(1)).sid;
  const body = '40';
  const r = head((await rawRequest(dflt.port, `POST /socket.io/?EIO=4&transport=polling&sid=${sid} HTTP/1.1\r\nHost: ${host}\r\n` +
    `Origin: ${EVIL}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)).text);
  assert.equal(r.status, 403);
});

test('default: the same origin passes (host and port, case-insensitive, default ports), with CORS naming it', async () => {
  const cases = [
    [`http://127.0.0.1:${dflt.port}`, `127.0.0.1:${dflt.port}`],
    [`http://LocalHost:${dflt.port}`, `localhost:${dflt.port}`],
    ['http://dashboard.example', 'dashboard.example'],        // a proxy on port 80
    ['https://dashboard.example', 'dashboard.example'],       // TLS ends at a proxy that passes Host
    ['https://dashboard.example', 'dashboard.example:443'],
    ['http://[::1]:8080', '[::1]:8080'],
  ];
  for (const [origin, host] of cases) {
    const p = head((await rawRequest(dflt.port, poll(origin, 'GET', '', host))).text);
    assert.equal(p.status, 200, `polling, Origin ${origin}, Host ${host}`);
    assert.equal(p.headers['access-control-allow-origin'], origin, 'CORS names the origin');
    assert.match(p.headers.vary || '', /Origin/);
    const w = head((await rawRequest(dflt.port, upgrade(origin, host), { timeoutMs: 600 })).text);
    assert.equal(w.status, 101, `upgrade, Origin ${origin}, Host ${host}`);
  }
  // The browser's Origin must name the Host: the port counts.
  for (const [origin, host] of [['https://dashboard.example', 'dashboard.example:80'], ['http://dashboard.example:8080', 'dashboard.example']]) {
    const p = head((await rawRequest(dflt.port, poll(origin, 'GET', '', host))).text);
    assert.equal(p.status, 403, `Origin ${origin} with Host ${host}`);
  }
});

test('default: no Origin (not a browser\'s page) passes on both transports, without CORS', async () => {
  const p = head((await rawRequest(dflt.port, poll(null))).text);
  assert.equal(p.status, 200);
  assert.equal(p.headers['access-control-allow-origin'], undefined);
  const w = head((await rawRequest(dflt.port, upgrade(null), { timeoutMs: 600 })).text);
  assert.equal(w.status, 101);
});

test('default: Access-Control-Allow-Origin is never *', async () => {
  const host = `127.0.0.1:${dflt.port}`;
  const seen = [];
  for (const origin of [null, EVIL, `http://${host}`, 'null', 'http://x']) {
    for (const method of ['GET', 'OPTIONS']) {
      const extra = method === 'OPTIONS' ? 'Access-Control-Request-Method: POST\r\n' : '';
      const r = head((await rawRequest(dflt.port, poll(origin, method, extra, host))).text);
      seen.push(`${method} ${origin}: ${r.status} ${r.headers['access-control-allow-origin'] ?? '-'}`);
      assert.notEqual(r.headers['access-control-allow-origin'], '*', `${method} with Origin ${origin}`);
    }
  }
  console.log(`default CORS: ${seen.join('; ')}`);
});

test('default: a refusal logs one line that names --allowed-origin', async () => {
  const mark = dflt.mark();
  const host = `localhost:${dflt.port}`;
  await rawRequest(dflt.port, poll(EVIL, 'GET', '', host));
  const text = (await dflt.waitForLog(/origin refused/, 3000, { since: mark })).line;
  console.log(`log: ${text}`);
  assert.match(text, new RegExp(`Origin http://evil\\.example does not match Host ${host}; allow it with --allowed-origin http://evil\\.example`));
  assert.equal(dflt.grep(/origin refused/, mark).length, 1, 'one line per refusal');
});

test('--allowed-origin http://localhost:5173 allows that dev server (CORS names it), and only it', async () => {
  const host = `127.0.0.1:${dev.port}`;
  const p = head((await rawRequest(dev.port, poll('http://localhost:5173', 'GET', '', host))).text);
  assert.equal(p.status, 200);
  assert.equal(p.headers['access-control-allow-origin'], 'http://localhost:5173');
  assert.match(p.headers.vary || '', /Origin/);
  const w = head((await rawRequest(dev.port, upgrade('http://localhost:5173', host), { timeoutMs: 600 })).text);
  assert.equal(w.status, 101);
  const same = head((await rawRequest(dev.port, poll(`http://${host}`, 'GET', '', host))).text);
  assert.equal(same.status, 200, 'the same origin still passes');
  const mark = dev.mark();
  const bad = head((await rawRequest(dev.port, poll(EVIL, 'GET', '', host))).text);
  assert.equal(bad.status, 403);
  const line = (await dev.waitForLog(/origin refused/, 3000, { since: mark })).line;
  assert.match(line, /is not listed; allow it with --allowed-origin http:\/\/localhost:5173,http:\/\/evil\.example/);
});

test('--allowed-origin * (explicit) allows any origin, with Access-Control-Allow-Origin: *', async () => {
  const r = head((await rawRequest(any.port, poll('http://anywhere.example'))).text);
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], '*');
  assert.equal(r.headers['access-control-allow-credentials'], undefined, 'no credentials with *');
  const w = head((await rawRequest(any.port, upgrade('http://anywhere.example'), { timeoutMs: 600 })).text);
  assert.equal(w.status, 101);
});
