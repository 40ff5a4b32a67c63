// Shared-context permessage-deflate (issue 14) against real clients, without
// the daemon (written before its broadcast path was wired; pmd-daemon.test.mjs
// tests the daemon): tests/pmd-stream (tests/tools/
// pmd-stream.c) negotiates the client's offer with pmdneg_negotiate_mode(shared)
// and writes the frames one client would get: one-sale dashboards (29 KB)
// deflated with the previous one as the dictionary (pmd_frame_with_dict),
// latest-wins skips, plain pings, acks recorded as a suffix of the snapshot,
// and self-contained frames after the server let go of what it held. A small
// TCP server here plays them after the handshake. The clients are ws 8 (the
// transport of socket.io-client in Node) with its default offer, with
// server_max_window_bits 8, 9, 10 and 12, and with server_no_context_takeover
// (standalone frames), and headless Chromium. Every message must read back
// byte for byte.
//
// Needs: make check (or make tests/pmd-stream). No database.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { repoRoot } from '../lib/pgcluster.mjs';

const require = createRequire(path.join(repoRoot, 'package.json'));
const WebSocket = require('ws');

const TOOL = process.env.PMD_STREAM || path.join(repoRoot, 'tests', 'pmd-stream');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const MESSAGES = 150;

let server, port;
// What each connection was sent, by the path it asked for.
const sent = new Map();

/** The stream for one offer: the response and [frame, text] pairs. */
function stream(offer, seed) {
  const out = execFileSync(TOOL, [offer, String(MESSAGES), String(seed)],
    { maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
  const nl = out.indexOf(10);
  const head = out.subarray(0, nl).toString();
  const msgs = [];
  for (let i = nl + 1; i < out.length;) {
    const fl = out.readUInt32BE(i);
    const frame = out.subarray(i + 4, i + 4 + fl);
    i += 4 + fl;
    const pl = out.readUInt32BE(i);
    const text = out.subarray(i + 4, i + 4 + pl);
    i += 4 + pl;
    msgs.push({ frame, text });
  }
  return { response: head.startsWith('RESP ') ? head.slice(5) : null, msgs };
}

before(async () => {
  assert.ok(fs.existsSync(TOOL), `${TOOL} is missing: run make check (or make tests/pmd-stream)`);
  server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('error', () => {});
    sock.on('data', function onData(d) {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.off('data', onData);
      const lines = buf.subarray(0, end).toString().split('\r\n');
      const reqPath = lines[0].split(' ')[1];
      const hdr = {};
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':');
        const k = l.slice(0, c).trim().toLowerCase();
        hdr[k] = hdr[k] ? `${hdr[k]}, ${l.slice(c + 1).trim()}` : l.slice(c + 1).trim();
      }
      const seed = Number(new URL(reqPath, 'http://x').searchParams.get('seed') || 1);
      const s = stream(hdr['sec-websocket-extensions'] || '', seed);
      sent.set(reqPath, { offer: hdr['sec-websocket-extensions'], ...s });
      const accept = crypto.createHash('sha1')
        .update(hdr['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\n` +
        (s.response ? `Sec-WebSocket-Extensions: ${s.response}\r\n` : '') + '\r\n');
      // In a few writes, so frames also arrive split across reads.
      const all = Buffer.concat(s.msgs.map((m) => m.frame));
      for (let i = 0; i < all.length; i += 100000) sock.write(all.subarray(i, i + 100000));
    });
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  port = server.address().port;
});

after(() => server && server.close());

function check(name, reqPath, got) {
  const s = sent.get(reqPath);
  assert.ok(s, `${name}: the server saw the request`);
  assert.equal(got.length, s.msgs.length, `${name}: every message arrived`);
  let compressed = 0, bytes = 0, plainBytes = 0;
  for (let i = 0; i < s.msgs.length; i++) {
    assert.ok(Buffer.from(got[i]).equals(s.msgs[i].text), `${name}: message ${i} byte for byte`);
    if (s.msgs[i].frame[0] & 0x40) compressed++;
    bytes += s.msgs[i].frame.length;
    plainBytes += s.msgs[i].text.length;
  }
  return { offer: s.offer, response: s.response, compressed, bytes, plainBytes, n: s.msgs.length };
}

function wsClient(reqPath, perMessageDeflate) {
  return new Promise((resolve, reject) => {
    const got = [];
    const ws = new WebSocket(`ws://127.0.0.1:${port}${reqPath}`, { perMessageDeflate, maxPayload: 1 << 20 });
    ws.on('message', (data) => {
      got.push(Buffer.from(data));
      if (got.length === MESSAGES) { ws.terminate(); resolve(got); }
    });
    ws.on('error', reject);
    ws.on('close', () => resolve(got));
  });
}

const wsCases = [
  ['ws, default offer', true, true],
  ['ws, server_max_window_bits=12', { serverMaxWindowBits: 12 }, true],
  ['ws, server_max_window_bits=10', { serverMaxWindowBits: 10 }, true],
  ['ws, server_max_window_bits=9', { serverMaxWindowBits: 9 }, true],
  ['ws, server_max_window_bits=8 (deflated with 9)', { serverMaxWindowBits: 8 }, true],
  ['ws, server_no_context_takeover (standalone frames)', { serverNoContextTakeover: true }, false],
  ['ws, no permessage-deflate', false, null],
];

wsCases.forEach(([name, opt, shared], i) => {
  test(name, async () => {
    const reqPath = `/ws${i}?seed=${i + 1}`;
    const got = await wsClient(reqPath, opt);
    const r = check(name, reqPath, got);
    console.log(`# ${name}: offer "${r.offer}" -> "${r.response}"; ${r.n} messages, ${r.compressed} ` +
      `compressed, ${r.bytes} B of frames for ${r.plainBytes} B of text`);
    if (shared === null) assert.equal(r.compressed, 0);
    else assert.ok(r.compressed > MESSAGES / 2, 'most messages compressed');
    if (shared === false) assert.match(r.response, /server_no_context_takeover/);
    if (shared === true) assert.doesNotMatch(r.response, /server_no_context_takeover/);
  });
});

test('headless Chromium', { skip: fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} not found` }, async () => {
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    const reqPath = '/chromium?seed=42';
    const got = await page.evaluate(({ url, n }) => new Promise((resolve, reject) => {
      const msgs = [];
      const ws = new WebSocket(url);
      ws.onmessage = (e) => {
        msgs.push(e.data);
        if (msgs.length === n) { ws.close(); resolve(msgs); }
      };
      ws.onerror = () => reject(new Error('WebSocket error'));
      ws.onclose = (e) => resolve(msgs.length === n ? msgs : [`closed ${e.code} after ${msgs.length}`]);
    }), { url: `ws://127.0.0.1:${port}${reqPath}`, n: MESSAGES });
    const r = check('Chromium', reqPath, got.map((t) => Buffer.from(t, 'utf8')));
    console.log(`# Chromium: offer "${r.offer}" -> "${r.response}"; ${r.n} messages, ${r.compressed} ` +
      `compressed, ${r.bytes} B of frames for ${r.plainBytes} B of text`);
    assert.doesNotMatch(r.response, /server_no_context_takeover/);
  } finally {
    await browser.close();
  }
});
