// GENERATED from docs/dashboard.schema.json by contrib/client/scripts/gen-types.mjs: do not edit.
// Change the schema, then run `npm run gen-types` in contrib/client.

/** The dashboard document pgpushd sends (docs/protocol.md): what the reference pgpush.dashboard() returns, plus version, generatedAt and reason added by the daemon. contrib/client/types/dashboard.d.ts is generated from this file (npm run gen-types in contrib/client). */
export interface DashboardDocument {
  /** Grows with every new snapshot (not consecutively). A client takes the first document after each (re)connect whatever its version, then drops any that is not higher. */
  version: number;
  /** ISO 8601 UTC time with milliseconds when the query result arrived. */
  generatedAt: string;
  /** What triggered the recompute: startup, reconnect, timer, notify, or notify:<table>[,<table>...]. */
  reason: string;
  summary: Summary;
  /** The latest 10 sales, newest first. */
  recentSales: Array<RecentSale>;
  /** Exactly 30 days, oldest first, days without sales included. */
  salesByDay: Array<SalesDay>;
  /** One row per product, soonest stock-out first (never last), then product id. */
  stockPredictions: Array<StockPrediction>;
  /** Products at or below their reorder level, lowest stock first. */
  lowStock: Array<LowStockItem>;
}

export interface Summary {
  /** Sum of quantity*unit_price for the sales since midnight (server TimeZone). */
  revenueToday: number;
  /** Number of sales since midnight. */
  salesToday: number;
  /** Revenue of the last 30 days, today included. */
  revenue30d: number;
  /** Number of sales of the last 30 days. */
  sales30d: number;
  /** revenue30d / sales30d, 2 decimals; 0 without sales. */
  avgOrderValue30d: number;
  /** Products whose quantity <= reorder level. */
  lowStockCount: number;
}

export interface RecentSale {
  id: number;
  productId: number;
  sku: string;
  /** The product's name. */
  product: string;
  quantity: number;
  /** quantity * unit price, 2 decimals. */
  amount: number;
  /** Absent for a role that may not read sales.customer_name (docs/protocol.md, Authentication). */
  customerName?: string | null;
  /** Absent for a role that may not read sales.customer_email. */
  customerEmail?: string | null;
  /** ISO 8601 time with milliseconds and UTC offset. */
  soldAt: string;
}

export interface SalesDay {
  /** A calendar day, YYYY-MM-DD. */
  day: string;
  revenue: number;
  sales: number;
  units: number;
}

export interface StockPrediction {
  productId: number;
  sku: string;
  product: string;
  stock: number;
  reorderLevel: number;
  /** Units sold over the last 30 days / 30, 2 decimals. */
  avgDailyUnits: number;
  /** stock / avgDailyUnits, 1 decimal; null when nothing sells. */
  daysUntilStockout: number | null;
  /** today + floor(daysUntilStockout), YYYY-MM-DD; null when never. */
  stockoutDate: string | null;
  /** 14 points, day 1 to 14 after today. */
  forecast: Array<ForecastPoint>;
}

export interface ForecastPoint {
  day: string;
  /** max(0, stock - avgDailyUnits*n), 2 decimals. */
  stock: number;
}

export interface LowStockItem {
  productId: number;
  sku: string;
  product: string;
  stock: number;
  reorderLevel: number;
}

/** dashboardDataError codes (db_unavailable, query_failed, bad_result; not_ready in acks) and the CONNECT refusals of the token checks. */
export type ErrorCode = "db_unavailable" | "query_failed" | "bad_result" | "not_ready" | "auth_required" | "token_invalid" | "token_expired" | "role_invalid" | "audience_limit";

/** The dashboardDataError payload, and the error of an ack without a document. */
export interface DashboardDataError {
  message: string;
  /** One of ErrorCode. */
  code: string;
  /** ISO time since when the error lasts. */
  since?: string;
  /** ISO time of the next query attempt. */
  nextAttemptAt?: string;
  retryInMs?: number;
}

/** The dashboardDataPatch payload: an RFC 6902 patch from document version `from` to version `to`. */
export interface DashboardDataPatch {
  from: number;
  to: number;
  patch: Array<JsonPatchOperation>;
}

/** One RFC 6902 operation; paths are RFC 6901 JSON Pointers. */
export type JsonPatchOperation = {
  op: "add" | "replace" | "test";
  path: string;
  value: unknown;
} | {
  op: "remove";
  path: string;
} | {
  op: "move" | "copy";
  from: string;
  path: string;
};

/** The CONNECT auth payload pgpush-client sends. */
export interface ConnectAuth {
  /** Opt in to dashboardDataPatch. */
  deltas?: boolean;
  /** The version the client holds: resume from it. */
  since?: number;
  /** A JWT. */
  token?: string;
}
