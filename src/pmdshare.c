#include "autoconfig.h"

#include "pmdshare.h"
#include "ws.h"

#include <stdlib.h>
#include <string.h>

/* One cached frame: what clients with this key get. */
struct variant {
	uint64_t dict_id;
	size_t suffix;
	uint8_t window_bits;
	bool compressed;   /* false: compressing did not pay, frame is the plain one */
	struct buf *frame;
};

struct pmd_msg {
	int refs;
	uint64_t id;          /* PMD_NO_ID for a per-client tail message */
	uint64_t suffix_of;   /* tail messages: the payload they end like */
	size_t suffix_len;
	struct buf *frame;    /* the plain frame */
	size_t payload_off;   /* its header's length */
	int level;
	struct pmd_msg *kept; /* pmd_msg_keep's chain */
	unsigned nvariants;
	struct variant variants[PMDSHARE_CACHE];
};

/*
 * The registry: one slot per live message with an id, reused after it is
 * freed. An id is the slot's index + 1 in its low 24 bits and the slot's
 * generation (how often it was taken) above: never 0, never the same for
 * two messages, and found in one look-up. It grows with the number of live
 * messages (a few per feed, plus those queue entries hold), not with time.
 */
#define SLOT_BITS 24
#define SLOT_MAX ((1u << SLOT_BITS) - 1)

struct slot {
	struct pmd_msg *m;   /* NULL: free */
	uint64_t gen;
};

static struct slot *slots;
static uint32_t nslots, slots_cap;
static uint32_t *free_slots;   /* a stack of free indexes */
static uint32_t nfree;
static struct pmdshare_stats stats;

/* Registers m: its id. PMD_NO_ID when out of memory (or 16 million live
 * messages): m then never serves as a dictionary, which is safe. */
static uint64_t slot_take(struct pmd_msg *m)
{
	uint32_t i;

	if (nfree) {
		i = free_slots[--nfree];
	} else {
		if (nslots == slots_cap) {
			uint32_t cap = slots_cap ? slots_cap * 2 : 64;
			struct slot *s;
			uint32_t *f;

			if (cap > SLOT_MAX)
				return PMD_NO_ID;
			s = realloc(slots, cap * sizeof(*s));
			if (!s)
				return PMD_NO_ID;
			slots = s;
			f = realloc(free_slots, cap * sizeof(*f));
			if (!f)
				return PMD_NO_ID;
			free_slots = f;
			slots_cap = cap;
		}
		i = nslots++;
		slots[i].gen = 0;
	}
	slots[i].m = m;
	slots[i].gen++;
	return slots[i].gen << SLOT_BITS | (uint64_t)(i + 1);
}

static void slot_give_back(uint64_t id)
{
	uint32_t i = (uint32_t)(id & SLOT_MAX) - 1;

	slots[i].m = NULL;
	free_slots[nfree++] = i;
}

/* Where the payload of a server frame starts (no mask, RFC 6455 §5.2). */
static size_t payload_off(const struct buf *frame)
{
	uint8_t l = frame->data[1] & 0x7f;

	return l < 126 ? 2 : l == 126 ? 4 : 10;
}

static struct pmd_msg *msg_alloc(struct buf *frame, int level)
{
	struct pmd_msg *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->refs = 1;
	m->frame = buf_ref(frame);
	m->payload_off = payload_off(frame);
	m->level = level;
	return m;
}

struct pmd_msg *pmd_msg_new(struct buf *frame, struct buf *standalone, int level)
{
	struct pmd_msg *m = msg_alloc(frame, level);

	if (!m)
		return NULL;
	m->id = slot_take(m);
	if (standalone) {
		m->variants[0] = (struct variant){
			.dict_id = PMD_NO_ID, .window_bits = 15, .compressed = true,
			.frame = buf_ref(standalone),
		};
		m->nvariants = 1;
	}
	return m;
}

struct pmd_msg *pmd_msg_new_tail(struct buf *frame, uint64_t suffix_of, size_t suffix_len,
				 int level)
{
	struct pmd_msg *m = msg_alloc(frame, level);

	if (!m)
		return NULL;
	m->suffix_of = suffix_len ? suffix_of : PMD_NO_ID;
	m->suffix_len = suffix_len;
	return m;
}

struct pmd_msg *pmd_msg_ref(struct pmd_msg *m)
{
	m->refs++;
	return m;
}

void pmd_msg_unref(struct pmd_msg *m)
{
	/* A loop, not recursion: a kept chain is at most PMDSHARE_KEEP long,
	 * but its links may each be the last reference. */
	while (m && --m->refs == 0) {
		struct pmd_msg *next = m->kept;

		if (m->id != PMD_NO_ID)
			slot_give_back(m->id);
		for (unsigned i = 0; i < m->nvariants; i++)
			buf_unref(m->variants[i].frame);
		buf_unref(m->frame);
		free(m);
		m = next;
	}
}

uint64_t pmd_msg_id(const struct pmd_msg *m)
{
	return m->id;
}

struct buf *pmd_msg_frame(const struct pmd_msg *m)
{
	return m->frame;
}

void pmd_msg_keep(struct pmd_msg *m, struct pmd_msg *prev)
{
	struct pmd_msg *p = m, *cut;

	if (!prev || prev == m || m->kept)
		return;
	m->kept = pmd_msg_ref(prev);
	/* m, then PMDSHARE_KEEP behind it: cut the link after the last. */
	for (unsigned depth = 0; depth < PMDSHARE_KEEP && p; depth++)
		p = p->kept;
	if (p && p->kept) {
		cut = p->kept;
		p->kept = NULL;
		pmd_msg_unref(cut);
	}
}

struct pmd_msg *pmd_msg_find(uint64_t id)
{
	struct pmd_msg *m;

	if (id == PMD_NO_ID)
		return NULL;
	if ((id & SLOT_MAX) == 0 || (id & SLOT_MAX) > nslots)
		return NULL;
	m = slots[(id & SLOT_MAX) - 1].m;
	return m && m->id == id ? m : NULL;
}

struct pmd_msg *pmd_msg_find_frame(const struct buf *frame)
{
	for (uint32_t i = 0; i < nslots; i++) {
		if (slots[i].m && slots[i].m->frame == frame)
			return slots[i].m;
	}
	return NULL;
}

static struct variant *cached(struct pmd_msg *m, const struct pmd_group_key *key)
{
	for (unsigned i = 0; i < m->nvariants; i++) {
		struct variant *v = &m->variants[i];

		if (v->dict_id == key->dict_id && v->suffix == key->suffix &&
		    v->window_bits == key->window_bits)
			return v;
	}
	return NULL;
}

/* Builds the frame for key; dict is the held payload for PMD_SEND_DICT. */
static bool build(struct pmd_msg *m, const struct pmd_group_key *key, const struct pmd_msg *dict,
		  struct variant *out)
{
	struct ws_part part = { m->frame->data + m->payload_off, m->frame->len - m->payload_off };
	const uint8_t *d = NULL;
	size_t dlen = 0;
	struct buf *z;

	if (dict) {
		d = dict->frame->data + dict->payload_off;
		dlen = dict->frame->len - dict->payload_off;
		if (key->suffix && key->suffix < dlen) {
			d += dlen - key->suffix;
			dlen = key->suffix;
		}
	}
	z = pmd_frame_with_dict(WS_OP_TEXT, &part, 1, d, dlen, key->window_bits,
				dict ? PMD_LEVEL_DICT : m->level);
	if (!z)
		return false;
	if (dict)
		stats.built_dict++;
	else
		stats.built_self++;
	*out = (struct variant){
		.dict_id = key->dict_id, .suffix = key->suffix, .window_bits = key->window_bits,
	};
	if (z->len < m->frame->len) {
		out->compressed = true;
		out->frame = z;
	} else {
		buf_unref(z);
		out->frame = buf_ref(m->frame);
	}
	return true;
}

static void record(const struct pmd_msg *m, struct pmd_window *w, bool compressed)
{
	if (compressed && m->id == PMD_NO_ID && m->suffix_of != PMD_NO_ID)
		pmd_window_sent_suffix(w, m->suffix_of, m->suffix_len);
	else
		pmd_window_sent(w, m->id, compressed);
}

struct buf *pmd_msg_bind(struct pmd_msg *m, struct pmd_window *w, bool *compressed)
{
	struct pmd_msg *dict = pmd_msg_find(w->last_id);
	struct pmd_group_key key;
	struct variant *v, fresh;
	struct buf *b;

	*compressed = false;
	switch (pmd_window_choose(w, dict != NULL, &key)) {
	case PMD_SEND_PLAIN:
		stats.plain++;
		return buf_ref(m->frame);
	case PMD_SEND_SELF:
		dict = NULL;
		break;
	case PMD_SEND_DICT:
		break;
	}
	v = cached(m, &key);
	if (v) {
		stats.hits++;
	} else if (build(m, &key, dict, &fresh)) {
		if (m->nvariants < PMDSHARE_CACHE) {
			v = &m->variants[m->nvariants++];
			*v = fresh;
		} else {
			/* A crowd of keys (it takes PMDSHARE_CACHE different
			 * dictionaries or window sizes): this client's own. */
			*compressed = fresh.compressed;
			record(m, w, fresh.compressed);
			return fresh.frame;
		}
	} else {
		stats.plain++;
		return buf_ref(m->frame); /* out of memory: plain is always safe */
	}
	*compressed = v->compressed;
	record(m, w, v->compressed);
	b = buf_ref(v->frame);
	return b;
}

void pmdshare_stats(struct pmdshare_stats *out)
{
	*out = stats;
}
