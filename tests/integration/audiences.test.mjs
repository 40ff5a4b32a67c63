// Authenticated connections, audiences and named dashboards (issue 9),
// end to end: the real pgpushd, the real socket.io-client, tokens minted
// here (HS256 with node:crypto's HMAC, RS256 with a key pair generated
// here), the demo's roles and tenant policy (sql/demo-roles.sql), and a
// daemon login role that holds only grant.sql's grants and memberships,
// NOINHERIT.
//
// Until the daemon side lands (pgpushd --help lists --jwt-secret-file and
// --max-audiences), every test here is a node:test todo: it runs, and its
// failure is reported but does not fail the suite.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitConnected, waitForUpdate, waitForError, seedShop, closeClients, sleep, daemonPath,
} from '../lib/daemon.mjs';

function daemonHasAudiences() {
  try {
    const help = execFileSync(daemonPath, ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return help.includes('--jwt-secret-file') && help.includes('--max-audiences');
  } catch (err) {
    const out = `${err.stdout || ''}${err.stderr || ''}`;
    return out.includes('--jwt-secret-file') && out.includes('--max-audiences');
  }
}
const todo = daemonHasAudiences() ? undefined : 'needs the audiences daemon side';

// ------------------------------------------------------------------ tokens --

const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const nowSec = () => Math.floor(Date.now() / 1000);

/** An HS256 (or HS384/HS512) token signed with secret (a Buffer or string). */
function hs(claims, secret, { alg = 'HS256', header = {} } = {}) {
  const head = `${b64u({ alg, typ: 'JWT', ...header })}.${b64u(claims)}`;
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg];
  return `${head}.${crypto.createHmac(hash, secret).update(head).digest('base64url')}`;
}

/** An RS256 token signed with privateKey. */
function rs(claims, privateKey, { header = {} } = {}) {
  const head = `${b64u({ alg: 'RS256', typ: 'JWT', ...header })}.${b64u(claims)}`;
  return `${head}.${crypto.createSign('RSA-SHA256').update(head).sign(privateKey).toString('base64url')}`;
}

/** An unsigned token: alg none, empty signature. */
const none = (claims) => `${b64u({ alg: 'none', typ: 'JWT' })}.${b64u(claims)}.`;

const exp = (s = 3600) => ({ exp: nowSec() + s });

// ------------------------------------------------------------------ set-up --

let pg, db, products, tmp;
const HS_SECRET = crypto.randomBytes(48);
let hsFile, rsaFile, rsa, otherRsa;
const daemons = [];
const sockets = [];

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-aud-'));
  hsFile = path.join(tmp, 'hs.secret');
  fs.writeFileSync(hsFile, HS_SECRET.toString('hex'), { mode: 0o600 });
  rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  otherRsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  rsaFile = path.join(tmp, 'rsa.pub.pem');
  fs.writeFileSync(rsaFile, rsa.publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o600 });

  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  await pg.psqlFile('sql/demo-roles.sql');
  // The login role holds grant.sql's grants and the memberships, nothing
  // else: NOINHERIT, as PostgREST's authenticator, so that it cannot use the
  // privileges of the roles it switches to without switching.
  await pg.psql(`ALTER ROLE ${pg.daemonRole} NOINHERIT`, { db: 'postgres' });
  // A role that exists but that pgpushd's role is not a member of.
  await pg.psql(`CREATE ROLE not_granted NOLOGIN`, { db: 'postgres' });
  db = await pg.client();
  products = await seedShop(db, { products: 3 });
});

after(async () => {
  closeClients(sockets);
  for (const d of daemons) await d.stop('SIGTERM').catch(() => {});
  if (pg) await pg.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const HS_SECRET_TEXT = () => HS_SECRET.toString('hex'); // what the file holds, one line of text
const hsTok = (claims, o) => hs(claims, HS_SECRET_TEXT(), o);

async function daemon(args = [], { keyFile = hsFile } = {}) {
  // One daemon at a time: two on one database are a cluster, where only the
  // leader queries (tests/integration/cluster.test.mjs), and these tests
  // count one daemon's queries.
  for (const old of daemons.splice(0)) await old.stop('SIGTERM').catch(() => {});
  const d = await startDaemon({
    db: pg.conninfo,
    args: ['--refresh-interval', '300', '--jwt-secret-file', keyFile, '--audience-grace', '500', ...args],
  });
  daemons.push(d);
  // Namespaces exist once the registry is read (demo-roles.sql registers
  // one): a client sooner would get "Invalid namespace".
  for (let i = 0; i < 100 && !((await health(d)).dashboards >= 1); i++) await sleep(50);
  return d;
}

function client(url, opts = {}) {
  const s = connectClient(url, { reconnection: false, ...opts });
  sockets.push(s);
  s.connectErrorsFull = [];
  s.on('connect_error', (err) => s.connectErrorsFull.push({ message: err.message, code: err.data && err.data.code }));
  return s;
}

/** Connect with auth; resolves { message, code } of the CONNECT_ERROR, or throws if it connects. */
async function refused(url, opts, timeoutMs = 5000) {
  const s = client(url, opts);
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (s.connectErrorsFull.length) { s.close(); return s.connectErrorsFull[0]; }
    if (s.connected) { s.close(); throw new Error(`connected, expected a CONNECT_ERROR (${JSON.stringify(opts.auth)})`); }
    await sleep(20);
  }
  s.close();
  throw new Error('neither connected nor refused');
}

/**
 * A role pgpushd cannot SET. The daemon may refuse it at CONNECT, or learn
 * it from the first query that SETs it: then that client gets
 * dashboardDataError role_invalid and a server-side disconnect (never a
 * document), and the next CONNECT with that role is refused.
 * Resolves the code of the refusal of the last attempt.
 */
async function refusedRole(url, opts) {
  const s = client(url, opts);
  const t0 = Date.now();
  // The connect may be over before a poll sees it: count the events.
  while (Date.now() - t0 < 5000 && !s.rec.connects && !s.connectErrorsFull.length) await sleep(20);
  if (s.connectErrorsFull.length) { s.close(); return s.connectErrorsFull[0]; }
  assert.ok(s.rec.connects > 0, 'neither connected nor refused');
  const { data } = await waitForError(s, () => true, 10000);
  assert.equal(data.code, 'role_invalid', `first client: ${JSON.stringify(data)}`);
  const t1 = Date.now();
  while (!s.rec.disconnects.length && Date.now() - t1 < 5000) await sleep(20);
  assert.equal(s.rec.disconnects[0]?.reason, 'io server disconnect', 'disconnected by the server');
  assert.equal(s.rec.updates.length, 0, 'no document for a role that cannot be SET');
  s.close();
  return refused(url, opts);
}

async function accepted(url, opts) {
  const s = client(url, opts);
  await waitConnected(s, 5000);
  const { data } = await waitForUpdate(s, () => true, 10000);
  return { s, data };
}

/** /healthz as asked from loopback (detailed). */
function health(d) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: d.port, path: '/healthz' }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => { try { resolve(JSON.parse(body)); } catch (e) { reject(e); } });
    }).on('error', reject);
  });
}
// The counters, wherever the daemon side puts them.
const counter = (h, name) => h[name] ?? h.counters?.[name] ?? h.metrics?.[name];
const queriesOf = (h) => counter(h, 'queries') ?? counter(h, 'recomputes');
/** The per-dashboard record of name, whatever the shape (object by name, or array of {name}). */
function dashboardOf(h, name) {
  const ds = h.perDashboard ?? (typeof h.dashboards === 'object' ? h.dashboards : undefined);
  if (!ds) return undefined;
  if (Array.isArray(ds)) return ds.find((x) => x && x.name === name);
  return ds[name] ?? ds[`/${name}`];
}
const dashQueries = (rec) => rec && (rec.queries ?? rec.recomputes ?? rec.counters?.queries);

let saleNo = 0;
async function sale({ store = 1, email } = {}) {
  const n = ++saleNo;
  const r = await db.query(
    `INSERT INTO sales (product_id, quantity, unit_price, customer_name, customer_email, store_id)
     VALUES ($1, 1, 9.99, $2, $3, $4) RETURNING id`,
    [products[n % products.length].id, `Customer ${n}`, email || `customer${n}@example.com`, store]);
  return Number(r.rows[0].id);
}

// ------------------------------------------------------------------ tokens --

test('HS256: valid, expired, not yet valid, alg none, bad signature, garbage, missing token, missing role, a role it cannot SET',
  { todo, timeout: 60000 }, async () => {
    const d = await daemon();
    const role = 'dashboard_manager';

    const ok = await accepted(d.url, { auth: { token: hsTok({ role, ...exp() }) } });
    assert.ok(ok.data.summary && ok.data.recentSales, 'the default dashboard on /');
    ok.s.close();
    // HS384 with the same (48-byte) secret is the same family.
    (await accepted(d.url, { auth: { token: hsTok({ role, ...exp() }, { alg: 'HS384' }) } })).s.close();

    const cases = [
      ['expired a minute ago', { token: hsTok({ role, exp: nowSec() - 120 }) }, 'token_expired'],
      ['not valid for a minute', { token: hsTok({ role, nbf: nowSec() + 120, ...exp() }) }, 'token_expired'],
      ['alg none', { token: none({ role, ...exp() }) }, 'token_invalid'],
      ['alg none with the HMAC of the secret anyway', { token: hsTok({ role, ...exp() }, { header: { alg: 'none' } }) }, 'token_invalid'],
      ['bad signature', { token: hs({ role, ...exp() }, 'another secret, also long enough to be one......') }, 'token_invalid'],
      ['payload changed after signing', {
        token: (() => { const [h, , sig] = hsTok({ role: 'dashboard_viewer', ...exp() }).split('.'); return `${h}.${b64u({ role, ...exp() })}.${sig}`; })(),
      }, 'token_invalid'],
      ['RS256 against an HMAC key', { token: rs({ role, ...exp() }, rsa.privateKey) }, 'token_invalid'],
      ['garbage', { token: 'not a token' }, 'token_invalid'],
      ['two segments', { token: 'eyJhbGciOiJIUzI1NiJ9.e30' }, 'token_invalid'],
      ['a number', { token: 42 }, ['token_invalid', 'auth_required']],
      ['missing token', {}, 'auth_required'],
      ['no auth payload', undefined, 'auth_required'],
      ['empty token', { token: '' }, ['auth_required', 'token_invalid']],
      ['no role claim', { token: hsTok({ sub: 'u1', ...exp() }) }, 'role_invalid'],
      ['role claim not a string', { token: hsTok({ role: 7, ...exp() }) }, 'role_invalid'],
    ];
    for (const [what, auth, code] of cases) {
      const err = await refused(d.url, auth === undefined ? {} : { auth });
      if (Array.isArray(code)) assert.ok(code.includes(err.code), `${what}: ${JSON.stringify(err)}`);
      else assert.equal(err.code, code, `${what}: ${JSON.stringify(err)}`);
      assert.equal(typeof err.message, 'string', `${what}: a message`);
      assert.ok(err.message.length > 0 && !err.message.includes(HS_SECRET_TEXT()), `${what}: a message, never the secret`);
    }

    // Roles pgpushd's login role cannot SET.
    for (const [what, r] of [['a role it is not a member of', 'not_granted'], ['the superuser', 'postgres'],
      ['a role that does not exist', 'no_such_role']]) {
      const err = await refusedRole(d.url, { auth: { token: hsTok({ role: r, ...exp() }) } });
      assert.equal(err.code, 'role_invalid', `${what}: ${JSON.stringify(err)}`);
    }
    // A good role still works next to them.
    (await accepted(d.url, { auth: { token: hsTok({ role: 'dashboard_viewer', ...exp() }) } })).s.close();

    // Non-browser clients: Authorization: Bearer on the handshake request.
    const bearer = await accepted(d.url, { extraHeaders: { Authorization: `Bearer ${hsTok({ role, ...exp() })}` } });
    bearer.s.close();
    const badBearer = await refused(d.url, { extraHeaders: { Authorization: `Bearer ${none({ role, ...exp() })}` } });
    assert.equal(badBearer.code, 'token_invalid');

    // The daemon is fine after all that.
    assert.equal(d.exited, null);
  });

test('RS256: a valid token; algorithm confusion (HS256 keyed with the public key) and another key are refused',
  { todo, timeout: 60000 }, async () => {
    const d = await daemon([], { keyFile: rsaFile });
    const role = 'dashboard_manager';
    (await accepted(d.url, { auth: { token: rs({ role, ...exp() }, rsa.privateKey) } })).s.close();

    const pem = fs.readFileSync(rsaFile, 'utf8');
    const der = rsa.publicKey.export({ type: 'spki', format: 'der' });
    for (const [what, token] of [
      ['HS256 with the PEM text as secret', hs({ role, ...exp() }, pem)],
      ['HS256 with the PEM text, no trailing newline', hs({ role, ...exp() }, pem.trimEnd())],
      ['HS256 with the DER bytes as secret', hs({ role, ...exp() }, der)],
      ['HS512 with the PEM text as secret', hs({ role, ...exp() }, pem, { alg: 'HS512' })],
      ['RS256 by another key', rs({ role, ...exp() }, otherRsa.privateKey)],
      ['alg none', none({ role, ...exp() })],
      ['expired', rs({ role, exp: nowSec() - 120 }, rsa.privateKey)],
    ]) {
      const err = await refused(d.url, { auth: { token } });
      assert.equal(err.code, what === 'expired' ? 'token_expired' : 'token_invalid', `${what}: ${JSON.stringify(err)}`);
    }
  });

test('--anon-role: a tokenless client gets that role; a bad token is still refused', { todo, timeout: 30000 }, async () => {
  const d = await daemon(['--anon-role', 'dashboard_viewer']);
  await sale({ email: 'anon-check@example.com' });
  const { s, data } = await accepted(d.url, {});
  assert.ok(data.recentSales.length > 0);
  assert.ok(data.recentSales.every((r) => !('customerEmail' in r) && !('customerName' in r)),
    'the anonymous role is the viewer: no customer data');
  s.close();
  assert.equal((await refused(d.url, { auth: { token: 'garbage' } })).code, 'token_invalid');
  assert.equal((await refused(d.url, { auth: { token: hsTok({ role: 'dashboard_viewer', exp: nowSec() - 120 }) } })).code,
    'token_expired');
});

// ------------------------------------------------------------- audiences --

test('two roles see different documents: the viewer never gets a customer e-mail', { todo, timeout: 60000 }, async () => {
  const d = await daemon();
  const viewers = [1, 2, 3].map((i) => client(d.url, { auth: { token: hsTok({ role: 'dashboard_viewer', sub: `v${i}`, ...exp() }) } }));
  const managers = [1, 2].map((i) => client(d.url, { auth: { token: hsTok({ role: 'dashboard_manager', sub: `m${i}`, ...exp() }) } }));
  for (const s of [...viewers, ...managers]) await waitConnected(s);
  for (const s of [...viewers, ...managers]) await waitForUpdate(s, () => true, 10000);

  const emails = [];
  let last;
  for (let i = 0; i < 8; i++) {
    const email = `secret${i}.${crypto.randomBytes(4).toString('hex')}@example.com`;
    emails.push(email);
    last = await sale({ email });
    await sleep(60);
  }
  const hasLast = (doc) => doc.recentSales.some((r) => r.id === last);
  for (const s of [...viewers, ...managers]) await waitForUpdate(s, hasLast, 10000);

  for (const s of viewers) {
    assert.ok(s.rec.updates.length >= 2, 'the viewer got several documents');
    for (const { data } of s.rec.updates) {
      const text = JSON.stringify(data);
      assert.ok(!text.includes('customerEmail') && !text.includes('customerName'), 'no customer field in any viewer document');
      assert.ok(!text.includes('@example.com'), `no e-mail in any viewer document: ${text.slice(0, 200)}`);
    }
    // Patches, if the daemon sends any, must not carry one either.
    for (const ev of s.rec.events) assert.ok(!JSON.stringify(ev.args).includes('@example.com'), `event ${ev.name}`);
  }
  for (const s of managers) {
    const doc = s.rec.updates.at(-1).data;
    assert.ok(doc.recentSales.find((r) => r.id === last).customerEmail === emails.at(-1), 'the manager sees the e-mail');
  }
  // Viewers share one document, managers another.
  const lastVersion = (s) => s.rec.updates.at(-1).data.version;
  assert.equal(new Set(viewers.map(lastVersion)).size, 1);
  assert.equal(new Set(managers.map(lastVersion)).size, 1);
  closeClients([...viewers, ...managers]);
});

test('tenant isolation: 20 stores x 5 clients under a burst of writes; every document is the client\'s own store',
  { todo, timeout: 120000 }, async () => {
    const d = await daemon(['--max-audiences', '64']);
    const TENANTS = 20, PER = 5;
    const byStore = new Map();
    const all = [];
    for (let t = 1; t <= TENANTS; t++) {
      const list = [];
      for (let k = 0; k < PER; k++) {
        // sub differs per client: not declared, it must not split the audience.
        const token = hsTok({ role: 'dashboard_store', store_id: t, sub: `user-${t}-${k}`, email: `u${t}.${k}@x`, ...exp() });
        const s = client(`${d.url}/store`, { auth: { token } });
        s.store = t;
        list.push(s);
        all.push(s);
      }
      byStore.set(t, list);
    }
    for (const s of all) await waitConnected(s, 10000);
    for (const s of all) await waitForUpdate(s, () => true, 15000);

    // One sale to one store: one query per audience (20), not per client (100).
    const h0 = await health(d);
    const q0 = queriesOf(h0);
    const probe = await sale({ store: 7 });
    // Only store 7's document changed (the others may be sent nothing).
    for (const s of byStore.get(7)) await waitForUpdate(s, (doc) => doc.recentSales.some((r) => r.id === probe), 10000);
    await sleep(500);
    const q1 = queriesOf(await health(d));
    if (q0 !== undefined && q1 !== undefined) {
      assert.ok(q1 - q0 >= TENANTS && q1 - q0 < 2 * TENANTS,
        `one sale: ${q1 - q0} queries for ${TENANTS} audiences of ${TENANTS * PER} clients`);
    }
    if (h0.audiences !== undefined) assert.ok(counter(await health(d), 'audiences') >= TENANTS);
    assert.ok(byStore.get(7)[0].rec.updates.at(-1).data.recentSales.some((r) => r.id === probe));

    // The burst: 10 rounds, each a few transactions that write to every store.
    const ids = new Map([...byStore.keys()].map((t) => [t, new Set([probe].filter(() => t === 7))]));
    const before = await db.query('SELECT id, store_id FROM sales');
    for (const r of before.rows) ids.get(r.store_id)?.add(Number(r.id));
    for (let round = 0; round < 10; round++) {
      const stores = [...byStore.keys()].sort(() => Math.random() - 0.5);
      await db.query('BEGIN');
      for (const t of stores.slice(0, 10)) {
        const r = await db.query(`INSERT INTO sales (product_id, quantity, unit_price, store_id) VALUES ($1, 1, 1.00, $2) RETURNING id`,
          [products[0].id, t]);
        ids.get(t).add(Number(r.rows[0].id));
      }
      await db.query('COMMIT');
      for (const t of stores.slice(10)) {
        const r = await db.query(`INSERT INTO sales (product_id, quantity, unit_price, store_id) VALUES ($1, 1, 1.00, $2) RETURNING id`,
          [products[1].id, t]);
        ids.get(t).add(Number(r.rows[0].id));
      }
    }
    // Every document so far, then once everyone has its store's final state.
    const checkDocs = () => {
      let docs = 0;
      for (const s of all) {
        for (const { data } of s.rec.updates) {
          docs++;
          assert.equal(data.storeId, s.store, `a store-${s.store} client got a document of store ${data.storeId}`);
          for (const r of data.recentSales) {
            assert.ok(ids.get(s.store).has(r.id), `a store-${s.store} client got sale ${r.id} of another store`);
            assert.ok(!('customerEmail' in r), 'store screens get no customer data');
          }
        }
      }
      return docs;
    };
    checkDocs();
    const finalCount = new Map((await db.query(
      `SELECT store_id, count(*)::int AS n FROM sales WHERE sold_at >= current_date GROUP BY store_id`)).rows.map((r) => [r.store_id, r.n]));
    for (const s of all) {
      await waitForUpdate(s, (doc) => doc.summary.salesToday === finalCount.get(s.store), 20000);
    }
    const docs = checkDocs();
    assert.ok(docs >= TENANTS * PER * 2);
    closeClients(all);
  });

test('expiry: token_expired mid-session, a server-side disconnect, then a reconnect with a new token',
  { todo, timeout: 90000 }, async () => {
    const d = await daemon();
    const s = client(d.url, { auth: { token: hsTok({ role: 'dashboard_viewer', exp: nowSec() + 2 }) } });
    await waitConnected(s);
    await waitForUpdate(s, () => true, 10000);
    const disconnected = new Promise((resolve) => s.once('disconnect', resolve));
    // exp, plus whatever clock-skew leeway the daemon allows (at most a minute).
    const { data: err } = await waitForError(s, (e) => e.code === 'token_expired', 70000);
    assert.equal(typeof err.message, 'string');
    const reason = await Promise.race([disconnected, sleep(5000).then(() => 'no disconnect')]);
    assert.equal(reason, 'io server disconnect', 'the server ends the session; socket.io-client does not reconnect by itself');
    await sleep(1500);
    assert.equal(s.connected, false, 'no automatic reconnect');

    // The application reconnects with a fresh token.
    s.auth = { token: hsTok({ role: 'dashboard_viewer', ...exp() }) };
    const n = s.rec.updates.length;
    s.connect();
    await waitConnected(s, 5000);
    await waitForUpdate(s, () => true, 10000, { since: n });

    // An expired token is refused at the reconnect too.
    s.close();
    assert.equal((await refused(d.url, { auth: { token: hsTok({ role: 'dashboard_viewer', exp: nowSec() - 120 }) } })).code,
      'token_expired');
  });

test('--max-audiences: beyond it, audience_limit; the audiences already there keep working', { todo, timeout: 30000 }, async () => {
  const d = await daemon(['--max-audiences', '2']);
  const a = await accepted(d.url, { auth: { token: hsTok({ role: 'dashboard_viewer', ...exp() }) } });
  const b = await accepted(d.url, { auth: { token: hsTok({ role: 'dashboard_manager', ...exp() }) } });
  // Same audience as a: no new one needed.
  const a2 = await accepted(d.url, { auth: { token: hsTok({ role: 'dashboard_viewer', sub: 'other', ...exp() }) } });
  const err = await refused(`${d.url}/store`, { auth: { token: hsTok({ role: 'dashboard_store', store_id: 1, ...exp() }) } });
  assert.equal(err.code, 'audience_limit');
  const id = await sale();
  for (const s of [a.s, b.s, a2.s]) await waitForUpdate(s, (doc) => doc.recentSales.some((r) => r.id === id), 10000);
  closeClients([a.s, b.s, a2.s]);
});

// --------------------------------------------------------------- registry --

test('registry: a dashboard registered live is served at once; a write recomputes only the dashboards on its table',
  { todo, timeout: 60000 }, async () => {
    await pg.psql(`
      CREATE TABLE public.tickets (id serial PRIMARY KEY, title text NOT NULL);
      SELECT pgpush.attach('public.tickets');
      CREATE SCHEMA IF NOT EXISTS ops;
      CREATE OR REPLACE FUNCTION ops.tickets_board() RETURNS json LANGUAGE sql STABLE
        SET search_path = pg_catalog, pg_temp
        AS $$ SELECT json_build_object('open', (SELECT count(*) FROM public.tickets)) $$;
      CREATE OR REPLACE FUNCTION ops.stock_board() RETURNS jsonb LANGUAGE sql STABLE
        SET search_path = pg_catalog, pg_temp
        AS $$ SELECT jsonb_build_object('units', (SELECT coalesce(sum(quantity), 0) FROM public.stock)) $$;
      GRANT USAGE ON SCHEMA ops TO dashboard_viewer;
      GRANT SELECT ON public.tickets TO dashboard_viewer;
      GRANT EXECUTE ON FUNCTION ops.tickets_board(), ops.stock_board() TO dashboard_viewer;`);
    const d = await daemon();
    const token = hsTok({ role: 'dashboard_viewer', ...exp() });

    // Not registered yet: no such namespace.
    const before = await refused(`${d.url}/tickets`, { auth: { token } });
    assert.ok(before.message, 'an unknown namespace is refused');

    await db.query(`SELECT pgpush.register_dashboard('tickets', 'ops.tickets_board()', '{public.tickets}')`);
    await db.query(`SELECT pgpush.register_dashboard('stockonly', 'ops.stock_board()', '{public.stock}')`);
    const connectLive = async (name) => {
      const t0 = Date.now();
      for (;;) {
        const s = client(`${d.url}/${name}`, { auth: { token } });
        try {
          await waitConnected(s, 2000);
          await waitForUpdate(s, () => true, 5000);
          return s;
        } catch (err) {
          s.close();
          if (Date.now() - t0 > 10000) throw err;
          await sleep(200);
        }
      }
    };
    const tickets = await connectLive('tickets');
    const stock = await connectLive('stockonly');
    assert.equal(tickets.rec.updates[0].data.open, 0);
    assert.equal(typeof stock.rec.updates[0].data.units, 'number');

    // A write to tickets: /tickets recomputes, /stockonly does not.
    const h0 = await health(d);
    const nStock = stock.rec.updates.length;
    await db.query(`INSERT INTO public.tickets (title) VALUES ('printer on fire')`);
    await waitForUpdate(tickets, (doc) => doc.open === 1, 10000);
    await sleep(500);
    assert.equal(stock.rec.updates.length, nStock, '/stockonly got no document for a write to tickets');
    const h1 = await health(d);
    const dq = (h, name) => dashQueries(dashboardOf(h, name));
    if (dq(h0, 'tickets') !== undefined) {
      assert.equal(dq(h1, 'tickets') - dq(h0, 'tickets'), 1, 'one query for /tickets (one audience)');
      assert.equal(dq(h1, 'stockonly') - dq(h0, 'stockonly'), 0, 'no query for /stockonly');
    }

    // A write to stock: /stockonly recomputes, /tickets does not.
    const nTickets = tickets.rec.updates.length;
    await db.query(`UPDATE stock SET quantity = quantity + 1 WHERE product_id = $1`, [products[0].id]);
    await waitForUpdate(stock, (doc) => doc.units !== stock.rec.updates[nStock - 1].data.units, 10000);
    await sleep(500);
    assert.equal(tickets.rec.updates.length, nTickets, '/tickets got no document for a write to stock');
    const h2 = await health(d);
    if (dq(h1, 'tickets') !== undefined) {
      assert.equal(dq(h2, 'tickets') - dq(h1, 'tickets'), 0);
      assert.equal(dq(h2, 'stockonly') - dq(h1, 'stockonly'), 1);
    }

    // Re-registering on another table moves it, live.
    // (The re-registration may itself recompute it once: the counters are
    // read after it settled.)
    await db.query(`SELECT pgpush.register_dashboard('stockonly', 'ops.stock_board()', '{public.tickets}')`);
    await sleep(800);
    const h2b = await health(d);
    const nStock2 = stock.rec.updates.length;
    await db.query(`UPDATE stock SET quantity = quantity + 1 WHERE product_id = $1`, [products[0].id]);
    await sleep(700);
    const h3 = await health(d);
    if (dq(h2b, 'stockonly') !== undefined) assert.equal(dq(h3, 'stockonly') - dq(h2b, 'stockonly'), 0, 'stock no longer rings /stockonly');
    assert.equal(stock.rec.updates.length, nStock2, '/stockonly got nothing for a write to stock');

    // Unregistered: its clients are told and disconnected, new ones refused, without a restart.
    const gone = new Promise((resolve) => tickets.once('disconnect', resolve));
    await db.query(`SELECT pgpush.unregister_dashboard('tickets')`);
    assert.equal(await Promise.race([gone, sleep(10000).then(() => 'still connected')]), 'io server disconnect');
    const t0 = Date.now();
    for (;;) {
      try {
        await refused(`${d.url}/tickets`, { auth: { token } }, 2000);
        break;
      } catch (err) {
        if (Date.now() - t0 > 10000) throw err;
        await sleep(200);
      }
    }
    await db.query(`SELECT pgpush.unregister_dashboard('stockonly')`);
    closeClients([tickets, stock]);
  });
