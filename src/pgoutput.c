#include "autoconfig.h"

#include "pgoutput.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Protocol constants, named as in PostgreSQL's logicalproto.h and proto.c. */
#define IS_REPLICA_IDENTITY 1     /* column flag in Relation */
#define MESSAGE_TRANSACTIONAL 1   /* flag in Message */
#define TRUNCATE_CASCADE 1
#define TRUNCATE_RESTART_SEQS 2

/* The most max_relations can be. */
#define RELATIONS_LIMIT ((size_t)1 << 24)

struct pgoutput_decoder {
	size_t max_relations;
	size_t nrel;
	unsigned bits;                     /* slots has 1 << bits places, 0 when none */
	struct entry **slots;              /* open addressing on id, at most half full */
	/* The current transaction's relations, first change first: as many
	 * places as slots, so that marking one never allocates. */
	struct pgoutput_relation **touched;
	size_t ntouched;
	bool in_txn;
	uint64_t flush_lsn;
};

/* A relation and the one block that holds its names ("nsp\0rel\0nsp.rel\0"). */
struct entry {
	struct pgoutput_relation rel;
	char *buf;
};

/* ---- reading --------------------------------------------------------------- */

/* A cursor over one message; every read checks what is left. */
struct rd {
	const uint8_t *p;
	size_t n;
};

static bool rd_u8(struct rd *r, uint8_t *v)
{
	if (r->n < 1)
		return false;
	*v = r->p[0];
	r->p++;
	r->n--;
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	if (r->n < 2)
		return false;
	*v = (uint16_t)(r->p[0] << 8 | r->p[1]);
	r->p += 2;
	r->n -= 2;
	return true;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
	if (r->n < 4)
		return false;
	*v = get_u32(r->p);
	r->p += 4;
	r->n -= 4;
	return true;
}

static bool rd_u64(struct rd *r, uint64_t *v)
{
	if (r->n < 8)
		return false;
	*v = (uint64_t)get_u32(r->p) << 32 | get_u32(r->p + 4);
	r->p += 8;
	r->n -= 8;
	return true;
}

static bool rd_skip(struct rd *r, size_t n)
{
	if (r->n < n)
		return false;
	r->p += n;
	r->n -= n;
	return true;
}

/* A String: bytes up to a NUL that lies inside the message. */
static bool rd_str(struct rd *r, const char **s, size_t *len)
{
	const uint8_t *nul = r->n ? memchr(r->p, 0, r->n) : NULL;

	if (!nul)
		return false;
	*s = (const char *)r->p;
	*len = (size_t)(nul - r->p);
	r->p = nul + 1;
	r->n -= *len + 1;
	return true;
}

/* An Int32 length that must not be negative. */
static int rd_len(struct rd *r, uint32_t *len)
{
	if (!rd_u32(r, len))
		return PGOUTPUT_ERR_TRUNCATED;
	return *len > INT32_MAX ? PGOUTPUT_ERR_VALUE : 0;
}

static int rd_end(const struct rd *r)
{
	return r->n ? PGOUTPUT_ERR_TRAILING : 0;
}

/* Skips a TupleData: Int16 columns, each 'n' null, 'u' unchanged TOAST
 * datum, or 't' text / 'b' binary with an Int32 length. */
static int skip_tuple(struct rd *r)
{
	uint16_t ncols;

	if (!rd_u16(r, &ncols))
		return PGOUTPUT_ERR_TRUNCATED;
	for (uint16_t i = 0; i < ncols; i++) {
		uint8_t kind;
		uint32_t len;
		int rc;

		if (!rd_u8(r, &kind))
			return PGOUTPUT_ERR_TRUNCATED;
		switch (kind) {
		case 'n':
		case 'u':
			break;
		case 't':
		case 'b':
			if ((rc = rd_len(r, &len)) < 0)
				return rc;
			if (!rd_skip(r, len))
				return PGOUTPUT_ERR_TRUNCATED;
			break;
		default:
			return PGOUTPUT_ERR_VALUE;
		}
	}
	return 0;
}

/* ---- the relation table ------------------------------------------------------ */

static size_t slot_of(unsigned bits, uint32_t id)
{
	return (size_t)((id * 0x9e3779b1u) >> (32 - bits));
}

static size_t find_slot(const struct pgoutput_decoder *d, uint32_t id)
{
	size_t mask = ((size_t)1 << d->bits) - 1, i = slot_of(d->bits, id);

	while (d->slots[i] && d->slots[i]->rel.id != id)
		i = (i + 1) & mask;
	return i;
}

static struct pgoutput_relation *lookup(const struct pgoutput_decoder *d, uint32_t id)
{
	struct entry *e = d->bits ? d->slots[find_slot(d, id)] : NULL;

	return e ? &e->rel : NULL;
}

/* Makes room for one more relation: doubles the table when it would be
 * more than half full. The contents stay the same, so a failure later in
 * the same message leaves the decoder as it was. */
static int reserve(struct pgoutput_decoder *d)
{
	unsigned bits = d->bits ? d->bits + 1 : 4;
	size_t cap = (size_t)1 << bits;
	struct entry **slots;
	struct pgoutput_relation **touched;

	if (d->bits && (d->nrel + 1) * 2 <= ((size_t)1 << d->bits))
		return 0;
	slots = calloc(cap, sizeof(*slots));
	touched = realloc(d->touched, cap * sizeof(*touched));
	if (touched)
		d->touched = touched;
	if (!slots || !touched) {
		free(slots);
		return PGOUTPUT_ERR_NOMEM;
	}
	for (size_t i = 0; d->bits && i < ((size_t)1 << d->bits); i++) {
		size_t j;

		if (!d->slots[i])
			continue;
		for (j = slot_of(bits, d->slots[i]->rel.id); slots[j]; j = (j + 1) & (cap - 1))
			;
		slots[j] = d->slots[i];
	}
	free(d->slots);
	d->slots = slots;
	d->bits = bits;
	return 0;
}

static void mark(struct pgoutput_decoder *d, struct pgoutput_relation *rel)
{
	if (!rel->touched) {
		rel->touched = true;
		d->touched[d->ntouched++] = rel;
	}
}

/* ---- pgoutput messages ----------------------------------------------------- */

static int msg_begin(struct pgoutput_decoder *d, struct rd *r, struct pgoutput_event *ev)
{
	uint64_t time;
	int rc;

	if (!rd_u64(r, &ev->lsn) || !rd_u64(r, &time) || !rd_u32(r, &ev->xid))
		return PGOUTPUT_ERR_TRUNCATED;
	if ((rc = rd_end(r)) < 0)
		return rc;
	if (ev->lsn == 0) /* proto.c: "final_lsn not set in begin message" */
		return PGOUTPUT_ERR_VALUE;
	if (d->in_txn)
		return PGOUTPUT_ERR_STATE;
	ev->commit_time = (int64_t)time;
	ev->type = PGOUTPUT_EV_BEGIN;
	d->in_txn = true;
	d->ntouched = 0;
	return 0;
}

static int msg_commit(struct pgoutput_decoder *d, struct rd *r, struct pgoutput_event *ev)
{
	uint8_t flags;
	uint64_t time;
	int rc;

	if (!rd_u8(r, &flags) || !rd_u64(r, &ev->lsn) || !rd_u64(r, &ev->end_lsn) ||
	    !rd_u64(r, &time))
		return PGOUTPUT_ERR_TRUNCATED;
	if ((rc = rd_end(r)) < 0)
		return rc;
	if (flags != 0) /* "currently unused" */
		return PGOUTPUT_ERR_VALUE;
	if (!d->in_txn)
		return PGOUTPUT_ERR_STATE;
	ev->commit_time = (int64_t)time;
	ev->type = PGOUTPUT_EV_COMMIT;
	ev->tables = (const struct pgoutput_relation *const *)d->touched;
	ev->ntables = d->ntouched;
	/* The flags go now; the list stays for the event until the next Begin. */
	for (size_t i = 0; i < d->ntouched; i++)
		d->touched[i]->touched = false;
	d->in_txn = false;
	if (ev->end_lsn > d->flush_lsn)
		d->flush_lsn = ev->end_lsn;
	return 0;
}

static int msg_origin(struct pgoutput_decoder *d, struct rd *r, struct pgoutput_event *ev)
{
	const char *name;
	size_t len;
	int rc;

	if (!rd_u64(r, &ev->lsn) || !rd_str(r, &name, &len))
		return PGOUTPUT_ERR_TRUNCATED;
	if ((rc = rd_end(r)) < 0)
		return rc;
	if (!d->in_txn) /* sent right after Begin */
		return PGOUTPUT_ERR_STATE;
	ev->type = PGOUTPUT_EV_IGNORED;
	return 0;
}

static int msg_type(struct pgoutput_decoder *d, struct rd *r, struct pgoutput_event *ev)
{
	uint32_t oid;
	const char *s;
	size_t len;
	int rc;

	if (!rd_u32(r, &oid) || !rd_str(r, &s, &len) || !rd_str(r, &s, &len))
		return PGOUTPUT_ERR_TRUNCATED;
	if ((rc = rd_end(r)) < 0)
		return rc;
	ev->type = PGOUTPUT_EV_IGNORED;
	return 0;
}

static int msg_relation(struct pgoutput_decoder *d, struct rd *r, struct pgoutput_event *ev)
{
	uint32_t id;
	const char *nsp, *name;
	size_t nsp_len, name_len;
	uint8_t replident;
	uint16_t ncols;
	struct pgoutput_relation *rel;
	struct entry *e = NULL;
	size_t buf_len;
	char *buf;
	int rc;

	if (!rd_u32(r, &id) || !rd_str(r, &nsp, &nsp_len) || !rd_str(r, &name, &name_len) ||
	    !rd_u8(r, &replident) || !rd_u16(r, &ncols))
		return PGOUTPUT_ERR_TRUNCATED;
	for (uint16_t i = 0; i < ncols; i++) {
		uint8_t flags;
		uint32_t type, typmod;
		const char *col;
		size_t col_len;

		if (!rd_u8(r, &flags) || !rd_str(r, &col, &col_len) || !rd_u32(r, &type) ||
		    !rd_u32(r, &typmod))
			return PGOUTPUT_ERR_TRUNCATED;
		if (flags & ~IS_REPLICA_IDENTITY)
			return PGOUTPUT_ERR_VALUE;
	}
	if ((rc = rd_end(r)) < 0)
		return rc;
	/* relreplident: default, nothing, full, index. */
	if (id == 0 || name_len == 0 || !memchr("dnfi", replident, 4))
		return PGOUTPUT_ERR_VALUE;
	if (nsp_len > PGOUTPUT_MAX_NAME || name_len > PGOUTPUT_MAX_NAME)
		return PGOUTPUT_ERR_NAME;
	/* "Namespace (empty string for pg_catalog)". */
	if (nsp_len == 0) {
		nsp = "pg_catalog";
		nsp_len = strlen(nsp);
	}

	rel = lookup(d, id);
	if (!rel && d->nrel >= d->max_relations)
		return PGOUTPUT_ERR_TOO_MANY;
	buf_len = 2 * (nsp_len + 1 + name_len + 1);
	buf = malloc(buf_len);
	if (!buf)
		return PGOUTPUT_ERR_NOMEM;
	if (!rel) {
		e = calloc(1, sizeof(*e));
		if (!e || reserve(d) < 0) {
			free(e);
			free(buf);
			return PGOUTPUT_ERR_NOMEM;
		}
	}
	/* Nothing can fail from here on. The names are short (the caps
	 * above), and free of NUL by how they were read. */
	snprintf(buf, buf_len, "%.*s%c%.*s%c%.*s.%.*s", (int)nsp_len, nsp, 0, (int)name_len, name, 0,
		 (int)nsp_len, nsp, (int)name_len, name);
	if (e) {
		d->slots[find_slot(d, id)] = e;
		d->nrel++;
		rel = &e->rel;
		rel->id = id;
	} else {
		/* A known id: the relation changed (ALTER TABLE, RENAME) or the
		 * walsender's cache was invalidated. Replace it in place, so that
		 * the touched list and earlier pointers stay valid. */
		e = d->slots[find_slot(d, id)];
		free(e->buf);
	}
	e->buf = buf;
	rel->nspname = buf;
	rel->relname = buf + nsp_len + 1;
	rel->name = buf + nsp_len + 1 + name_len + 1;
	rel->replident = (char)replident;
	rel->ncols = ncols;
	ev->type = PGOUTPUT_EV_RELATION;
	ev->relation = rel;
	return 0;
}

/* Insert, Update, Delete: Int32 relation id, then tuples by marker. */
static int msg_change(struct pgoutput_decoder *d, struct rd *r, struct pgoutput_event *ev)
{
	uint32_t id;
	uint8_t marker;
	struct pgoutput_relation *rel;
	int rc;

	if (!rd_u32(r, &id) || !rd_u8(r, &marker))
		return PGOUTPUT_ERR_TRUNCATED;
	switch (ev->kind) {
	case 'U':
		/* Optional old key ('K') or old row ('O', REPLICA IDENTITY FULL),
		 * then the new row. */
		if (marker == 'K' || marker == 'O') {
			if ((rc = skip_tuple(r)) < 0)
				return rc;
			if (!rd_u8(r, &marker))
				return PGOUTPUT_ERR_TRUNCATED;
		}
		/* fall through */
	case 'I':
		if (marker != 'N')
			return PGOUTPUT_ERR_VALUE;
		break;
	case 'D':
		if (marker != 'K' && marker != 'O')
			return PGOUTPUT_ERR_VALUE;
		break;
	}
	if ((rc = skip_tuple(r)) < 0 || (rc = rd_end(r)) < 0)
		return rc;
	if (!d->in_txn)
		return PGOUTPUT_ERR_STATE;
	rel = lookup(d, id);
	if (!rel) /* the protocol sends Relation before a relation's first change */
		return PGOUTPUT_ERR_RELATION;
	mark(d, rel);
	ev->type = PGOUTPUT_EV_CHANGE;
	ev->relation = rel;
	return 0;
}

/* Truncate: Int32 count, Int8 options, then that many Int32 relation ids. */
static int msg_truncate(struct pgoutput_decoder *d, struct rd *r, struct pgoutput_event *ev)
{
	uint32_t n;
	uint8_t options;

	if (!rd_u32(r, &n) || !rd_u8(r, &options))
		return PGOUTPUT_ERR_TRUNCATED;
	if ((uint64_t)r->n < (uint64_t)n * 4)
		return PGOUTPUT_ERR_TRUNCATED;
	if ((uint64_t)r->n > (uint64_t)n * 4)
		return PGOUTPUT_ERR_TRAILING;
	if (options & ~(TRUNCATE_CASCADE | TRUNCATE_RESTART_SEQS))
		return PGOUTPUT_ERR_VALUE;
	if (!d->in_txn)
		return PGOUTPUT_ERR_STATE;
	/* All ids are checked before any is marked: an error changes nothing. */
	for (uint32_t i = 0; i < n; i++) {
		if (!lookup(d, get_u32(r->p + 4 * (size_t)i)))
			return PGOUTPUT_ERR_RELATION;
	}
	for (uint32_t i = 0; i < n; i++)
		mark(d, lookup(d, get_u32(r->p + 4 * (size_t)i)));
	ev->type = PGOUTPUT_EV_CHANGE;
	return 0;
}

/* Message (pg_logical_emit_message): Int8 flags, Int64 LSN, String prefix,
 * Int32 length, that many bytes. No xid in protocol version 1. */
static int msg_message(struct pgoutput_decoder *d, struct rd *r, struct pgoutput_event *ev)
{
	uint8_t flags;
	size_t prefix_len;
	uint32_t len;
	int rc;

	if (!rd_u8(r, &flags) || !rd_u64(r, &ev->lsn) || !rd_str(r, &ev->prefix, &prefix_len))
		return PGOUTPUT_ERR_TRUNCATED;
	if ((rc = rd_len(r, &len)) < 0)
		return rc;
	ev->content = r->p;
	ev->content_len = len;
	if (!rd_skip(r, len))
		return PGOUTPUT_ERR_TRUNCATED;
	if ((rc = rd_end(r)) < 0)
		return rc;
	if (flags & ~MESSAGE_TRANSACTIONAL)
		return PGOUTPUT_ERR_VALUE;
	ev->transactional = flags & MESSAGE_TRANSACTIONAL;
	/* A transactional message is decoded with its transaction. */
	if (ev->transactional && !d->in_txn)
		return PGOUTPUT_ERR_STATE;
	ev->type = PGOUTPUT_EV_MESSAGE;
	return 0;
}

int pgoutput_feed_logical(struct pgoutput_decoder *d, const uint8_t *msg, size_t len,
			  struct pgoutput_event *ev)
{
	struct rd r = { msg, len };
	uint8_t kind;

	memset(ev, 0, sizeof(*ev));
	if (!rd_u8(&r, &kind))
		return PGOUTPUT_ERR_TRUNCATED;
	ev->kind = (char)kind;
	switch (kind) {
	case 'B': return msg_begin(d, &r, ev);
	case 'C': return msg_commit(d, &r, ev);
	case 'O': return msg_origin(d, &r, ev);
	case 'Y': return msg_type(d, &r, ev);
	case 'R': return msg_relation(d, &r, ev);
	case 'I':
	case 'U':
	case 'D': return msg_change(d, &r, ev);
	case 'T': return msg_truncate(d, &r, ev);
	case 'M': return msg_message(d, &r, ev);
	default:
		/* Stream (S E c A) and two-phase (b P K r) messages need protocol
		 * versions 2 and 3, which we never ask for. */
		return PGOUTPUT_ERR_TYPE;
	}
}

int pgoutput_feed(struct pgoutput_decoder *d, const uint8_t *msg, size_t len,
		  struct pgoutput_event *ev)
{
	struct rd r = { msg, len };
	uint8_t type, reply;
	uint64_t start, end, time;
	int rc;

	if (!rd_u8(&r, &type))
		return PGOUTPUT_ERR_TRUNCATED;
	switch (type) {
	case 'w':
		if (!rd_u64(&r, &start) || !rd_u64(&r, &end) || !rd_u64(&r, &time))
			return PGOUTPUT_ERR_TRUNCATED;
		if ((rc = pgoutput_feed_logical(d, r.p, r.n, ev)) < 0)
			return rc;
		ev->msg = 'w';
		ev->wal_start = start;
		ev->wal_end = end;
		ev->send_time = (int64_t)time;
		return 0;
	case 'k':
		if (!rd_u64(&r, &end) || !rd_u64(&r, &time) || !rd_u8(&r, &reply))
			return PGOUTPUT_ERR_TRUNCATED;
		if ((rc = rd_end(&r)) < 0)
			return rc;
		if (reply > 1)
			return PGOUTPUT_ERR_VALUE;
		memset(ev, 0, sizeof(*ev));
		ev->type = PGOUTPUT_EV_KEEPALIVE;
		ev->msg = 'k';
		ev->wal_end = end;
		ev->send_time = (int64_t)time;
		ev->reply_requested = reply;
		/* Outside a transaction, everything up to the sender's position
		 * was either sent or not published. */
		if (!d->in_txn && end > d->flush_lsn)
			d->flush_lsn = end;
		return 0;
	default:
		return PGOUTPUT_ERR_TYPE;
	}
}

/* ---- the decoder ------------------------------------------------------------- */

int pgoutput_decoder_new(struct pgoutput_decoder **out, size_t max_relations)
{
	struct pgoutput_decoder *d = calloc(1, sizeof(*d));

	if (!d)
		return PGOUTPUT_ERR_NOMEM;
	if (max_relations == 0)
		max_relations = PGOUTPUT_MAX_RELATIONS;
	/* The hash takes its slot from the top bits of 32. */
	d->max_relations = max_relations < RELATIONS_LIMIT ? max_relations : RELATIONS_LIMIT;
	*out = d;
	return 0;
}

void pgoutput_decoder_reset(struct pgoutput_decoder *d)
{
	for (size_t i = 0; d->bits && i < ((size_t)1 << d->bits); i++) {
		if (d->slots[i]) {
			free(d->slots[i]->buf);
			free(d->slots[i]);
		}
	}
	free(d->slots);
	free(d->touched);
	d->slots = NULL;
	d->touched = NULL;
	d->bits = 0;
	d->nrel = 0;
	d->ntouched = 0;
	d->in_txn = false;
	d->flush_lsn = 0;
}

void pgoutput_decoder_free(struct pgoutput_decoder *d)
{
	if (!d)
		return;
	pgoutput_decoder_reset(d);
	free(d);
}

bool pgoutput_decoder_in_transaction(const struct pgoutput_decoder *d)
{
	return d->in_txn;
}

size_t pgoutput_decoder_relations(const struct pgoutput_decoder *d)
{
	return d->nrel;
}

const struct pgoutput_relation *pgoutput_decoder_relation(const struct pgoutput_decoder *d,
							  uint32_t id)
{
	return lookup(d, id);
}

uint64_t pgoutput_decoder_flush_lsn(const struct pgoutput_decoder *d)
{
	return d->flush_lsn;
}

/* ---- the status update ----------------------------------------------------- */

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

int pgoutput_encode_status(uint8_t *out, size_t cap, uint64_t written, uint64_t flushed,
			   uint64_t applied, int64_t now_pg_us, bool reply_requested)
{
	uint8_t *p = out;

	if (cap < PGOUTPUT_STATUS_LEN)
		return PGOUTPUT_ERR_SPACE;
	*p++ = 'r';
	p = put_u64(p, written);
	p = put_u64(p, flushed);
	p = put_u64(p, applied);
	p = put_u64(p, (uint64_t)now_pg_us);
	*p = reply_requested ? 1 : 0;
	return 0;
}

const char *pgoutput_error_message(int err)
{
	switch (err) {
	case 0: return "success";
	case PGOUTPUT_ERR_TRUNCATED: return "message truncated";
	case PGOUTPUT_ERR_TRAILING: return "trailing bytes after the message";
	case PGOUTPUT_ERR_TYPE: return "unknown message type";
	case PGOUTPUT_ERR_VALUE: return "field out of range";
	case PGOUTPUT_ERR_STATE: return "message out of place in the transaction";
	case PGOUTPUT_ERR_RELATION: return "change to a relation never announced";
	case PGOUTPUT_ERR_TOO_MANY: return "too many relations";
	case PGOUTPUT_ERR_NAME: return "name too long";
	case PGOUTPUT_ERR_NOMEM: return "out of memory";
	case PGOUTPUT_ERR_SPACE: return "output buffer too small";
	default: return "unknown error";
	}
}
