/*
 * changes: the logical change source (--change-source logical). A
 * replication connection (replication=database) on the loop streams from
 * a TEMPORARY logical slot with the pgoutput plugin over the publication
 * "pgpush" (kept in step with pgpush.attach() by sql/install.sql), decodes
 * it with src/pgoutput and reports, at each Commit that touched a watched
 * table, the set of tables: exactly what a notification reports in notify
 * mode. Standby status updates confirm what was read on every keepalive
 * that asks and every second, so the slot never holds WAL for long; the
 * slot dies with the connection, so a stopped daemon holds none.
 *
 * Before streaming it checks, and reports with a code: wal_level is
 * logical, the role has REPLICATION (the walsender refuses the
 * connection), the publication exists, and pgpush.change_source() is
 * 'logical'. With --change-source-fallback notify, the first three make
 * it give up and leave the doorbell (LISTEN) to do the work.
 *
 * In notify mode there is no stream: changes_listener_setup gives the SQL
 * the listener runs after connecting, which refuses a database whose
 * pgpush.change_source() says 'logical'.
 */
#ifndef PGPUSH_CHANGES_H
#define PGPUSH_CHANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "config.h"

/* The text every change-source mismatch error contains. */
#define CHANGES_MISMATCH_TEXT "pgpush: change source mismatch"

struct changes;

struct changes_callbacks {
	/* Committed transactions changed these tables (bare names); the
	 * earliest of them committed at commit_unix_us (0: unknown). */
	void (*on_tables)(void *ud, const char *const *names, size_t n, int64_t commit_unix_us);
	/* The stream (re)started (first: the first time): what changed while
	 * it was down is unknown, so recompute. Also after a fallback. */
	void (*on_started)(void *ud, bool first);
	/* The stream is down or cannot start. code: short, for clients
	 * ("change_source_mismatch", "change_stream_unavailable"); detail: the
	 * log line. next_ms: the next attempt (Unix ms). */
	void (*on_error)(void *ud, const char *code, const char *detail, int64_t next_ms);
};

/* The SQL the listener runs after connecting: in notify mode, a check that
 * the database rings the doorbell; NULL in logical mode. */
const char *changes_listener_setup(const struct config *cfg);

/* Starts the logical source; NULL in notify mode or when out of memory
 * (cfg->logical tells them apart). */
struct changes *changes_new(struct ev_loop *loop, const struct config *cfg,
			    const struct changes_callbacks *cb, void *ud);
void changes_free(struct changes *c);

/* True while streaming, or after falling back to notify. */
bool changes_ok(const struct changes *c);
/* True after falling back to notify. */
bool changes_fell_back(const struct changes *c);
/* Committed transactions decoded, and of those that touched a table. */
uint64_t changes_commits(const struct changes *c);
/* The last position confirmed to the server. */
uint64_t changes_confirmed_lsn(const struct changes *c);

#endif
