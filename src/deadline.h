/*
 * deadline: lists of deadlines that are all "now plus the same duration"
 * (the heartbeat's next ping, a pong due, the upgrade and connect
 * timeouts), on a clock of the owner's choosing: monotonic in production,
 * a fake one in unit tests. Appending keeps a list in order, so one timer
 * per list, armed for its head, serves any number of entries: adding,
 * cancelling and firing are O(1) (libev's "be smart about timeouts",
 * method 4). The list owns nothing; an entry is embedded in its owner's
 * struct and cancelled before that is freed.
 */
#ifndef PGPUSH_DEADLINE_H
#define PGPUSH_DEADLINE_H

#include <stdbool.h>

#include <ev.h>

#include "list.h"

/* Seconds on a clock that never steps (only differences matter). */
typedef double deadline_clock_fn(void *ud);

/* CLOCK_MONOTONIC. */
double deadline_monotonic(void *ud);

struct deadline;
typedef void deadline_due_fn(struct deadline *d, void *ud);

struct deadline_list {
	struct ev_loop *loop;
	deadline_clock_fn *now;
	void *now_ud;
	double duration;        /* seconds */
	struct list_node head;  /* oldest first */
	ev_timer timer;         /* fires at the head's deadline */
	deadline_due_fn *due;
	void *ud;
};

struct deadline {
	struct list_node link;
	double at;
	struct deadline_list *in;
};

void deadline_list_init(struct deadline_list *l, struct ev_loop *loop, deadline_clock_fn *now,
			void *now_ud, double duration, deadline_due_fn *due, void *ud);

/* Stops the timer (the entries stay linked; cancel them first). */
void deadline_list_stop(struct deadline_list *l);

/* Initialises an entry (not in any list). */
void deadline_init(struct deadline *d);

/* Puts d in l, due at now + l->duration (moving it from any list). */
void deadline_add(struct deadline_list *l, struct deadline *d);

/* Puts d in l, due at `at` (normally at the tail; walks back otherwise). */
void deadline_add_at(struct deadline_list *l, struct deadline *d, double at);

/* Takes d out of its list, if any. */
void deadline_cancel(struct deadline *d);

static inline bool deadline_pending(const struct deadline *d)
{
	return d->in != NULL;
}

/* Calls due for every entry whose deadline has come, oldest first, each
 * taken out of the list before; then re-arms the timer. The timer's body;
 * unit tests call it after moving their clock. */
void deadline_list_run(struct deadline_list *l);

#endif
