/*
 * sio: Socket.IO protocol v5 packet codec (sans-I/O).
 *   <type>[<attachments>-][<nsp>,][<ack id>][<JSON payload>]
 * Decoding validates like the reference parser (socket.io-parser 4.2.6):
 * what it rejects, we reject, and the connection is closed by the caller.
 */
#ifndef PGPUSH_SIO_H
#define PGPUSH_SIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

enum sio_type {
	SIO_CONNECT = 0,
	SIO_DISCONNECT = 1,
	SIO_EVENT = 2,
	SIO_ACK = 3,
	SIO_CONNECT_ERROR = 4,
	SIO_BINARY_EVENT = 5,
	SIO_BINARY_ACK = 6,
};

#define SIO_MAX_ATTACHMENTS 10
#define SIO_MAX_ACK_ID 9007199254740991ULL /* Number.MAX_SAFE_INTEGER */

enum sio_error {
	SIO_ERR_TYPE = -1,        /* unknown packet type */
	SIO_ERR_ATTACHMENTS = -2, /* bad or too many attachments */
	SIO_ERR_NAMESPACE = -3,
	SIO_ERR_ID = -4,
	SIO_ERR_JSON = -5,        /* payload is not valid JSON */
	SIO_ERR_PAYLOAD = -6,     /* valid JSON of the wrong shape for the type */
	SIO_ERR_NOMEM = -7,
};

struct sio_packet {
	enum sio_type type;
	unsigned attachments;
	const char *nsp;          /* "/" when absent; points into the input */
	size_t nsp_len;
	bool has_id;
	uint64_t id;
	json_object *data;        /* owned; NULL when there is no payload */
	size_t payload_off;       /* where the JSON payload starts in the input */
	const char *event;        /* EVENT name when it is a string, borrowed from data */
	size_t event_len;
};

/* Decodes one packet (the Engine.IO message data, without the '4').
 * tok is a reusable tokener (see sio_tokener_new). On success returns 0 and
 * fills p (release with sio_packet_clear); otherwise a negative sio_error
 * and p holds nothing to release. */
int sio_decode(const char *s, size_t len, struct sio_packet *p, struct json_tokener *tok)
	__attribute__((warn_unused_result));

void sio_packet_clear(struct sio_packet *p);

/* A tokener configured for untrusted input: strict, UTF-8 validated,
 * nesting limited. NULL when out of memory. */
struct json_tokener *sio_tokener_new(void);

/* True for the names the protocol reserves (never sent as events). */
bool sio_is_reserved_event(const char *name, size_t len);

/* Parses a namespace into a canonical form for comparison: true when it is
 * the main namespace "/". */
bool sio_is_main_nsp(const char *nsp, size_t len);

const char *sio_error_message(int err);

/* True when s[0..len) is one JSON value by RFC 8259's grammar (what
 * JSON.parse accepts): no NaN or Infinity, no raw control characters in
 * strings, no "1." or leading zeros. Exposed for tests. */
bool sio_json_strict(const char *s, size_t len);

#endif
