/*
 * session: Engine.IO v4 sessions. A session outlives the HTTP requests of
 * the polling transport and moves to a WebSocket on upgrade, so it is its
 * own object: the sid, the current transport (a WebSocket conn, or a held
 * polling GET plus an outbox), the heartbeat, the upgrade probe, and the
 * Socket.IO state on top. Sessions are found by sid in the server's table.
 * The server owns every session; session_close marks it and hands it to the
 * server, which frees it after the loop iteration.
 */
#ifndef PGPUSH_SESSION_H
#define PGPUSH_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "buf.h"
#include "eio.h"
#include "http.h"
#include "socketio.h"
#include "util.h"

struct conn;
struct server;

enum session_kind {
	SESSION_SOCKETIO, /* /socket.io/: Socket.IO on top */
	SESSION_ENGINEIO, /* plain Engine.IO (the test server's /engine.io/) */
};

struct session_pkt {
	struct buf *b;    /* shared; the packet is b->data[off .. off+len) */
	size_t off, len;
	bool binary;      /* raw bytes of a binary message */
	bool snapshot;    /* latest wins while unsent */
};

#define SESSION_OUTBOX_MAX 256

struct session {
	struct server *srv;
	char sid[UTIL_ID_LEN + 1];
	char peer[64];           /* address of the handshake request */
	ev_tstamp opened;
	enum session_kind kind;
	bool polling;            /* current transport */
	struct conn *ws;         /* the WebSocket transport, when !polling */
	struct conn *probe;      /* a WebSocket being upgraded to */
	bool probed;             /* 2probe answered: the client may send 5 */
	struct conn *get;        /* a held polling GET */
	struct conn *post;       /* a polling POST still receiving its body */
	struct session_pkt *outbox; /* polling only: grown on demand */
	unsigned out_len, out_cap;
	size_t out_bytes;
	bool closed;

	struct hb_list *hb_list; /* the heartbeat list it waits in */
	struct session *hb_prev, *hb_next;
	ev_tstamp hb_deadline;   /* next ping due, or pong due */
	bool awaiting_pong;
	ev_timer upgrade_timer;  /* upgrade timeout; 100 ms noop ticks */
	ev_tstamp upgrade_deadline;
	ev_timer ctimer;         /* Socket.IO: CONNECT must come in time */

	struct socketio_state sio;

	bool in_hub;
	struct session *hub_prev, *hub_next;
	struct session *hnext;   /* sid table chain */
	struct session *flush_next;
	bool flush_queued;
	struct session *reap_next;
};

/* Routes one request on an Engine.IO path (kind says which). Answers it,
 * holds it (a polling GET), or turns the conn into a WebSocket. body is the
 * POST body (NULL otherwise). */
void session_handle_request(struct server *srv, struct conn *c, enum session_kind kind,
			    const struct http_request *req, size_t head_len,
			    const char *body, size_t body_len);

/* Sends a text packet "<type><data>" (pkt includes the type digit). */
void session_send_text(struct session *s, const char *pkt, size_t len);

/* Sends a text packet given in pieces (type digit first). */
void session_send_parts(struct session *s, const struct ws_part *parts, size_t nparts);

/* Sends a binary message (a Socket.IO attachment or plain binary). */
void session_send_binary(struct session *s, const uint8_t *data, size_t len);

/* Sends a prebuilt WebSocket text frame shared by many sessions (a
 * snapshot); polling sessions send the packet inside it. */
void session_send_frame(struct session *s, struct buf *frame, bool snapshot);

/* Sends a snapshot: its compressed frame to a WebSocket that negotiated
 * permessage-deflate, else its plain frame (or, polling, the packet in it). */
struct snapshot;
void session_send_snapshot(struct session *s, struct snapshot *snap);

/* Compression of per-client messages: from this size, at this level. */
#define SESSION_DEFLATE_MIN 1024
#define SESSION_DEFLATE_LEVEL 1

/* Closes the session: its transports, its namespaces. Idempotent. A
 * WebSocket transport is closed with code (1000 normal, 1002 protocol
 * error); session_close uses 1000. */
void session_close(struct session *s, const char *reason);
void session_close_code(struct session *s, uint16_t code, const char *reason);

/* Called by conn when a POST head arrives, before its body: a second POST
 * to a session still receiving one is refused (400) and closes the session,
 * as the reference server does. Returns -1 when it answered. */
int session_post_begin(struct server *srv, struct conn *c, const struct http_request *req);

/* Called by conn when a conn that belongs to s goes away. */
void session_conn_gone(struct session *s, struct conn *c);

/* Called by conn for each complete WebSocket message of s. */
void session_ws_message(struct session *s, struct conn *c, bool binary,
			const uint8_t *data, size_t len);

/* Server hooks: the heartbeat lists' timers. */
void session_hb_init(struct server *srv);
void session_hb_stop(struct server *srv);

/* Server hooks: write the polling responses queued this iteration; free. */
void session_flush(struct session *s);
void session_free(struct session *s);

#endif
