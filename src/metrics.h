/*
 * metrics: pgpushd's metric registry and its Prometheus text exposition
 * (format 0.0.4, the one `GET /metrics` serves).
 *
 * Sans-I/O: the registry is a plain struct the caller owns (no allocation,
 * no clock, no socket). Callers count, set and observe by metric id; the
 * exposition is rendered snprintf-style into a buffer the caller grows, so an
 * exposition of any size comes out complete.
 *
 * Every metric pgpushd exposes is one row of the table in metrics.c (name,
 * type, help, label, buckets), in the order of enum metric_id below;
 * docs/operations.md lists the same set, and a test checks both ways.
 */
#ifndef PGPUSH_METRICS_H
#define PGPUSH_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum metric_id {
	METRIC_BUILD_INFO,		/* gauge 1, label version (metrics_init) */
	METRIC_CLIENTS,			/* gauge, by transport */
	METRIC_AUDIENCES,		/* gauge, not reported until set */
	METRIC_DASHBOARDS,		/* gauge, not reported until set */
	METRIC_NOTIFICATIONS,		/* counter */
	METRIC_RECOMPUTES,		/* counter, by reason */
	METRIC_UNCHANGED_DOCUMENTS,	/* counter */
	METRIC_QUERY_DURATION,		/* histogram, seconds */
	METRIC_COMMIT_SEND_DELAY,	/* histogram, seconds */
	METRIC_SNAPSHOT_BYTES,		/* gauge, not reported until set */
	METRIC_SNAPSHOT_AGE,		/* gauge, not reported until set */
	METRIC_UNSENT_BYTES,		/* gauge */
	METRIC_CLIENTS_DROPPED,		/* counter, by reason */
	METRIC_DB_RECONNECTS,		/* counter, by connection */
	METRIC_REPLICA_WAIT,		/* histogram, seconds */
	METRIC_REPLICA_LAG_TIMEOUTS,	/* counter */
	METRIC_CLUSTER_LEADER,		/* gauge 0/1 */
	METRIC_CLUSTER_LEADER_CHANGES,	/* counter */
	METRIC_CLUSTER_STORES,		/* counter */
	METRIC_CLUSTER_FETCHES,		/* counter */
	METRIC_CLUSTER_FETCH_BYTES,	/* counter, by kind */
	METRIC_CLUSTER_DEMAND_REFUSED,	/* counter */
	METRIC_COUNT
};

/* Label values: the index passed as `series` for a labelled metric.
 * Unlabelled metrics take series 0. */
enum metrics_transport {
	METRICS_TRANSPORT_WEBSOCKET,
	METRICS_TRANSPORT_POLLING,
	METRICS_TRANSPORT_COUNT
};

/* What a cluster follower fetched: the document, or the patch to it. */
enum metrics_fetch_kind {
	METRICS_FETCH_DOCUMENT,
	METRICS_FETCH_PATCH,
	METRICS_FETCH_COUNT
};

enum metrics_recompute_reason {
	METRICS_RECOMPUTE_STARTUP,
	METRICS_RECOMPUTE_RECONNECT,
	METRICS_RECOMPUTE_NOTIFY,
	METRICS_RECOMPUTE_TIMER,
	METRICS_RECOMPUTE_LEADER,
	METRICS_RECOMPUTE_COUNT
};

/* Why the server closed a client. A client that leaves by itself is not
 * dropped. */
enum metrics_drop_reason {
	METRICS_DROP_SLOW_CLIENT,	/* unsent output over --max-pending-bytes */
	METRICS_DROP_PING_TIMEOUT,	/* no pong within --ping-timeout */
	METRICS_DROP_CONNECT_TIMEOUT,	/* no namespace join within --connect-timeout */
	METRICS_DROP_REQUEST_TIMEOUT,	/* no request head within --request-timeout */
	METRICS_DROP_PROTOCOL_ERROR,	/* a malformed HTTP, WebSocket, Engine.IO or Socket.IO message */
	METRICS_DROP_TOO_LARGE,		/* over --max-payload or the header limits */
	METRICS_DROP_IO_ERROR,		/* read or write error, out of memory */
	METRICS_DROP_SHUTDOWN,		/* SIGTERM / SIGINT */
	METRICS_DROP_COUNT
};

enum metrics_db_connection {
	METRICS_DB_LISTENER,
	METRICS_DB_QUERY,
	METRICS_DB_COUNT
};

#define METRICS_MAX_SERIES 8	/* label values of one metric */
#define METRICS_MAX_BUCKETS 16	/* finite histogram buckets, +Inf excluded */
#define METRICS_MAX_VERSION 64	/* bytes of the build_info version label */

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

/* One row of the metric table. */
struct metrics_def {
	const char *name;		/* full name: pgpush_..., _total for counters */
	enum metrics_type type;
	const char *help;
	const char *label;		/* label name, or NULL */
	const char *const *values;	/* its values, NULL-terminated */
	const double *buckets;		/* histograms: upper bounds, ascending */
	size_t nbuckets;
	bool absent_until_set;		/* gauges: no sample before the first set */
};

struct metrics_series {
	double value;			/* counter or gauge */
	bool set;
	uint64_t bucket[METRICS_MAX_BUCKETS]; /* histogram: per bucket, not cumulative */
	uint64_t count;
	double sum;
};

/* The registry. Owned by the caller (a static or a member of its struct);
 * about 15 KB. */
struct metrics {
	struct metrics_series series[METRIC_COUNT][METRICS_MAX_SERIES];
	char version[METRICS_MAX_VERSION];
};

/* The daemon's registry, for the call sites that count (a registry of
 * the tests' own is just another struct metrics). */
extern struct metrics pgpush_metrics;

/* The drop reason of a session or conn closed for why (the reason strings
 * of session_close and conn_close), or -1 when it is not a drop (the client
 * left). */
int metrics_drop_reason_of(const char *why, unsigned close_code);

/* The table row of id, or NULL for an id out of range. */
const struct metrics_def *metrics_def(enum metric_id id);

/* Number of label values of id (1 for an unlabelled metric). */
size_t metrics_nseries(enum metric_id id);

/* Zeroes m and sets build_info's version label (copied, cut at
 * METRICS_MAX_VERSION - 1 bytes). */
void metrics_init(struct metrics *m, const char *version);

/* Counters: add n (>= 0; a negative n is ignored: counters never go down). */
void metrics_add(struct metrics *m, enum metric_id id, size_t series, double n);
static inline void metrics_inc(struct metrics *m, enum metric_id id, size_t series)
{
	metrics_add(m, id, series, 1);
}

/* Gauges. */
void metrics_set(struct metrics *m, enum metric_id id, size_t series, double v);
void metrics_gauge_add(struct metrics *m, enum metric_id id, size_t series, double d);

/* Histograms: one observation (seconds for the _seconds ones). NaN is
 * ignored. */
void metrics_observe(struct metrics *m, enum metric_id id, size_t series, double v);

/* Reads back a counter or gauge (tests, /healthz). */
double metrics_get(const struct metrics *m, enum metric_id id, size_t series);

/* The exposition, snprintf-style: writes at most cap bytes (NUL included
 * when cap > 0) and returns the length of the whole exposition. When the
 * result is >= cap the output was cut: grow the buffer to result + 1 and
 * call again. Wrong ids or series are ignored by the setters above, so the
 * exposition is always well-formed. */
size_t metrics_render(const struct metrics *m, char *buf, size_t cap);

/* The same into a malloc'd buffer, NUL-terminated, that the caller frees.
 * Returns 0, or -1 when out of memory. */
int metrics_render_alloc(const struct metrics *m, char **out, size_t *len)
	__attribute__((warn_unused_result));

/* The Content-Type of the exposition. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
