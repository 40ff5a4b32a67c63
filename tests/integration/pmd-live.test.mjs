// Shared-context permessage-deflate (issue 14), the daemon end to end:
// pgpushd --permessage-deflate shared against real inflaters, every message
// decoded and checked byte for byte.
//
// The oracle: clients that did not offer permessage-deflate, connected to
// the same daemon, reading fast. Their frames are plain, so their bytes are
// the text the server produced, with no inflater in between; every version
// a compressing client decodes must be byte for byte the oracle's text of
// that version (a patch the oracle's text of the same from->to, and, applied,
// the oracle's document of its "to"; an ack 43<k>[doc] the oracle's document
// of its version). Sales are made one at a time, each waiting until the
// oracle has its version, so the oracle has every version.
//
// The inflaters: headless Chromium's (a bare WebSocket speaking Engine.IO in
// a page the daemon serves), socket.io-client over ws 8 (its default
// perMessageDeflate offer, the text taken from Engine.IO's packet event),
// and Node's zlib (tests/lib/zlibws.mjs: one createInflateRaw per
// connection, kept across messages, so with context takeover; the frames'
// wire sizes counted).
//
// 1. The demo dashboard (29 KB), 100 sales: clients from the start, others
//    joining at sale 33 (zlib), at 50 (Chromium, socket.io-client) and at 66
//    (zlib, deltas); requestDashboardData acks every 10 sales;
//    a client with deltas (patch frames); a client with
//    server_max_window_bits=10 (its inflater checks each distance with 64-byte
//    writes) and one offering server_no_context_takeover (standalone frames)
//    in the same broadcasts. The response header must not say
//    server_no_context_takeover to those that allow context takeover, and
//    after the first message their snapshots must be compressed and small.
// 2. Latest-wins skips forced: a 600 KB document that does not compress
//    (md5 hex), a client that stops reading (its socket paused) while 30
//    sales are made, a client joining meanwhile, then it reads again, asks
//    for acks, and 10 more sales. It must have skipped versions, and every
//    message it decodes must be right.
//
// Needs pgpushd with --permessage-deflate shared; Chromium for the browser
// part (skipped with the reason otherwise).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { startCluster, repoRoot } from '../lib/pgcluster.mjs';
import { startDaemon, connectClient, closeClients, insertSale, emitWithAck, daemonPath, sleep } from '../lib/daemon.mjs';
import { connectZlibWs } from '../lib/zlibws.mjs';
import { applyPatch } from '../../contrib/client/src/pgpush-client.js';

const require = createRequire(path.join(repoRoot, 'package.json'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const help = (() => { try { return execFileSync(daemonPath, ['--help'], { encoding: 'utf8' }); } catch (e) { return String(e.stdout || ''); } })();
// PMD_LIVE_MODE=on runs the harness against another mode (its checks of
// context takeover then fail): to see the harness itself work.
const MODE = process.env.PMD_LIVE_MODE || 'shared';
const skip = MODE !== 'shared' || /shared/.test((/--permessage-deflate[\s\S]*?(?=\n  --|$)/.exec(help) || [''])[0]) ? false
  : 'pgpushd has no --permessage-deflate shared yet (issue 14)';
const skipBrowser = skip || (fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} not found`);

const UPD = '42["dashboardDataUpdate",';
const PATCH = '42["dashboardDataPatch",';
const CTX_OFFER = 'permessage-deflate; client_max_window_bits';

let pg, db, productId, workDir;
const sockets = [];

before(async () => {
  if (skip) return;
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-pmd-live-'));
  fs.writeFileSync(path.join(workDir, 'index.html'), '<!doctype html><title>pmd</title>\n');
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql', 'sql/demo-data.sql'] });
  db = await pg.client();
  [{ id: productId }] = (await db.query('SELECT id FROM products ORDER BY id LIMIT 1')).rows;
});

after(async () => {
  closeClients(sockets);
  if (db) await db.end().catch(() => {});
  if (pg) await pg.stop();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

// ------------------------------------------------------------ messages ----

/** What a message is: update, patch, ack or other, with its version(s). */
function classify(text) {
  if (text.startsWith(UPD)) {
    const doc = text.slice(UPD.length, -1);
    return { type: 'update', doc, version: JSON.parse(doc).version };
  }
  if (text.startsWith(PATCH)) {
    const p = JSON.parse(text.slice(PATCH.length, -1));
    return { type: 'patch', from: p.from, to: p.to, patch: p.patch };
  }
  const a = /^43(\d+)\[/.exec(text);
  if (a) {
    const doc = text.slice(a[0].length, -1);
    const o = JSON.parse(doc);
    return { type: 'ack', id: Number(a[1]), doc, version: o.version, error: o.error };
  }
  return { type: 'other' };
}

/** The oracle's documents by version and patches by "from>to". */
function oracleOf(plain, plainDeltas) {
  const docs = new Map(), patches = new Map();
  for (const m of plain.msgs) {
    const k = classify(m.text);
    if (k.type === 'update') docs.set(k.version, k.doc);
  }
  for (const m of plainDeltas ? plainDeltas.msgs : []) {
    const k = classify(m.text);
    if (k.type === 'patch') patches.set(`${k.from}>${k.to}`, m.text);
    if (k.type === 'update' && !docs.has(k.version)) docs.set(k.version, k.doc);
  }
  return { docs, patches };
}

/**
 * Checks every message of one client against the oracle; returns counts.
 * texts: [{ text, compressed?, wire? }] in the order received.
 */
function verify(name, msgs, oracle) {
  const r = { updates: 0, patches: 0, patchesByte: 0, acks: 0, versions: new Set(), compressed: 0, updateWires: [] };
  let held = null;
  msgs.forEach((m, i) => {
    const k = classify(m.text);
    const where = `${name}: message ${i} (${k.type}${k.version ? ` v${k.version}` : ''}${k.to ? ` ${k.from}->${k.to}` : ''})`;
    if (k.type === 'update' || (k.type === 'ack' && !k.error)) {
      const o = oracle.docs.get(k.version);
      assert.ok(o !== undefined, `${where}: a version the oracle got`);
      assert.ok(k.doc === o, `${where}: byte for byte the server's document (${k.doc.length} vs ${o.length} chars)`);
      held = JSON.parse(k.doc);
      r.versions.add(k.version);
      if (k.type === 'update') {
        r.updates++;
        if (m.compressed) r.compressed++;
        if (m.wire) r.updateWires.push(m.wire);
      } else r.acks++;
    } else if (k.type === 'patch') {
      assert.ok(held, `${where}: a patch after a document`);
      assert.equal(held.version, k.from, `${where}: from the version held`);
      const o = oracle.patches.get(`${k.from}>${k.to}`);
      if (o !== undefined) {
        assert.ok(m.text === o, `${where}: byte for byte the oracle's patch`);
        r.patchesByte++;
      }
      held = applyPatch(held, k.patch);
      const doc = oracle.docs.get(k.to);
      assert.ok(doc !== undefined, `${where}: a version the oracle got`);
      assert.deepEqual(held, JSON.parse(doc), `${where}: applied, the server's document of ${k.to}`);
      r.versions.add(k.to);
      r.patches++;
    }
  });
  return r;
}

const lastVersion = (c) => {
  for (let i = c.msgs.length - 1; i >= 0; i--) {
    const k = classify(c.msgs[i].text);
    if (k.type === 'update') return k.version;
  }
  return 0;
};
const hasVersion = (msgs, v) => msgs.some((m) => {
  const k = classify(m.text);
  return k.version === v || k.to === v;
});
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[s.length >> 1] : null; };

/** One sale; resolves with its version once the oracle has it. */
async function sale(oracle) {
  const before = lastVersion(oracle);
  await insertSale(db, productId);
  await oracle.waitFor(() => lastVersion(oracle) > before, 15000, 'the sale at the oracle');
  return lastVersion(oracle);
}

async function joined(c) {
  await c.waitFor((ms) => ms.some((m) => m.text.startsWith(UPD)), 15000, 'the first snapshot');
  return c;
}

const assertContext = (name, ext) => {
  assert.match(ext || '', /permessage-deflate/, `${name}: permessage-deflate negotiated`);
  assert.doesNotMatch(ext, /server_no_context_takeover/, `${name}: context takeover kept ("${ext}")`);
};

// ---------------------------------------------------------------- tests ----

/** socket.io-client over ws, every Engine.IO message's text kept in order. */
function sioClient(url) {
  const s = connectClient(url);
  sockets.push(s);
  s.raw = [];
  s.io.on('open', () => {
    s.io.engine.on('packet', (p) => { if (p.type === 'message') s.raw.push({ text: `4${p.data}` }); });
  });
  return s;
}

test('demo dashboard, 100 sales: Chromium, socket.io-client and zlib decode every message byte for byte', { skip, timeout: 240000 }, async () => {
  const d = await startDaemon({
    db: pg.conninfo,
    args: ['--permessage-deflate', MODE, '--refresh-interval', '300', '--static-dir', workDir],
  });
  let browser;
  try {
    const oracle = await joined(await connectZlibWs(d.port, { offer: null }));
    const oracleD = await joined(await connectZlibWs(d.port, { offer: null, auth: { deltas: true } }));
    const z = {
      ctx: await connectZlibWs(d.port, { offer: CTX_OFFER }),
      w10: await connectZlibWs(d.port, { offer: 'permessage-deflate; server_max_window_bits=10', strict: true }),
      alone: await connectZlibWs(d.port, { offer: 'permessage-deflate; server_no_context_takeover' }),
      deltas: await connectZlibWs(d.port, { offer: CTX_OFFER, auth: { deltas: true } }),
    };
    for (const c of Object.values(z)) await joined(c);
    // Negative control: a client that drops its window after every message
    // must fail, or the frames did not use the context.
    const forgetful = await joined(await connectZlibWs(d.port, { offer: CTX_OFFER, forgetContext: true }));
    const sio = sioClient(d.url);
    await new Promise((res) => sio.on('dashboardDataUpdate', res));

    // A page of the daemon's with a bare WebSocket speaking Engine.IO: the
    // text of every message, in order, in window.msgs.
    const openPage = async () => {
      const pg1 = await browser.newPage();
      await pg1.goto(`${d.url}/`);
      await pg1.evaluate(() => {
        window.msgs = [];
        let updates = 0, ack = 0;
        const ws = new WebSocket(`ws://${location.host}/socket.io/?EIO=4&transport=websocket`);
        window.pmdWs = ws;
        ws.onmessage = (e) => {
          const t = e.data;
          if (t[0] === '0') { ws.send('40'); return; }
          if (t === '2') { ws.send('3'); return; }
          window.msgs.push(t);
          // An ack every 10 snapshots, between the broadcasts.
          if (t.startsWith('42["dashboardDataUpdate"') && ++updates % 10 === 0) ws.send(`42${++ack}["requestDashboardData"]`);
        };
      });
      await pg1.waitForFunction(() => window.msgs.some((t) => t.startsWith('42["dashboardDataUpdate"')), null, { timeout: 15000 });
      return pg1;
    };
    let page, page50, sio50;
    if (!skipBrowser) {
      const { chromium } = require('playwright-core');
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
      page = await openPage();
    }

    const SALES = 100;
    const versions = [];
    let ackId = 100;
    for (let i = 1; i <= SALES; i++) {
      versions.push(await sale(oracle));
      if (i === 33) {
        z.join33 = await connectZlibWs(d.port, { offer: CTX_OFFER });
        z.join33w9 = await connectZlibWs(d.port, { offer: 'permessage-deflate; server_max_window_bits=9', strict: true });
      }
      if (i === 50) {
        if (browser) page50 = await openPage();
        sio50 = sioClient(d.url);
      }
      if (i === 66) z.join66 = await connectZlibWs(d.port, { offer: CTX_OFFER, auth: { deltas: true } });
      if (i % 10 === 5) {
        // Acks interleaved with the broadcasts (not awaited: the next sale
        // may overtake them).
        z.ctx.send(`42${++ackId}["requestDashboardData"]`);
        z.deltas.send(`42${++ackId}["requestDashboardData"]`);
        z.w10.send(`42${++ackId}["requestDashboardData"]`);
        emitWithAck(sio, 'requestDashboardData', 15000).then((a) => sio.raw.push({ ackObj: a }));
      }
    }
    const final = versions.at(-1);
    assert.equal(new Set(versions).size, SALES, 'each sale made its own version');
    for (const [name, c] of Object.entries(z)) {
      await c.waitFor((ms) => hasVersion(ms, final), 20000, `${name} to get the last version`);
    }
    await oracleD.waitFor((ms) => hasVersion(ms, final), 20000, 'the deltas oracle to get the last version');
    const until = Date.now() + 20000;
    while (!(hasVersion(sio.raw.filter((m) => m.text), final) && hasVersion(sio50.raw, final)) && Date.now() < until) await sleep(50);
    const pageMsgs = async (p) => {
      await p.waitForFunction((v) => window.msgs.some((t) => t.includes(`"version":${v}`)), final, { timeout: 20000 });
      return p.evaluate(() => [window.msgs, window.pmdWs.extensions]);
    };
    let chromeMsgs = [], chromeExt = null, chrome50Msgs = [], chrome50Ext = null;
    if (page) {
      [chromeMsgs, chromeExt] = await pageMsgs(page);
      [chrome50Msgs, chrome50Ext] = await pageMsgs(page50);
    }
    const orc = oracleOf(oracle, oracleD);

    // Every message, byte for byte.
    const res = {};
    for (const [name, c] of Object.entries(z)) {
      assert.equal(c.error && !/closed/.test(c.error.message) ? c.error.message : null, null, `${name}: no inflate or protocol error`);
      res[name] = verify(name, c.msgs, orc);
    }
    res.sio = verify('socket.io-client', sio.raw.filter((m) => m.text), orc);
    res.sio50 = verify('socket.io-client joined at 50', sio50.raw, orc);
    if (page) {
      res.chromium = verify('Chromium', chromeMsgs.map((text) => ({ text })), orc);
      res.chromium50 = verify('Chromium joined at 50', chrome50Msgs.map((text) => ({ text })), orc);
    }

    // Every one of the 100 snapshots reached the clients there from the start.
    for (const name of ['ctx', 'w10', 'alone', 'deltas', 'sio', ...(page ? ['chromium'] : [])]) {
      const missing = versions.filter((v) => !res[name].versions.has(v));
      assert.deepEqual(missing, [], `${name}: decoded all ${SALES} versions`);
    }
    for (const name of ['join33', 'join33w9']) assert.ok(versions.slice(33).every((v) => res[name].versions.has(v)), `${name}: every version after it joined`);
    assert.ok(versions.slice(66).every((v) => res.join66.versions.has(v)), 'join66: every version after it joined');
    for (const name of ['sio50', ...(page ? ['chromium50'] : [])]) {
      assert.ok(versions.slice(51).every((v) => res[name].versions.has(v)), `${name}: every version after it joined`);
    }
    // Acks came back, through every inflater.
    for (const name of ['ctx', 'w10', 'deltas', ...(page ? ['chromium'] : [])]) assert.ok(res[name].acks >= 9, `${name}: its acks (${res[name].acks})`);
    const sioAcks = sio.raw.filter((m) => m.ackObj);
    assert.ok(sioAcks.length >= 9 && sioAcks.every((m) => orc.docs.get(m.ackObj.version) !== undefined), 'socket.io-client: its acks');
    assert.ok(res.deltas.patches >= SALES - 15 && res.join66.patches >= 30, `patch frames decoded (deltas ${res.deltas.patches}, join66 ${res.join66.patches})`);
    assert.ok(res.deltas.patchesByte >= SALES / 2, `patches byte for byte against the oracle's (${res.deltas.patchesByte})`);

    // Context takeover really negotiated, frames really compressed and small.
    for (const name of ['ctx', 'w10', 'deltas', 'join33', 'join33w9', 'join66']) assertContext(name, z[name].extensions);
    assert.match(z.w10.extensions, /server_max_window_bits=10/);
    assert.match(z.alone.extensions, /server_no_context_takeover/, 'alone: standalone frames asked for, agreed');
    const params = sio.io.engine.transport.ws._extensions['permessage-deflate'].params;
    assert.ok(params && !params.server_no_context_takeover, `socket.io-client: context takeover kept (${JSON.stringify(params)})`);
    if (page) {
      assertContext('Chromium', chromeExt);
      assertContext('Chromium joined at 50', chrome50Ext);
    }
    const wire = (name) => median(res[name].updateWires.slice(1));
    for (const name of ['ctx', 'w10', 'join33']) {
      assert.equal(res[name].compressed, res[name].updates, `${name}: every snapshot compressed`);
    }
    const first = res.ctx.updateWires[0];
    console.log(`# demo dashboard ${orc.docs.get(final).length} B, ${SALES} sales: snapshot frames on the wire, median after the first: ` +
      `context takeover ${wire('ctx')} B (first ${first} B), joined at 33 ${wire('join33')} B, ` +
      `server_max_window_bits=10 ${wire('w10')} B, 9 ${wire('join33w9')} B, server_no_context_takeover ${wire('alone')} B; ` +
      `acks ctx ${res.ctx.acks}, Chromium ${res.chromium ? res.chromium.acks : '-'}, socket.io ${sioAcks.length}; ` +
      `patches ${res.deltas.patches} (${res.deltas.patchesByte} compared byte for byte); ` +
      `socket.io-client read ${sio.io.engine.transport.ws._socket.bytesRead} B in all; Chromium ${chromeExt}`);
    assert.ok(wire('ctx') < 1500, `shared frames are small: ${wire('ctx')} B (standalone ${wire('alone')} B)`);
    assert.ok(wire('ctx') * 3 < wire('alone'), 'much smaller than standalone frames');
    assert.ok(wire('join33') < 1500, 'a client that joined late gets the small frames too');
    let forgot = forgetful.error ? forgetful.error.message : null;
    if (!forgot) {
      try { verify('forgetful', forgetful.msgs, orc); } catch (err) { forgot = err.message.split('\n')[0]; }
    }
    console.log(`# negative control, an inflater without context: ${forgot}`);
    assert.ok(forgot && !/closed/.test(forgot), 'a client that forgets its window cannot read the shared frames');
    forgetful.close();
    for (const c of Object.values(z)) c.close();
    oracle.close();
    oracleD.close();
  } finally {
    if (browser) await browser.close().catch(() => {});
    await d.stopClean('pgpushd (shared)');
  }
});

test('latest-wins skips: a paused reader of a 600 KB document decodes every message it gets', { skip, timeout: 240000 }, async () => {
  await db.query(`CREATE TABLE IF NOT EXISTS pmd_pad AS
    SELECT string_agg(md5(i::text), '' ORDER BY i) AS p FROM generate_series(1, 19000) i`);
  await db.query('GRANT SELECT ON public.pmd_pad TO PUBLIC');
  const d = await startDaemon({
    db: pg.conninfo,
    args: ['--permessage-deflate', MODE, '--refresh-interval', '300',
      '--query', "SELECT pgpush.dashboard()::jsonb || jsonb_build_object('pad', (SELECT p FROM public.pmd_pad))"],
  });
  try {
    const oracle = await joined(await connectZlibWs(d.port, { offer: null }));
    const oracleD = await joined(await connectZlibWs(d.port, { offer: null, auth: { deltas: true } }));
    const z = {
      slow: await connectZlibWs(d.port, { offer: CTX_OFFER }),
      slowDeltas: await connectZlibWs(d.port, { offer: CTX_OFFER, auth: { deltas: true } }),
      fast: await connectZlibWs(d.port, { offer: CTX_OFFER }),
    };
    for (const c of Object.values(z)) await joined(c);
    const sio = sioClient(d.url);
    await new Promise((res) => sio.on('dashboardDataUpdate', res));

    z.slow.pause();
    z.slowDeltas.pause();
    const versions = [];
    for (let i = 1; i <= 30; i++) {
      versions.push(await sale(oracle));
      if (i === 15) z.joinPaused = await connectZlibWs(d.port, { offer: CTX_OFFER });
    }
    z.slow.resume();
    z.slowDeltas.resume();
    let ackId = 0;
    for (let i = 1; i <= 10; i++) {
      z.slow.send(`42${++ackId}["requestDashboardData"]`);
      z.slowDeltas.send(`42${++ackId}["requestDashboardData"]`);
      versions.push(await sale(oracle));
    }
    const final = versions.at(-1);
    for (const [name, c] of Object.entries(z)) await c.waitFor((ms) => hasVersion(ms, final), 30000, `${name} to get the last version`);
    await oracleD.waitFor((ms) => hasVersion(ms, final), 30000, 'the deltas oracle to get the last version');
    const until = Date.now() + 20000;
    while (!hasVersion(sio.raw, final) && Date.now() < until) await sleep(50);

    const orc = oracleOf(oracle, oracleD);
    const res = {};
    for (const [name, c] of Object.entries(z)) {
      assert.equal(c.error && !/closed/.test(c.error.message) ? c.error.message : null, null, `${name}: no inflate or protocol error`);
      res[name] = verify(name, c.msgs, orc);
    }
    res.sio = verify('socket.io-client', sio.raw, orc);
    const skipped = versions.filter((v) => !res.slow.versions.has(v)).length;
    console.log(`# ${orc.docs.get(final).length} B document, 40 sales, one reader paused for 30: it decoded ${res.slow.updates} updates ` +
      `and ${res.slow.acks} acks, skipping ${skipped} versions; its frames median ${median(res.slow.updateWires)} B; ` +
      `the fast one ${res.fast.updates} updates, median ${median(res.fast.updateWires)} B; paused with deltas: ` +
      `${res.slowDeltas.patches} patches (${res.slowDeltas.patchesByte} byte for byte), ${res.slowDeltas.updates} updates`);
    assert.ok(skipped > 0, 'latest-wins made the paused reader skip versions');
    assert.ok(res.slow.acks >= 5, `the paused reader's acks came back (${res.slow.acks})`);
    assert.ok(res.slow.compressed > 0, 'the paused reader got compressed snapshots');
    assert.deepEqual(versions.filter((v) => !res.fast.versions.has(v)), [], 'the fast reader decoded every version');
    assert.deepEqual(versions.filter((v) => !res.sio.versions.has(v)), [], 'socket.io-client decoded every version');
    for (const name of Object.keys(z)) assertContext(name, z[name].extensions);
    for (const c of Object.values(z)) c.close();
    oracle.close();
    oracleD.close();
  } finally {
    await d.stopClean('pgpushd (shared, big document)');
  }
});
