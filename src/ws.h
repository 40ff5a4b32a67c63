/*
 * ws: the RFC 6455 parts pgpush writes itself. The opening handshake is
 * checked here (the HTTP parsing is http's) and the accept key computed with
 * libcrypto; server frames are built here, once, into shared buffers. wslay
 * parses what clients send (see websocket.c).
 */
#ifndef PGPUSH_WS_H
#define PGPUSH_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"

#define WS_ACCEPT_LEN 28
#define WS_MAX_FRAME_HEADER 10 /* server frames are never masked */

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
};

enum ws_handshake_result {
	WS_HS_OK = 0,
	WS_HS_NOT_UPGRADE = -1,   /* no "Upgrade: websocket": not a WebSocket request */
	WS_HS_BAD_METHOD = -2,    /* not GET, or not HTTP/1.1 */
	WS_HS_BAD_VERSION = -3,   /* Sec-WebSocket-Version is not 13: answer 426 */
	WS_HS_BAD_KEY = -4,       /* missing key, or not 16 bytes in base64 */
	WS_HS_BAD_CONNECTION = -5,/* Connection header lacks "upgrade" */
};

/* Checks an upgrade request (RFC 6455 §4.2.1). On WS_HS_OK, *key points to
 * the Sec-WebSocket-Key value inside req. */
enum ws_handshake_result ws_check_upgrade(const struct http_request *req,
					  const char **key, size_t *key_len);

/* Sec-WebSocket-Accept for key: base64(SHA-1(key + GUID)), NUL-terminated.
 * Returns 0, or -1 when libcrypto fails. */
int ws_accept_key(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1])
	__attribute__((warn_unused_result));

/* Writes the header of an unmasked, final server frame of payload_len bytes
 * and returns its length (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[WS_MAX_FRAME_HEADER], enum ws_opcode op,
		       bool rsv1, uint64_t payload_len);

struct ws_part {
	const void *data;
	size_t len;
};

/* Builds one complete server frame whose payload is the concatenation of
 * parts into a new buf (one reference, owned by the caller). NULL on OOM. */
struct buf *ws_frame_build(enum ws_opcode op, const struct ws_part *parts, size_t nparts);

/* Convenience for a single payload. */
struct buf *ws_frame(enum ws_opcode op, const void *payload, size_t len);

#endif
