// Plain HTTP: /healthz (200 when ready, 503 while the database is down),
// unknown paths, and the Engine.IO error for a polling request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitForUpdate, waitForError, emitWithAck, seedShop, rawRequest, closeClients, now,
} from '../lib/daemon.mjs';

let pg, daemon, observer;

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  const db = await pg.client();
  await seedShop(db, { products: 2 });
  await db.end();
  daemon = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300'] });
  observer = connectClient(daemon.url);
  await waitForUpdate(observer, () => true, 10000); // a snapshot exists: the daemon is ready
});

after(async () => {
  if (observer) closeClients([observer]);
  try {
    if (daemon) await daemon.stopClean();
  } finally {
    if (pg) await pg.stop();
  }
});

async function get(path, init = {}) {
  const t0 = now();
  const res = await fetch(daemon.url + path, { ...init, headers: { connection: 'close', ...(init.headers || {}) } });
  const body = await res.text();
  return { status: res.status, headers: res.headers, body, ms: (now() - t0).toFixed(1) };
}

test('GET /healthz: 200 with a JSON status when ready', async () => {
  const r = await get('/healthz');
  console.log(`GET /healthz: ${r.status} in ${r.ms} ms, content-type ${r.headers.get('content-type')}, body ${r.body}`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') || '', /^application\/json/);
  const j = JSON.parse(r.body);
  assert.equal(typeof j, 'object');
});

test('unknown path: 404', async () => {
  for (const p of ['/nope', '/healthz/x', '/index.php?x=1']) {
    const r = await get(p);
    console.log(`GET ${p}: ${r.status}`);
    assert.equal(r.status, 404, `GET ${p}`);
  }
});

test('non-GET on /healthz: a proper HTTP error, not 200', async () => {
  const r = await get('/healthz', { method: 'POST', body: 'x' });
  console.log(`POST /healthz: ${r.status}`);
  assert.ok(r.status >= 400 && r.status < 500, `4xx expected, got ${r.status}`);
});

// pgpushd serves HTTP long-polling (issue 3): a polling request is an
// Engine.IO handshake, and the real client with its default transports
// (polling, then the upgrade) and with polling only works end to end.
test('polling on the Socket.IO path: a handshake, then default and polling-only clients work', { timeout: 30000 }, async () => {
  const r = await get('/socket.io/?EIO=4&transport=polling&t=abc');
  console.log(`GET /socket.io/?EIO=4&transport=polling: ${r.status} ${r.headers.get('content-type')} ${r.body}`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') || '', /^text\/plain/);
  // Long-polling is served: an Engine.IO open packet, then a default client works end to end.
  assert.match(r.body, /^0\{/, 'an Engine.IO open packet');
  const open = JSON.parse(r.body.slice(1));
  assert.equal(typeof open.sid, 'string');
  assert.deepEqual(open.upgrades, ['websocket'], 'a polling session advertises the WebSocket upgrade');
  for (const [name, opts] of [['default transports', { transports: undefined }], ["['polling'] only", { transports: ['polling'] }]]) {
    const t0 = now();
    const s = connectClient(daemon.url, { ...opts, reconnection: false });
    const { data } = await waitForUpdate(s, () => true, 10000);
    const ack = await emitWithAck(s, 'requestDashboardData', 5000);
    assert.equal(ack.version, data.version);
    let transport = s.io.engine.transport.name;
    console.log(`socket.io-client (${name}): snapshot after ${(now() - t0).toFixed(0)} ms, transport now ${transport}`);
    if (name === "['polling'] only") {
      assert.equal(transport, 'polling');
    } else {
      // The upgrade runs beside the first exchanges: wait for it.
      if (transport !== 'websocket') {
        await new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error('no upgrade to WebSocket within 5 s')), 5000);
          s.io.engine.once('upgrade', () => { clearTimeout(t); resolve(); });
        });
        transport = s.io.engine.transport.name;
      }
      assert.equal(transport, 'websocket', 'the default client upgrades to WebSocket');
      console.log(`socket.io-client (${name}): upgraded to websocket after ${(now() - t0).toFixed(0)} ms`);
    }
    s.close();
  }
});

test('HTTP/1.1 pipelining: both answered, or the first says Connection: close', async () => {
  const r = await rawRequest(daemon.port,
    'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { timeoutMs: 3000 });
  const statuses = [...r.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
  const firstCloses = /^connection:\s*close\s*$/im.test(r.text.split('\r\n\r\n')[0]);
  console.log(`pipelined /healthz + /nope: statuses ${statuses.join(', ')}, first says close: ${firstCloses}, closed=${r.closed}`);
  assert.ok(r.closed, 'the connection ends after Connection: close');
  if (firstCloses) assert.deepEqual(statuses, [200]);
  else assert.deepEqual(statuses, [200, 404]);
});

test('GET /healthz: 503 while the database is down, 200 again after', { timeout: 60000 }, async () => {
  const errMark = observer.rec.errors.length;
  const updMark = observer.rec.updates.length;
  await pg.stopServer();
  await waitForError(observer, () => true, 10000, { since: errMark }); // the daemon noticed
  const down = await get('/healthz');
  console.log(`database down: GET /healthz ${down.status} ${down.body}`);
  assert.equal(down.status, 503);
  assert.match(down.headers.get('content-type') || '', /^application\/json/);
  JSON.parse(down.body);

  const t0 = now();
  await pg.startServer();
  await waitForUpdate(observer, () => true, 60000, { since: updMark });
  const up = await get('/healthz');
  console.log(`database back: fresh data after ${(now() - t0).toFixed(0)} ms, GET /healthz ${up.status} ${up.body}`);
  assert.equal(up.status, 200);
});
