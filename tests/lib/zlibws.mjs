// A raw Engine.IO/Socket.IO WebSocket client with a real zlib inflater, for
// the permessage-deflate tests (tests/integration/pmd-live.test.mjs): the
// handshake is written by hand with the offer given, the response's
// Sec-WebSocket-Extensions is kept, frames are parsed as they are on the
// wire (their size counted), and compressed messages are inflated by one
// zlib.createInflateRaw() stream kept for the whole connection, i.e. with
// context takeover, as RFC 7692 §7.2.2 says a client does: the 00 00 ff ff
// tail appended, then a sync flush. When the server kept no context
// (server_no_context_takeover in the response) the same stream still works,
// because such frames never refer back.
//
// The inflater's windowBits is the server_max_window_bits of the response
// (15 without), so zlib checks every back-reference against the window the
// client really keeps. With { strict: true } it also writes its output 64
// bytes at a time (chunkSize 64): a distance reaching before the window
// then fails even inside one message (zlib otherwise also accepts a
// distance into the output of the same inflate() call).
//
// { forgetContext: true } is a broken client for negative controls: a new
// inflater for every message, as if the server had agreed to
// server_no_context_takeover. It must fail on frames that use the context.
//
// The client answers pings ("2" -> "3"), joins the main namespace with the
// auth given, and records every message in order:
//   { text, compressed, wire, t }   wire = bytes of its frames with headers
import crypto from 'node:crypto';
import net from 'node:net';
import zlib from 'node:zlib';
import { performance } from 'node:perf_hooks';

const TAIL = Buffer.from([0, 0, 0xff, 0xff]);

/**
 * connectZlibWs(port, { offer, auth, strict, maxMessages })
 * Resolves once the 101 arrived: { headers, extensions, windowBits, noContext,
 * msgs, send(text), pause(), resume(), close(), waitFor(pred, ms), error }.
 */
export function connectZlibWs(port, { offer = 'permessage-deflate; client_max_window_bits', auth = null, strict = false, forgetContext = false, host = '127.0.0.1' } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    const key = crypto.randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0);
    let frag = null; // { parts, compressed, wire } of a fragmented message
    let inflater = null;
    let outChunks = [];
    let chain = Promise.resolve();
    const waiters = new Set();
    const c = {
      sock, headers: null, extensions: null, windowBits: 15, noContext: false,
      msgs: [], error: null, closed: false, wireBytes: 0,
      send(text) {
        const payload = Buffer.from(text);
        const mask = crypto.randomBytes(4);
        const len = payload.length;
        let head;
        if (len < 126) head = Buffer.from([0x81, 0x80 | len]);
        else if (len < 65536) head = Buffer.from([0x81, 0x80 | 126, len >> 8, len & 255]);
        else { head = Buffer.alloc(10); head[0] = 0x81; head[1] = 0x80 | 127; head.writeBigUInt64BE(BigInt(len), 2); }
        for (let i = 0; i < len; i++) payload[i] ^= mask[i & 3];
        sock.write(Buffer.concat([head, mask, payload]));
      },
      pause() { sock.pause(); },
      resume() { sock.resume(); },
      close() { sock.destroy(); },
      /** Resolves when pred(msgs) holds (checked on every message), rejects after ms. */
      waitFor(pred, ms = 10000, what = 'a condition') {
        if (pred(c.msgs)) return Promise.resolve();
        return new Promise((res, rej) => {
          const w = {
            check() {
              if (c.error) { done(); rej(c.error); return; }
              if (pred(c.msgs)) { done(); res(); }
            },
          };
          const timer = setTimeout(() => { done(); rej(new Error(`timeout (${ms} ms) waiting for ${what}; ${c.msgs.length} messages`)); }, ms);
          function done() { clearTimeout(timer); waiters.delete(w); }
          waiters.add(w);
        });
      },
    };
    const fail = (err) => {
      if (!c.error) c.error = err;
      for (const w of [...waiters]) w.check();
    };
    const newInflater = () => {
      inflater = zlib.createInflateRaw({ windowBits: c.windowBits, ...(strict ? { chunkSize: 64 } : {}) });
      inflater.on('data', (d2) => outChunks.push(d2));
      inflater.on('error', () => {}); // reported through the pending inflate
    };
    const inflate = (payload) => new Promise((res, rej) => {
      if (forgetContext) { inflater.destroy(); newInflater(); }
      const onErr = (err) => rej(err);
      inflater.once('error', onErr);
      inflater.write(payload);
      inflater.write(TAIL);
      inflater.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        inflater.off('error', onErr);
        const out = Buffer.concat(outChunks);
        outChunks = [];
        res(out);
      });
    });
    const onMessage = (text) => {
      if (text[0] === '0') c.send(auth ? `40${JSON.stringify(auth)}` : '40');
      else if (text === '2') c.send('3');
    };
    const deliver = (m) => {
      // In order: an inflate is asynchronous, a plain message must wait for
      // the compressed ones before it.
      chain = chain.then(async () => {
        if (c.error) return;
        const data = m.compressed ? await inflate(m.payload) : m.payload;
        const text = data.toString('utf8');
        c.msgs.push({ text, compressed: m.compressed, wire: m.wire, t: performance.now() });
        onMessage(text);
        for (const w of [...waiters]) w.check();
      }).catch((err) => fail(new Error(`message ${c.msgs.length}: ${err.message}`)));
    };
    const parse = () => {
      for (;;) {
        if (buf.length < 2) return;
        const b0 = buf[0], b1 = buf[1];
        let len = b1 & 0x7f, off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
        if (buf.length < off + len) return;
        const payload = Buffer.from(buf.subarray(off, off + len));
        buf = buf.subarray(off + len);
        const op = b0 & 0x0f, fin = !!(b0 & 0x80), rsv1 = !!(b0 & 0x40);
        if (op >= 8) {
          if (op === 8) { c.closed = true; fail(new Error(`close frame ${payload.length >= 2 ? payload.readUInt16BE(0) : ''}`)); }
          continue;
        }
        if (rsv1 && !c.extensions) { fail(new Error('RSV1 without permessage-deflate')); return; }
        if (op !== 0) frag = { parts: [], compressed: rsv1, wire: 0 };
        else if (!frag) { fail(new Error('continuation without a first frame')); return; }
        frag.parts.push(payload);
        frag.wire += off + len;
        if (fin) {
          deliver({ payload: Buffer.concat(frag.parts), compressed: frag.compressed, wire: frag.wire });
          frag = null;
        }
      }
    };
    sock.on('data', (d) => {
      c.wireBytes += d.length;
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      if (!c.headers) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        c.headers = buf.subarray(0, end).toString('latin1');
        c.wireBytes -= end + 4;
        buf = buf.subarray(end + 4);
        if (!/^HTTP\/1\.1 101 /.test(c.headers)) { reject(new Error(`handshake refused: ${c.headers.split('\r\n')[0]}`)); sock.destroy(); return; }
        c.extensions = (/^sec-websocket-extensions:\s*(.*)$/im.exec(c.headers) || [])[1] || null;
        if (c.extensions) {
          const wb = /server_max_window_bits=(\d+)/.exec(c.extensions);
          c.windowBits = wb ? Math.max(9, Number(wb[1])) : 15; // zlib's raw inflate takes 9..15; 8 fits in 9
          c.noContext = /server_no_context_takeover/.test(c.extensions);
          newInflater();
        }
        resolve(c);
      }
      parse();
    });
    sock.on('close', () => { c.closed = true; fail(new Error('connection closed')); });
    sock.on('error', (err) => { if (!c.headers) reject(err); fail(err); });
    sock.write(`GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
      (offer ? `Sec-WebSocket-Extensions: ${offer}\r\n` : '') + '\r\n');
  });
}
