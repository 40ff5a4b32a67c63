// The Origin allowlist (--allowed-origin) on both transports, and CORS for
// long-polling: refused origins get 403 (polling, the reference server's
// JSON error code 4) or a refused upgrade (WebSocket, plain 400); allowed
// ones get their origin echoed with credentials; with no list, "*".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/pgcluster.mjs';
import { startDaemon, rawRequest, seedShop } from '../lib/daemon.mjs';

const GOOD = 'http://dashboard.example';
let pg, db, strict, open;

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  await seedShop(db, { products: 2 });
  strict = await startDaemon({ db: pg.conninfo, args: ['--allowed-origin', `${GOOD}, https://other.example`] });
  open = await startDaemon({ db: pg.conninfo });
});

after(async () => {
  try {
    if (strict) await strict.stopClean();
    if (open) await open.stopClean();
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

const upgrade = (origin) => 'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n' +
  'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
  (origin ? `Origin: ${origin}\r\n` : '') + '\r\n';
const poll = (origin, method = 'GET', extra = '') => `${method} /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n` +
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

test('no --allowed-origin: any origin, with Access-Control-Allow-Origin: *', async () => {
  const r = head((await rawRequest(open.port, poll('http://anywhere.example'))).text);
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], '*');
  const w = head((await rawRequest(open.port, upgrade("http://anywhere.example"), { timeoutMs: 600 })).text);
  assert.equal(w.status, 101);
});
