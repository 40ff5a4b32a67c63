/*
 * socketio: the server side of Socket.IO v5 on top of an Engine.IO
 * session: namespaces and their CONNECT / CONNECT_ERROR / DISCONNECT, the
 * connect timeout, events and acks both ways, binary attachments (waiting
 * for them, and sending them after their packet). What the server does
 * with events is the application's: a struct socketio_app of callbacks
 * (pgpushd's is in hub.c, the protocol test server's in tests/).
 */
#ifndef PGPUSH_SOCKETIO_H
#define PGPUSH_SOCKETIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "sio.h"
#include "ws.h"

struct session;

#define SOCKETIO_MAX_NSP 8      /* namespaces one session may join */
#define SOCKETIO_MAX_NSP_LEN 128

/* An event as the application sees it. Raw JSON text is the client's,
 * byte for byte (validated). Valid until the callback returns. */
struct socketio_event {
	const char *nsp;
	size_t nsp_len;
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
	/* A namespace was joined (the CONNECT reply is already sent). auth is
	 * the raw JSON object of the CONNECT packet, "{}" when absent. */
	void (*on_connect)(void *ud, struct session *s, const char *nsp, size_t nsp_len,
			   const char *auth, size_t auth_len);
	/* A namespace was left (DISCONNECT or the session closed). */
	void (*on_leave)(void *ud, struct session *s, const char *nsp, size_t nsp_len);
	void (*on_event)(void *ud, struct session *s, const struct socketio_event *ev);
	/* Plain Engine.IO sessions: every message (may be NULL). */
	void (*on_engine_message)(void *ud, struct session *s, const uint8_t *data,
				  size_t len, bool binary);
};

/* Called when a client answers an ack this server asked for; args is the
 * raw JSON array of the answer. */
typedef void socketio_ack_cb(void *ud, struct session *s, const struct socketio_event *answer);

#define SOCKETIO_MAX_PENDING_ACKS 16

struct socketio_pending_ack {
	uint64_t id;
	socketio_ack_cb *cb;
	void *ud;
};

struct socketio_state {
	uint64_t next_ack_id;
	unsigned n_acks;
	struct socketio_pending_ack *acks; /* allocated at the first ack asked */
	unsigned n_nsp;
	char *nsp[SOCKETIO_MAX_NSP];
	bool ever_joined;
	/* A BINARY_EVENT / BINARY_ACK waiting for its attachments. */
	char *pending;          /* its text */
	size_t pending_len;
	unsigned att_due;
	unsigned att_have;
	struct buf *att[SIO_MAX_ATTACHMENTS];
};

/* Session hooks. */
void socketio_on_text(struct session *s, const char *data, size_t len);
void socketio_on_binary(struct session *s, const uint8_t *data, size_t len);
void socketio_on_close(struct session *s);
bool socketio_joined_any(const struct session *s);

/* Emits an event: args_json is the whole JSON array ("[\"name\",...]")
 * given in parts; attachments follow when n > 0 (BINARY_EVENT). */
void socketio_emit(struct session *s, const char *nsp, size_t nsp_len,
		   const struct ws_part *array_parts, size_t nparts,
		   struct buf *const *att, unsigned n);

/* Like socketio_emit, asking the client for an ack: cb runs with its
 * answer (never, if the session closes first). Returns 0, or -1 when too
 * many acks are pending. */
int socketio_emit_with_ack(struct session *s, const char *nsp, size_t nsp_len,
			   const struct ws_part *array_parts, size_t nparts,
			   struct buf *const *att, unsigned n,
			   socketio_ack_cb *cb, void *ud);

/* Answers an ack request id with the JSON array given in parts. */
void socketio_ack(struct session *s, const char *nsp, size_t nsp_len, uint64_t id,
		  const struct ws_part *array_parts, size_t nparts,
		  struct buf *const *att, unsigned n);

/* Finds where the first element of a validated JSON array ends: returns the
 * offset just past it, or 0 when arr is not an array with a first element
 * that is a string or a number. Exposed for tests. */
size_t socketio_first_element_end(const char *arr, size_t len);

#endif
