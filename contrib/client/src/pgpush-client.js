/*
 * pgpush-client: the dashboard protocol of pgpushd (docs/protocol.md), with
 * no import of its own, so that the very same file serves the npm package
 * (src/index.js passes it socket.io-client's `io`) and the demo page
 * (contrib/dashboard/ loads it next to socket.io.min.js and passes window.io).
 *
 * What it does for a page:
 *   - connects with socket.io-client, opting in to patches
 *     (auth: { deltas: true, since: <last version>, token }), the auth
 *     payload being computed afresh on every (re)connect;
 *   - takes `dashboardDataUpdate` (full documents) and `dashboardDataPatch`
 *     (RFC 6902 patches, applied all or nothing) and keeps one document;
 *   - resynchronises (`requestDashboardData` with an ack) when a patch does
 *     not start from the version it holds or fails to apply;
 *   - after every (re)connect accepts the next document whatever its version
 *     (the server may have restarted or be another daemon), and from then on
 *     drops a document whose version is not higher;
 *   - tracks the connection state, the last data error and the last update.
 */

// ------------------------------------------------------------ JSON Patch --

/** A patch that cannot be applied; `index` is the failing operation's. */
export class PatchError extends Error {
  constructor(message, index) {
    super(index === undefined ? message : `operation ${index}: ${message}`);
    this.name = 'PatchError';
    this.index = index;
  }
}

const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
const isContainer = (v) => v !== null && typeof v === 'object';
const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;

/** RFC 6901: "" is the whole document, "/a~1b/0" is ["a/b", "0"]. */
export function parsePointer(pointer) {
  if (typeof pointer !== 'string') throw new PatchError('a path is not a string');
  if (pointer === '') return [];
  if (pointer[0] !== '/') throw new PatchError(`path ${JSON.stringify(pointer)} does not start with "/"`);
  return pointer.slice(1).split('/').map((t) => {
    if (/~(?![01])/.test(t)) throw new PatchError(`path ${JSON.stringify(pointer)}: "~" not followed by 0 or 1`);
    return t.replace(/~1/g, '/').replace(/~0/g, '~');
  });
}

/** Defines o[k] as an own data property (never calls a __proto__ setter). */
function define(o, k, v) {
  Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
}

function arrayIndex(arr, token, { allowEnd = false, allowDash = false } = {}) {
  if (allowDash && token === '-') return arr.length;
  if (!ARRAY_INDEX.test(token)) throw new PatchError(`"${token}" is not an array index`);
  const i = Number(token);
  if (i > arr.length || (i === arr.length && !allowEnd)) throw new PatchError(`index ${i} is out of bounds (length ${arr.length})`);
  return i;
}

function child(node, token) {
  if (Array.isArray(node)) return node[arrayIndex(node, token)];
  if (isContainer(node) && hasOwn(node, token)) return node[token];
  throw new PatchError(`no member "${token}"`);
}

function getAt(root, tokens) {
  let node = root;
  for (const t of tokens) node = child(node, t);
  return node;
}

export function deepEqual(a, b) {
  if (a === b) return true;
  if (!isContainer(a) || !isContainer(b) || Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!hasOwn(b, k) || !deepEqual(a[k], b[k])) return false;
  return true;
}

function deepClone(v) {
  if (!isContainer(v)) return v;
  if (Array.isArray(v)) return v.map(deepClone);
  const o = {};
  for (const k of Object.keys(v)) define(o, k, deepClone(v[k]));
  return o;
}

/**
 * Apply an RFC 6902 patch (add, remove, replace, move, copy, test) and
 * return the new document. All or nothing: `doc` is never modified (the
 * containers on the changed paths are copied, the rest is shared), and a
 * failing operation throws a PatchError and leaves nothing half-applied.
 */
export function applyPatch(doc, patch) {
  if (!Array.isArray(patch)) throw new PatchError('a patch is an array of operations');
  const fresh = new WeakSet();           // containers copied by this patch: safe to modify
  const writable = (node) => {
    if (fresh.has(node)) return node;
    let copy;
    if (Array.isArray(node)) copy = node.slice();
    else { copy = {}; for (const k of Object.keys(node)) define(copy, k, node[k]); }
    fresh.add(copy);
    return copy;
  };
  let root = doc;

  /** The parent container of `tokens`, made writable along the way. */
  function parentOf(tokens) {
    root = writable(root);
    let node = root;
    for (let i = 0; i < tokens.length - 1; i++) {
      const c = child(node, tokens[i]);
      if (!isContainer(c)) throw new PatchError(`"${tokens[i]}" is not an object or array`);
      const w = writable(c);
      if (Array.isArray(node)) node[Number(tokens[i])] = w; else define(node, tokens[i], w);
      node = w;
    }
    return node;
  }

  function add(tokens, value) {
    if (!tokens.length) { root = value; return; }
    const parent = parentOf(tokens);
    const last = tokens[tokens.length - 1];
    if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, { allowEnd: true, allowDash: true }), 0, value);
    else if (isContainer(parent)) define(parent, last, value);
    else throw new PatchError('the parent is not an object or array');
  }

  function remove(tokens) {
    if (!tokens.length) throw new PatchError('cannot remove the whole document');
    const parent = parentOf(tokens);
    const last = tokens[tokens.length - 1];
    if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last), 1);
    else if (isContainer(parent) && hasOwn(parent, last)) delete parent[last];
    else throw new PatchError(`no member "${last}" to remove`);
  }

  patch.forEach((op, i) => {
    try {
      if (!isContainer(op) || Array.isArray(op)) throw new PatchError('an operation is not an object');
      const path = parsePointer(op.path);
      const needValue = () => { if (!hasOwn(op, 'value')) throw new PatchError(`"${op.op}" needs a value`); };
      switch (op.op) {
        case 'add': needValue(); add(path, deepClone(op.value)); break;
        case 'remove': remove(path); break;
        case 'replace':
          needValue();
          getAt(root, path);                         // must exist
          if (!path.length) { root = deepClone(op.value); break; }
          {
            const parent = parentOf(path);
            const last = path[path.length - 1];
            if (Array.isArray(parent)) parent[arrayIndex(parent, last)] = deepClone(op.value);
            else define(parent, last, deepClone(op.value));   // keeps the member's place
          }
          break;
        case 'move': {
          const from = parsePointer(op.from);
          if (from.length < path.length && from.every((t, k) => t === path[k])) {
            throw new PatchError('cannot move a value into one of its own children');
          }
          const value = getAt(root, from);
          if (from.length === path.length && from.every((t, k) => t === path[k])) break;
          remove(from); add(path, value);
          break;
        }
        case 'copy': add(path, deepClone(getAt(root, parsePointer(op.from)))); break;
        case 'test':
          needValue();
          if (!deepEqual(getAt(root, path), op.value)) throw new PatchError(`test failed at ${JSON.stringify(op.path)}`);
          break;
        default: throw new PatchError(`unknown operation ${JSON.stringify(op.op)}`);
      }
    } catch (err) {
      if (err instanceof PatchError && err.index === undefined) throw new PatchError(err.message, i);
      throw err;
    }
  });
  return root;
}

// ------------------------------------------------------- view helpers --

const num = (v) => {
  const n = typeof v === 'number' ? v : (typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN);
  return Number.isFinite(n) ? n : null;
};
const list = (v) => (Array.isArray(v) ? v.filter(isContainer) : []);

/**
 * Chart series from `stockPredictions`: the `limit` products that run out
 * soonest (those that never do are left out), each with 15 points: today's
 * stock (day 0) and the 14 forecast days.
 *   [{ productId, sku, name, daysUntilStockout, stockoutDate,
 *      points: [{ dayOffset, day, stock }] }]
 */
export function forecastSeries(stockPredictions, { limit = 5, includeNever = false } = {}) {
  return list(stockPredictions)
    .filter((p) => includeNever || num(p.daysUntilStockout) !== null)
    .slice(0, limit)
    .map((p) => ({
      productId: p.productId,
      sku: p.sku,
      name: p.product || p.sku || `#${p.productId}`,
      daysUntilStockout: num(p.daysUntilStockout),
      stockoutDate: p.stockoutDate ?? null,
      points: [{ dayOffset: 0, day: null, stock: num(p.stock) ?? 0 }].concat(
        list(p.forecast).map((f, i) => ({ dayOffset: i + 1, day: f.day ?? null, stock: num(f.stock) ?? 0 }))),
    }));
}

/**
 * The same forecast as rows for a chart library that wants one object per
 * x value: [{ dayOffset, day, [name]: stock, ... }] (15 rows).
 */
export function forecastChartRows(series) {
  const rows = [];
  for (const s of series) {
    s.points.forEach((pt, i) => {
      rows[i] = rows[i] || { dayOffset: pt.dayOffset, day: pt.day };
      if (rows[i].day === null && pt.day !== null) rows[i].day = pt.day;
      rows[i][s.name] = pt.stock;
    });
  }
  return rows;
}

/**
 * Table rows from `recentSales`, newest first as sent:
 *   [{ id, soldAt: Date|null, product, sku, customer, email, quantity, amount }]
 * `customer` is "walk-in" for a sale without a customer name.
 */
export function recentSalesRows(recentSales) {
  return list(recentSales).map((s) => {
    const d = typeof s.soldAt === 'string' ? new Date(s.soldAt) : null;
    return {
      id: s.id,
      soldAt: d && !Number.isNaN(d.getTime()) ? d : null,
      product: s.product || `#${s.productId}`,
      sku: s.sku ?? null,
      customer: s.customerName || 'walk-in',
      email: s.customerEmail || null,
      quantity: num(s.quantity) ?? 0,
      amount: num(s.amount) ?? 0,
    };
  });
}

/** Bars from `salesByDay`, oldest first: [{ day, revenue, sales, units, isToday }]. */
export function revenueByDay(salesByDay) {
  const days = list(salesByDay);
  return days.map((d, i) => ({
    day: d.day, revenue: num(d.revenue) ?? 0, sales: num(d.sales) ?? 0, units: num(d.units) ?? 0,
    isToday: i === days.length - 1,
  }));
}

// --------------------------------------------------------------- client --

/** The reference frontend's options; `socketOptions` overrides them. */
export const DEFAULT_SOCKET_OPTIONS = Object.freeze({
  transports: ['websocket'],
  reconnection: true,
  reconnectionAttempts: 5,
  reconnectionDelay: 1000,
});

/** CONNECT refusals (connect_error with err.data.code) from the token checks. */
export const AUTH_CODES = Object.freeze(['auth_required', 'token_invalid', 'token_expired', 'role_invalid', 'audience_limit']);

const MAX_AUTH_RETRIES = 3;     // consecutive refused (re)connects retried with a fresh token

/**
 * createDashboardClient(url, {
 *   io,            socket.io-client's io (src/index.js passes it; a page passes window.io)
 *   token,         a JWT sent in the CONNECT auth payload
 *   getToken,      () => token | Promise<token>: called before every (re)connect
 *   deltas = true, opt in to dashboardDataPatch and resume (`since`)
 *   socketOptions, socket.io-client options over DEFAULT_SOCKET_OPTIONS
 *   onChange,      (snapshot, change) => void, as subscribe()
 *   autoConnect = true,
 * })
 */
export function createDashboardClient(url, options = {}) {
  const { io, token, getToken, deltas = true, socketOptions = {}, onChange, autoConnect = true } = options;
  if (typeof io !== 'function') throw new TypeError('createDashboardClient: options.io must be socket.io-client\'s io');

  const listeners = new Set();
  const stats = { connects: 0, updates: 0, patches: 0, resyncs: 0, patchFailures: 0, dropped: 0 };
  let snap = Object.freeze({
    status: 'connecting', reason: null, data: null, version: null,
    lastUpdated: null, lastError: null, stats: Object.freeze({ ...stats }),
  });
  let resync = true;           // (re)connected or resynchronising: take the next document whatever its version
  let afterConnect = true;     // no document yet since the last (re)connect
  let errorVersion = null;     // version held when lastError (a data error) came
  let resyncing = false;       // a requestDashboardData for a resync is in flight
  let authRetries = 0;
  let closed = false;
  let retryTimer = null;
  let sentSince = undefined;   // `since` of the current connection's auth payload

  function set(patch, change) {
    snap = Object.freeze({ ...snap, ...patch, stats: Object.freeze({ ...stats }) });
    const c = change || { type: 'state' };
    for (const l of [...listeners]) {
      try { l(snap, c); } catch (err) { setTimeout(() => { throw err; }); }
    }
  }
  if (onChange) listeners.add(onChange);

  /** The status while connected: a data error outstanding makes it 'error'. */
  const connectedStatus = (lastError) =>
    lastError && lastError.kind === 'data'
      ? { status: 'error', reason: lastError.code || 'data_error' }
      : { status: 'connected', reason: null };

  const versionOf = (doc) => (doc && Number.isInteger(doc.version) ? doc.version : null);

  /** Take a full document if it is newer, or the first since a (re)connect. */
  function acceptDocument(doc, via) {
    if (!isContainer(doc) || Array.isArray(doc)) return false;
    const v = versionOf(doc);
    if (!resync && v !== null && snap.version !== null && v <= snap.version) { stats.dropped++; return false; }
    // The first document after a (re)connect clears a data error whatever
    // its version (as the demo page always did); later ones only if newer
    // than the version held when the error came: an ack repeating the
    // cached snapshot during an outage does not.
    const fresh = afterConnect;
    resync = false;
    afterConnect = false;
    stats.updates++;
    commit(doc, v, fresh, { type: 'update', via, version: v });
    return true;
  }

  function commit(doc, v, forceClear, change) {
    let lastError = snap.lastError;
    if (lastError && lastError.kind === 'data' && (forceClear || errorVersion === null || v === null || v > errorVersion)) {
      lastError = null; errorVersion = null;
    }
    const status = socket.connected ? connectedStatus(lastError) : { status: snap.status, reason: snap.reason };
    set({ data: doc, version: v, lastUpdated: new Date(), lastError, ...status }, change);
  }

  function onPatch(msg) {
    if (!isContainer(msg) || !Array.isArray(msg.patch)) return;
    if (snap.data === null || msg.from !== snap.version) {
      // While a full document is on its way, patches for other versions wait for it.
      if (resyncing) stats.dropped++; else requestResync('version gap');
      return;
    }
    let doc;
    try {
      doc = applyPatch(snap.data, msg.patch);
      if (versionOf(doc) !== msg.to) throw new PatchError(`the patched document has version ${versionOf(doc)}, not ${msg.to}`);
    } catch (err) {
      stats.patchFailures++;
      requestResync(`patch failed: ${err.message}`);
      return;
    }
    resync = false;
    afterConnect = false;
    stats.patches++;
    commit(doc, msg.to, false, { type: 'patch', from: msg.from, to: msg.to, ops: msg.patch.length });
  }

  function dataError(err) {
    const e = isContainer(err) ? err : { message: String(err) };
    errorVersion = snap.version;
    const lastError = { kind: 'data', ...e, at: new Date() };
    set({ lastError, ...(socket.connected ? connectedStatus(lastError) : {}) }, { type: 'error', error: lastError });
  }

  /** Ask for the full document; resolves it (or the ack's error object). */
  function request() {
    return new Promise((resolve) => {
      socket.emit('requestDashboardData', (reply) => {
        if (isContainer(reply) && reply.error) { dataError(reply.error); resolve({ error: reply.error }); }
        else { acceptDocument(reply, 'ack'); resolve(reply); }
      });
    });
  }

  function requestResync(why) {
    if (resyncing || !socket.connected) return;
    stats.resyncs++;
    resyncing = true;
    resync = true;             // the full document is the truth, whatever its version
    set({}, { type: 'resync', why });
    request().finally(() => { resyncing = false; });
  }

  async function auth(cb) {
    let t = token;
    try { if (getToken) t = await getToken(); } catch (err) {
      set({ lastError: { kind: 'auth', code: 'token_unavailable', message: String(err && err.message || err), at: new Date() } });
      t = undefined;
    }
    const payload = {};
    if (deltas) {
      payload.deltas = true;
      sentSince = snap.version === null ? undefined : snap.version;
      if (sentSince !== undefined) payload.since = sentSince;
    } else sentSince = undefined;
    if (t) payload.token = t;
    cb(payload);
  }

  const socket = io(url, { ...DEFAULT_SOCKET_OPTIONS, ...socketOptions, autoConnect: false, auth });

  socket.on('connect', () => {
    stats.connects++;
    authRetries = 0;
    resync = true;
    afterConnect = true;
    resyncing = false;
    let lastError = snap.lastError;
    if (lastError && lastError.kind !== 'data') lastError = null;
    set({ lastError, ...connectedStatus(lastError) }, { type: 'connect' });
    // Without resume (first connect, or no deltas) ask as well: the ack
    // carries the document, or not_ready. With `since` the server sends
    // only what is missing (nothing, a patch, or the full document).
    if (sentSince === undefined) request();
  });

  socket.on('disconnect', (reason) => {
    if (closed) return;
    if (reason === 'io client disconnect') { set({ status: 'disconnected', reason }); return; }
    if (reason === 'io server disconnect') {
      // socket.io does not come back by itself after this one (a token
      // expiring, for example): connect again, with a fresh token.
      set({ status: 'reconnecting', reason }, { type: 'disconnect', reason });
      scheduleRetry();
      return;
    }
    set({ status: 'reconnecting', reason }, { type: 'disconnect', reason });
  });

  socket.on('connect_error', (err) => {
    if (closed) return;
    const code = err && err.data && err.data.code;
    if (code || !socket.active) {
      // Refused by the server (a token check): socket.io does not retry.
      const lastError = { kind: 'auth', code: code || 'connect_refused', message: (err && err.message) || 'connection refused', at: new Date() };
      if (code === 'token_expired' || code === 'audience_limit') {
        if (scheduleRetry()) { set({ status: 'reconnecting', reason: code, lastError }, { type: 'connect_error', code }); return; }
      }
      set({ status: 'error', reason: code || 'connect_refused', lastError }, { type: 'connect_error', code });
      return;
    }
    set({ status: snap.version === null && stats.connects === 0 ? 'connecting' : 'reconnecting', reason: (err && err.message) || 'connect_error' },
      { type: 'connect_error', message: err && err.message });
  });

  socket.io.on('reconnect_failed', () => {
    if (!closed) set({ status: 'disconnected', reason: 'reconnect_failed' }, { type: 'reconnect_failed' });
  });

  function scheduleRetry() {
    if (closed || authRetries >= MAX_AUTH_RETRIES) return false;
    authRetries++;
    clearTimeout(retryTimer);
    const delay = (socketOptions.reconnectionDelay ?? DEFAULT_SOCKET_OPTIONS.reconnectionDelay) * authRetries;
    retryTimer = setTimeout(() => { if (!closed) socket.connect(); }, delay);
    return true;
  }

  socket.on('dashboardDataUpdate', (doc) => acceptDocument(doc, 'push'));
  socket.on('dashboardDataPatch', onPatch);
  socket.on('dashboardDataError', dataError);

  const client = {
    socket,
    get state() { return { status: snap.status, reason: snap.reason }; },
    get status() { return snap.status; },
    get data() { return snap.data; },
    get version() { return snap.version; },
    get lastUpdated() { return snap.lastUpdated; },
    get lastError() { return snap.lastError; },
    get stats() { return snap.stats; },
    /** The current state as one frozen object (a new one after every change). */
    getSnapshot: () => snap,
    /** listener(snapshot, change) after every change; returns the unsubscribe function. */
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /**
     * Connect again if the connection was given up, else ask for the full
     * document. Resolves the document (or { error }) once it came.
     */
    refresh() {
      if (closed) return Promise.resolve(null);
      if (!socket.connected) {
        authRetries = 0;
        set({ status: 'connecting', reason: null });
        socket.connect();
        return new Promise((resolve) => socket.once('connect', () => resolve(request())));
      }
      return request();
    },
    /** Disconnect for good. */
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      socket.disconnect();
      set({ status: 'disconnected', reason: 'closed' }, { type: 'close' });
      listeners.clear();
    },
    connect() { if (!closed && !socket.connected) socket.connect(); },
  };
  if (autoConnect) socket.connect();
  return client;
}
