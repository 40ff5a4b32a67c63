// pgpush-client/react
import type {
  DashboardDocument, DashboardClient, DashboardClientOptions, ConnectionStatus, ClientError, ClientStats,
  DashboardDataError,
} from './index.js';

export { forecastSeries, forecastChartRows, recentSalesRows, revenueByDay } from './index.js';
export type { ForecastSeries, RecentSaleRow, RevenueDay } from './index.js';

export interface UseDashboardResult<D = DashboardDocument> {
  data: D | null;
  status: ConnectionStatus;
  reason: string | null;
  error: ClientError | null;
  lastUpdated: Date | null;
  version: number | null;
  stats: ClientStats | null;
  refresh: () => Promise<D | { error: DashboardDataError } | null>;
  client: DashboardClient<D> | null;
}

export function useDashboard<D = DashboardDocument>(url: string, options?: DashboardClientOptions<D>): UseDashboardResult<D>;
