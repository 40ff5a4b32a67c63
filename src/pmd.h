/*
 * pmd: permessage-deflate (RFC 7692), server side, sans-I/O.
 *
 * pgpush always agrees to server_no_context_takeover and
 * client_no_context_takeover. Each message is then a DEFLATE stream on its
 * own, in both directions, so:
 *  - a snapshot is compressed once (pmd_frame) into a ready-to-send frame,
 *    a shared struct buf, that goes to every client that negotiated the
 *    extension. There is no per-client deflate state.
 *  - one pmd_inflater, created without context takeover, can inflate what
 *    every client sends, one message after another. Per client this costs
 *    nothing. A client that ignored client_no_context_takeover and sent
 *    back-references into an earlier message gets PMD_ERR_CORRUPT, never
 *    wrong bytes.
 *
 * Memory, measured with zlib 1.2.13 on x86-64 (t_pmd prints the figures):
 *  - deflate: one stream per process, created by the first pmd_frame:
 *    262 KB of zlib state (windowBits 15, memLevel 8), plus a scratch
 *    buffer for the compressed bytes: at most 64 KB is reserved up front,
 *    and it grows only as far as the output needs. A scratch buffer above
 *    1 MB is freed once its frame is built. pmd_cleanup frees everything.
 *  - inflate without context takeover: one shared inflater of 39 KB
 *    (7 KB of zlib state plus the 32 KB window), so 0 bytes per client.
 *  - inflate with context takeover (pmd_negotiate never agrees to it; it
 *    is supported for completeness): the same 39 KB per client. It is
 *    allocated on the client's first compressed message and held until
 *    pmd_inflater_free. A new inflater is 128 bytes.
 *  - pmd_inflate's output: at most max_out bytes, owned by the caller.
 *
 * Turning compression off is up to the caller: don't call pmd_negotiate
 * (so no Sec-WebSocket-Extensions goes out), and send only plain frames.
 *
 * Not thread-safe: the deflate stream is process-wide, like the event loop.
 * Nothing here calls back.
 */
#ifndef PGPUSH_PMD_H
#define PGPUSH_PMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ws.h"

/* Room for the longest response pmd_negotiate writes, NUL included. */
#define PMD_RESPONSE_MAX 128

/* The agreed parameters (RFC 7692 §7.1) of an accepted offer. */
struct pmd_params {
	bool server_no_context_takeover; /* always true: frames are shared */
	bool client_no_context_takeover; /* always true: no inflate state */
	int server_max_window_bits;      /* 15: the window pmd_frame uses */
	int client_max_window_bits;      /* 15: we never ask a client for less */
};

enum pmd_negotiate_result {
	PMD_NEG_MALFORMED = -1, /* not RFC 6455 §9.1 syntax: send no header */
	PMD_NEG_DECLINED = 0,   /* no acceptable offer: send no header */
	PMD_NEG_ACCEPTED = 1,   /* send "Sec-WebSocket-Extensions: <response>" */
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
 * On PMD_NEG_ACCEPTED, response holds the NUL-terminated value of the header
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
 * is always safe. response_len must be at least PMD_RESPONSE_MAX; with less
 * the offer is declined.
 */
enum pmd_negotiate_result pmd_negotiate(const char *header_value, size_t len,
					struct pmd_params *out, char *response,
					size_t response_len)
	__attribute__((warn_unused_result));

/*
 * Compresses the concatenation of parts once and builds one complete,
 * final, unmasked server frame with RSV1 set ("Per-Message Compressed",
 * RFC 7692 §6). Its payload is raw DEFLATE (windowBits 15, memLevel 8,
 * level as given: 1 is fast, 6 zlib's default, 0 stores), sync-flushed,
 * with the trailing 00 00 ff ff removed (§7.2.1). An empty message becomes
 * the single byte 0x00 (§7.2.3.6).
 *
 * No state carries over from one call to the next (deflateReset), so the
 * frame is valid for every client with server_no_context_takeover and a
 * window of 15 bits, which is every client pmd_negotiate accepted. The
 * frame's bytes depend only on the parts and the level.
 *
 * op must be WS_OP_TEXT or WS_OP_BINARY, because control frames are never
 * compressed. A sender may also leave any data message uncompressed
 * (§6: RSV1 clear), so a caller may send the plain frame instead when it is
 * no larger.
 *
 * Returns a new buf with one reference, owned by the caller, or NULL when
 * out of memory or level is not within -1..9.
 */
struct buf *pmd_frame(enum ws_opcode op, const struct ws_part *parts, size_t nparts,
		      int level);

/* Frees the process-wide deflate stream and its scratch buffer. The next
 * pmd_frame creates them again. For a clean exit, or to return the memory
 * when compression is turned off. */
void pmd_cleanup(void);

/* Bytes the deflate stream and its scratch buffer hold now (0 before the
 * first pmd_frame). */
size_t pmd_deflate_footprint(void);

enum pmd_error {
	PMD_OK = 0,
	PMD_ERR_NOMEM = -1,   /* out of memory: close 1011 */
	PMD_ERR_TOO_BIG = -2, /* inflated size would pass max_out: close 1009 */
	PMD_ERR_CORRUPT = -3, /* not valid DEFLATE data, or truncated: close 1007 */
};

/* An inflater for compressed client messages. Opaque; see the top of the file
 * for which to share. */
struct pmd_inflater;

/*
 * Creates an inflater in *out, owned by the caller. With context_takeover,
 * the LZ77 window carries from one message to the next (RFC 7692 §7.2.2),
 * so the inflater belongs to one connection. Without it, every message
 * starts from an empty window and one inflater can serve every connection.
 * zlib's state is allocated on the first message, not here.
 * Returns 0 or PMD_ERR_NOMEM.
 */
int pmd_inflater_new(bool context_takeover, struct pmd_inflater **out)
	__attribute__((warn_unused_result));

/* Frees inf and zlib's state. pmd_inflater_free(NULL) is a no-op. */
void pmd_inflater_free(struct pmd_inflater *inf);

/* Bytes inf holds now: the struct plus what zlib allocated. */
size_t pmd_inflater_footprint(const struct pmd_inflater *inf);

/*
 * Inflates the payload of one whole compressed message (RSV1 was set on its
 * first frame; in, len bytes; in may be NULL when len is 0). It appends
 * 00 00 ff ff and inflates raw DEFLATE (§7.2.2). A block with BFINAL set may
 * be followed by more blocks (§7.2.1). The data must end on a block
 * boundary, otherwise it was truncated and is PMD_ERR_CORRUPT.
 *
 * At most max_out bytes come out: inflating stops as soon as one more byte
 * would pass the cap, and the output buffer never grows beyond max_out
 * bytes. This is the guard against zip bombs: the work and the memory are
 * bounded by max_out, not by what the message would inflate to.
 *
 * On PMD_OK, *out is a malloc'd buffer of *out_len bytes owned by the caller
 * (free() it). It is never NULL, even for an empty message. The bytes are
 * not checked: a TEXT message must still be checked for UTF-8, since wslay
 * skips that check when RSV1 is set.
 * On error, *out is NULL, *out_len is 0, and the error is one of enum
 * pmd_error. RFC 7692 §8 says to fail the connection then. An inflater
 * without context takeover is ready for the next message, from any client.
 * One with context takeover has lost its window and is only fit to be freed.
 */
int pmd_inflate(struct pmd_inflater *inf, const uint8_t *in, size_t len, size_t max_out,
		uint8_t **out, size_t *out_len)
	__attribute__((warn_unused_result));

#endif
