// A dashboard query that fails (query_failed) or returns no JSON object
// (bad_result): clients get dashboardDataError, an ack carries {error},
// /healthz says 503, and nobody is disconnected.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitConnected, waitForError, emitWithAck, closeClients, now,
} from '../lib/daemon.mjs';

let pg;
const sockets = [];

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
});

after(async () => {
  closeClients(sockets);
  if (pg) await pg.stop();
});

for (const [code, query] of [
  ['query_failed', 'SELECT pgpush.no_such_function()'],
  ['bad_result', "SELECT '[1,2,3]'::json"],
  ['bad_result', 'SELECT 42 WHERE false'],
]) {
  test(`--query ${JSON.stringify(query)}: dashboardDataError ${code}`, { timeout: 30000 }, async () => {
    const d = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300', '--query', query] });
    try {
      const t0 = now();
      const s = connectClient(d.url); sockets.push(s);
      await waitConnected(s);
      const { data: e, t } = await waitForError(s, () => true, 10000);
      console.log(`${query}: dashboardDataError after ${(t - t0).toFixed(0)} ms: ${JSON.stringify(e)}`);
      assert.equal(e.code, code);
      assert.equal(typeof e.message, 'string');
      assert.ok(e.message.length > 0);
      // Clients get a code and a generic message; PostgreSQL's goes to the log.
      assert.doesNotMatch(e.message, /no_such_function|SQLSTATE|ERROR|\[1,2,3\]/, 'no database text reaches clients');
      if (code === 'query_failed') assert.ok(d.grep(/no_such_function/).length > 0, 'the log says which error');
      const ack = await emitWithAck(s, 'requestDashboardData', 5000);
      assert.ok(ack && ack.error, `the ack carries {error: ...}, got ${JSON.stringify(ack)}`);
      assert.equal(ack.error.code, code);
      assert.equal(ack.error.message, e.message);
      assert.equal(s.rec.updates.length, 0, 'no dashboardDataUpdate without a snapshot');
      const h = await fetch(`${d.url}/healthz`, { headers: { connection: 'close' } });
      const hj = JSON.parse(await h.text());
      assert.equal(h.status, 503, '/healthz without a snapshot');
      assert.equal(hj.error.code, code);
      if (code === 'query_failed') assert.match(hj.lastError, /no_such_function/, 'loopback /healthz has the detail');
      assert.ok(s.connected, 'the client stays connected');
      assert.deepEqual(s.rec.disconnects, []);
      s.close();
    } finally {
      await d.stopClean();
    }
  });
}

// The query session is read-only and takes one statement (extended
// protocol): a --query that writes, or that smuggles a second statement, is
// refused and writes nothing.
for (const [what, query] of [
  ['two statements', "SELECT pgpush.dashboard(); SELECT pgpush.dashboard()"],
  ['a write before the document', "UPDATE public.stock SET quantity = -777; SELECT pgpush.dashboard()"],
  ['a write in a CTE', "WITH w AS (UPDATE public.stock SET quantity = -777 RETURNING 1) SELECT pgpush.dashboard() FROM w LIMIT 1"],
  ['a write in a function', 'SELECT public.write_then_dashboard()'],
]) {
  test(`--query with ${what} is refused and writes nothing`, { timeout: 30000 }, async () => {
    await pg.psql(`INSERT INTO products (sku, name, unit_price) VALUES ('RO-1', 'ro', 1) ON CONFLICT DO NOTHING;
      INSERT INTO stock (product_id, quantity) SELECT id, 5 FROM products WHERE sku = 'RO-1' ON CONFLICT DO NOTHING;
      CREATE OR REPLACE FUNCTION public.write_then_dashboard() RETURNS json LANGUAGE plpgsql AS $$
      BEGIN UPDATE public.stock SET quantity = -777; RETURN pgpush.dashboard(); END $$;`);
    const d = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300', '--query', query] });
    try {
      const s = connectClient(d.url); sockets.push(s);
      await waitConnected(s);
      const { data: e } = await waitForError(s, () => true, 10000);
      assert.equal(e.code, 'query_failed');
      assert.equal(s.rec.updates.length, 0, 'nothing published');
      assert.equal((await pg.psql('SELECT count(*) FROM stock WHERE quantity = -777')).trim(), '0', 'nothing written');
      assert.ok(s.connected);
      s.close();
    } finally {
      await d.stopClean();
    }
  });
}

test('/healthz stays valid JSON with a very long error', { timeout: 30000 }, async () => {
  // Quotes and control characters double or sextuple when escaped.
  await pg.psql(`CREATE OR REPLACE FUNCTION public.long_error() RETURNS json LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '%', repeat('"\\' || chr(1), 400) || 'é' || repeat('x', 3000); END $$`);
  const d = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300', '--query', 'SELECT public.long_error()'] });
  try {
    const s = connectClient(d.url); sockets.push(s);
    await waitConnected(s);
    const { data: e } = await waitForError(s, () => true, 10000);
    assert.equal(e.code, 'query_failed');
    assert.doesNotMatch(e.message, /"/);
    for (let i = 0; i < 3; i++) {
      const h = await fetch(`${d.url}/healthz`, { headers: { connection: 'close' } });
      const text = await h.text();
      assert.equal(h.status, 503);
      const j = JSON.parse(text);   // throws on a cut document
      assert.equal(j.status, 'unavailable');
      assert.equal(j.error.code, 'query_failed');
      assert.equal(typeof j.lastError, 'string');
    }
    s.close();
  } finally {
    await d.stopClean();
  }
});
