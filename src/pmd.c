#include "autoconfig.h"

#include "pmd.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* RFC 7692 §7.2.1: a sync flush ends with an empty stored block, whose last
 * four octets the sender removes and the receiver appends again (§7.2.2). */
static const uint8_t tail[4] = { 0x00, 0x00, 0xff, 0xff };

#define WBITS 15 /* raw DEFLATE (negated for zlib), 32 KB window */
#define MEM_LEVEL 8
#define SCRATCH_START (64 * 1024) /* compressed output reserved up front, at most */
#define SCRATCH_KEEP (1024 * 1024) /* a larger scratch buffer is freed after use */

/* ---- zlib allocations, counted so that the footprint can be reported ---- */

struct hdr {
	alignas(max_align_t) size_t size;
};

static voidpf counted_alloc(voidpf opaque, uInt items, uInt size)
{
	size_t n = (size_t)items * size;
	struct hdr *h;

	if (size && n / size != items)
		return Z_NULL;
	h = malloc(sizeof(*h) + n);
	if (!h)
		return Z_NULL;
	h->size = n;
	*(size_t *)opaque += n;
	return h + 1;
}

static void counted_free(voidpf opaque, voidpf p)
{
	struct hdr *h;

	if (!p)
		return;
	h = (struct hdr *)p - 1;
	*(size_t *)opaque -= h->size;
	free(h);
}

/* ---- negotiation (RFC 6455 §9.1 syntax, RFC 7692 §7.1 semantics) ---- */

/*
 *  extension-list = 1#extension
 *  extension      = extension-token *( ";" extension-param )
 *  extension-param = token [ "=" (token | quoted-string) ]
 * with optional whitespace around the separators. A quoted value must still
 * be a token once unescaped (RFC 6455 §9.1).
 */

struct cursor {
	const char *s;
	size_t len, pos;
};

static bool is_tchar(unsigned char c)
{
	/* RFC 9110 §5.6.2 */
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static void skip_ows(struct cursor *c)
{
	while (c->pos < c->len && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t'))
		c->pos++;
}

static bool peek(const struct cursor *c, char ch)
{
	return c->pos < c->len && c->s[c->pos] == ch;
}

/* A token at the cursor; false when there is none. */
static bool token(struct cursor *c, const char **tok, size_t *tok_len)
{
	size_t start = c->pos;

	while (c->pos < c->len && is_tchar((unsigned char)c->s[c->pos]))
		c->pos++;
	*tok = c->s + start;
	*tok_len = c->pos - start;
	return *tok_len > 0;
}

#define VALUE_MAX 8 /* longer values are kept truncated: none of ours is */

struct value {
	bool present;
	size_t len;            /* full unescaped length */
	char text[VALUE_MAX];  /* the first VALUE_MAX bytes */
};

/* A token or a quoted-string after "=". */
static bool param_value(struct cursor *c, struct value *v)
{
	const char *tok;
	size_t tok_len;

	v->present = true;
	v->len = 0;
	if (!peek(c, '"')) {
		if (!token(c, &tok, &tok_len))
			return false;
		v->len = tok_len;
		memcpy(v->text, tok, tok_len < VALUE_MAX ? tok_len : VALUE_MAX);
		return true;
	}
	c->pos++;
	for (;;) {
		unsigned char ch;

		if (c->pos >= c->len)
			return false; /* unterminated */
		ch = (unsigned char)c->s[c->pos++];
		if (ch == '"')
			break;
		if (ch == '\\') {
			if (c->pos >= c->len)
				return false;
			ch = (unsigned char)c->s[c->pos++];
		}
		if (!is_tchar(ch))
			return false;
		if (v->len < VALUE_MAX)
			v->text[v->len] = (char)ch;
		v->len++;
	}
	return v->len > 0;
}

static bool name_is(const char *tok, size_t len, const char *s)
{
	return strlen(s) == len && memcmp(tok, s, len) == 0;
}

/* RFC 7692 §7.1.2.1: 1*DIGIT without a leading zero, 8 to 15. 0 if not. */
static int window_bits(const struct value *v)
{
	if (v->len == 1 && v->text[0] >= '8' && v->text[0] <= '9')
		return v->text[0] - '0';
	if (v->len == 2 && v->text[0] == '1' && v->text[1] >= '0' && v->text[1] <= '5')
		return 10 + v->text[1] - '0';
	return 0;
}

enum {
	P_SERVER_NO_CT = 1 << 0,
	P_CLIENT_NO_CT = 1 << 1,
	P_SERVER_MWB = 1 << 2,
	P_CLIENT_MWB = 1 << 3,
};

struct offer {
	bool valid;      /* RFC 7692 §7.1: a server MUST decline an invalid offer */
	unsigned seen;   /* P_* bits */
	int server_mwb;  /* 0 when not offered */
};

/* Applies one parameter of a permessage-deflate offer. */
static void offer_param(struct offer *o, const char *name, size_t name_len,
			const struct value *v)
{
	unsigned bit;

	if (name_is(name, name_len, "server_no_context_takeover"))
		bit = P_SERVER_NO_CT;
	else if (name_is(name, name_len, "client_no_context_takeover"))
		bit = P_CLIENT_NO_CT;
	else if (name_is(name, name_len, "server_max_window_bits"))
		bit = P_SERVER_MWB;
	else if (name_is(name, name_len, "client_max_window_bits"))
		bit = P_CLIENT_MWB;
	else
		bit = 0; /* a parameter not defined for offers */
	if (!bit || (o->seen & bit)) {
		o->valid = false;
		return;
	}
	o->seen |= bit;
	switch (bit) {
	case P_SERVER_NO_CT:
	case P_CLIENT_NO_CT:
		if (v->present) /* §7.1.1: these have no value */
			o->valid = false;
		break;
	case P_SERVER_MWB: /* §7.1.2.1: the value is required */
		o->server_mwb = v->present ? window_bits(v) : 0;
		if (!o->server_mwb)
			o->valid = false;
		break;
	case P_CLIENT_MWB: /* §7.1.2.2: the value is optional */
		if (v->present && !window_bits(v))
			o->valid = false;
		break;
	}
}

/*
 * What we answer, and why.
 *
 * server_no_context_takeover: always in standalone mode. §7.1.1.1 lets a
 * server add it to any response. It makes every message we send an
 * independent DEFLATE stream, so one compressed frame serves every client.
 * In shared mode only when the client's offer carries it (we must then
 * answer it). Otherwise the client keeps our context, and a broadcast is
 * deflated once per group of clients holding the same previous payload
 * (pmd_frame_with_dict, the window model below).
 *
 * client_no_context_takeover: always, whether offered or not. §7.1.1.2:
 * "A server MAY include the client_no_context_takeover extension parameter
 * in an extension negotiation response", and the client then "MUST NOT use
 * context takeover". This is the legal choice that costs least memory: no
 * per-client inflate window (32 KB + 7 KB of zlib state each) survives
 * between messages, so one shared inflater does for all. The alternative,
 * keeping a window per client that did not offer it, would cost ~39 KB
 * times the number of clients. That is 390 MB for 10k clients, just for
 * client messages that are a few bytes long here. Checked by hand: ws
 * 8.21 (socket.io-client's transport) and Chromium 156 accept the
 * parameter unasked and then compress each message on its own. ws refuses
 * the handshake only if its user set clientNoContextTakeover: false.
 * Safari before 15.4 is reported to have ignored the parameter
 * (uNetworking/uWebSockets#1347, #1431). Such a client's second message
 * may refer back and then fails as PMD_ERR_CORRUPT, which is safe but
 * closes the connection. The way out is the daemon's switch to turn
 * compression off, not 39 KB per client for everybody.
 *
 * server_max_window_bits: the offered value is echoed back (§7.1.2.1:
 * accepting an offer with the parameter means answering it with the same
 * or a smaller value). In standalone mode an offer of less than 15 is
 * declined ("the server doesn't support the offered configuration"),
 * because those frames are compressed once with a 32 KB window. Shared
 * mode accepts 8 to 15: frames are built per window size anyway, each
 * client getting the one for its window. No browser and no ws client sends
 * it by default. We never add it unasked: 15 is the default anyway.
 *
 * client_max_window_bits: never answered. The offer only says that the
 * client could accept a limit (§7.1.2.2). Our inflater always has a 32 KB
 * window, which inflates any window size, so there is nothing to limit.
 * Answering it would not save memory here, because inflate state is shared
 * and is not kept between messages. We must never send it if it was not
 * offered.
 */
static int respond(enum pmd_mode mode, const struct offer *o, struct pmd_params *out,
		   char *resp, size_t resp_len)
{
	/* Shared mode keeps the server's context unless the client asked us
	 * not to (§7.1.1.1: then the response must say so too). */
	bool no_server_ct = mode != PMD_MODE_SHARED || (o->seen & P_SERVER_NO_CT);
	int mwb = o->server_mwb ? o->server_mwb : 15;
	int n;

	if (resp_len < PMD_RESPONSE_MAX)
		return PMD_NEG_DECLINED;
	n = snprintf(resp, resp_len, "permessage-deflate%s; client_no_context_takeover",
		     no_server_ct ? "; server_no_context_takeover" : "");
	if (n > 0 && (o->seen & P_SERVER_MWB))
		n += snprintf(resp + n, resp_len - (size_t)n, "; server_max_window_bits=%d", mwb);
	if (n < 0 || (size_t)n >= resp_len) {
		resp[0] = '\0';
		return PMD_NEG_DECLINED;
	}
	out->server_no_context_takeover = no_server_ct;
	out->client_no_context_takeover = true;
	out->server_max_window_bits = mwb;
	out->client_max_window_bits = 15;
	out->shared = !no_server_ct;
	return PMD_NEG_ACCEPTED;
}

int pmd_mode_parse(const char *s, enum pmd_mode *out)
{
	if (strcmp(s, "off") == 0)
		*out = PMD_MODE_OFF;
	else if (strcmp(s, "standalone") == 0)
		*out = PMD_MODE_STANDALONE;
	else if (strcmp(s, "shared") == 0)
		*out = PMD_MODE_SHARED;
	else if (strcmp(s, "on") == 0)
		*out = PMD_MODE_DEFAULT;
	else
		return -1;
	return 0;
}

const char *pmd_mode_name(enum pmd_mode mode)
{
	switch (mode) {
	case PMD_MODE_OFF:
		return "off";
	case PMD_MODE_STANDALONE:
		return "standalone";
	case PMD_MODE_SHARED:
		return "shared";
	}
	return "?";
}

enum pmd_negotiate_result pmd_negotiate(const char *header_value, size_t len,
					struct pmd_params *out, char *response,
					size_t response_len)
{
	return pmd_negotiate_mode(PMD_MODE_STANDALONE, header_value, len, out, response,
				  response_len);
}

enum pmd_negotiate_result pmd_negotiate_mode(enum pmd_mode mode, const char *header_value,
					     size_t len, struct pmd_params *out,
					     char *response, size_t response_len)
{
	struct cursor c = { header_value, len, 0 };
	struct offer chosen = { 0 };
	bool found = false;

	if (response && response_len)
		response[0] = '\0';
	/* The whole header is parsed even after a usable offer: a malformed
	 * header is declined as a whole. */
	for (;;) {
		const char *name;
		size_t name_len;
		struct offer o = { .valid = true };
		bool pmd;

		skip_ows(&c);
		if (c.pos == c.len)
			break;
		if (peek(&c, ',')) { /* empty list element (RFC 9110 §5.6.1) */
			c.pos++;
			continue;
		}
		if (!token(&c, &name, &name_len))
			return PMD_NEG_MALFORMED;
		pmd = name_is(name, name_len, "permessage-deflate");
		skip_ows(&c);
		while (peek(&c, ';')) {
			const char *pname;
			size_t pname_len;
			struct value v = { 0 };

			c.pos++;
			skip_ows(&c);
			if (!token(&c, &pname, &pname_len))
				return PMD_NEG_MALFORMED;
			skip_ows(&c);
			if (peek(&c, '=')) {
				c.pos++;
				skip_ows(&c);
				if (!param_value(&c, &v))
					return PMD_NEG_MALFORMED;
				skip_ows(&c);
			}
			if (pmd)
				offer_param(&o, pname, pname_len, &v);
		}
		if (c.pos < c.len && !peek(&c, ','))
			return PMD_NEG_MALFORMED;
		if (c.pos < c.len)
			c.pos++;
		/* Standalone frames are built once with a 32 KB window, so
		 * that mode declines a smaller one; shared mode builds frames
		 * per window size. */
		if (pmd && !found && o.valid &&
		    (!o.server_mwb || o.server_mwb == 15 || mode == PMD_MODE_SHARED)) {
			chosen = o;
			found = true;
		}
	}
	if (!found || !response || mode == PMD_MODE_OFF)
		return PMD_NEG_DECLINED;
	return respond(mode, &chosen, out, response, response_len);
}

/* ---- compression: one stream per window size for the whole process ---- */

#define WBITS_MIN 9 /* zlib's raw deflate refuses 8 */
#define NSTREAMS (WBITS - WBITS_MIN + 1)

struct stream {
	z_stream zs;
	bool ready;
	int level;
};

static struct {
	struct stream s[NSTREAMS]; /* [wbits - WBITS_MIN], each created on first use */
	size_t zmem;       /* bytes zlib holds, all streams */
	uint8_t *scratch;  /* compressed output, before it gets its frame header */
	size_t scratch_cap;
} defl;

/* PMD_LEVEL_DICT: level 1, searching for long matches. With the previous
 * version of the document as the dictionary, the best matches are 258
 * bytes long, but level 1 stops at the first of 8 (nice_length) within
 * chains of 4. Measured on the demo dashboard after one sale: 1,181 B at
 * level 1, 559 B tuned, 544 B at level 6; 41, 53 and 94 us. */
#define DICT_GOOD 32
#define DICT_LAZY 8   /* deflate_fast: longest match whose strings are all hashed */
#define DICT_NICE 258
#define DICT_CHAIN 128

static z_stream *defl_start(int wbits, int level)
{
	struct stream *st = &defl.s[wbits - WBITS_MIN];
	bool tune = level == PMD_LEVEL_DICT;

	if (tune)
		level = 1;

	if (!st->ready) {
		st->zs.zalloc = counted_alloc;
		st->zs.zfree = counted_free;
		st->zs.opaque = &defl.zmem;
		if (deflateInit2(&st->zs, level, Z_DEFLATED, -wbits, MEM_LEVEL,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return NULL;
		st->ready = true;
		st->level = level;
		if (tune && deflateTune(&st->zs, DICT_GOOD, DICT_LAZY, DICT_NICE, DICT_CHAIN) != Z_OK)
			return NULL;
		return &st->zs;
	}
	if (deflateReset(&st->zs) != Z_OK)
		return NULL;
	/* Right after a reset nothing is pending, so changing the level flushes
	 * nothing into the next message. It comes before any dictionary:
	 * deflateParams may clear the hash chains. */
	if (level != st->level) {
		if (deflateParams(&st->zs, level, Z_DEFAULT_STRATEGY) != Z_OK)
			return NULL;
		st->level = level;
	}
	/* deflateReset and deflateParams restore the level's search
	 * parameters, so the tuning is set again for every frame. */
	if (tune && deflateTune(&st->zs, DICT_GOOD, DICT_LAZY, DICT_NICE, DICT_CHAIN) != Z_OK)
		return NULL;
	return &st->zs;
}

static bool scratch_reserve(size_t need)
{
	uint8_t *p;

	if (need <= defl.scratch_cap)
		return true;
	p = realloc(defl.scratch, need);
	if (!p)
		return false;
	defl.scratch = p;
	defl.scratch_cap = need;
	return true;
}

/* Runs deflate over the input already set with the given flush, growing the
 * scratch buffer whenever zlib fills it. *used counts the output so far. */
static bool defl_run(z_stream *zs, int flush, size_t *used)
{
	for (;;) {
		int ret;

		if (*used == defl.scratch_cap && !scratch_reserve(defl.scratch_cap * 2))
			return false;
		zs->next_out = defl.scratch + *used;
		zs->avail_out = (uInt)(defl.scratch_cap - *used < UINT_MAX
				       ? defl.scratch_cap - *used : UINT_MAX);
		ret = deflate(zs, flush);
		*used = (size_t)(zs->next_out - defl.scratch);
		if (ret == Z_STREAM_ERROR)
			return false;
		/* Done when zlib stopped with room to spare and no input left;
		 * with a full buffer it may have more to write (zlib.h). */
		if (zs->avail_out != 0 && zs->avail_in == 0)
			return true;
	}
}

/* window_bits: the receiver's window, 8..15 (checked by the callers). */
static struct buf *build(enum ws_opcode op, const struct ws_part *parts, size_t nparts,
			 const uint8_t *dict, size_t dict_len, int window_bits, int level)
{
	uint8_t hdr[WS_MAX_FRAME_HEADER];
	size_t total = 0, used = 0, hlen, need, window = (size_t)1 << window_bits;
	struct buf *b = NULL;
	z_stream *zs;

	/* RFC 7692 §6.1: RSV1 only on the first frame of a data message. */
	assert(op == WS_OP_TEXT || op == WS_OP_BINARY);
	if (level < Z_DEFAULT_COMPRESSION || level > PMD_LEVEL_DICT)
		return NULL;
	/* A window of 2^8 bytes is deflated with 2^9: zlib's farthest
	 * distance is then 2^9 - MIN_LOOKAHEAD (262) = 250 bytes, within 256. */
	zs = defl_start(window_bits < WBITS_MIN ? WBITS_MIN : window_bits, level);
	if (!zs)
		return NULL;
	/* The suffix rule: the newest bytes of the client's window. */
	if (dict && dict_len) {
		if (dict_len > window) {
			dict += dict_len - window;
			dict_len = window;
		}
		if (deflateSetDictionary(zs, dict, (uInt)dict_len) != Z_OK)
			return NULL;
	}
	for (size_t i = 0; i < nparts; i++)
		total += parts[i].len;
	/* deflateBound holds for Z_FINISH; the sync flush adds at most an
	 * empty stored block. Past SCRATCH_START the buffer grows only as the
	 * output needs, so 10 MB of zeros do not reserve 10 MB. */
	need = deflateBound(zs, total) + 16;
	if (!scratch_reserve(need < SCRATCH_START ? need : SCRATCH_START))
		return NULL;
	for (size_t i = 0; i < nparts; i++) {
		const uint8_t *p = parts[i].data;
		size_t left = parts[i].len;

		/* avail_in is a uInt: feed very large parts in pieces. */
		while (left) {
			uInt n = left < UINT_MAX ? (uInt)left : UINT_MAX;

			zs->next_in = (Bytef *)p;
			zs->avail_in = n;
			if (!defl_run(zs, Z_NO_FLUSH, &used))
				goto out_trim;
			p += n;
			left -= n;
		}
	}
	zs->next_in = Z_NULL;
	zs->avail_in = 0;
	if (!defl_run(zs, Z_SYNC_FLUSH, &used))
		goto out_trim;
	/* §7.2.1: the flush ends with 00 00 ff ff, which is dropped. What is
	 * left always holds at least the empty stored block's header bits, so
	 * an empty message becomes the single octet 0x00 (§7.2.3.6). */
	if (used < 5 || memcmp(defl.scratch + used - 4, tail, 4) != 0)
		goto out_trim;
	used -= 4;
	hlen = ws_frame_header(hdr, op, true, used);
	b = buf_new(hlen + used);
	if (!b)
		goto out_trim;
	memcpy(b->data, hdr, hlen);
	memcpy(b->data + hlen, defl.scratch, used);
out_trim:
	/* An outlier does not keep its scratch buffer. */
	if (defl.scratch_cap > SCRATCH_KEEP) {
		free(defl.scratch);
		defl.scratch = NULL;
		defl.scratch_cap = 0;
	}
	return b;
}

struct buf *pmd_frame(enum ws_opcode op, const struct ws_part *parts, size_t nparts,
		      int level)
{
	if (level > Z_BEST_COMPRESSION)
		return NULL;
	return build(op, parts, nparts, NULL, 0, WBITS, level);
}

struct buf *pmd_frame_with_dict(enum ws_opcode op, const struct ws_part *parts,
				size_t nparts, const uint8_t *dict, size_t dict_len,
				int window_bits, int level)
{
	if (window_bits < 8 || window_bits > WBITS)
		return NULL;
	return build(op, parts, nparts, dict, dict_len, window_bits, level);
}

void pmd_cleanup(void)
{
	for (int i = 0; i < NSTREAMS; i++) {
		if (defl.s[i].ready)
			deflateEnd(&defl.s[i].zs);
		defl.s[i].ready = false;
	}
	free(defl.scratch);
	defl.scratch = NULL;
	defl.scratch_cap = 0;
}

size_t pmd_deflate_footprint(void)
{
	return defl.zmem + defl.scratch_cap;
}

/* ---- the window model ---- */

void pmd_window_init(struct pmd_window *w, const struct pmd_params *params)
{
	w->last_id = PMD_NO_ID;
	w->suffix = 0;
	w->deflate = params != NULL;
	w->shared = params && params->shared;
	w->window_bits = (uint8_t)(params ? params->server_max_window_bits : WBITS);
}

enum pmd_send pmd_window_choose(const struct pmd_window *w, bool held,
				struct pmd_group_key *key)
{
	if (!w->deflate)
		return PMD_SEND_PLAIN;
	key->window_bits = w->window_bits;
	if (w->shared && w->last_id != PMD_NO_ID && held) {
		key->dict_id = w->last_id;
		key->suffix = w->suffix;
		return PMD_SEND_DICT;
	}
	key->dict_id = PMD_NO_ID;
	key->suffix = 0;
	return PMD_SEND_SELF;
}

void pmd_window_sent(struct pmd_window *w, uint64_t id, bool compressed)
{
	/* Plain: the client's inflater never sees it (RSV1 clear). */
	if (!compressed)
		return;
	/* Standalone clients reset their window per message; shared ones now
	 * hold this payload as their newest bytes, or bytes we cannot name. */
	w->last_id = w->shared ? id : PMD_NO_ID;
	w->suffix = 0;
}

void pmd_window_sent_suffix(struct pmd_window *w, uint64_t id, size_t suffix_len)
{
	pmd_window_sent(w, suffix_len ? id : PMD_NO_ID, true);
	if (w->last_id != PMD_NO_ID)
		w->suffix = suffix_len;
}

/* ---- decompression ---- */

struct pmd_inflater {
	z_stream zs;
	size_t zmem;     /* bytes zlib holds */
	bool takeover;   /* keep the window from one message to the next */
	bool ready;      /* inflateInit2 done */
	bool restart;    /* takeover: the last message ended its DEFLATE stream */
};

int pmd_inflater_new(bool context_takeover, struct pmd_inflater **out)
{
	struct pmd_inflater *inf = calloc(1, sizeof(*inf));

	*out = NULL;
	if (!inf)
		return PMD_ERR_NOMEM;
	inf->takeover = context_takeover;
	inf->zs.zalloc = counted_alloc;
	inf->zs.zfree = counted_free;
	inf->zs.opaque = &inf->zmem;
	*out = inf;
	return PMD_OK;
}

void pmd_inflater_free(struct pmd_inflater *inf)
{
	if (!inf)
		return;
	if (inf->ready)
		inflateEnd(&inf->zs);
	free(inf);
}

size_t pmd_inflater_footprint(const struct pmd_inflater *inf)
{
	return sizeof(*inf) + inf->zmem;
}

/*
 * After a block with BFINAL set, zlib's stream is over, but RFC 7692 §7.2.1
 * lets more blocks follow, and they may still refer back into the window.
 * So the stream is restarted with the old window as its dictionary. This
 * path is rare (browsers and ws never send BFINAL), so the 32 KB copy lives
 * in static storage, not on the stack or in every inflater.
 */
static bool restart_keep_window(z_stream *zs)
{
	static uint8_t window[1u << WBITS];
	uInt n = 0;

	if (inflateGetDictionary(zs, window, &n) != Z_OK ||
	    inflateReset(zs) != Z_OK)
		return false;
	return n == 0 || inflateSetDictionary(zs, window, n) == Z_OK;
}

/* First allocation for the output: a guess from the input size, at most the
 * cap. It doubles as needed, never past the cap. */
static size_t first_cap(size_t len, size_t max_out)
{
	size_t guess = len > SIZE_MAX / 4 ? SIZE_MAX : len * 4;

	if (guess < 1024)
		guess = 1024;
	return guess < max_out ? guess : max_out;
}

static int inflate_fail(struct pmd_inflater *inf, int err, uint8_t *buf,
			uint8_t **out, size_t *out_len)
{
	free(buf);
	*out = NULL;
	*out_len = 0;
	/* Leave a defined state behind; with takeover the window is gone and
	 * the connection is being failed anyway (RFC 7692 §8). */
	inflateReset(&inf->zs);
	inf->restart = false;
	return err;
}

int pmd_inflate(struct pmd_inflater *inf, const uint8_t *in, size_t len, size_t max_out,
		uint8_t **out, size_t *out_len)
{
	size_t cap = first_cap(len, max_out), produced = 0;
	bool in_tail = false, probing = false;
	uint8_t probe, *buf;

	*out = NULL;
	*out_len = 0;
	if (!inf->ready) {
		if (inflateInit2(&inf->zs, -WBITS) != Z_OK)
			return PMD_ERR_NOMEM;
		inf->ready = true;
	} else if (!inf->takeover) {
		/* §7.2.2: with client_no_context_takeover every message starts
		 * from an empty window. */
		if (inflateReset(&inf->zs) != Z_OK)
			return PMD_ERR_NOMEM;
	} else if (inf->restart) {
		if (!restart_keep_window(&inf->zs))
			return PMD_ERR_NOMEM;
		inf->restart = false;
	}
	/* A compressed message is never empty (§7.2.3.6 sends 0x00 for that),
	 * but an empty payload can only mean an empty message: accept it. */
	if (len == 0) {
		*out = malloc(1);
		return *out ? PMD_OK : PMD_ERR_NOMEM;
	}
	/* The +1 keeps malloc(0) out of the picture; max_out stays the cap. */
	buf = malloc(cap ? cap : 1);
	if (!buf)
		return PMD_ERR_NOMEM;
	inf->zs.next_in = (Bytef *)in;
	inf->zs.avail_in = 0;
	inf->zs.next_out = buf;
	inf->zs.avail_out = (uInt)(cap < UINT_MAX ? cap : UINT_MAX);
	for (;;) {
		int ret;
		size_t before_in, before_out;

		if (inf->zs.avail_in == 0 && !in_tail && len == 0) {
			/* The message is in; now the four octets it lost. */
			inf->zs.next_in = (Bytef *)tail;
			inf->zs.avail_in = sizeof(tail);
			in_tail = true;
		} else if (inf->zs.avail_in == 0 && !in_tail) {
			uInt n = len < UINT_MAX ? (uInt)len : UINT_MAX;

			inf->zs.avail_in = n;
			len -= n;
		}
		if (inf->zs.avail_out == 0) {
			if (produced == cap && cap < max_out) {
				size_t ncap = cap > max_out / 2 ? max_out : cap * 2;
				uint8_t *nbuf = realloc(buf, ncap);

				if (!nbuf)
					return inflate_fail(inf, PMD_ERR_NOMEM, buf, out, out_len);
				buf = nbuf;
				cap = ncap;
			} else if (produced == cap) {
				/* The buffer is full at the cap. Whether the
				 * message is longer shows when one more byte comes
				 * out: give zlib room for exactly one. */
				probing = true;
			}
			if (probing) {
				inf->zs.next_out = &probe;
				inf->zs.avail_out = 1;
			} else {
				inf->zs.next_out = buf + produced;
				inf->zs.avail_out = (uInt)(cap - produced < UINT_MAX
							   ? cap - produced : UINT_MAX);
			}
		}
		before_in = inf->zs.avail_in;
		before_out = inf->zs.avail_out;
		ret = inflate(&inf->zs, Z_SYNC_FLUSH);
		if (!probing)
			produced = (size_t)(inf->zs.next_out - buf);
		if (ret == Z_MEM_ERROR)
			return inflate_fail(inf, PMD_ERR_NOMEM, buf, out, out_len);
		if (ret == Z_DATA_ERROR || ret == Z_NEED_DICT || ret == Z_STREAM_ERROR)
			return inflate_fail(inf, PMD_ERR_CORRUPT, buf, out, out_len);
		if (probing && inf->zs.avail_out == 0)
			return inflate_fail(inf, PMD_ERR_TOO_BIG, buf, out, out_len);
		if (ret == Z_STREAM_END) {
			if (in_tail || (inf->zs.avail_in == 0 && len == 0)) {
				/* The message ended with a BFINAL block; what is
				 * left of the appended tail means nothing. */
				if (inf->takeover)
					inf->restart = true;
				break;
			}
			if (!restart_keep_window(&inf->zs))
				return inflate_fail(inf, PMD_ERR_NOMEM, buf, out, out_len);
			continue;
		}
		if (in_tail && inf->zs.avail_in == 0 && inf->zs.avail_out != 0) {
			/* All input is in and zlib stopped for want of more, not
			 * of room. A sound message stops right after the empty
			 * stored block we appended, between two blocks. */
			if (!(inf->zs.data_type & 128))
				return inflate_fail(inf, PMD_ERR_CORRUPT, buf, out, out_len);
			break;
		}
		if (inf->zs.avail_in == before_in && inf->zs.avail_out == before_out &&
		    inf->zs.avail_in != 0)
			return inflate_fail(inf, PMD_ERR_CORRUPT, buf, out, out_len);
	}
	*out = buf;
	*out_len = produced;
	return PMD_OK;
}
