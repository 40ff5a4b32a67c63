/* Which feed recomputes when: requests coalesce per feed until the loop is
 * about to block, run on idle query connections, the longest waiting first,
 * at most one per --min-refresh-interval per feed; the fallback timer. */
#include "autoconfig.h"

#include "dashboard.h"
#include "dashboard_int.h"
#include "log.h"
#include "pgconn.h"

#include <stdio.h>
#include <string.h>

#define TABLES_MAX 256          /* bytes of coalesced table names */

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

static void start(struct dashboard *d, struct qconn *q, struct hub_feed *f, double now)
{
	f->started_once = true;
	f->last_start = now;
	dashboard_format_reason(f->pending, f->pending_tables, f->running_reason,
				sizeof(f->running_reason));
	f->running_bits = f->pending;
	f->running_change_us = f->pending_change_us;
	f->pending_change_us = 0;
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
	/* On a replica the query waits for the draw's WAL position. */
	q->lsn[0] = '\0';
	q->waited = 0;
	if (d->replica && !q->on_primary)
		q->step = STEP_REPLICA;
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
			if (!f->pending || f->busy || (!f->count && !f->permanent && !f->remote))
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

	/* Only the cluster's leader recomputes; followers fetch what it
	 * stores (cluster.c). */
	if (!pgconn_is_ready(d->listener) || !d->leader || (d->changes && !changes_ok(d->changes)))
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
void schedule_request(struct dashboard *d, struct hub_feed *f, unsigned bits, const char *table)
{
	f->pending |= bits;
	if (d->change_us && (!f->pending_change_us || d->change_us < f->pending_change_us))
		f->pending_change_us = d->change_us;
	if (table)
		add_table(f->pending_tables, table);
	ev_prepare_start(d->loop, &d->kick);
}

void schedule_request_dashboard(struct dashboard *d, struct hub_dashboard *db, unsigned bits,
			      const char *table)
{
	struct hub_feed *f;

	HUB_FOR_EACH_FEED(db, f)
		schedule_request(d, f, bits, table);
}

void schedule_request_all(struct dashboard *d, unsigned bits)
{
	struct hub_dashboard *db;

	HUB_FOR_EACH_DASHBOARD(d->hub, db)
		schedule_request_dashboard(d, db, bits, NULL);
}

void schedule_on_kick(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct dashboard *d = w->data;

	ev_prepare_stop(loop, w);
	run_pending(d);
}

void schedule_feed_wake(void *ud, struct hub_feed *f)
{
	struct dashboard *d = ud;

	if (!f->snap && !f->busy)
		f->pending |= DASHBOARD_REASON_STARTUP;
	ev_prepare_start(d->loop, &d->kick);
}

void schedule_on_refresh(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dashboard *d = w->data;
	double now = mono_now();
	struct hub_dashboard *db;
	struct hub_feed *f;

	/* The fallback: feeds nothing rang for during the interval. */
	HUB_FOR_EACH_DASHBOARD(d->hub, db) {
		HUB_FOR_EACH_FEED(db, f) {
			if (now - f->last_start >= d->cfg->refresh_interval * 0.99)
				schedule_request(d, f, DASHBOARD_REASON_TIMER, NULL);
		}
	}
}

void schedule_on_sched(struct ev_loop *loop, ev_timer *w, int revents)
{
	run_pending(w->data);
}
