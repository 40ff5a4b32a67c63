/*
 * pmdneg: negotiating permessage-deflate (RFC 7692 §7.1) on a WebSocket
 * handshake, sans-I/O: the client's Sec-WebSocket-Extensions offers in,
 * the response header and the agreed parameters out, for the daemon's
 * compression mode (--permessage-deflate).
 *
 * What the parameters commit the server to (frames, the window model,
 * inflating) is pmd's. Nothing here allocates, keeps state or calls back.
 */
#ifndef PGPUSH_PMDNEG_H
#define PGPUSH_PMDNEG_H

#include <stdbool.h>
#include <stddef.h>

/* Room for the longest response pmdneg_negotiate writes, NUL included. */
#define PMDNEG_RESPONSE_MAX 128

/*
 * How the daemon compresses what it sends (--permessage-deflate):
 *  - PMDNEG_MODE_OFF: never negotiated, every frame plain.
 *  - PMDNEG_MODE_STANDALONE: server_no_context_takeover; each message is a
 *    DEFLATE stream of its own, compressed once for every client.
 *  - PMDNEG_MODE_SHARED: server context takeover when the client allows it;
 *    a broadcast is deflated once per group of clients that hold the same
 *    previous payload, with that payload as the dictionary (see "shared
 *    context" below and docs/design.md). Clients that insist on
 *    server_no_context_takeover get standalone frames.
 * "on" means PMDNEG_MODE_DEFAULT: shared (issue 14), which every stock
 * client (browsers, ws) can decode: it takes nothing beyond RFC 7692.
 */
enum pmdneg_mode {
	PMDNEG_MODE_OFF = 0,
	PMDNEG_MODE_STANDALONE = 1,
	PMDNEG_MODE_SHARED = 2,
};
#define PMDNEG_MODE_DEFAULT PMDNEG_MODE_SHARED

/* Parses "off", "standalone", "shared" or "on" (the default) into *out.
 * Returns 0, or -1 for anything else (*out untouched). */
int pmdneg_mode_parse(const char *s, enum pmdneg_mode *out) __attribute__((warn_unused_result));

/* "off", "standalone" or "shared". */
const char *pmdneg_mode_name(enum pmdneg_mode mode);

/* The agreed parameters (RFC 7692 §7.1) of an accepted offer. */
struct pmdneg_params {
	/* true in standalone mode, and in shared mode when the client's offer
	 * carried server_no_context_takeover (§7.1.1.1: then the response must
	 * carry it too). */
	bool server_no_context_takeover;
	bool client_no_context_takeover; /* always true: no inflate state */
	/* The server's window: 2^N bytes. 15 unless the client's offer set
	 * server_max_window_bits (only accepted below 15 in shared mode).
	 * Every frame sent to this client must be built for this window. */
	int server_max_window_bits;
	int client_max_window_bits;      /* 15: we never ask a client for less */
	/* Shared-context frames (pmd_frame_with_dict with a dictionary) may go
	 * to this client: shared mode and !server_no_context_takeover. When
	 * false, only frames without a dictionary may (pmd_frame, or
	 * pmd_frame_with_dict with no dictionary at server_max_window_bits). */
	bool shared;
};

enum pmdneg_result {
	PMDNEG_MALFORMED = -1, /* not RFC 6455 §9.1 syntax: send no header */
	PMDNEG_DECLINED = 0,   /* no acceptable offer: send no header */
	PMDNEG_ACCEPTED = 1,   /* send "Sec-WebSocket-Extensions: <response>" */
};

/*
 * Reads the value of a client's Sec-WebSocket-Extensions header (header_value,
 * len bytes, need not be NUL-terminated). It may hold several extensions and
 * several permessage-deflate offers, in the client's order of preference.
 * Picks the first permessage-deflate offer that is valid (RFC 7692 §7.1:
 * known parameters only, none repeated, values in range) and that we support.
 * Offers that need server_max_window_bits < 15 are declined, because
 * pmd_frame's shared frames use a 32 KB window.
 *
 * On PMDNEG_ACCEPTED, response holds the NUL-terminated value of the header
 * to answer with, e.g. "permessage-deflate; server_no_context_takeover;
 * client_no_context_takeover", and *out holds the agreed parameters.
 * Otherwise response is left empty ("") and the handshake must carry no
 * Sec-WebSocket-Extensions header (RFC 6455 §9.1). A response is never
 * written for an extension or a parameter the client did not offer, except
 * the two *_no_context_takeover parameters, which a server may always add
 * (RFC 7692 §7.1.1.1 and §7.1.1.2). Clients such as the ws library abort
 * the handshake when they see anything else.
 *
 * Extension and parameter names must match exactly (lower case). With
 * several Sec-WebSocket-Extensions lines, pass their values joined by ", "
 * (RFC 9110 §5.3), or only the first: negotiating on a subset of the offers
 * is always safe. response_len must be at least PMDNEG_RESPONSE_MAX; with less
 * the offer is declined.
 */
enum pmdneg_result pmdneg_negotiate(const char *header_value, size_t len,
				    struct pmdneg_params *out, char *response,
				    size_t response_len)
	__attribute__((warn_unused_result));

/*
 * pmdneg_negotiate for a given mode. PMDNEG_MODE_STANDALONE is pmdneg_negotiate
 * exactly. PMDNEG_MODE_OFF declines every offer. PMDNEG_MODE_SHARED differs from
 * standalone in two ways:
 *  - server_no_context_takeover is answered only when the client's offer
 *    carried it (the response must then repeat it, §7.1.1.1). Otherwise the
 *    response is "permessage-deflate; client_no_context_takeover" and
 *    out->shared is true.
 *  - server_max_window_bits=N is accepted for every valid N (8 to 15) and
 *    echoed: the client's inflater may then keep only 2^N bytes, so frames
 *    for it are built with pmd_frame_with_dict(..., window_bits = N, ...).
 * client_no_context_takeover is always answered, as in standalone mode: the
 * daemon inflates what clients send with one shared inflater (see
 * respond() in pmdneg.c for why).
 */
enum pmdneg_result pmdneg_negotiate_mode(enum pmdneg_mode mode, const char *header_value,
					 size_t len, struct pmdneg_params *out,
					 char *response, size_t response_len)
	__attribute__((warn_unused_result));

#endif
