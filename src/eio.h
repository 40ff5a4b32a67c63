/*
 * eio: Engine.IO protocol v4 codec (sans-I/O). Packet types, the open
 * packet, request validation with the reference server's error codes.
 * The heartbeat and transports are driven by session, polling and upgrade.
 */
#ifndef PGPUSH_EIO_H
#define PGPUSH_EIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

enum eio_packet_type {
	EIO_OPEN = 0,
	EIO_CLOSE = 1,
	EIO_PING = 2,
	EIO_PONG = 3,
	EIO_MESSAGE = 4,
	EIO_UPGRADE = 5,
	EIO_NOOP = 6,
};

/* Error codes of the reference server (engine.io Server.errors). */
enum eio_error {
	EIO_ERR_NONE = -1,
	EIO_ERR_TRANSPORT_UNKNOWN = 0,
	EIO_ERR_SESSION_ID_UNKNOWN = 1,
	EIO_ERR_BAD_HANDSHAKE_METHOD = 2,
	EIO_ERR_BAD_REQUEST = 3,
	EIO_ERR_FORBIDDEN = 4,
	EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION = 5,
};

#define EIO_OPEN_PACKET_MAX 256

/* Splits a text WebSocket message into its packet type and data. Returns 0,
 * or -1 when the first character is not a packet type ("parser error"). */
int eio_decode_text(const char *msg, size_t len, enum eio_packet_type *type,
		    const char **data, size_t *data_len);

/* Writes the open packet "0{...}" with exactly the five reference keys.
 * upgrades_websocket: advertise "websocket" (polling sessions only).
 * Returns its length, or -1 when out is too small. */
int eio_open_packet(char *out, size_t outlen, const char *sid, bool upgrades_websocket,
		    uint64_t ping_interval, uint64_t ping_timeout, uint64_t max_payload);

/* Validates the query of a request to the Engine.IO path, in the reference
 * server's order: transport; then, without a sid, the handshake method and
 * the protocol version. (A sid is looked up by the caller.)
 * websocket_upgrade: the request carries "Upgrade: websocket".
 * polling_enabled: whether the polling transport is served.
 * Sets *transport_ws, and *sid / *sid_len (NULL when absent). */
enum eio_error eio_check_request(const struct http_request *req, bool websocket_upgrade,
				 bool polling_enabled, bool *transport_ws,
				 const char **sid, size_t *sid_len);

/* One packet of an HTTP long-polling payload (v4): packets are separated by
 * the record separator 0x1e; a binary message is "b" + base64. */
struct eio_packet {
	enum eio_packet_type type;
	bool binary;        /* data is base64 text of a binary message */
	const char *data;   /* points into the payload */
	size_t len;
};

#define EIO_RECORD_SEPARATOR '\x1e'

/* Walks a polling payload: *pos starts at 0. Returns 1 with a packet, 0 at
 * the end, -1 on a malformed packet (the reference server then closes the
 * session with "parse error"). */
int eio_payload_next(const char *payload, size_t len, size_t *pos, struct eio_packet *out);

/* Decodes standard base64 (with padding) into out (room for len/4*3).
 * Returns the decoded length, or -1 when malformed. */
long eio_base64_decode(const char *in, size_t len, uint8_t *out);

/* Encodes len bytes as standard base64 into out (room for 4*ceil(len/3)+1,
 * NUL-terminated). Returns the encoded length. */
size_t eio_base64_encode(const uint8_t *in, size_t len, char *out);

/* "Transport unknown", ... */
const char *eio_error_message(enum eio_error err);

/* HTTP status the reference server answers a polling request with. */
int eio_error_status(enum eio_error err);

#endif
