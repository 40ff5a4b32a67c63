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
      if (code === 'query_failed') assert.match(e.message, /no_such_function/, 'the message says which error');
      const ack = await emitWithAck(s, 'requestDashboardData', 5000);
      assert.ok(ack && ack.error, `the ack carries {error: ...}, got ${JSON.stringify(ack)}`);
      assert.equal(ack.error.code, code);
      assert.equal(s.rec.updates.length, 0, 'no dashboardDataUpdate without a snapshot');
      const h = await fetch(`${d.url}/healthz`, { headers: { connection: 'close' } });
      await h.text();
      assert.equal(h.status, 503, '/healthz without a snapshot');
      assert.ok(s.connected, 'the client stays connected');
      assert.deepEqual(s.rec.disconnects, []);
      s.close();
    } finally {
      await d.stopClean();
    }
  });
}
