/*
 * pmd: permessage-deflate (RFC 7692), server side, sans-I/O: the data
 * side (§7.2), i.e. compressed frames, the shared-context window model
 * and inflating. The handshake's negotiation (§7.1) is pmdneg's.
 *
 * In standalone mode (pmdneg_negotiate, today's daemon) pgpush always agrees
 * to server_no_context_takeover and client_no_context_takeover. Each
 * message is then a DEFLATE stream on its own, in both directions, so:
 *  - a snapshot is compressed once (pmd_frame) into a ready-to-send frame,
 *    a shared struct buf, that goes to every client that negotiated the
 *    extension. There is no per-client deflate state.
 *  - one pmd_inflater, created without context takeover, can inflate what
 *    every client sends, one message after another. Per client this costs
 *    nothing. A client that ignored client_no_context_takeover and sent
 *    back-references into an earlier message gets PMD_ERR_CORRUPT, never
 *    wrong bytes.
 *
 * In shared mode (pmdneg_negotiate_mode, issue 14) the server keeps its
 * context when the client allows it. A broadcast is then deflated once per
 * group of clients whose windows end with the same payload, with that
 * payload as the dictionary (pmd_frame_with_dict). The server tracks what
 * each client's window ends with in a 24-byte record (struct pmd_window),
 * not in a zlib stream. Client messages are still inflated without context
 * takeover. See docs/design.md, "Shared-context compression (pmd)".
 *
 * Memory, measured with zlib 1.2.13 on x86-64 (t_pmd prints the figures):
 *  - deflate: one stream per process and window size, created on first
 *    use: 262 KB of zlib state at windowBits 15 (memLevel 8), 139 KB at 9
 *    (only clients offering server_max_window_bits need those), plus a scratch
 *    buffer for the compressed bytes: at most 64 KB is reserved up front,
 *    and it grows only as far as the output needs. A scratch buffer above
 *    1 MB is freed once its frame is built. pmd_cleanup frees everything.
 *  - inflate without context takeover: one shared inflater of 39 KB
 *    (7 KB of zlib state plus the 32 KB window), so 0 bytes per client.
 *  - inflate with client context takeover (no mode agrees to it; it
 *    is supported for completeness): the same 39 KB per client. It is
 *    allocated on the client's first compressed message and held until
 *    pmd_inflater_free. A new inflater is 128 bytes.
 *  - pmd_inflate's output: at most max_out bytes, owned by the caller.
 *
 * Turning compression off is up to the caller: don't call pmdneg_negotiate
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
#include "pmdneg.h"
#include "ws.h"

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
 * window of 15 bits, which is every client pmdneg_negotiate accepted. The
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

/*
 * Shared context (RFC 7692 §7.2.1 with context takeover, issue 14).
 *
 * Builds a compressed frame like pmd_frame whose DEFLATE data may refer back
 * into dict: the payload (uncompressed message text) of the previous
 * message the receiving clients inflated. Only the last
 * min(dict_len, 2^window_bits) bytes of dict are used: any suffix of a
 * client's window is a valid dictionary, because back-references reach only
 * into bytes that every client whose newest window bytes are that suffix
 * holds at the same distances. With dict NULL or dict_len 0 the frame is
 * self-contained: it never refers to bytes before itself, so it decodes at
 * any inflater of a window of at least 2^window_bits bytes, with or
 * without context takeover; at window_bits 15 it is byte for byte
 * pmd_frame's frame.
 *
 * window_bits is the client's server_max_window_bits, 8 to 15. Deflate runs
 * with that window (zlib's raw deflate refuses 8, so 8 runs with 9: zlib
 * never emits a distance above 2^wbits - 262, which is 250 < 256 there).
 * One deflate stream per window size is kept (created on first use, reset
 * per frame), the 15-bit one shared with pmd_frame.
 *
 * level is zlib's (-1..9) or PMD_LEVEL_DICT: level 1's speed, tuned to find
 * the long matches a dictionary that is the previous version of the
 * document offers (deflateTune: nice_length 258, chains of 128). On the demo
 * dashboard after one sale: 559 B in 53 us, against 1,181 B in 41 us at
 * level 1 and 544 B in 94 us at level 6 (tests/bench/pmd_bench).
 *
 * Returns a new buf with one reference, or NULL when out of memory, level
 * is not within -1..PMD_LEVEL_DICT or window_bits not within 8..15.
 */
#define PMD_LEVEL_DICT 10

struct buf *pmd_frame_with_dict(enum ws_opcode op, const struct ws_part *parts,
				size_t nparts, const uint8_t *dict, size_t dict_len,
				int window_bits, int level);

/*
 * The window model, sans-I/O: what the server knows is at the newest end of
 * one client's inflate window. Only messages sent compressed enter it; a
 * message sent plain (RSV1 clear: pings, acks, errors, a frame not worth
 * compressing) never passes through the client's inflater.
 *
 * A payload is named by a caller-chosen id, unique per distinct payload
 * text (a snapshot's frame, a patch frame from one version to another),
 * never PMD_NO_ID. The record holds the id of the last payload the client
 * received compressed, if the server can name it; otherwise PMD_NO_ID.
 */
#define PMD_NO_ID UINT64_C(0)

struct pmd_window {
	uint64_t last_id;    /* newest window bytes = this payload; PMD_NO_ID: unknown */
	size_t suffix;       /* only its last suffix bytes are known there; 0: all */
	uint8_t window_bits; /* the client's server_max_window_bits */
	bool deflate;        /* permessage-deflate negotiated at all */
	bool shared;         /* pmdneg_params.shared */
};

/* What to send one client for the next message. */
enum pmd_send {
	PMD_SEND_PLAIN = 0, /* uncompressed: no permessage-deflate */
	PMD_SEND_SELF = 1,  /* a frame without dictionary, at key.window_bits */
	PMD_SEND_DICT = 2,  /* the group frame: dictionary = payload key.dict_id */
};

/* Clients with equal keys get the same frame: build one per key. */
struct pmd_group_key {
	uint64_t dict_id;    /* PMD_NO_ID for a frame without dictionary */
	size_t suffix;       /* the dictionary is the last suffix bytes of that payload; 0: all */
	uint8_t window_bits;
};

/* A fresh record for a client that negotiated params (or none: NULL). */
void pmd_window_init(struct pmd_window *w, const struct pmdneg_params *params);

/*
 * The rule. held says whether the server still has the payload of
 * w->last_id (the caller's look-up, e.g. "is that snapshot still alive").
 * Returns PMD_SEND_DICT when w->shared, w->last_id is known and held (the
 * dictionary is then the last key.suffix bytes of its payload, or all of
 * it when key.suffix is 0, capped at the window by pmd_frame_with_dict);
 * PMD_SEND_SELF when compression was negotiated but no dictionary can be
 * used (a new client, a standalone client, a forgotten or freed payload);
 * PMD_SEND_PLAIN without permessage-deflate. *key is filled for SELF and
 * DICT. The caller may always send plain instead (when the frame is not
 * smaller), and must then report it to pmd_window_sent as uncompressed.
 */
enum pmd_send pmd_window_choose(const struct pmd_window *w, bool held,
				struct pmd_group_key *key);

/*
 * Records one message sent to the client, in the order the client gets
 * them. compressed: it went out with RSV1 set. id: its payload's id, or
 * PMD_NO_ID for a payload nobody can use as a dictionary later (a
 * compressed ack built for this client alone). A plain message leaves the
 * record as it was; a compressed one makes its payload the newest window
 * bytes (shared clients) or leaves nothing behind (standalone clients,
 * whose window is reset per message).
 */
void pmd_window_sent(struct pmd_window *w, uint64_t id, bool compressed);

/*
 * Records a compressed message whose last suffix_len bytes are the last
 * suffix_len bytes of payload id (suffix_len > 0), e.g. an ack
 * 43<n>[<doc>] after the update 42["dashboardDataUpdate",<doc>]: both end
 * with <doc>], so the record names that suffix of the snapshot's payload,
 * and the client's next frame can still use it as its dictionary (a group
 * of its own, keyed by the suffix). The caller vouches for the equality.
 */
void pmd_window_sent_suffix(struct pmd_window *w, uint64_t id, size_t suffix_len);

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
