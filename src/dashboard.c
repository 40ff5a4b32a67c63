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

#define QCONN_MAX 64

/* The steps of one audience's recompute on a query connection. Without a
 * role (no tokens) only STEP_PLAIN: the dashboard's query as it is. */
enum step { STEP_IDLE, STEP_PLAIN, STEP_BEGIN, STEP_SETUP, STEP_QUERY, STEP_COMMIT, STEP_ROLLBACK };

/* Runs as the audience: set_config('role', ..., true) is SET LOCAL ROLE
 * with the role as a parameter (no quoting to get wrong); the claims are
 * the audience's projection, what PostgREST's request.jwt.claims holds. */
/* The payload of a /readyz probe: "pgpushd,readyz,PID,N". */
#define PROBE_PREFIX "pgpushd,readyz,"

static const char setup_params_sql[] =
	"SELECT pg_catalog.set_config('role', $1, true),"
	" pg_catalog.set_config('request.jwt.claims', $2, true)";

static const char registry_sql[] =
	"SELECT name, fn_sql, pg_catalog.array_to_json(tables)::text,"
	" pg_catalog.array_to_json(audience_claims)::text FROM pgpush.registry()";

struct qconn {
	struct dashboard *d;
	struct pgconn *pc;
	struct hub_feed *feed;  /* the recompute it runs, or NULL */
	enum step step;
	int err;                /* -1, or ERR_*: the recompute failed */
	bool role_bad;          /* PostgreSQL refused the role */
	char msg[512];
	char name[32];
};

struct dashboard {
	struct ev_loop *loop;
	const struct config *cfg;
	struct hub *hub;
	struct pgconn *listener;
	struct qconn q[QCONN_MAX];
	size_t nq;
	ev_timer refresh;       /* fallback: recompute what nothing rang for */
	ev_timer sched;         /* the earliest throttled or retried feed */
	ev_timer sweep;         /* hub_sweep: expiry, empty audiences */
	ev_prepare kick;        /* starts pending work once per loop iteration */

	/* The listener runs one statement at a time: registry reads and version
	 * draws wait their turn. */
	bool registry_wanted, registry_wait;
	bool registry_warned;
	struct list_node vqueue;/* feeds waiting for a version draw */
	struct hub_feed *vfeed; /* the feed whose draw runs */

	char attached[ATTACHED_MAX][NAME_MAX_BYTES + 1];
	size_t n_attached;
	bool listener_was_ready;/* a later LISTEN is a reconnect */

	unsigned long recomputes, notifications, queries, unchanged;

	/* /readyz: a NOTIFY on our own channel, seen coming back on the
	 * listener, proves it alive (dashboard_ready). */
	ev_timer probe;
	bool probe_wait;        /* its query has not answered yet */
	unsigned long probe_seq;
	char probe_payload[64];
	double probe_sent, probe_seen; /* s, CLOCK_MONOTONIC; 0 = never */
	double queue_usage;     /* pg_notification_queue_usage() with the last probe */

	bool in_error;
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
	else if (bits & DASHBOARD_REASON_REGISTRY)
		snprintf(out, outlen, "registry");
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

static void set_error(struct dashboard *d, struct hub_feed *f, int code, const char *detail,
		      int64_t next_ms)
{
	json_object *o = json_object_new_object();
	char since[UTIL_ISO_TIME_LEN], next[UTIL_ISO_TIME_LEN];
	int64_t now = util_now_ms();

	if (!f->in_error)
		f->error_since = now;
	f->in_error = true;
	d->in_error = true;
	util_iso_time(f->error_since, since);
	util_iso_time(next_ms, next);
	if (!o)
		return;
	keep_detail(d, detail);
	json_object_object_add(o, "message", json_object_new_string(error_messages[code]));
	json_object_object_add(o, "code", json_object_new_string(error_codes[code]));
	json_object_object_add(o, "since", json_object_new_string(since));
	json_object_object_add(o, "nextAttemptAt", json_object_new_string(next));
	json_object_object_add(o, "retryInMs", json_object_new_int64(next_ms > now ? next_ms - now : 0));
	if (hub_feed_set_error(d->hub, f, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								       JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
		log_error("out of memory setting the error state");
	json_object_put(o);
}

static void set_error_all(struct dashboard *d, int code, const char *detail, int64_t next_ms)
{
	struct hub_dashboard *db;
	struct hub_feed *f;

	HUB_FOR_EACH_DASHBOARD(d->hub, db) {
		HUB_FOR_EACH_FEED(db, f)
			set_error(d, f, code, detail, next_ms);
	}
}

static void clear_error(struct dashboard *d, struct hub_feed *f)
{
	struct hub_dashboard *db;
	struct hub_feed *g;
	bool any = false;

	if (!f->in_error)
		return;
	f->in_error = false;
	(void)hub_feed_set_error(d->hub, f, NULL);
	log_info("dashboard recovered after %.1fs dashboard=%s", (util_now_ms() - f->error_since) / 1000.0,
		 f->dash->name);
	HUB_FOR_EACH_DASHBOARD(d->hub, db) {
		HUB_FOR_EACH_FEED(db, g)
			any = any || g->in_error;
	}
	if (!any) {
		d->in_error = false;
		d->detail[0] = '\0';
	}
}

/* ---- the listener: registry reads and version draws, one at a time ---- */

static void listener_next(struct dashboard *d)
{
	struct list_node *n;

	if (!pgconn_is_ready(d->listener) || pgconn_is_busy(d->listener))
		return;
	if (d->registry_wanted) {
		d->registry_wanted = false;
		if (pgconn_query(d->listener, registry_sql) == 0)
			d->registry_wait = true;
		else
			d->registry_wanted = true;
		return;
	}
	if (!(n = list_pop_front(&d->vqueue)))
		return;
	d->vfeed = LIST_ENTRY(n, struct hub_feed, vlink);
	d->vfeed->in_vqueue = false;
	if (pgconn_query(d->listener, version_sql) < 0) {
		/* on_lost ran; the feed's draw is lost: its query result is
		 * dropped and the reconnect recomputes. */
		struct hub_feed *f = d->vfeed;

		d->vfeed = NULL;
		f->version_wait = false;
		f->pending |= DASHBOARD_REASON_RECONNECT;
	}
}

static void feed_done(struct dashboard *d, struct hub_feed *f);

/* ---- scheduling ---- */

static struct qconn *idle_qconn(struct dashboard *d)
{
	for (size_t i = 0; i < d->nq; i++) {
		struct qconn *q = &d->q[i];

		if (!q->feed && pgconn_is_ready(q->pc) && !pgconn_is_busy(q->pc))
			return q;
	}
	return NULL;
}

static void qconn_send(struct qconn *q);

static void start(struct dashboard *d, struct qconn *q, struct hub_feed *f, double now)
{
	f->started_once = true;
	f->last_start = now;
	dashboard_format_reason(f->pending, f->pending_tables, f->running_reason,
				sizeof(f->running_reason));
	f->running_bits = f->pending;
	f->pending = 0;
	f->pending_tables[0] = '\0';
	f->started = ev_time();
	f->busy = f->query_wait = f->version_wait = true;
	f->have_version = false;
	q->feed = f;
	q->err = -1;
	q->role_bad = false;
	q->msg[0] = '\0';
	q->step = f->role ? STEP_BEGIN : STEP_PLAIN;
	d->queries++;
	/* The version is drawn while the query runs, so it costs no latency.
	 * A feed's recomputes never overlap: its versions grow in publish
	 * order. */
	list_push_back(&d->vqueue, &f->vlink);
	f->in_vqueue = true;
	listener_next(d);
	log_debug("recompute started dashboard=%s role=%s reason=%s", f->dash->name,
		  f->role ? f->role : "(own)", f->running_reason);
	qconn_send(q);
}

/* The feed that has waited longest among those that may start now, or
 * NULL; *earliest: the soonest a throttled or retried one may (0: none). */
static struct hub_feed *next_feed(struct dashboard *d, double now, double gap, double *earliest)
{
	struct hub_dashboard *db;
	struct hub_feed *f, *best = NULL;

	*earliest = 0;
	HUB_FOR_EACH_DASHBOARD(d->hub, db) {
		if (db->gone || !db->sql)
			continue;
		HUB_FOR_EACH_FEED(db, f) {
			double t = f->not_before;

			/* An audience without clients is not recomputed; its
			 * work waits for a member to come back. */
			if (!f->pending || f->busy || (!f->count && !f->permanent))
				continue;
			if (!f->pending_since)
				f->pending_since = now;
			if (f->started_once && f->last_start + gap > t)
				t = f->last_start + gap;
			if (t > now) {
				if (!*earliest || t < *earliest)
					*earliest = t;
				continue;
			}
			if (!best || f->pending_since < best->pending_since)
				best = f;
		}
	}
	return best;
}

/* Starts pending feeds on idle query connections, the longest waiting
 * first: under a stream of changes the first audiences of the list must
 * not take every turn (each may run again once its interval is over). */
static void run_pending(struct dashboard *d)
{
	double now, gap, earliest = 0;
	struct hub_feed *f;
	struct qconn *q;

	if (!pgconn_is_ready(d->listener))
		return;
	now = mono_now();
	/* --min-refresh-interval, per feed: a flood of notifications (NOTIFY
	 * needs no privilege) gets at most one recompute per interval; a
	 * lone change after a quiet period still starts at once. */
	gap = (double)d->cfg->min_refresh_interval / 1000.0;
	for (;;) {
		f = next_feed(d, now, gap, &earliest);
		if (!f || !(q = idle_qconn(d)))
			break;
		f->pending_since = 0;
		start(d, q, f, now);
	}
	if (earliest) {
		double in = earliest - now;

		if (!ev_is_active(&d->sched) || ev_timer_remaining(d->loop, &d->sched) > in) {
			ev_timer_stop(d->loop, &d->sched);
			ev_timer_set(&d->sched, in > 0 ? in : 0, 0);
			ev_timer_start(d->loop, &d->sched);
		}
	}
}

/* Work is started just before the loop blocks, not at once: all the
 * notifications of one read (one transaction touching sales and stock)
 * become one recompute per feed. */
static void request(struct dashboard *d, struct hub_feed *f, unsigned bits, const char *table)
{
	f->pending |= bits;
	if (table)
		add_table(f->pending_tables, table);
	ev_prepare_start(d->loop, &d->kick);
}

static void request_dashboard(struct dashboard *d, struct hub_dashboard *db, unsigned bits,
			      const char *table)
{
	struct hub_feed *f;

	HUB_FOR_EACH_FEED(db, f)
		request(d, f, bits, table);
}

static void request_all(struct dashboard *d, unsigned bits)
{
	struct hub_dashboard *db;

	HUB_FOR_EACH_DASHBOARD(d->hub, db)
		request_dashboard(d, db, bits, NULL);
}

static void on_kick(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct dashboard *d = w->data;

	ev_prepare_stop(loop, w);
	run_pending(d);
}

static void feed_wake(void *ud, struct hub_feed *f)
{
	struct dashboard *d = ud;

	if (!f->snap && !f->busy)
		f->pending |= DASHBOARD_REASON_STARTUP;
	ev_prepare_start(d->loop, &d->kick);
}

static double retry_delay(struct dashboard *d, struct hub_feed *f)
{
	double delay = RETRY_MIN * (double)(1u << (f->retry_failures < 6 ? f->retry_failures : 6));

	if (delay > d->cfg->refresh_interval)
		delay = d->cfg->refresh_interval;
	f->retry_failures++;
	return delay;
}

static void query_failed(struct dashboard *d, struct hub_feed *f, int code, const char *message)
{
	double delay = retry_delay(d, f);

	log_error("recompute failed dashboard=%s role=%s reason=%s: %s; retrying in %.1fs",
		  f->dash->name, f->role ? f->role : "(own)", f->running_reason, message, delay);
	/* Retry what failed, under the same reason. */
	f->pending |= DASHBOARD_REASON_TIMER;
	f->not_before = mono_now() + delay;
	ev_prepare_start(d->loop, &d->kick);
	set_error(d, f, code, message, util_now_ms() + (int64_t)(delay * 1000));
}

static void publish(struct dashboard *d, struct hub_feed *f, const char *json, size_t len,
		    int64_t version)
{
	int64_t now = util_now_ms();
	struct snapshot *s;
	int rc;

	/* The sequence only grows; should someone setval() it backwards, the
	 * clients still never see a version go down. */
	if (version <= f->version) {
		log_warn("pgpush.version_seq gave %lld, not above %lld: was it reset?",
			 (long long)version, (long long)f->version);
		version = f->version + 1;
	}
	rc = snapshot_new_nsp(json, len, version, now, f->running_reason, f->dash->nsp, &s);
	if (rc == SNAPSHOT_ERR_NOT_JSON || rc == SNAPSHOT_ERR_NOT_OBJECT) {
		query_failed(d, f, ERR_BAD_RESULT, rc == SNAPSHOT_ERR_NOT_JSON
				 ? "the dashboard query did not return valid JSON"
				 : "the dashboard query did not return a JSON object");
		return;
	}
	if (rc < 0) {
		log_error("out of memory building a snapshot");
		return;
	}
	d->recomputes++;
	f->dash->recomputes++;
	{
		static const struct { unsigned bit; int reason; } reasons[] = {
			{ DASHBOARD_REASON_NOTIFY, METRICS_RECOMPUTE_NOTIFY },
			{ DASHBOARD_REASON_RECONNECT, METRICS_RECOMPUTE_RECONNECT },
			{ DASHBOARD_REASON_STARTUP, METRICS_RECOMPUTE_STARTUP },
			{ DASHBOARD_REASON_TIMER, METRICS_RECOMPUTE_TIMER },
		};
		size_t r = METRICS_RECOMPUTE_TIMER;

		for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
			if (f->running_bits & reasons[i].bit) {
				r = (size_t)reasons[i].reason;
				break;
			}
		}
		metrics_inc(&pgpush_metrics, METRIC_RECOMPUTES, r);
		metrics_set(&pgpush_metrics, METRIC_SNAPSHOT_BYTES, 0, (double)s->doc_len);
	}
	/* The same document as the one the members hold: nothing is sent and
	 * the version does not move (the number drawn is skipped: the draw
	 * ran beside the query, at no latency, and the sequence has gaps
	 * anyway). Except out of an error: the members must leave it. */
	if (f->snap && !f->in_error && snapshot_same_document(f->snap, s)) {
		d->unchanged++;
		metrics_inc(&pgpush_metrics, METRIC_UNCHANGED_DOCUMENTS, 0);
		f->retry_failures = 0;
		f->not_before = 0;
		log_info("recompute done, document unchanged dashboard=%s role=%s reason=%s version=%lld "
			 "query_ms=%.1f", f->dash->name, f->role ? f->role : "(own)", f->running_reason,
			 (long long)f->version, (ev_time() - f->started) * 1000.0);
		snapshot_unref(s);
		return;
	}
	f->version = version;
	/* Compressed once for every client that negotiated permessage-deflate;
	 * level 1: a 50 KB document in well under a millisecond. */
	if (d->cfg->permessage_deflate && snapshot_deflate(s, 1) < 0)
		log_warn("out of memory compressing a snapshot; sending it plain");
	f->retry_failures = 0;
	f->not_before = 0;
	clear_error(d, f);
	hub_feed_publish(d->hub, f, s);
	log_info("recompute done dashboard=%s role=%s reason=%s version=%lld bytes=%zu compressed=%zu query_ms=%.1f clients=%zu patch=%zu patch_compressed=%zu diff_us=%.0f",
		 f->dash->name, f->role ? f->role : "(own)", f->running_reason, (long long)s->version,
		 s->doc_len, s->frame_z ? s->frame_z->len : 0, (ev_time() - f->started) * 1000.0,
		 f->count, s->patch_frame ? s->patch_frame->len : 0,
		 s->patch_frame_z ? s->patch_frame_z->len : 0, s->diff_us);
	snapshot_unref(s);
}

static void drop_doc(struct hub_feed *f)
{
	free(f->doc);
	f->doc = NULL;
	f->doc_len = 0;
}

/* Keeps the query's document until its version is known, once it passed
 * the checks that make it safe to send. */
static bool keep_doc(struct dashboard *d, struct qconn *q, const char *json, size_t len)
{
	struct hub_feed *f = q->feed;

	if (len > SNAPSHOT_MAX) {
		q->err = ERR_BAD_RESULT;
		snprintf(q->msg, sizeof(q->msg), "the dashboard document is larger than 64 MiB");
		return false;
	}
	/* client_encoding is UTF8, but a SQL_ASCII database converts nothing:
	 * its high bytes would reach clients as invalid text frames. */
	if (!util_utf8_valid((const uint8_t *)json, len)) {
		log_error("the dashboard document is not valid UTF-8 (server_encoding=%s; a SQL_ASCII "
			  "database stores bytes unchecked: store UTF-8 text, or use a UTF8 database)",
			  pgconn_parameter(q->pc, "server_encoding"));
		q->err = ERR_BAD_RESULT;
		snprintf(q->msg, sizeof(q->msg), "the dashboard document is not valid UTF-8");
		return false;
	}
	drop_doc(f);
	f->doc = malloc(len + 1);
	if (!f->doc) {
		log_error("out of memory keeping a document");
		return true;
	}
	memcpy(f->doc, json, len);
	f->doc[len] = '\0';
	f->doc_len = len;
	return true;
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

static void on_version(struct dashboard *d, struct hub_feed *f, const PGresult *res)
{
	if (!res) {
		/* Listener lost: its reconnect recomputes. */
		f->pending |= DASHBOARD_REASON_RECONNECT;
		return;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 2 ||
	    PQgetisnull(res, 0, 0)) {
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		log_error("drawing a version from pgpush.version_seq failed: %s (rerun sql/install.sql; "
			  "pgpushd's role needs USAGE on the sequence, see sql/README.md)",
			  primary ? primary : "unexpected result");
		query_failed(d, f, ERR_QUERY_FAILED, "drawing a version failed");
		return;
	}
	load_attached(d, PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1));
	f->drawn_version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	f->have_version = true;
}

/* ---- the registry ---- */

static char **json_strv(const char *json, size_t *n)
{
	json_object *arr = json ? json_tokener_parse(json) : NULL;
	size_t len = arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
	char **v = calloc(len ? len : 1, sizeof(*v));
	size_t k = 0;

	for (size_t i = 0; v && i < len; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(arr, i));

		if (s && (v[k] = strdup(s)))
			k++;
	}
	json_object_put(arr);
	*n = k;
	return v;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool strv_equal(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		if (strcmp(a[i], b[i]) != 0)
			return false;
	}
	return true;
}

static void apply_registry_row(struct dashboard *d, const char *name, const char *fn_sql,
			       const char *tables_json, const char *claims_json)
{
	struct hub_dashboard *db = hub_find_dashboard(d->hub, name, strlen(name));
	size_t nt = 0, nc = 0;
	char **tables = json_strv(tables_json, &nt);
	char **claims = json_strv(claims_json, &nc);
	char sql[512];
	bool is_new = false, claims_changed = false, changed;

	snprintf(sql, sizeof(sql), "SELECT %s()", fn_sql);
	if (!tables || !claims)
		goto out;
	if (!db) {
		if (!(db = hub_add_dashboard(d->hub, name)))
			goto out;
		is_new = true;
		log_info("dashboard registered name=%s fn=%s", name, fn_sql);
	}
	db->mark = true;
	claims_changed = !is_new && !strv_equal(db->claims, db->nclaims, claims, nc);
	changed = is_new || claims_changed || !db->sql || strcmp(db->sql, sql) != 0 ||
		  !strv_equal(db->tables, db->ntables, tables, nt);
	if (!changed)
		goto out;
	if (hub_dashboard_set(db, sql, tables, nt, claims, nc) < 0) {
		log_error("out of memory registering a dashboard");
		goto out;
	}
	if (claims_changed) {
		/* Audiences were cut along other claims: their members must
		 * join again to be placed. */
		struct hub_feed *f;

		log_info("dashboard %s declares other audience claims: its clients are disconnected", name);
		HUB_FOR_EACH_FEED(db, f)
			hub_feed_evict(d->hub, f, "{\"message\":\"the dashboard changed\","
						  "\"code\":\"dashboard_changed\"}");
	} else if (!is_new) {
		log_info("dashboard re-registered name=%s fn=%s", name, fn_sql);
		request_dashboard(d, db, DASHBOARD_REASON_REGISTRY, NULL);
	}
out:
	free_strv(tables, nt);
	free_strv(claims, nc);
}

static void on_registry(struct dashboard *d, const PGresult *res)
{
	struct hub_dashboard *db;
	int rows;

	if (!res)
		return; /* the reconnect reads it again */
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 4) {
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		if (!d->registry_warned)
			log_warn("reading pgpush.registry() failed: %s (named dashboards are off; rerun "
				 "sql/install.sql and sql/grant.sql)", primary ? primary : "unexpected result");
		d->registry_warned = true;
		return;
	}
	d->registry_warned = false;
	/* Roles refused so far are tried again: the DBA may have granted
	 * them (and then rung ':registry', or the daemon reconnected). */
	hub_roles_forget(d->hub);
	HUB_FOR_EACH_DASHBOARD(d->hub, db)
		db->mark = false;
	rows = PQntuples(res);
	for (int i = 0; i < rows; i++) {
		const char *name = PQgetvalue(res, i, 0);

		if (PQgetisnull(res, i, 0) || PQgetisnull(res, i, 1) || !dashboard_name_ok(name) ||
		    strchr(name, '/')) {
			log_warn("registry row %d skipped: bad name", i);
			continue;
		}
		apply_registry_row(d, name, PQgetvalue(res, i, 1),
				   PQgetisnull(res, i, 2) ? "[]" : PQgetvalue(res, i, 2),
				   PQgetisnull(res, i, 3) ? "[]" : PQgetvalue(res, i, 3));
	}
	HUB_FOR_EACH_DASHBOARD(d->hub, db) {
		if (db != d->hub->def && !db->gone && !db->mark) {
			log_info("dashboard unregistered name=%s", db->name);
			hub_remove_dashboard(d->hub, db);
		}
	}
}

/* ---- the query connections ---- */

static void qconn_send(struct qconn *q)
{
	struct hub_feed *f = q->feed;
	const char *params[2];
	int rc;

	switch (q->step) {
	case STEP_PLAIN:
	case STEP_QUERY:
		rc = pgconn_query(q->pc, f->dash->sql);
		break;
	case STEP_BEGIN:
		rc = pgconn_query(q->pc, "BEGIN READ ONLY");
		break;
	case STEP_SETUP:
		params[0] = f->role;
		params[1] = f->key;
		rc = pgconn_query_params(q->pc, setup_params_sql, 2, params);
		break;
	case STEP_COMMIT:
		rc = pgconn_query(q->pc, "COMMIT");
		break;
	case STEP_ROLLBACK:
		rc = pgconn_query(q->pc, "ROLLBACK");
		break;
	default:
		return;
	}
	if (rc < 0) {
		/* on_lost has run (it may have ended this recompute already). */
		if (q->feed) {
			q->feed->pending |= DASHBOARD_REASON_RECONNECT;
			q->feed = NULL;
			q->step = STEP_IDLE;
			f->query_wait = false;
			drop_doc(f);
			feed_done(q->d, f);
		}
	}
}

/* The error of a failed statement, as logged and kept for /healthz. */
static void keep_pg_error(struct qconn *q, const PGresult *res)
{
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	/* "function x() does not exist (SQLSTATE 42883)", without libpq's
	 * "ERROR:  " prefix and multi-line context. */
	snprintf(q->msg, sizeof(q->msg), "%s", primary ? primary : PQresultErrorMessage(res));
	q->msg[strcspn(q->msg, "\n")] = '\0';
	if (state)
		snprintf(q->msg + strlen(q->msg), sizeof(q->msg) - strlen(q->msg), " (SQLSTATE %s)", state);
	if (!*q->msg)
		snprintf(q->msg, sizeof(q->msg), "the dashboard query failed");
	q->err = ERR_QUERY_FAILED;
	if (state && (strcmp(state, "22021") == 0 || strcmp(state, "22P05") == 0)) {
		/* The result has text that UTF-8 cannot carry: PostgreSQL
		 * checks raw bytes of a SQL_ASCII database on the way out. */
		log_error("the dashboard document cannot be sent as UTF-8 (server_encoding=%s; a "
			  "SQL_ASCII database stores bytes unchecked: store UTF-8 text, or use a "
			  "UTF8 database): %s", pgconn_parameter(q->pc, "server_encoding"), q->msg);
		q->err = ERR_BAD_RESULT;
		snprintf(q->msg, sizeof(q->msg), "the dashboard document is not valid UTF-8");
	}
	/* SET ROLE refused: not a member (42501) or no such role (22023). */
	if (q->step == STEP_SETUP && state &&
	    (strcmp(state, "42501") == 0 || strcmp(state, "22023") == 0))
		q->role_bad = true;
}

static void qconn_finish(struct qconn *q)
{
	struct dashboard *d = q->d;
	struct hub_feed *f = q->feed;

	q->feed = NULL;
	q->step = STEP_IDLE;
	f->query_wait = false;
	if (q->role_bad) {
		log_warn("role %s cannot be used by pgpushd (grant it to pgpushd's login role): %s",
			 f->role, q->msg);
		hub_role_bad(d->hub, f->role);
		drop_doc(f);
		hub_feed_evict(d->hub, f, "{\"message\":\"the role cannot be used\","
					  "\"code\":\"role_invalid\"}");
	} else if (q->err >= 0) {
		drop_doc(f);
		query_failed(d, f, q->err, q->msg);
	}
	feed_done(d, f);
}

static void on_query_result(struct qconn *q, const PGresult *res)
{
	struct hub_feed *f = q->feed;
	ExecStatusType st;

	if (!f)
		return;
	if (!res) {
		/* Connection lost mid-query: run it again once reconnected. */
		f->pending |= DASHBOARD_REASON_RECONNECT;
		q->feed = NULL;
		q->step = STEP_IDLE;
		f->query_wait = false;
		drop_doc(f);
		feed_done(q->d, f);
		return;
	}
	st = PQresultStatus(res);
	if (q->step == STEP_ROLLBACK) {
		qconn_finish(q);
		return;
	}
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		keep_pg_error(q, res);
		if (q->step == STEP_PLAIN || q->step == STEP_COMMIT) {
			qconn_finish(q);
		} else {
			q->step = STEP_ROLLBACK;
			qconn_send(q);
		}
		return;
	}
	if (q->step == STEP_PLAIN || q->step == STEP_QUERY) {
		metrics_observe(&pgpush_metrics, METRIC_QUERY_DURATION, 0, ev_time() - f->started);
		if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQgetisnull(res, 0, 0)) {
			q->err = ERR_BAD_RESULT;
			snprintf(q->msg, sizeof(q->msg),
				 "the dashboard query must return one row with one non-null column");
		} else {
			(void)keep_doc(q->d, q, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
		}
		if (q->step == STEP_PLAIN) {
			qconn_finish(q);
		} else {
			q->step = q->err >= 0 ? STEP_ROLLBACK : STEP_COMMIT;
			qconn_send(q);
		}
		return;
	}
	if (q->step == STEP_COMMIT) {
		qconn_finish(q);
		return;
	}
	q->step = q->step == STEP_BEGIN ? STEP_SETUP : STEP_QUERY;
	qconn_send(q);
}

/* Both the query and the version draw answered: the recompute is over. */
static void feed_done(struct dashboard *d, struct hub_feed *f)
{
	if (f->query_wait || f->version_wait)
		return;
	/* Without a version nothing is published: the draw failed (a retry
	 * is due) or the listener is gone (its reconnect recomputes). */
	if (f->doc && f->have_version && !f->dash->gone)
		publish(d, f, f->doc, f->doc_len, f->drawn_version);
	drop_doc(f);
	f->have_version = false;
	f->busy = false;
	ev_prepare_start(d->loop, &d->kick);
}

static void on_listener_result(struct pgconn *pc, const PGresult *res, void *ud)
{
	struct dashboard *d = ud;

	if (d->probe_wait) {
		d->probe_wait = false;
		if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		    PQnfields(res) == 2 && !PQgetisnull(res, 0, 1))
			d->queue_usage = strtod(PQgetvalue(res, 0, 1), NULL);
		listener_next(d);
		return;
	}
	if (d->registry_wait) {
		d->registry_wait = false;
		on_registry(d, res);
	} else if (d->vfeed) {
		struct hub_feed *f = d->vfeed;

		d->vfeed = NULL;
		f->version_wait = false;
		on_version(d, f, res);
		feed_done(d, f);
	}
	listener_next(d);
}

static void on_qconn_result(struct pgconn *pc, const PGresult *res, void *ud)
{
	on_query_result(ud, res);
}

static void on_listener_ready(struct pgconn *pc, void *ud)
{
	struct dashboard *d = ud;

	log_info("database connected conn=%s", pgconn_name(pc));
	/* LISTEN has committed: anything from now on rings. What changed
	 * while we were away is unknown, so read the registry again and
	 * recompute. */
	d->registry_wanted = true;
	request_all(d, d->listener_was_ready ? DASHBOARD_REASON_RECONNECT : DASHBOARD_REASON_STARTUP);
	d->listener_was_ready = true;
	listener_next(d);
}

static void on_qconn_ready(struct pgconn *pc, void *ud)
{
	struct qconn *q = ud;

	log_info("database connected conn=%s", pgconn_name(pc));
	ev_prepare_start(q->d->loop, &q->d->kick);
}

static void lost(struct dashboard *d, struct pgconn *pc, const char *error, int64_t next_ms)
{
	char msg[384];

	log_warn("database unavailable conn=%s: %s; next attempt in %lldms", pgconn_name(pc),
		 error, (long long)(next_ms - util_now_ms()));
	snprintf(msg, sizeof(msg), "database unavailable: %s", error);
	set_error_all(d, ERR_DB_UNAVAILABLE, msg, next_ms);
}

static void on_listener_lost(struct pgconn *pc, const char *error, int64_t next_ms, void *ud)
{
	struct dashboard *d = ud;

	metrics_inc(&pgpush_metrics, METRIC_DB_RECONNECTS, METRICS_DB_LISTENER);
	d->registry_wait = false;
	/* Ready again only after a round trip on the new connection. */
	d->probe_wait = false;
	d->probe_seen = 0;
	lost(d, pc, error, next_ms);
}

static void on_qconn_lost(struct pgconn *pc, const char *error, int64_t next_ms, void *ud)
{
	struct qconn *q = ud;

	metrics_inc(&pgpush_metrics, METRIC_DB_RECONNECTS, METRICS_DB_QUERY);
	lost(q->d, pc, error, next_ms);
}

static bool table_in(const struct hub_dashboard *db, const char *table)
{
	for (size_t i = 0; i < db->ntables; i++) {
		if (strcmp(db->tables[i], table) == 0)
			return true;
	}
	return false;
}

void dashboard_tables_changed(struct dashboard *d, const char *const *tables, size_t n)
{
	struct hub_dashboard *db;

	HUB_FOR_EACH_DASHBOARD(d->hub, db) {
		if (db->gone)
			continue;
		for (size_t i = 0; i < n; i++) {
			const char *table = NULL;

			/* Only the name of a table that really has the doorbell
			 * reaches `reason`. */
			for (size_t k = 0; k < d->n_attached && !table; k++) {
				if (strcmp(tables[i], d->attached[k]) == 0)
					table = d->attached[k];
			}
			if (db->all_tables)
				request_dashboard(d, db, DASHBOARD_REASON_NOTIFY, table);
			else if (table_in(db, tables[i]))
				request_dashboard(d, db, DASHBOARD_REASON_NOTIFY,
						  dashboard_name_ok(tables[i]) ? tables[i] : NULL);
		}
	}
}

static void on_notify(struct pgconn *pc, const char *channel, const char *payload, void *ud)
{
	struct dashboard *d = ud;

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
	if (strcmp(payload, ":registry") == 0) {
		log_debug("notification channel=%s: the registry changed", channel);
		d->registry_wanted = true;
		listener_next(d);
		return;
	}
	/* NOTIFY needs no privilege: the payload is anyone's bytes. */
	log_debug("notification channel=%s", channel);
	dashboard_tables_changed(d, &payload, 1);
}

static void on_refresh(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dashboard *d = w->data;
	double now = mono_now();
	struct hub_dashboard *db;
	struct hub_feed *f;

	/* The fallback: feeds nothing rang for during the interval. */
	HUB_FOR_EACH_DASHBOARD(d->hub, db) {
		HUB_FOR_EACH_FEED(db, f) {
			if (now - f->last_start >= d->cfg->refresh_interval * 0.99)
				request(d, f, DASHBOARD_REASON_TIMER, NULL);
		}
	}
}

/* Every DASHBOARD_PROBE_INTERVAL: NOTIFY our own channel from the listener
 * (a session hears its own notifications), when it is idle; a version
 * draw or a registry read waits at most for this one round trip. */
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

/* Without tokens: the default dashboard's document exists. With them,
 * audiences come and go: a query connection must be up. */
static bool have_document(const struct dashboard *d)
{
	if (d->hub->main_feed)
		return d->hub->main_feed->snap != NULL;
	for (size_t i = 0; i < d->nq; i++) {
		if (pgconn_is_ready(d->q[i].pc))
			return true;
	}
	return false;
}

bool dashboard_ready(void *ud, bool detailed, char *out, size_t outlen)
{
	struct dashboard *d = ud;
	double now = mono_now();
	bool listener = d->probe_seen > 0 && now - d->probe_seen <= DASHBOARD_READY_BOUND;
	bool queue = d->queue_usage < DASHBOARD_QUEUE_MAX;
	bool snapshot = have_document(d);
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
	struct hub_feed *mf = d->hub->main_feed;

	if (mf && mf->snap)
		metrics_set(&pgpush_metrics, METRIC_SNAPSHOT_AGE, 0,
			    (double)(util_now_ms() - mf->snap->generated_ms) / 1000.0);
	metrics_set(&pgpush_metrics, METRIC_AUDIENCES, 0, (double)d->hub->nfeeds);
	/* Served: the default one and the registered ones. */
	metrics_set(&pgpush_metrics, METRIC_DASHBOARDS, 0, (double)d->hub->ndashboards + 1);
}

static void on_sched(struct ev_loop *loop, ev_timer *w, int revents)
{
	run_pending(w->data);
}

static void on_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dashboard *d = w->data;

	hub_sweep(d->hub);
}

static const struct pgconn_callbacks listener_cb = {
	.on_ready = on_listener_ready,
	.on_lost = on_listener_lost,
	.on_notify = on_notify,
	.on_result = on_listener_result,
};

static const struct pgconn_callbacks query_cb = {
	.on_ready = on_qconn_ready,
	.on_lost = on_qconn_lost,
	.on_result = on_qconn_result,
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
	list_init(&d->vqueue);
	hub->hooks.feed_new = feed_wake;
	hub->hooks_ud = d;
	if (hub_dashboard_set(hub->def, cfg->query, NULL, 0, NULL, 0) < 0) {
		free(d);
		return NULL;
	}
	/* Only dashboard queries run on these sessions, and they only read:
	 * whatever a query or a function it calls tries to write fails. */
	snprintf(setup, sizeof(setup),
		 "SET default_transaction_read_only = on; SET statement_timeout = %.0f",
		 cfg->query_timeout * 1000.0);
	d->listener = pgconn_new(loop, cfg->db, "pgpushd-listener", cfg->channel, NULL,
				 &listener_cb, d);
	/* Without tokens every dashboard has one audience: one connection, as
	 * before. With tokens, two: a slow audience leaves one free. */
	d->nq = cfg->query_connections ? cfg->query_connections : hub_auth_on(hub) ? 2 : 1;
	if (d->nq > QCONN_MAX)
		d->nq = QCONN_MAX;
	for (size_t i = 0; i < d->nq; i++) {
		struct qconn *q = &d->q[i];

		q->d = d;
		q->err = -1;
		snprintf(q->name, sizeof(q->name), i ? "pgpushd-query-%zu" : "pgpushd-query", i + 1);
		q->pc = pgconn_new(loop, cfg->db, q->name, NULL, setup, &query_cb, q);
		if (!q->pc) {
			dashboard_free(d);
			return NULL;
		}
	}
	if (!d->listener) {
		dashboard_free(d);
		return NULL;
	}
	ev_timer_init(&d->refresh, on_refresh, cfg->refresh_interval, cfg->refresh_interval);
	ev_timer_init(&d->sched, on_sched, 0, 0);
	ev_timer_init(&d->sweep, on_sweep, 1.0, 1.0);
	ev_prepare_init(&d->kick, on_kick);
	ev_timer_init(&d->probe, on_probe, DASHBOARD_PROBE_INTERVAL, DASHBOARD_PROBE_INTERVAL);
	d->refresh.data = d->sched.data = d->kick.data = d->sweep.data = d->probe.data = d;
	ev_timer_start(loop, &d->probe);
	ev_timer_start(loop, &d->refresh);
	ev_timer_start(loop, &d->sweep);
	for (size_t i = 0; i < d->nq; i++)
		pgconn_start(d->q[i].pc);
	pgconn_start(d->listener);
	return d;
}

void dashboard_free(struct dashboard *d)
{
	if (!d)
		return;
	ev_timer_stop(d->loop, &d->refresh);
	ev_timer_stop(d->loop, &d->sched);
	ev_timer_stop(d->loop, &d->sweep);
	ev_timer_stop(d->loop, &d->probe);
	ev_prepare_stop(d->loop, &d->kick);
	pgconn_free(d->listener);
	for (size_t i = 0; i < d->nq; i++)
		pgconn_free(d->q[i].pc);
	if (d->hub->hooks_ud == d) {
		d->hub->hooks.feed_new = NULL;
		d->hub->hooks_ud = NULL;
	}
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
	struct hub *h = d->hub;
	bool listening = pgconn_is_ready(d->listener);
	bool querying = false;
	struct hub_feed *mf = h->main_feed;
	bool ok;
	const char *status;
	json_object *o = detailed ? json_object_new_object() : NULL;
	json_object *err = NULL, *per;
	struct hub_dashboard *db;

	for (size_t i = 0; i < d->nq; i++)
		querying = querying || pgconn_is_ready(d->q[i].pc);
	/* Without tokens: a document exists. With them, audiences come and
	 * go: the database must be reachable. */
	ok = listening && (mf ? mf->snap != NULL : querying);
	status = ok ? "ok" : "unavailable";
	if (o) {
		json_object_object_add(o, "status", json_object_new_string(status));
		json_object_object_add(o, "listener", json_object_new_boolean(listening));
		json_object_object_add(o, "query", json_object_new_boolean(querying));
		json_object_object_add(o, "snapshotVersion",
				       json_object_new_int64(mf && mf->snap ? mf->snap->version : 0));
		json_object_object_add(o, "clients", json_object_new_int64((int64_t)h->count));
		json_object_object_add(o, "recomputes", json_object_new_int64((int64_t)d->recomputes));
		json_object_object_add(o, "notifications",
				       json_object_new_int64((int64_t)d->notifications));
		json_object_object_add(o, "queries", json_object_new_int64((int64_t)d->queries));
		json_object_object_add(o, "unchanged", json_object_new_int64((int64_t)d->unchanged));
		json_object_object_add(o, "patches", json_object_new_int64((int64_t)h->patches));
		json_object_object_add(o, "fullDocuments", json_object_new_int64((int64_t)h->fulls));
		json_object_object_add(o, "resumed", json_object_new_int64((int64_t)h->resumed));
		json_object_object_add(o, "diffs", json_object_new_int64((int64_t)h->diffs));
		json_object_object_add(o, "diffMicroseconds", json_object_new_int64((int64_t)h->diff_us));
		json_object_object_add(o, "audiences", json_object_new_int64((int64_t)h->nfeeds));
		json_object_object_add(o, "dashboards", json_object_new_int64((int64_t)h->ndashboards));
		json_object_object_add(o, "refused", json_object_new_int64((int64_t)h->refused));
		per = json_object_new_object();
		HUB_FOR_EACH_DASHBOARD(h, db) {
			json_object *e = json_object_new_object();
			size_t clients = 0;
			struct hub_feed *f;

			if (db->gone || !e) {
				json_object_put(e);
				continue;
			}
			HUB_FOR_EACH_FEED(db, f)
				clients += f->count;
			json_object_object_add(e, "audiences", json_object_new_int64((int64_t)db->nfeeds));
			json_object_object_add(e, "recomputes", json_object_new_int64((int64_t)db->recomputes));
			json_object_object_add(e, "clients", json_object_new_int64((int64_t)clients));
			json_object_object_add(per, db == h->def ? "/" : db->name, e);
		}
		json_object_object_add(o, "perDashboard", per);
		if (mf && mf->error_json)
			err = json_tokener_parse(mf->error_json);
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
		json_object_object_del(o, "perDashboard");
		if (health_fits(o, out, outlen)) {
			json_object_put(o);
			return ok;
		}
		json_object_put(o);
	}
	snprintf(out, outlen, "{\"status\":\"%s\"}", status);
	return ok;
}
