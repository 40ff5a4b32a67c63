// Operations (issue 11): GET /metrics on a real daemon (promtool, the docs
// table both ways, counters that move, who may read it), /livez, /readyz
// through a killed listener backend, --log-format json with peer and
// connection id, --trusted-proxy and X-Forwarded-For, and --config with a
// SIGHUP reload under load that drops nobody.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster, repoRoot } from '../lib/pgcluster.mjs';
import {
  startDaemon, rawRequest, seedShop, insertSale, connectClient, waitConnected, closeClients, sleep, now,
} from '../lib/daemon.mjs';

let pg, db, superdb, products, d;

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  superdb = await pg.client();
  products = await seedShop(db, { products: 2 });
  d = await startDaemon({ db: pg.conninfo, args: ['--log-format', 'json', '--refresh-interval', '300'] });
});

after(async () => {
  try {
    if (d) await d.stopClean();
  } finally {
    if (db) await db.end();
    if (superdb) await superdb.end();
    if (pg) await pg.stop();
  }
});

function parse(text) {
  const [h, ...rest] = text.split('\r\n\r\n');
  const lines = h.split('\r\n');
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])?.[1]), headers, body: rest.join('\r\n\r\n') };
}

async function get(port, p, extra = '', host = '127.0.0.1') {
  const r = await rawRequest(port, `GET ${p} HTTP/1.1\r\nHost: x\r\n${extra}Connection: close\r\n\r\n`, { host });
  return parse(r.text);
}

// "name{labels} value" -> value
function sample(body, name) {
  const line = body.split('\n').find((l) => l.split(' ')[0] === name);
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

async function waitFor(pred, timeoutMs, stepMs = 100) {
  const t0 = now();
  for (;;) {
    const v = await pred();
    if (v) return now() - t0;
    if (now() - t0 > timeoutMs) return null;
    await sleep(stepMs);
  }
}

test('GET /metrics: Prometheus text, promtool clean, the docs table both ways', async (t) => {
  await waitFor(async () => (await get(d.port, '/healthz')).status === 200, 10000);
  const r = await get(d.port, '/metrics');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  assert.match(r.body, /^pgpush_build_info\{version="[^"]+"\} 1$/m);
  const exposed = new Map([...r.body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
  const doc = fs.readFileSync(path.join(repoRoot, 'docs', 'operations.md'), 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith('Metrics'));
  const documented = new Map([...section.matchAll(/^\| `(pgpush_[a-z_]+)` \| ([a-z]+) \|/gm)].map((m) => [m[1], m[2]]));
  assert.ok(documented.size >= 10, `docs table has ${documented.size} rows`);
  for (const [name, type] of documented) assert.equal(exposed.get(name), type, `documented ${name} is exposed as ${type}`);
  for (const [name, type] of exposed) assert.equal(documented.get(name), type, `exposed ${name} is documented as ${type}`);
  // A snapshot exists: its gauges have samples.
  assert.ok(sample(r.body, 'pgpush_snapshot_bytes') > 0, 'snapshot bytes');
  assert.ok(sample(r.body, 'pgpush_snapshot_age_seconds') >= 0, 'snapshot age');
  const promtool = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  if (promtool.status !== 0) {
    t.diagnostic('promtool not installed (apt-get install prometheus): not checked');
    return;
  }
  const lint = spawnSync('promtool', ['check', 'metrics'], { input: r.body, encoding: 'utf8' });
  assert.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
  assert.equal((lint.stdout + lint.stderr).trim(), '', 'promtool printed nothing');
});

test('counters move when a sale is inserted; clients are counted by transport', async () => {
  const before = (await get(d.port, '/metrics')).body;
  const s = connectClient(d.url);
  await waitConnected(s);
  const p = connectClient(d.url, { transports: ['polling'] });
  await waitConnected(p);
  await insertSale(db, products[0].id);
  let after;
  const ms = await waitFor(async () => {
    after = (await get(d.port, '/metrics')).body;
    return sample(after, 'pgpush_recomputes_total{reason="notify"}') > sample(before, 'pgpush_recomputes_total{reason="notify"}');
  }, 5000);
  assert.ok(ms !== null, `recomputes{notify} moved\n${after}`);
  assert.ok(sample(after, 'pgpush_notifications_total') > sample(before, 'pgpush_notifications_total'), 'notifications moved');
  assert.ok(sample(after, 'pgpush_query_duration_seconds_count') > sample(before, 'pgpush_query_duration_seconds_count'), 'query histogram moved');
  // The sale's commit -> broadcast: one more observation, and a plausible one
  // (under a second on loopback; the histogram's sum grows by the delay).
  const n0 = sample(before, 'pgpush_commit_send_delay_seconds_count'), n1 = sample(after, 'pgpush_commit_send_delay_seconds_count');
  assert.ok(n1 > n0, `commit -> send histogram moved (${n0} -> ${n1})`);
  const dsum = sample(after, 'pgpush_commit_send_delay_seconds_sum') - sample(before, 'pgpush_commit_send_delay_seconds_sum');
  assert.ok(dsum > 0 && dsum < (n1 - n0) * 1.0, `commit -> send delay ${dsum} s over ${n1 - n0} sales`);
  assert.equal(sample(after, 'pgpush_clients{transport="websocket"}'), 1);
  assert.equal(sample(after, 'pgpush_clients{transport="polling"}'), 1);
  // A request head over --max-header-bytes: 431, counted as a drop.
  const big = await rawRequest(d.port, `GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(9000)}\r\n\r\n`);
  assert.match(big.text, /^HTTP\/1\.1 431/);
  const dropped = (await get(d.port, '/metrics')).body;
  assert.equal(sample(dropped, 'pgpush_clients_dropped_total{reason="too_large"}'),
    sample(before, 'pgpush_clients_dropped_total{reason="too_large"}') + 1, 'too_large drop counted');
  closeClients([s, p]);
  assert.ok(await waitFor(async () => sample((await get(d.port, '/metrics')).body, 'pgpush_clients{transport="websocket"}') === 0, 3000) !== null,
    'the client gauge goes back to 0');
});

test('/metrics: only loopback by default; --metrics-allow decides', async () => {
  // A list that leaves 127.0.0.1 out: loopback is refused too.
  const narrow = await startDaemon({ db: pg.conninfo, args: ['--metrics-allow', '10.0.0.0/8'] });
  try {
    const r = await get(narrow.port, '/metrics');
    assert.equal(r.status, 403);
    assert.equal((await get(narrow.port, '/livez')).status, 200, 'other routes unaffected');
  } finally {
    await narrow.stopClean();
  }
  // Bound to every address: a peer on the machine's non-loopback address
  // is refused by default and allowed once listed.
  const ext = os.networkInterfaces();
  const addr = Object.values(ext).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  if (!addr) return;
  const wide = await startDaemon({ db: pg.conninfo, listen: '0.0.0.0:0' });
  const listed = await startDaemon({ db: pg.conninfo, listen: '0.0.0.0:0', args: ['--metrics-allow', `127.0.0.1/32, ${addr}/32`] });
  try {
    assert.equal((await get(wide.port, '/metrics', '', addr)).status, 403, `peer ${addr} refused by default`);
    assert.equal((await get(wide.port, '/metrics')).status, 200, 'loopback allowed by default');
    assert.equal((await get(listed.port, '/metrics', '', addr)).status, 200, `peer ${addr} allowed when listed`);
  } finally {
    await wide.stopClean();
    await listed.stopClean();
  }
});

test('/livez answers while the loop turns; /readyz fails within its bound when the listener dies, then recovers', async (t) => {
  assert.equal((await get(d.port, '/livez')).status, 200);
  assert.ok(await waitFor(async () => (await get(d.port, '/readyz')).status === 200, 10000) !== null, 'ready');
  const r = await get(d.port, '/readyz');
  const detail = JSON.parse(r.body);
  assert.equal(detail.status, 'ok');
  assert.equal(detail.listener, true);
  assert.ok(detail.notificationQueueUsage < 0.5);
  const before = (await get(d.port, '/metrics')).body;
  const killed = await superdb.query(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgpushd-listener'");
  assert.ok(killed.rowCount >= 1, 'the listener backend was found');
  let t0 = now();
  let down = await waitFor(async () => (await get(d.port, '/readyz')).status === 503, 10000, 20);
  assert.ok(down !== null, '/readyz went 503');
  t.diagnostic(`pg_terminate_backend: /readyz 503 after ${down.toFixed(0)} ms (the connection is lost at once)`);
  let up = await waitFor(async () => (await get(d.port, '/readyz')).status === 200, 20000, 100);
  assert.ok(up !== null, '/readyz recovered');
  t.diagnostic(`/readyz 200 again ${(now() - t0).toFixed(0)} ms after the kill`);

  // A listener that hangs (its backend stopped: the socket stays open, no
  // error anywhere) is what the round trip is for: 503 within the bound,
  // 3 s since the last round trip, probing every 1 s.
  const { rows } = await superdb.query(
    "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgpushd-listener'");
  if (rows.length === 1 && process.getuid && process.getuid() === 0) {
    process.kill(rows[0].pid, 'SIGSTOP');
    t0 = now();
    try {
      down = await waitFor(async () => (await get(d.port, '/readyz')).status === 503, 10000, 50);
    } finally {
      if (down === null) process.kill(rows[0].pid, 'SIGCONT');
    }
    assert.ok(down !== null, '/readyz went 503 with a hung listener');
    t.diagnostic(`hung listener (SIGSTOP): /readyz 503 after ${down.toFixed(0)} ms (bound 4000 ms)`);
    assert.ok(down <= 4500, `within the bound: ${down} ms`);
    process.kill(rows[0].pid, 'SIGCONT');
    up = await waitFor(async () => (await get(d.port, '/readyz')).status === 200, 10000, 50);
    assert.ok(up !== null, '/readyz recovered after SIGCONT');
    t.diagnostic(`/readyz 200 again ${up.toFixed(0)} ms after SIGCONT`);
  } else {
    t.diagnostic('not root: the hung-listener case (SIGSTOP of the backend) is not run');
  }
  const after = (await get(d.port, '/metrics')).body;
  assert.ok(sample(after, 'pgpush_database_reconnects_total{connection="listener"}') >
    sample(before, 'pgpush_database_reconnects_total{connection="listener"}'), 'reconnect counted');
  // Probes never trigger a recompute, ours or those of another pgpushd on
  // the same channel: their payload is no table.
  const other = await startDaemon({ db: pg.conninfo });
  try {
    await waitFor(async () => (await get(other.port, '/readyz')).status === 200, 10000);
    const m0 = (await get(d.port, '/metrics')).body;
    await sleep(2500);
    const m1 = (await get(d.port, '/metrics')).body;
    for (const name of ['pgpush_recomputes_total{reason="notify"}', 'pgpush_notifications_total']) {
      assert.equal(sample(m1, name), sample(m0, name), `probes move no ${name}`);
    }
  } finally {
    await other.stopClean();
  }
});

test('--log-format json: one object per line, with peer and connection id for clients', async () => {
  const mark = d.mark();
  const s = connectClient(d.url);
  await waitConnected(s);
  closeClients([s]);
  await d.waitForLog(/client disconnected/, 5000, { since: mark });
  const lines = d.logs.slice(mark);
  for (const l of lines) JSON.parse(l);
  const conn = lines.map((l) => JSON.parse(l)).find((o) => /^client connected/.test(o.msg));
  assert.ok(conn, 'a connect line');
  assert.match(conn.peer, /^127\.0\.0\.1:\d+$/);
  assert.ok(Number.isInteger(conn.conn) && conn.conn > 0, 'a connection id');
  const disc = lines.map((l) => JSON.parse(l)).find((o) => /^client disconnected/.test(o.msg));
  assert.equal(disc.conn, conn.conn, 'the disconnect names the same connection');
  assert.ok(['time', 'level', 'msg'].every((k) => k in disc));
});

test('--trusted-proxy: X-Forwarded-For names the client only when the peer is trusted', async () => {
  const trusted = await startDaemon({ db: pg.conninfo, args: ['--trusted-proxy', '127.0.0.1/32', '--allowed-origin', 'http://ok.example'] });
  const plain = await startDaemon({ db: pg.conninfo, args: ['--allowed-origin', 'http://ok.example'] });
  try {
    const req = 'GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\n' +
      'X-Forwarded-For: 198.51.100.7, 203.0.113.9, 127.0.0.1\r\nConnection: close\r\n\r\n';
    for (const [daemon, want] of [[trusted, /origin refused.*peer=203\.0\.113\.9/], [plain, /origin refused.*peer=127\.0\.0\.1:\d+/]]) {
      const mark = daemon.mark();
      await rawRequest(daemon.port, req);
      const m = await daemon.waitForLog(/origin refused/, 3000, { since: mark });
      assert.match(m.line, want);
    }
    // The forwarded client is who /metrics checks: a forwarded outsider is refused.
    assert.equal((await get(trusted.port, '/metrics', 'X-Forwarded-For: 203.0.113.9\r\n')).status, 403);
    assert.equal((await get(plain.port, '/metrics', 'X-Forwarded-For: 203.0.113.9\r\n')).status, 200);
  } finally {
    await trusted.stopClean();
    await plain.stopClean();
  }
});

test('--config and SIGHUP: origins and log level change under 100 clients, none dropped', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-conf-'));
  const file = path.join(dir, 'pgpushd.conf');
  const write = (origin, level) => fs.writeFileSync(file,
    `# test\nallowed_origin = '${origin}'\nlog_level = ${level}\nrefresh_interval = 300\nchannel = 'pgpush'  # same\n`);
  write('http://a.example', 'info');
  const r = await startDaemon({ db: pg.conninfo, args: ['--config', file] });
  const upgrade = (origin) => 'GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n' +
    `Origin: ${origin}\r\nConnection: close\r\n\r\n`;
  try {
    const clients = [];
    for (let i = 0; i < 100; i++) clients.push(connectClient(r.url, { extraHeaders: { Origin: 'http://a.example' } }));
    await Promise.all(clients.map((c) => waitConnected(c, 15000)));
    assert.equal(parse((await rawRequest(r.port, upgrade('http://b.example'))).text).status, 403, 'b refused before');
    assert.equal(r.grep(/"level":"debug"|\bdebug\b/).length, 0);

    write('http://a.example, http://b.example', 'debug');
    const mark = r.mark();
    const t0 = now();
    r.proc.kill('SIGHUP');
    await r.waitForLog(/reloaded the configuration/, 5000, { since: mark });
    t.diagnostic(`reload logged after ${(now() - t0).toFixed(0)} ms`);
    assert.ok(r.grep(/reload: allowed-origin changed/, mark).length === 1);
    assert.ok(r.grep(/reload: log-level changed/, mark).length === 1);
    assert.equal(parse((await rawRequest(r.port, upgrade('http://b.example'))).text).status, 200, 'b allowed after');
    const dm = r.mark();
    await rawRequest(r.port, upgrade('http://b.example'));
    assert.ok(await waitFor(() => r.grep(/ debug /, dm).length > 0, 3000) !== null, 'debug lines after the reload');

    // What needs a restart is said so, and kept.
    fs.appendFileSync(file, 'query_timeout = 5\n');
    const m2 = r.mark();
    r.proc.kill('SIGHUP');
    await r.waitForLog(/reloaded the configuration/, 5000, { since: m2 });
    assert.equal(r.grep(/query-timeout changed but needs a restart/, m2).length, 1);
    // A broken file keeps everything.
    fs.writeFileSync(file, 'no_such = 1\n');
    const m3 = r.mark();
    r.proc.kill('SIGHUP');
    await r.waitForLog(/reload failed, keeping every setting: .*line 1: unknown key 'no_such'/, 5000, { since: m3 });

    await sleep(300);
    const dropped = clients.filter((c) => c.rec.disconnects.length > 0 || !c.connected);
    assert.equal(dropped.length, 0, `${dropped.length} clients dropped`);
    closeClients(clients);
  } finally {
    await r.stopClean();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
