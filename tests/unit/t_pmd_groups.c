/*
 * Shared-context permessage-deflate through the daemon's own code (issue 14):
 * snapshots (snapshot_new, snapshot_deflate, snapshot_attach_patch,
 * snapshot_follow, as hub_feed_publish uses them), pmdshare's grouping and
 * frame cache, and transport's output queues with latest-wins and binding at
 * write time (conn_push_msg, conn_flush), acks through websocket_send_shared,
 * large error packets through websocket_send_text, pings plain. Each client
 * is a fake socket that takes a random number of bytes per write (often
 * none) and a real zlib inflater with the parameters it negotiated
 * (pmdneg_negotiate_mode with the offers of browsers and ws, window sizes 8
 * to 15, server_no_context_takeover). Every message a client reads must be,
 * byte for byte, one that was queued to it, in order, skipping only
 * replaceable ones a newer one replaced; after the last drain nothing is
 * missing. A random property run over many seeds, then cases that force
 * what the run reaches only by chance: a dictionary cut from the chain, the
 * registry under thousands of live payloads, a crowd of keys.
 */
#include "autoconfig.h"

#include "tap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <wslay/wslay.h>
#include <zlib.h>

#include "config.h"
#include "log.h"
#include "pmd.h"
#include "pmdneg.h"
#include "pmdshare.h"
#include "snapshot.h"
#include "transport.h"
#include "websocket.h"

#define MAX_CLIENTS 24
#define MAX_EXPECT 4096

/* One message queued to a client, as it must read it. */
struct expect {
	uint8_t *payload;
	size_t len;
	bool replaceable;
};

struct client {
	bool live;
	struct conn *c;
	int fd;
	size_t budget;          /* bytes the next writes may take */
	uint8_t *wire;          /* bytes written and not yet parsed */
	size_t wire_len, wire_cap;
	z_stream zs;
	bool zready, takeover, deflate;
	int wbits;
	struct expect exp[MAX_EXPECT];
	size_t nexp, next;      /* queued; the next one to match */
	bool deltas;
	int64_t last;           /* the hub's m->last */
	unsigned long read_z, read_plain, read_dict_hits;
	bool failed;
};

static struct client clients[MAX_CLIENTS];
static struct conn_ctx ctx;
static struct config cfg;
static struct ev_loop *loop;
static unsigned long long rng = 88172645463325252ULL;
static unsigned long total_z, total_plain, total_skipped, total_msgs;
static char why[256];

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static struct client *client_of(const struct conn *c)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].live && clients[i].fd == c->fd)
			return &clients[i];
	abort();
}

static void fail(struct client *cl, const char *what, const char *detail)
{
	if (!cl->failed)
		snprintf(why, sizeof(why), "%s%s", what, detail);
	cl->failed = true;
}

/* What a browser does with one message. */
static void client_read(struct client *cl, bool rsv1, const uint8_t *p, size_t len)
{
	static const uint8_t tail[4] = { 0, 0, 0xff, 0xff };
	uint8_t *out = NULL;
	size_t out_len = 0;
	struct expect *e;

	if (rsv1) {
		size_t cap = 1 << 20;
		int rc;

		if (!cl->deflate) {
			fail(cl, "", "RSV1 at a client that did not negotiate it");
			return;
		}
		if (!cl->zready) {
			inflateInit2(&cl->zs, -cl->wbits);
			cl->zready = true;
		} else if (!cl->takeover) {
			inflateReset(&cl->zs);
		}
		out = malloc(cap);
		cl->zs.next_out = out;
		cl->zs.avail_out = (uInt)cap;
		cl->zs.next_in = (Bytef *)p;
		cl->zs.avail_in = (uInt)len;
		rc = inflate(&cl->zs, Z_SYNC_FLUSH);
		if (rc == Z_OK || rc == Z_BUF_ERROR) {
			cl->zs.next_in = (Bytef *)tail;
			cl->zs.avail_in = 4;
			rc = inflate(&cl->zs, Z_SYNC_FLUSH);
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			fail(cl, "inflate failed: ", cl->zs.msg ? cl->zs.msg : "?");
			free(out);
			return;
		}
		out_len = cap - cl->zs.avail_out;
		cl->read_z++;
		total_z++;
	} else {
		out = malloc(len ? len : 1);
		memcpy(out, p, len);
		out_len = len;
		cl->read_plain++;
		total_plain++;
	}
	total_msgs++;
	/* Skip the replaceable messages a newer one replaced. */
	while (cl->next < cl->nexp) {
		e = &cl->exp[cl->next];
		if (e->len == out_len && memcmp(e->payload, out, out_len) == 0)
			break;
		if (!e->replaceable) {
			fail(cl, "a message other than the next one queued: ", (char *)out);
			free(out);
			return;
		}
		cl->next++;
		total_skipped++;
	}
	if (cl->next == cl->nexp)
		fail(cl, "a message never queued (or out of order): ", (char *)out);
	else
		cl->next++;
	free(out);
}

/* Parses the complete frames written so far. */
static void client_parse(struct client *cl)
{
	size_t pos = 0;

	while (cl->wire_len - pos >= 2) {
		uint8_t b0 = cl->wire[pos], l = cl->wire[pos + 1] & 0x7f;
		size_t h = l < 126 ? 2 : l == 126 ? 4 : 10, len = l;

		if (cl->wire_len - pos < h)
			break;
		if (l == 126)
			len = (size_t)cl->wire[pos + 2] << 8 | cl->wire[pos + 3];
		else if (l == 127)
			for (int i = 0; i < 8; i++)
				len = len << 8 | cl->wire[pos + 2 + i];
		if (cl->wire_len - pos < h + len)
			break;
		if (!(b0 & 0x80) || (b0 & 0x0f) != WS_OP_TEXT)
			fail(cl, "", "not a final text frame");
		else
			client_read(cl, b0 & 0x40, cl->wire + pos + h, len);
		pos += h + len;
	}
	memmove(cl->wire, cl->wire + pos, cl->wire_len - pos);
	cl->wire_len -= pos;
}

static ssize_t fk_writev(struct conn *c, const struct iovec *iov, int n)
{
	struct client *cl = client_of(c);
	size_t total = 0;

	if (cl->budget == 0) {
		errno = EAGAIN;
		return -1;
	}
	for (int i = 0; i < n && cl->budget; i++) {
		size_t k = iov[i].iov_len < cl->budget ? iov[i].iov_len : cl->budget;

		if (cl->wire_len + k > cl->wire_cap) {
			cl->wire_cap = (cl->wire_len + k) * 2;
			cl->wire = realloc(cl->wire, cl->wire_cap);
		}
		memcpy(cl->wire + cl->wire_len, iov[i].iov_base, k);
		cl->wire_len += k;
		cl->budget -= k;
		total += k;
	}
	client_parse(cl);
	return (ssize_t)total;
}

static ssize_t fk_read(struct conn *c, void *buf, size_t len)
{
	(void)c, (void)buf, (void)len;
	errno = EAGAIN;
	return -1;
}

static void fk_shutdown(struct conn *c)
{
	(void)c;
}

static void fk_close(struct conn *c)
{
	(void)c;
}

static const struct conn_io fake_io = {
	.read = fk_read, .writev = fk_writev, .shutdown_write = fk_shutdown, .close = fk_close,
	.evented = false,
};

static const char *const offers[] = {
	"permessage-deflate; client_max_window_bits",            /* Chrome, ws */
	"permessage-deflate",                                    /* Firefox, Safari */
	"permessage-deflate; server_max_window_bits=8",
	"permessage-deflate; server_max_window_bits=9",
	"permessage-deflate; server_max_window_bits=10; client_max_window_bits",
	"permessage-deflate; server_max_window_bits=12",
	"permessage-deflate; server_max_window_bits=14",
	"permessage-deflate; client_max_window_bits=15; server_no_context_takeover",
	"permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
	NULL,                                                    /* no compression */
};
#define NOFFERS (sizeof(offers) / sizeof(offers[0]))

static struct client *join(enum pmdneg_mode mode, const char *offer)
{
	static int next_fd = 5000;
	struct pmdneg_params params;
	char resp[PMDNEG_RESPONSE_MAX];
	static const struct wslay_event_callbacks cbs = { 0 };
	struct client *cl = NULL;

	for (int i = 0; i < MAX_CLIENTS && !cl; i++)
		if (!clients[i].live)
			cl = &clients[i];
	if (!cl)
		return NULL;
	memset(cl, 0, sizeof(*cl));
	cl->live = true;
	cl->fd = next_fd++;
	cl->c = conn_new(&ctx, cl->fd, "test", &fake_io);
	cl->c->state = CONN_WS;
	cl->c->is_websocket = true;
	wslay_event_context_server_init(&cl->c->ws.ctx, &cbs, cl->c);
	pmd_window_init(&cl->c->ws.win, NULL);
	cl->wbits = 15;
	if (offer && pmdneg_negotiate_mode(mode, offer, strlen(offer), &params, resp,
					   sizeof(resp)) == PMDNEG_ACCEPTED) {
		cl->c->ws.deflate = true;
		pmd_window_init(&cl->c->ws.win, &params);
		cl->deflate = true;
		cl->takeover = !params.server_no_context_takeover;
		cl->wbits = params.server_max_window_bits;
	}
	cl->deltas = rnd(3) == 0;
	cl->last = -1;
	return cl;
}

static void leave(struct client *cl)
{
	for (size_t i = 0; i < cl->nexp; i++)
		free(cl->exp[i].payload);
	if (cl->zready)
		inflateEnd(&cl->zs);
	free(cl->wire);
	wslay_event_context_free(cl->c->ws.ctx);
	cl->c->ws.ctx = NULL;
	conn_close(cl->c, "test");
	conn_ctx_run(&ctx);
	cl->live = false;
}

static void expect(struct client *cl, const uint8_t *payload, size_t len, bool replaceable)
{
	struct expect *e;

	if (cl->nexp == MAX_EXPECT) {
		/* Forget what was matched already. */
		for (size_t i = 0; i < cl->next; i++)
			free(cl->exp[i].payload);
		memmove(cl->exp, cl->exp + cl->next, (cl->nexp - cl->next) * sizeof(cl->exp[0]));
		cl->nexp -= cl->next;
		cl->next = 0;
	}
	e = &cl->exp[cl->nexp++];
	e->payload = malloc(len ? len : 1);
	memcpy(e->payload, payload, len);
	e->len = len;
	e->replaceable = replaceable;
}

static size_t frame_hlen(const struct buf *b)
{
	uint8_t l = b->data[1] & 0x7f;

	return l < 126 ? 2 : l == 126 ? 4 : 10;
}

/* A shared frame queued as hub's send_full / send_patch do (without the
 * immediate flush, so that latest-wins gets its chance). */
static void queue_msg(struct client *cl, struct buf *frame, struct pmd_msg *m, bool replaceable)
{
	size_t h = frame_hlen(frame);

	expect(cl, frame->data + h, frame->len - h, replaceable);
	if (m && cl->c->ws.deflate)
		conn_push_msg(cl->c, m, replaceable);
	else
		conn_push(cl->c, frame, replaceable);
}

static void flush(struct client *cl, size_t budget)
{
	cl->budget = budget;
	conn_flush(cl->c);
	cl->budget = 0;
}

/* ---- documents ---- */

struct doc {
	unsigned nrows;
	unsigned qty[400];
	unsigned name[400];
};

static char *doc_json(const struct doc *d, size_t *len)
{
	size_t cap = 64 + d->nrows * 96, n = 0;
	char *s = malloc(cap);

	n += (size_t)snprintf(s + n, cap - n, "{\"title\":\"shop\",\"rows\":[");
	for (unsigned i = 0; i < d->nrows; i++)
		n += (size_t)snprintf(s + n, cap - n,
				      "%s{\"id\":%u,\"name\":\"product %u of the range\",\"qty\":%u}",
				      i ? "," : "", i + 1, d->name[i], d->qty[i]);
	n += (size_t)snprintf(s + n, cap - n, "]}");
	*len = n;
	return s;
}

static void doc_mutate(struct doc *d)
{
	unsigned k = 1 + rnd(6);

	for (unsigned i = 0; i < k && d->nrows; i++)
		d->qty[rnd(d->nrows)] = rnd(100000);
	if (rnd(4) == 0 && d->nrows < 400) {
		d->qty[d->nrows] = rnd(1000);
		d->name[d->nrows] = rnd(1000000);
		d->nrows++;
	}
	if (rnd(5) == 0 && d->nrows > 1)
		d->nrows--;
	if (rnd(20) == 0) /* a new document altogether */
		for (unsigned i = 0; i < d->nrows; i++)
			d->name[i] = rnd(1000000);
}

/* ---- the feed: what hub_feed_publish does ---- */

struct feed {
	struct snapshot *snap, *prev;
	int64_t version;
	struct doc doc;
};

static void publish(struct feed *f)
{
	struct snapshot *s;
	size_t len;
	char *json;
	bool want = false;

	doc_mutate(&f->doc);
	json = doc_json(&f->doc, &len);
	f->version++;
	if (snapshot_new(json, len, f->version, 1700000000000 + f->version, "test", &s) < 0 ||
	    snapshot_deflate(s, 1) < 0)
		abort();
	free(json);
	snapshot_unref(f->prev);
	f->prev = f->snap;
	f->snap = s;
	snapshot_follow(s, f->prev);
	for (int i = 0; i < MAX_CLIENTS && f->prev; i++)
		want = want || (clients[i].live && clients[i].deltas && clients[i].last == f->prev->version);
	if (want) {
		if (snapshot_attach_patch(s, f->prev, NULL) < 0)
			abort();
		snapshot_unref(f->prev);
		f->prev = NULL;
	}
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *cl = &clients[i];

		if (!cl->live)
			continue;
		if (cl->deltas && s->patch_frame && cl->last == s->patch_from)
			queue_msg(cl, s->patch_frame, s->patch_msg, false);
		else
			queue_msg(cl, s->frame, s->msg, !cl->deltas);
		cl->last = s->version;
	}
}

/* An ack 43<n>[<doc>] as socketio_ack_shared sends it: through
 * websocket_send_shared, which flushes at once. */
static void ack(struct feed *f, struct client *cl, size_t budget)
{
	const char *pre = "42[\"dashboardDataUpdate\",";
	size_t h = frame_hlen(f->snap->frame), off = h + strlen(pre);
	char head[32];
	int n = snprintf(head, sizeof(head), "43%u[", rnd(1000));
	size_t len = f->snap->doc_len;
	uint8_t *want = malloc((size_t)n + len + 1);

	memcpy(want, head, (size_t)n);
	memcpy(want + n, f->snap->frame->data + off, len);
	want[(size_t)n + len] = ']';
	expect(cl, want, (size_t)n + len + 1, false);
	free(want);
	cl->budget = budget;
	websocket_send_shared(cl->c, head, (size_t)n, f->snap->frame, off, len, "]", 1);
	cl->budget = 0;
}

/* A per-client text packet: small (a ping, an ack without data) or large
 * (an error with a long message), through websocket_send_text. */
static void private_text(struct client *cl, size_t budget)
{
	size_t len = rnd(2) ? 1 + rnd(40) : 1024 + rnd(3000);
	char *p = malloc(len);
	struct ws_part part = { p, len };

	for (size_t i = 0; i < len; i++)
		p[i] = (char)('a' + (i * 7 + len) % 26);
	p[0] = '4';
	expect(cl, (const uint8_t *)p, len, false);
	cl->budget = budget;
	websocket_send_text(cl->c, &part, 1);
	cl->budget = 0;
	free(p);
}

static size_t random_budget(void)
{
	switch (rnd(5)) {
	case 0:
	case 1:
		return 0;
	case 2:
		return 1 + rnd(200);
	case 3:
		return 1 + rnd(20000);
	default:
		return 1 << 22;
	}
}

static struct client *any_client(void)
{
	int start = (int)rnd(MAX_CLIENTS);

	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *cl = &clients[(start + i) % MAX_CLIENTS];

		if (cl->live)
			return cl;
	}
	return NULL;
}

static bool drain_all(void)
{
	bool good = true;

	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *cl = &clients[i];

		if (!cl->live)
			continue;
		flush(cl, 1 << 26);
		if (cl->c->outq_len)
			fail(cl, "", "output left after a full drain");
		if (cl->next != cl->nexp)
			fail(cl, "", "a queued message never arrived");
		good = good && !cl->failed;
	}
	return good;
}

static void leave_all(struct feed *f)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].live)
			leave(&clients[i]);
	snapshot_unref(f->snap);
	snapshot_unref(f->prev);
	memset(f, 0, sizeof(*f));
}

static bool any_failed(void)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].live && clients[i].failed)
			return true;
	return false;
}

static bool run(enum pmdneg_mode mode, unsigned long seed, int steps)
{
	struct feed f = { 0 };
	bool good;

	rng = seed * 2654435761u + 1;
	f.doc.nrows = 20 + rnd(200);
	for (unsigned i = 0; i < f.doc.nrows; i++) {
		f.doc.qty[i] = rnd(1000);
		f.doc.name[i] = rnd(1000000);
	}
	for (int i = 0; i < 6; i++)
		join(mode, offers[rnd(NOFFERS)]);
	publish(&f);
	for (int step = 0; step < steps && !any_failed(); step++) {
		struct client *cl = any_client();
		unsigned r = rnd(100);

		if (r < 25) {
			publish(&f);
		} else if (r < 65 && cl) {
			flush(cl, random_budget());
		} else if (r < 72 && cl) {
			ack(&f, cl, random_budget());
		} else if (r < 78 && cl) {
			private_text(cl, random_budget());
		} else if (r < 82 && cl) {
			/* A ping: plain, never in the window. */
			static const uint8_t ping[] = { 0x81, 0x01, '2' };
			struct buf *b = buf_from(ping, sizeof(ping));

			expect(cl, ping + 2, 1, false);
			conn_push(cl->c, b, false);
			buf_unref(b);
		} else if (r < 87) {
			struct client *n = join(mode, offers[rnd(NOFFERS)]);

			if (n && f.snap) /* a joiner gets the current document */
				queue_msg(n, f.snap->frame, f.snap->msg, !n->deltas), n->last = f.snap->version;
		} else if (r < 90 && cl) {
			leave(cl);
		} else if (r < 93) {
			if (!drain_all())
				break;
		} else if (cl) {
			cl->deltas = !cl->deltas;
		}
	}
	good = !any_failed() && drain_all();
	leave_all(&f);
	return good;
}

static void test_property(void)
{
	struct pmdshare_stats before, after;
	int seeds = getenv("PMD_GROUPS_SEEDS") ? atoi(getenv("PMD_GROUPS_SEEDS")) : 60;
	int bad = 0;

	pmdshare_stats(&before);
	total_z = total_plain = total_skipped = total_msgs = 0;
	for (int s = 1; s <= seeds; s++) {
		enum pmdneg_mode mode = s % 5 == 0 ? PMDNEG_MODE_STANDALONE : PMDNEG_MODE_SHARED;

		if (!run(mode, (unsigned long)s, 1500)) {
			if (!bad)
				printf("# seed %d (%s): %s\n", s, pmdneg_mode_name(mode), why);
			bad++;
		}
	}
	pmdshare_stats(&after);
	printf("# %lu messages read (%lu compressed, %lu plain), %lu replaced by a newer one\n",
	     total_msgs, total_z, total_plain, total_skipped);
	printf("# frames built: %llu with a dictionary, %llu self-contained; %llu cache hits; %llu plain\n",
	     after.built_dict - before.built_dict, after.built_self - before.built_self,
	     after.hits - before.hits, after.plain - before.plain);
	ok(bad == 0, "%d random runs: every message decodes to what was queued, in order", seeds);
	ok(total_z > 1000 && total_skipped > 100 && total_plain > 1000,
	   "the runs compressed, replaced and sent plain (%lu, %lu, %lu)", total_z, total_skipped,
	   total_plain);
	ok(after.hits - before.hits > after.built_dict - before.built_dict,
	   "group frames are shared more often than built");
}

/* Steady state: every client read the last broadcast, so each broadcast is
 * one deflate whatever the number of clients. */
static void test_steady_state(void)
{
	struct feed f = { 0 };
	struct pmdshare_stats a, b;
	struct client *cl[MAX_CLIENTS];
	bool good = true;
	size_t bytes_z = 0, bytes_plain = 0;

	rng = 12345;
	f.doc.nrows = 300;
	for (unsigned i = 0; i < f.doc.nrows; i++) {
		f.doc.qty[i] = rnd(1000);
		f.doc.name[i] = rnd(1000000);
	}
	for (int i = 0; i < 20; i++) {
		cl[i] = join(PMDNEG_MODE_SHARED, offers[0]);
		cl[i]->deltas = false;
	}
	publish(&f);
	for (int i = 0; i < 20; i++)
		flush(cl[i], 1 << 26);
	pmdshare_stats(&a);
	for (int round = 0; round < 10; round++) {
		publish(&f);
		for (int i = 0; i < 20; i++)
			flush(cl[i], 1 << 26);
		bytes_plain += f.snap->frame->len;
	}
	pmdshare_stats(&b);
	for (int i = 0; i < 20; i++)
		good = good && !cl[i]->failed && cl[i]->next == cl[i]->nexp && cl[i]->read_z == 11;
	ok(good, "20 clients read 11 compressed snapshots each");
	is_int((int)(b.built_dict - a.built_dict), 10, "one frame with a dictionary per broadcast");
	is_int((int)(b.hits - a.hits), 190, "the 19 other clients share it");
	(void)bytes_z;
	leave_all(&f);
}

/* A client that stalls while the feed moves on: its dictionary leaves the
 * chain (PMDSHARE_KEEP) and it gets a self-contained frame, which it
 * decodes. */
static void test_dictionary_gone(void)
{
	struct feed f = { 0 };
	struct client *slow, *fast;
	struct pmdshare_stats a, b;

	rng = 777;
	f.doc.nrows = 100;
	slow = join(PMDNEG_MODE_SHARED, offers[0]);
	fast = join(PMDNEG_MODE_SHARED, offers[0]);
	slow->deltas = fast->deltas = true; /* nothing replaceable: all must come */
	publish(&f);
	flush(slow, 1 << 26);
	flush(fast, 1 << 26);
	for (int i = 0; i < PMDSHARE_KEEP + 3; i++) {
		publish(&f);
		flush(fast, 1 << 26);
	}
	ok(!pmd_msg_find(slow->c->ws.win.last_id), "the slow client's dictionary is gone");
	pmdshare_stats(&a);
	flush(slow, 1 << 26);
	pmdshare_stats(&b);
	ok(!slow->failed && slow->next == slow->nexp, "it still reads every message");
	ok(b.built_self > a.built_self || b.hits > a.hits, "through a self-contained frame");
	leave_all(&f);
}

/* The registry keeps every live payload findable however many come after
 * it, forgets a freed one, and never gives a freed one's id to another. */
static void test_registry(void)
{
	enum { N = 3000 };
	struct feed f = { 0 };
	struct client *cl;
	static struct pmd_msg *many[N];
	static uint64_t ids[N];
	struct buf *b = ws_frame(WS_OP_TEXT, "x", 1);
	bool found = true, gone = true, fresh = true;
	uint64_t id;

	rng = 4242;
	f.doc.nrows = 50;
	cl = join(PMDNEG_MODE_SHARED, offers[1]);
	cl->deltas = false;
	publish(&f);
	flush(cl, 1 << 26);
	id = cl->c->ws.win.last_id;
	for (size_t i = 0; i < N; i++) {
		many[i] = pmd_msg_new(b, NULL, 1);
		ids[i] = pmd_msg_id(many[i]);
	}
	ok(pmd_msg_find(id) != NULL, "the client's payload is still found after %d more", N);
	for (size_t i = 0; i < N; i++)
		found = found && pmd_msg_find(ids[i]) == many[i];
	ok(found, "so is every one of them");
	for (size_t i = 0; i < N; i += 2)
		pmd_msg_unref(many[i]);
	for (size_t i = 0; i < N; i += 2)
		gone = gone && pmd_msg_find(ids[i]) == NULL;
	ok(gone, "freed ones are not");
	for (size_t i = 0; i < N; i += 2) {
		many[i] = pmd_msg_new(b, NULL, 1);
		for (size_t k = 0; k < N && fresh; k += 2)
			fresh = pmd_msg_id(many[i]) != ids[k];
	}
	ok(fresh, "a reused slot gives a new id");
	publish(&f);
	flush(cl, 1 << 26);
	ok(!cl->failed && cl->next == cl->nexp && cl->read_z == 2, "the next snapshot decodes");
	for (size_t i = 0; i < N; i++)
		pmd_msg_unref(many[i]);
	buf_unref(b);
	leave_all(&f);
}

/* More keys than a message caches (PMDSHARE_CACHE window sizes and
 * dictionaries): the rest get frames of their own, still right. */
static void test_crowd(void)
{
	struct feed f = { 0 };
	struct client *cl[MAX_CLIENTS];
	int n = 0;
	bool good = true;

	rng = 99;
	f.doc.nrows = 120;
	for (int i = 0; i < 20; i++) {
		cl[n] = join(PMDNEG_MODE_SHARED, offers[i % 7]);
		cl[n]->deltas = true;
		n++;
	}
	/* Each client reads a different number of versions: many dictionaries. */
	for (int v = 0; v < 20; v++) {
		publish(&f);
		for (int i = 0; i < n; i++)
			if (i <= v)
				flush(cl[i], 1 << 26);
	}
	publish(&f);
	good = drain_all();
	ok(good, "%d clients with different dictionaries and windows read everything", n);
	leave_all(&f);
}

int main(void)
{
	const char *args[] = { "t", "--log-level", "error" };
	char err[256];

	if (config_parse(&cfg, 3, (char **)args, NULL, stdout, err, sizeof(err)) != CONFIG_OK) {
		printf("Bail out! config: %s\n", err);
		return 1;
	}
	cfg.max_pending_bytes = 1u << 30;
	cfg.max_total_pending_bytes = 1ull << 40;
	log_set_level(LOG_ERROR);
	loop = ev_loop_new(EVFLAG_AUTO);
	conn_ctx_init(&ctx, loop, &cfg);
	test_steady_state();
	test_dictionary_gone();
	test_registry();
	test_crowd();
	test_property();
	conn_ctx_free(&ctx);
	ev_loop_destroy(loop);
	config_free(&cfg);
	return done_testing();
}
