/*
 * transport: one client connection as a byte pipe: the descriptor (or, in
 * unit tests, a fake, through struct conn_io), its watchers and two timers,
 * and one output queue of references to shared buffers, drained with
 * writev(). What the bytes mean is a protocol's (struct conn_proto: http1,
 * then perhaps websocket); what the requests and messages mean is the
 * owner's (struct conn_handlers + owner, installed by whoever holds the
 * conn: the server's router when it accepts, an Engine.IO session when it
 * adopts one). The transport never names the server or a session.
 *
 * Ownership: a struct conn_ctx owns every conn of a server. Teardown is
 * deferred (Redis CLOSE_ASAP): conn_close only stops the watchers, closes
 * the descriptor and queues the conn; the owner's on_close runs later, from
 * the context's reaper (an ev_prepare watcher, before the loop blocks),
 * never inside another call on the conn; then the conn is freed.
 */
#ifndef PGPUSH_TRANSPORT_H
#define PGPUSH_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <ev.h>

#include "buf.h"
#include "config.h"
#include "http.h"
#include "list.h"
#include "pmd.h"

struct conn;
struct pmd_inflater;
struct pmd_msg;
struct wslay_event_context;

enum conn_state {
	CONN_HTTP,     /* reading a request head */
	CONN_BODY,     /* reading a request body (polling POST) */
	CONN_HELD,     /* a polling GET waiting for data */
	CONN_RESPOND,  /* writing an HTTP response, then close */
	CONN_LINGER,   /* response sent, write side shut, draining input briefly */
	CONN_WS,       /* WebSocket */
	CONN_CLOSED,   /* waiting to be reaped */
};

/* What happens on a connection, as its owner sees it. Any may be NULL.
 * Arguments are valid until the callback returns. */
struct conn_handlers {
	/* HTTP/1: a head announcing a body, before the body is read. Returns
	 * -1 after answering the request (the body is then not read). */
	int (*on_body_start)(struct conn *c, const struct http_request *req);
	/* HTTP/1: a complete request. */
	void (*on_request)(struct conn *c, const struct http_request *req, size_t head_len,
			   const char *body, size_t body_len);
	/* WebSocket: one complete message. */
	void (*on_message)(struct conn *c, bool binary, const uint8_t *data, size_t len);
	/* No more input will come: the conn was closed, or its WebSocket is
	 * closing. Runs once, from the reaper; the handlers are cleared after. */
	void (*on_close)(struct conn *c);
};

/* The I/O under a conn (Redis's ConnectionType): a socket in production,
 * a fake in the unit tests. read and writev return like recv/writev. */
struct conn_io {
	ssize_t (*read)(struct conn *c, void *buf, size_t len);
	ssize_t (*writev)(struct conn *c, const struct iovec *iov, int n);
	/* Optional: output the io holds below the queue (TLS records). Called
	 * when the queue is empty: 0 all written, 1 waits for writability,
	 * -1 an error. */
	int (*flush)(struct conn *c);
	void (*shutdown_write)(struct conn *c);
	void (*close)(struct conn *c);
	bool evented;  /* the descriptor is watched by the loop */
};

/* The socket I/O. */
extern const struct conn_io conn_socket_io;

/* What the protocol on the bytes does (http1, websocket). */
struct conn_proto {
	void (*readable)(struct conn *c);
	void (*drained)(struct conn *c);  /* the output queue emptied */
	void (*timeout)(struct conn *c);  /* the request timer fired */
	void (*free)(struct conn *c);     /* frees the protocol's state */
};

/* A body the transport pulls in chunks as the peer takes them (a static
 * file), so that a client holds one chunk, not the whole body. next returns
 * a new buf of 1 to max bytes (one reference, given to the transport) and
 * sets *end after the last; NULL on error (the conn is then closed). done
 * releases ud: called once, at the end or when the conn closes. */
struct conn_source {
	struct buf *(*next)(void *ud, size_t max, bool *end);
	void (*done)(void *ud);
};

#define CONN_SOURCE_CHUNK (64u << 10) /* bytes pulled at a time */

/* Shared by all conns of a server. */
struct conn_ctx {
	struct ev_loop *loop;
	const struct config *cfg;
	struct list_node live;    /* open conns */
	size_t nconns;
	unsigned long long next_id; /* the last conn id given */
	struct conn *gone;        /* owners to tell (on_close), through gone_next */
	struct list_node closing; /* closed, to free */
	ev_prepare reaper;
	/* Deferred work of the layers above (flushing, reaping sessions):
	 * returns true when it did some; run until nothing is left. */
	bool (*deferred)(void *ud);
	void *deferred_ud;
	struct pmd_inflater *inflater; /* shared: no client context takeover */
	/* The sum of every open conn's out_bytes: kept by the same additions
	 * and subtractions as out_bytes. Over --max-total-pending-bytes, the
	 * reaper drops the conns with the most until it is under again. */
	size_t out_total;
	unsigned long long budget_drops; /* conns dropped for it */
};

#define CONN_OUTQ_MAX 256    /* entries (an ack is 3); beyond it the client is not reading */
#define CONN_OUTQ_INITIAL 4  /* entries allocated at first */
#define CONN_LINGER_SECS 1.0 /* wait for the peer after closing */

/* 32 bytes: a client's queue is CONN_OUTQ_INITIAL of them at rest. */
struct conn_out {
	struct buf *b;
	/* Not NULL: a shared-context message not bound yet (conn_push_msg). b is
	 * then its plain frame; the frame to write is chosen when the entry goes
	 * into writev (pmd_msg_bind), and from then on the entry is no longer
	 * replaceable: the client's window record already counts it. */
	struct pmd_msg *m;
	uint32_t off;       /* how far b is sent; a replaceable entry starts at 0 */
	uint32_t end;       /* where the bytes to send end */
	bool replaceable;   /* a newer replaceable entry replaces it while unsent */
};

/* The WebSocket's state (websocket.c's), kept in the conn to spare every
 * client an allocation. */
struct conn_websocket {
	struct wslay_event_context *ctx; /* NULL before the upgrade */
	size_t read_budget;
	bool recv_failed;         /* the last wslay_event_recv ended on EOF/error */
	bool closing;             /* close sent (or being sent); waiting for the peer */
	bool deflate;             /* permessage-deflate negotiated */
	/* What the client's inflate window ends with, as of the last frame
	 * committed to the output (docs/design.md, "Shared-context
	 * compression"). Only pmd_msg_bind changes it, from conn_flush. */
	struct pmd_window win;
};

struct conn {
	struct conn_ctx *ctx;
	const struct conn_io *io;
	const struct conn_proto *proto;
	const struct conn_handlers *h;
	void *owner;              /* the handlers' object */
	int fd;
	void *io_data;            /* the io's own state (tls), or NULL */
	enum conn_state state;
	char peer[64];            /* the client: the socket's peer, or X-Forwarded-For's */
	char sock_peer[64];       /* the socket's peer (a trusted proxy's, when it differs) */
	unsigned long long id;    /* connection id for the logs, from 1 */
	ev_io rio, wio;
	ev_timer timer;           /* request timeout (the protocol's); later the send
				   * timeout, or the end of a conn_pace */
	ev_timer ctimer;          /* close linger */
	bool paced;               /* output waits for timer (conn_pace) */
	bool stalled;             /* output waits for the peer: timer is the send timeout */
	ev_tstamp opened;

	/* HTTP/1 request; after the upgrade, bytes already read past the head
	 * are handed to the WebSocket first (in_off .. in_len). */
	char *in;
	size_t in_len, in_off;
	bool head_only;           /* a HEAD request: no body in the response */
	char *body;
	size_t body_len, body_need;
	char *cors;               /* CORS headers for this request's responses, or NULL */
	bool origin_refused;

	struct conn_out *outq;    /* a ring of outq_cap entries, grown on demand */
	unsigned outq_head, outq_len, outq_cap;
	size_t out_bytes;

	union {
		struct conn_websocket ws;  /* after the upgrade (is_websocket) */
		struct {                   /* a body being pulled (conn_stream) */
			const struct conn_source *src;
			void *ud;
		} stream;
	};
	bool is_websocket;
	bool told;                /* on_close has run (or was queued) */
	struct list_node link;    /* ctx->live or ctx->closing */
	struct conn *gone_next;   /* ctx->gone */
};

/* Initialises ctx; cfg must outlive it. */
void conn_ctx_init(struct conn_ctx *ctx, struct ev_loop *loop, const struct config *cfg);

/* Closes every conn and runs the reaper until nothing is left. */
void conn_ctx_free(struct conn_ctx *ctx);

/* Makes the reaper run before the loop blocks. */
void conn_ctx_defer(struct conn_ctx *ctx);

/* Runs the reaper now (the ev_prepare watcher's body; unit tests call it). */
void conn_ctx_run(struct conn_ctx *ctx);

/* Takes ownership of fd (non-blocking; -1 with a fake io). The caller
 * installs a protocol (http1_start) and handlers. NULL when out of memory. */
struct conn *conn_new(struct conn_ctx *ctx, int fd, const char *peer, const struct conn_io *io);

/* Installs the handler table and its owner (NULL, NULL: nobody listens). */
void conn_set_handlers(struct conn *c, const struct conn_handlers *h, void *owner);

/* Queues a reference to b; replaceable: a newer replaceable entry may
 * replace it while it is unsent (latest wins). Returns 0, or -1 when the
 * client is over its caps (--max-pending-bytes, CONN_OUTQ_MAX): the conn
 * is then closed. When all clients' unsent bytes together go over
 * --max-total-pending-bytes, the next run of the reaper (once every conn
 * of this turn of the loop has written what it could) drops the clients
 * with the largest backlog first until they are under it again. A shared
 * buffer counts once per conn that holds it, as out_bytes does. */
int conn_push(struct conn *c, struct buf *b, bool replaceable);

/* conn_push of a shared-context message (a WebSocket that negotiated
 * permessage-deflate): which frame goes out (plain, self-contained or a
 * group frame) is decided when it is written, in queue order, so that the
 * window record follows exactly what the client inflates. A bound entry is
 * no longer replaceable. Returns like conn_push. */
int conn_push_msg(struct conn *c, struct pmd_msg *m, bool replaceable);

/* conn_push of the bytes [off, off + len) of b only (a document inside a
 * shared frame); never replaceable. */
int conn_push_range(struct conn *c, struct buf *b, size_t off, size_t len);

/* Writes what the kernel takes now; waits for writability for the rest.
 * Calls the protocol's drained when the queue empties. While output waits
 * for the peer, the send timeout runs (--send-timeout, re-armed whenever
 * the peer takes a byte): when it fires, the conn is closed. */
void conn_flush(struct conn *c);

/* conn_push, then conn_flush unless a write is already waiting. */
int conn_send(struct conn *c, struct buf *b, bool replaceable);

/* Holds output back for secs: what is queued meanwhile is written when
 * they are over, so that what was written before reaches the peer in a
 * read of its own (see socketio's connect sequence). It runs on the
 * request timer: only once the request is over (a WebSocket). */
void conn_pace(struct conn *c, double secs);

/* After what is queued, sends the body src produces, pulling a chunk
 * whenever the queue is empty (HTTP/1 only: not on a WebSocket). ud is
 * the source's until its done. Returns 0, or -1 (done was called). */
int conn_stream(struct conn *c, const struct conn_source *src, void *ud);

/* Closes at once: stops watchers, closes the descriptor, queues the conn
 * for the reaper, which tells the owner and frees it. Idempotent. */
void conn_close(struct conn *c, const char *why);

/* Queues on_close without closing (a WebSocket whose close handshake has
 * begun: no more messages will come). Idempotent. */
void conn_tell_gone(struct conn *c);

static inline bool conn_is_closed(const struct conn *c)
{
	return c->state == CONN_CLOSED;
}

/* Shuts our side, then reads and discards what the peer still sends for
 * CONN_LINGER_SECS, so that unread input does not make the kernel reset
 * the connection and destroy what we sent last. */
void conn_linger(struct conn *c);

/* Starts the close timer (linger or close handshake): closes after secs. */
void conn_close_after(struct conn *c, double secs);

/* Runs the protocol's read handler as if the descriptor were readable. */
void conn_readable(struct conn *c);

/* Reads with the conn's io; -1 with errno as recv. */
static inline ssize_t conn_read(struct conn *c, void *buf, size_t len)
{
	return c->io->read(c, buf, len);
}

/* Reads and discards; closes on EOF or error (and, unless lingering, on
 * any byte: a held request may send none). */
void conn_drain(struct conn *c, const char *why);

#endif
