/* Shared-context permessage-deflate (issue 14): pmd_frame_with_dict and the
 * window model (pmd_window_*) against real zlib inflaters.
 *
 * The property test plays a server and N clients. Each client is a real
 * zlib raw inflater (inflateInit2 with -window_bits) that, with context
 * takeover, lives across messages as a browser's does, with 00 00 ff ff
 * appended to each message (RFC 7692 §7.2.2). The server knows nothing of
 * those inflaters: it groups clients by pmd_window_choose's key, builds one
 * frame per group with pmd_frame_with_dict, and tells pmd_window_sent what
 * went out. Random sequences of broadcasts (dashboard-shaped documents of
 * 1 KB to 60 KB, some past the 32 KB window, and small patch-like messages),
 * joins, leaves, latest-wins skips, plain packets (pings, acks, errors),
 * compressed per-client acks, payloads dropped from the server's history,
 * window sizes 8 to 15 and clients that refuse context takeover. Every
 * client must inflate every message byte for byte.
 *
 * The inflaters write at most 64 bytes per inflate() call, so zlib checks
 * each distance against the window the client really keeps (2^N bytes)
 * plus those few bytes, not against a large output buffer.
 *
 * Negative controls show the harness can fail: a dictionary the client
 * does not hold, a window larger than the client's, and two broken window
 * models run through the same simulation. */
#include "autoconfig.h"

#include <stdlib.h>
#include <zlib.h>

#include "pmd.h"
#include "pmdneg.h"
#include "tap.h"

#include "dashboard_doc.h"

#define OUT_CHUNK 64

static const uint8_t tail4[4] = { 0x00, 0x00, 0xff, 0xff };

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

/* ---- a client: a real zlib inflater ---- */

struct client {
	bool live;
	z_stream zs;
	int wbits;        /* the window it negotiated: its inflater keeps 2^wbits bytes */
	bool takeover;    /* the server's context carries over (pmdneg_params.shared) */
	bool deflate;     /* permessage-deflate negotiated */
	struct pmd_window w;
	unsigned slow;    /* percent of broadcasts it misses (latest-wins) */
};

enum { IN_OK = 0, IN_ERROR = 1, IN_MISMATCH = 2 };

/* What a browser does with one compressed message. */
static int client_inflate(struct client *c, const uint8_t *p, size_t len, const uint8_t *want,
			  size_t want_len)
{
	uint8_t *in = malloc(len + 4), *out = malloc(want_len + OUT_CHUNK);
	size_t produced = 0;
	int r = IN_OK;

	if (!in || !out)
		exit(1);
	memcpy(in, p, len);
	memcpy(in + len, tail4, 4);
	if (!c->takeover && inflateReset(&c->zs) != Z_OK)
		exit(1);
	c->zs.next_in = in;
	c->zs.avail_in = (uInt)(len + 4);
	for (;;) {
		int ret;

		c->zs.next_out = out + produced;
		c->zs.avail_out = OUT_CHUNK;
		ret = inflate(&c->zs, Z_SYNC_FLUSH);
		produced = (size_t)(c->zs.next_out - out);
		if (ret != Z_OK && ret != Z_BUF_ERROR) {
			if (getenv("DEBUG_INFLATE"))
				printf("# inflate: %d %s at %zu of %zu\n", ret, c->zs.msg ? c->zs.msg : "",
				       produced, want_len);
			r = IN_ERROR;
			break;
		}
		if (produced > want_len) {
			r = IN_MISMATCH;
			break;
		}
		/* All input in and room left over: nothing more will come. */
		if (c->zs.avail_in == 0 && c->zs.avail_out != 0)
			break;
		if (ret == Z_BUF_ERROR && c->zs.avail_out)
			break; /* no progress possible */
	}
	if (r == IN_OK && (c->zs.avail_in || produced != want_len || memcmp(out, want, want_len)))
		r = IN_MISMATCH;
	free(in);
	free(out);
	return r;
}

static void client_open(struct client *c, int wbits, bool takeover)
{
	memset(c, 0, sizeof(*c));
	c->live = true;
	c->wbits = wbits;
	c->takeover = takeover;
	c->deflate = true;
	if (inflateInit2(&c->zs, -wbits) != Z_OK)
		exit(1);
}

static void client_close(struct client *c)
{
	inflateEnd(&c->zs);
	c->live = false;
}

/* ---- the server's history: payloads it still holds, with their frames ---- */

#define HIST_MAX 4
#define GROUPS_MAX 64

struct message {
	uint64_t id;
	uint8_t *payload;
	size_t len;
	size_t ngroups;
	struct {
		struct pmd_group_key key;
		struct buf *frame;
	} groups[GROUPS_MAX];
};

struct sim {
	struct message hist[HIST_MAX]; /* [0] the newest */
	size_t nhist, keep;            /* keep: how many payloads the server holds */
	uint64_t next_id;
	int level;
	int bug;                       /* negative control: 0, or a broken model */
	/* counts */
	size_t deliveries, compressed, frames, failures, errors, mismatches, plain, dict_sends,
		self_sends, private_sends, suffix_acks, bytes_z, bytes_plain, broadcasts;
};

static const struct message *held(const struct sim *s, uint64_t id)
{
	for (size_t i = 0; i < s->nhist; i++)
		if (s->hist[i].id == id)
			return &s->hist[i];
	return NULL;
}

static void message_free(struct message *m)
{
	for (size_t g = 0; g < m->ngroups; g++)
		buf_unref(m->groups[g].frame);
	free(m->payload);
	memset(m, 0, sizeof(*m));
}

/* The server keeps s->keep payloads; older ones and their frames are freed. */
static void hist_push(struct sim *s, uint8_t *payload, size_t len)
{
	while (s->nhist && (s->nhist >= s->keep || s->nhist == HIST_MAX))
		message_free(&s->hist[--s->nhist]);
	memmove(&s->hist[1], &s->hist[0], s->nhist * sizeof(s->hist[0]));
	memset(&s->hist[0], 0, sizeof(s->hist[0]));
	s->hist[0].id = ++s->next_id;
	s->hist[0].payload = payload;
	s->hist[0].len = len;
	s->nhist++;
}

/* The dictionary a key names: the payload, or its last key->suffix bytes. */
static size_t dict_len_of(const struct message *d, const struct pmd_group_key *k)
{
	return k->suffix && k->suffix < d->len ? k->suffix : d->len;
}

static const uint8_t *dict_of(const struct message *d, const struct pmd_group_key *k)
{
	return d->payload + d->len - dict_len_of(d, k);
}

/* The frame of m for a group: built on first use, cached with m. */
static struct buf *group_frame(struct sim *s, struct message *m, const struct pmd_group_key *k)
{
	const struct message *d = NULL;
	struct ws_part part = { m->payload, m->len };
	struct buf *f;

	for (size_t g = 0; g < m->ngroups; g++)
		if (m->groups[g].key.dict_id == k->dict_id &&
		    m->groups[g].key.suffix == k->suffix &&
		    m->groups[g].key.window_bits == k->window_bits)
			return m->groups[g].frame;
	if (k->dict_id != PMD_NO_ID && !(d = held(s, k->dict_id)))
		exit(2); /* choose said DICT only for held payloads */
	f = pmd_frame_with_dict(WS_OP_TEXT, &part, 1, d ? dict_of(d, k) : NULL,
				d ? dict_len_of(d, k) : 0, k->window_bits, s->level);
	if (!f || m->ngroups == GROUPS_MAX)
		exit(1);
	m->groups[m->ngroups].key = *k;
	m->groups[m->ngroups].frame = f;
	m->ngroups++;
	s->frames++;
	return f;
}

static void record(struct sim *s, int r)
{
	if (r != IN_OK)
		s->failures++;
	if (r == IN_ERROR)
		s->errors++;
	if (r == IN_MISMATCH)
		s->mismatches++;
}

/* Sends message m to client c as the server would. */
static void deliver(struct sim *s, struct client *c, struct message *m)
{
	struct pmd_group_key k;
	const struct message *d = held(s, c->w.last_id);
	enum pmd_send how = pmd_window_choose(&c->w, d != NULL, &k);
	const uint8_t *p;
	size_t plen;
	struct buf *f;

	s->deliveries++;
	/* Now and then the server sends plain anyway (a frame not worth it). */
	if (how == PMD_SEND_PLAIN || rnd(100) < 5) {
		s->plain++;
		s->bytes_plain += m->len;
		if (s->bug == 1)
			c->w.last_id = m->id; /* broken: plain sends "enter" the window */
		else
			pmd_window_sent(&c->w, m->id, false);
		return;
	}
	if (how == PMD_SEND_DICT)
		s->dict_sends++;
	else
		s->self_sends++;
	f = group_frame(s, m, &k);
	p = payload_of(f, &plen);
	if (!p || f->data[0] != 0xc1)
		exit(1);
	s->compressed++;
	s->bytes_z += plen;
	record(s, client_inflate(c, p, plen, m->payload, m->len));
	pmd_window_sent(&c->w, m->id, true);
}

/* A per-client packet: plain (ping, ack, error) or compressed for this
 * client alone (an ack carrying a document), with or without a dictionary. */
static void private_packet(struct sim *s, struct client *c)
{
	char text[256];
	int n;

	if (rnd(3)) {
		static const char *const plain[] = {
			"2", "430[{\"ok\":true}]",
			"42[\"dashboardError\",{\"code\":\"query_failed\",\"message\":\"timeout\"}]",
		};
		const char *t = plain[rnd(3)];

		s->bytes_plain += strlen(t);
		pmd_window_sent(&c->w, PMD_NO_ID, false);
		return;
	}
	if (!c->deflate)
		return;
	if (rnd(2) && s->nhist && s->hist[0].len > 1) {
		/* An ack carrying the current document: "43<n>[" and the last
		 * bytes of the newest payload, which the record can then name. */
		const struct message *cur = &s->hist[0];
		size_t tl = 1 + rnd((unsigned)cur->len - 1);
		char head[16];
		int hl = snprintf(head, sizeof(head), "43%u[", rnd(1000));
		uint8_t *ack = malloc((size_t)hl + tl);
		struct pmd_group_key k;
		const struct message *d = held(s, c->w.last_id);
		enum pmd_send how = pmd_window_choose(&c->w, d != NULL, &k);
		struct ws_part part;
		struct buf *f;
		const uint8_t *p;
		size_t plen;

		if (!ack)
			exit(1);
		memcpy(ack, head, (size_t)hl);
		memcpy(ack + hl, cur->payload + cur->len - tl, tl);
		part = (struct ws_part){ ack, (size_t)hl + tl };
		f = pmd_frame_with_dict(WS_OP_TEXT, &part, 1,
					how == PMD_SEND_DICT ? dict_of(d, &k) : NULL,
					how == PMD_SEND_DICT ? dict_len_of(d, &k) : 0, k.window_bits,
					s->level);
		if (!f || !(p = payload_of(f, &plen)))
			exit(1);
		s->private_sends++;
		s->suffix_acks++;
		record(s, client_inflate(c, p, plen, ack, part.len));
		if (s->bug == 4)
			pmd_window_sent(&c->w, cur->id, true); /* broken: claims all of it */
		else
			pmd_window_sent_suffix(&c->w, cur->id, tl);
		buf_unref(f);
		free(ack);
		return;
	}
	n = snprintf(text, sizeof(text), "43%u[{\"summary\":{\"revenueToday\":%u.%02u}}]",
		     rnd(1000), rnd(5000), rnd(100));
	{
		struct pmd_group_key k;
		const struct message *d = held(s, c->w.last_id);
		enum pmd_send how = pmd_window_choose(&c->w, d != NULL, &k);
		struct ws_part part = { text, (size_t)n };
		struct buf *f = pmd_frame_with_dict(WS_OP_TEXT, &part, 1,
						    how == PMD_SEND_DICT ? dict_of(d, &k) : NULL,
						    how == PMD_SEND_DICT ? dict_len_of(d, &k) : 0,
						    k.window_bits, s->level);
		const uint8_t *p;
		size_t plen;

		if (!f || !(p = payload_of(f, &plen)))
			exit(1);
		s->private_sends++;
		record(s, client_inflate(c, p, plen, (const uint8_t *)text, (size_t)n));
		if (s->bug == 2 && d)
			; /* broken: the ack is forgotten, the record keeps last_id */
		else
			pmd_window_sent(&c->w, PMD_NO_ID, true);
		buf_unref(f);
	}
}

/* A new document: a fresh dashboard of 1 to 60 KB, the previous one with a
 * few digits changed (a sale), or a small patch-like message. */
static uint8_t *new_payload(const struct sim *s, size_t *len)
{
	unsigned kind = rnd(10);
	uint8_t *p;

	if (kind < 4 && s->nhist && s->hist[0].len > 200) {
		size_t n = s->hist[0].len;

		p = malloc(n);
		if (!p)
			exit(1);
		memcpy(p, s->hist[0].payload, n);
		for (unsigned i = 0, k = 1 + rnd(20); i < k; i++) {
			size_t at = rnd((unsigned)n);

			if (p[at] >= '0' && p[at] <= '9')
				p[at] = (uint8_t)('0' + rnd(10));
		}
		*len = n;
		return p;
	}
	if (kind < 6) {
		struct sb b = { malloc(256), 0, 256 };

		sb_printf(&b, "42[\"dashboardDataPatch\",{\"from\":%u,\"to\":%u,\"patch\":[", rnd(1000),
			  rnd(1000));
		for (unsigned i = 0, k = 1 + rnd(12); i < k; i++)
			sb_printf(&b, "%s{\"op\":\"replace\",\"path\":\"/summary/revenueToday\","
				  "\"value\":%u.%02u}", i ? "," : "", rnd(5000), rnd(100));
		sb_printf(&b, "]}]");
		*len = b.len;
		return (uint8_t *)b.s;
	}
	return (uint8_t *)dashboard_doc(1024 + rnd(60 * 1024), len);
}

static void join(struct sim *s, struct client *c)
{
	static const int wb[] = { 8, 9, 10, 12, 14, 15, 15, 15, 15, 15 };
	char offer[128];
	struct pmdneg_params params;
	char resp[PMDNEG_RESPONSE_MAX];
	int wbits = wb[rnd(10)];
	bool refuse = rnd(5) == 0; /* offers server_no_context_takeover */
	int n;

	n = snprintf(offer, sizeof(offer), "permessage-deflate%s%s",
		     refuse ? "; server_no_context_takeover" : "",
		     wbits < 15 ? "; server_max_window_bits=" : "; client_max_window_bits");
	if (wbits < 15)
		snprintf(offer + n, sizeof(offer) - (size_t)n, "%d", wbits);
	client_open(c, wbits, !refuse);
	if (rnd(10) == 0) {
		/* No permessage-deflate at all. */
		c->deflate = false;
		pmd_window_init(&c->w, NULL);
	} else {
		if (pmdneg_negotiate_mode(PMDNEG_MODE_SHARED, offer, strlen(offer), &params, resp,
				       sizeof(resp)) != PMDNEG_ACCEPTED ||
		    params.shared == refuse || params.server_max_window_bits != wbits)
			exit(3);
		pmd_window_init(&c->w, &params);
	}
	c->slow = rnd(3) == 0 ? 10 + rnd(60) : 0;
	/* A new member gets the current document at once. */
	if (s->nhist)
		deliver(s, c, &s->hist[0]);
}

#define NCLIENTS 12

static void simulate(struct sim *s, unsigned long seed, int steps)
{
	struct client cl[NCLIENTS];

	rng = seed;
	memset(cl, 0, sizeof(cl));
	s->level = (int[]){ 1, 6, PMD_LEVEL_DICT }[rnd(3)];
	s->keep = 1 + rnd(HIST_MAX);
	for (int i = 0; i < NCLIENTS / 2; i++)
		join(s, &cl[i]);
	for (int step = 0; step < steps; step++) {
		unsigned ev = rnd(100);
		struct client *c = &cl[rnd(NCLIENTS)];

		if (ev < 45) {
			size_t len;
			uint8_t *p = new_payload(s, &len);

			hist_push(s, p, len);
			s->broadcasts++;
			for (int i = 0; i < NCLIENTS; i++)
				if (cl[i].live && rnd(100) >= cl[i].slow)
					deliver(s, &cl[i], &s->hist[0]);
		} else if (ev < 55) {
			if (!c->live)
				join(s, c);
		} else if (ev < 60) {
			if (c->live)
				client_close(c);
		} else if (ev < 63) {
			/* The server's memory: now it keeps fewer or more. */
			s->keep = 1 + rnd(HIST_MAX);
		} else if (ev < 68) {
			/* A slow client catches up on the newest version. */
			if (c->live && s->nhist)
				deliver(s, c, &s->hist[0]);
		} else {
			if (c->live)
				private_packet(s, c);
		}
	}
	for (int i = 0; i < NCLIENTS; i++)
		if (cl[i].live)
			client_close(&cl[i]);
	while (s->nhist)
		message_free(&s->hist[--s->nhist]);
}

/* ---- the same with output queues and latest-wins, as conn.c has them ----
 *
 * Each client has a queue. A new snapshot replaces an unsent one (latest
 * wins); a client drains its queue at its own pace. The frame of a queued
 * snapshot, and the window record, are bound when the entry is written,
 * in queue order: that is the rule for the wiring. Bug 3 binds them when
 * the entry is queued instead, and must fail once latest-wins drops one. */

#define QMAX 8

struct qent {
	bool snapshot;
	struct message m;     /* snapshot: its own copy of id and payload */
	struct buf *bound;    /* bug 3: the frame chosen at queue time */
	bool bound_plain;
};

struct queue {
	struct qent e[QMAX];
	size_t n;
};

static void qent_free(struct qent *e)
{
	buf_unref(e->bound);
	message_free(&e->m);
	memset(e, 0, sizeof(*e));
}

static void q_remove(struct queue *q, size_t i)
{
	qent_free(&q->e[i]);
	memmove(&q->e[i], &q->e[i + 1], (q->n - i - 1) * sizeof(q->e[0]));
	memset(&q->e[--q->n], 0, sizeof(q->e[0]));
}

/* Writes the head of c's queue. */
static void q_write(struct sim *s, struct client *c, struct queue *q)
{
	struct qent *e = &q->e[0];

	if (!q->n)
		return;
	if (!e->snapshot) {
		private_packet(s, c);
	} else if (e->bound) {
		const uint8_t *p;
		size_t plen;

		p = payload_of(e->bound, &plen);
		s->deliveries++;
		s->compressed++;
		record(s, client_inflate(c, p, plen, e->m.payload, e->m.len));
	} else if (e->bound_plain) {
		s->deliveries++;
	} else {
		struct message *m = NULL;

		for (size_t i = 0; i < s->nhist; i++)
			if (s->hist[i].id == e->m.id)
				m = &s->hist[i];
		/* Still held: its frames are cached with it. Otherwise the
		 * queue's own reference keeps the payload. */
		deliver(s, c, m ? m : &e->m);
	}
	q_remove(q, 0);
}

static void q_push(struct sim *s, struct client *c, struct queue *q, const struct message *m)
{
	struct qent *e;

	if (m) {
		for (size_t i = 0; i < q->n; i++)
			if (q->e[i].snapshot) {
				q_remove(q, i); /* latest wins */
				break;
			}
	}
	if (q->n == QMAX)
		q_write(s, c, q); /* the client reads on */
	e = &q->e[q->n++];
	memset(e, 0, sizeof(*e));
	if (!m)
		return;
	e->snapshot = true;
	e->m.id = m->id;
	e->m.len = m->len;
	e->m.payload = malloc(m->len ? m->len : 1);
	if (!e->m.payload)
		exit(1);
	memcpy(e->m.payload, m->payload, m->len);
	if (s->bug == 3) {
		/* broken: frame and record bound at queue time */
		struct pmd_group_key k;
		const struct message *d = held(s, c->w.last_id);
		enum pmd_send how = pmd_window_choose(&c->w, d != NULL, &k);

		if (how == PMD_SEND_PLAIN) {
			e->bound_plain = true;
			return;
		}
		e->bound = buf_ref(group_frame(s, (struct message *)m, &k));
		pmd_window_sent(&c->w, m->id, true);
	}
}

static void simulate_queued(struct sim *s, unsigned long seed, int steps)
{
	struct client cl[NCLIENTS];
	struct queue q[NCLIENTS];

	rng = seed;
	memset(cl, 0, sizeof(cl));
	memset(q, 0, sizeof(q));
	s->level = (int[]){ 1, 6, PMD_LEVEL_DICT }[rnd(3)];
	s->keep = 1 + rnd(HIST_MAX);
	for (int i = 0; i < NCLIENTS / 2; i++)
		join(s, &cl[i]);
	for (int step = 0; step < steps; step++) {
		unsigned ev = rnd(100), who = rnd(NCLIENTS);
		struct client *c = &cl[who];

		if (ev < 35) {
			size_t len;
			uint8_t *p = new_payload(s, &len);

			hist_push(s, p, len);
			s->broadcasts++;
			for (int i = 0; i < NCLIENTS; i++)
				if (cl[i].live)
					q_push(s, &cl[i], &q[i], &s->hist[0]);
		} else if (ev < 70) {
			/* Everyone reads at its own pace. */
			for (int i = 0; i < NCLIENTS; i++)
				for (unsigned k = cl[i].slow ? rnd(2) : rnd(4); k && cl[i].live; k--)
					q_write(s, &cl[i], &q[i]);
		} else if (ev < 76) {
			if (!c->live) {
				join(s, c);
				if (s->nhist)
					q_push(s, c, &q[who], &s->hist[0]);
			}
		} else if (ev < 79) {
			if (c->live) {
				client_close(c);
				while (q[who].n)
					q_remove(&q[who], 0);
			}
		} else if (ev < 82) {
			s->keep = 1 + rnd(HIST_MAX);
		} else if (c->live) {
			q_push(s, c, &q[who], NULL); /* a per-client packet, in order */
		}
	}
	for (int i = 0; i < NCLIENTS; i++) {
		while (cl[i].live && q[i].n)
			q_write(s, &cl[i], &q[i]);
		while (q[i].n)
			q_remove(&q[i], 0);
		if (cl[i].live)
			client_close(&cl[i]);
	}
	while (s->nhist)
		message_free(&s->hist[--s->nhist]);
}

static void test_queued(void)
{
	size_t deliveries = 0, dict = 0, frames = 0, bad = 0;

	for (unsigned long seed = 1; seed <= 8; seed++) {
		struct sim s = { 0 }, t = { .bug = 3 };

		simulate_queued(&s, seed * 104729, 200);
		is_int(s.failures, 0, "queued, seed %lu: %zu deliveries (%zu with a dictionary), %zu "
		       "frames built: every message inflated exactly", seed, s.deliveries,
		       s.dict_sends, s.frames);
		deliveries += s.deliveries;
		dict += s.dict_sends;
		frames += s.frames;
		simulate_queued(&t, seed * 104729, 200);
		bad += t.failures;
	}
	printf("# queued: %zu deliveries, %zu with a dictionary, %zu frames built\n", deliveries,
	       dict, frames);
	ok(bad > 0, "negative control: binding the frame when queued, not when written, fails "
	   "under latest-wins (%zu failed messages)", bad);
}

static void test_property(void)
{
	struct sim total = { 0 };

	for (unsigned long seed = 1; seed <= 12; seed++) {
		struct sim s = { 0 };

		simulate(&s, seed * 7919, 150);
		is_int(s.failures, 0, "seed %lu: %zu deliveries, %zu compressed (%zu with a dictionary), "
		       "%zu frames built, %zu per-client acks: every message inflated exactly", seed,
		       s.deliveries, s.compressed, s.dict_sends, s.frames, s.private_sends);
		total.deliveries += s.deliveries;
		total.compressed += s.compressed;
		total.dict_sends += s.dict_sends;
		total.self_sends += s.self_sends;
		total.frames += s.frames;
		total.plain += s.plain;
		total.private_sends += s.private_sends;
		total.suffix_acks += s.suffix_acks;
		total.bytes_z += s.bytes_z;
		total.broadcasts += s.broadcasts;
	}
	printf("# %zu broadcasts, %zu deliveries: %zu with a dictionary, %zu self-contained, "
	       "%zu plain, %zu per-client compressed acks (%zu carrying a suffix of the newest "
	       "payload); %zu frames built\n",
	       total.broadcasts, total.deliveries, total.dict_sends, total.self_sends, total.plain,
	       total.private_sends, total.suffix_acks, total.frames);
	ok(total.dict_sends > total.deliveries / 3, "the runs used dictionaries (%zu of %zu)",
	   total.dict_sends, total.deliveries);
	ok(total.self_sends > 50, "and self-contained frames (%zu)", total.self_sends);
}

/* The same simulation with a broken window model must fail. */
static void test_broken_models(void)
{
	size_t fail1 = 0, fail2 = 0, fail4 = 0;

	for (unsigned long seed = 1; seed <= 6; seed++) {
		struct sim s = { .bug = 1 }, t = { .bug = 2 }, u = { .bug = 4 };

		simulate(&s, seed * 7919, 150);
		fail1 += s.failures;
		simulate(&t, seed * 7919, 150);
		fail2 += t.failures;
		simulate(&u, seed * 7919, 150);
		fail4 += u.failures;
	}
	ok(fail4 > 0, "negative control: an ack recorded as the whole payload, not its suffix, "
	   "fails (%zu failed messages)", fail4);
	ok(fail1 > 0, "negative control: counting plain messages into the window fails "
	   "(%zu failed messages)", fail1);
	ok(fail2 > 0, "negative control: forgetting a compressed ack fails (%zu failed messages)",
	   fail2);
}

/* ---- the primitive, case by case ---- */

static struct buf *frame(const void *data, size_t len, const void *dict, size_t dict_len,
			 int wbits)
{
	struct ws_part part = { data, len };

	return pmd_frame_with_dict(WS_OP_TEXT, &part, 1, dict, dict_len, wbits, 6);
}

static void test_primitive(void)
{
	size_t alen, blen, clen, plen, qlen;
	char *a = dashboard_doc(29 * 1024, &alen), *b, *c2;
	struct ws_part part;
	struct buf *fa, *fb, *std, *fself;
	const uint8_t *p, *q;
	struct client cl;

	/* b is a after one "sale": a few digits changed. */
	b = malloc(alen);
	memcpy(b, a, alen);
	blen = alen;
	for (size_t i = 100; i < blen; i += blen / 7)
		if (b[i] >= '0' && b[i] <= '9')
			b[i] = b[i] == '9' ? '0' : b[i] + 1;
	c2 = dashboard_doc(29 * 1024, &clen);

	/* Without a dictionary at 15 bits: pmd_frame's frame. */
	part = (struct ws_part){ a, alen };
	std = pmd_frame(WS_OP_TEXT, &part, 1, 6);
	fself = frame(a, alen, NULL, 0, 15);
	ok(std && fself && std->len == fself->len && memcmp(std->data, fself->data, std->len) == 0,
	   "no dictionary, 15 bits: byte for byte pmd_frame's frame");
	buf_unref(fself);
	fself = frame(a, alen, a, 0, 15);
	ok(fself && fself->len == std->len && memcmp(std->data, fself->data, std->len) == 0,
	   "dict_len 0 is no dictionary");
	buf_unref(fself);
	ok(frame(a, 10, NULL, 0, 7) == NULL && frame(a, 10, NULL, 0, 16) == NULL,
	   "window bits 7 and 16 refused");
	ok(pmd_frame_with_dict(WS_OP_TEXT, &part, 1, NULL, 0, 15, 11) == NULL, "level 11 refused");
	ok(pmd_frame(WS_OP_TEXT, &part, 1, PMD_LEVEL_DICT) == NULL,
	   "PMD_LEVEL_DICT is for pmd_frame_with_dict only");

	/* A context-takeover inflater holding a in its window. */
	client_open(&cl, 15, true);
	fa = frame(a, alen, NULL, 0, 15);
	p = payload_of(fa, &plen);
	is_int(client_inflate(&cl, p, plen, (uint8_t *)a, alen), IN_OK,
	       "a self-contained frame inflates at a fresh context-takeover inflater");
	fb = frame(b, blen, a, alen, 15);
	q = payload_of(fb, &qlen);
	printf("# 29 KB document after a few digit changes: %zu B self-contained, %zu B with the "
	       "previous one as dictionary\n", plen, qlen);
	ok(qlen * 5 < plen, "with the previous document as dictionary: %zu B, not %zu", qlen, plen);
	is_int(client_inflate(&cl, q, qlen, (uint8_t *)b, blen), IN_OK,
	       "  inflates at the client holding the previous document");
	/* Self-contained frames decode whatever the window holds. */
	fself = frame(c2, clen, NULL, 0, 15);
	p = payload_of(fself, &plen);
	is_int(client_inflate(&cl, p, plen, (uint8_t *)c2, clen), IN_OK,
	       "a self-contained frame inflates at an inflater with another document in its window");
	/* The window now ends with c2: a frame made against a is wrong. */
	is_int(client_inflate(&cl, q, qlen, (uint8_t *)b, blen) != IN_OK, 1,
	       "negative control: a frame whose dictionary the client does not hold fails");
	client_close(&cl);

	/* Wrong dictionaries: another document of the same shape is always
	 * caught; a near miss (a few digits changed) is caught when the frame
	 * happens to copy one of the changed digits. */
	{
		size_t caught = 0, near = 0, trials = 20;

		for (size_t t = 0; t < trials; t++) {
			size_t xl, yl, ol;
			char *x = dashboard_doc(2048 + rnd(40000), &xl), *y, *other;
			struct buf *fx, *fy, *fo;

			y = malloc(xl);
			memcpy(y, x, xl);
			yl = xl;
			for (size_t i = 0; i < 40; i++) {
				size_t at = rnd((unsigned)yl);

				if (y[at] >= '0' && y[at] <= '9')
					y[at] = (char)('0' + (y[at] - '0' + 1) % 10);
			}
			other = dashboard_doc(xl, &ol);
			fx = frame(x, xl, NULL, 0, 15);
			/* the next document, deflated against a dictionary the
			 * client never got */
			fy = frame(b, blen, y, yl, 15);
			fo = frame(b, blen, other, ol, 15);
			for (int k = 0; k < 2; k++) {
				struct buf *f = k ? fo : fy;

				client_open(&cl, 15, true);
				p = payload_of(fx, &plen);
				if (client_inflate(&cl, p, plen, (uint8_t *)x, xl) != IN_OK)
					exit(1);
				q = payload_of(f, &qlen);
				if (client_inflate(&cl, q, qlen, (uint8_t *)b, blen) != IN_OK)
					*(k ? &caught : &near) += 1;
				client_close(&cl);
			}
			buf_unref(fx);
			buf_unref(fy);
			buf_unref(fo);
			free(x);
			free(y);
			free(other);
		}
		is_int(caught, trials, "negative control: %zu of %zu frames against another "
		       "document as dictionary fail to inflate or inflate wrong", caught, trials);
		ok(near > 0, "negative control: %zu of %zu frames against a near miss (40 digits "
		   "changed) fail", near, trials);
	}

	/* Window sizes: a frame built for 2^N decodes in a 2^N window; one built
	 * for 2^15 does not (zlib: invalid distance too far back). */
	for (int wb = 8; wb <= 15; wb++) {
		struct buf *f1 = frame(a, alen, NULL, 0, wb), *f2 = frame(b, blen, a, alen, wb);
		size_t l1, l2;
		const uint8_t *p1 = payload_of(f1, &l1), *p2 = payload_of(f2, &l2);
		int r1, r2;

		client_open(&cl, wb, true);
		r1 = client_inflate(&cl, p1, l1, (uint8_t *)a, alen);
		r2 = client_inflate(&cl, p2, l2, (uint8_t *)b, blen);
		ok(r1 == IN_OK && r2 == IN_OK, "window %2d bits: self-contained %5zu B and with the "
		   "dictionary %5zu B inflate in a 2^%d window", wb, l1, l2, wb);
		client_close(&cl);
		buf_unref(f1);
		buf_unref(f2);
		if (wb <= 12) {
			client_open(&cl, wb, true);
			p1 = payload_of(fa, &l1);
			r1 = client_inflate(&cl, p1, l1, (uint8_t *)a, alen);
			ok(r1 == IN_ERROR, "negative control: a 15-bit frame fails in a 2^%d window", wb);
			client_close(&cl);
		}
	}

	/* The dictionary is capped at the window: only its suffix counts. */
	{
		size_t big_len;
		char *big = dashboard_doc(60 * 1024, &big_len);
		struct buf *f1 = frame(b, blen, big, big_len, 15);
		struct buf *f2 = frame(b, blen, big + big_len - 32768, 32768, 15);

		ok(f1 && f2 && f1->len == f2->len && memcmp(f1->data, f2->data, f1->len) == 0,
		   "a 60 KB dictionary is its last 32 KB");
		buf_unref(f1);
		buf_unref(f2);
		f1 = frame(b, blen, big, big_len, 10);
		f2 = frame(b, blen, big + big_len - 1024, 1024, 10);
		ok(f1 && f2 && f1->len == f2->len && memcmp(f1->data, f2->data, f1->len) == 0,
		   "at 10 bits, its last 1 KB");
		buf_unref(f1);
		buf_unref(f2);
		free(big);
	}
	buf_unref(fa);
	buf_unref(fb);
	buf_unref(fself);
	buf_unref(std);
	free(a);
	free(b);
	free(c2);
}

/* ---- the window model, rule by rule ---- */

static void test_model(void)
{
	struct pmdneg_params shared = { .server_max_window_bits = 15, .shared = true,
				     .client_no_context_takeover = true };
	struct pmdneg_params alone = { .server_max_window_bits = 12, .server_no_context_takeover = true,
				    .client_no_context_takeover = true };
	struct pmd_window w;
	struct pmd_group_key k;

	pmd_window_init(&w, NULL);
	is_int(pmd_window_choose(&w, true, &k), PMD_SEND_PLAIN, "no permessage-deflate: plain");
	pmd_window_init(&w, &shared);
	is_int(pmd_window_choose(&w, true, &k), PMD_SEND_SELF, "new shared client: self-contained");
	ok(k.dict_id == PMD_NO_ID && k.window_bits == 15, "  key (none, 15)");
	pmd_window_sent(&w, 7, true);
	is_int(pmd_window_choose(&w, true, &k), PMD_SEND_DICT, "after 7 compressed: dictionary");
	ok(k.dict_id == 7 && k.window_bits == 15, "  key (7, 15)");
	is_int(pmd_window_choose(&w, false, &k), PMD_SEND_SELF, "7 no longer held: self-contained");
	pmd_window_sent(&w, 8, false);
	ok(pmd_window_choose(&w, true, &k) == PMD_SEND_DICT && k.dict_id == 7,
	   "8 sent plain: the window still ends with 7");
	pmd_window_sent(&w, PMD_NO_ID, true);
	is_int(pmd_window_choose(&w, true, &k), PMD_SEND_SELF,
	       "a compressed private payload: nothing to name, self-contained next");
	pmd_window_sent_suffix(&w, 11, 500);
	ok(pmd_window_choose(&w, true, &k) == PMD_SEND_DICT && k.dict_id == 11 && k.suffix == 500,
	   "an ack ending with 500 bytes of 11: key (11, last 500 bytes)");
	pmd_window_sent(&w, 12, true);
	ok(pmd_window_choose(&w, true, &k) == PMD_SEND_DICT && k.dict_id == 12 && k.suffix == 0,
	   "then 12 compressed: key (12, all)");
	pmd_window_sent_suffix(&w, 12, 0);
	is_int(pmd_window_choose(&w, true, &k), PMD_SEND_SELF, "an empty suffix names nothing");
	pmd_window_init(&w, &alone);
	pmd_window_sent_suffix(&w, 9, 100);
	is_int(pmd_window_choose(&w, true, &k), PMD_SEND_SELF, "standalone: a suffix is no use");
	pmd_window_sent(&w, 9, true);
	is_int(pmd_window_choose(&w, true, &k), PMD_SEND_SELF,
	       "standalone client: self-contained, always");
	is_int(k.window_bits, 12, "  at its window size");
}

/* Steady state: every client got the last broadcast, so one frame each time. */
static void test_steady_state(void)
{
	struct sim s = { 0 };
	struct client cl[10];
	struct pmdneg_params params;
	char resp[PMDNEG_RESPONSE_MAX];
	size_t frames_before;

	rng = 99;
	s.keep = 2;
	s.level = PMD_LEVEL_DICT;
	for (int i = 0; i < 10; i++) {
		client_open(&cl[i], 15, true);
		if (pmdneg_negotiate_mode(PMDNEG_MODE_SHARED, "permessage-deflate; client_max_window_bits",
				       42, &params, resp, sizeof(resp)) != PMDNEG_ACCEPTED)
			exit(1);
		pmd_window_init(&cl[i].w, &params);
	}
	for (int n = 0; n < 30; n++) {
		size_t len;
		uint8_t *p;

		if (n == 0) {
			p = (uint8_t *)dashboard_doc(29 * 1024, &len);
		} else {
			len = s.hist[0].len;
			p = malloc(len);
			memcpy(p, s.hist[0].payload, len);
			p[rnd((unsigned)len)] = '7';
		}
		hist_push(&s, p, len);
		frames_before = s.frames;
		for (int i = 0; i < 10; i++) {
			struct pmd_group_key k;
			struct buf *f;
			const uint8_t *q;
			size_t qlen;
			const struct message *d = held(&s, cl[i].w.last_id);

			if (pmd_window_choose(&cl[i].w, d != NULL, &k) == PMD_SEND_PLAIN)
				exit(1);
			f = group_frame(&s, &s.hist[0], &k);
			q = payload_of(f, &qlen);
			record(&s, client_inflate(&cl[i], q, qlen, p, len));
			pmd_window_sent(&cl[i].w, s.hist[0].id, true);
			if (i == 0 && (n == 0 || n == 29))
				printf("# steady state, broadcast %d: %zu B frame for %zu B\n", n,
				       f->len, len);
		}
		if (s.frames - frames_before != 1)
			break;
	}
	is_int(s.frames, 30, "30 broadcasts to 10 clients in step: 30 frames, one per broadcast");
	is_int(s.failures, 0, "  all inflated exactly");
	for (int i = 0; i < 10; i++)
		client_close(&cl[i]);
	while (s.nhist)
		message_free(&s.hist[--s.nhist]);
}

int main(void)
{
	test_model();
	test_primitive();
	test_steady_state();
	test_property();
	test_broken_models();
	test_queued();
	printf("# deflate footprint, all window sizes used: %zu bytes\n", pmd_deflate_footprint());
	pmd_cleanup();
	is_int(pmd_deflate_footprint(), 0, "pmd_cleanup frees every deflate stream");
	return done_testing();
}
