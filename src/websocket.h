/*
 * websocket: RFC 6455 on a conn, after an HTTP/1 upgrade: the 101
 * (with permessage-deflate when offered as we take it), wslay reading
 * frames and answering pings and closes, compressed messages inflated with
 * the context's one inflater, the close handshake. Every byte we send goes
 * through the conn's output queue (wslay's control frames included), so
 * ordering holds and wslay never sees EAGAIN. Messages go to the conn's
 * handlers (on_message); when the close handshake begins, on_close is
 * queued (conn_tell_gone). The WebSocket state is the conn's (freed with it).
 */
#ifndef PGPUSH_WEBSOCKET_H
#define PGPUSH_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"
#include "ws.h"

/* Compression of per-client messages: from this size, at this level. */
#define WEBSOCKET_DEFLATE_MIN 1024
#define WEBSOCKET_DEFLATE_LEVEL 1

/* Checks that req is a valid WebSocket upgrade; if not, answers it (400 or
 * 426) and returns -1. */
int websocket_check(struct conn *c, const struct http_request *req)
	__attribute__((warn_unused_result));

/* Completes the opening handshake (101) and turns c into a WebSocket.
 * Bytes past head_len already read belong to the WebSocket. Returns 0, or
 * -1 after answering an error (or closing). */
int websocket_accept(struct conn *c, const struct http_request *req, size_t head_len)
	__attribute__((warn_unused_result));

/* Queues a prebuilt frame (a new reference) and tries to write it.
 * Nothing happens once the close handshake has begun. Returns 0, or -1
 * when the conn was dropped (over its caps) or is closing. */
int websocket_send(struct conn *c, struct buf *frame, bool replaceable);

/* Queues a shared-context message (a conn that negotiated
 * permessage-deflate): its frame is chosen when written (conn_push_msg).
 * Returns as websocket_send. */
int websocket_send_msg(struct conn *c, struct pmd_msg *m, bool replaceable);

/* Builds a text frame from parts (compressed when negotiated and large
 * enough) and sends it. Returns as websocket_send (-1 also when out of
 * memory, after closing). */
int websocket_send_text(struct conn *c, const struct ws_part *parts, size_t nparts);

/* Sends the text frame head + shared[off, off + len) + tail, where shared
 * is a buffer many clients hold (a snapshot's frame, whose document is
 * inside): the queue references it instead of a copy. head and tail are
 * small and copied. Compressed (and so copied) instead when negotiated
 * and large enough. Returns as websocket_send_text. */
int websocket_send_shared(struct conn *c, const char *head, size_t head_len, struct buf *shared,
			  size_t off, size_t len, const char *tail, size_t tail_len);

/* Sends a binary frame. */
int websocket_send_binary(struct conn *c, const uint8_t *data, size_t len);

/* True when the client negotiated permessage-deflate. */
bool websocket_deflate(const struct conn *c);

/* True while frames can still be sent (no close handshake begun). */
bool websocket_open(const struct conn *c);

/* Starts the close handshake with code and reason (RFC 6455 §7); the conn
 * closes once the peer answers, or after CONN_LINGER_SECS. The owner is
 * told (on_close) unless it detached first (conn_set_handlers(c, NULL,
 * NULL)). */
void websocket_close(struct conn *c, uint16_t code, const char *reason);

#endif
