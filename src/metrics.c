/*
 * metrics: the metric table, the registry and the Prometheus text format
 * 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats/).
 */
#include "autoconfig.h"

#include "metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ the table -- */

static const char *const transports[] = { "websocket", "polling", NULL };
static const char *const recompute_reasons[] = { "startup", "reconnect", "notify", "timer", "leader", NULL };
static const char *const drop_reasons[] = {
	"slow_client", "ping_timeout", "connect_timeout", "request_timeout",
	"protocol_error", "too_large", "io_error", "shutdown", NULL
};
static const char *const db_connections[] = { "listener", "query", NULL };
static const char *const fetch_kinds[] = { "document", "patch", NULL };

/* Seconds, from a millisecond query to the 10 s of --query-timeout. */
static const double query_buckets[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
/* Seconds from the commit to the broadcast: a few ms when all is well, up
 * to the refresh interval when notifications are lost. */
static const double delay_buckets[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};

#define NB(a) (sizeof(a) / sizeof((a)[0]))

static const struct metrics_def table[METRIC_COUNT] = {
	[METRIC_BUILD_INFO] = {
		"pgpush_build_info", METRICS_GAUGE,
		"Always 1; the version label is the version of pgpushd.",
		"version", NULL, NULL, 0, false },
	[METRIC_CLIENTS] = {
		"pgpush_clients", METRICS_GAUGE,
		"Connected Engine.IO clients, by transport.",
		"transport", transports, NULL, 0, false },
	[METRIC_AUDIENCES] = {
		"pgpush_audiences", METRICS_GAUGE,
		"Audiences (groups of clients sharing one document).",
		NULL, NULL, NULL, 0, true },
	[METRIC_DASHBOARDS] = {
		"pgpush_dashboards", METRICS_GAUGE,
		"Dashboards (queries) served.",
		NULL, NULL, NULL, 0, true },
	[METRIC_NOTIFICATIONS] = {
		"pgpush_notifications_total", METRICS_COUNTER,
		"NOTIFY messages received on the channel.",
		NULL, NULL, NULL, 0, false },
	[METRIC_RECOMPUTES] = {
		"pgpush_recomputes_total", METRICS_COUNTER,
		"Dashboard queries run, by what asked for them.",
		"reason", recompute_reasons, NULL, 0, false },
	[METRIC_UNCHANGED_DOCUMENTS] = {
		"pgpush_unchanged_documents_total", METRICS_COUNTER,
		"Recomputed documents equal to the previous one, not sent.",
		NULL, NULL, NULL, 0, false },
	[METRIC_QUERY_DURATION] = {
		"pgpush_query_duration_seconds", METRICS_HISTOGRAM,
		"Time from sending the dashboard query to its result.",
		NULL, NULL, query_buckets, NB(query_buckets), false },
	[METRIC_COMMIT_SEND_DELAY] = {
		"pgpush_commit_send_delay_seconds", METRICS_HISTOGRAM,
		"Time from the commit that changed the data to the broadcast of the new document.",
		NULL, NULL, delay_buckets, NB(delay_buckets), false },
	[METRIC_SNAPSHOT_BYTES] = {
		"pgpush_snapshot_bytes", METRICS_GAUGE,
		"Size of the current dashboard document.",
		NULL, NULL, NULL, 0, true },
	[METRIC_SNAPSHOT_AGE] = {
		"pgpush_snapshot_age_seconds", METRICS_GAUGE,
		"Time since the current dashboard document was computed.",
		NULL, NULL, NULL, 0, true },
	[METRIC_UNSENT_BYTES] = {
		"pgpush_unsent_bytes", METRICS_GAUGE,
		"Output queued for clients and not yet written, all clients together.",
		NULL, NULL, NULL, 0, false },
	[METRIC_CLIENTS_DROPPED] = {
		"pgpush_clients_dropped_total", METRICS_COUNTER,
		"Clients closed by the server, by reason.",
		"reason", drop_reasons, NULL, 0, false },
	[METRIC_DB_RECONNECTS] = {
		"pgpush_database_reconnects_total", METRICS_COUNTER,
		"Database connections lost and attempted again, by connection.",
		"connection", db_connections, NULL, 0, false },
	[METRIC_REPLICA_WAIT] = {
		"pgpush_replica_wait_seconds", METRICS_HISTOGRAM,
		"With --query-db: time from a recompute's start (its version draw) to the replica having replayed the primary's WAL position.",
		NULL, NULL, query_buckets, NB(query_buckets), false },
	[METRIC_REPLICA_LAG_TIMEOUTS] = {
		"pgpush_replica_lag_timeouts_total", METRICS_COUNTER,
		"With --query-db: recomputes failed because the replica did not catch up within --replica-max-lag-wait.",
		NULL, NULL, NULL, 0, false },
	[METRIC_CLUSTER_LEADER] = {
		"pgpush_cluster_leader", METRICS_GAUGE,
		"1 while this instance is the cluster's leader (the one that recomputes), 0 otherwise.",
		NULL, NULL, NULL, 0, false },
	[METRIC_CLUSTER_LEADER_CHANGES] = {
		"pgpush_cluster_leader_changes_total", METRICS_COUNTER,
		"Times this instance became the cluster's leader or stopped being it.",
		NULL, NULL, NULL, 0, false },
	[METRIC_CLUSTER_STORES] = {
		"pgpush_cluster_stores_total", METRICS_COUNTER,
		"New documents the leader stored for the other instances (pgpush.feed_doc).",
		NULL, NULL, NULL, 0, false },
	[METRIC_CLUSTER_FETCHES] = {
		"pgpush_cluster_fetches_total", METRICS_COUNTER,
		"Stored documents a follower fetched from pgpush.feed_doc.",
		NULL, NULL, NULL, 0, false },
	[METRIC_CLUSTER_FETCH_BYTES] = {
		"pgpush_cluster_fetch_bytes_total", METRICS_COUNTER,
		"Bytes a follower fetched from pgpush.feed_doc: whole documents, or patches to the one it held.",
		"kind", fetch_kinds, NULL, 0, false },
	[METRIC_CLUSTER_DEMAND_REFUSED] = {
		"pgpush_cluster_demand_refused_total", METRICS_COUNTER,
		"Audiences of other instances the leader did not compute at a demand read: --max-audiences of them already computed.",
		NULL, NULL, NULL, 0, false },
};

_Static_assert(NB(drop_reasons) - 1 == METRICS_DROP_COUNT, "drop reasons");
_Static_assert(NB(recompute_reasons) - 1 == METRICS_RECOMPUTE_COUNT, "recompute reasons");
_Static_assert(NB(transports) - 1 == METRICS_TRANSPORT_COUNT, "transports");
_Static_assert(NB(db_connections) - 1 == METRICS_DB_COUNT, "db connections");
_Static_assert(NB(fetch_kinds) - 1 == METRICS_FETCH_COUNT, "fetch kinds");
_Static_assert(NB(delay_buckets) <= METRICS_MAX_BUCKETS, "buckets");
_Static_assert(NB(drop_reasons) - 1 <= METRICS_MAX_SERIES, "series");

struct metrics pgpush_metrics;

int metrics_drop_reason_of(const char *why, unsigned close_code)
{
	static const struct { const char *why; int reason; } map[] = {
		{ "ping timeout", METRICS_DROP_PING_TIMEOUT },
		{ "connect timeout", METRICS_DROP_CONNECT_TIMEOUT },
		{ "output overflow", METRICS_DROP_SLOW_CLIENT },
		{ "send timeout", METRICS_DROP_SLOW_CLIENT },
		{ "request timeout", METRICS_DROP_REQUEST_TIMEOUT },
		{ "out of memory", METRICS_DROP_IO_ERROR },
		{ "no randomness", METRICS_DROP_IO_ERROR },
		{ "write error", METRICS_DROP_IO_ERROR },
		{ "server shutting down", METRICS_DROP_SHUTDOWN },
		{ "server stopped", METRICS_DROP_SHUTDOWN },
	};

	if (!why)
		return -1;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(why, map[i].why) == 0)
			return map[i].reason;
	}
	if (close_code == 1002)
		return METRICS_DROP_PROTOCOL_ERROR;
	if (close_code == 1009)
		return METRICS_DROP_TOO_LARGE;
	return -1;
}

const struct metrics_def *metrics_def(enum metric_id id)
{
	return (unsigned)id < METRIC_COUNT ? &table[id] : NULL;
}

size_t metrics_nseries(enum metric_id id)
{
	const struct metrics_def *d = metrics_def(id);
	size_t n = 0;

	if (!d)
		return 0;
	if (!d->values)
		return 1;
	while (d->values[n])
		n++;
	return n;
}

/* ------------------------------------------------------------- updates -- */

static struct metrics_series *series_of(struct metrics *m, enum metric_id id, size_t s,
					 enum metrics_type type)
{
	const struct metrics_def *d = metrics_def(id);

	if (!d || d->type != type || s >= metrics_nseries(id))
		return NULL;
	return &m->series[id][s];
}

void metrics_init(struct metrics *m, const char *version)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->version, sizeof(m->version), "%s", version ? version : "");
}

void metrics_add(struct metrics *m, enum metric_id id, size_t s, double n)
{
	struct metrics_series *p = series_of(m, id, s, METRICS_COUNTER);

	if (p && n >= 0)
		p->value += n;
}

void metrics_set(struct metrics *m, enum metric_id id, size_t s, double v)
{
	struct metrics_series *p = series_of(m, id, s, METRICS_GAUGE);

	if (p && id != METRIC_BUILD_INFO) {
		p->value = v;
		p->set = true;
	}
}

void metrics_gauge_add(struct metrics *m, enum metric_id id, size_t s, double d)
{
	struct metrics_series *p = series_of(m, id, s, METRICS_GAUGE);

	if (p && id != METRIC_BUILD_INFO) {
		p->value += d;
		p->set = true;
	}
}

void metrics_observe(struct metrics *m, enum metric_id id, size_t s, double v)
{
	struct metrics_series *p = series_of(m, id, s, METRICS_HISTOGRAM);
	const struct metrics_def *d = metrics_def(id);
	size_t i;

	if (!p || isnan(v))
		return;
	for (i = 0; i < d->nbuckets && v > d->buckets[i]; i++)
		;
	if (i < d->nbuckets)
		p->bucket[i]++;
	p->count++;
	p->sum += v;
}

double metrics_get(const struct metrics *m, enum metric_id id, size_t s)
{
	const struct metrics_def *d = metrics_def(id);

	if (!d || s >= metrics_nseries(id))
		return 0;
	if (id == METRIC_BUILD_INFO)
		return 1;
	return d->type == METRICS_HISTOGRAM ? (double)m->series[id][s].count : m->series[id][s].value;
}

/* ---------------------------------------------------------- exposition -- */

/* An snprintf-style writer: counts every byte, stores those that fit. */
struct out {
	char *buf;
	size_t cap, len;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len < o->cap) {
		size_t room = o->cap - o->len;

		memcpy(o->buf + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* HELP text escapes backslash and newline; label values also the double
 * quote (exposition format 0.0.4, "Text format details"). */
static void put_escaped(struct out *o, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			puts_(o, "\\\\");
		else if (*s == '\n')
			puts_(o, "\\n");
		else if (*s == '"' && quote)
			puts_(o, "\\\"");
		else
			put(o, s, 1);
	}
}

/* The shortest decimal that reads back as v (Go's ParseFloat reads it),
 * integers without an exponent, and the format's +Inf, -Inf and NaN. */
static void put_number(struct out *o, double v)
{
	char tmp[40];
	int p;

	if (isnan(v)) {
		puts_(o, "NaN");
		return;
	}
	if (isinf(v)) {
		puts_(o, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* Without libm: a whole number within the exact range of a double. */
	if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(long long)v) {
		snprintf(tmp, sizeof(tmp), "%.0f", v);
		puts_(o, strcmp(tmp, "-0") == 0 ? "0" : tmp);
		return;
	}
	for (p = 1; p <= 17; p++) {
		snprintf(tmp, sizeof(tmp), "%.*g", p, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	puts_(o, tmp);
}

static void put_u64(struct out *o, uint64_t v)
{
	char tmp[24];

	snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
	puts_(o, tmp);
}

/* name{label="value",le="bound"} with either part optional. */
static void put_name(struct out *o, const char *name, const char *suffix, const char *label,
		     const char *value, const double *le)
{
	bool brace = label || le;

	puts_(o, name);
	puts_(o, suffix);
	if (brace)
		puts_(o, "{");
	if (label) {
		puts_(o, label);
		puts_(o, "=\"");
		put_escaped(o, value, true);
		puts_(o, "\"");
	}
	if (le) {
		if (label)
			puts_(o, ",");
		puts_(o, "le=\"");
		put_number(o, *le);
		puts_(o, "\"");
	}
	if (brace)
		puts_(o, "}");
	puts_(o, " ");
}

static void render_one(const struct metrics *m, enum metric_id id, struct out *o)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };
	static const double inf = INFINITY;
	const struct metrics_def *d = &table[id];
	size_t n = metrics_nseries(id), s, i;

	puts_(o, "# HELP ");
	puts_(o, d->name);
	puts_(o, " ");
	put_escaped(o, d->help, false);
	puts_(o, "\n# TYPE ");
	puts_(o, d->name);
	puts_(o, " ");
	puts_(o, types[d->type]);
	puts_(o, "\n");

	if (id == METRIC_BUILD_INFO) {
		put_name(o, d->name, "", d->label, m->version, NULL);
		puts_(o, "1\n");
		return;
	}
	for (s = 0; s < n; s++) {
		const struct metrics_series *p = &m->series[id][s];
		const char *value = d->values ? d->values[s] : NULL;

		if (d->type == METRICS_HISTOGRAM) {
			uint64_t cum = 0;

			for (i = 0; i < d->nbuckets; i++) {
				cum += p->bucket[i];
				put_name(o, d->name, "_bucket", d->label, value, &d->buckets[i]);
				put_u64(o, cum);
				puts_(o, "\n");
			}
			put_name(o, d->name, "_bucket", d->label, value, &inf);
			put_u64(o, p->count);
			puts_(o, "\n");
			put_name(o, d->name, "_sum", d->label, value, NULL);
			put_number(o, p->sum);
			puts_(o, "\n");
			put_name(o, d->name, "_count", d->label, value, NULL);
			put_u64(o, p->count);
			puts_(o, "\n");
			continue;
		}
		if (d->absent_until_set && !p->set)
			continue;
		put_name(o, d->name, "", d->label, value, NULL);
		put_number(o, p->value);
		puts_(o, "\n");
	}
}

size_t metrics_render(const struct metrics *m, char *buf, size_t cap)
{
	struct out o = { buf, cap, 0 };
	int id;

	for (id = 0; id < METRIC_COUNT; id++)
		render_one(m, id, &o);
	if (cap > 0)
		buf[o.len < cap ? o.len : cap - 1] = '\0';
	return o.len;
}

int metrics_render_alloc(const struct metrics *m, char **out, size_t *len)
{
	size_t cap = 16384, n;
	char *buf;

	for (;;) {
		buf = malloc(cap);
		if (!buf)
			return -1;
		n = metrics_render(m, buf, cap);
		if (n < cap)
			break;
		free(buf);
		cap = n + 1;
	}
	*out = buf;
	*len = n;
	return 0;
}
