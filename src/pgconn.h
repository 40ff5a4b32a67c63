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
	/* Replication connections: one CopyData message of the stream a
	 * command entered CopyBoth for (pgconn_command); buf is valid until the
	 * callback returns. The callback may call pgconn_drop. */
	void (*on_copy)(struct pgconn *pc, const char *buf, int len, void *ud);
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

/* Makes the connection a replication one (replication=database in the
 * conninfo): commands then go through pgconn_command. Call before
 * pgconn_start. */
void pgconn_set_replication(struct pgconn *pc);

/* The connection keeps state in its server session (LISTEN, SET, a
 * session lock): after connecting and before the setup, check that the
 * session is PostgreSQL's own and not one a pooler shares out (the PID in
 * BackendKeyData against pg_backend_pid()); when it is not, the attempt
 * fails (on_lost, with the backoff) with an error that says so. needs: a
 * static text, what the connection needs a session for ("LISTEN ..."), for
 * that error. Call before pgconn_start. */
void pgconn_require_session(struct pgconn *pc, const char *needs);

/* At most this many CopyData messages are handed to on_copy per loop
 * iteration; the rest wait for the next one (an ev_idle), so a large
 * transaction never holds the loop. */
#define PGCONN_COPY_BUDGET 512

/* Starts the first connection attempt. */
void pgconn_start(struct pgconn *pc);

/* Sends sql when ready and idle, with the extended protocol: one statement
 * only. Returns 0 or a negative pgconn_error. */
int pgconn_query(struct pgconn *pc, const char *sql) __attribute__((warn_unused_result));

/* pgconn_query with text parameters $1..$nparams (values[i] NULL: SQL
 * NULL). */
int pgconn_query_params(struct pgconn *pc, const char *sql, int nparams,
			const char *const *values) __attribute__((warn_unused_result));
/* Sends sql with the simple protocol (what a replication connection
 * accepts: CREATE_REPLICATION_SLOT, START_REPLICATION, or one SQL
 * statement). Results come to on_result; a PGRES_COPY_BOTH result means the
 * connection now streams (pgconn_is_streaming) and on_copy gets the
 * messages. Returns 0 or a negative pgconn_error. */
int pgconn_command(struct pgconn *pc, const char *sql) __attribute__((warn_unused_result));

/* Sends one CopyData message on a streaming connection without blocking
 * (the rest is flushed when the socket is writable). Returns 0, or
 * PGCONN_ERR_SEND after which the connection is lost (on_lost ran). */
int pgconn_put_copy(struct pgconn *pc, const void *buf, size_t len)
	__attribute__((warn_unused_result));

/* Closes the connection as if it had broken (on_lost runs; the reconnect
 * follows the backoff). */
void pgconn_drop(struct pgconn *pc, const char *why);

/* Closes the connection and stops reconnecting until pgconn_start. Safe
 * inside on_lost. */
void pgconn_stop(struct pgconn *pc);

bool pgconn_is_streaming(const struct pgconn *pc);
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
