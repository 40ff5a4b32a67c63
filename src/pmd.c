#include "autoconfig.h"

#include "pmd.h"
#include "pmdneg.h"

#include <assert.h>
#include <limits.h>
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

void pmd_window_init(struct pmd_window *w, const struct pmdneg_params *params)
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
