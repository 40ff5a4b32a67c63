/*
 * pgoutput: decoder of a logical replication stream (sans-I/O).
 *
 * Takes the payloads of the CopyData messages a walsender sends after
 * START_REPLICATION ... LOGICAL with the pgoutput plugin, protocol version
 * 1 ("Streaming Replication Protocol" and "Logical Replication Message
 * Formats" in PostgreSQL's documentation):
 *   'w' XLogData   Int64 start LSN, Int64 end LSN, Int64 send time, then
 *                  one pgoutput message (B C O R Y I U D T M);
 *   'k' keepalive  Int64 end LSN, Int64 send time, Byte1 reply requested.
 * Every message is validated whole (all integers big-endian, every length
 * bounds-checked, nothing after the end); a malformed one is an error and
 * leaves the decoder exactly as it was.
 *
 * What it is for: for each committed transaction, the set of relations it
 * changed, reported at its Commit. The decoder owns a table of the
 * session's relations (id -> schema and name, from the Relation messages;
 * at most max_relations, see pgoutput_decoder_new) and, during a
 * transaction, the set of those it touched. Rows are skipped, never copied:
 * memory does not grow with the size of a transaction.
 *
 * It also encodes the client's standby status update ('r').
 *
 * Nothing here does I/O, logs or calls back; the caller reads the stream
 * (PQgetCopyData) and acts on the events.
 */
#ifndef PGPUSH_PGOUTPUT_H
#define PGPUSH_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Relations a decoder knows at most unless told otherwise: a publication
 * of the watched tables, plus the leaf partitions of partitioned ones. */
#define PGOUTPUT_MAX_RELATIONS 16384
/* Longest schema or relation name accepted, in bytes (PostgreSQL's own
 * limit is NAMEDATALEN - 1 = 63 unless rebuilt). */
#define PGOUTPUT_MAX_NAME 255
/* Size of an encoded standby status update. */
#define PGOUTPUT_STATUS_LEN 34
/* Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC). */
#define PGOUTPUT_EPOCH_OFFSET_US 946684800000000LL

enum pgoutput_error {
	PGOUTPUT_ERR_TRUNCATED = -1,   /* the message ends inside a field */
	PGOUTPUT_ERR_TRAILING = -2,    /* bytes after a complete message */
	PGOUTPUT_ERR_TYPE = -3,        /* unknown CopyData or pgoutput message type */
	PGOUTPUT_ERR_VALUE = -4,       /* a field the protocol constrains is out of range */
	PGOUTPUT_ERR_STATE = -5,       /* Begin inside a transaction; Commit, Origin or a
	                                  change outside one */
	PGOUTPUT_ERR_RELATION = -6,    /* a change names a relation id no Relation announced */
	PGOUTPUT_ERR_TOO_MANY = -7,    /* a new relation beyond max_relations */
	PGOUTPUT_ERR_NAME = -8,        /* a name longer than PGOUTPUT_MAX_NAME */
	PGOUTPUT_ERR_NOMEM = -9,
	PGOUTPUT_ERR_SPACE = -10,      /* the output buffer is too small (encoder) */
};

/* A relation of the session, as its latest Relation message described it.
 * Owned by the decoder; a pointer to it stays valid (and its fields may be
 * replaced by a later Relation message for the same id) until
 * pgoutput_decoder_free. */
struct pgoutput_relation {
	uint32_t id;              /* the relation's OID on the server */
	const char *nspname;      /* schema; "pg_catalog" when sent empty */
	const char *relname;
	const char *name;         /* "nspname.relname", unquoted */
	char replident;           /* relreplident: 'd', 'n', 'f' or 'i' */
	uint16_t ncols;           /* published columns */
	bool touched;             /* changed by the current transaction */
};

enum pgoutput_event_type {
	PGOUTPUT_EV_KEEPALIVE,    /* 'k': answer with a status update when
	                             reply_requested */
	PGOUTPUT_EV_BEGIN,        /* 'B' */
	PGOUTPUT_EV_COMMIT,       /* 'C': tables holds what the transaction changed */
	PGOUTPUT_EV_RELATION,     /* 'R': relation added or replaced */
	PGOUTPUT_EV_CHANGE,       /* 'I', 'U', 'D' (relation set) or 'T' (relation NULL) */
	PGOUTPUT_EV_MESSAGE,      /* 'M': pg_logical_emit_message(), when the
	                             "messages" option is on */
	PGOUTPUT_EV_IGNORED,      /* 'O' Origin, 'Y' Type: validated, nothing to do */
};

/* What one CopyData message said. Pointers are borrowed: those into the
 * input live as long as it, those into the decoder until the next call
 * that feeds it or frees it. Fields not listed for a type are zero. */
struct pgoutput_event {
	enum pgoutput_event_type type;
	char msg;                 /* CopyData type: 'w' or 'k' (0 when the
	                             pgoutput message was fed bare) */
	char kind;                /* pgoutput message type ('B', 'C', ...), 0 for 'k' */
	uint64_t wal_start;       /* 'w' */
	uint64_t wal_end;         /* 'w', 'k' */
	int64_t send_time;        /* 'w', 'k': server clock, us since 2000-01-01 */
	bool reply_requested;     /* KEEPALIVE */
	uint32_t xid;             /* BEGIN */
	uint64_t lsn;             /* BEGIN final LSN, COMMIT commit LSN, MESSAGE and
	                             Origin their LSN */
	uint64_t end_lsn;         /* COMMIT: the transaction's end, what to confirm */
	int64_t commit_time;      /* BEGIN, COMMIT */
	const struct pgoutput_relation *relation; /* RELATION; CHANGE but 'T' */
	/* COMMIT: the relations the transaction changed, in the order of
	 * their first change, each once (the decoder's array). */
	const struct pgoutput_relation *const *tables;
	size_t ntables;
	/* MESSAGE: pointers into the input. */
	bool transactional;
	const char *prefix;
	const uint8_t *content;
	size_t content_len;
};

struct pgoutput_decoder;

/* Creates a decoder for one replication session (relation ids are only
 * meaningful within one: make a new decoder, or reset this one, on every
 * reconnection). max_relations bounds the relation table; 0 means
 * PGOUTPUT_MAX_RELATIONS; more than 2^24 counts as 2^24. Returns 0 and
 * sets *out, or PGOUTPUT_ERR_NOMEM. */
int pgoutput_decoder_new(struct pgoutput_decoder **out, size_t max_relations)
	__attribute__((warn_unused_result));

/* Frees the decoder and its relations. NULL is a no-op. */
void pgoutput_decoder_free(struct pgoutput_decoder *d);

/* Forgets every relation and any transaction in progress, as for a new
 * session. */
void pgoutput_decoder_reset(struct pgoutput_decoder *d);

/* Decodes one CopyData payload (msg[0] is 'w' or 'k'). Returns 0 and fills
 * *ev, or a negative pgoutput_error; on error the decoder is unchanged
 * (the caller should still drop the session: the stream cannot be
 * resynchronised) and *ev is unspecified. */
int pgoutput_feed(struct pgoutput_decoder *d, const uint8_t *msg, size_t len,
		  struct pgoutput_event *ev) __attribute__((warn_unused_result));

/* Decodes one bare pgoutput message (what XLogData carries, or a row of
 * pg_logical_slot_get_binary_changes()). Same contract as pgoutput_feed. */
int pgoutput_feed_logical(struct pgoutput_decoder *d, const uint8_t *msg, size_t len,
			  struct pgoutput_event *ev) __attribute__((warn_unused_result));

/* True between a Begin and its Commit. */
bool pgoutput_decoder_in_transaction(const struct pgoutput_decoder *d);

/* Number of relations known. */
size_t pgoutput_decoder_relations(const struct pgoutput_decoder *d);

/* The relation with this id, or NULL. */
const struct pgoutput_relation *pgoutput_decoder_relation(const struct pgoutput_decoder *d,
							  uint32_t id);

/* The position up to which everything the stream carried was handled, to
 * report as written and flushed in a status update: the end LSN of the
 * last Commit, or the end LSN of a keepalive received outside a
 * transaction when that is further (as pg_recvlogical does). 0 before
 * anything was decoded. */
uint64_t pgoutput_decoder_flush_lsn(const struct pgoutput_decoder *d);

/* Encodes a standby status update ('r': Int64 written, flushed, applied
 * LSN, Int64 client clock in us since 2000-01-01, Byte1 reply requested)
 * into out, PGOUTPUT_STATUS_LEN bytes. Returns 0, or PGOUTPUT_ERR_SPACE
 * when cap is smaller (nothing written). */
int pgoutput_encode_status(uint8_t *out, size_t cap, uint64_t written, uint64_t flushed,
			   uint64_t applied, int64_t now_pg_us, bool reply_requested)
	__attribute__((warn_unused_result));

/* Converts a Unix time in microseconds to PostgreSQL's epoch. */
static inline int64_t pgoutput_pg_time(int64_t unix_us)
{
	return unix_us - PGOUTPUT_EPOCH_OFFSET_US;
}

/* A short English description of a pgoutput_error. */
const char *pgoutput_error_message(int err);

#endif
