#include "autoconfig.h"

#include "deadline.h"

#include <time.h>

double deadline_monotonic(void *ud)
{
	struct timespec ts;

	(void)ud;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	deadline_list_run(w->data);
}

void deadline_list_init(struct deadline_list *l, struct ev_loop *loop, deadline_clock_fn *now,
			void *now_ud, double duration, deadline_due_fn *due, void *ud)
{
	l->loop = loop;
	l->now = now;
	l->now_ud = now_ud;
	l->duration = duration;
	list_init(&l->head);
	ev_timer_init(&l->timer, on_timer, 0, 0);
	l->timer.data = l;
	l->due = due;
	l->ud = ud;
}

void deadline_list_stop(struct deadline_list *l)
{
	ev_timer_stop(l->loop, &l->timer);
}

void deadline_init(struct deadline *d)
{
	list_init(&d->link);
	d->at = 0;
	d->in = NULL;
}

/* Arms the timer for the head. A cancelled head leaves the timer as it
 * was: it fires early, finds nothing due and re-arms. */
static void arm(struct deadline_list *l)
{
	struct list_node *n = list_first(&l->head);
	double now, at;

	ev_timer_stop(l->loop, &l->timer);
	if (!n)
		return;
	at = LIST_ENTRY(n, struct deadline, link)->at;
	now = l->now(l->now_ud);
	ev_timer_set(&l->timer, at > now ? at - now : 0, 0);
	ev_timer_start(l->loop, &l->timer);
}

void deadline_add_at(struct deadline_list *l, struct deadline *d, double at)
{
	struct list_node *pos = &l->head;

	deadline_cancel(d);
	d->at = at;
	d->in = l;
	/* Nearly always the tail; walk back only if the order says so. */
	while (pos->prev != &l->head && LIST_ENTRY(pos->prev, struct deadline, link)->at > at)
		pos = pos->prev;
	list_insert_before(pos, &d->link);
	if (l->head.next == &d->link)
		arm(l);
}

void deadline_add(struct deadline_list *l, struct deadline *d)
{
	deadline_add_at(l, d, l->now(l->now_ud) + l->duration);
}

void deadline_cancel(struct deadline *d)
{
	if (!d->in)
		return;
	list_unlink(&d->link);
	d->in = NULL;
}

void deadline_list_run(struct deadline_list *l)
{
	double now = l->now(l->now_ud);
	struct list_node *n;

	while ((n = list_first(&l->head))) {
		struct deadline *d = LIST_ENTRY(n, struct deadline, link);

		if (d->at > now)
			break;
		deadline_cancel(d);
		l->due(d, l->ud);
	}
	arm(l);
}
