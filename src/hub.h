/*
 * hub: pgpushd's Socket.IO application. The members (the sockets that
 * joined the main namespace), the current snapshot and the current error.
 * Publishing a snapshot sends one shared frame to every member; a socket
 * that joins gets the current state at once; requestDashboardData is
 * answered from the cache. The hub holds a reference to the current
 * snapshot and error frame, and owns the array of members (a socket's
 * app_data is its index there); it borrows the sockets, which leave
 * (on_leave) before socketio frees them.
 */
#ifndef PGPUSH_HUB_H
#define PGPUSH_HUB_H

#include <stddef.h>

#include "buf.h"
#include "deadline.h"
#include "snapshot.h"
#include "socketio.h"

/* requestDashboardData per socket: a bucket of HUB_REQUEST_BURST
 * requests, refilled at HUB_REQUEST_RATE a second; beyond it a request is
 * ignored (no answer, no ack), so that one client cannot make the daemon
 * write for it as fast as it can ask. */
#define HUB_REQUEST_RATE 20.0
#define HUB_REQUEST_BURST 100.0

/* One member: 24 bytes in one array for all, no allocation of its own. */
struct hub_member {
	struct socketio_socket *sock;
	double tokens;            /* requests it may still make now */
	double at;                /* when tokens was counted */
};

struct hub {
	struct hub_member *members; /* count of cap; the order changes on leave */
	size_t cap;
	deadline_clock_fn *now;   /* for the request rate; monotonic by default */
	void *now_ud;
	size_t count;
	struct snapshot *snap;    /* current, or NULL before the first */
	size_t snap_doc_off;      /* hub_doc_offset(snap), found once */
	struct buf *error_frame;  /* 42["dashboardDataError",...] while in error */
	char *error_json;         /* its payload, for acks */
	unsigned long limited;    /* requests ignored over the rate */
};

/* The callbacks for server_options.app, with the hub as ud. */
extern const struct socketio_app hub_app;

void hub_init(struct hub *h);
void hub_free(struct hub *h);

/* Makes s current (taking a new reference) and sends it to every member. */
void hub_publish(struct hub *h, struct snapshot *s);

/* Sets (json != NULL) or clears (json == NULL) the error state; a new error
 * is sent to every member. Returns 0 or -1 when out of memory. */
int hub_set_error(struct hub *h, const char *json);

/* Where s's document lies inside its plain frame (acks reference it), or
 * 0 when it is not there byte for byte. */
size_t hub_doc_offset(const struct snapshot *s);

#endif
