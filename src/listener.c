/* The listener: one read-write session that LISTENs, draws versions and
 * reads the registry one statement at a time; what rings it (NOTIFY, or the
 * logical change source) becomes recompute requests. */
#include "autoconfig.h"

#include "dashboard.h"
#include "dashboard_int.h"
#include "log.h"
#include "metrics.h"
#include "pgconn.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Drawn on the listener, a read-write session on the primary: the read-only
 * query session cannot call nextval(). The attached tables come with it, so
 * the set that `reason` may name is refreshed at every recompute. Every name
 * is qualified: this runs with the role's search_path. */
#define VERSION_SELECT \
	"SELECT pg_catalog.nextval('pgpush.version_seq')," \
	" (SELECT pg_catalog.json_agg(DISTINCT c.relname) FROM pgpush.attached() a" \
	"  JOIN pg_catalog.pg_class c ON c.oid = a.relation)"
static const char version_sql[] = VERSION_SELECT;
/* With --query-db, also where the next WAL record goes: past the commit
 * that rang, even one with synchronous_commit=off whose WAL is not yet
 * written (pg_current_wal_lsn() could be behind it). replica.c waits. */
static const char version_lsn_sql[] = VERSION_SELECT ", pg_catalog.pg_current_wal_insert_lsn(),"
	" pg_catalog.current_setting('wal_block_size'),"
	" (SELECT s.setting FROM pg_catalog.pg_settings s WHERE s.name = 'wal_segment_size')";


void listener_next(struct dashboard *d)
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
	if (cluster_next(d, !list_empty(&d->vqueue)))
		return;
	if (!(n = list_pop_front(&d->vqueue)))
		return;
	d->vfeed = LIST_ENTRY(n, struct hub_feed, vlink);
	d->vfeed->in_vqueue = false;
	if (pgconn_query(d->listener, d->replica ? version_lsn_sql : version_sql) < 0) {
		/* on_lost ran; the feed's draw is lost: its query result is
		 * dropped and the reconnect recomputes. */
		struct hub_feed *f = d->vfeed;

		d->vfeed = NULL;
		f->version_wait = false;
		f->pending |= DASHBOARD_REASON_RECONNECT;
	}
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
	if (d->cluster_wait) {
		cluster_result(d, res);
	} else if (d->registry_wait) {
		d->registry_wait = false;
		registry_read(d, res);
	} else if (d->vfeed) {
		struct hub_feed *f = d->vfeed;

		d->vfeed = NULL;
		f->version_wait = false;
		dashboard_on_version(d, f, res);
		if (d->replica)
			replica_on_draw(d, f, res);
		dashboard_feed_done(d, f);
	}
	listener_next(d);
}

static void on_listener_ready(struct pgconn *pc, void *ud)
{
	struct dashboard *d = ud;

	log_info("database connected conn=%s", pgconn_name(pc));
	/* LISTEN has committed: anything from now on rings. What changed
	 * while we were away is unknown, so read the registry again and
	 * recompute. */
	d->registry_wanted = true;
	cluster_listener_ready(d);
	schedule_request_all(d, d->listener_was_ready ? DASHBOARD_REASON_RECONNECT : DASHBOARD_REASON_STARTUP);
	d->listener_was_ready = true;
	listener_next(d);
}

void listener_lost(struct dashboard *d, struct pgconn *pc, const char *error, int64_t next_ms)
{
	char msg[384];

	log_warn("database unavailable conn=%s: %s; next attempt in %lldms", pgconn_name(pc),
		 error, (long long)(next_ms - util_now_ms()));
	snprintf(msg, sizeof(msg), "database unavailable: %s", error);
	dashboard_set_error_all(d, strstr(error, CHANGES_MISMATCH_TEXT) ? ERR_CHANGE_SOURCE_MISMATCH
							       : ERR_DB_UNAVAILABLE, msg, next_ms);
}

static void on_listener_lost(struct pgconn *pc, const char *error, int64_t next_ms, void *ud)
{
	struct dashboard *d = ud;

	metrics_inc(&pgpush_metrics, METRIC_DB_RECONNECTS, METRICS_DB_LISTENER);
	d->registry_wait = false;
	/* Ready again only after a round trip on the new connection. */
	d->probe_wait = false;
	d->probe_seen = 0;
	cluster_listener_lost(d);
	listener_lost(d, pc, error, next_ms);
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
				schedule_request_dashboard(d, db, DASHBOARD_REASON_NOTIFY, table);
			else if (table_in(db, tables[i]))
				schedule_request_dashboard(d, db, DASHBOARD_REASON_NOTIFY,
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
	if (cluster_notify(d, payload))
		return;
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
	/* NOTIFY is delivered when the writer commits: its arrival stands for
	 * the commit time. */
	d->change_us = util_now_us();
	dashboard_tables_changed(d, &payload, 1);
	d->change_us = 0;
}

/* --change-source logical: one committed transaction, as one notification
 * naming its tables. */
static void on_change_tables(void *ud, const char *const *names, size_t n, int64_t commit_us)
{
	struct dashboard *d = ud;

	d->notifications++;
	metrics_inc(&pgpush_metrics, METRIC_NOTIFICATIONS, 0);
	/* The stream carries the commit's own time. */
	d->change_us = commit_us ? commit_us : util_now_us();
	if (n == 0)
		schedule_request_all(d, DASHBOARD_REASON_NOTIFY);
	else
		dashboard_tables_changed(d, names, n);
	d->change_us = 0;
}

static void on_change_started(void *ud, bool first)
{
	struct dashboard *d = ud;

	schedule_request_all(d, first ? DASHBOARD_REASON_STARTUP : DASHBOARD_REASON_RECONNECT);
}

static void on_change_error(void *ud, const char *code, const char *detail, int64_t next_ms)
{
	struct dashboard *d = ud;

	dashboard_set_error_all(d, strcmp(code, "change_source_mismatch") == 0 ? ERR_CHANGE_SOURCE_MISMATCH
								     : ERR_CHANGE_STREAM, detail, next_ms);
}

const struct changes_callbacks listener_changes_callbacks = {
	.on_tables = on_change_tables,
	.on_started = on_change_started,
	.on_error = on_change_error,
};

const struct pgconn_callbacks listener_callbacks = {
	.on_ready = on_listener_ready,
	.on_lost = on_listener_lost,
	.on_notify = on_notify,
	.on_result = on_listener_result,
};
