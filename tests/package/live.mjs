// The installed pgpushd serves one live update: a throwaway PostgreSQL set up
// with the installed SQL files, the installed binary, the real
// socket.io-client. Called by tests/package/run with PGPUSHD (the installed
// binary; read by tests/lib/daemon.mjs) and PGPUSH_SQL_DIR (the installed
// /usr/share/pgpush/sql). Prints TAP lines; exits non-zero on failure.
import path from 'node:path';
import { startCluster } from '../lib/pgcluster.mjs';
import {
  startDaemon, connectClient, waitConnected, waitForUpdate, seedShop, insertSale, closeClients, now,
} from '../lib/daemon.mjs';

const sqlDir = process.env.PGPUSH_SQL_DIR;
let n = 0;
let failed = 0;
const ok = (cond, what) => {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? '' : 'not '}ok ${n} - ${what}`);
  return cond;
};

let pg, daemon, socket;
try {
  pg = await startCluster({ sql: [path.join(sqlDir, 'schema.sql'), path.join(sqlDir, 'install.sql')] });
  ok(true, `throwaway PostgreSQL with the installed schema.sql and install.sql (${pg.bindir})`);
  const db = await pg.client();
  const products = await seedShop(db, { products: 2 });
  daemon = await startDaemon({ db: pg.conninfo, args: ['--refresh-interval', '300'] });
  ok(daemon.argv[0] === process.env.PGPUSHD, `the installed binary listens (${daemon.argv[0]}, port ${daemon.port})`);
  socket = connectClient(daemon.url);
  await waitConnected(socket, 10000);
  const first = await waitForUpdate(socket, () => true, 10000);
  ok(first.data.reason === 'startup', `first snapshot on connect (reason ${first.data.reason})`);
  const t0 = now();
  const sale = await insertSale(db, products[0].id, { quantity: 3 });
  const live = await waitForUpdate(socket, (d) => d.version > first.data.version && /^notify:/.test(d.reason), 10000);
  ok(Array.isArray(live.data.recentSales) && live.data.recentSales.some((s) => Number(s.id) === sale.id),
    `live update after an INSERT (reason ${live.data.reason}, ${Math.round(live.t - t0)} ms after the INSERT was sent), carrying the new sale`);
  closeClients([socket]);
  socket = null;
  const st = await daemon.stop('SIGTERM');
  daemon = null;
  ok(st.code === 0 && !st.killed, `SIGTERM: exit 0 in ${st.ms} ms`);
} catch (err) {
  ok(false, `live update: ${err.stack || err}`);
} finally {
  if (socket) closeClients([socket]);
  if (daemon) await daemon.stop('SIGKILL').catch(() => {});
  if (pg) await pg.stop().catch(() => {});
}
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
