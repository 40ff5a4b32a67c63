// pgpush-client: hand-written API declarations. The document and event
// payload types come from ./dashboard.js, generated from
// docs/dashboard.schema.json.
import type { Socket, ManagerOptions, SocketOptions } from 'socket.io-client';
import type {
  DashboardDocument, DashboardDataError, DashboardDataPatch, JsonPatchOperation, ConnectAuth,
  StockPrediction, RecentSale, SalesDay,
} from './dashboard.js';

export * from './dashboard.js';

/** Events the server emits (docs/protocol.md). */
export interface ServerToClientEvents {
  dashboardDataUpdate: (doc: DashboardDocument) => void;
  dashboardDataPatch: (patch: DashboardDataPatch) => void;
  dashboardDataError: (err: DashboardDataError) => void;
}
/** Events a client emits. */
export interface ClientToServerEvents {
  requestDashboardData: (ack?: (reply: DashboardDocument | { error: DashboardDataError }) => void) => void;
}
export type DashboardSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'error';

export interface ConnectionState {
  status: ConnectionStatus;
  /** Why: a disconnect reason, an error code (db_unavailable, token_invalid...), 'reconnect_failed', 'closed'; null when connected. */
  reason: string | null;
}

/** The last error: a dashboardDataError ('data'), or a refused CONNECT ('auth'). */
export type ClientError =
  | ({ kind: 'data'; at: Date } & DashboardDataError)
  | { kind: 'auth'; code: string; message: string; at: Date };

export interface ClientStats {
  connects: number;
  /** Full documents taken. */
  updates: number;
  /** Patches applied. */
  patches: number;
  /** Full documents asked for after a version gap or a failed patch. */
  resyncs: number;
  patchFailures: number;
  /** Documents or patches ignored (older, or during a resync). */
  dropped: number;
}

export interface DashboardSnapshot<D = DashboardDocument> extends ConnectionState {
  data: D | null;
  version: number | null;
  /** When the client last took a document or a patch (its clock). */
  lastUpdated: Date | null;
  lastError: ClientError | null;
  stats: ClientStats;
}

export type DashboardChange =
  | { type: 'state' }
  | { type: 'update'; via: 'push' | 'ack'; version: number | null }
  | { type: 'patch'; from: number; to: number; ops: number }
  | { type: 'resync'; why: string }
  | { type: 'error'; error: ClientError }
  | { type: 'connect' | 'reconnect_failed' | 'close' }
  | { type: 'disconnect'; reason: string }
  | { type: 'connect_error'; code?: string; message?: string };

export type DashboardListener<D = DashboardDocument> = (snapshot: DashboardSnapshot<D>, change: DashboardChange) => void;

export interface DashboardClientOptions<D = DashboardDocument> {
  /** A JWT for the CONNECT auth payload. */
  token?: string;
  /** Called before every (re)connect for a fresh token (takes precedence over token). */
  getToken?: () => string | undefined | null | Promise<string | undefined | null>;
  /** Opt in to dashboardDataPatch and resume (default true). */
  deltas?: boolean;
  /** socket.io-client options over the defaults (websocket, 5 attempts, 1 s delay). */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
  onChange?: DashboardListener<D>;
  /** Connect at once (default true); else call connect(). */
  autoConnect?: boolean;
  /** socket.io-client's io (the package passes its own). */
  io?: (url: string, opts: Partial<ManagerOptions & SocketOptions>) => Socket;
}

export interface DashboardClient<D = DashboardDocument> {
  readonly socket: DashboardSocket;
  readonly state: ConnectionState;
  readonly status: ConnectionStatus;
  readonly data: D | null;
  readonly version: number | null;
  readonly lastUpdated: Date | null;
  readonly lastError: ClientError | null;
  readonly stats: ClientStats;
  getSnapshot(): DashboardSnapshot<D>;
  subscribe(listener: DashboardListener<D>): () => void;
  /** Reconnect if given up, else ask for the full document. */
  refresh(): Promise<D | { error: DashboardDataError } | null>;
  connect(): void;
  close(): void;
}

export function createDashboardClient<D = DashboardDocument>(url: string, options?: DashboardClientOptions<D>): DashboardClient<D>;

export const DEFAULT_SOCKET_OPTIONS: Readonly<{ transports: string[]; reconnection: boolean; reconnectionAttempts: number; reconnectionDelay: number }>;
export const AUTH_CODES: readonly string[];

export class PatchError extends Error {
  /** Index of the failing operation. */
  index?: number;
}
/** Applies an RFC 6902 patch all or nothing; returns the new document, never modifies doc. */
export function applyPatch<T = unknown>(doc: T, patch: JsonPatchOperation[]): T;
export function parsePointer(pointer: string): string[];
export function deepEqual(a: unknown, b: unknown): boolean;

export interface ForecastSeries {
  productId: number;
  sku: string;
  name: string;
  daysUntilStockout: number | null;
  stockoutDate: string | null;
  /** dayOffset 0 is today's stock (day null), 1..14 the forecast. */
  points: Array<{ dayOffset: number; day: string | null; stock: number }>;
}
export function forecastSeries(predictions: StockPrediction[] | null | undefined, options?: { limit?: number; includeNever?: boolean }): ForecastSeries[];
export function forecastChartRows(series: ForecastSeries[]): Array<{ dayOffset: number; day: string | null; [product: string]: number | string | null }>;

export interface RecentSaleRow {
  id: number;
  soldAt: Date | null;
  product: string;
  sku: string | null;
  /** 'walk-in' without a customer name. */
  customer: string;
  email: string | null;
  quantity: number;
  amount: number;
}
export function recentSalesRows(sales: RecentSale[] | null | undefined): RecentSaleRow[];

export interface RevenueDay { day: string; revenue: number; sales: number; units: number; isToday: boolean }
export function revenueByDay(days: SalesDay[] | null | undefined): RevenueDay[];

export type { ConnectAuth };
