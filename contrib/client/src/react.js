// pgpush-client/react: useDashboard(url, options), the React hook.
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { createDashboardClient } from './index.js';

export { forecastSeries, forecastChartRows, recentSalesRows, revenueByDay } from './pgpush-client.js';

const IDLE = Object.freeze({
  status: 'connecting', reason: null, data: null, version: null, lastUpdated: null, lastError: null, stats: null,
});
const noop = () => () => {};

/**
 * const { data, status, reason, error, lastUpdated, version, refresh, client } = useDashboard(url, options)
 *
 * One client per mounted component and url: the options are read when the
 * url changes, except token and getToken, which are read from the latest
 * render on every (re)connect. The client closes when the component
 * unmounts.
 */
export function useDashboard(url, options = {}) {
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const [client, setClient] = useState(null);

  useEffect(() => {
    const { getToken, token, ...rest } = optionsRef.current;
    const c = createDashboardClient(url, {
      ...rest,
      // Read on every (re)connect, from the latest render's options.
      getToken: () => {
        const o = optionsRef.current;
        return o.getToken ? o.getToken() : o.token;
      },
    });
    setClient(c);
    return () => { c.close(); setClient(null); };
  }, [url]);

  const snap = useSyncExternalStore(
    client ? client.subscribe : noop,
    client ? client.getSnapshot : () => IDLE,
    () => IDLE,
  );
  const refresh = useCallback(() => (client ? client.refresh() : Promise.resolve(null)), [client]);
  return {
    data: snap.data,
    status: snap.status,
    reason: snap.reason,
    error: snap.lastError,
    lastUpdated: snap.lastUpdated,
    version: snap.version,
    stats: snap.stats,
    refresh,
    client,
  };
}
