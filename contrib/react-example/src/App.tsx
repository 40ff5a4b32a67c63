import { useMemo, useRef } from 'react';
import {
  useDashboard, forecastSeries, recentSalesRows, revenueByDay,
  type ForecastSeries, type RecentSaleRow, type RevenueDay,
} from 'pgpush-client/react';
import type { ClientError, ConnectionStatus, LowStockItem, Summary } from 'pgpush-client';

// pgpushd serves this app (--static-dir dist), or the dev server proxies
// /socket.io to it: either way the page's own origin.
const URL = import.meta.env.VITE_PGPUSHD_URL || window.location.origin;
const PALETTE = ['#2563eb', '#dc2626', '#d97706', '#059669', '#7c3aed'];

const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const whole = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
const dayLabel = (d: string) => {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(d);
  return m ? new Date(+m[1], +m[2] - 1, +m[3]).toLocaleDateString([], { month: 'short', day: 'numeric' }) : d;
};

const STATUS_TEXT: Record<ConnectionStatus, string> = {
  connecting: 'connecting…',
  connected: 'connected',
  reconnecting: 'reconnecting…',
  disconnected: 'disconnected',
  error: 'error',
};

export function App() {
  const { data, status, reason, error, lastUpdated, version, stats, refresh } = useDashboard(URL);
  const sales = useMemo(() => recentSalesRows(data?.recentSales), [data?.recentSales]);
  const days = useMemo(() => revenueByDay(data?.salesByDay), [data?.salesByDay]);
  const series = useMemo(() => forecastSeries(data?.stockPredictions, { limit: 5 }), [data?.stockPredictions]);

  return (
    <>
      <header className="topbar">
        <div className="brand">
          <span className="logo" aria-hidden="true" />
          <div>
            <h1>Sales dashboard</h1>
            <p className="subtitle">React · pgpush-client/react · live from PostgreSQL through pgpushd</p>
          </div>
        </div>
        <div className="status" id="status" data-state={status} role="status" aria-live="polite">
          <span className="status-dot" aria-hidden="true" />
          <span id="status-text">{STATUS_TEXT[status]}{status === 'error' && reason ? ` (${reason})` : ''}</span>
          {(status === 'disconnected' || status === 'error') && (
            <button type="button" className="status-retry" onClick={() => { void refresh(); }}>Retry</button>
          )}
        </div>
      </header>

      <Banner status={status} reason={reason} error={error} hasData={data !== null} />

      <main className={`layout${status === 'connected' ? '' : ' stale'}`} aria-busy={data === null}>
        <SummaryCards summary={data?.summary} />
        <section className="card panel recent">
          <div className="panel-head"><h2>Recent sales</h2><span className="panel-note">latest 10, newest first</span></div>
          <RecentSales rows={sales} />
        </section>
        <div className="side">
          <section className="card panel">
            <div className="panel-head">
              <h2>Revenue by day</h2>
              <span className="panel-note">last {days.length} days · total {money.format(days.reduce((a, d) => a + d.revenue, 0))}</span>
            </div>
            <RevenueChart days={days} />
          </section>
          <section className="card panel">
            <div className="panel-head"><h2>Low stock</h2><span className="panel-note">at or below reorder level</span></div>
            <LowStock items={data?.lowStock ?? []} />
          </section>
        </div>
        <section className="card panel forecast">
          <div className="panel-head"><h2>Stock forecast</h2><span className="panel-note">next 14 days, products running out soonest</span></div>
          <ForecastChart series={series} />
        </section>
      </main>

      <footer className="footer">
        <span>Snapshot <b id="snap-version">{version ?? '—'}</b></span>
        <span>reason <b id="snap-reason">{data?.reason ?? '—'}</b></span>
        <span>updated <b id="snap-updated">{lastUpdated ? lastUpdated.toLocaleTimeString() : '—'}</b></span>
        <span>received <b id="stat-updates">{stats?.updates ?? 0}</b> full documents,{' '}
          <b id="stat-patches">{stats?.patches ?? 0}</b> patches, <b id="stat-resyncs">{stats?.resyncs ?? 0}</b> resyncs</span>
      </footer>
    </>
  );
}

function Banner({ status, reason, error, hasData }: { status: ConnectionStatus; reason: string | null; error: ClientError | null; hasData: boolean }) {
  let title: string | null = null;
  let text = '';
  let kind = 'warn';
  if (status === 'error' && error?.kind === 'data') {
    title = 'Data error';
    const next = error.nextAttemptAt ? new Date(error.nextAttemptAt) : null;
    text = `${error.message} (${error.code})${next && !Number.isNaN(next.getTime()) ? ` · next attempt at ${next.toLocaleTimeString()}` : ''}` +
      `${hasData ? ' · showing the last good data' : ''}`;
  } else if (status === 'error') {
    title = 'Cannot connect'; kind = 'crit';
    text = error ? `${error.message} (${error.code})` : reason ?? '';
  } else if (status === 'reconnecting') {
    title = 'Connection lost'; text = `${reason ?? ''} · reconnecting`;
  } else if (status === 'disconnected' && reason !== 'closed') {
    title = 'Disconnected'; kind = 'crit';
    text = reason === 'reconnect_failed' ? 'the server could not be reached after 5 attempts' : reason ?? '';
  }
  if (!title) return null;
  return <div className="banner" id="banner" data-kind={kind} role="alert"><strong>{title}</strong> <span id="banner-text">{text}</span></div>;
}

const FIELDS: Array<[keyof Summary, string, boolean]> = [
  ['revenueToday', 'Revenue today', true],
  ['salesToday', 'Sales today', false],
  ['revenue30d', 'Revenue, 30 days', true],
  ['sales30d', 'Sales, 30 days', false],
  ['avgOrderValue30d', 'Average order, 30 days', true],
  ['lowStockCount', 'Products low on stock', false],
];

function SummaryCards({ summary }: { summary: Summary | undefined }) {
  return (
    <section className="summary" aria-label="Summary">
      {FIELDS.map(([key, label, isMoney]) => (
        <div key={key} className={`card metric${key === 'lowStockCount' && (summary?.lowStockCount ?? 0) > 0 ? ' warn' : ''}`}>
          <span className="metric-label">{label}</span>
          <span className="metric-value" data-field={key}>
            {summary ? (isMoney ? money : whole).format(summary[key]) : '—'}
          </span>
        </div>
      ))}
    </section>
  );
}

function RecentSales({ rows }: { rows: RecentSaleRow[] }) {
  // Rows that were not in the first document seen are highlighted.
  const seen = useRef<Set<number> | null>(null);
  const fresh = useRef(new Map<number, number>());
  const now = Date.now();
  if (rows.length) {
    if (seen.current) for (const r of rows) if (!seen.current.has(r.id) && !fresh.current.has(r.id)) fresh.current.set(r.id, now);
    seen.current = new Set(rows.map((r) => r.id));
  }
  return (
    <div className="table-wrap">
      <table className="table" id="recent-sales">
        <thead><tr><th>Time</th><th>Product</th><th className="hide-sm">Customer</th><th className="num">Qty</th><th className="num">Amount</th></tr></thead>
        <tbody>
          {rows.length === 0 && <tr className="empty"><td colSpan={5}>Waiting for data…</td></tr>}
          {rows.map((r) => {
            const age = fresh.current.has(r.id) ? now - fresh.current.get(r.id)! : Infinity;
            return (
              <tr key={r.id} data-id={r.id} className={age < 4000 ? 'row-new' : undefined}>
                <td className="nowrap">{r.soldAt ? r.soldAt.toLocaleTimeString() : '—'}</td>
                <td><div className="primary">{r.product}</div>{r.sku && <div className="secondary">{r.sku}</div>}</td>
                <td className="hide-sm"><div className="primary">{r.customer}</div>{r.email && <div className="secondary">{r.email}</div>}</td>
                <td className="num">{whole.format(r.quantity)}</td>
                <td className="num strong">{money.format(r.amount)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** A y scale from 0: a round step and at most 5 gridlines. */
function niceScale(max: number) {
  if (!(max > 0)) return { top: 4, step: 1 };
  const raw = max / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((v) => v >= raw)!;
  return { top: Math.ceil(max / step - 1e-9) * step, step };
}

function Grid({ top, step, L, R, T, W, ph }: { top: number; step: number; L: number; R: number; T: number; W: number; ph: number }) {
  const lines = [];
  for (let v = 0; v <= top + step / 2; v += step) {
    const y = T + ph - (ph * v) / top;
    lines.push(
      <g key={v}>
        <line x1={L} x2={W - R} y1={y} y2={y} className={v === 0 ? 'axis' : 'grid'} />
        <text x={L - 6} y={y + 4} className="tick" textAnchor="end">{compact.format(v)}</text>
      </g>,
    );
  }
  return <>{lines}</>;
}

function RevenueChart({ days }: { days: RevenueDay[] }) {
  const W = 640, H = 230, L = 46, R = 8, T = 12, B = 26;
  const pw = W - L - R, ph = H - T - B;
  const { top, step } = niceScale(Math.max(0, ...days.map((d) => d.revenue)));
  const slot = days.length ? pw / days.length : pw;
  return (
    <svg id="sales-by-day" className="svg-chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="Revenue per day">
      <Grid top={top} step={step} L={L} R={R} T={T} W={W} ph={ph} />
      {days.map((d, i) => {
        const h = (Math.max(0, d.revenue) / top) * ph;
        return (
          <rect key={d.day} className={d.isToday ? 'bar today' : 'bar'} rx={2}
            x={L + i * slot + slot * 0.14} y={T + ph - h} width={Math.max(1, slot * 0.72)} height={Math.max(h, d.revenue > 0 ? 1 : 0)}>
            <title>{`${dayLabel(d.day)}: ${money.format(d.revenue)} revenue, ${d.sales} sales, ${d.units} units`}</title>
          </rect>
        );
      })}
      {days.length > 0 && <>
        <text x={L} y={H - 6} className="tick" textAnchor="start">{dayLabel(days[0].day)}</text>
        <text x={W - R} y={H - 6} className="tick" textAnchor="end">today</text>
      </>}
    </svg>
  );
}

function ForecastChart({ series }: { series: ForecastSeries[] }) {
  const W = 1300, H = 300, L = 46, R = 12, T = 12, B = 26;
  const pw = W - L - R, ph = H - T - B;
  const n = Math.max(2, ...series.map((s) => s.points.length));
  const { top, step } = niceScale(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.stock))));
  const x = (i: number) => L + (i * pw) / (n - 1);
  return (
    <div className="forecast-body">
      <svg id="forecast-chart" className="svg-chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="Forecast stock, next 14 days">
        <Grid top={top} step={step} L={L} R={R} T={T} W={W} ph={ph} />
        {series.length === 0 && <text x={W / 2} y={H / 2} className="placeholder" textAnchor="middle">Nothing is running out</text>}
        {series.map((s, k) => (
          <polyline key={s.productId} className="series" stroke={PALETTE[k % PALETTE.length]}
            points={s.points.map((p, i) => `${x(i).toFixed(1)},${(T + ph * (1 - Math.max(0, p.stock) / top)).toFixed(1)}`).join(' ')}>
            <title>{`${s.name}: ${s.daysUntilStockout} days of stock left`}</title>
          </polyline>
        ))}
        <text x={x(0)} y={H - 6} className="tick" textAnchor="start">today</text>
        <text x={x(n - 1)} y={H - 6} className="tick" textAnchor="end">+{n - 1} d</text>
      </svg>
      <ul className="legend" id="forecast-legend">
        {series.map((s, k) => (
          <li key={s.productId}>
            <span className="swatch" style={{ background: PALETTE[k % PALETTE.length] }} />
            <span className="legend-name">{s.name}</span>
            <span className="legend-note">{s.daysUntilStockout} d{s.stockoutDate ? ` · ${dayLabel(s.stockoutDate)}` : ''}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

function LowStock({ items }: { items: LowStockItem[] }) {
  if (!items.length) return <ul className="low-list"><li className="empty">Nothing is low on stock</li></ul>;
  return (
    <ul className="low-list" id="low-stock">
      {items.slice(0, 8).map((p) => (
        <li key={p.productId} data-id={p.productId} className={p.stock <= 0 ? 'out' : undefined}>
          <div className="low-head">
            <span className="primary">{p.product}</span>
            <span className="low-qty">{whole.format(p.stock)}<span className="secondary"> / {whole.format(p.reorderLevel)}</span></span>
          </div>
          <div className="meter"><span style={{ width: `${(Math.max(0, Math.min(1, p.reorderLevel ? p.stock / p.reorderLevel : 0)) * 100).toFixed(1)}%` }} /></div>
        </li>
      ))}
      {items.length > 8 && <li className="low-more">and {items.length - 8} more</li>}
    </ul>
  );
}
