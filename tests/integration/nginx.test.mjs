// contrib/nginx/pgpushd.conf with a real nginx (Debian's), in a private
// prefix on a free port: both transports through it (long-polling, the
// upgrade to WebSocket, WebSocket alone), live updates, and the logs show
// the forwarded client address only when pgpushd trusts the proxy.
// contrib/nginx/pgpushd-cluster.conf in front of 3 instances: long-polling
// stays on its instance (the address hash), and the clients of a killed
// instance come back through nginx on another one.
//
// nginx: $NGINX, else nginx on PATH or /usr/sbin/nginx, else Debian's
// package unpacked (apt-get download + dpkg-deb -x, nothing installed) into
// a cache under the system's temporary directory. Skipped, saying why, when
// none of these works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster, repoRoot, freePort } from '../lib/pgcluster.mjs';
import {
  startDaemon, seedShop, insertSale, connectClient, waitConnected, waitForUpdate, closeClients, sleep, rawRequest,
} from '../lib/daemon.mjs';

function findNginx() {
  const candidates = [process.env.NGINX, '/usr/sbin/nginx'];
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  if (which.status === 0) candidates.unshift(which.stdout.trim());
  for (const c of candidates) if (c && fs.existsSync(c)) return { bin: c };
  // Debian's package, unpacked: no maintainer script runs, nothing starts.
  const cache = path.join(os.tmpdir(), 'pgpush-nginx-deb');
  const bin = path.join(cache, 'root', 'usr', 'sbin', 'nginx');
  if (fs.existsSync(bin)) return { bin };
  fs.mkdirSync(cache, { recursive: true });
  const dl = spawnSync('apt-get', ['download', 'nginx'], { cwd: cache, encoding: 'utf8', timeout: 120000 });
  const deb = fs.readdirSync(cache).find((f) => /^nginx_.*\.deb$/.test(f));
  if (dl.status !== 0 || !deb) return { why: `nginx is not installed and apt-get download nginx failed: ${(dl.stderr || '').trim().split('\n').pop()}` };
  const x = spawnSync('dpkg-deb', ['-x', deb, 'root'], { cwd: cache, encoding: 'utf8' });
  if (x.status !== 0 || !fs.existsSync(bin)) return { why: `dpkg-deb -x ${deb} failed: ${x.stderr}` };
  const v = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  if (v.status !== 0) return { why: `the unpacked nginx does not run: ${v.stderr}` };
  return { bin };
}

const nginx = findNginx();
let pg, db, products;
const started = [];

before(async () => {
  if (!nginx.bin) return;
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  products = await seedShop(db, { products: 2 });
});

after(async () => {
  for (const s of started.reverse()) await s();
  if (db) await db.end();
  if (pg) await pg.stop();
});

/** nginx with a recipe (default pgpushd.conf) in front of the upstream
 * port(s), in the order of the recipe's server lines; resolves { port, url }. */
async function startNginx(upstreamPorts, file = 'pgpushd.conf') {
  const ports = [].concat(upstreamPorts);
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-nginx-'));
  const port = await freePort();
  let k = 0;
  const recipe = fs.readFileSync(path.join(repoRoot, 'contrib', 'nginx', file), 'utf8')
    .replace(/server 127\.0\.0\.1:30\d\d\b/g, () => `server 127.0.0.1:${ports[k++]}`)
    .replace(/listen 80;/, `listen 127.0.0.1:${port};`);
  assert.equal(k, ports.length, `${file} has ${ports.length} server lines`);
  assert.ok(recipe.includes(`listen 127.0.0.1:${port}`), 'recipe adapted');
  fs.writeFileSync(path.join(prefix, 'pgpushd.conf'), recipe);
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(prefix, d));
  fs.writeFileSync(path.join(prefix, 'nginx.conf'), `
${process.getuid && process.getuid() === 0 ? 'user root;' : ''}
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log info;
events { worker_connections 512; }
http {
  access_log ${prefix}/access.log;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  include ${prefix}/pgpushd.conf;
}
`);
  const proc = spawn(nginx.bin, ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-e', path.join(prefix, 'error.log'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (c) => { stderr += c; });
  const exited = new Promise((r) => proc.on('exit', r));
  started.push(async () => {
    proc.kill('SIGQUIT');
    await Promise.race([exited, sleep(3000)]);
    proc.kill('SIGKILL');
    fs.rmSync(prefix, { recursive: true, force: true });
  });
  for (let i = 0; i < 100; i++) {
    try {
      const r = await rawRequest(port, 'GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { timeoutMs: 500 });
      if (/^HTTP\/1\.1 200/.test(r.text)) return { port, url: `http://127.0.0.1:${port}`, prefix };
    } catch { /* not yet */ }
    if (proc.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(`nginx did not start: ${stderr}\n${fs.existsSync(path.join(prefix, 'error.log')) ? fs.readFileSync(path.join(prefix, 'error.log'), 'utf8') : ''}`);
}

const CLIENT = '203.0.113.50'; // what the browser's side says: a header the client sends itself

async function throughNginx(t, trust) {
  const d = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300', ...(trust ? ['--trusted-proxy', '127.0.0.1/32'] : [])] });
  started.push(() => d.stopClean());
  const ng = await startNginx(d.port);
  const headers = { 'X-Forwarded-For': CLIENT };
  const polling = connectClient(ng.url, { transports: ['polling'], extraHeaders: headers });
  const upgrading = connectClient(ng.url, { transports: ['polling', 'websocket'], extraHeaders: headers });
  const ws = connectClient(ng.url, { transports: ['websocket'], extraHeaders: headers });
  const all = [polling, upgrading, ws];
  await Promise.all(all.map((s) => waitConnected(s, 10000)));
  await Promise.all(all.map((s) => waitForUpdate(s, () => true, 10000)));
  for (let i = 0; i < 50 && upgrading.io.engine.transport.name !== 'websocket'; i++) await sleep(100);
  assert.equal(polling.io.engine.transport.name, 'polling');
  assert.equal(upgrading.io.engine.transport.name, 'websocket', 'upgraded to WebSocket through nginx');
  assert.equal(ws.io.engine.transport.name, 'websocket');
  const since = all.map((s) => s.rec.updates.length);
  await insertSale(db, products[0].id);
  await Promise.all(all.map((s, i) => waitForUpdate(s, () => true, 10000, { since: since[i] })));
  const lines = d.grep(/client connected/);
  assert.equal(lines.length, 3, lines.join('\n'));
  closeClients(all);
  t.diagnostic(`${trust ? 'trusted' : 'untrusted'} proxy: ${lines[0].replace(/^.*client connected/, 'client connected')}`);
  return lines;
}

test('through nginx, trusted: both transports, live updates, the forwarded address in the logs', { skip: nginx.why }, async (t) => {
  const lines = await throughNginx(t, true);
  for (const l of lines) assert.match(l, new RegExp(`peer=${CLIENT.replace(/\./g, '\\.')}( |$)`), l);
});

test('through nginx, not trusted: the header is ignored, the logs show nginx', { skip: nginx.why }, async (t) => {
  const lines = await throughNginx(t, false);
  for (const l of lines) {
    assert.match(l, /peer=127\.0\.0\.1:\d+/, l);
    assert.ok(!l.includes(CLIENT), l);
  }
});

test('the cluster recipe: 3 instances, polling kept on one by the address hash, a killed instance\'s clients come back', { skip: nginx.why }, async (t) => {
  const ds = [];
  for (let i = 0; i < 3; i++) {
    const d = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300', '--trusted-proxy', '127.0.0.1/32', '--log-level', 'info'] });
    started.push(async () => { if (!d.exited) await d.stopClean(); });
    ds.push(d);
  }
  const ng = await startNginx(ds.map((d) => d.port), 'pgpushd-cluster.conf');
  const opts = { reconnectionAttempts: 30, reconnectionDelay: 200, reconnectionDelayMax: 1000 };
  const all = [];
  for (let i = 0; i < 3; i++) {
    all.push(connectClient(ng.url, { ...opts, transports: ['polling'] }));
    all.push(connectClient(ng.url, { ...opts, transports: ['websocket'] }));
  }
  await Promise.all(all.map((s) => waitConnected(s, 10000)));
  await Promise.all(all.map((s) => waitForUpdate(s, () => true, 10000)));
  // One client address: one instance, for every poll of every session.
  const on = (s) => ds.findIndex((d) => d.grep(new RegExp(`client connected sid=${s.io.engine.id} `)).length > 0);
  let idx = [];
  for (let k = 0; k < 50; k++) {
    idx = all.map(on);
    if (!idx.includes(-1)) break;
    await sleep(50);
  }
  assert.equal(new Set(idx).size, 1, `every client on one instance: ${idx}`);
  assert.ok(!all.some((s) => s.rec.connectErrors.length || s.rec.disconnects.length), 'no session lost between polls');
  const since = all.map((s) => s.rec.updates.length);
  const { id } = await insertSale(db, products[0].id);
  const has = (d) => d.recentSales.some((x) => x.id === id);
  await Promise.all(all.map((s, i) => waitForUpdate(s, has, 10000, { since: since[i] })));
  // Their instance killed: nginx sends the next requests to another one.
  ds[idx[0]].proc.kill('SIGKILL');
  const t0 = Date.now();
  for (let k = 0; k < 150 && all.some((s) => !(s.connected && s.rec.connects >= 2)); k++) await sleep(100);
  assert.ok(all.every((s) => s.connected && s.rec.connects >= 2), 'every client reconnected');
  t.diagnostic(`the clients of the killed instance reconnected through nginx within ${Date.now() - t0} ms`);
  const since2 = all.map((s) => s.rec.updates.length);
  const { id: id2 } = await insertSale(db, products[1].id);
  await Promise.all(all.map((s, i) => waitForUpdate(s, (d) => d.recentSales.some((x) => x.id === id2), 10000, { since: since2[i] })));
  const moved = all.map(on);
  closeClients(all);
  t.diagnostic(`instances: before ${idx[0]}, after ${[...new Set(moved)]}`);
  assert.ok(!moved.includes(idx[0]) && !moved.includes(-1), `every client on a live instance: ${moved}`);
});
