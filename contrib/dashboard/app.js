/*
 * pgpush demo dashboard: connects to pgpushd with pgpush-client (the module
 * of contrib/client, served next to this file as /pgpush-client.js) over the
 * stock socket.io-client bundle, and renders every new document
 * (docs/protocol.md): full ones and patched ones alike.
 *
 * No framework and no innerHTML: every piece of data reaches the page through
 * textContent or setAttribute, so whatever the dashboard query returns is
 * shown as text, never parsed as markup.
 *
 * For tests and for playing in the console: window.pgpushDashboard.render(doc)
 * renders a document without a server.
 */
import { createDashboardClient } from './pgpush-client.js';

(function () {
  'use strict';

  var SVG_NS = 'http://www.w3.org/2000/svg';
  var FORECAST_ROWS = 10;      // rows of the forecast table before "show all"
  var FORECAST_LINES = 5;      // products drawn in the forecast chart
  var LOW_STOCK_ROWS = 8;      // low-stock entries listed before "and N more"
  var PALETTE = ['#2563eb', '#dc2626', '#d97706', '#059669', '#7c3aed'];

  function $(id) { return document.getElementById(id); }

  // ---------------------------------------------------------------- DOM --

  function append(node, children) {
    for (var i = 0; i < children.length; i++) {
      var c = children[i];
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : String(c));   // strings become text nodes
    }
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return node;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === 'text') node.textContent = String(v);
      else if (k === 'class') node.setAttribute('class', v);
      else node.setAttribute(k, v === true ? '' : String(v));
    });
    return node;
  }

  /** el('td', {class: 'num'}, 'text', childNode, ...) */
  function el(tag, attrs) {
    return append(setAttrs(document.createElement(tag), attrs),
      Array.prototype.slice.call(arguments, 2));
  }

  function svg(tag, attrs) {
    return append(setAttrs(document.createElementNS(SVG_NS, tag), attrs),
      Array.prototype.slice.call(arguments, 2));
  }

  // ---------------------------------------------------------- formatting --

  var params = new URLSearchParams(location.search);
  var moneyFmt;
  try {
    // ?currency=EUR shows amounts with a currency; the document has none.
    moneyFmt = params.get('currency')
      ? new Intl.NumberFormat(undefined, { style: 'currency', currency: params.get('currency') })
      : null;
  } catch (e) { moneyFmt = null; }
  var fmt2 = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var fmt1 = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  var fmt0 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  var fmtCompact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });

  /** A finite number from a JSON number or numeric string, else null. */
  function num(v) {
    var n = typeof v === 'number' ? v
      : (typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN);
    return isFinite(n) ? n : null;
  }
  function str(v) { return v === null || v === undefined ? '' : String(v); }
  function arr(v) { return Array.isArray(v) ? v.filter(function (x) { return x && typeof x === 'object'; }) : []; }

  function money(v) { var n = num(v); return n === null ? '—' : (moneyFmt || fmt2).format(n); }
  function int(v) { var n = num(v); return n === null ? '—' : fmt0.format(n); }
  function dec(v, f) { var n = num(v); return n === null ? '—' : f.format(n); }

  function parseTime(v) {
    var d = typeof v === 'string' || typeof v === 'number' ? new Date(v) : null;
    return d && !isNaN(d.getTime()) ? d : null;
  }
  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }
  /** "14:03:27" today, "Nov 25, 14:03" before. */
  function time(v) {
    var d = parseTime(v);
    if (!d) return str(v) || '—';
    return sameDay(d, new Date())
      ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
      : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  }
  /** "2026-11-26" (a calendar day, not an instant) -> "Nov 26". */
  function day(v) {
    var m = /^(\d{4})-(\d{2})-(\d{2})/.exec(str(v));
    if (!m) return str(v) || '—';
    return new Date(+m[1], +m[2] - 1, +m[3]).toLocaleDateString([], { month: 'short', day: 'numeric' });
  }

  /**
   * A y axis from 0 for values up to max: a round step (1, 2 or 5 x 10^k)
   * and at most 5 gridlines. Returns { top, step }.
   */
  function niceScale(max) {
    if (!(max > 0)) return { top: 4, step: 1 };
    var raw = max / 4;
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * p; }).filter(function (v) { return v >= raw; })[0];
    if (step < 1 && max >= 4) step = 1;          // whole units for counts
    return { top: Math.ceil(max / step - 1e-9) * step, step: step };
  }

  /** Horizontal gridlines and y labels of a chart area. */
  function yAxis(chart, scale, L, R, T, W, ph) {
    for (var v = 0; v <= scale.top + scale.step / 2; v += scale.step) {
      var gy = T + ph - (ph * v) / scale.top;
      chart.append(
        svg('line', { x1: L, x2: W - R, y1: gy, y2: gy, class: v === 0 ? 'axis' : 'grid' }),
        svg('text', { x: L - 6, y: gy + 4, class: 'tick', 'text-anchor': 'end' }, fmtCompact.format(v)));
    }
  }

  /** Restart a one-shot CSS animation class on an element. */
  function flash(node, cls) {
    node.classList.remove(cls);
    void node.offsetWidth;     // reflow, so that re-adding restarts the animation
    node.classList.add(cls);
  }

  /** Charts are drawn in CSS pixels of their box (re-drawn on resize). */
  function chartWidth(box) {
    return Math.max(260, Math.round(box.clientWidth || 640));
  }

  function emptyRow(cols, text) {
    return el('tr', { class: 'empty' }, el('td', { colspan: cols }, text));
  }

  // ------------------------------------------------------------- summary --

  var MONEY_FIELDS = { revenueToday: 1, revenue30d: 1, avgOrderValue30d: 1 };
  var rendered = false;        // at least one document rendered

  function renderSummary(summary) {
    summary = summary && typeof summary === 'object' ? summary : {};
    var nodes = document.querySelectorAll('.summary [data-field]');
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      var key = node.getAttribute('data-field');
      var text = MONEY_FIELDS[key] ? money(summary[key]) : int(summary[key]);
      var card = node.closest('.metric');
      if (node.textContent !== text) {
        node.textContent = text;
        if (rendered) flash(card, 'changed');
      }
      if (key === 'lowStockCount') card.classList.toggle('warn', (num(summary[key]) || 0) > 0);
    }
  }

  // -------------------------------------------------------- recent sales --

  var HIGHLIGHT_MS = 4000;     // as long as the row-new animation in style.css
  var shownSaleIds = null;     // ids in the table now; null before the first render
  var arrivedAt = new Map();   // id -> when a sale first appeared (after the first render)

  function renderRecent(sales) {
    sales = arr(sales);
    var tbody = $('recent-sales').tBodies[0];
    var seen = shownSaleIds;
    var now = Date.now();
    shownSaleIds = new Set();
    var rows = sales.map(function (s) {
      var id = str(s.id);
      shownSaleIds.add(id);
      if (seen !== null && !seen.has(id) && !arrivedAt.has(id)) arrivedAt.set(id, now);
      // Rows are rebuilt on every update; a highlight carries on where it
      // was (negative delay) instead of restarting or vanishing.
      var age = arrivedAt.has(id) ? now - arrivedAt.get(id) : HIGHLIGHT_MS;
      var when = parseTime(s.soldAt);
      return el('tr', { 'data-id': id, class: age < HIGHLIGHT_MS ? 'row-new' : null,
        style: age < HIGHLIGHT_MS ? 'animation-delay:-' + age + 'ms' : null },
        el('td', { class: 'nowrap', title: when ? when.toLocaleString() : null }, time(s.soldAt)),
        el('td', null,
          el('div', { class: 'primary' }, str(s.product) || '#' + str(s.productId)),
          s.sku !== undefined ? el('div', { class: 'secondary' }, str(s.sku)) : null),
        el('td', { class: 'hide-sm' },
          s.customerName ? el('div', { class: 'primary' }, str(s.customerName))
            : el('div', { class: 'secondary' }, 'walk-in'),
          s.customerEmail ? el('div', { class: 'secondary' }, str(s.customerEmail)) : null),
        el('td', { class: 'num' }, int(s.quantity)),
        el('td', { class: 'num strong' }, money(s.amount)));
    });
    arrivedAt.forEach(function (t, id) { if (!shownSaleIds.has(id)) arrivedAt.delete(id); });
    tbody.replaceChildren.apply(tbody, rows.length ? rows : [emptyRow(5, 'No sales yet')]);
  }

  // --------------------------------------------------------- sales by day --

  function renderByDay(days) {
    days = arr(days);
    lastByDay = days;
    var box = $('sales-by-day');
    var W = chartWidth(box), H = 230, L = 46, R = 8, T = 12, B = 26;
    var pw = W - L - R, ph = H - T - B;
    var max = 0, total = 0;
    days.forEach(function (d) { var r = num(d.revenue) || 0; max = Math.max(max, r); total += r; });
    var scale = niceScale(max), top = scale.top;
    var chart = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'svg-chart', role: 'img',
      'aria-label': 'Revenue per day over the last ' + days.length + ' days' });
    yAxis(chart, scale, L, R, T, W, ph);
    var slot = days.length ? pw / days.length : pw;
    days.forEach(function (d, i) {
      var r = Math.max(0, num(d.revenue) || 0);
      var h = top ? (r / top) * ph : 0;
      var x = L + i * slot + slot * 0.14;
      var bar = svg('rect', {
        x: x.toFixed(1), y: (T + ph - h).toFixed(1), width: Math.max(1, slot * 0.72).toFixed(1),
        height: Math.max(h, r > 0 ? 1 : 0).toFixed(1), rx: 2,
        class: i === days.length - 1 ? 'bar today' : 'bar' },
        svg('title', null, day(d.day) + ': ' + money(d.revenue) + ' revenue, ' +
          int(d.sales) + ' sales, ' + int(d.units) + ' units'));
      chart.append(bar);
    });
    if (days.length) {
      [[0, 'start'], [Math.floor((days.length - 1) / 2), 'middle'], [days.length - 1, 'end']].forEach(function (t, k, all) {
        if (k === 1 && (t[0] === 0 || t[0] === all[2][0])) return;
        var anchor = t[1];
        var x = L + t[0] * slot + slot / 2;
        if (anchor === 'start') x = L; else if (anchor === 'end') x = W - R;
        chart.append(svg('text', { x: x, y: H - 6, class: 'tick', 'text-anchor': anchor },
          t[0] === days.length - 1 ? 'today' : day(days[t[0]].day)));
      });
    } else {
      chart.append(svg('text', { x: W / 2, y: H / 2, class: 'placeholder', 'text-anchor': 'middle' }, 'No data'));
    }
    box.replaceChildren(chart);
    $('by-day-note').textContent = days.length
      ? 'last ' + days.length + ' days · total ' + money(total)
      : 'no data';
  }

  // ------------------------------------------------------ stock forecast --

  var showAllForecast = false;
  var lastPredictions = [];
  var lastByDay = [];

  /** The 15 points (today + 14 days) of a product's forecast, or [] */
  function forecastPoints(p) {
    var pts = [];
    var stock = num(p.stock);
    if (stock !== null) pts.push(stock);
    arr(p.forecast).forEach(function (f) { var s = num(f.stock); if (s !== null) pts.push(s); });
    return pts;
  }

  function severity(days) {
    if (days === null) return 'none';
    if (days <= 3) return 'crit';
    if (days <= 7) return 'warn';
    return 'ok';
  }

  function sparkline(points, cls) {
    var W = 120, H = 28, P = 3;
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'spark ' + cls, 'aria-hidden': 'true' });
    if (points.length < 2) return s;
    var max = Math.max.apply(null, points) || 1;
    var xy = points.map(function (v, i) {
      return [P + (i * (W - 2 * P)) / (points.length - 1), P + (H - 2 * P) * (1 - Math.max(0, v) / max)];
    });
    var line = xy.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join(' ');
    s.append(
      svg('polygon', { points: P + ',' + (H - P) + ' ' + line + ' ' + (W - P) + ',' + (H - P), class: 'spark-area' }),
      svg('polyline', { points: line, class: 'spark-line' }));
    return s;
  }

  function renderForecastChart(preds) {
    var box = $('forecast-chart');
    var legend = $('forecast-legend');
    var series = preds.filter(function (p) { return num(p.daysUntilStockout) !== null && forecastPoints(p).length > 1; })
      .slice(0, FORECAST_LINES);
    var W = chartWidth(box), H = 300, L = 46, R = 12, T = 12, B = 26;
    var pw = W - L - R, ph = H - T - B;
    var chart = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'svg-chart', role: 'img',
      'aria-label': 'Forecast stock over the next 14 days for the products running out soonest' });
    var legendItems = [];
    var max = 0, n = 0;
    series.forEach(function (p) {
      var pts = forecastPoints(p);
      n = Math.max(n, pts.length);
      max = Math.max(max, Math.max.apply(null, pts));
    });
    var scale = niceScale(max), top = scale.top;
    yAxis(chart, scale, L, R, T, W, ph);
    if (!series.length) {
      chart.append(svg('text', { x: W / 2, y: H / 2, class: 'placeholder', 'text-anchor': 'middle' },
        preds.length ? 'Nothing is running out: no product is selling' : 'No data'));
    } else {
      var xAt = function (i) { return L + (i * pw) / (n - 1); };
      [[0, 'today', 'start'], [Math.floor((n - 1) / 2), '+' + Math.floor((n - 1) / 2) + ' d', 'middle'],
        [n - 1, '+' + (n - 1) + ' d', 'end']].forEach(function (t) {
        chart.append(svg('text', { x: xAt(t[0]), y: H - 6, class: 'tick', 'text-anchor': t[2] }, t[1]));
      });
      series.forEach(function (p, k) {
        var color = PALETTE[k % PALETTE.length];
        var pts = forecastPoints(p);
        var line = pts.map(function (v, i) {
          return xAt(i).toFixed(1) + ',' + (T + ph * (1 - Math.max(0, v) / top)).toFixed(1);
        }).join(' ');
        var name = str(p.product) || str(p.sku) || '#' + str(p.productId);
        chart.append(svg('polyline', { points: line, class: 'series', stroke: color },
          svg('title', null, name + ': ' + dec(p.daysUntilStockout, fmt1) + ' days of stock left')));
        legendItems.push(el('li', null,
          el('span', { class: 'swatch', style: 'background:' + color }),
          el('span', { class: 'legend-name' }, name),
          el('span', { class: 'legend-note' }, dec(p.daysUntilStockout, fmt1) + ' d')));
      });
    }
    box.replaceChildren(chart);
    legend.replaceChildren.apply(legend, legendItems);
  }

  function renderForecastTable(preds) {
    var tbody = $('forecast-table').tBodies[0];
    var shown = showAllForecast ? preds : preds.slice(0, FORECAST_ROWS);
    var rows = shown.map(function (p) {
      var days = num(p.daysUntilStockout);
      var sev = severity(days);
      return el('tr', { 'data-id': str(p.productId) },
        el('td', null,
          el('div', { class: 'primary' }, str(p.product) || '#' + str(p.productId)),
          p.sku !== undefined ? el('div', { class: 'secondary' }, str(p.sku)) : null),
        el('td', { class: 'num' }, int(p.stock)),
        el('td', { class: 'num hide-sm' }, dec(p.avgDailyUnits, fmt2)),
        el('td', { class: 'num' },
          el('span', { class: 'badge ' + sev }, days === null ? 'never' : fmt1.format(days))),
        el('td', { class: 'nowrap hide-sm' }, p.stockoutDate ? day(p.stockoutDate) : '—'),
        el('td', { class: 'spark-cell' }, sparkline(forecastPoints(p), sev)));
    });
    tbody.replaceChildren.apply(tbody, rows.length ? rows : [emptyRow(6, 'No products')]);

    var toggle = $('forecast-toggle');
    toggle.hidden = preds.length <= FORECAST_ROWS;
    toggle.textContent = showAllForecast ? 'Show fewer' : 'Show all ' + preds.length + ' products';
  }

  function renderForecast(preds) {
    lastPredictions = arr(preds);
    renderForecastChart(lastPredictions);
    renderForecastTable(lastPredictions);
  }

  // ------------------------------------------------------------ low stock --

  function renderLowStock(items) {
    items = arr(items);
    var list = $('low-stock');
    var rows = items.map(function (p) {
      var stock = num(p.stock), reorder = num(p.reorderLevel);
      var ratio = stock !== null && reorder ? Math.max(0, Math.min(1, stock / reorder)) : 0;
      return el('li', { 'data-id': str(p.productId), class: stock !== null && stock <= 0 ? 'out' : null },
        el('div', { class: 'low-head' },
          el('span', { class: 'primary' }, str(p.product) || '#' + str(p.productId)),
          el('span', { class: 'low-qty' }, int(p.stock), el('span', { class: 'secondary' }, ' / ' + int(p.reorderLevel)))),
        el('div', { class: 'meter' }, el('span', { style: 'width:' + (ratio * 100).toFixed(1) + '%' })),
        p.sku !== undefined ? el('div', { class: 'secondary' }, str(p.sku)) : null);
    });
    if (rows.length > LOW_STOCK_ROWS) {
      var more = rows.length - LOW_STOCK_ROWS;
      rows = rows.slice(0, LOW_STOCK_ROWS);
      rows.push(el('li', { class: 'low-more' }, 'and ' + more + ' more'));
    }
    list.replaceChildren.apply(list, rows.length ? rows : [el('li', { class: 'empty' }, 'Nothing is low on stock')]);
  }

  // --------------------------------------------------------------- footer --

  function renderFooter(doc) {
    var gen = parseTime(doc.generatedAt);
    $('snap-version').textContent = doc.version !== undefined ? str(doc.version) : '—';
    $('snap-generated').textContent = gen ? gen.toLocaleString() : (str(doc.generatedAt) || '—');
    $('snap-generated').title = str(doc.generatedAt);
    $('snap-reason').textContent = str(doc.reason) || '—';
    $('snap-received').textContent = new Date().toLocaleTimeString();
  }

  // ---------------------------------------------------------------- state --

  var state = {
    connected: false,
    version: null,             // version of the document on the page
    dataError: null,           // last dashboardDataError payload, until newer data
    updates: 0,
  };

  /** Draw one dashboard document, whatever its version. */
  function draw(doc) {
    // A store's screen (the demo's 'store' dashboard) says which store.
    var store = num(doc.storeId);
    if (store !== null) $('subtitle').textContent = 'Store ' + fmt0.format(store) + ' · live from PostgreSQL through pgpushd';
    renderSummary(doc.summary);
    renderRecent(doc.recentSales);
    renderByDay(doc.salesByDay);
    renderForecast(doc.stockPredictions);
    renderLowStock(doc.lowStock);
    renderFooter(doc);
    state.version = num(doc.version);
    state.updates++;
    rendered = true;
    $('main').removeAttribute('aria-busy');
  }

  /**
   * Render one dashboard document (a dashboardDataUpdate payload) unless it
   * is older than the one shown: for the console and for tests. Documents
   * from the server go through the client module, which applies the
   * version rules of the protocol (and patches).
   */
  function render(doc) {
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return false;
    var v = num(doc.version);
    if (v !== null && state.version !== null && v <= state.version) return false;
    draw(doc);
    return true;
  }

  var STATUS_TEXT = {
    connecting: 'connecting…',
    connected: 'connected',
    reconnecting: 'reconnecting…',
    disconnected: 'disconnected',
    error: 'data error',
  };

  function setStatus(s, detail) {
    var box = $('status');
    box.setAttribute('data-state', s);
    $('status-text').textContent = detail ? STATUS_TEXT[s] + ' ' + detail : STATUS_TEXT[s];
    $('status-retry').hidden = s !== 'disconnected';
    $('main').classList.toggle('stale', s !== 'connected');
  }

  /** Show (or hide, without a title) the banner; kind 'crit' is red. */
  function banner(title, text, kind) {
    var b = $('banner');
    if (!title) { b.hidden = true; return; }
    b.setAttribute('data-kind', kind || 'warn');
    $('banner-title').textContent = title;
    $('banner-text').textContent = text || '';
    b.hidden = false;
  }

  // Rendering is wired before connecting, so the page works without a server
  // (window.pgpushDashboard.render(sampleDocument)).
  $('forecast-toggle').addEventListener('click', function () {
    showAllForecast = !showAllForecast;
    renderForecastTable(lastPredictions);
  });

  // Redraw a chart when its box changes width (window resize, layout switch).
  if (typeof ResizeObserver === 'function') {
    var drawnWidth = {};
    var resized = new ResizeObserver(function (entries) {
      entries.forEach(function (e) {
        var id = e.target.id;
        var w = chartWidth(e.target);
        if (!rendered || drawnWidth[id] === w) { drawnWidth[id] = w; return; }
        drawnWidth[id] = w;
        if (id === 'sales-by-day') renderByDay(lastByDay);
        else renderForecastChart(lastPredictions);
      });
    });
    resized.observe($('sales-by-day'));
    resized.observe($('forecast-chart'));
  }

  window.pgpushDashboard = { render: render, state: state, socket: null, client: null };

  if (typeof window.io !== 'function') {
    setStatus('disconnected');
    banner('Cannot connect', 'the Socket.IO client (/socket.io.min.js) did not load', 'crit');
    return;
  }

  // ----------------------------------------------------------- connection --
  //
  // The protocol (opting in to patches, applying them, resynchronising,
  // resuming after a reconnect, taking the first document after a reconnect
  // whatever its version) is pgpush-client's, the module of contrib/client
  // that the npm package and the React hook use too.

  var DISCONNECT_TEXT = {
    'transport close': 'the server closed the connection',
    'transport error': 'the connection failed',
    'ping timeout': 'the server stopped answering',
    'parse error': 'the server sent something unreadable',
    'io server disconnect': 'the server closed the session',
  };

  // The demo's role switch. ./quickstart demo writes demo-tokens.json into
  // the directory it serves: tokens for a few audiences, signed with a
  // throwaway secret. A DEMO ONLY: a real page gets its token from the
  // application that logged the user in (pgpush-client's getToken), never
  // from a public file. The copy in contrib/dashboard lists none (so that
  // the request never 404s): then, or without the file, the page connects
  // without a token, as before.
  function loadDemoTokens() {
    if (typeof fetch !== 'function') return Promise.resolve(null);
    return fetch('/demo-tokens.json', { cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; });
  }

  function chooseAudience(demo) {
    var list = demo && Array.isArray(demo.audiences) ? demo.audiences.filter(function (a) {
      return a && typeof a.id === 'string' && typeof a.token === 'string';
    }) : [];
    if (!list.length) return null;
    var wanted = params.get('as');
    var chosen = list.filter(function (a) { return a.id === wanted; })[0] || list[0];
    var select = $('role-select');
    list.forEach(function (a) {
      select.append(el('option', { value: a.id, selected: a === chosen }, str(a.label || a.id)));
    });
    select.addEventListener('change', function () {
      params.set('as', select.value);
      location.search = params.toString();   // a new page, a new connection
    });
    $('role-switch').hidden = false;
    return chosen;
  }

  loadDemoTokens().then(function (demo) { connect(chooseAudience(demo)); });

  function connect(audience) {
  // A named dashboard is a Socket.IO namespace: /store serves 'store'.
  var ns = audience && typeof audience.namespace === 'string' && /^\/[a-z0-9_-]{1,63}$/.test(audience.namespace)
    ? audience.namespace : '';
  var client = createDashboardClient(location.origin /* the daemon serves the page */ + ns, {
    io: window.io,
    token: audience ? audience.token : undefined,
    // The reference frontend's options, which are the client's defaults:
    // websocket only, 5 reconnection attempts 1 s apart.
  });
  window.pgpushDashboard.client = client;
  window.pgpushDashboard.socket = client.socket;

  var drawn = null;            // the document object on the page
  var bannerFor = null;        // the change that set the connection banner

  function onChange(snap, change) {
    state.connected = client.socket.connected;
    if (snap.data && snap.data !== drawn) {
      drawn = snap.data;
      draw(snap.data);
    }
    var err = snap.lastError;
    state.dataError = err && err.kind === 'data' ? err : null;
    switch (snap.status) {
      case 'connected':
        setStatus('connected');
        banner(null);
        break;
      case 'error':
        if (err && err.kind === 'data') {
          var next = parseTime(err.nextAttemptAt);
          setStatus('error');
          banner('Data error', str(err.message) + (err.code ? ' (' + str(err.code) + ')' : '') +
            (next ? ' · next attempt at ' + next.toLocaleTimeString() : '') +
            (rendered ? ' · showing the last good data' : ''));
        } else {
          setStatus('disconnected');
          banner('Cannot connect', (err ? str(err.message) + (err.code ? ' (' + str(err.code) + ')' : '') : str(snap.reason)), 'crit');
        }
        break;
      case 'reconnecting':
        if (change.type === 'disconnect') {
          setStatus('reconnecting');
          banner('Connection lost', (DISCONNECT_TEXT[change.reason] || change.reason) + ' · reconnecting');
        } else if (change.type === 'connect_error') {
          setStatus('reconnecting', $('status').getAttribute('data-attempt') || '');
          banner('Cannot connect', (err && err.kind === 'auth' ? str(err.message) : str(change.message || snap.reason)) || 'connection failed');
        }
        break;
      case 'disconnected':
        setStatus('disconnected');
        banner('Disconnected', snap.reason === 'reconnect_failed' ? 'the server could not be reached after 5 attempts'
          : snap.reason === 'closed' ? '' : str(snap.reason), 'crit');
        break;
      default:
        setStatus('connecting');
        if (change.type === 'connect_error') banner('Cannot connect', str(change.message || snap.reason) || 'connection failed');
    }
  }
  client.subscribe(onChange);

  client.socket.io.on('reconnect_attempt', function (n) {
    var detail = '(' + n + '/' + client.socket.io.reconnectionAttempts() + ')';
    $('status').setAttribute('data-attempt', detail);
    setStatus('reconnecting', detail);
  });
  client.socket.on('connect', function () { $('status').removeAttribute('data-attempt'); });

  $('status-retry').addEventListener('click', function () {
    setStatus('connecting');
    client.refresh();
  });
  }
})();
