/* The query connections: one audience's recompute at a time on each, its
 * statements as steps (BEGIN READ ONLY, the role and claims, the query,
 * COMMIT or ROLLBACK), its errors kept for the log and /healthz. */
#include "autoconfig.h"

#include "dashboard.h"
#include "dashboard_int.h"
#include "log.h"
#include "metrics.h"
#include "pgconn.h"

#include <stdio.h>
#include <string.h>

/* Runs as the audience: set_config('role', ..., true) is SET LOCAL ROLE
 * with the role as a parameter (no quoting to get wrong); the claims are
 * the audience's projection, what PostgREST's request.jwt.claims holds. */
static const char setup_params_sql[] =
	"SELECT pg_catalog.set_config('role', $1, true),"
	" pg_catalog.set_config('request.jwt.claims', $2, true)";

/* ---- the query connections ---- */

void qconn_send(struct qconn *q)
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
	case STEP_REPLICA:
		if (!q->lsn[0])
			return; /* the version draw brings it */
		params[0] = q->lsn;
		rc = pgconn_query_params(q->pc, replica_poll_sql, 1, params);
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
			dashboard_drop_doc(f);
			dashboard_feed_done(q->d, f);
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
		dashboard_drop_doc(f);
		hub_feed_evict(d->hub, f, "{\"message\":\"the role cannot be used\","
					  "\"code\":\"role_invalid\"}");
	} else if (q->err >= 0) {
		dashboard_drop_doc(f);
		dashboard_query_failed(d, f, q->err, q->msg);
	}
	dashboard_feed_done(d, f);
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
		dashboard_drop_doc(f);
		dashboard_feed_done(q->d, f);
		return;
	}
	st = PQresultStatus(res);
	if (q->step == STEP_ROLLBACK) {
		qconn_finish(q);
		return;
	}
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		keep_pg_error(q, res);
		if (q->step == STEP_PLAIN || q->step == STEP_COMMIT || q->step == STEP_REPLICA) {
			qconn_finish(q);
		} else {
			q->step = STEP_ROLLBACK;
			qconn_send(q);
		}
		return;
	}
	if (q->step == STEP_REPLICA) {
		int r = replica_on_poll(q, res);

		if (r < 0) {
			qconn_finish(q);
		} else if (r > 0) {
			q->step = f->role ? STEP_BEGIN : STEP_PLAIN;
			qconn_send(q);
		}
		return;
	}
	if (q->step == STEP_PLAIN || q->step == STEP_QUERY) {
		metrics_observe(&pgpush_metrics, METRIC_QUERY_DURATION, 0, ev_time() - f->started - q->waited);
		if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQgetisnull(res, 0, 0)) {
			q->err = ERR_BAD_RESULT;
			snprintf(q->msg, sizeof(q->msg),
				 "the dashboard query must return one row with one non-null column");
		} else {
			(void)dashboard_keep_doc(q->d, q, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
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

static void on_qconn_result(struct pgconn *pc, const PGresult *res, void *ud)
{
	on_query_result(ud, res);
}

static void on_qconn_ready(struct pgconn *pc, void *ud)
{
	struct qconn *q = ud;

	log_info("database connected conn=%s", pgconn_name(pc));
	q->on_primary = false; /* --query-db may lead elsewhere now */
	ev_prepare_start(q->d->loop, &q->d->kick);
}

static void on_qconn_lost(struct pgconn *pc, const char *error, int64_t next_ms, void *ud)
{
	struct qconn *q = ud;

	metrics_inc(&pgpush_metrics, METRIC_DB_RECONNECTS, METRICS_DB_QUERY);
	listener_lost(q->d, pc, error, next_ms);
}

const struct pgconn_callbacks qconn_callbacks = {
	.on_ready = on_qconn_ready,
	.on_lost = on_qconn_lost,
	.on_result = on_qconn_result,
};
