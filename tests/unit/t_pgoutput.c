/* pgoutput: the replication stream decoder on hand-built messages (every
 * kind, every proper prefix, trailing bytes, bad values, transactions over
 * several tables, relation replacement) and on a stream captured from a
 * real PostgreSQL 15 (tests/unit/pgoutput-stream.bin, see
 * tests/tools/pgoutput-capture.c). */
#include "autoconfig.h"

#include "pgoutput.h"
#include "tap.h"

#include <inttypes.h>
#include <stdlib.h>

/* ---- building messages ----------------------------------------------------- */

struct b {
	uint8_t d[2048];
	size_t n;
};

static void put(struct b *b, const void *p, size_t n)
{
	if (b->n + n > sizeof(b->d))
		abort();
	memcpy(b->d + b->n, p, n);
	b->n += n;
}

static void u8(struct b *b, unsigned v)
{
	uint8_t c = (uint8_t)v;

	put(b, &c, 1);
}

static void u16(struct b *b, unsigned v)
{
	u8(b, v >> 8);
	u8(b, v);
}

static void u32(struct b *b, uint32_t v)
{
	u16(b, v >> 16);
	u16(b, v & 0xffff);
}

static void u64(struct b *b, uint64_t v)
{
	u32(b, (uint32_t)(v >> 32));
	u32(b, (uint32_t)v);
}

static void str(struct b *b, const char *s)
{
	put(b, s, strlen(s) + 1);
}

/* A TupleData from a string of column kinds: 'n' null, 'u' unchanged,
 * 't' a text value, 'b' a binary value, 'e' an empty text value. */
static void tuple(struct b *b, const char *kinds)
{
	u16(b, (unsigned)strlen(kinds));
	for (const char *k = kinds; *k; k++) {
		switch (*k) {
		case 'n':
		case 'u':
			u8(b, (unsigned)*k);
			break;
		case 't':
			u8(b, 't');
			u32(b, 5);
			put(b, "hello", 5);
			break;
		case 'e':
			u8(b, 't');
			u32(b, 0);
			break;
		case 'b':
			u8(b, 'b');
			u32(b, 4);
			put(b, "\x00\x00\x00\x2a", 4);
			break;
		}
	}
}

static void begin(struct b *b, uint64_t lsn, uint32_t xid)
{
	u8(b, 'B');
	u64(b, lsn);
	u64(b, 123456789);
	u32(b, xid);
}

static void commit(struct b *b, uint64_t lsn, uint64_t end)
{
	u8(b, 'C');
	u8(b, 0);
	u64(b, lsn);
	u64(b, end);
	u64(b, 123456789);
}

/* A Relation with ncols columns "c0".."cN" of type int4, the first a key. */
static void relation(struct b *b, uint32_t id, const char *nsp, const char *name,
		     char replident, unsigned ncols)
{
	u8(b, 'R');
	u32(b, id);
	str(b, nsp);
	str(b, name);
	u8(b, (unsigned)replident);
	u16(b, ncols);
	for (unsigned i = 0; i < ncols; i++) {
		char col[16];

		snprintf(col, sizeof(col), "c%u", i);
		u8(b, i == 0);
		str(b, col);
		u32(b, 23);
		u32(b, 0xffffffff); /* typmod -1 */
	}
}

static void insert(struct b *b, uint32_t id, const char *kinds)
{
	u8(b, 'I');
	u32(b, id);
	u8(b, 'N');
	tuple(b, kinds);
}

static void update(struct b *b, uint32_t id, char old, const char *old_kinds, const char *kinds)
{
	u8(b, 'U');
	u32(b, id);
	if (old) {
		u8(b, (unsigned)old);
		tuple(b, old_kinds);
	}
	u8(b, 'N');
	tuple(b, kinds);
}

static void delete(struct b *b, uint32_t id, char old, const char *kinds)
{
	u8(b, 'D');
	u32(b, id);
	u8(b, (unsigned)old);
	tuple(b, kinds);
}

static void truncate_(struct b *b, unsigned options, unsigned n, const uint32_t *ids)
{
	u8(b, 'T');
	u32(b, n);
	u8(b, options);
	for (unsigned i = 0; i < n; i++)
		u32(b, ids[i]);
}

static void message(struct b *b, unsigned flags, const char *prefix, const char *content)
{
	u8(b, 'M');
	u8(b, flags);
	u64(b, 0x1234);
	str(b, prefix);
	u32(b, (uint32_t)strlen(content));
	put(b, content, strlen(content));
}

static void keepalive(struct b *b, uint64_t end, unsigned reply)
{
	u8(b, 'k');
	u64(b, end);
	u64(b, 987654321);
	u8(b, reply);
}

/* XLogData around a bare pgoutput message. */
static struct b wrap(const struct b *in)
{
	struct b w = { .n = 0 };

	u8(&w, 'w');
	u64(&w, 0x16b3748);
	u64(&w, 0x16b3800);
	u64(&w, 42);
	put(&w, in->d, in->n);
	return w;
}

/* ---- decoder helpers ----------------------------------------------------------- */

#define REL_A 16384
#define REL_B 16390
#define REL_C 16400

static struct pgoutput_decoder *new_decoder(size_t max)
{
	struct pgoutput_decoder *d;

	if (pgoutput_decoder_new(&d, max) < 0)
		abort();
	return d;
}

static int feed(struct pgoutput_decoder *d, const struct b *b, struct pgoutput_event *ev)
{
	return pgoutput_feed_logical(d, b->d, b->n, ev);
}

/* Feeds a message that must decode. */
static void must(struct pgoutput_decoder *d, const struct b *b)
{
	struct pgoutput_event ev;
	int rc = feed(d, b, &ev);

	if (rc < 0) {
		printf("# setup message '%c' refused: %s\n", b->d[0], pgoutput_error_message(rc));
		abort();
	}
}

/* Relations public.a (3 columns), public.b (2), and when in_txn a Begin. */
static struct pgoutput_decoder *setup(bool in_txn)
{
	struct pgoutput_decoder *d = new_decoder(0);
	struct b m = { .n = 0 };

	relation(&m, REL_A, "public", "a", 'd', 3);
	must(d, &m);
	m.n = 0;
	relation(&m, REL_B, "public", "b", 'f', 2);
	must(d, &m);
	if (in_txn) {
		m.n = 0;
		begin(&m, 0x16b3800, 740);
		must(d, &m);
	}
	return d;
}

/* What an error must leave unchanged, as text. */
static void snap(const struct pgoutput_decoder *d, char *out, size_t len)
{
	static const uint32_t ids[] = { REL_A, REL_B, REL_C, 77 };
	int n = snprintf(out, len, "txn=%d n=%zu flush=%" PRIu64, pgoutput_decoder_in_transaction(d),
			 pgoutput_decoder_relations(d), pgoutput_decoder_flush_lsn(d));

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]) && n > 0 && (size_t)n < len; i++) {
		const struct pgoutput_relation *r = pgoutput_decoder_relation(d, ids[i]);

		if (r)
			n += snprintf(out + n, len - (size_t)n, " [%u %s %c %u %d]", (unsigned)r->id,
				      r->name, r->replident, (unsigned)r->ncols, r->touched);
	}
}

/* ---- the status update ------------------------------------------------------- */

static void test_status(void)
{
	uint8_t out[PGOUTPUT_STATUS_LEN + 1];
	static const uint8_t want[PGOUTPUT_STATUS_LEN] = {
		'r',
		0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, /* written 1/2030405 */
		0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x00, /* flushed */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* applied: invalid */
		0x00, 0x02, 0xea, 0x47, 0x0a, 0xe8, 0x60, 0x00, /* 2026-01-01 00:00:00 UTC */
		0x01,
	};
	/* 2026-01-01T00:00:00Z is 1767225600 s after the Unix epoch. */
	int64_t now = pgoutput_pg_time(INT64_C(1767225600) * 1000000);

	is_int(now, INT64_C(820540800) * 1000000, "2026-01-01 in PostgreSQL's epoch");
	memset(out, 0xee, sizeof(out));
	is_int(pgoutput_encode_status(out, sizeof(out), 0x102030405, 0x102030400, 0, now, true), 0,
	       "status update encodes");
	ok(memcmp(out, want, sizeof(want)) == 0, "status update byte for byte");
	is_int(out[PGOUTPUT_STATUS_LEN], 0xee, "nothing written past %d bytes", PGOUTPUT_STATUS_LEN);
	memset(out, 0xee, sizeof(out));
	is_int(pgoutput_encode_status(out, sizeof(out), 1, 1, 1, -1, false), 0, "negative clock");
	ok(out[25] == 0xff && out[32] == 0xff && out[33] == 0, "clock is two's complement, reply 0");
	memset(out, 0xee, sizeof(out));
	is_int(pgoutput_encode_status(out, PGOUTPUT_STATUS_LEN - 1, 1, 1, 1, 1, false),
	       PGOUTPUT_ERR_SPACE, "short buffer refused");
	is_int(out[0], 0xee, "short buffer untouched");
}

/* ---- every message kind: whole, every prefix, trailing byte ---------------- */

struct valid {
	const char *name;
	bool in_txn;         /* the setup opens a transaction */
	bool bare_only;      /* a CopyData message itself ('k') */
	struct b m;
	enum pgoutput_event_type type;
};

static void build_valid(struct valid *v, size_t *n)
{
	static const uint32_t two[] = { REL_A, REL_B };
	size_t i = 0;

#define V(nm, txn, ty) (v[i].name = nm, v[i].in_txn = txn, v[i].bare_only = false, \
	v[i].type = ty, v[i].m.n = 0, &v[i++].m)
	begin(V("Begin", false, PGOUTPUT_EV_BEGIN), 0x16b3800, 740);
	commit(V("Commit", true, PGOUTPUT_EV_COMMIT), 0x16b3800, 0x16b3830);
	{
		struct b *m = V("Origin", true, PGOUTPUT_EV_IGNORED);

		u8(m, 'O');
		u64(m, 0x3000);
		str(m, "pg_16400");
	}
	{
		struct b *m = V("Type", true, PGOUTPUT_EV_IGNORED);

		u8(m, 'Y');
		u32(m, 16500);
		str(m, "public");
		str(m, "mood");
	}
	{
		struct b *m = V("Type outside a transaction", false, PGOUTPUT_EV_IGNORED);

		u8(m, 'Y');
		u32(m, 16500);
		str(m, "");
		str(m, "mood");
	}
	relation(V("Relation, new", true, PGOUTPUT_EV_RELATION), REL_C, "sales", "orders", 'i', 4);
	relation(V("Relation, replacing", true, PGOUTPUT_EV_RELATION), REL_A, "public", "a2", 'f', 1);
	relation(V("Relation, no columns", false, PGOUTPUT_EV_RELATION), REL_C, "s", "r", 'n', 0);
	insert(V("Insert", true, PGOUTPUT_EV_CHANGE), REL_A, "tnt");
	insert(V("Insert, binary", true, PGOUTPUT_EV_CHANGE), REL_A, "bbe");
	insert(V("Insert, no columns", true, PGOUTPUT_EV_CHANGE), REL_A, "");
	update(V("Update", true, PGOUTPUT_EV_CHANGE), REL_A, 0, NULL, "tut");
	update(V("Update, old key", true, PGOUTPUT_EV_CHANGE), REL_A, 'K', "tnn", "ttt");
	update(V("Update, old row", true, PGOUTPUT_EV_CHANGE), REL_B, 'O', "tt", "te");
	delete(V("Delete, key", true, PGOUTPUT_EV_CHANGE), REL_A, 'K', "tnn");
	delete(V("Delete, old row", true, PGOUTPUT_EV_CHANGE), REL_B, 'O', "bn");
	truncate_(V("Truncate, two", true, PGOUTPUT_EV_CHANGE), 3, 2, two);
	truncate_(V("Truncate, one", true, PGOUTPUT_EV_CHANGE), 0, 1, two + 1);
	message(V("Message, transactional", true, PGOUTPUT_EV_MESSAGE), 1, "pgpush", "hi");
	message(V("Message, not transactional", false, PGOUTPUT_EV_MESSAGE), 0, "pgpush", "");
	message(V("Message, inside", true, PGOUTPUT_EV_MESSAGE), 0, "", "x");
	keepalive(V("Keepalive", false, PGOUTPUT_EV_KEEPALIVE), 0x16b3900, 1);
	v[i - 1].bare_only = true;
	keepalive(V("Keepalive in a transaction", true, PGOUTPUT_EV_KEEPALIVE), 0x16b3900, 0);
	v[i - 1].bare_only = true;
#undef V
	*n = i;
}

static int feed_as(struct pgoutput_decoder *d, const struct valid *v, bool wrapped,
		   const uint8_t *p, size_t len, struct pgoutput_event *ev)
{
	if (v->bare_only || wrapped)
		return pgoutput_feed(d, p, len, ev);
	return pgoutput_feed_logical(d, p, len, ev);
}

static void test_valid(void)
{
	static struct valid v[32];
	size_t n;

	build_valid(v, &n);
	for (size_t i = 0; i < n; i++) {
		for (int wrapped = 0; wrapped < 2; wrapped++) {
			struct b m = wrapped && !v[i].bare_only ? wrap(&v[i].m) : v[i].m;
			const char *how = v[i].bare_only ? "CopyData" : wrapped ? "in XLogData" : "bare";
			struct pgoutput_decoder *d = setup(v[i].in_txn);
			struct pgoutput_event ev;
			char before[512], after[512];
			bool prefixes_ok = true, unchanged = true;
			int rc;

			if (v[i].bare_only && wrapped) {
				pgoutput_decoder_free(d);
				continue;
			}
			snap(d, before, sizeof(before));
			/* Every proper prefix is an error and changes nothing. */
			for (size_t len = 0; len < m.n; len++) {
				uint8_t *copy = malloc(len ? len : 1);

				memcpy(copy, m.d, len);
				rc = feed_as(d, &v[i], wrapped, copy, len, &ev);
				free(copy);
				if (rc >= 0) {
					printf("# prefix of %zu bytes accepted\n", len);
					prefixes_ok = false;
				}
				snap(d, after, sizeof(after));
				if (strcmp(before, after) != 0)
					unchanged = false;
			}
			ok(prefixes_ok, "%s (%s): every proper prefix refused", v[i].name, how);
			ok(unchanged, "%s (%s): refused prefixes change nothing", v[i].name, how);
			/* One byte more is an error too. */
			m.d[m.n++] = 0;
			rc = feed_as(d, &v[i], wrapped, m.d, m.n, &ev);
			ok(rc == PGOUTPUT_ERR_TRAILING, "%s (%s): trailing byte refused (%s)", v[i].name,
			   how, pgoutput_error_message(rc));
			m.n--;
			rc = feed_as(d, &v[i], wrapped, m.d, m.n, &ev);
			ok(rc == 0 && ev.type == v[i].type && ev.kind == (v[i].bare_only ? 0 : (char)m.d[wrapped ? 25 : 0]),
			   "%s (%s): decodes (%s)", v[i].name, how, pgoutput_error_message(rc));
			if (wrapped && !v[i].bare_only)
				ok(ev.msg == 'w' && ev.wal_start == 0x16b3748 && ev.wal_end == 0x16b3800 &&
				   ev.send_time == 42, "%s (%s): XLogData header", v[i].name, how);
			pgoutput_decoder_free(d);
		}
	}
}

/* ---- what the events say ------------------------------------------------------- */

static void test_fields(void)
{
	struct pgoutput_decoder *d = new_decoder(0);
	struct pgoutput_event ev;
	struct b m = { .n = 0 };
	const struct pgoutput_relation *a;

	relation(&m, REL_A, "", "pg_class_like", 'n', 2);
	is_int(feed(d, &m, &ev), 0, "relation in pg_catalog");
	a = ev.relation;
	ok(a && a->id == REL_A && strcmp(a->nspname, "pg_catalog") == 0 &&
	   strcmp(a->relname, "pg_class_like") == 0 && strcmp(a->name, "pg_catalog.pg_class_like") == 0 &&
	   a->replident == 'n' && a->ncols == 2 && !a->touched, "empty namespace is pg_catalog");
	m.n = 0;
	begin(&m, 0xabcdef0123, 4242);
	is_int(feed(d, &m, &ev), 0, "begin");
	ok(ev.type == PGOUTPUT_EV_BEGIN && ev.lsn == 0xabcdef0123 && ev.xid == 4242 &&
	   ev.commit_time == 123456789, "begin fields");
	m.n = 0;
	message(&m, 1, "pgpush.mark", "payload");
	is_int(feed(d, &m, &ev), 0, "message");
	ok(ev.transactional && strcmp(ev.prefix, "pgpush.mark") == 0 && ev.content_len == 7 &&
	   memcmp(ev.content, "payload", 7) == 0 && ev.lsn == 0x1234, "message fields");
	m.n = 0;
	update(&m, REL_A, 'K', "tn", "un");
	is_int(feed(d, &m, &ev), 0, "update");
	ok(ev.type == PGOUTPUT_EV_CHANGE && ev.kind == 'U' && ev.relation == a && a->touched,
	   "update names its relation and marks it");
	m.n = 0;
	commit(&m, 0xabcdef0123, 0xabcdef0200);
	is_int(feed(d, &m, &ev), 0, "commit");
	ok(ev.type == PGOUTPUT_EV_COMMIT && ev.lsn == 0xabcdef0123 && ev.end_lsn == 0xabcdef0200 &&
	   ev.ntables == 1 && ev.tables[0] == a && !a->touched, "commit fields, flags cleared");
	is_int(pgoutput_decoder_flush_lsn(d), 0xabcdef0200, "flush position is the commit's end");
	m.n = 0;
	keepalive(&m, 0xabcdef0300, 0);
	is_int(pgoutput_feed(d, m.d, m.n, &ev), 0, "keepalive");
	ok(ev.type == PGOUTPUT_EV_KEEPALIVE && ev.msg == 'k' && ev.wal_end == 0xabcdef0300 &&
	   ev.send_time == 987654321 && !ev.reply_requested, "keepalive fields");
	is_int(pgoutput_decoder_flush_lsn(d), 0xabcdef0300, "an idle keepalive moves the flush position");
	m.n = 0;
	begin(&m, 0xabcdef0400, 4243);
	must(d, &m);
	m.n = 0;
	keepalive(&m, 0xabcdef0500, 1);
	is_int(pgoutput_feed(d, m.d, m.n, &ev), 0, "keepalive inside a transaction");
	ok(ev.reply_requested, "reply requested");
	is_int(pgoutput_decoder_flush_lsn(d), 0xabcdef0300, "but then it does not move it");
	pgoutput_decoder_free(d);
}

/* ---- malformed messages -------------------------------------------------------- */

static void test_errors(void)
{
	static const uint32_t ids_unknown[] = { REL_A, 99 };
	struct {
		const char *name;
		bool in_txn;
		bool copydata;
		struct b m;
		int rc;
	} c[40];
	size_t n = 0;

#define E(nm, txn, rc_) (c[n].name = nm, c[n].in_txn = txn, c[n].copydata = false, \
	c[n].rc = rc_, c[n].m.n = 0, &c[n++].m)
	E("empty", false, PGOUTPUT_ERR_TRUNCATED);
	u8(E("unknown type 'Z'", true, PGOUTPUT_ERR_TYPE), 'Z');
	u8(E("stream start 'S' (protocol 2)", true, PGOUTPUT_ERR_TYPE), 'S');
	u8(E("begin prepare 'b' (protocol 3)", true, PGOUTPUT_ERR_TYPE), 'b');
	begin(E("Begin inside a transaction", true, PGOUTPUT_ERR_STATE), 5, 1);
	begin(E("Begin with final LSN 0", false, PGOUTPUT_ERR_VALUE), 0, 1);
	commit(E("Commit outside a transaction", false, PGOUTPUT_ERR_STATE), 1, 2);
	{
		struct b *m = E("Commit with flags", true, PGOUTPUT_ERR_VALUE);

		commit(m, 1, 2);
		m->d[1] = 1;
	}
	insert(E("Insert outside a transaction", false, PGOUTPUT_ERR_STATE), REL_A, "t");
	insert(E("Insert, unknown relation", true, PGOUTPUT_ERR_RELATION), 99, "t");
	delete(E("Delete, unknown relation", true, PGOUTPUT_ERR_RELATION), 99, 'K', "t");
	update(E("Update, unknown relation", true, PGOUTPUT_ERR_RELATION), 99, 0, NULL, "t");
	truncate_(E("Truncate, one unknown of two", true, PGOUTPUT_ERR_RELATION), 0, 2, ids_unknown);
	truncate_(E("Truncate outside a transaction", false, PGOUTPUT_ERR_STATE), 0, 1, ids_unknown);
	truncate_(E("Truncate, bad options", true, PGOUTPUT_ERR_VALUE), 4, 1, ids_unknown);
	{
		struct b *m = E("Truncate, count beyond the ids", true, PGOUTPUT_ERR_TRUNCATED);

		truncate_(m, 0, 1, ids_unknown);
		m->d[4] = 2;
	}
	{
		struct b *m = E("Truncate, huge count", true, PGOUTPUT_ERR_TRUNCATED);

		truncate_(m, 0, 1, ids_unknown);
		m->d[1] = 0xff;
	}
	{
		struct b *m = E("Insert, marker 'K'", true, PGOUTPUT_ERR_VALUE);

		insert(m, REL_A, "t");
		m->d[5] = 'K';
	}
	{
		struct b *m = E("Update, old row then no 'N'", true, PGOUTPUT_ERR_VALUE);

		update(m, REL_A, 'O', "t", "t");
		m->d[5 + 1 + 2 + 1 + 4 + 5] = 'O';
	}
	delete(E("Delete, marker 'N'", true, PGOUTPUT_ERR_VALUE), REL_A, 'N', "t");
	{
		struct b *m = E("column kind 'x'", true, PGOUTPUT_ERR_VALUE);

		insert(m, REL_A, "n");
		m->d[8] = 'x';
	}
	{
		struct b *m = E("negative column length", true, PGOUTPUT_ERR_VALUE);

		insert(m, REL_A, "t");
		m->d[9] = 0x80;
	}
	{
		struct b *m = E("column length past the end", true, PGOUTPUT_ERR_TRUNCATED);

		insert(m, REL_A, "t");
		m->d[12] = 6;
	}
	{
		struct b *m = E("more columns than sent", true, PGOUTPUT_ERR_TRUNCATED);

		insert(m, REL_A, "t");
		m->d[7] = 2;
	}
	relation(E("Relation, replica identity 'x'", false, PGOUTPUT_ERR_VALUE), REL_C, "s", "r", 'x', 1);
	relation(E("Relation, id 0", false, PGOUTPUT_ERR_VALUE), 0, "s", "r", 'd', 1);
	relation(E("Relation, empty name", false, PGOUTPUT_ERR_VALUE), REL_C, "s", "", 'd', 1);
	{
		struct b *m = E("Relation, column flags 2", false, PGOUTPUT_ERR_VALUE);

		relation(m, REL_C, "s", "r", 'd', 1);
		m->d[1 + 4 + 2 + 2 + 1 + 2] = 2;
	}
	{
		struct b *m = E("Relation, name without its NUL", false, PGOUTPUT_ERR_TRUNCATED);

		u8(m, 'R');
		u32(m, REL_C);
		str(m, "s");
		put(m, "rrrr", 4);
	}
	{
		struct b *m = E("Origin outside a transaction", false, PGOUTPUT_ERR_STATE);

		u8(m, 'O');
		u64(m, 1);
		str(m, "o");
	}
	message(E("Message, transactional outside", false, PGOUTPUT_ERR_STATE), 1, "p", "x");
	message(E("Message, flags 2", true, PGOUTPUT_ERR_VALUE), 2, "p", "x");
	{
		struct b *m = E("Message, negative length", true, PGOUTPUT_ERR_VALUE);

		message(m, 0, "p", "x");
		m->d[1 + 1 + 8 + 2] = 0xff;
	}
	keepalive(E("keepalive, reply 2", false, PGOUTPUT_ERR_VALUE), 1, 2);
	c[n - 1].copydata = true;
	u8(E("CopyData type 'x'", false, PGOUTPUT_ERR_TYPE), 'x');
	c[n - 1].copydata = true;
	{
		struct b *m = E("XLogData without a message", false, PGOUTPUT_ERR_TRUNCATED);

		u8(m, 'w');
		u64(m, 1);
		u64(m, 2);
		u64(m, 3);
		c[n - 1].copydata = true;
	}
#undef E
	for (size_t i = 0; i < n; i++) {
		struct pgoutput_decoder *d = setup(c[i].in_txn);
		struct pgoutput_event ev;
		char before[512], after[512];
		int rc;

		snap(d, before, sizeof(before));
		rc = c[i].copydata ? pgoutput_feed(d, c[i].m.d, c[i].m.n, &ev) : feed(d, &c[i].m, &ev);
		snap(d, after, sizeof(after));
		ok(rc == c[i].rc && strcmp(before, after) == 0, "%s: %s", c[i].name,
		   pgoutput_error_message(c[i].rc));
		if (rc != c[i].rc)
			printf("#   got %d (%s)\n", rc, pgoutput_error_message(rc));
		if (!c[i].copydata && c[i].m.n) {
			struct b w = wrap(&c[i].m);

			rc = pgoutput_feed(d, w.d, w.n, &ev);
			is_int(rc, c[i].rc, "%s, in XLogData", c[i].name);
		}
		pgoutput_decoder_free(d);
	}
}

/* ---- transactions -------------------------------------------------------------- */

/* The names of a commit's tables, comma-separated. */
static const char *names(const struct pgoutput_event *ev)
{
	static char out[512];
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < ev->ntables; i++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i ? "," : "", ev->tables[i]->name);
	return out;
}

static void test_transactions(void)
{
	static const uint32_t bc[] = { REL_B, REL_C }, cab[] = { REL_C, REL_A, REL_B };
	struct pgoutput_decoder *d = setup(false);
	struct pgoutput_event ev;
	struct b m = { .n = 0 };
	const struct pgoutput_relation *a = pgoutput_decoder_relation(d, REL_A);

	relation(&m, REL_C, "sales", "orders", 'd', 1);
	must(d, &m);
#define F(build) (m.n = 0, build, feed(d, &m, &ev))
	F(begin(&m, 100, 1));
	for (int i = 0; i < 3; i++)
		F(insert(&m, REL_A, "ttt"));
	F(update(&m, REL_B, 'O', "tt", "tt"));
	F(delete(&m, REL_A, 'K', "tnn"));
	is_int(F(commit(&m, 100, 110)), 0, "commit of a two-table transaction");
	is_str(names(&ev), "public.a,public.b", "it changed a and b, once each, in order");

	F(begin(&m, 200, 2));
	F(truncate_(&m, 1, 2, bc));
	F(insert(&m, REL_B, "tt"));
	is_int(F(commit(&m, 200, 210)), 0, "commit of a truncate");
	is_str(names(&ev), "public.b,sales.orders", "truncate of two tables");

	F(begin(&m, 300, 3));
	is_int(F(commit(&m, 300, 310)), 0, "empty transaction");
	is_int(ev.ntables, 0, "changes nothing");

	/* A relation renamed in the middle of a transaction that touched it:
	 * replaced in place, still touched, reported under its new name. */
	F(begin(&m, 400, 4));
	F(insert(&m, REL_A, "ttt"));
	is_int(F(relation(&m, REL_A, "archive", "a_old", 'f', 4)), 0, "relation replaced mid-transaction");
	ok(ev.relation == a && a->touched && a->ncols == 4 && a->replident == 'f',
	   "same entry, still touched, new description");
	is_int(pgoutput_decoder_relations(d), 3, "no new entry");
	F(truncate_(&m, 0, 3, cab));
	is_int(F(commit(&m, 400, 410)), 0, "commit");
	is_str(names(&ev), "archive.a_old,sales.orders,public.b", "new name reported");

	/* A million rows: nothing but the set is kept. */
	F(begin(&m, 500, 5));
	m.n = 0;
	insert(&m, REL_A, "ttbnu");
	{
		struct b m2 = { .n = 0 };
		int bad = 0;

		update(&m2, REL_B, 'K', "tn", "tt");
		for (int i = 0; i < 1000000; i++)
			bad += feed(d, i % 2 ? &m : &m2, &ev) != 0;
		is_int(bad, 0, "a million changes decode");
	}
	is_int(F(commit(&m, 500, 510)), 0, "commit of a million rows");
	is_str(names(&ev), "public.b,archive.a_old", "two tables");
#undef F
	pgoutput_decoder_free(d);
}

static void test_limits(void)
{
	struct pgoutput_decoder *d = new_decoder(3);
	struct pgoutput_event ev;
	struct b m = { .n = 0 };
	char name[PGOUTPUT_MAX_NAME + 2];
	int bad = 0;

	for (uint32_t id = 1; id <= 3; id++) {
		m.n = 0;
		relation(&m, id, "s", "r", 'd', 1);
		bad += feed(d, &m, &ev) != 0;
	}
	is_int(bad, 0, "three relations fit in a decoder of three");
	m.n = 0;
	relation(&m, 4, "s", "r", 'd', 1);
	is_int(feed(d, &m, &ev), PGOUTPUT_ERR_TOO_MANY, "a fourth does not");
	m.n = 0;
	relation(&m, 2, "s", "r2", 'd', 1);
	is_int(feed(d, &m, &ev), 0, "a known one can still be replaced");
	pgoutput_decoder_free(d);

	d = new_decoder(0);
	memset(name, 'n', sizeof(name));
	name[PGOUTPUT_MAX_NAME] = '\0';
	m.n = 0;
	relation(&m, 7, name, name, 'd', 0);
	is_int(feed(d, &m, &ev), 0, "names of %d bytes", PGOUTPUT_MAX_NAME);
	is_int(strlen(ev.relation->name), 2 * PGOUTPUT_MAX_NAME + 1, "qualified name whole");
	name[PGOUTPUT_MAX_NAME] = 'n';
	name[PGOUTPUT_MAX_NAME + 1] = '\0';
	m.n = 0;
	relation(&m, 8, "s", name, 'd', 0);
	is_int(feed(d, &m, &ev), PGOUTPUT_ERR_NAME, "a name of %d bytes is refused", PGOUTPUT_MAX_NAME + 1);
	m.n = 0;
	relation(&m, 8, name, "r", 'd', 0);
	is_int(feed(d, &m, &ev), PGOUTPUT_ERR_NAME, "a schema of %d bytes too", PGOUTPUT_MAX_NAME + 1);

	/* Enough relations to grow the table several times. */
	bad = 0;
	for (uint32_t id = 100; id < 5100; id++) {
		char rel[16];

		snprintf(rel, sizeof(rel), "t%u", (unsigned)id);
		m.n = 0;
		relation(&m, id * 7919, "public", rel, 'd', 1);
		bad += feed(d, &m, &ev) != 0;
	}
	is_int(bad, 0, "5000 relations");
	is_int(pgoutput_decoder_relations(d), 5001, "all kept");
	bad = 0;
	for (uint32_t id = 100; id < 5100; id++) {
		const struct pgoutput_relation *r = pgoutput_decoder_relation(d, id * 7919);
		char rel[32];

		snprintf(rel, sizeof(rel), "public.t%u", (unsigned)id);
		bad += !r || strcmp(r->name, rel) != 0;
	}
	is_int(bad, 0, "and found by id");
	ok(pgoutput_decoder_relation(d, 12345) == NULL, "an unknown id is not");
	pgoutput_decoder_reset(d);
	is_int(pgoutput_decoder_relations(d), 0, "reset forgets them");
	ok(!pgoutput_decoder_in_transaction(d) && pgoutput_decoder_flush_lsn(d) == 0, "and the rest");
	pgoutput_decoder_free(d);
	pgoutput_decoder_free(NULL);
	for (int e = PGOUTPUT_ERR_SPACE; e <= 0; e++)
		bad += strcmp(pgoutput_error_message(e), "unknown error") == 0;
	is_int(bad, 0, "every error has a message");
}

/* ---- a real stream -------------------------------------------------------------- */

/* What tests/integration/pgoutput.test.mjs did, one line per commit
 * (names sorted). */
static const char *const real_commits[] = {
	"public.sales",
	"public.sales,public.stock",
	"public.stock",
	"public.sales",
	"public.sales",
	"public.sales",
	"public.stock",
	"public.stock",
	"public.sales,public.stock",
	"public.sales",
	"public.stock",
	"public.stock",
};

static int by_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (data = malloc((size_t)n)) && fread(data, 1, (size_t)n, f) != (size_t)n) {
		free(data);
		data = NULL;
	}
	*len = data ? (size_t)n : 0;
	fclose(f);
	return data;
}

static void test_real_stream(const char *file)
{
	char path[1024];
	uint8_t *data;
	size_t len = 0, off = 0, ncommit = 0, nmsg = 0, bad_prefix = 0, bad = 0;
	unsigned long kinds[256] = { 0 };
	struct pgoutput_decoder *d = new_decoder(0);
	bool commits_ok = true;

	snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, file);
	data = slurp(path, &len);
	if (!ok(data != NULL, "%s: read", file)) {
		pgoutput_decoder_free(d);
		return;
	}
	while (len - off >= 4) {
		uint32_t n = (uint32_t)data[off] << 24 | (uint32_t)data[off + 1] << 16 |
			     (uint32_t)data[off + 2] << 8 | data[off + 3];
		const uint8_t *m = data + off + 4;
		struct pgoutput_event ev;
		char before[512], after[512];

		if (n > len - off - 4)
			break;
		off += 4 + n;
		nmsg++;
		/* Every proper prefix of every real message is refused and
		 * leaves the decoder as it was. */
		snap(d, before, sizeof(before));
		for (size_t k = 0; k < n; k++) {
			uint8_t *copy = malloc(k ? k : 1);

			memcpy(copy, m, k);
			bad_prefix += pgoutput_feed(d, copy, k, &ev) >= 0;
			free(copy);
		}
		snap(d, after, sizeof(after));
		bad_prefix += strcmp(before, after) != 0;
		if (pgoutput_feed(d, m, n, &ev) < 0) {
			bad++;
			continue;
		}
		kinds[ev.msg == 'k' ? 'k' : (uint8_t)ev.kind]++;
		if (ev.type == PGOUTPUT_EV_COMMIT) {
			const char *names_[8];
			char line[512] = "";
			size_t used = 0;

			for (size_t i = 0; i < ev.ntables && i < 8; i++)
				names_[i] = ev.tables[i]->name;
			qsort(names_, ev.ntables < 8 ? ev.ntables : 8, sizeof(names_[0]), by_str);
			for (size_t i = 0; i < ev.ntables && i < 8; i++)
				used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%s", i ? "," : "",
							 names_[i]);
			if (ncommit >= sizeof(real_commits) / sizeof(real_commits[0]) ||
			    strcmp(line, real_commits[ncommit]) != 0) {
				printf("#   commit %zu: %s\n", ncommit, line);
				commits_ok = false;
			}
			ncommit++;
		}
	}
	is_int(off, len, "%s: %zu messages, whole", file, nmsg);
	is_int(bad, 0, "%s: every message decodes", file);
	is_int(bad_prefix, 0, "%s: every proper prefix of each is refused, harmlessly", file);
	ok(commits_ok && ncommit == sizeof(real_commits) / sizeof(real_commits[0]),
	   "%s: %zu commits, each with the tables its transaction changed", file, ncommit);
	ok(kinds['B'] == ncommit && kinds['R'] && kinds['Y'] && kinds['O'] && kinds['I'] && kinds['U'] &&
	   kinds['D'] && kinds['T'] && kinds['M'] == 2 && kinds['k'],
	   "%s: B R Y O I U D T M and keepalives seen", file);
	ok(!pgoutput_decoder_in_transaction(d) && pgoutput_decoder_relations(d) == 2,
	   "%s: ends between transactions, two relations known", file);
	pgoutput_decoder_free(d);
	free(data);
}

int main(void)
{
	test_status();
	test_valid();
	test_fields();
	test_errors();
	test_transactions();
	test_limits();
	test_real_stream("pgoutput-stream.bin");
	test_real_stream("pgoutput-stream-binary.bin");
	return done_testing();
}
