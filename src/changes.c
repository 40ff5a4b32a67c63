#include "autoconfig.h"

#include "changes.h"
#include "log.h"
#include "pgconn.h"
#include "pgoutput.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define STATUS_INTERVAL 1.0   /* s between periodic standby status updates */
#define STATUS_AFTER_COMMIT 0.1 /* s: least gap before a status after a commit */
#define NAMES_MAX 64          /* tables reported per commit (more: the rest are
                                 dropped from `reason`, the recompute happens) */
#define PUBLICATION "pgpush"
#define BATCH_XIDS 256        /* transactions checked per visibility query */
#define NAME_BYTES 64         /* NAMEDATALEN */
#define PG_EPOCH_UNIX_US 946684800000000LL /* 2000-01-01 in Unix us */
#define VISIBLE_RETRY 0.002   /* s before checking a batch not yet visible again */
#define CHECK_SPACING 0.010   /* s between the starts of two checks: under a
                                 stream of commits, at most 100 queries/s
                                 (the dashboard recomputes at most every
                                 --min-refresh-interval anyway); a lone commit
                                 is checked at once */
#define VISIBLE_GIVE_UP 5.0   /* s after which a batch is reported anyway */

/* Notify mode: the listener's setup. A database without
 * pgpush.change_source() (installed before it existed) counts as notify. */
static const char notify_check_sql[] =
	"DO $pgpush$ DECLARE src text; BEGIN"
	" IF pg_catalog.to_regprocedure('pgpush.change_source()') IS NOT NULL THEN"
	"  EXECUTE 'SELECT pgpush.change_source()' INTO src;"
	"  IF src IS DISTINCT FROM 'notify' THEN"
	"   RAISE EXCEPTION '" CHANGES_MISMATCH_TEXT ": the database rings through %, pgpushd runs with"
	" --change-source notify', src USING HINT = 'run SELECT pgpush.set_change_source(''notify'')"
	" or start pgpushd with --change-source logical';"
	"  END IF;"
	" END IF; END $pgpush$";

/* Logical mode, on the replication connection (which runs plain SQL with
 * the simple protocol), before creating the slot. */
static const char check_sql[] =
	"SELECT pg_catalog.current_setting('wal_level'),"
	" (SELECT r.rolreplication OR r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user),"
	" EXISTS (SELECT 1 FROM pg_catalog.pg_publication p WHERE p.pubname = '" PUBLICATION "'),"
	" pgpush.change_source()";

/* The walsender may send a Commit before the transaction is visible to
 * other sessions: the commit record is flushed (and decoded) before the
 * committing backend leaves the proc array. A recompute started at once
 * could run on a snapshot without it, and the dashboard would miss the
 * change until the next one. So a batch of commits is reported once a
 * fresh snapshot on a plain connection sees each of its transactions
 * (pg_visible_in_snapshot; the 32-bit xid of pgoutput v1 is widened to an
 * xid8 next to the snapshot's xmax). Usually one round trip. */
static const char visible_sql_head[] =
	"SELECT pg_catalog.bool_and(pg_catalog.pg_visible_in_snapshot((m.xmax + CASE"
	" WHEN m.d > 2147483647 THEN m.d - 4294967296 WHEN m.d < -2147483648 THEN m.d + 4294967296"
	" ELSE m.d END)::text::pg_catalog.xid8, m.s))"
	" FROM (SELECT q.s, q.xmax, x - (q.xmax & 4294967295) AS d FROM"
	" (SELECT c.s, pg_catalog.pg_snapshot_xmax(c.s)::text::int8 AS xmax"
	"  FROM pg_catalog.pg_current_snapshot() AS c(s)) q,"
	" pg_catalog.unnest('{";
static const char visible_sql_tail[] = "}'::int8[]) AS x) m";

struct batch {
	char names[NAMES_MAX][NAME_BYTES];
	size_t nnames;
	uint32_t xids[BATCH_XIDS];
	size_t nxids;
	int64_t first_commit_us; /* Unix us of its earliest commit; 0: none */
};

enum step { STEP_CHECK, STEP_SLOT, STEP_START, STEP_STREAM };

struct changes {
	struct ev_loop *loop;
	const struct config *cfg;
	const struct changes_callbacks *cb;
	void *ud;
	struct pgconn *conn;
	struct pgoutput_decoder *dec;
	enum step step;
	ev_timer status;
	double last_status;    /* ev_now of the last status update */
	uint64_t confirmed;
	bool started_once;
	bool fell_back;
	/* Why the connection is being dropped: set before pgconn_drop. */
	const char *drop_code;
	bool drop_fallback;    /* the reason allows --change-source-fallback */
	char slot[64];
	uint64_t commits;
	uint64_t seq;
	uint32_t xid;          /* of the transaction being decoded */

	struct pgconn *vis;    /* plain connection for the visibility check */
	struct batch next;     /* commits not yet checked */
	struct batch checking; /* commits whose check runs */
	bool check_wait;       /* a check query is in flight */
	double last_check;     /* ev_now when the last check query was sent */
	double check_since;    /* ev_now when the checking batch started */
	ev_timer recheck;
};

const char *changes_listener_setup(const struct config *cfg)
{
	return cfg->logical ? NULL : notify_check_sql;
}

static int64_t pg_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return pgoutput_pg_time((int64_t)tv.tv_sec * 1000000 + tv.tv_usec);
}

static void send_status(struct changes *c, bool reply)
{
	uint8_t buf[PGOUTPUT_STATUS_LEN];
	uint64_t lsn = pgoutput_decoder_flush_lsn(c->dec);

	if (!pgconn_is_streaming(c->conn))
		return;
	/* Nothing is applied anywhere: written and flushed say what was read
	 * and acted on (a recompute was requested). */
	if (pgoutput_encode_status(buf, sizeof(buf), lsn, lsn, 0, pg_now(), reply) < 0)
		return;
	c->last_status = ev_now(c->loop);
	if (pgconn_put_copy(c->conn, buf, sizeof(buf)) == 0)
		c->confirmed = lsn;
}

static void on_status(struct ev_loop *loop, ev_timer *w, int revents)
{
	send_status(w->data, false);
}

static void batch_add(struct batch *b, uint32_t xid, const char *const *names, size_t n,
		      int64_t commit_us)
{
	if (commit_us && (!b->first_commit_us || commit_us < b->first_commit_us))
		b->first_commit_us = commit_us;
	for (size_t k = 0; k < n; k++) {
		bool seen = false;

		for (size_t i = 0; i < b->nnames && !seen; i++)
			seen = strcmp(b->names[i], names[k]) == 0;
		if (!seen && b->nnames < NAMES_MAX && strlen(names[k]) < NAME_BYTES)
			snprintf(b->names[b->nnames++], NAME_BYTES, "%s", names[k]);
	}
	/* Beyond the cap the latest transactions are the ones checked: the
	 * earlier ones committed earlier and are all but surely visible. */
	if (b->nxids == BATCH_XIDS)
		memmove(b->xids, b->xids + 1, (BATCH_XIDS - 1) * sizeof(b->xids[0]));
	b->xids[b->nxids < BATCH_XIDS ? b->nxids++ : BATCH_XIDS - 1] = xid;
}

static void report(struct changes *c, struct batch *b)
{
	const char *names[NAMES_MAX];

	for (size_t i = 0; i < b->nnames; i++)
		names[i] = b->names[i];
	if (b->nxids)
		c->cb->on_tables(c->ud, names, b->nnames, b->first_commit_us);
	b->nnames = b->nxids = 0;
	b->first_commit_us = 0;
}

static void start_check(struct changes *c)
{
	char *sql;
	size_t len, off;

	if (c->check_wait || ev_is_active(&c->recheck))
		return;
	if (ev_now(c->loop) - c->last_check < CHECK_SPACING) {
		ev_timer_set(&c->recheck, c->last_check + CHECK_SPACING - ev_now(c->loop), 0);
		ev_timer_start(c->loop, &c->recheck);
		return;
	}
	if (!c->checking.nxids) {
		if (!c->next.nxids)
			return;
		c->checking = c->next;
		c->next.nnames = c->next.nxids = 0;
		c->next.first_commit_us = 0;
		c->check_since = ev_now(c->loop);
	}
	if (!pgconn_is_ready(c->vis) || pgconn_is_busy(c->vis) ||
	    ev_now(c->loop) - c->check_since > VISIBLE_GIVE_UP) {
		/* No way to check: report rather than lose the change. */
		report(c, &c->checking);
		start_check(c);
		return;
	}
	len = sizeof(visible_sql_head) + sizeof(visible_sql_tail) + c->checking.nxids * 11;
	sql = malloc(len);
	if (!sql) {
		report(c, &c->checking);
		return;
	}
	off = (size_t)snprintf(sql, len, "%s", visible_sql_head);
	for (size_t i = 0; i < c->checking.nxids; i++)
		off += (size_t)snprintf(sql + off, len - off, "%s%lu", i ? "," : "",
					(unsigned long)c->checking.xids[i]);
	snprintf(sql + off, len - off, "%s", visible_sql_tail);
	c->last_check = ev_now(c->loop);
	c->check_wait = pgconn_query(c->vis, sql) == 0;
	free(sql);
	if (!c->check_wait) {
		report(c, &c->checking);
		start_check(c);
	}
}

static void on_recheck(struct ev_loop *loop, ev_timer *w, int revents)
{
	start_check(w->data);
}

static void on_vis_result(struct pgconn *pc, const PGresult *res, void *ud)
{
	struct changes *c = ud;

	if (!c->check_wait)
		return;
	c->check_wait = false;
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "f") == 0) {
		/* Not visible yet: the committing backend is a moment behind. */
		ev_timer_set(&c->recheck, VISIBLE_RETRY, 0);
		ev_timer_start(c->loop, &c->recheck);
		return;
	}
	if (res && PQresultStatus(res) != PGRES_TUPLES_OK)
		log_warn("checking that decoded transactions are visible failed: %s",
			 PQresultErrorMessage(res));
	report(c, &c->checking);
	start_check(c);
}

static void on_vis_ready(struct pgconn *pc, void *ud)
{
	start_check(ud);
}

static void on_vis_lost(struct pgconn *pc, const char *error, int64_t next_ms, void *ud)
{
	struct changes *c = ud;

	log_warn("database unavailable conn=%s: %s (decoded changes are reported unchecked)",
		 pgconn_name(pc), error);
	if (c->check_wait) {
		c->check_wait = false;
		report(c, &c->checking);
	}
}

static const struct pgconn_callbacks vis_cb = {
	.on_ready = on_vis_ready,
	.on_lost = on_vis_lost,
	.on_result = on_vis_result,
};

static void fail(struct changes *c, const char *code, bool fallback, const char *why)
{
	c->drop_code = code;
	c->drop_fallback = fallback;
	pgconn_drop(c->conn, why);
}

static void on_ready(struct pgconn *pc, void *ud)
{
	struct changes *c = ud;

	log_info("database connected conn=%s (replication)", pgconn_name(pc));
	pgoutput_decoder_reset(c->dec);
	c->step = STEP_CHECK;
	if (pgconn_command(pc, check_sql) < 0)
		return; /* on_lost ran */
}

static void after_check(struct changes *c, const PGresult *res)
{
	char sql[256], why[320];
	const char *wal, *src;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 4) {
		snprintf(why, sizeof(why), "checking the server for logical replication failed "
			 "(is sql/install.sql up to date?): %s", PQresultErrorMessage(res));
		fail(c, "change_stream_unavailable", false, why);
		return;
	}
	wal = PQgetvalue(res, 0, 0);
	src = PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3);
	if (strcmp(wal, "logical") != 0) {
		snprintf(why, sizeof(why), "wal_level is %s: --change-source logical needs wal_level = "
			 "logical (postgresql.conf, then restart the server)", wal);
		fail(c, "change_stream_unavailable", true, why);
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
		fail(c, "change_stream_unavailable", true,
		     "the role lacks REPLICATION: --change-source logical needs ALTER ROLE ... REPLICATION");
		return;
	}
	if (!src || strcmp(src, "logical") != 0) {
		snprintf(why, sizeof(why), CHANGES_MISMATCH_TEXT ": the database rings through %s, "
			 "pgpushd runs with --change-source logical (run SELECT "
			 "pgpush.set_change_source('logical') or start pgpushd with --change-source notify)",
			 src);
		fail(c, "change_source_mismatch", false, why);
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
		fail(c, "change_stream_unavailable", true,
		     "the publication " PUBLICATION " is missing: run SELECT pgpush.set_change_source('logical')");
		return;
	}
	/* Temporary: dropped by the server when this connection ends, so a
	 * stopped or crashed daemon never holds WAL. */
	snprintf(c->slot, sizeof(c->slot), "pgpush_%ld_%llu", (long)getpid(),
		 (unsigned long long)++c->seq);
	snprintf(sql, sizeof(sql),
		 "CREATE_REPLICATION_SLOT \"%s\" TEMPORARY LOGICAL pgoutput NOEXPORT_SNAPSHOT", c->slot);
	c->step = STEP_SLOT;
	if (pgconn_command(c->conn, sql) < 0)
		return; /* on_lost ran */
}

static void on_result(struct pgconn *pc, const PGresult *res, void *ud)
{
	struct changes *c = ud;
	char sql[256], why[320];

	if (!res)
		return; /* on_lost follows */
	switch (c->step) {
	case STEP_CHECK:
		after_check(c, res);
		break;
	case STEP_SLOT:
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			snprintf(why, sizeof(why), "creating the replication slot failed: %s",
				 PQresultErrorMessage(res));
			fail(c, "change_stream_unavailable", false, why);
			return;
		}
		snprintf(sql, sizeof(sql), "START_REPLICATION SLOT \"%s\" LOGICAL 0/0 "
			 "(proto_version '1', publication_names '" PUBLICATION "')", c->slot);
		c->step = STEP_START;
		if (pgconn_command(c->conn, sql) < 0)
			return; /* on_lost ran */
		break;
	case STEP_START:
		if (PQresultStatus(res) != PGRES_COPY_BOTH) {
			snprintf(why, sizeof(why), "starting replication failed: %s",
				 PQresultErrorMessage(res));
			fail(c, "change_stream_unavailable", false, why);
			return;
		}
		c->step = STEP_STREAM;
		log_info("change stream started slot=%s publication=" PUBLICATION, c->slot);
		c->last_status = ev_now(c->loop);
		ev_timer_again(c->loop, &c->status);
		c->cb->on_started(c->ud, !c->started_once);
		c->started_once = true;
		break;
	case STEP_STREAM:
		break;
	}
}

static void on_copy(struct pgconn *pc, const char *buf, int len, void *ud)
{
	struct changes *c = ud;
	struct pgoutput_event ev;
	int rc = pgoutput_feed(c->dec, (const uint8_t *)buf, (size_t)len, &ev);

	if (rc < 0) {
		char why[160];

		snprintf(why, sizeof(why), "undecodable replication message ('%c', %d bytes): %s",
			 len > 0 ? buf[0] : '?', len, pgoutput_error_message(rc));
		fail(c, "change_stream_unavailable", false, why);
		return;
	}
	switch (ev.type) {
	case PGOUTPUT_EV_KEEPALIVE:
		if (ev.reply_requested)
			send_status(c, false);
		break;
	case PGOUTPUT_EV_BEGIN:
		c->xid = ev.xid;
		break;
	case PGOUTPUT_EV_COMMIT:
		c->commits++;
		if (ev.ntables) {
			const char *names[NAMES_MAX];
			size_t n = ev.ntables < NAMES_MAX ? ev.ntables : NAMES_MAX;

			for (size_t i = 0; i < n; i++)
				names[i] = ev.tables[i]->relname;
			log_debug("change commit xid=%lu lsn=%llX tables=%zu", (unsigned long)c->xid,
				  (unsigned long long)ev.end_lsn, ev.ntables);
			/* pgoutput's commit time counts from 2000-01-01. */
			batch_add(&c->next, c->xid, names, n,
				  ev.commit_time ? ev.commit_time + PG_EPOCH_UNIX_US : 0);
			start_check(c);
		}
		if (ev_now(c->loop) - c->last_status >= STATUS_AFTER_COMMIT)
			send_status(c, false);
		break;
	default:
		break;
	}
}

/* What the walsender says when the role lacks REPLICATION: PostgreSQL 15
 * "must be superuser or replication role to start walsender", 16+
 * "permission denied to start WAL sender". */
static bool no_replication_role(const char *error)
{
	return strstr(error, "replication role") || strstr(error, "to start WAL sender") ||
	       strstr(error, "start walsender");
}

static void on_lost(struct pgconn *pc, const char *error, int64_t next_ms, void *ud)
{
	struct changes *c = ud;
	const char *code = c->drop_code ? c->drop_code : "change_stream_unavailable";
	bool fallback = c->drop_fallback;
	char msg[400];

	ev_timer_stop(c->loop, &c->status);
	c->drop_code = NULL;
	c->drop_fallback = false;
	c->step = STEP_CHECK;
	if (no_replication_role(error)) {
		snprintf(msg, sizeof(msg), "the role lacks REPLICATION: --change-source logical needs "
			 "ALTER ROLE ... REPLICATION (%s)", error);
		error = msg;
		fallback = true;
	}
	if (fallback && c->cfg->fallback_notify) {
		log_warn("change stream unavailable: %s; falling back to the doorbell "
			 "(--change-source-fallback notify): changes ring only where "
			 "pgpush.change_source() is 'notify'", error);
		pgconn_stop(pc);
		pgconn_stop(c->vis);
		c->fell_back = true;
		c->cb->on_started(c->ud, !c->started_once);
		c->started_once = true;
		return;
	}
	log_warn("change stream unavailable: %s; next attempt in %lldms", error,
		 (long long)(next_ms - util_now_ms()));
	c->cb->on_error(c->ud, code, error, next_ms);
}

static const struct pgconn_callbacks conn_cb = {
	.on_ready = on_ready,
	.on_lost = on_lost,
	.on_result = on_result,
	.on_copy = on_copy,
};

struct changes *changes_new(struct ev_loop *loop, const struct config *cfg,
			    const struct changes_callbacks *cb, void *ud)
{
	struct changes *c;

	if (!cfg->logical)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->loop = loop;
	c->cfg = cfg;
	c->cb = cb;
	c->ud = ud;
	if (pgoutput_decoder_new(&c->dec, 0) < 0) {
		free(c);
		return NULL;
	}
	c->conn = pgconn_new(loop, cfg->db, "pgpushd-changes", NULL, NULL, &conn_cb, c);
	if (!c->conn) {
		changes_free(c);
		return NULL;
	}
	pgconn_set_replication(c->conn);
	c->vis = pgconn_new(loop, cfg->db, "pgpushd-visibility", NULL, NULL, &vis_cb, c);
	if (!c->vis) {
		changes_free(c);
		return NULL;
	}
	ev_timer_init(&c->status, on_status, 0, STATUS_INTERVAL);
	ev_timer_init(&c->recheck, on_recheck, 0, 0);
	c->status.data = c->recheck.data = c;
	pgconn_start(c->vis);
	pgconn_start(c->conn);
	return c;
}

void changes_free(struct changes *c)
{
	if (!c)
		return;
	ev_timer_stop(c->loop, &c->status);
	ev_timer_stop(c->loop, &c->recheck);
	/* Closing the connection drops the temporary slot. */
	pgconn_free(c->conn);
	pgconn_free(c->vis);
	pgoutput_decoder_free(c->dec);
	free(c);
}

bool changes_ok(const struct changes *c)
{
	return c->fell_back || pgconn_is_streaming(c->conn);
}

bool changes_fell_back(const struct changes *c)
{
	return c->fell_back;
}

uint64_t changes_commits(const struct changes *c)
{
	return c->commits;
}

uint64_t changes_confirmed_lsn(const struct changes *c)
{
	return c->confirmed;
}
