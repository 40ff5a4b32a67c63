#include "autoconfig.h"

#include "dashboard.h"
#include "dashboard_int.h"
#include "changes.h"
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

#define SNAPSHOT_MAX (64u << 20) /* largest document accepted from the query */
#define RETRY_MIN 1.0           /* s before re-running a failed query */

static const char *const error_codes[] = { "db_unavailable", "query_failed", "bad_result",
					   "change_source_mismatch", "change_stream_unavailable",
					   "replica_lagging" };
/* What clients read: never PostgreSQL's message (it names hosts, roles,
 * tables); the details go to the log and to loopback /healthz. */
static const char *const error_messages[] = {
	"the database is unavailable",
	"the dashboard query failed",
	"the dashboard query returned an unusable result",
	"pgpushd and the database disagree on how changes are learnt",
	"the change stream is unavailable",
	"the query replica lags behind the primary",
};

void dashboard_format_reason(unsigned bits, const char *tables, char *out, size_t outlen)
{
	if (bits & DASHBOARD_REASON_STARTUP)
		snprintf(out, outlen, "startup");
	else if (bits & DASHBOARD_REASON_RECONNECT)
		snprintf(out, outlen, "reconnect");
	else if (bits & DASHBOARD_REASON_LEADER)
		snprintf(out, outlen, "leader");
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
	f->leader_error = false;
	cluster_error(d, f);
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
	f->leader_error = false;
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

static void feed_done(struct dashboard *d, struct hub_feed *f);

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
			{ DASHBOARD_REASON_LEADER, METRICS_RECOMPUTE_LEADER },
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
		f->running_change_us = 0; /* nothing was broadcast */
		log_info("recompute done, document unchanged dashboard=%s role=%s reason=%s version=%lld "
			 "query_ms=%.1f", f->dash->name, f->role ? f->role : "(own)", f->running_reason,
			 (long long)f->version, (ev_time() - f->started) * 1000.0);
		snapshot_unref(s);
		cluster_unchanged(d, f);
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
	cluster_published(d, f);
	if (f->running_change_us) {
		metrics_observe(&pgpush_metrics, METRIC_COMMIT_SEND_DELAY, 0,
				(double)(util_now_us() - f->running_change_us) / 1e6);
		f->running_change_us = 0;
	}
	log_info("recompute done dashboard=%s role=%s reason=%s version=%lld bytes=%zu compressed=%zu query_ms=%.1f clients=%zu patch=%zu patch_compressed=%zu diff_us=%.0f",
		 f->dash->name, f->role ? f->role : "(own)", f->running_reason, (long long)s->version,
		 s->doc_len, s->frame_z ? s->frame_z->len : 0, (ev_time() - f->started) * 1000.0,
		 f->count, s->patch_frame ? s->patch_frame->len : 0,
		 s->patch_frame_z ? s->patch_frame_z->len : 0, s->diff_us);
	snapshot_unref(s);
}

void dashboard_publish_stored(struct dashboard *d, struct hub_feed *f, const char *json, size_t len,
			      int64_t version, int64_t generated_ms, const char *reason)
{
	struct snapshot *s;

	/* Stale (a fetch overtaken by a newer one), or already held; but out
	 * of an error (the listener was lost) the members must leave it: the
	 * same document again, under the same version. */
	if (version < f->version || (version == f->version && !f->in_error))
		return;
	if (snapshot_new_nsp(json, len, version, generated_ms, reason, f->dash->nsp, &s) < 0) {
		log_error("a stored document could not be used dashboard=%s version=%lld",
			  f->dash->name, (long long)version);
		return;
	}
	f->version = version;
	snprintf(f->stored_reason, sizeof(f->stored_reason), "%s", reason);
	if (d->cfg->permessage_deflate && snapshot_deflate(s, 1) < 0)
		log_warn("out of memory compressing a snapshot; sending it plain");
	clear_error(d, f);
	hub_feed_publish(d->hub, f, s);
	log_info("document fetched dashboard=%s role=%s reason=%s version=%lld bytes=%zu clients=%zu",
		 f->dash->name, f->role ? f->role : "(own)", reason, (long long)version, s->doc_len,
		 f->count);
	snapshot_unref(s);
}

void dashboard_leader_error(struct dashboard *d, struct hub_feed *f, const char *json)
{
	if (!json) {
		if (f->leader_error)
			clear_error(d, f);
		return;
	}
	if (f->in_error && f->error_json && strcmp(f->error_json, json) == 0)
		return;
	if (!f->in_error)
		f->error_since = util_now_ms();
	f->in_error = true;
	f->leader_error = true;
	d->in_error = true;
	keep_detail(d, "the leader's recompute failed (its log has the details)");
	if (hub_feed_set_error(d->hub, f, json) < 0)
		log_error("out of memory setting the error state");
	log_info("the leader reports an error dashboard=%s role=%s: %s", f->dash->name,
		 f->role ? f->role : "(own)", json);
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
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) < 2 ||
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

static void on_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dashboard *d = w->data;

	hub_sweep(d->hub);
}

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
	d->replica = cfg->query_db && *cfg->query_db;
	cluster_init(d);
	hub->hooks.feed_new = cluster_feed_new;
	hub->hooks.feed_gone = cluster_feed_gone;
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
	d->listener = pgconn_new(loop, cfg->db, "pgpushd-listener", cfg->channel,
				 changes_listener_setup(cfg), &listener_callbacks, d);
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
		replica_init(q);
		q->pc = pgconn_new(loop, d->replica ? cfg->query_db : cfg->db, q->name, NULL, setup,
				   &qconn_callbacks, q);
		if (!q->pc) {
			dashboard_free(d);
			return NULL;
		}
		/* A transaction pool would run the SETs on one server session
		 * and the queries on others (and leave them to other clients). */
		pgconn_require_session(q->pc, "the session settings (read-only, statement_timeout) "
					      "must stay on one server session");
	}
	if (!d->listener) {
		dashboard_free(d);
		return NULL;
	}
	/* Through a transaction pool LISTEN lands on a server session that
	 * is soon another client's: notifications would be lost silently. */
	pgconn_require_session(d->listener, "LISTEN and session locks must stay on one server session");
	ev_timer_init(&d->refresh, schedule_on_refresh, cfg->refresh_interval, cfg->refresh_interval);
	ev_timer_init(&d->sched, schedule_on_sched, 0, 0);
	ev_timer_init(&d->sweep, on_sweep, 1.0, 1.0);
	ev_prepare_init(&d->kick, schedule_on_kick);
	ev_timer_init(&d->probe, health_on_probe, DASHBOARD_PROBE_INTERVAL, DASHBOARD_PROBE_INTERVAL);
	d->refresh.data = d->sched.data = d->kick.data = d->sweep.data = d->probe.data = d;
	ev_timer_start(loop, &d->probe);
	ev_timer_start(loop, &d->refresh);
	ev_timer_start(loop, &d->sweep);
	for (size_t i = 0; i < d->nq; i++)
		pgconn_start(d->q[i].pc);
	/* --change-source logical: the stream starts when this instance
	 * becomes the cluster's leader (cluster.c), the only one that
	 * recomputes. */
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
	cluster_stop(d);
	changes_free(d->changes);
	pgconn_free(d->listener);
	for (size_t i = 0; i < d->nq; i++) {
		ev_timer_stop(d->loop, &d->q[i].poll);
		pgconn_free(d->q[i].pc);
	}
	if (d->hub->hooks_ud == d) {
		d->hub->hooks.feed_new = NULL;
		d->hub->hooks.feed_gone = NULL;
		d->hub->hooks_ud = NULL;
	}
	/* Feeds outlive the dashboard (the hub frees them): none may stay
	 * linked into its version-draw queue. */
	for (struct list_node *n; (n = list_pop_front(&d->vqueue));)
		LIST_ENTRY(n, struct hub_feed, vlink)->in_vqueue = false;
	free(d);
}

/* For the other parts of the dashboard (dashboard_int.h). */
void dashboard_set_error_all(struct dashboard *d, int code, const char *detail, int64_t next_ms)
{
	set_error_all(d, code, detail, next_ms);
}

void dashboard_query_failed(struct dashboard *d, struct hub_feed *f, int code, const char *message)
{
	query_failed(d, f, code, message);
}

void dashboard_drop_doc(struct hub_feed *f)
{
	drop_doc(f);
}

bool dashboard_keep_doc(struct dashboard *d, struct qconn *q, const char *json, size_t len)
{
	return keep_doc(d, q, json, len);
}

void dashboard_on_version(struct dashboard *d, struct hub_feed *f, const PGresult *res)
{
	on_version(d, f, res);
}

void dashboard_feed_done(struct dashboard *d, struct hub_feed *f)
{
	feed_done(d, f);
}
