/* RFC 7692 permessage-deflate: negotiation with the offers real clients send,
 * the RFC's examples, compress once / inflate round trips on dashboard-shaped
 * documents, the inflate cap against zip bombs, corrupt input. */
#include "autoconfig.h"

#include <stdlib.h>
#include <sys/resource.h>
#include <zlib.h>

#include "pmd.h"
#include "pmdneg.h"
#include "tap.h"

/* ---- negotiation ---- */

#define BASE "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

static const struct {
	const char *name;
	const char *offer;
	int want;
	const char *response; /* when accepted */
} neg[] = {
	/* What clients send by default. */
	{ "Chrome", "permessage-deflate; client_max_window_bits", 1, BASE },
	{ "Firefox", "permessage-deflate", 1, BASE },
	{ "Node ws (socket.io-client)", "permessage-deflate; client_max_window_bits", 1, BASE },
	{ "Safari 15+ (NSURLSession)", "permessage-deflate", 1, BASE },
	{ "Safari <= 14 alone", "x-webkit-deflate-frame", 0, NULL },
	{ "Autobahn", "permessage-deflate; client_no_context_takeover; client_max_window_bits",
	  1, BASE },
	{ "both no_context_takeover offered",
	  "permessage-deflate; server_no_context_takeover; client_no_context_takeover", 1, BASE },
	{ "ws with serverMaxWindowBits 15", "permessage-deflate; server_max_window_bits=15",
	  1, BASE "; server_max_window_bits=15" },
	{ "client window value", "permessage-deflate; client_max_window_bits=10", 1, BASE },
	{ "client window 8 and 15", "permessage-deflate; client_max_window_bits=8, "
	  "permessage-deflate; client_max_window_bits=15", 1, BASE },
	{ "quoted values", "permessage-deflate; client_max_window_bits=\"10\"; "
	  "server_max_window_bits=\"15\"", 1, BASE "; server_max_window_bits=15" },
	{ "quoted-pair in a value", "permessage-deflate; client_max_window_bits=\"1\\0\"", 1, BASE },
	/* Several offers and several extensions. */
	{ "first offer needs a small window: the second is taken",
	  "permessage-deflate; server_max_window_bits=10, permessage-deflate; "
	  "client_max_window_bits", 1, BASE },
	{ "first offer invalid: the second is taken",
	  "permessage-deflate; server_no_context_takeover; server_no_context_takeover, "
	  "permessage-deflate", 1, BASE },
	{ "another extension first", "x-webkit-deflate-frame, permessage-deflate; "
	  "client_max_window_bits", 1, BASE },
	{ "another extension with params first", "foo; a=1; b=\"x\", permessage-deflate", 1, BASE },
	{ "other extensions only", "foo, bar; baz=1", 0, NULL },
	{ "blanks everywhere", " \tpermessage-deflate\t;  client_max_window_bits\t ,  ", 1, BASE },
	{ "empty list elements", ", ,permessage-deflate,,", 1, BASE },
	{ "empty value", "", 0, NULL },
	{ "blank value", "  \t ", 0, NULL },
	/* Invalid offers (RFC 7692 §7.1): declined. */
	{ "duplicate client_max_window_bits",
	  "permessage-deflate; client_max_window_bits; client_max_window_bits", 0, NULL },
	{ "duplicate client_no_context_takeover",
	  "permessage-deflate; client_no_context_takeover; client_no_context_takeover", 0, NULL },
	{ "server_max_window_bits=7", "permessage-deflate; server_max_window_bits=7", 0, NULL },
	{ "server_max_window_bits=16", "permessage-deflate; server_max_window_bits=16", 0, NULL },
	{ "server_max_window_bits=abc", "permessage-deflate; server_max_window_bits=abc", 0, NULL },
	{ "server_max_window_bits=015 (leading zero)",
	  "permessage-deflate; server_max_window_bits=015", 0, NULL },
	{ "server_max_window_bits without a value",
	  "permessage-deflate; server_max_window_bits", 0, NULL },
	{ "server_max_window_bits=8: valid, unsupported",
	  "permessage-deflate; server_max_window_bits=8", 0, NULL },
	{ "server_max_window_bits=14: valid, unsupported",
	  "permessage-deflate; server_max_window_bits=14", 0, NULL },
	{ "client_max_window_bits=7", "permessage-deflate; client_max_window_bits=7", 0, NULL },
	{ "client_max_window_bits=16", "permessage-deflate; client_max_window_bits=16", 0, NULL },
	{ "server_no_context_takeover with a value",
	  "permessage-deflate; server_no_context_takeover=1", 0, NULL },
	{ "client_no_context_takeover with a value",
	  "permessage-deflate; client_no_context_takeover=true", 0, NULL },
	{ "unknown parameter", "permessage-deflate; foo", 0, NULL },
	{ "unknown parameter with value", "permessage-deflate; mux=1", 0, NULL },
	{ "names are case-sensitive", "Permessage-Deflate", 0, NULL },
	{ "param names are case-sensitive", "permessage-deflate; Client_Max_Window_Bits", 0, NULL },
	{ "deflate-frame is another extension", "deflate-frame; no_context_takeover", 0, NULL },
	/* Not RFC 6455 §9.1 syntax: the whole header is declined. */
	{ "trailing ';'", "permessage-deflate;", -1, NULL },
	{ "';;'", "permessage-deflate;; client_max_window_bits", -1, NULL },
	{ "parameter without a name", "permessage-deflate; =1", -1, NULL },
	{ "missing ';'", "permessage-deflate client_max_window_bits", -1, NULL },
	{ "'=' without a value", "permessage-deflate; server_max_window_bits=", -1, NULL },
	{ "unterminated quote", "permessage-deflate; client_max_window_bits=\"10", -1, NULL },
	{ "empty quoted value", "permessage-deflate; client_max_window_bits=\"\"", -1, NULL },
	{ "quoted value not a token", "permessage-deflate; x=\"a b\"", -1, NULL },
	{ "extension name not a token", "@deflate", -1, NULL },
	{ "leading ';'", "; permessage-deflate", -1, NULL },
	{ "malformed after a good offer", "permessage-deflate, foo;", -1, NULL },
	{ "non-ASCII byte", "permessage-deflate\xc3\xa9", -1, NULL },
};

static void test_negotiation(void)
{
	char resp[PMDNEG_RESPONSE_MAX];
	struct pmdneg_params p;
	int r;

	for (size_t i = 0; i < sizeof(neg) / sizeof(neg[0]); i++) {
		memset(&p, 0, sizeof(p));
		memset(resp, 'x', sizeof(resp));
		r = pmdneg_negotiate(neg[i].offer, strlen(neg[i].offer), &p, resp, sizeof(resp));
		is_int(r, neg[i].want, "negotiate %s: \"%s\"", neg[i].name, neg[i].offer);
		if (neg[i].want == 1) {
			is_str(resp, neg[i].response, "  response for %s", neg[i].name);
			ok(p.server_no_context_takeover && p.client_no_context_takeover &&
			   p.server_max_window_bits == 15 && p.client_max_window_bits == 15,
			   "  agreed parameters for %s", neg[i].name);
		} else {
			is_str(resp, "", "  no response for %s", neg[i].name);
		}
	}

	/* An embedded NUL ends nothing: the length counts. */
	r = pmdneg_negotiate("permessage-deflate\0, foo", 24, &p, resp, sizeof(resp));
	is_int(r, -1, "embedded NUL is malformed");
	/* Only len bytes are read. */
	r = pmdneg_negotiate("permessage-deflate; foo", 18, &p, resp, sizeof(resp));
	is_int(r, 1, "len bounds the value");
	/* Too small a response buffer declines rather than truncates. */
	r = pmdneg_negotiate("permessage-deflate", 18, &p, resp, 40);
	is_int(r, 0, "small response buffer: declined");
	is_str(resp, "", "  and nothing written");
	{
		/* The longest response, written into a buffer of exactly
		 * PMDNEG_RESPONSE_MAX bytes (the size callers use) followed by a
		 * guard: accepted, complete, NUL-terminated, nothing past it. */
		static const char longest[] = "permessage-deflate; server_no_context_takeover; "
			"client_no_context_takeover; server_max_window_bits=15; client_max_window_bits=15";
		char guarded[PMDNEG_RESPONSE_MAX + 32];
		size_t n, past = 0;

		memset(guarded, 'x', sizeof(guarded));
		memset(&p, 0, sizeof(p));
		r = pmdneg_negotiate(longest, strlen(longest), &p, guarded, PMDNEG_RESPONSE_MAX);
		is_int(r, 1, "the longest response: accepted into PMDNEG_RESPONSE_MAX bytes");
		n = strnlen(guarded, PMDNEG_RESPONSE_MAX);
		ok(n < PMDNEG_RESPONSE_MAX, "  NUL-terminated within them (%zu bytes)", n);
		ok(n < PMDNEG_RESPONSE_MAX && strcmp(guarded, BASE "; server_max_window_bits=15") == 0,
		   "  complete: \"%.*s\"", (int)n, guarded);
		for (size_t i = PMDNEG_RESPONSE_MAX; i < sizeof(guarded); i++)
			past += guarded[i] != 'x';
		is_int(past, 0, "  nothing written past them");
	}
}

/* ---- negotiation in the other modes ---- */

#define SHARED "permessage-deflate; client_no_context_takeover"

static const struct {
	const char *name;
	const char *offer;
	int want;
	const char *response; /* when accepted */
	bool shared;          /* the client may get shared-context frames */
	int smwb;
} neg_shared[] = {
	{ "Chrome", "permessage-deflate; client_max_window_bits", 1, SHARED, true, 15 },
	{ "Firefox", "permessage-deflate", 1, SHARED, true, 15 },
	{ "Autobahn", "permessage-deflate; client_no_context_takeover; client_max_window_bits",
	  1, SHARED, true, 15 },
	{ "client asks server_no_context_takeover: standalone for it",
	  "permessage-deflate; server_no_context_takeover", 1, BASE, false, 15 },
	{ "both no_context_takeover offered",
	  "permessage-deflate; server_no_context_takeover; client_no_context_takeover", 1, BASE,
	  false, 15 },
	{ "server_max_window_bits=15", "permessage-deflate; server_max_window_bits=15", 1,
	  SHARED "; server_max_window_bits=15", true, 15 },
	{ "server_max_window_bits=10 (declined when standalone)",
	  "permessage-deflate; server_max_window_bits=10", 1,
	  SHARED "; server_max_window_bits=10", true, 10 },
	{ "server_max_window_bits=8 (deflated with 9, farthest distance 250)",
	  "permessage-deflate; server_max_window_bits=8", 1,
	  SHARED "; server_max_window_bits=8", true, 8 },
	{ "server_max_window_bits=9 and server_no_context_takeover",
	  "permessage-deflate; server_no_context_takeover; server_max_window_bits=9", 1,
	  BASE "; server_max_window_bits=9", false, 9 },
	{ "first offer small window is now taken",
	  "permessage-deflate; server_max_window_bits=10, permessage-deflate", 1,
	  SHARED "; server_max_window_bits=10", true, 10 },
	{ "quoted window", "permessage-deflate; server_max_window_bits=\"12\"", 1,
	  SHARED "; server_max_window_bits=12", true, 12 },
	{ "invalid first offer, standalone second",
	  "permessage-deflate; foo, permessage-deflate; server_no_context_takeover", 1, BASE,
	  false, 15 },
	{ "server_max_window_bits=7 still invalid",
	  "permessage-deflate; server_max_window_bits=7", 0, NULL, false, 0 },
	{ "server_max_window_bits=16 still invalid",
	  "permessage-deflate; server_max_window_bits=16", 0, NULL, false, 0 },
	{ "other extensions only", "x-webkit-deflate-frame", 0, NULL, false, 0 },
	{ "malformed", "permessage-deflate;", -1, NULL, false, 0 },
};

static void test_negotiation_modes(void)
{
	char resp[PMDNEG_RESPONSE_MAX];
	struct pmdneg_params p;
	enum pmdneg_mode m = PMDNEG_MODE_OFF;
	int r;

	for (size_t i = 0; i < sizeof(neg_shared) / sizeof(neg_shared[0]); i++) {
		memset(&p, 0, sizeof(p));
		memset(resp, 'x', sizeof(resp));
		r = pmdneg_negotiate_mode(PMDNEG_MODE_SHARED, neg_shared[i].offer,
				       strlen(neg_shared[i].offer), &p, resp, sizeof(resp));
		is_int(r, neg_shared[i].want, "shared: negotiate %s: \"%s\"", neg_shared[i].name,
		       neg_shared[i].offer);
		if (neg_shared[i].want == 1) {
			is_str(resp, neg_shared[i].response, "  response");
			ok(p.shared == neg_shared[i].shared &&
			   p.server_no_context_takeover == !neg_shared[i].shared &&
			   p.client_no_context_takeover && p.client_max_window_bits == 15 &&
			   p.server_max_window_bits == neg_shared[i].smwb,
			   "  agreed: shared %d, server window %d bits", neg_shared[i].shared,
			   neg_shared[i].smwb);
		} else {
			is_str(resp, "", "  no response");
		}
	}
	/* Standalone mode is pmdneg_negotiate, parameter for parameter. */
	for (size_t i = 0; i < sizeof(neg) / sizeof(neg[0]); i++) {
		struct pmdneg_params q;
		char resp2[PMDNEG_RESPONSE_MAX];
		int r2;

		memset(&p, 0, sizeof(p));
		memset(&q, 0, sizeof(q));
		r = pmdneg_negotiate(neg[i].offer, strlen(neg[i].offer), &p, resp, sizeof(resp));
		r2 = pmdneg_negotiate_mode(PMDNEG_MODE_STANDALONE, neg[i].offer, strlen(neg[i].offer), &q,
					resp2, sizeof(resp2));
		ok(r == r2 && strcmp(resp, resp2) == 0 && memcmp(&p, &q, sizeof(p)) == 0 &&
		   !q.shared, "standalone mode = pmdneg_negotiate: %s", neg[i].name);
	}
	/* Off declines everything. */
	r = pmdneg_negotiate_mode(PMDNEG_MODE_OFF, "permessage-deflate", 18, &p, resp, sizeof(resp));
	is_int(r, 0, "off: declined");
	is_str(resp, "", "  nothing written");
	/* The option's values. */
	ok(pmdneg_mode_parse("off", &m) == 0 && m == PMDNEG_MODE_OFF, "mode \"off\"");
	ok(pmdneg_mode_parse("standalone", &m) == 0 && m == PMDNEG_MODE_STANDALONE, "mode \"standalone\"");
	ok(pmdneg_mode_parse("shared", &m) == 0 && m == PMDNEG_MODE_SHARED, "mode \"shared\"");
	ok(pmdneg_mode_parse("on", &m) == 0 && m == PMDNEG_MODE_DEFAULT, "mode \"on\" is the default (%s)",
	   pmdneg_mode_name(m));
	m = PMDNEG_MODE_SHARED;
	ok(pmdneg_mode_parse("yes", &m) < 0 && m == PMDNEG_MODE_SHARED, "mode \"yes\" refused");
	ok(pmdneg_mode_parse("Shared", &m) < 0, "mode names are lower case");
	is_str(pmdneg_mode_name(PMDNEG_MODE_SHARED), "shared", "pmdneg_mode_name");
}

/* ---- helpers ---- */

static const uint8_t *payload_of(const struct buf *b, size_t *len)
{
	size_t off = 2, plen = b->data[1] & 0x7f;

	if (plen == 126) {
		plen = (size_t)b->data[2] << 8 | b->data[3];
		off = 4;
	} else if (plen == 127) {
		plen = 0;
		for (int i = 0; i < 8; i++)
			plen = plen << 8 | b->data[2 + i];
		off = 10;
	}
	*len = plen;
	return off + plen == b->len ? b->data + off : NULL;
}

static struct buf *frame1(const void *data, size_t len, int level)
{
	struct ws_part part = { data, len };

	return pmd_frame(WS_OP_TEXT, &part, 1, level);
}

/* Plain zlib, independent of pmd_inflate: raw inflate of payload + 00 00 ff ff. */
static bool zlib_inflates_to(const uint8_t *p, size_t len, const void *want, size_t want_len)
{
	static const uint8_t tail[4] = { 0, 0, 0xff, 0xff };
	uint8_t *in = malloc(len + 4), *out = malloc(want_len + 1);
	z_stream zs = { 0 };
	bool good = false;

	if (!in || !out || inflateInit2(&zs, -15) != Z_OK)
		goto out_free;
	memcpy(in, p, len);
	memcpy(in + len, tail, 4);
	zs.next_in = in;
	zs.avail_in = (uInt)(len + 4);
	zs.next_out = out;
	zs.avail_out = (uInt)(want_len + 1);
	inflate(&zs, Z_SYNC_FLUSH);
	good = zs.avail_in == 0 && zs.total_out == want_len && memcmp(out, want, want_len) == 0;
	inflateEnd(&zs);
out_free:
	free(in);
	free(out);
	return good;
}

static int inflate_str(struct pmd_inflater *inf, const uint8_t *in, size_t len,
		       size_t max_out, char *got, size_t got_size)
{
	uint8_t *out;
	size_t out_len;
	int r = pmd_inflate(inf, in, len, max_out, &out, &out_len);

	got[0] = '\0';
	if (r == PMD_OK) {
		snprintf(got, got_size, "%.*s", (int)out_len, (const char *)out);
		free(out);
	} else if (out || out_len) {
		snprintf(got, got_size, "error %d left output", r);
	}
	return r;
}

/* Raw DEFLATE of s with the given flush, for hand-built test messages. */
static size_t raw_deflate(z_stream *zs, const char *s, int flush, uint8_t *out, size_t cap)
{
	zs->next_in = (Bytef *)s;
	zs->avail_in = (uInt)strlen(s);
	zs->next_out = out;
	zs->avail_out = (uInt)cap;
	deflate(zs, flush);
	return cap - zs->avail_out;
}

/* ---- RFC 7692 §7.2.3 examples ---- */

static void test_rfc_examples(void)
{
	static const uint8_t hello_frame[] = { 0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
	static const uint8_t hello[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
	static const uint8_t hello_again[] = { 0xf2, 0x00, 0x11, 0x00, 0x00 };
	static const uint8_t stored[] = { 0x00, 0x05, 0x00, 0xfa, 0xff,
					  0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00 };
	static const uint8_t bfinal[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00 };
	static const uint8_t two_blocks[] = { 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff,
					      0xca, 0xc9, 0xc9, 0x07, 0x00 };
	static const uint8_t empty[] = { 0x00 };
	struct pmd_inflater *inf, *ctx;
	char got[64];
	struct buf *b;

	/* §7.2.3.1, compressed once with no context takeover. */
	for (int level = -1; level <= 9; level += (level == -1 ? 2 : 4)) {
		b = frame1("Hello", 5, level);
		ok(b && b->len == sizeof(hello_frame) && memcmp(b->data, hello_frame, b->len) == 0,
		   "\"Hello\" at level %d is c1 07 f2 48 cd c9 c9 07 00 (§7.2.3.1)", level);
		buf_unref(b);
	}
	/* §7.2.3.6: the empty message is the single octet 0x00. */
	b = pmd_frame(WS_OP_TEXT, NULL, 0, 1);
	ok(b && b->len == 3 && b->data[0] == 0xc1 && b->data[1] == 1 && b->data[2] == 0,
	   "empty message: c1 01 00 (§7.2.3.6)");
	buf_unref(b);
	b = frame1("", 0, 6);
	ok(b && b->len == 3 && b->data[2] == 0, "empty part: same frame");
	buf_unref(b);
	{
		struct ws_part parts[] = { { "He", 2 }, { "", 0 }, { "llo", 3 } };

		b = pmd_frame(WS_OP_BINARY, parts, 3, 6);
		ok(b && b->len == sizeof(hello_frame) && b->data[0] == 0xc2 &&
		   memcmp(b->data + 1, hello_frame + 1, b->len - 1) == 0,
		   "parts are concatenated; binary gets c2");
		buf_unref(b);
	}
	ok(pmd_frame(WS_OP_TEXT, NULL, 0, 10) == NULL, "level 10 refused");
	ok(pmd_frame(WS_OP_TEXT, NULL, 0, -2) == NULL, "level -2 refused");

	if (pmd_inflater_new(false, &inf) != 0 || pmd_inflater_new(true, &ctx) != 0)
		exit(1);
	is_int(pmd_inflater_footprint(inf) < 256, 1, "a new inflater holds no zlib state (%zu bytes)",
	       pmd_inflater_footprint(inf));

	is_int(inflate_str(inf, hello, sizeof(hello), 100, got, sizeof(got)), PMD_OK,
	       "§7.2.3.1 inflates");
	is_str(got, "Hello", "  to Hello");
	is_int(inflate_str(inf, stored, sizeof(stored), 100, got, sizeof(got)), PMD_OK,
	       "§7.2.3.3 (stored block) inflates");
	is_str(got, "Hello", "  to Hello");
	is_int(inflate_str(inf, bfinal, sizeof(bfinal), 100, got, sizeof(got)), PMD_OK,
	       "§7.2.3.4 (BFINAL, then a block header) inflates");
	is_str(got, "Hello", "  to Hello");
	is_int(inflate_str(inf, bfinal, sizeof(bfinal) - 1, 100, got, sizeof(got)), PMD_OK,
	       "BFINAL block alone inflates");
	is_str(got, "Hello", "  to Hello");
	is_int(inflate_str(inf, two_blocks, sizeof(two_blocks), 100, got, sizeof(got)), PMD_OK,
	       "§7.2.3.5 (two blocks) inflates");
	is_str(got, "Hello", "  to Hello");
	is_int(inflate_str(inf, empty, 1, 100, got, sizeof(got)), PMD_OK,
	       "§7.2.3.6 (0x00) inflates");
	is_str(got, "", "  to the empty message");
	is_int(inflate_str(inf, NULL, 0, 100, got, sizeof(got)), PMD_OK,
	       "empty payload inflates");
	is_str(got, "", "  to the empty message");

	/* §7.2.3.2: the second "Hello" refers into the first message's window. */
	is_int(inflate_str(ctx, hello, sizeof(hello), 100, got, sizeof(got)), PMD_OK,
	       "takeover: first Hello");
	is_int(inflate_str(ctx, hello_again, sizeof(hello_again), 100, got, sizeof(got)), PMD_OK,
	       "takeover: §7.2.3.2 second message uses the window");
	is_str(got, "Hello", "  to Hello");
	is_int(inflate_str(inf, hello, sizeof(hello), 100, got, sizeof(got)), PMD_OK,
	       "no takeover: first Hello");
	is_int(inflate_str(inf, hello_again, sizeof(hello_again), 100, got, sizeof(got)),
	       PMD_ERR_CORRUPT, "no takeover: §7.2.3.2 second message is refused, not guessed");
	/* Takeover across a message that ended with BFINAL: the window survives. */
	is_int(inflate_str(ctx, bfinal, sizeof(bfinal) - 1, 100, got, sizeof(got)), PMD_OK,
	       "takeover: a BFINAL message");
	is_int(inflate_str(ctx, hello_again, sizeof(hello_again), 100, got, sizeof(got)), PMD_OK,
	       "takeover: the next message still sees its window");
	is_str(got, "Hello", "  to Hello");

	/* §7.2.1: blocks may follow a BFINAL block in one message, and refer back. */
	{
		uint8_t msg[128];
		size_t n;
		z_stream a = { 0 }, c = { 0 };

		deflateInit2(&a, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
		deflateInit2(&c, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
		n = raw_deflate(&a, "Hello, Hello", Z_FINISH, msg, sizeof(msg));
		deflateSetDictionary(&c, (const Bytef *)"Hello, Hello", 12);
		n += raw_deflate(&c, ", Hello, Hello!", Z_SYNC_FLUSH, msg + n, sizeof(msg) - n);
		n -= 4;
		deflateEnd(&a);
		deflateEnd(&c);
		is_int(inflate_str(inf, msg, n, 100, got, sizeof(got)), PMD_OK,
		       "BFINAL block, then a block referring back to it");
		is_str(got, "Hello, Hello, Hello, Hello!", "  inflates whole");
		is_int(inflate_str(ctx, msg, n, 100, got, sizeof(got)), PMD_OK,
		       "  and with takeover too");
		is_str(got, "Hello, Hello, Hello, Hello!", "  inflates whole");
	}
	pmd_inflater_free(inf);
	pmd_inflater_free(ctx);
	pmd_inflater_free(NULL);
}

#include "dashboard_doc.h"

static void test_round_trips(void)
{
	static const size_t sizes[] = { 1024, 10240, 51200 };
	struct pmd_inflater *shared, *ctx;

	if (pmd_inflater_new(false, &shared) != 0 || pmd_inflater_new(true, &ctx) != 0)
		exit(1);
	for (size_t i = 0; i < 3; i++) {
		size_t len, plen, out_len;
		char *doc = dashboard_doc(sizes[i], &len);

		for (int level = 1; level <= 6; level += 5) {
			struct buf *b = frame1(doc, len, level);
			const uint8_t *p;
			uint8_t *out;

			if (!ok(b != NULL, "%zu KB document compressed at level %d", sizes[i] / 1024, level))
				continue;
			p = payload_of(b, &plen);
			ok(p && b->data[0] == 0xc1 && (plen < 126 ? b->data[1] == plen : 1),
			   "  one final text frame with RSV1 and the right length");
			printf("# %zu KB dashboard document, level %d: %zu -> %zu bytes (%.1f %%, %.2fx)\n",
			       sizes[i] / 1024, level, len, plen, 100.0 * plen / len, (double)len / plen);
			ok(p && zlib_inflates_to(p, plen, doc, len), "  plain zlib inflates it");
			is_int(pmd_inflate(shared, p, plen, len, &out, &out_len), PMD_OK,
			       "  pmd_inflate (shared inflater, cap = exact size)");
			ok(out_len == len && memcmp(out, doc, len) == 0, "  round trip is exact");
			free(out);
			is_int(pmd_inflate(ctx, p, plen, 1 << 20, &out, &out_len), PMD_OK,
			       "  pmd_inflate (context takeover)");
			ok(out_len == len && memcmp(out, doc, len) == 0, "  round trip is exact");
			free(out);
			is_int(pmd_inflate(shared, p, plen, len - 1, &out, &out_len), PMD_ERR_TOO_BIG,
			       "  one byte under the cap: PMD_ERR_TOO_BIG");
			ok(out == NULL && out_len == 0, "  and no output");
			/* Every proper prefix is a truncated message: an error,
			 * PMD_ERR_CORRUPT or, when the appended tail decodes as
			 * more literals, PMD_ERR_TOO_BIG. The empty prefix is the
			 * empty message. */
			if (i == 0) {
				size_t bad = 0;

				for (size_t k = 1; k < plen; k++) {
					int r = pmd_inflate(shared, p, k, len, &out, &out_len);

					if (r != PMD_ERR_CORRUPT && r != PMD_ERR_TOO_BIG)
						bad++;
					if (r == PMD_OK)
						free(out);
				}
				is_int(bad, 0, "  all %zu truncations are refused", plen - 1);
			}
			buf_unref(b);
		}
		free(doc);
	}
	printf("# inflater footprint after use: %zu bytes (shared), %zu bytes (per client "
	       "with context takeover)\n", pmd_inflater_footprint(shared),
	       pmd_inflater_footprint(ctx));
	printf("# deflate footprint (one per process, with its scratch buffer): %zu bytes\n",
	       pmd_deflate_footprint());
	ok(pmd_deflate_footprint() < 400 * 1024, "the deflate stream holds < 400 KB");
	ok(pmd_inflater_footprint(shared) < 48 * 1024, "an inflater holds < 48 KB");
	pmd_inflater_free(shared);
	pmd_inflater_free(ctx);
}

/* Compressed once: the bytes depend on the input alone, not on what came before. */
static void test_no_context(void)
{
	size_t alen, blen;
	char *a = dashboard_doc(10240, &alen), *bdoc = dashboard_doc(10240, &blen);
	struct buf *a1 = frame1(a, alen, 1), *b1 = frame1(bdoc, blen, 1), *a2 = frame1(a, alen, 1);
	struct buf *a6 = frame1(a, alen, 6), *a3 = frame1(a, alen, 1);

	ok(a1 && a2 && a1->len == a2->len && memcmp(a1->data, a2->data, a1->len) == 0,
	   "same snapshot, same frame, after another one in between");
	ok(a1 && a3 && a1->len == a3->len && memcmp(a1->data, a3->data, a1->len) == 0,
	   "same frame after a level change and back");
	ok(b1 && a6, "other frames built");
	buf_unref(a1);
	buf_unref(a2);
	buf_unref(a3);
	buf_unref(a6);
	buf_unref(b1);
	free(a);
	free(bdoc);
}

/* Incompressible data: a 64-bit length and still exact. */
static void test_incompressible(void)
{
	size_t n = 100000, plen, out_len;
	uint8_t *data = malloc(n), *out;
	struct pmd_inflater *inf;
	const uint8_t *p;
	struct buf *b;

	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)rnd(256);
	b = frame1(data, n, 6);
	p = b ? payload_of(b, &plen) : NULL;
	ok(p && b->data[1] == 127 && plen > n, "100 KB of random bytes: 64-bit length, %zu bytes",
	   p ? plen : 0);
	if (pmd_inflater_new(false, &inf) != 0)
		exit(1);
	is_int(p ? pmd_inflate(inf, p, plen, n, &out, &out_len) : -99, PMD_OK, "  inflates");
	ok(p && out_len == n && memcmp(out, data, n) == 0, "  exactly");
	if (p)
		free(out);
	pmd_inflater_free(inf);
	buf_unref(b);
	free(data);
}

/* ---- the cap ---- */

static long maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void test_zip_bomb(void)
{
	enum { CHUNK = 64 * 1024, NCHUNK = 160 }; /* 10 MB */
	static struct ws_part parts[NCHUNK];
	uint8_t dummy, *zeros = calloc(1, CHUNK), *out = &dummy;
	size_t plen, out_len = 1;
	struct pmd_inflater *inf;
	const uint8_t *p;
	struct buf *b;
	long before, after;
	char got[16];

	/* 10 MB of zeros, fed as 160 views of one 64 KB buffer: never held whole. */
	for (int i = 0; i < NCHUNK; i++)
		parts[i] = (struct ws_part){ zeros, CHUNK };
	b = pmd_frame(WS_OP_BINARY, parts, NCHUNK, 9);
	p = b ? payload_of(b, &plen) : NULL;
	if (!ok(p != NULL, "10 MB of zeros compressed"))
		return;
	printf("# 10 MB of zeros -> %zu bytes (%.0fx)\n", plen, (double)CHUNK * NCHUNK / plen);
	if (pmd_inflater_new(false, &inf) != 0)
		exit(1);
	before = maxrss_kb();
	is_int(pmd_inflate(inf, p, plen, 1 << 20, &out, &out_len), PMD_ERR_TOO_BIG,
	       "inflating it with a 1 MB cap: PMD_ERR_TOO_BIG");
	after = maxrss_kb();
	ok(out == NULL && out_len == 0, "  no output");
	printf("# peak RSS grew by %ld KB while refusing it\n", after - before);
	ok(after - before < 4 * 1024, "  peak memory grew by < 4 MB (%ld KB), not 10 MB",
	   after - before);
	ok(pmd_inflater_footprint(inf) < 48 * 1024, "  zlib state stayed < 48 KB (%zu bytes)",
	   pmd_inflater_footprint(inf));
	/* The shared inflater is fine for the next client's message. */
	is_int(inflate_str(inf, (const uint8_t *)"\xf2\x48\xcd\xc9\xc9\x07\x00", 7, 5, got,
			   sizeof(got)), PMD_OK, "  the next message inflates");
	is_str(got, "Hello", "  to Hello");
	is_int(inflate_str(inf, (const uint8_t *)"\xf2\x48\xcd\xc9\xc9\x07\x00", 7, 4, got,
			   sizeof(got)), PMD_ERR_TOO_BIG, "Hello with cap 4: PMD_ERR_TOO_BIG");
	is_int(inflate_str(inf, (const uint8_t *)"\xf2\x48\xcd\xc9\xc9\x07\x00", 7, 0, got,
			   sizeof(got)), PMD_ERR_TOO_BIG, "Hello with cap 0: PMD_ERR_TOO_BIG");
	is_int(inflate_str(inf, (const uint8_t *)"\x00", 1, 0, got, sizeof(got)), PMD_OK,
	       "empty message with cap 0: fine");
	pmd_inflater_free(inf);
	buf_unref(b);
	free(zeros);
}

/* ---- corrupt input ---- */

static void test_corrupt(void)
{
	static const struct {
		const char *name;
		const char *bytes;
		size_t len;
	} bad[] = {
		{ "reserved block type 11", "\xff\xff\xff", 3 },
		{ "stored block with LEN != ~NLEN", "\x00\x05\x00\x00\x00Hello\x00", 11 },
		{ "stored block longer than the message", "\x00\x05\x00\xfa\xff" "He", 7 },
		{ "truncated Hello", "\xf2\x48\xcd\xc9", 4 },
		{ "distance too far back", "\xf2\x00\x11\x00\x00", 5 },
		{ "garbage after BFINAL", "\xf3\x48\xcd\xc9\xc9\x07\x00\xff", 8 },
		{ "Hello without its block header byte", "\xf2\x48\xcd\xc9\xc9\x07", 6 },
	};
	struct pmd_inflater *inf, *ctx;
	uint8_t junk[512], *out;
	size_t out_len, other = 0;
	int counts[4] = { 0 };

	if (pmd_inflater_new(false, &inf) != 0)
		exit(1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		is_int(pmd_inflate(inf, (const uint8_t *)bad[i].bytes, bad[i].len, 1000, &out,
				   &out_len), PMD_ERR_CORRUPT, "corrupt: %s", bad[i].name);
		ok(out == NULL && out_len == 0, "  no output");
	}
	/* Random junk never crashes (ASan builds check the memory side) and
	 * never passes the cap. */
	for (int i = 0; i < 3000; i++) {
		size_t n = rnd(sizeof(junk));
		int r;

		if (pmd_inflater_new(i % 2 == 0, &ctx) != 0)
			exit(1);
		for (size_t k = 0; k < n; k++)
			junk[k] = (uint8_t)rnd(256);
		if (i % 3 == 0 && n)
			junk[0] &= 0xf8; /* start with a stored block now and then */
		r = pmd_inflate(i % 2 ? inf : ctx, junk, n, 4096, &out, &out_len);
		if (r == PMD_OK) {
			if (out_len > 4096)
				other++;
			free(out);
		} else if (out || out_len) {
			other++;
		}
		counts[-r]++;
		pmd_inflater_free(ctx);
	}
	is_int(other, 0, "3000 random inputs: within the cap, no output on errors");
	printf("# random inputs: %d inflated, %d too big, %d corrupt\n",
	       counts[0], counts[2], counts[3]);
	pmd_inflater_free(inf);
}

int main(void)
{
	test_zip_bomb(); /* first: the peak RSS check wants a quiet heap */
	test_negotiation();
	test_negotiation_modes();
	test_rfc_examples();
	test_round_trips();
	test_no_context();
	test_incompressible();
	test_corrupt();
	pmd_cleanup();
	is_int(pmd_deflate_footprint(), 0, "pmd_cleanup frees the deflate stream");
	return done_testing();
}
