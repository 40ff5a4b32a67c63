/*
 * conn: one client connection, from the first byte of its HTTP request to
 * close. Owns the fd, its watchers and timers, the request buffer, the
 * wslay context (reading frames, answering pings and closes) and the output
 * queue, which holds references to shared frames and is drained with
 * writev(). The server owns every conn; a conn is never freed inside its own
 * callbacks: conn_close marks it, stops its watchers and hands it to the
 * server's reap list.
 */
#ifndef PGPUSH_CONN_H
#define PGPUSH_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <wslay/wslay.h>

#include "buf.h"
#include "util.h"

struct server;

enum conn_state {
	CONN_HTTP,     /* reading the request head */
	CONN_RESPOND,  /* writing an HTTP response, then close */
	CONN_LINGER,   /* response sent, write side shut, draining input briefly */
	CONN_WS,       /* WebSocket: Engine.IO / Socket.IO */
	CONN_CLOSED,   /* waiting to be reaped */
};

enum conn_frame_kind {
	CONN_FRAME_EVENT,    /* any frame: always delivered in order */
	CONN_FRAME_SNAPSHOT, /* a snapshot: a newer one replaces it while unsent */
};

#define CONN_OUTQ_MAX 64 /* entries; beyond it the client is not reading */

struct conn_out {
	struct buf *b;
	size_t off;
	bool snapshot;
};

struct conn {
	struct server *srv;
	int fd;
	enum conn_state state;
	char peer[64];
	ev_io rio, wio;
	ev_timer timer;   /* request timeout, then Engine.IO heartbeat */
	ev_timer ctimer;  /* Socket.IO connect timeout, then close linger */
	ev_tstamp opened;

	/* Request head; after the upgrade, bytes already read past the head
	 * are handed to wslay first (in_off .. in_len). */
	char *in;
	size_t in_len, in_off;

	struct conn_out outq[CONN_OUTQ_MAX];
	unsigned outq_head, outq_len;
	size_t out_bytes;

	wslay_event_context_ptr ws;
	size_t ws_read_budget;
	char sid[UTIL_ID_LEN + 1];
	bool awaiting_pong;
	bool sio_joined;          /* connected to the main namespace */
	unsigned attachments_due; /* binary frames still expected */
	bool closing;             /* WebSocket close sent; waiting for the peer */

	bool in_hub;
	struct conn *hub_prev, *hub_next;
	struct conn *prev, *next; /* server's list, or its reap list */
};

/* Takes ownership of fd (non-blocking) and starts reading a request. */
struct conn *conn_new(struct server *srv, int fd, const char *peer);

/* Queues a frame (taking a new reference) and tries to write it at once.
 * A client whose pending output exceeds its cap is dropped. */
void conn_send_frame(struct conn *c, struct buf *frame, enum conn_frame_kind kind);

/* Starts a WebSocket close handshake with code and reason (RFC 6455 §7). */
void conn_ws_close(struct conn *c, uint16_t code, const char *reason);

/* Closes at once: stops watchers, closes the fd, leaves the hub, hands the
 * conn to the server for freeing after this loop iteration. */
void conn_close(struct conn *c, const char *why);

/* Frees a closed conn (called by the server's reaper). */
void conn_free(struct conn *c);

#endif
