/*
 * Fuzz target: the replication stream decoder (src/pgoutput.c), fed a
 * session: a sequence of CopyData payloads, each a big-endian Int32 length
 * and its bytes (a length past the end takes what is left), into one
 * decoder of FZ_MAX_REL relations. That is the format of the streams
 * captured from PostgreSQL (tests/unit/pgoutput-stream*.bin), which seed
 * the corpus.
 *
 * Invariants, beyond "no memory error, no UB, no leak":
 *  - results are 0 or a pgoutput_error, each with a message;
 *  - an error leaves the decoder exactly as it was;
 *  - the decoder agrees with a model kept here from the events alone: the
 *    relations (id, qualified name made of the two parts, replica
 *    identity, columns), whether a transaction is open, the relations it
 *    touched (set by the changes' ids read from the input), the flush
 *    position; a Commit reports exactly the touched relations, in order of
 *    first change, and they are no longer marked;
 *  - the event is the message's: its kind byte, the relation id it names,
 *    borrowed pointers inside the input;
 *  - messages are prefix-free: for a message of up to PREFIX_MAX bytes,
 *    every proper prefix is tried first; once one is accepted, the whole
 *    message must be refused as trailing bytes;
 *  - nothing grows past max_relations.
 */
#include "autoconfig.h"

#include "pgoutput.h"
#include "fuzz.h"

#define FZ_MAX_REL 8
#define PREFIX_MAX 512

struct mrel {
	uint32_t id;
	char name[2 * PGOUTPUT_MAX_NAME + 2];
	char replident;
	uint16_t ncols;
};

static struct {
	struct mrel rels[FZ_MAX_REL];
	size_t nrels;
	uint32_t touched[FZ_MAX_REL];
	size_t ntouched;
	bool in_txn;
	uint64_t flush;
} m;

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static struct mrel *model_rel(uint32_t id)
{
	for (size_t i = 0; i < m.nrels; i++) {
		if (m.rels[i].id == id)
			return &m.rels[i];
	}
	return NULL;
}

static bool model_touched(uint32_t id)
{
	for (size_t i = 0; i < m.ntouched; i++) {
		if (m.touched[i] == id)
			return true;
	}
	return false;
}

static void touch(uint32_t id)
{
	FUZZ_CHECK(model_rel(id) != NULL);
	if (!model_touched(id)) {
		FUZZ_CHECK(m.ntouched < FZ_MAX_REL);
		m.touched[m.ntouched++] = id;
	}
}

/* The decoder's whole state against the model. */
static void check_state(const struct pgoutput_decoder *d)
{
	FUZZ_CHECK(pgoutput_decoder_in_transaction(d) == m.in_txn);
	FUZZ_CHECK(pgoutput_decoder_relations(d) == m.nrels);
	FUZZ_CHECK(pgoutput_decoder_flush_lsn(d) == m.flush);
	for (size_t i = 0; i < m.nrels; i++) {
		const struct pgoutput_relation *r = pgoutput_decoder_relation(d, m.rels[i].id);

		FUZZ_CHECK(r != NULL && r->id == m.rels[i].id);
		FUZZ_CHECK(strcmp(r->name, m.rels[i].name) == 0);
		FUZZ_CHECK(r->replident == m.rels[i].replident && r->ncols == m.rels[i].ncols);
		FUZZ_CHECK(r->touched == (m.in_txn && model_touched(r->id)));
	}
}

/* Checks an accepted message's event and applies it to the model. */
static void apply(const struct pgoutput_decoder *d, const uint8_t *msg, size_t len,
		  const struct pgoutput_event *ev)
{
	const uint8_t *lm = msg + 25; /* the pgoutput message in XLogData */

	FUZZ_CHECK(len >= 1 && ev->msg == (char)msg[0]);
	if (ev->msg == 'k') {
		FUZZ_CHECK(len == 18 && ev->type == PGOUTPUT_EV_KEEPALIVE && ev->kind == 0);
		FUZZ_CHECK(ev->reply_requested == (msg[17] == 1));
		if (!m.in_txn && ev->wal_end > m.flush)
			m.flush = ev->wal_end;
		return;
	}
	FUZZ_CHECK(ev->msg == 'w' && len > 25 && ev->kind == (char)lm[0]);
	switch (ev->type) {
	case PGOUTPUT_EV_BEGIN:
		FUZZ_CHECK(ev->kind == 'B' && !m.in_txn && ev->lsn != 0);
		m.in_txn = true;
		m.ntouched = 0;
		break;
	case PGOUTPUT_EV_COMMIT:
		FUZZ_CHECK(ev->kind == 'C' && m.in_txn);
		FUZZ_CHECK(ev->ntables == m.ntouched);
		for (size_t i = 0; i < ev->ntables; i++)
			FUZZ_CHECK(ev->tables[i]->id == m.touched[i] && !ev->tables[i]->touched);
		m.in_txn = false;
		m.ntouched = 0;
		if (ev->end_lsn > m.flush)
			m.flush = ev->end_lsn;
		break;
	case PGOUTPUT_EV_RELATION: {
		const struct pgoutput_relation *r = ev->relation;
		struct mrel *mr;
		size_t nl, rl;

		FUZZ_CHECK(ev->kind == 'R' && r != NULL && r->id == be32(lm + 1) && r->id != 0);
		FUZZ_CHECK(r == pgoutput_decoder_relation(d, r->id));
		nl = strlen(r->nspname);
		rl = strlen(r->relname);
		FUZZ_CHECK(nl >= 1 && nl <= PGOUTPUT_MAX_NAME && rl >= 1 && rl <= PGOUTPUT_MAX_NAME);
		FUZZ_CHECK(strlen(r->name) == nl + 1 + rl && memcmp(r->name, r->nspname, nl) == 0 &&
			   r->name[nl] == '.' && strcmp(r->name + nl + 1, r->relname) == 0);
		FUZZ_CHECK(r->replident && strchr("dnfi", r->replident));
		mr = model_rel(r->id);
		if (!mr) {
			FUZZ_CHECK(m.nrels < FZ_MAX_REL);
			mr = &m.rels[m.nrels++];
			mr->id = r->id;
		}
		memcpy(mr->name, r->name, strlen(r->name) + 1);
		mr->replident = r->replident;
		mr->ncols = r->ncols;
		break;
	}
	case PGOUTPUT_EV_CHANGE:
		FUZZ_CHECK(m.in_txn);
		if (ev->kind == 'T') {
			uint32_t n = be32(lm + 1);

			FUZZ_CHECK(ev->relation == NULL && len == 25 + 6 + (size_t)n * 4);
			for (uint32_t i = 0; i < n; i++)
				touch(be32(lm + 6 + 4 * (size_t)i));
		} else {
			FUZZ_CHECK(ev->kind == 'I' || ev->kind == 'U' || ev->kind == 'D');
			FUZZ_CHECK(ev->relation != NULL && ev->relation->id == be32(lm + 1));
			touch(ev->relation->id);
		}
		break;
	case PGOUTPUT_EV_MESSAGE:
		FUZZ_CHECK(ev->kind == 'M');
		FUZZ_CHECK(fuzz_inside(ev->prefix, strlen(ev->prefix) + 1, msg, len));
		FUZZ_CHECK(fuzz_inside(ev->content, ev->content_len, msg, len));
		FUZZ_CHECK(ev->content + ev->content_len == msg + len);
		FUZZ_CHECK(!ev->transactional || m.in_txn);
		break;
	case PGOUTPUT_EV_IGNORED:
		FUZZ_CHECK(ev->kind == 'Y' || (ev->kind == 'O' && m.in_txn));
		break;
	default:
		FUZZ_CHECK(0);
	}
}

static int feed(struct pgoutput_decoder *d, const uint8_t *msg, size_t len)
{
	struct pgoutput_event ev;
	int rc = pgoutput_feed(d, msg, len, &ev);

	FUZZ_CHECK(rc == 0 || (rc >= PGOUTPUT_ERR_SPACE && rc < 0 && rc != PGOUTPUT_ERR_SPACE));
	FUZZ_CHECK(strcmp(pgoutput_error_message(rc), "unknown error") != 0);
	if (rc == 0)
		apply(d, msg, len, &ev);
	check_state(d);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgoutput_decoder *d;
	size_t off = 0;

	memset(&m, 0, sizeof(m));
	if (pgoutput_decoder_new(&d, FZ_MAX_REL) < 0)
		abort();
	while (size - off >= 4) {
		size_t len = be32(data + off);
		uint8_t *msg;
		bool prefix_taken = false;
		int rc;

		off += 4;
		if (len > size - off)
			len = size - off;
		/* An exact-size copy, prefixes hidden from ASan as they are tried. */
		msg = (uint8_t *)fuzz_dup(data + off, len);
		off += len;
		for (size_t k = 0; len <= PREFIX_MAX && k < len && !prefix_taken; k++) {
			FUZZ_HIDE_TAIL(msg, k, len);
			prefix_taken = feed(d, msg, k) == 0;
			FUZZ_SHOW_TAIL(msg, k, len);
		}
		rc = feed(d, msg, len);
		if (prefix_taken)
			FUZZ_CHECK(rc == PGOUTPUT_ERR_TRAILING);
		free(msg);
	}
	pgoutput_decoder_free(d);
	return 0;
}
