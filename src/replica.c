/* --query-db: the dashboard queries run on a streaming replica while the
 * listener stays on the primary. A snapshot must never be older than the
 * commit that rang for it, so the query of a recompute waits until the
 * replica has replayed the primary's WAL insert position, drawn on the
 * listener with the version (after the notification arrived, so past the
 * commit). The wait polls the query connection with a growing delay; the
 * loop never blocks, and the connection stays with its recompute. */
#include "autoconfig.h"

#include "dashboard.h"
#include "dashboard_int.h"
#include "log.h"
#include "metrics.h"
#include "pgconn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLL_FIRST 0.002        /* s: the first delay between two polls */
#define POLL_MAX 0.05           /* s: the delays double up to this */

/* Not in recovery: a primary (--query-db names the primary, or the
 * replica was promoted): what it shows is at least as new as the commit. */
const char replica_poll_sql[] =
	"SELECT pg_catalog.pg_is_in_recovery(),"
	" pg_catalog.pg_last_wal_replay_lsn() >= $1::pg_catalog.pg_lsn,"
	" pg_catalog.pg_last_wal_replay_lsn()";

/* PostgreSQL's WAL page headers: SizeOfXLogShortPHD and, on the first
 * page of a segment, SizeOfXLogLongPHD. */
#define PAGE_HEADER 24
#define SEGMENT_HEADER 40

/* The position to wait for: the end of the last record inserted. At a
 * page boundary pg_current_wal_insert_lsn() points past the header of the
 * next page, where the next record will start, while the replica's replay
 * position stops at the boundary (the end of the last record it replayed)
 * and would pass that only with the next record: a second later (the
 * readiness probe's NOTIFY), or never on an idle server. No record ends
 * inside a header, so stepping back over it waits for nothing less.
 * Writes "X/X" to out; false when insert_lsn is not an LSN. */
bool replica_wait_target(const char *insert_lsn, const char *block_size, const char *segment_size,
			 char *out, size_t outlen)
{
	unsigned long long block = block_size ? strtoull(block_size, NULL, 10) : 0;
	unsigned long long segment = segment_size ? strtoull(segment_size, NULL, 10) : 0;
	unsigned int hi, lo;
	uint64_t lsn;
	int n = -1;

	if (!insert_lsn || sscanf(insert_lsn, "%X/%X%n", &hi, &lo, &n) != 2 || n < 0 ||
	    insert_lsn[n] != '\0')
		return false;
	if (!block || (block & (block - 1)))
		block = 8192;      /* XLOG_BLCKSZ's default */
	if (!segment || (segment & (segment - 1)) || segment < block)
		segment = 16u << 20;
	lsn = (uint64_t)hi << 32 | lo;
	if (lsn % segment == SEGMENT_HEADER)
		lsn -= SEGMENT_HEADER;
	else if (lsn % block == PAGE_HEADER)
		lsn -= PAGE_HEADER;
	snprintf(out, outlen, "%X/%X", (unsigned int)(lsn >> 32), (unsigned int)lsn);
	return true;
}

static struct qconn *waiting_qconn(struct dashboard *d, const struct hub_feed *f)
{
	for (size_t i = 0; i < d->nq; i++) {
		if (d->q[i].feed == f && d->q[i].step == STEP_REPLICA)
			return &d->q[i];
	}
	return NULL;
}

/* The version draw answered (res NULL or without a version: it failed,
 * and the listener's path retries or reconnects): the query connection
 * waiting for it starts polling, or lets the recompute go. */
void replica_on_draw(struct dashboard *d, struct hub_feed *f, const PGresult *res)
{
	struct qconn *q = waiting_qconn(d, f);

	if (!q)
		return;
	if (!res || !f->have_version || PQnfields(res) < 5 || PQgetisnull(res, 0, 2) ||
	    !replica_wait_target(PQgetvalue(res, 0, 2), PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3),
				 PQgetisnull(res, 0, 4) ? NULL : PQgetvalue(res, 0, 4), q->lsn, sizeof(q->lsn))) {
		q->feed = NULL;
		q->step = STEP_IDLE;
		f->query_wait = false;
		return;
	}
	q->wait_start = ev_now(d->loop);
	q->backoff = POLL_FIRST;
	qconn_send(q);
}

static void on_poll_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct qconn *q = w->data;

	if (q->feed && q->step == STEP_REPLICA)
		qconn_send(q);
}

/* A poll answered (PGRES_TUPLES_OK). Returns 1: the replica has caught up,
 * run the query; 0: polls again later; -1: waited too long, q->err and
 * q->msg say why. */
int replica_on_poll(struct qconn *q, const PGresult *res)
{
	struct dashboard *d = q->d;
	double now = ev_now(d->loop), waited = now - q->wait_start;
	double left = d->cfg->replica_max_lag_wait - waited;
	bool ok = PQntuples(res) == 1 && PQnfields(res) == 3 && !PQgetisnull(res, 0, 0);

	if (ok && strcmp(PQgetvalue(res, 0, 0), "f") == 0) {
		q->waited = ev_time() - q->feed->started;
		q->on_primary = true;
		if (!d->primary_logged)
			log_info("--query-db is not in recovery (a primary): dashboard queries run "
				 "without waiting for replay conn=%s", pgconn_name(q->pc));
		d->primary_logged = true;
		return 1;
	}
	if (ok && !PQgetisnull(res, 0, 1) && strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
		/* From the recompute's start: the draw it waited for counts. */
		q->waited = ev_time() - q->feed->started;
		metrics_observe(&pgpush_metrics, METRIC_REPLICA_WAIT, 0, q->waited);
		log_debug("replica replayed %s after %.1fms conn=%s", q->lsn, waited * 1000.0,
			  pgconn_name(q->pc));
		return 1;
	}
	if (left <= 0) {
		metrics_inc(&pgpush_metrics, METRIC_REPLICA_LAG_TIMEOUTS, 0);
		q->err = ERR_REPLICA_LAGGING;
		snprintf(q->msg, sizeof(q->msg),
			 "the query replica has not replayed the primary's WAL up to %s within %.1fs "
			 "(--replica-max-lag-wait; replayed up to %s)", q->lsn, waited,
			 ok && !PQgetisnull(res, 0, 2) ? PQgetvalue(res, 0, 2) : "?");
		return -1;
	}
	ev_timer_set(&q->poll, q->backoff < left ? q->backoff : left, 0);
	ev_timer_start(d->loop, &q->poll);
	q->backoff = q->backoff * 2 < POLL_MAX ? q->backoff * 2 : POLL_MAX;
	return 0;
}

void replica_init(struct qconn *q)
{
	ev_timer_init(&q->poll, on_poll_timer, 0, 0);
	q->poll.data = q;
}
