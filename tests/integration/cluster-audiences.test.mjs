// The cluster and --max-audiences (issue 12): the leader computes the
// audiences of other instances, but at most --max-audiences of them beside
// its own clients' (which they never crowd out); the clients of an audience
// it refuses get dashboardDataError audience_limit rather than silence,
// and the document once there is room again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitForUpdate, waitForError, seedShop, insertSale, closeClients, sleep,
} from '../lib/daemon.mjs';

const SECRET = 'a-cluster-audiences-secret-of-well-over-thirty-two-bytes';
const b64u = (b) => Buffer.from(b).toString('base64url');
function mint(claims) {
  const head = b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64u(JSON.stringify(claims));
  const sig = crypto.createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

let pg, db, products, dir, a, b;
const sockets = [];

async function counter(d, name) {
  const text = await (await fetch(`${d.url}/metrics`, { headers: { connection: 'close' } })).text();
  return text.split('\n').filter((l) => l.startsWith(`${name} `)).reduce((s, l) => s + Number(l.split(' ').pop()), 0);
}

function client(d, tenant) {
  const s = connectClient(`${d.url}/tenant`, { reconnection: false, auth: { token: mint({ role: 'ca_viewer', tenant }) } });
  s.tenant = tenant;
  sockets.push(s);
  return s;
}

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  db = await pg.client();
  products = await seedShop(db, { products: 2 });
  await pg.psql(`
CREATE ROLE ca_viewer NOLOGIN;
GRANT ca_viewer TO pgpushd;
GRANT SELECT ON sales TO ca_viewer;
CREATE FUNCTION public.ca_tenant() RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object('tenant', current_setting('request.jwt.claims', true)::json->>'tenant',
    'sales', (SELECT count(*) FROM public.sales)) $$;
GRANT EXECUTE ON FUNCTION public.ca_tenant() TO ca_viewer;
SELECT pgpush.register_dashboard('tenant', 'public.ca_tenant()', ARRAY['sales']::regclass[], ARRAY['tenant']);
`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-cluster-aud-'));
  fs.writeFileSync(path.join(dir, 'secret'), SECRET);
  const args = (max) => ['--refresh-interval', '300', '--jwt-secret-file', path.join(dir, 'secret'),
    '--anon-role', 'ca_viewer', '--audience-grace', '500', '--max-audiences', String(max)];
  a = await startDaemon({ db: pg.conninfo, args: args(2) });
  await a.waitForLog(/cluster role=leader/);
  b = await startDaemon({ db: pg.conninfo, args: args(10) });
  await b.waitForLog(/cluster role=follower/);
  for (const d of [a, b]) {
    for (let i = 0; i < 100; i++) {
      const h = await (await fetch(`${d.url}/healthz`, { headers: { connection: 'close' } })).json();
      if (h.dashboards === 2) break;
      await sleep(50);
    }
  }
});

after(async () => {
  closeClients(sockets);
  try {
    if (b) await b.stopClean('pgpushd b');
    if (a) await a.stopClean('pgpushd a');
  } finally {
    if (pg) await pg.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('remote demand over --max-audiences: refused audiences get audience_limit, the leader\'s own clients still fit, then room brings the document', async () => {
  const mark = a.mark();
  const onB = ['t1', 't2', 't3', 't4'].map((t) => client(b, t));
  const n = Number((await db.query('SELECT count(*) FROM sales')).rows[0].count);
  // Two are computed, two refused: which ones depends on the demand read's order.
  const outcome = await Promise.all(onB.map((s) => Promise.race([
    waitForUpdate(s, (d) => d.tenant === s.tenant && d.sales === n, 15000).then(() => 'doc'),
    waitForError(s, (e) => e.code === 'audience_limit', 15000).then(() => 'refused'),
  ])));
  assert.deepEqual(outcome.slice().sort(), ['doc', 'doc', 'refused', 'refused'], `outcome ${outcome}`);
  await a.waitForLog(/audiences of other instances not computed: --max-audiences 2/, 5000, { since: mark });
  assert.ok(await counter(a, 'pgpush_cluster_demand_refused_total') >= 2, 'the refusals are counted');
  for (const s of onB) assert.ok(s.connected, 'refused clients stay connected');

  // The leader's own clients are not crowded out by the audiences it keeps for b.
  const onA = ['t5', 't6'].map((t) => client(a, t));
  for (const s of onA) await waitForUpdate(s, (d) => d.tenant === s.tenant, 10000);

  // b's computed audiences go: room for the refused ones, which get their document.
  const refused = onB.filter((_, i) => outcome[i] === 'refused');
  for (const [i, s] of onB.entries()) if (outcome[i] === 'doc') s.close();
  await insertSale(db, products[0].id);
  for (const s of refused) {
    const u = await waitForUpdate(s, (d) => d.tenant === s.tenant && d.sales === n + 1, 20000);
    const lastErr = s.rec.errors.at(-1);
    assert.ok(u.t > lastErr.t, `${s.tenant}: the document after the error`);
  }
});
