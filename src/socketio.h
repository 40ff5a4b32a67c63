/*
 * socketio: the server side of Socket.IO v5 on top of an Engine.IO engine
 * (its struct engine_handlers): per session a client (namespaces joined,
 * acks asked for, a packet waiting for its binary attachments) and per
 * namespace joined a struct socketio_socket; CONNECT / CONNECT_ERROR /
 * DISCONNECT, the connect timeout, events and acks both ways. What the
 * server does with events is the application's: a struct socketio_app of
 * callbacks (pgpushd's is hub.c, the protocol test server's in tests/).
 * socketio owns the clients and sockets; the application may hang its own
 * state on socket->app_data and must forget a socket in on_leave.
 */
#ifndef PGPUSH_SOCKETIO_H
#define PGPUSH_SOCKETIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "buf.h"
#include "deadline.h"
#include "session.h"
#include "sio.h"
#include "ws.h"

#define SOCKETIO_MAX_NSP 8      /* namespaces one session may join */
#define SOCKETIO_MAX_NSP_LEN 128
#define SOCKETIO_MAX_PARTS 15   /* body parts of one packet we send */
#define SOCKETIO_MAX_PENDING_ACKS 16
/* After a CONNECT reply on a WebSocket, what follows (the application's
 * first emit) waits this long: written at once, both usually reach the
 * client in one read, and clients that handle one message per read (the
 * official conformance suites' ws 8.5 helpers) lose the second. */
#define SOCKETIO_CONNECT_PACE 0.005

struct socketio_client;

/* One namespace joined by one session (a Socket.IO "socket"). */
struct socketio_socket {
	struct session *session;
	struct socketio_client *client;
	char *nsp;             /* NUL-terminated */
	size_t nsp_len;
	void *app_data;        /* the application's */
	void *app_group;       /* the application's too (pgpushd: the feed) */
};

/* An event as the application sees it. Raw JSON text is the client's,
 * byte for byte (validated). Valid until the callback returns. */
struct socketio_event {
	const char *name;       /* event name when a string, else NULL */
	size_t name_len;
	const char *args;       /* the arguments after the name, e.g. `1,"2"`; may be empty */
	size_t args_len;
	bool has_id;
	uint64_t id;
	struct buf *const *attachments;
	unsigned n_attachments;
};

struct socketio_app {
	/* Which namespaces exist. */
	bool (*nsp_exists)(void *ud, const char *nsp, size_t len);
	/* Optional, before the CONNECT reply: NULL admits the socket (the
	 * application may then hang its state on sock->app_data); else the
	 * refusal's code ("auth_required"...) with *message set (static or
	 * valid until the next call), and the client gets CONNECT_ERROR
	 * {"message":...,"data":{"code":...}}; sock is then freed and
	 * app_data must be left NULL. auth as for on_connect. */
	const char *(*authorize)(void *ud, struct socketio_socket *sock, const char *auth,
				 size_t auth_len, const char **message);
	/* A namespace was joined (the CONNECT reply is already sent). auth is
	 * the raw JSON object of the CONNECT packet, "{}" when absent. */
	void (*on_connect)(void *ud, struct socketio_socket *sock, const char *auth,
			   size_t auth_len);
	/* A namespace was left (DISCONNECT or the session closed); sock is
	 * freed after. */
	void (*on_leave)(void *ud, struct socketio_socket *sock);
	void (*on_event)(void *ud, struct socketio_socket *sock, const struct socketio_event *ev);
};

/* Called when a client answers an ack this server asked for; args is the
 * inside of the JSON array of the answer. */
typedef void socketio_ack_cb(void *ud, struct socketio_socket *sock,
			     const struct socketio_event *answer);

struct socketio {
	struct engine *eng;
	const struct socketio_app *app;
	void *app_ud;
	struct json_tokener *tok;   /* reused for every packet */
	struct deadline_list connect; /* CONNECT must come in time */
};

/* The handlers to give the engine, with the struct socketio as ud. */
extern const struct engine_handlers socketio_engine_handlers;

/* Initialises io on eng (whose handlers must be socketio_engine_handlers
 * with io). Returns 0, or -1 when out of memory. */
int socketio_init(struct socketio *io, struct engine *eng, const struct socketio_app *app,
		  void *app_ud) __attribute__((warn_unused_result));
void socketio_free(struct socketio *io);

/* Emits an event: the JSON array ("[\"name\",...]") given in at most
 * SOCKETIO_MAX_PARTS parts; attachments follow when n > 0 (BINARY_EVENT).
 * Returns 0, or -1 for too many parts (nothing is sent). */
int socketio_emit(struct socketio_socket *sock, const struct ws_part *array_parts,
		  size_t nparts, struct buf *const *att, unsigned n)
	__attribute__((warn_unused_result));

/* Like socketio_emit, asking the client for an ack: cb runs with its
 * answer (never, if the session closes first). Returns 0, or -1 when too
 * many acks are pending or too many parts. */
int socketio_emit_with_ack(struct socketio_socket *sock, const struct ws_part *array_parts,
			   size_t nparts, struct buf *const *att, unsigned n,
			   socketio_ack_cb *cb, void *ud) __attribute__((warn_unused_result));

/* Answers an ack request id with the JSON array given in parts. Returns 0,
 * or -1 for too many parts. */
int socketio_ack(struct socketio_socket *sock, uint64_t id, const struct ws_part *array_parts,
		 size_t nparts, struct buf *const *att, unsigned n)
	__attribute__((warn_unused_result));

/* Answers an ack request id with a one-element array whose element is the
 * JSON text shared[off, off + len) (a document inside a shared frame): the
 * client's queue references it, no copy. Returns 0, or -1 when the packet
 * cannot be written. */
int socketio_ack_shared(struct socketio_socket *sock, uint64_t id, struct buf *shared,
			size_t off, size_t len) __attribute__((warn_unused_result));

/* Disconnects sock from its namespace on the server's side: sends the
 * DISCONNECT packet, then on_leave runs and sock is freed. The session
 * stays open. */
void socketio_disconnect(struct socketio_socket *sock);

/* Finds where the first element of a validated JSON array ends: returns the
 * offset just past it, or 0 when arr is not an array with a first element
 * that is a string or a number. Exposed for tests. */
size_t socketio_first_element_end(const char *arr, size_t len);

/* The inside of a JSON array text (blanks around it allowed): sets *inner
 * and *inner_len (without the brackets). Returns false when it is not
 * "[...]". Exposed for tests. */
bool socketio_array_inner(const char *arr, size_t len, const char **inner, size_t *inner_len);

#endif
