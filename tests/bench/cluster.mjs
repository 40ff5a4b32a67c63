// The benchmark's `cluster` scenario (issue 12), run by tests/bench/run.mjs:
// the same clients on 3 instances against 1 instance.
//
// Clients: --cluster-clients in all (3,000), always as 3 load generators of
// a third each, so that the client side costs the same in both layouts.
// --cluster-via (both by default):
//   direct   each load generator connects straight to one instance's port
//            (instance i % n): pgpushd's and PostgreSQL's numbers alone;
//   haproxy  all three to haproxy running contrib/haproxy/haproxy.cfg
//            (tests/lib/haproxy.mjs) in front of the n instances, which
//            spreads them (leastconn); haproxy's CPU per sale is given too.
// Full documents, the stock client (no patches).
//
// Per layout, --samples sales one after another (300 ms apart):
//   commit -> last client: for each sale, the latest of all clients of all
//     instances (the load generators' clocks are this host's), then its
//     p50 / p95 / max over the sales;
//   database statements per sale: pg_stat_statements (the cluster is
//     started with it preloaded), every statement of the daemons' role
//     (pgpushd) over the samples, divided by the number of sales; the
//     readiness probe (one NOTIFY a second per instance) left out, and the
//     rest of what runs with no sale at all (a leader's lock, a follower's
//     poll...) measured first over --cluster-idle-seconds and given
//     separately as statements per second;
//   dashboard queries per sale: the instances' pgpush_recomputes_total;
//   RSS per client: the instances' VmRSS after the clients joined minus
//     before, summed, over the clients that joined; and per instance.
// Then, direct, when the daemons lead and follow (pgpush_cluster_leader in
// their /metrics), --failovers times: kill -9 of the leader, a sale at once, and
// the time from the kill to the last client of the surviving instances;
// then a new instance and its clients in place of the dead one.

import { findHaproxy, startHaproxy } from '../lib/haproxy.mjs';

const STMT_SQL = `SELECT coalesce(sum(calls), 0)::int8 AS calls
  FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
  WHERE r.rolname = $1 AND s.query NOT LIKE '%pg_notification_queue_usage%'`;
const TOP_SQL = `SELECT s.query, sum(calls)::int8 AS calls
  FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
  WHERE r.rolname = $1 AND s.query NOT LIKE '%pg_notification_queue_usage%'
  GROUP BY s.query ORDER BY 2 DESC LIMIT 12`;

/**
 * ctx: { opt, db, pg, log, sleep, startServer, startLoadgen, insertSale,
 *        httpText(port, path), nowUs, pctl }
 * Resolves the result object stored as results.cluster.
 */
export async function scenarioCluster(ctx) {
  const { opt, db, pg, log, sleep, startServer, startLoadgen, insertSale, pctl } = ctx;
  const out = { clients: opt.clusterClients, samples: opt.samples, layouts: [] };
  let pss = true;
  try {
    await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await db.query('SELECT pg_stat_statements_reset()');
  } catch (err) {
    pss = false;
    out.pgStatStatements = `unavailable: ${err.message}`;
    log(`cluster: pg_stat_statements unavailable (${err.message}): statements per sale not measured`);
  }
  const role = pg.daemonRole;
  const statements = async () => (pss ? Number((await db.query(STMT_SQL, [role])).rows[0].calls) : null);
  const metricSum = async (srv, name) => {
    const text = await ctx.httpText(srv.port, '/metrics');
    let sum = null;
    for (const l of text.split('\n')) {
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`).exec(l);
      if (m) sum = (sum || 0) + Number(m[1]);
    }
    return sum;
  };
  const third = Math.round(opt.clusterClients / 3);

  const hp = opt.clusterVia.includes('haproxy') ? findHaproxy() : null;
  if (hp && hp.why) log(`cluster: ${hp.why}: not through haproxy`);
  for (const via of opt.clusterVia) for (const n of [1, 3]) {
    if (via === 'haproxy' && !hp.bin) continue;
    log(`cluster: ${n} instance${n > 1 ? 's' : ''}, ${3 * third} clients ${via === 'haproxy' ? 'through haproxy' : 'straight to the instances'}, ${opt.samples} sales`);
    const srvs = [];
    const lgs = [];
    let lb = null;
    const r = { via, instances: n, clients: 3 * third };
    try {
      for (let i = 0; i < n; i++) srvs.push(await startServer('pgpushd', { extra: opt.daemonArgs }));
      if (via === 'haproxy') {
        lb = await startHaproxy(hp.bin, srvs.map((x) => x.port), { maxconn: 3 * third + 1000 });
        for (let k = 0; k < 100; k++) {
          const st = await lb.serverStates();
          if (Object.values(st).every((x) => x === 'UP')) break;
          await sleep(200);
        }
      }
      await sleep(1500);
      const rss0 = srvs.map((s) => s.rss().rssKb);
      for (let k = 0; k < 3; k++) lgs.push(await startLoadgen(lb ? lb.port : srvs[k % n].port, third, { tagKey: 'id' }));
      await sleep(3000);
      const rss1 = srvs.map((s) => s.rss().rssKb);
      r.joined = lgs.reduce((a, lg) => a + lg.connected.joined, 0);
      r.rssPerClientB = Math.round(rss1.reduce((a, x, i) => a + x - rss0[i], 0) * 1024 / Math.max(1, r.joined));
      r.rssPerInstanceKb = rss0;
      r.leader = n > 1 ? await Promise.all(srvs.map((s) => metricSum(s, 'pgpush_cluster_leader'))) : null;
      // What runs with no sale.
      const i0 = await statements();
      await sleep(opt.clusterIdleSeconds * 1000);
      const i1 = await statements();
      r.idleStatementsPerSec = pss ? (i1 - i0) / opt.clusterIdleSeconds : null;
      const rec0 = await Promise.all(srvs.map((s) => metricSum(s, 'pgpush_recomputes_total')));
      const s0 = await statements();
      const lbCpu0 = lb ? ctx.cpuSeconds(lb.proc.pid) : null;
      const w0 = Date.now();
      const last = [];
      let timeouts = 0;
      for (let k = 0; k < opt.samples; k++) {
        const sale = await insertSale('bench cluster');
        for (const lg of lgs) { lg.send(`ref ${sale.id} ${sale.t}`); lg.send(`wait ${sale.id} 30000`); }
        const ws = await Promise.all(lgs.map((lg) => lg.next((o) => o.ev === 'wait' && o.tag === sale.id, 40000)));
        if (ws.some((w) => !w.ok)) timeouts++;
        await sleep(300);
      }
      const s1 = await statements();
      if (lb) r.haproxyCpuMsPerSale = (ctx.cpuSeconds(lb.proc.pid) - lbCpu0) * 1000 / opt.samples;
      r.clientsPerInstance = await Promise.all(srvs.map((x) => metricSum(x, 'pgpush_clients')));
      const wallSec = (Date.now() - w0) / 1000;
      const rec1 = await Promise.all(srvs.map((s) => metricSum(s, 'pgpush_recomputes_total')));
      const reps = [];
      for (const lg of lgs) reps.push(await lg.report());
      const perSale = new Map();
      for (const rep of reps) {
        for (const v of rep.versions) {
          if (v.ref_us) perSale.set(v.tag, Math.max(perSale.get(v.tag) ?? 0, v.lat_max_ms));
        }
      }
      const lastMs = [...perSale.values()];
      r.timeouts = timeouts;
      r.lastClient = { p50: pctl(lastMs, 0.5), p95: pctl(lastMs, 0.95), max: lastMs.length ? Math.max(...lastMs) : null, n: lastMs.length };
      r.allClientsP50Ms = pctl(reps.map((x) => x.summary.lat_p50_ms).filter((x) => x != null), 0.5);
      r.recomputesPerInstance = rec1.map((x, i) => (x - rec0[i]) / opt.samples);
      r.dashboardQueriesPerSale = r.recomputesPerInstance.reduce((a, x) => a + x, 0);
      r.statementsPerSale = pss ? (s1 - s0) / opt.samples : null;
      r.statementsPerSaleNetOfIdle = pss ? ((s1 - s0) - r.idleStatementsPerSec * wallSec) / opt.samples : null;
      if (pss) r.topStatements = (await db.query(TOP_SQL, [role])).rows.map((x) => ({ calls: Number(x.calls), query: x.query.slice(0, 160) }));
      log(`  ${r.joined} joined; commit -> last client p50 ${ctx.fmt(r.lastClient.p50)} / p95 ${ctx.fmt(r.lastClient.p95)} / max ${ctx.fmt(r.lastClient.max)} ms; ` +
        `dashboard queries/sale ${ctx.fmt(r.dashboardQueriesPerSale, 2)} (${r.recomputesPerInstance.map((x) => ctx.fmt(x, 2)).join(' + ')}); ` +
        `statements/sale ${ctx.fmt(r.statementsPerSale, 1)} (idle ${ctx.fmt(r.idleStatementsPerSec, 1)}/s); ${r.rssPerClientB} B/client${timeouts ? `; ${timeouts} timeouts` : ''}`);
      if (!lb && n > 1 && r.leader.some((x) => x === 1) && opt.failovers > 0) r.failover = await failovers(ctx, srvs, lgs, third, metricSum);
      out.layouts.push(r);
    } catch (err) {
      r.error = String(err.stack || err);
      out.layouts.push(r);
      log(`  failed: ${err.message}`);
    } finally {
      for (const lg of lgs) await lg.quit();
      if (lb) await lb.stop();
      for (const s of srvs) await s.stop();
      if (pss) await db.query('SELECT pg_stat_statements_reset()');
    }
  }
  return out;
}

/** kill -9 of the leader, a sale at once, kill -> last surviving client; a
 * fresh instance and its clients in its place; --failovers times. */
async function failovers(ctx, srvs, lgs, third, metricSum) {
  const { opt, log, sleep, startServer, startLoadgen, insertSale, nowUs } = ctx;
  const res = [];
  for (let k = 0; k < opt.failovers; k++) {
    const lead = await Promise.all(srvs.map((s) => metricSum(s, 'pgpush_cluster_leader')));
    const li = lead.findIndex((x) => x === 1);
    if (li < 0) { log('  failover: no leader'); break; }
    const survivors = lgs.filter((_, i) => i % srvs.length !== li);
    const killUs = nowUs();
    srvs[li].proc.kill('SIGKILL');
    const sale = await insertSale('bench failover');
    for (const lg of survivors) { lg.send(`ref ${sale.id} ${killUs}`); lg.send(`wait ${sale.id} 30000`); }
    const ws = await Promise.all(survivors.map((lg) => lg.next((o) => o.ev === 'wait' && o.tag === sale.id, 40000)));
    let ms = null;
    if (ws.every((w) => w.ok)) {
      ms = 0;
      for (const lg of survivors) {
        const rep = await lg.report();
        const v = rep.versions.filter((x) => x.tag === sale.id && x.ref_us);
        for (const x of v) ms = Math.max(ms, x.lat_max_ms);
        lg.send('reset');
      }
    }
    res.push({ killToLastClientMs: ms, commitAfterKillMs: (sale.t - killUs) / 1000 });
    log(`  failover ${k + 1}: kill -9 of the leader -> the next sale at the last surviving client ${ctx.fmt(ms)} ms`);
    // The dead instance's place: a new instance and new clients.
    await srvs[li].stop();
    const dead = lgs.filter((_, i) => i % srvs.length === li);
    for (const lg of dead) await lg.quit();
    srvs[li] = await startServer('pgpushd', { extra: opt.daemonArgs });
    for (let i = 0; i < lgs.length; i++) {
      if (i % srvs.length === li) lgs[i] = await startLoadgen(srvs[li].port, third, { tagKey: 'id' });
    }
    await sleep(2000);
  }
  return res;
}

/** The markdown table lines for results.cluster. */
export function clusterTable(c, fmt) {
  const L = [];
  L.push(`9. Cluster: ${c.clients} clients (3 load generators, straight to the instances' ports or all through haproxy), ${c.samples} sales: 1 instance against 3; commit → last client of all (per sale; p50 / p95 / max over the sales), database statements of the daemons' role per sale (pg_stat_statements; the readiness probe left out; what runs with no sale at all given per second), dashboard queries per sale (pgpush_recomputes_total, summed), RSS per client (all instances)`);
  L.push('');
  L.push('| clients connect | instances | joined (per instance) | last client p50 / p95 / max, ms | statements per sale (net of idle) | idle statements/s | dashboard queries per sale (per instance) | RSS per client |');
  L.push('|---|---:|---:|---|---|---:|---|---:|');
  for (const r of c.layouts) {
    const via = r.via === 'haproxy' ? `through haproxy (${fmt(r.haproxyCpuMsPerSale)} ms haproxy CPU per sale)` : 'straight';
    if (r.error) { L.push(`| ${via} | ${r.instances} | failed: ${r.error.split('\n')[0]} |||||`); continue; }
    L.push(`| ${via} | ${r.instances} | ${r.joined} (${(r.clientsPerInstance || []).join(' + ')}) | ${fmt(r.lastClient.p50)} / ${fmt(r.lastClient.p95)} / ${fmt(r.lastClient.max)}${r.timeouts ? ` (${r.timeouts} timeouts)` : ''} | ${fmt(r.statementsPerSale, 1)} (${fmt(r.statementsPerSaleNetOfIdle, 1)}) | ${fmt(r.idleStatementsPerSec, 1)} | ${fmt(r.dashboardQueriesPerSale, 2)} (${r.recomputesPerInstance.map((x) => fmt(x, 2)).join(' + ')}) | ${r.rssPerClientB} B |`);
  }
  L.push('');
  const f = c.layouts.find((r) => r.failover && r.failover.length);
  if (f) {
    L.push(`Failover (3 instances, clients straight to them): kill -9 of the leader, a sale committed at once; kill → last client of the surviving instances: ${f.failover.map((x) => `${fmt(x.killToLastClientMs, 0)} ms`).join(', ')}.`);
    L.push('');
  }
  return L;
}
