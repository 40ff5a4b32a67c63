/*
 * conn: one client TCP connection, from the first byte of its HTTP request
 * to close: the fd, its watchers and timers, the request head and body, the
 * HTTP response, and, after an upgrade, the WebSocket: wslay reads frames
 * and answers pings and closes; every outgoing byte goes through one output
 * queue of references to shared buffers, drained with writev(). What the
 * bytes mean (Engine.IO sessions) is session's. The server owns every conn;
 * a conn is never freed inside its own callbacks: conn_close stops its
 * watchers and hands it to the server's reap list.
 */
#ifndef PGPUSH_CONN_H
#define PGPUSH_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <wslay/wslay.h>

#include "buf.h"
#include "http.h"
#include "util.h"

struct server;
struct session;

enum conn_state {
	CONN_HTTP,     /* reading a request head */
	CONN_BODY,     /* reading a request body (polling POST) */
	CONN_HELD,     /* a polling GET waiting for data */
	CONN_RESPOND,  /* writing an HTTP response, then close */
	CONN_LINGER,   /* response sent, write side shut, draining input briefly */
	CONN_WS,       /* WebSocket */
	CONN_CLOSED,   /* waiting to be reaped */
};

enum conn_frame_kind {
	CONN_FRAME_EVENT,    /* any frame: always delivered in order */
	CONN_FRAME_SNAPSHOT, /* a snapshot: a newer one replaces it while unsent */
};

#define CONN_OUTQ_MAX 64     /* entries; beyond it the client is not reading */
#define CONN_OUTQ_INITIAL 4  /* entries allocated at first */

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
	ev_timer timer;   /* request timeout */
	ev_timer ctimer;  /* close linger */
	ev_tstamp opened;

	/* Request head; after the upgrade, bytes already read past the head
	 * are handed to wslay first (in_off .. in_len). */
	char *in;
	size_t in_len, in_off;
	size_t head_len;
	bool head_only;           /* a HEAD request: no body in the response */
	char *body;
	size_t body_len, body_need;
	char *cors;               /* CORS headers for this request's responses, or NULL */
	bool origin_refused;

	struct conn_out *outq;    /* a ring of outq_cap entries, grown on demand */
	unsigned outq_head, outq_len, outq_cap;
	size_t out_bytes;

	wslay_event_context_ptr ws;
	size_t ws_read_budget;
	bool recv_failed;         /* the last wslay_event_recv ended on EOF/error */
	bool closing;             /* WebSocket close sent; waiting for the peer */
	bool deflate;             /* permessage-deflate negotiated */

	struct session *sess;     /* the Engine.IO session this conn carries */
	struct conn *prev, *next; /* server's list, or its reap list */
};

/* Takes ownership of fd (non-blocking) and starts reading a request. */
struct conn *conn_new(struct server *srv, int fd, const char *peer);

/* Writes a complete HTTP response (with the request's CORS headers) and
 * closes the connection once it is sent. body is copied. */
void conn_respond(struct conn *c, int status, const char *extra_headers,
		  const char *content_type, const void *body, size_t body_len);

/* Parks a polling GET: it stays open until conn_respond. */
void conn_hold(struct conn *c);

/* Checks that req is a valid WebSocket upgrade; if not, answers it (400 or
 * 426) and returns -1. */
int conn_check_upgrade(struct conn *c, const struct http_request *req);

/* Completes the opening handshake (101) and turns c into a WebSocket.
 * Returns 0, or -1 after answering an error. */
int conn_upgrade(struct conn *c, const struct http_request *req, size_t head_len);

/* Queues a frame (taking a new reference) and tries to write it at once.
 * A client whose pending output exceeds its cap is dropped. */
void conn_send_frame(struct conn *c, struct buf *frame, enum conn_frame_kind kind);

/* Starts a WebSocket close handshake with code and reason (RFC 6455 §7). */
void conn_ws_close(struct conn *c, uint16_t code, const char *reason);

/* Closes at once: stops watchers, closes the fd, tells its session, hands
 * the conn to the server for freeing after this loop iteration. */
void conn_close(struct conn *c, const char *why);

/* Frees a closed conn (called by the server's reaper). */
void conn_free(struct conn *c);

#endif
