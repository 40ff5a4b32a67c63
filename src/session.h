/*
 * session: Engine.IO v4 sessions, their core part: the sid table, the
 * heartbeat, sending (to the WebSocket, or into the polling outbox),
 * receiving packets, and closing. The polling part (held GET, POSTs, the
 * outbox's response) is polling.c; the upgrade probe is upgrade.c; the
 * requests and the server object's lifecycle are engine.c.
 *
 * struct engine is the Engine.IO server: it owns every session (the sid
 * table), the deadline lists of the heartbeat and upgrade, and the lists of
 * deferred work (polling responses to send, closed sessions to reap). It is
 * defined here because the session core works on it; engine.c creates it.
 *
 * A session never frees itself: session_close marks it, lets go of its
 * conns (a held GET gets the close packet, a WebSocket the close
 * handshake), takes it out of the sid table and queues it; engine.c's
 * deferred work then tells the layer above (on_close) and frees it.
 * Whatever is above (Socket.IO, a plain Engine.IO application) sees only
 * struct engine_handlers and the session_send_* functions.
 */
#ifndef PGPUSH_SESSION_H
#define PGPUSH_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "deadline.h"
#include "eio.h"
#include "list.h"
#include "transport.h"
#include "util.h"
#include "ws.h"

struct pmd_msg;
struct session;
struct engine;

/* The layer above. Arguments are valid until the callback returns. */
struct engine_handlers {
	/* A new session, its open packet sent. Returns 0, or -1 to refuse it
	 * (out of memory): it is then closed. */
	int (*on_open)(void *ud, struct session *s);
	/* A message: text (the packet's data) or binary. */
	void (*on_message)(void *ud, struct session *s, const uint8_t *data, size_t len,
			   bool binary);
	/* The session is closed: runs from the deferred work, once, before the
	 * session is freed; sending does nothing any more. */
	void (*on_close)(void *ud, struct session *s, const char *reason);
};

/* Routes a request that reached a session's conn (engine_handle_request). */
typedef void engine_route_fn(struct engine *e, struct conn *c, const struct http_request *req,
			     size_t head_len, const char *body, size_t body_len);

#define ENGINE_BUCKETS 16384         /* the sid table; a power of two */
#define ENGINE_UPGRADE_TIMEOUT 10.0  /* s for a probe to complete (reference default) */
#define ENGINE_TOMB_SECS 1.0         /* how long a client-closed polling sid answers a GET with a noop */
#define ENGINE_TOMBS_MAX 1024
#define SESSION_OUTBOX_MAX 256

struct engine {
	struct conn_ctx *cx;
	const struct config *cfg;
	char path[32];                 /* "/socket.io": this path and below */
	bool polling;                  /* serve the HTTP long-polling transport */
	const struct engine_handlers *up;
	void *up_ud;
	engine_route_fn *route;
	deadline_clock_fn *now;
	void *now_ud;
	struct list_node table[ENGINE_BUCKETS];
	size_t nsessions;
	struct deadline_list hb_ping;  /* next ping due */
	struct deadline_list hb_pong;  /* pong due */
	struct deadline_list upgrade;  /* probe must complete */
	struct deadline_list tomb_dl;  /* tombstones expire */
	struct list_node flush;        /* polling output for a held GET */
	struct list_node reap;         /* closed: tell the layer above, free */
	struct list_node tombs;        /* sids a polling client closed */
	size_t ntombs;
	struct buf *ping_frame;        /* the WebSocket frame of "2", shared */
	bool shutting_down;
	unsigned long refused;         /* handshakes over --max-clients */
};

/* One packet in a polling outbox: head, then b->data[off .. off+len),
 * then tail. */
struct session_pkt {
	struct buf *b;      /* shared (a reference, never a copy of a snapshot) */
	size_t off, len;
	struct buf *head;   /* owned: written before (an ack's "43<id>["), or NULL */
	const char *tail;   /* static text written after (an ack's "]"), or NULL */
	bool binary;        /* raw bytes of a binary message */
	bool replaceable;   /* a newer replaceable packet replaces it while unsent */
};

/* The packet's length in the payload (head, range and tail). */
static inline size_t session_pkt_len(const struct session_pkt *p)
{
	return (p->head ? p->head->len : 0) + p->len + (p->tail ? strlen(p->tail) : 0);
}

struct session {
	struct engine *eng;
	char sid[UTIL_ID_LEN + 1];
	char peer[64];              /* address of the handshake request */
	unsigned long long conn_id; /* its conn's id, for the logs */
	double opened;              /* on the engine's clock */
	bool polling;               /* current transport */
	bool closed;
	const char *close_reason;   /* static text, for on_close */
	struct conn *ws;            /* the WebSocket transport, when !polling */

	struct {                    /* polling.c */
		struct conn *get;   /* a held GET */
		struct conn *post;  /* a POST still receiving its body */
		struct session_pkt *outbox;
		unsigned len, cap;
		size_t bytes;
		struct list_node flush_link;
	} poll;

	struct {                    /* upgrade.c */
		struct conn *probe; /* a WebSocket being upgraded to */
		bool probed;        /* 2probe answered: the client may send 5 */
		struct deadline timeout;
	} up;

	struct deadline hb;         /* in hb_ping or hb_pong */
	bool awaiting_pong;
	struct list_node table_link;
	struct list_node reap_link;
	void *app;                  /* the layer above's state for this session */
	char *bearer;               /* Authorization: Bearer token of the handshake, or NULL */
};

/* Creates a session with a fresh sid in e's table, its heartbeat armed.
 * Returns 0, or -1 when out of memory or randomness. */
int session_new(struct engine *e, bool polling, const char *peer, struct session **out)
	__attribute__((warn_unused_result));

/* The live session with this sid, or NULL. */
struct session *session_find(struct engine *e, const char *sid, size_t len);

/* Sends a text packet "<type><data>" (pkt includes the type digit). */
void session_send_text(struct session *s, const char *pkt, size_t len);

/* Sends a text packet given in pieces (type digit first). */
void session_send_parts(struct session *s, const struct ws_part *parts, size_t nparts);

/* Sends the text packet head + shared[off, off + len) + tail, where tail
 * is static text: the WebSocket's queue (websocket_send_shared) or the
 * polling outbox references shared instead of a copy. */
void session_send_shared(struct session *s, const char *head, size_t head_len,
			 struct buf *shared, size_t off, size_t len, const char *tail,
			 size_t tail_len);

/* Sends a binary message (a Socket.IO attachment or plain binary). */
void session_send_binary(struct session *s, const uint8_t *data, size_t len);

/* Sends a prebuilt WebSocket text frame shared by many sessions; msg (may
 * be NULL: the frame as it is) is the same payload as a shared-context
 * message, whose frame for a WebSocket that negotiated permessage-deflate
 * is chosen when written (websocket_send_msg); a polling session sends the
 * packet inside frame. replaceable: a newer replaceable frame replaces it
 * while unsent. */
void session_send_frame(struct session *s, struct buf *frame, struct pmd_msg *msg,
			bool replaceable);

/* On a WebSocket, holds what is sent next back for secs (conn_pace). */
void session_pace(struct session *s, double secs);

/* Handles one packet received on the current transport. */
void session_receive(struct session *s, enum eio_packet_type type, const char *data,
		     size_t len, bool binary);

/* Closes the session: code is the WebSocket close code (1000 normal, 1002
 * protocol error); reason must be static text (it is kept for on_close).
 * Idempotent; see the header comment. */
void session_close(struct session *s, const char *reason);
void session_close_code(struct session *s, uint16_t code, const char *reason);

/* True when the pong is overdue on the engine's clock (checked when a
 * request arrives, before a late timer has fired). */
bool session_pong_overdue(const struct session *s);

/* Answers a held GET at once with one packet (a noop or a close). */
void session_release_get(struct session *s, const char *pkt);

/* Queues the session for the polling flush (a GET is held, packets wait). */
void session_schedule_flush(struct session *s);

/* Makes c the session's WebSocket transport (handshake or upgrade). */
void session_adopt_ws(struct session *s, struct conn *c);

/* A sid whose polling client sent the close packet before its GET: the
 * GET that races it is answered with a noop, as if it had come first. */
struct session_tomb {
	char sid[UTIL_ID_LEN + 1];
	struct list_node link;   /* e->tombs */
	struct deadline expiry;  /* in e->tomb_dl */
};

/* Takes sid's tombstone: true when a polling client closed it moments ago. */
bool session_tomb_take(struct engine *e, const char *sid, size_t len);

/* Frees every tombstone. */
void session_tombs_clear(struct engine *e);

/* The deadline lists' callbacks (engine.c installs them). */
void session_tomb_due(struct deadline *d, void *ud);
void session_ping_due(struct deadline *d, void *ud);
void session_pong_due(struct deadline *d, void *ud);

/* Empties the polling outbox (its packets were sent some other way). */
void session_outbox_clear(struct session *s);

/* Frees a closed session (engine.c's deferred work). */
void session_free(struct session *s);

/* The conn handlers of a POST that counts as a session's in-flight POST,
 * and of a request left behind by a closed session: both route the
 * request through e->route when it is complete. */
extern const struct conn_handlers session_post_handlers;
extern const struct conn_handlers session_orphan_handlers;

#endif
