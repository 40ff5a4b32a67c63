// pgpush-client for bundlers and Node: the protocol (./pgpush-client.js)
// with socket.io-client's io. See README.md.
import { io } from 'socket.io-client';
import { createDashboardClient as create } from './pgpush-client.js';

export {
  applyPatch, parsePointer, deepEqual, PatchError,
  forecastSeries, forecastChartRows, recentSalesRows, revenueByDay,
  DEFAULT_SOCKET_OPTIONS, AUTH_CODES,
} from './pgpush-client.js';

/** createDashboardClient(url, options): see README.md; `options.io` defaults to socket.io-client's. */
export function createDashboardClient(url, options = {}) {
  return create(url, { io, ...options });
}
