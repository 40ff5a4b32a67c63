/*
 * hub: the set of dashboard sockets (clients that joined the main
 * namespace), the current snapshot and the current error. Publishing a
 * snapshot queues one shared frame on every member; a member that joins gets
 * the current state at once. The hub holds a reference to the current
 * snapshot and error frame; it borrows the conns (a conn leaves before it
 * is freed).
 */
#ifndef PGPUSH_HUB_H
#define PGPUSH_HUB_H

#include <stddef.h>

#include "buf.h"
#include "snapshot.h"

struct conn;

struct hub {
	struct conn *head;     /* members, linked through conn->hub_next/prev */
	size_t count;
	struct snapshot *snap; /* current, or NULL before the first */
	struct buf *error_frame; /* 42["dashboardDataError",...] while in error */
	char *error_json;      /* its payload, for acks */
};

void hub_init(struct hub *h);
void hub_free(struct hub *h);

/* Adds c and sends it the current snapshot and error, if any. */
void hub_join(struct hub *h, struct conn *c);
void hub_leave(struct hub *h, struct conn *c);

/* Makes s current (taking a new reference) and sends it to every member. */
void hub_publish(struct hub *h, struct snapshot *s);

/* Sets (json != NULL) or clears (json == NULL) the error state; a new error
 * is sent to every member. Returns 0 or -1 when out of memory. */
int hub_set_error(struct hub *h, const char *json);

#endif
