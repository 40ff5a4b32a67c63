// The view helpers of pgpush-client (and of pgpush-client/react).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forecastSeries, forecastChartRows, recentSalesRows, revenueByDay } from '../src/pgpush-client.js';

const pred = (productId, days, stock = 10) => ({
  productId, sku: `S${productId}`, product: `P${productId}`, stock, reorderLevel: 5, avgDailyUnits: days ? stock / days : 0,
  daysUntilStockout: days, stockoutDate: days === null ? null : '2026-12-01',
  forecast: Array.from({ length: 14 }, (_, i) => ({ day: `2026-12-${String(i + 1).padStart(2, '0')}`, stock: Math.max(0, stock - i - 1) })),
});

test('forecastSeries: the products that run out soonest, 15 points from today', () => {
  const s = forecastSeries([pred(1, 2), pred(2, 5), pred(3, null), pred(4, 9)], { limit: 2 });
  assert.deepEqual(s.map((x) => x.productId), [1, 2]);
  assert.equal(s[0].points.length, 15);
  assert.deepEqual(s[0].points[0], { dayOffset: 0, day: null, stock: 10 });
  assert.deepEqual(s[0].points[14], { dayOffset: 14, day: '2026-12-14', stock: 0 });
  assert.equal(s[0].name, 'P1');
  assert.deepEqual(forecastSeries([pred(3, null)]), [], 'never running out is left out');
  assert.equal(forecastSeries([pred(3, null)], { includeNever: true }).length, 1);
  assert.deepEqual(forecastSeries(undefined), []);
  assert.deepEqual(forecastSeries([null, 3, pred(1, 1)]).map((x) => x.productId), [1], 'junk skipped');
});

test('forecastChartRows: one row per day with a column per product', () => {
  const rows = forecastChartRows(forecastSeries([pred(1, 2), pred(2, 5, 20)]));
  assert.equal(rows.length, 15);
  assert.deepEqual(rows[0], { dayOffset: 0, day: null, P1: 10, P2: 20 });
  assert.deepEqual(rows[1], { dayOffset: 1, day: '2026-12-01', P1: 9, P2: 19 });
});

test('recentSalesRows: dates, walk-in customers, numbers', () => {
  const rows = recentSalesRows([
    { id: 2, productId: 4, sku: 'S4', product: 'Mug', quantity: 2, amount: 25, customerName: 'Ada', customerEmail: 'a@x', soldAt: '2026-11-26T10:00:00.123+00:00' },
    { id: 1, productId: 5, sku: 'S5', product: '', quantity: 1, amount: '3.40', customerName: null, customerEmail: null, soldAt: 'nonsense' },
  ]);
  assert.equal(rows[0].soldAt.toISOString(), '2026-11-26T10:00:00.123Z');
  assert.equal(rows[0].customer, 'Ada');
  assert.equal(rows[1].customer, 'walk-in');
  assert.equal(rows[1].product, '#5');
  assert.equal(rows[1].soldAt, null);
  assert.equal(rows[1].amount, 3.4);
  assert.deepEqual(recentSalesRows(null), []);
});

test('revenueByDay: the last day is today', () => {
  const bars = revenueByDay([{ day: 'd1', revenue: 1.5, sales: 1, units: 2 }, { day: 'd2', revenue: 0, sales: 0, units: 0 }]);
  assert.deepEqual(bars.map((b) => b.isToday), [false, true]);
  assert.equal(bars[0].revenue, 1.5);
});
