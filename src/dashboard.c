#include "autoconfig.h"

#include "dashboard.h"
#include "log.h"
#include "metrics.h"
#include "pgconn.h"
#include "snapshot.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#define TABLES_MAX 256          /* bytes of coalesced table names */
#define SNAPSHOT_MAX (64u << 20) /* largest document accepted from the query */
#define RETRY_MIN 1.0           /* s before re-running a failed query */
#define ATTACHED_MAX 64         /* attached table names kept for `reason` */
#define NAME_MAX_BYTES 63       /* NAMEDATALEN - 1 */

/* Drawn on the listener, a read-write session on the primary: the read-only
 * query session cannot call nextval(). The attached tables come with it, so
 * the set that `reason` may name is refreshed at every recompute. Every name
 * is qualified: this runs with the role's search_path. */
static const char version_sql[] =
	"SELECT pg_catalog.nextval('pgpush.version_seq'),"
	" (SELECT pg_catalog.json_agg(DISTINCT c.relname) FROM pgpush.attached() a"
	"  JOIN pg_catalog.pg_class c ON c.oid = a.relation)";

/* The payload of a /readyz probe: "pgpushd,readyz,PID,N". */
#define PROBE_PREFIX "pgpushd,readyz,"

struct dashboard {
	struct ev_loop *loop;
	const struct config *cfg;
	struct hub *hub;
	struct pgconn *listener;
	struct pgconn *query;
	ev_timer refresh;       /* fallback: recompute when nothing happened */
	ev_timer retry;         /* after a failed query */
	ev_prepare kick;        /* starts pending work once per loop iteration */
	unsigned retry_failures;

	ev_timer throttle;      /* --min-refresh-interval */
	bool in_flight;         /* a recompute: the query and the version draw */
	bool query_wait;        /* its query has not answered yet */
	bool version_wait;      /* its version draw has not answered yet */
	bool have_version;
	int64_t drawn_version;
	bool started_once;
	double last_start_mono; /* s, CLOCK_MONOTONIC */
	char *doc;              /* the query's document, waiting for its version */
	size_t doc_len;
	char attached[ATTACHED_MAX][NAME_MAX_BYTES + 1];
	size_t n_attached;
	ev_tstamp started;
	char running_reason[TABLES_MAX + 16];
	unsigned pending;       /* DASHBOARD_REASON_* bits; 0 = none */
	unsigned running_bits;  /* the running recompute's */
	char pending_tables[TABLES_MAX];
	bool listener_was_ready;/* a later LISTEN is a reconnect */

	int64_t version;
	unsigned long recomputes, notifications;

	/* /readyz: a NOTIFY on our own channel, seen coming back on the
	 * listener, proves it alive (dashboard_ready). */
	ev_timer probe;
	bool probe_wait;        /* its query has not answered yet */
	unsigned long probe_seq;
	char probe_payload[64];
	double probe_sent, probe_seen; /* s, CLOCK_MONOTONIC; 0 = never */
	double queue_usage;     /* pg_notification_queue_usage() with the last probe */

	bool in_error;
	int64_t error_since;
	char detail[512];       /* the last error as logged; /healthz (detailed) only */
};

static const char *const error_codes[] = { "db_unavailable", "query_failed", "bad_result" };
/* What clients read: never PostgreSQL's message (it names hosts, roles,
 * tables); the details go to the log and to loopback /healthz. */
static const char *const error_messages[] = {
	"the database is unavailable",
	"the dashboard query failed",
	"the dashboard query returned an unusable result",
};
enum { ERR_DB_UNAVAILABLE, ERR_QUERY_FAILED, ERR_BAD_RESULT };

void dashboard_format_reason(unsigned bits, const char *tables, char *out, size_t outlen)
{
	if (bits & DASHBOARD_REASON_STARTUP)
		snprintf(out, outlen, "startup");
	else if (bits & DASHBOARD_REASON_RECONNECT)
		snprintf(out, outlen, "reconnect");
	else if ((bits & DASHBOARD_REASON_NOTIFY) && *tables)
		snprintf(out, outlen, "notify:%s", tables);
	else if (bits & DASHBOARD_REASON_NOTIFY)
		snprintf(out, outlen, "notify");
	else
		snprintf(out, outlen, "timer");
}

bool dashboard_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > NAME_MAX_BYTES || !util_utf8_valid((const uint8_t *)name, n))
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == ',' || *p == '"' || *p == '\\')
			return false;
	}
	return true;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Adds table to the comma-separated set, once. */
static void add_table(char *set, const char *table)
{
	size_t tl = strlen(table), sl = strlen(set);
	const char *p = set;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (n == tl && memcmp(p, table, n) == 0)
			return;
		p = comma ? comma + 1 : p + n;
	}
	if (sl + tl + 2 > TABLES_MAX) {
		/* A storm on many tables: say so rather than grow. */
		if (!strstr(set, ",..."))
			snprintf(set + (sl + 5 <= TABLES_MAX ? sl : TABLES_MAX - 5), 5, ",...");
		return;
	}
	snprintf(set + sl, TABLES_MAX - sl, "%s%s", sl ? "," : "", table);
}

/* Keeps detail for /healthz: valid UTF-8 (anything else becomes '?'), one
 * line, cut on a character boundary. */
static void keep_detail(struct dashboard *d, const char *detail)
{
	size_t n;

	snprintf(d->detail, sizeof(d->detail), "%s", detail);
	n = strcspn(d->detail, "\r\n");
	d->detail[n] = '\0';
	while (n > 0 && ((unsigned char)d->detail[n - 1] & 0xc0) == 0x80)
		n--;
	if (n > 0 && (unsigned char)d->detail[n - 1] >= 0xc0)
		n--;
	if (!util_utf8_valid((const uint8_t *)d->detail, strlen(d->detail)))
		d->detail[n] = '\0';
	if (!util_utf8_valid((const uint8_t *)d->detail, strlen(d->detail))) {
		for (char *p = d->detail; *p; p++) {
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		}
	}
}

static void set_error(struct dashboard *d, int code, const char *detail, int64_t next_ms)
{
	json_object *o = json_object_new_object();
	char since[UTIL_ISO_TIME_LEN], next[UTIL_ISO_TIME_LEN];
	int64_t now = util_now_ms();

	if (!d->in_error)
		d->error_since = now;
	d->in_error = true;
	util_iso_time(d->error_since, since);
	util_iso_time(next_ms, next);
	if (!o)
		return;
	keep_detail(d, detail);
	json_object_object_add(o, "message", json_object_new_string(error_messages[code]));
	json_object_object_add(o, "code", json_object_new_string(error_codes[code]));
	json_object_object_add(o, "since", json_object_new_string(since));
	json_object_object_add(o, "nextAttemptAt", json_object_new_string(next));
	json_object_object_add(o, "retryInMs", json_object_new_int64(next_ms > now ? next_ms - now : 0));
	if (hub_set_error(d->hub, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
		log_error("out of memory setting the error state");
	json_object_put(o);
}

static void clear_error(struct dashboard *d)
{
	if (!d->in_error)
		return;
	d->in_error = false;
	d->detail[0] = '\0';
	(void)hub_set_error(d->hub, NULL);
	log_info("dashboard recovered after %.1fs", (util_now_ms() - d->error_since) / 1000.0);
}

static void run_pending(struct dashboard *d)
{
	double now, gap;

	if (d->in_flight || !d->pending || !pgconn_is_ready(d->query) || pgconn_is_busy(d->query) ||
	    !pgconn_is_ready(d->listener) || pgconn_is_busy(d->listener))
		return;
	/* --min-refresh-interval: a flood of notifications (NOTIFY needs no
	 * privilege) gets at most one recompute per interval; a lone change
	 * after a quiet period still starts at once. */
	now = mono_now();
	gap = (double)d->cfg->min_refresh_interval / 1000.0;
	if (d->started_once && now - d->last_start_mono < gap) {
		if (!ev_is_active(&d->throttle)) {
			ev_timer_set(&d->throttle, d->last_start_mono + gap - now, 0);
			ev_timer_start(d->loop, &d->throttle);
		}
		return;
	}
	d->started_once = true;
	d->last_start_mono = now;
	dashboard_format_reason(d->pending, d->pending_tables, d->running_reason,
				sizeof(d->running_reason));
	d->running_bits = d->pending;
	d->pending = 0;
	d->pending_tables[0] = '\0';
	d->started = ev_time();
	ev_timer_stop(d->loop, &d->retry);
	if (pgconn_query(d->query, d->cfg->query) < 0) {
		/* on_lost has run; the work stays pending for the reconnect. */
		d->pending |= DASHBOARD_REASON_RECONNECT;
		return;
	}
	d->in_flight = d->query_wait = true;
	/* The version is drawn while the query runs, so it costs no latency.
	 * Recomputes never overlap: versions grow in publish order. */
	d->version_wait = pgconn_query(d->listener, version_sql) == 0;
	log_debug("recompute started reason=%s", d->running_reason);
}

/* Work is started just before the loop blocks, not at once: all the
 * notifications of one read (one transaction touching sales and stock)
 * become one recompute. */
static void request(struct dashboard *d, unsigned bits, const char *table)
{
	d->pending |= bits;
	if (table)
		add_table(d->pending_tables, table);
	ev_prepare_start(d->loop, &d->kick);
}

static void on_kick(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct dashboard *d = w->data;

	ev_prepare_stop(loop, w);
	run_pending(d);
}

static double retry_delay(struct dashboard *d)
{
	double delay = RETRY_MIN * (double)(1u << (d->retry_failures < 6 ? d->retry_failures : 6));

	if (delay > d->cfg->refresh_interval)
		delay = d->cfg->refresh_interval;
	d->retry_failures++;
	return delay;
}

static void query_failed(struct dashboard *d, int code, const char *message)
{
	double delay = retry_delay(d);

	log_error("recompute failed reason=%s: %s; retrying in %.1fs", d->running_reason,
		  message, delay);
	ev_timer_stop(d->loop, &d->retry);
	ev_timer_set(&d->retry, delay, 0);
	ev_timer_start(d->loop, &d->retry);
	set_error(d, code, message, util_now_ms() + (int64_t)(delay * 1000));
}

static void publish(struct dashboard *d, const char *json, size_t len, int64_t version)
{
	int64_t now = util_now_ms();
	struct snapshot *s;
	int rc;

	/* The sequence only grows; should someone setval() it backwards, the
	 * clients still never see a version go down. */
	if (version <= d->version) {
		log_warn("pgpush.version_seq gave %lld, not above %lld: was it reset?",
			 (long long)version, (long long)d->version);
		version = d->version + 1;
	}
	d->version = version;
	rc = snapshot_new(json, len, d->version, now, d->running_reason, &s);
	if (rc == SNAPSHOT_ERR_NOT_JSON || rc == SNAPSHOT_ERR_NOT_OBJECT) {
		query_failed(d, ERR_BAD_RESULT, rc == SNAPSHOT_ERR_NOT_JSON
				 ? "the dashboard query did not return valid JSON"
				 : "the dashboard query did not return a JSON object");
		return;
	}
	if (rc < 0) {
		log_error("out of memory building a snapshot");
		return;
	}
	/* Compressed once for every client that negotiated permessage-deflate;
	 * level 1: a 50 KB document in well under a millisecond. */
	if (d->cfg->permessage_deflate && snapshot_deflate(s, 1) < 0)
		log_warn("out of memory compressing a snapshot; sending it plain");
	d->recomputes++;
	{
		static const struct { unsigned bit; int reason; } reasons[] = {
			{ DASHBOARD_REASON_NOTIFY, METRICS_RECOMPUTE_NOTIFY },
			{ DASHBOARD_REASON_RECONNECT, METRICS_RECOMPUTE_RECONNECT },
			{ DASHBOARD_REASON_STARTUP, METRICS_RECOMPUTE_STARTUP },
			{ DASHBOARD_REASON_TIMER, METRICS_RECOMPUTE_TIMER },
		};
		size_t r = METRICS_RECOMPUTE_TIMER;

		for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
			if (d->running_bits & reasons[i].bit) {
				r = (size_t)reasons[i].reason;
				break;
			}
		}
		metrics_inc(&pgpush_metrics, METRIC_RECOMPUTES, r);
		metrics_set(&pgpush_metrics, METRIC_SNAPSHOT_BYTES, 0, (double)s->doc_len);
	}
	d->retry_failures = 0;
	clear_error(d);
	hub_publish(d->hub, s);
	log_info("recompute done reason=%s version=%lld bytes=%zu compressed=%zu query_ms=%.1f clients=%zu",
		 d->running_reason, (long long)s->version, s->doc_len,
		 s->frame_z ? s->frame_z->len : 0, (ev_time() - d->started) * 1000.0, d->hub->count);
	snapshot_unref(s);
	/* A fresh snapshot resets the fallback. */
	ev_timer_again(d->loop, &d->refresh);
}

static void drop_doc(struct dashboard *d)
{
	free(d->doc);
	d->doc = NULL;
	d->doc_len = 0;
}

/* Keeps the query's document until its version is known, once it passed
 * the checks that make it safe to send. */
static void keep_doc(struct dashboard *d, const char *json, size_t len)
{
	if (len > SNAPSHOT_MAX) {
		query_failed(d, ERR_BAD_RESULT, "the dashboard document is larger than 64 MiB");
		return;
	}
	/* client_encoding is UTF8, but a SQL_ASCII database converts nothing:
	 * its high bytes would reach clients as invalid text frames. */
	if (!util_utf8_valid((const uint8_t *)json, len)) {
		log_error("the dashboard document is not valid UTF-8 (server_encoding=%s; a SQL_ASCII "
			  "database stores bytes unchecked: store UTF-8 text, or use a UTF8 database)",
			  pgconn_parameter(d->query, "server_encoding"));
		query_failed(d, ERR_BAD_RESULT, "the dashboard document is not valid UTF-8");
		return;
	}
	d->doc = malloc(len + 1);
	if (!d->doc) {
		log_error("out of memory keeping a document");
		return;
	}
	memcpy(d->doc, json, len);
	d->doc[len] = '\0';
	d->doc_len = len;
}

/* Keeps the attached tables that may appear in `reason`. */
static void load_attached(struct dashboard *d, const char *json)
{
	json_object *arr = json ? json_tokener_parse(json) : NULL;
	size_t n = 0;

	if (arr && json_object_is_type(arr, json_type_array)) {
		size_t len = json_object_array_length(arr);

		for (size_t i = 0; i < len && n < ATTACHED_MAX; i++) {
			const char *name = json_object_get_string(json_object_array_get_idx(arr, i));

			if (name && dashboard_name_ok(name))
				snprintf(d->attached[n++], sizeof(d->attached[0]), "%s", name);
		}
	}
	d->n_attached = n;
	json_object_put(arr);
}

static void on_version(struct dashboard *d, const PGresult *res)
{
	if (!res) {
		/* Listener lost: its reconnect recomputes. */
		d->pending |= DASHBOARD_REASON_RECONNECT;
		return;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 2 ||
	    PQgetisnull(res, 0, 0)) {
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		log_error("drawing a version from pgpush.version_seq failed: %s (rerun sql/install.sql; "
			  "pgpushd's role needs USAGE on the sequence, see sql/README.md)",
			  primary ? primary : "unexpected result");
		query_failed(d, ERR_QUERY_FAILED, "drawing a version failed");
		return;
	}
	load_attached(d, PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1));
	d->drawn_version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	d->have_version = true;
}

static void on_query(struct dashboard *d, const PGresult *res)
{
	if (!res) {
		/* Connection lost mid-query: run it again once reconnected. */
		d->pending |= DASHBOARD_REASON_RECONNECT;
		return;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		char msg[512];

		/* "function x() does not exist (SQLSTATE 42883)", without libpq's
		 * "ERROR:  " prefix and multi-line context. */
		snprintf(msg, sizeof(msg), "%s", primary ? primary : PQresultErrorMessage(res));
		msg[strcspn(msg, "\n")] = '\0';
		if (state)
			snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), " (SQLSTATE %s)", state);
		if (state && (strcmp(state, "22021") == 0 || strcmp(state, "22P05") == 0)) {
			/* The result has text that UTF-8 cannot carry: PostgreSQL
			 * checks raw bytes of a SQL_ASCII database on the way out. */
			log_error("the dashboard document cannot be sent as UTF-8 (server_encoding=%s; a "
				  "SQL_ASCII database stores bytes unchecked: store UTF-8 text, or use a "
				  "UTF8 database): %s", pgconn_parameter(d->query, "server_encoding"), msg);
			query_failed(d, ERR_BAD_RESULT, "the dashboard document is not valid UTF-8");
		} else {
			query_failed(d, ERR_QUERY_FAILED, *msg ? msg : "the dashboard query failed");
		}
	} else if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQgetisnull(res, 0, 0)) {
		query_failed(d, ERR_BAD_RESULT, "the dashboard query must return one row with one non-null column");
	} else {
		keep_doc(d, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
	}
}

static void on_result(struct pgconn *pc, const PGresult *res, void *ud)
{
	struct dashboard *d = ud;

	if (pc == d->listener && d->probe_wait) {
		d->probe_wait = false;
		if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		    PQnfields(res) == 2 && !PQgetisnull(res, 0, 1))
			d->queue_usage = strtod(PQgetvalue(res, 0, 1), NULL);
		run_pending(d);
		return;
	}
	if (pc == d->listener) {
		if (!d->version_wait)
			return;
		d->version_wait = false;
		on_version(d, res);
	} else {
		if (!d->query_wait)
			return;
		d->query_wait = false;
		if (res)
			metrics_observe(&pgpush_metrics, METRIC_QUERY_DURATION, 0, ev_time() - d->started);
		on_query(d, res);
	}
	if (d->query_wait || d->version_wait)
		return;
	/* Both answered: the recompute is over. */
	/* Without a version nothing is published: the draw failed (the retry
	 * timer runs) or the listener is gone (its reconnect recomputes). */
	if (d->doc && d->have_version)
		publish(d, d->doc, d->doc_len, d->drawn_version);
	drop_doc(d);
	d->have_version = false;
	d->in_flight = false;
	run_pending(d);
}

static void on_ready(struct pgconn *pc, void *ud)
{
	struct dashboard *d = ud;

	log_info("database connected conn=%s", pgconn_name(pc));
	if (pc == d->listener) {
		/* LISTEN has committed: anything from now on rings. What changed
		 * while we were away is unknown, so recompute. */
		request(d, d->listener_was_ready ? DASHBOARD_REASON_RECONNECT
						 : DASHBOARD_REASON_STARTUP, NULL);
		d->listener_was_ready = true;
	} else {
		run_pending(d);
	}
}

static void on_lost(struct pgconn *pc, const char *error, int64_t next_ms, void *ud)
{
	struct dashboard *d = ud;
	char msg[384];

	metrics_inc(&pgpush_metrics, METRIC_DB_RECONNECTS,
		    pc == d->listener ? METRICS_DB_LISTENER : METRICS_DB_QUERY);
	if (pc == d->listener) {
		/* Ready again only after a round trip on the new connection. */
		d->probe_wait = false;
		d->probe_seen = 0;
	}
	log_warn("database unavailable conn=%s: %s; next attempt in %lldms", pgconn_name(pc),
		 error, (long long)(next_ms - util_now_ms()));
	snprintf(msg, sizeof(msg), "database unavailable: %s", error);
	set_error(d, ERR_DB_UNAVAILABLE, msg, next_ms);
}

static void on_notify(struct pgconn *pc, const char *channel, const char *payload, void *ud)
{
	struct dashboard *d = ud;
	const char *table = NULL;

	/* A readiness probe, ours or another pgpushd's on the same channel:
	 * its payload has commas, so no attached table's name
	 * (dashboard_name_ok) can be it; it asks for nothing. */
	if (strncmp(payload, PROBE_PREFIX, strlen(PROBE_PREFIX)) == 0) {
		if (strcmp(payload, d->probe_payload) == 0)
			d->probe_seen = mono_now();
		return;
	}
	d->notifications++;
	metrics_inc(&pgpush_metrics, METRIC_NOTIFICATIONS, 0);
	/* NOTIFY needs no privilege: the payload is anyone's bytes. Only the
	 * name of a table that really has the doorbell reaches `reason`. */
	for (size_t i = 0; i < d->n_attached && !table; i++) {
		if (strcmp(payload, d->attached[i]) == 0)
			table = d->attached[i];
	}
	log_debug("notification channel=%s table=%s", channel, table ? table : "(not attached)");
	request(d, DASHBOARD_REASON_NOTIFY, table);
}

static void on_refresh(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dashboard *d = w->data;

	request(d, DASHBOARD_REASON_TIMER, NULL);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dashboard *d = w->data;

	/* Retry what failed, under the same reason. */
	request(d, DASHBOARD_REASON_TIMER, NULL);
}

/* Every DASHBOARD_PROBE_INTERVAL: NOTIFY our own channel from the listener
 * (a session hears its own notifications), when it is idle; a recompute's
 * version draw waits at most for this one round trip. */
static void on_probe(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dashboard *d = w->data;
	char sql[256], chan[130];
	size_t k = 0;

	if (d->probe_wait || !pgconn_is_ready(d->listener) || pgconn_is_busy(d->listener))
		return;
	for (const char *p = d->cfg->channel; *p && k + 2 < sizeof(chan); p++) {
		if (*p == '\'')
			chan[k++] = '\'';
		chan[k++] = *p;
	}
	chan[k] = '\0';
	snprintf(d->probe_payload, sizeof(d->probe_payload), PROBE_PREFIX "%ld,%lu",
		 (long)getpid(), ++d->probe_seq);
	snprintf(sql, sizeof(sql), "SELECT pg_notify('%s', '%s'), pg_notification_queue_usage()",
		 chan, d->probe_payload);
	if (pgconn_query(d->listener, sql) == 0) {
		d->probe_wait = true;
		d->probe_sent = mono_now();
	}
}

bool dashboard_ready(void *ud, bool detailed, char *out, size_t outlen)
{
	struct dashboard *d = ud;
	double now = mono_now();
	bool listener = d->probe_seen > 0 && now - d->probe_seen <= DASHBOARD_READY_BOUND;
	bool queue = d->queue_usage < DASHBOARD_QUEUE_MAX;
	bool snapshot = d->hub->snap != NULL;
	bool ok = listener && queue && snapshot;

	if (detailed)
		snprintf(out, outlen, "{\"status\":\"%s\",\"listener\":%s,\"lastRoundTripAgeSeconds\":%.3f,"
			 "\"notificationQueueUsage\":%.6f,\"snapshot\":%s}",
			 ok ? "ok" : "unavailable", listener ? "true" : "false",
			 d->probe_seen > 0 ? now - d->probe_seen : -1.0, d->queue_usage,
			 snapshot ? "true" : "false");
	else
		snprintf(out, outlen, "{\"status\":\"%s\"}", ok ? "ok" : "unavailable");
	return ok;
}

void dashboard_metrics(void *ud)
{
	struct dashboard *d = ud;

	if (d->hub->snap)
		metrics_set(&pgpush_metrics, METRIC_SNAPSHOT_AGE, 0,
			    (double)(util_now_ms() - d->hub->snap->generated_ms) / 1000.0);
}

static void on_throttle(struct ev_loop *loop, ev_timer *w, int revents)
{
	run_pending(w->data);
}

static const struct pgconn_callbacks listener_cb = {
	.on_ready = on_ready,
	.on_lost = on_lost,
	.on_notify = on_notify,
	.on_result = on_result,
};

static const struct pgconn_callbacks query_cb = {
	.on_ready = on_ready,
	.on_lost = on_lost,
	.on_result = on_result,
};

struct dashboard *dashboard_new(struct ev_loop *loop, const struct config *cfg, struct hub *hub)
{
	struct dashboard *d = calloc(1, sizeof(*d));
	char setup[128];

	if (!d)
		return NULL;
	d->loop = loop;
	d->cfg = cfg;
	d->hub = hub;
	/* Only the dashboard query runs on this session, and it only reads:
	 * whatever the query or a function it calls tries to write fails. */
	snprintf(setup, sizeof(setup),
		 "SET default_transaction_read_only = on; SET statement_timeout = %.0f",
		 cfg->query_timeout * 1000.0);
	d->listener = pgconn_new(loop, cfg->db, "pgpushd-listener", cfg->channel, NULL,
				 &listener_cb, d);
	d->query = pgconn_new(loop, cfg->db, "pgpushd-query", NULL, setup, &query_cb, d);
	if (!d->listener || !d->query) {
		dashboard_free(d);
		return NULL;
	}
	ev_timer_init(&d->refresh, on_refresh, 0, cfg->refresh_interval);
	ev_timer_init(&d->retry, on_retry, 0, 0);
	ev_timer_init(&d->throttle, on_throttle, 0, 0);
	ev_prepare_init(&d->kick, on_kick);
	ev_timer_init(&d->probe, on_probe, DASHBOARD_PROBE_INTERVAL, DASHBOARD_PROBE_INTERVAL);
	d->probe.data = d;
	ev_timer_start(loop, &d->probe);
	d->refresh.data = d->retry.data = d->kick.data = d->throttle.data = d;
	ev_timer_again(loop, &d->refresh);
	pgconn_start(d->query);
	pgconn_start(d->listener);
	return d;
}

void dashboard_free(struct dashboard *d)
{
	if (!d)
		return;
	ev_timer_stop(d->loop, &d->refresh);
	ev_timer_stop(d->loop, &d->retry);
	ev_timer_stop(d->loop, &d->throttle);
	ev_timer_stop(d->loop, &d->probe);
	ev_prepare_stop(d->loop, &d->kick);
	pgconn_free(d->listener);
	pgconn_free(d->query);
	free(d->doc);
	free(d);
}
static bool health_fits(json_object *o, char *out, size_t outlen)
{
	size_t n;
	const char *txt = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE, &n);

	if (!txt || n >= outlen)
		return false;
	memcpy(out, txt, n + 1);
	return true;
}

bool dashboard_health(void *ud, bool detailed, char *out, size_t outlen)
{
	struct dashboard *d = ud;
	bool listening = pgconn_is_ready(d->listener);
	bool ok = listening && d->hub->snap;
	const char *status = ok ? "ok" : "unavailable";
	json_object *o = detailed ? json_object_new_object() : NULL;
	json_object *err = NULL;

	if (o) {
		json_object_object_add(o, "status", json_object_new_string(status));
		json_object_object_add(o, "listener", json_object_new_boolean(listening));
		json_object_object_add(o, "query", json_object_new_boolean(pgconn_is_ready(d->query)));
		json_object_object_add(o, "snapshotVersion",
				       json_object_new_int64(d->hub->snap ? d->hub->snap->version : 0));
		json_object_object_add(o, "clients", json_object_new_int64((int64_t)d->hub->count));
		json_object_object_add(o, "recomputes", json_object_new_int64((int64_t)d->recomputes));
		json_object_object_add(o, "notifications",
				       json_object_new_int64((int64_t)d->notifications));
		if (d->hub->error_json)
			err = json_tokener_parse(d->hub->error_json);
		json_object_object_add(o, "error", err);
		json_object_object_add(o, "lastError",
				       d->in_error ? json_object_new_string(d->detail) : NULL);
		/* Every part is bounded but the detail; drop it rather than cut
		 * the JSON when out is small. */
		if (health_fits(o, out, outlen)) {
			json_object_put(o);
			return ok;
		}
		json_object_object_add(o, "lastError", json_object_new_string("(too long)"));
		if (health_fits(o, out, outlen)) {
			json_object_put(o);
			return ok;
		}
		json_object_put(o);
	}
	snprintf(out, outlen, "{\"status\":\"%s\"}", status);
	return ok;
}
