/*
 * pgconn: one libpq connection driven by the event loop. Connects without
 * blocking (PQconnectStartParams/PQconnectPoll), runs a setup command once
 * connected (LISTEN, SET ...), runs one query at a time asynchronously,
 * delivers notifications, and on any failure reconnects after an
 * exponential backoff with jitter. It never calls a blocking libpq function
 * (note: a host name in the conninfo is resolved by libpq itself; use an
 * address or a socket directory to keep that off the loop).
 */
#ifndef PGPUSH_PGCONN_H
#define PGPUSH_PGCONN_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>
#include <libpq-fe.h>

struct pgconn;

struct pgconn_callbacks {
	/* Connected and the setup command succeeded. */
	void (*on_ready)(struct pgconn *pc, void *ud);
	/* Connecting failed or the connection broke; a new attempt is due at
	 * next_attempt_ms (Unix ms). error is libpq's message, one line. */
	void (*on_lost)(struct pgconn *pc, const char *error, int64_t next_attempt_ms, void *ud);
	/* A notification; strings valid until the callback returns. */
	void (*on_notify)(struct pgconn *pc, const char *channel, const char *payload, void *ud);
	/* The query finished. res is the last result (an error result, or the
	 * last tuples result), valid until the callback returns; NULL when the
	 * connection broke while the query ran (on_lost follows). */
	void (*on_result)(struct pgconn *pc, const PGresult *res, void *ud);
};

enum pgconn_error {
	PGCONN_ERR_NOT_READY = -1,
	PGCONN_ERR_SEND = -2,
};

/* Creates a connection (not started). conninfo: libpq conninfo or URI, or
 * NULL for the PG* environment. name: application_name and log label.
 * listen_channel: LISTEN on it after connecting (NULL: none). setup_sql:
 * run after connecting (NULL: none). Returns NULL when out of memory. */
struct pgconn *pgconn_new(struct ev_loop *loop, const char *conninfo, const char *name,
			  const char *listen_channel, const char *setup_sql,
			  const struct pgconn_callbacks *cb, void *ud);

/* Starts the first connection attempt. */
void pgconn_start(struct pgconn *pc);

/* Sends sql when ready and idle, with the extended protocol: one statement
 * only. Returns 0 or a negative pgconn_error. */
int pgconn_query(struct pgconn *pc, const char *sql) __attribute__((warn_unused_result));

/* pgconn_query with text parameters $1..$nparams (values[i] NULL: SQL
 * NULL). */
int pgconn_query_params(struct pgconn *pc, const char *sql, int nparams,
			const char *const *values) __attribute__((warn_unused_result));

bool pgconn_is_ready(const struct pgconn *pc); /* connected and set up */
bool pgconn_is_busy(const struct pgconn *pc);  /* a query is running */
const char *pgconn_name(const struct pgconn *pc);
const char *pgconn_last_error(const struct pgconn *pc);
/* A server parameter (server_encoding, ...) of the live connection, or "". */
const char *pgconn_parameter(const struct pgconn *pc, const char *name);
int64_t pgconn_next_attempt_ms(const struct pgconn *pc);

/* Closes and frees; pgconn_free(NULL) is a no-op. */
void pgconn_free(struct pgconn *pc);

#endif
