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
	case PGOUTPUT_EV_COMMIT:
		c->commits++;
		if (ev.ntables) {
			const char *names[NAMES_MAX];
			size_t n = ev.ntables < NAMES_MAX ? ev.ntables : NAMES_MAX;

			for (size_t i = 0; i < n; i++)
				names[i] = ev.tables[i]->relname;
			log_debug("change commit lsn=%llX tables=%zu", (unsigned long long)ev.end_lsn,
				  ev.ntables);
			c->cb->on_tables(c->ud, names, n);
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
	ev_timer_init(&c->status, on_status, 0, STATUS_INTERVAL);
	c->status.data = c;
	pgconn_start(c->conn);
	return c;
}

void changes_free(struct changes *c)
{
	if (!c)
		return;
	ev_timer_stop(c->loop, &c->status);
	/* Closing the connection drops the temporary slot. */
	pgconn_free(c->conn);
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
