// permessage-deflate (RFC 7692), --permessage-deflate standalone (shared mode,
// the default, is tests/integration/pmd-daemon.test.mjs's): negotiated with
// the offers real clients send, one compressed frame per snapshot shared by
// every client that negotiated it,
// compressed client messages inflated with a cap, and the option to turn it
// off. A raw TCP client reads the frames as they are on the wire.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { startCluster } from '../lib/pgcluster.mjs';
import { startDaemon, connectClient, waitForUpdate, seedShop, insertSale, closeClients } from '../lib/daemon.mjs';

let pg, db, products, daemon, plainDaemon;
const sockets = [];

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  products = await seedShop(db, { products: 20 });
  // Enough sales for a document of several KB, so compression matters.
  for (let i = 0; i < 12; i++) await insertSale(db, products[i % products.length].id);
  daemon = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300', '--max-payload', '100000', '--permessage-deflate', 'standalone'] });
  plainDaemon = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300', '--permessage-deflate', 'off'] });
});

after(async () => {
  closeClients(sockets);
  try {
    if (daemon) await daemon.stopClean();
    if (plainDaemon) await plainDaemon.stopClean();
  } finally {
    if (pg) await pg.stop();
  }
});

/** A raw WebSocket client: the handshake as given, frames parsed by hand. */
function rawWs(port, extensions) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const key = crypto.randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0);
    let headers = null;
    const frames = [];
    const waiters = [];
    const c = {
      sock, frames, headers: null, closed: false,
      next(timeoutMs = 3000) {
        if (frames.length) return Promise.resolve(frames.shift());
        return new Promise((res, rej) => {
          const t = setTimeout(() => rej(new Error('no frame in time')), timeoutMs);
          waiters.push((f) => { clearTimeout(t); res(f); });
        });
      },
      async nextText(pred = () => true, timeoutMs = 3000) {
        for (;;) {
          const f = await c.next(timeoutMs);
          if (f.opcode === 1 && pred(f)) return f;
        }
      },
      send(payload, { opcode = 1, rsv1 = false } = {}) {
        const mask = crypto.randomBytes(4);
        const len = payload.length;
        const head = len < 126 ? Buffer.from([0x80 | (rsv1 ? 0x40 : 0) | opcode, 0x80 | len])
          : len < 65536 ? Buffer.from([0x80 | (rsv1 ? 0x40 : 0) | opcode, 0x80 | 126, len >> 8, len & 255])
            : (() => { const b = Buffer.alloc(10); b[0] = 0x80 | (rsv1 ? 0x40 : 0) | opcode; b[1] = 0x80 | 127; b.writeBigUInt64BE(BigInt(len), 2); return b; })();
        const masked = Buffer.from(payload);
        for (let i = 0; i < masked.length; i++) masked[i] ^= mask[i & 3];
        sock.write(Buffer.concat([head, mask, masked]));
      },
    };
    const push = (f) => { const w = waiters.shift(); if (w) w(f); else frames.push(f); };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!headers) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        headers = buf.subarray(0, end).toString('latin1');
        c.headers = headers;
        buf = buf.subarray(end + 4);
        if (!/^HTTP\/1\.1 101 /.test(headers)) { reject(new Error(`handshake refused: ${headers}`)); return; }
        resolve(c);
      }
      for (;;) {
        if (buf.length < 2) return;
        const b0 = buf[0], b1 = buf[1];
        let len = b1 & 0x7f, off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
        if (buf.length < off + len) return;
        const payload = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        const f = { fin: !!(b0 & 0x80), rsv1: !!(b0 & 0x40), opcode: b0 & 0x0f, wire: off + len, payload };
        f.data = f.rsv1 ? zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH }) : payload;
        f.text = f.data.toString('utf8');
        push(f);
      }
    });
    sock.on('close', () => { c.closed = true; push({ opcode: -1, text: '' }); });
    sock.on('error', reject);
    sock.write(`GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
      (extensions ? `Sec-WebSocket-Extensions: ${extensions}\r\n` : '') + '\r\n');
  });
}

async function joined(port, ext) {
  const c = await rawWs(port, ext);
  await c.nextText((f) => f.text.startsWith('0{'));
  c.send(Buffer.from('40'));
  await c.nextText((f) => f.text.startsWith('40{'));
  const snap = await c.nextText((f) => f.text.startsWith('42["dashboardDataUpdate"'));
  return { c, snap };
}

test('the offers of Chrome, Firefox and Node ws are accepted without context takeover', async () => {
  for (const offer of ['permessage-deflate; client_max_window_bits', 'permessage-deflate',
    'permessage-deflate; client_max_window_bits=15; server_no_context_takeover']) {
    const c = await rawWs(daemon.port, offer);
    const ext = /^sec-websocket-extensions:\s*(.*)$/im.exec(c.headers)?.[1];
    console.log(`offer "${offer}" -> "${ext}"`);
    assert.ok(ext, 'an extension answered');
    assert.match(ext, /^permessage-deflate/);
    assert.match(ext, /server_no_context_takeover/);
    c.sock.destroy();
  }
  const c = await rawWs(daemon.port, 'x-webkit-deflate-frame');
  assert.ok(!/sec-websocket-extensions/i.test(c.headers), 'an unknown extension is declined by silence');
  c.sock.destroy();
});

test('snapshots go out compressed (RSV1), the same bytes for every client, smaller on the wire', async () => {
  const a = await joined(daemon.port, 'permessage-deflate; client_max_window_bits');
  const b = await joined(daemon.port, 'permessage-deflate');
  const p = await joined(daemon.port, null);
  assert.ok(a.snap.rsv1 && b.snap.rsv1, 'compressed for the clients that negotiated it');
  assert.ok(!p.snap.rsv1, 'plain for the client that did not');
  assert.equal(a.snap.text, p.snap.text, 'the same document either way');
  assert.ok(a.snap.payload.equals(b.snap.payload), 'one compressed frame shared by both clients');
  const sale = await insertSale(db, products[0].id);
  const [ua, up] = await Promise.all([
    a.c.nextText((f) => f.text.includes(`"id":${sale.id},`) || f.text.includes(`"id" : ${sale.id},`)),
    p.c.nextText((f) => f.text.includes(`"id":${sale.id},`) || f.text.includes(`"id" : ${sale.id},`)),
  ]);
  assert.ok(ua.rsv1 && !up.rsv1);
  assert.equal(ua.text, up.text);
  console.log(`snapshot on the wire: ${up.wire} bytes plain, ${ua.wire} bytes compressed (${(100 * ua.wire / up.wire).toFixed(1)} %)`);
  assert.ok(ua.wire < up.wire / 2, 'JSON compresses at least 2:1');
  for (const x of [a, b, p]) x.c.sock.destroy();
});

test('a compressed client message is inflated; one inflating past --max-payload is closed with 1009', async () => {
  const { c } = await joined(daemon.port, 'permessage-deflate');
  // requestDashboardData with an ack and a large (compressible) argument.
  const msg = Buffer.from(`4242["requestDashboardData",${JSON.stringify('x'.repeat(20000))}]`);
  const z = zlib.deflateRawSync(msg, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4);
  c.send(z, { rsv1: true });
  const ack = await c.nextText((f) => f.text.startsWith('4342['));
  assert.ok(ack.text.includes('"version"'), 'the ack carries the document');
  console.log(`compressed request: ${msg.length} bytes sent as ${z.length}; ack ${ack.wire} bytes on the wire (rsv1=${ack.rsv1})`);

  // 10 MB of one character: a few KB compressed, far past --max-payload 100000.
  const bomb = zlib.deflateRawSync(Buffer.alloc(10 << 20, 0x61), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4);
  c.send(bomb, { rsv1: true });
  let f;
  do { f = await c.next(3000); } while (f.opcode !== 8 && f.opcode !== -1);
  assert.equal(f.opcode, 8, 'a close frame');
  const code = f.data.readUInt16BE(0);
  console.log(`zip bomb: ${bomb.length} bytes inflating to 10 MB -> close ${code}`);
  assert.equal(code, 1009);
});

test('corrupt compressed data and invalid UTF-8 inside compressed text are closed (1007)', async () => {
  for (const [name, payload] of [
    ['corrupt', Buffer.from([0xff, 0xff, 0xff, 0x00, 0x12])],
    ['invalid UTF-8', zlib.deflateRawSync(Buffer.from([0x34, 0x32, 0xc3, 0x28]), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4)],
  ]) {
    const { c } = await joined(daemon.port, 'permessage-deflate');
    c.send(payload, { rsv1: true });
    let f;
    do { f = await c.next(3000); } while (f.opcode !== 8 && f.opcode !== -1);
    assert.equal(f.opcode, 8, `${name}: a close frame`);
    console.log(`${name}: close ${f.data.readUInt16BE(0)}`);
    assert.equal(f.data.readUInt16BE(0), 1007);
  }
});

test('--permessage-deflate off: offers are declined, frames are plain, RSV1 from a client is refused', async () => {
  const { c, snap } = await joined(plainDaemon.port, 'permessage-deflate; client_max_window_bits');
  assert.ok(!/sec-websocket-extensions/i.test(c.headers), 'no extension answered');
  assert.ok(!snap.rsv1, 'a plain frame');
  c.send(zlib.deflateRawSync(Buffer.from('42["x"]')), { rsv1: true });
  let f;
  do { f = await c.next(3000); } while (f.opcode !== 8 && f.opcode !== -1);
  assert.equal(f.opcode, 8, 'a close frame');
  assert.equal(f.data.readUInt16BE(0), 1002, 'RSV1 not negotiated: protocol error');
});

test('the stock socket.io-client (which offers compression) gets data through it', async () => {
  const s = connectClient(daemon.url);
  sockets.push(s);
  const { data } = await waitForUpdate(s, () => true, 5000);
  assert.ok(Array.isArray(data.recentSales));
  const sale = await insertSale(db, products[1].id);
  await waitForUpdate(s, (d) => d.recentSales[0]?.id === sale.id, 5000);
});
