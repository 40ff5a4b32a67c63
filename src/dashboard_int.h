/* The dashboard's internal parts: the state that dashboard.c (errors, the
 * publish path, the lifecycle), schedule.c (which feed recomputes when),
 * qconn.c (the query connections and their per-audience transaction),
 * registry.c (pgpush.registry() into the hub's dashboards), listener.c
 * (version draws, registry reads, notifications, the change-source hooks)
 * and health.c (/healthz, /readyz, metrics) share. Not for other modules:
 * dashboard.h is the interface. struct dashboard owns the listener, the
 * query connections and the timers; dashboard_new/dashboard_free in
 * dashboard.c create and free them. */
#ifndef PGPUSH_DASHBOARD_INT_H
#define PGPUSH_DASHBOARD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <ev.h>
#include <libpq-fe.h>

#include "changes.h"
#include "config.h"
#include "hub.h"
#include "list.h"
#include "pgconn.h"

#define ATTACHED_MAX 64         /* attached table names kept for `reason` */
#define NAME_MAX_BYTES 63       /* NAMEDATALEN - 1 */

#define QCONN_MAX 64

/* The steps of one audience's recompute on a query connection. Without a
 * role (no tokens) only STEP_PLAIN: the dashboard's query as it is. With
 * --query-db on a replica, STEP_REPLICA first (replica.c). */
enum step { STEP_IDLE, STEP_PLAIN, STEP_BEGIN, STEP_SETUP, STEP_QUERY, STEP_COMMIT, STEP_ROLLBACK,
	    STEP_REPLICA };

/* The payload of a /readyz probe: "pgpushd,readyz,PID,N". */
#define PROBE_PREFIX "pgpushd,readyz,"

struct qconn {
	struct dashboard *d;
	struct pgconn *pc;
	struct hub_feed *feed;  /* the recompute it runs, or NULL */
	enum step step;
	int err;                /* -1, or ERR_*: the recompute failed */
	bool role_bad;          /* PostgreSQL refused the role */
	char msg[512];
	char name[32];
	/* --query-db (replica.c): the primary's WAL insert position to wait
	 * for ("" until the version draw brings it), the wait's start and
	 * next poll delay (s); on_primary: this session is not in recovery. */
	char lsn[32];
	double wait_start, backoff;
	double waited;          /* s from the recompute's start to the replica caught up */
	ev_timer poll;
	bool on_primary;
};

struct dashboard {
	struct ev_loop *loop;
	const struct config *cfg;
	struct hub *hub;
	struct pgconn *listener;
	/* While a change is being handed to the scheduler: when it was
	 * committed (Unix us), for pgpush_commit_send_delay_seconds; 0 otherwise. */
	int64_t change_us;
	struct changes *changes; /* --change-source logical; NULL for notify */
	struct qconn q[QCONN_MAX];
	size_t nq;
	ev_timer refresh;       /* fallback: recompute what nothing rang for */
	ev_timer sched;         /* the earliest throttled or retried feed */
	ev_timer sweep;         /* hub_sweep: expiry, empty audiences */
	ev_prepare kick;        /* starts pending work once per loop iteration */

	/* The listener runs one statement at a time: registry reads and version
	 * draws wait their turn. */
	bool registry_wanted, registry_wait;
	bool registry_warned;
	struct list_node vqueue;/* feeds waiting for a version draw */
	struct hub_feed *vfeed; /* the feed whose draw runs */

	/* The cluster (cluster.c): leadership, the documents stored or
	 * fetched, the audiences registered. */
	bool leader;            /* holds the advisory lock on the listener */
	bool lock_tried;        /* a lock attempt answered on this connection */
	enum { CLUSTER_IDLE, CLUSTER_LOCK, CLUSTER_STORE, CLUSTER_FETCH, CLUSTER_DEMAND_SET,
	       CLUSTER_DEMAND_READ, CLUSTER_ERROR, CLUSTER_REFUSED } cluster_wait; /* the listener's statement */
	bool lock_wanted, demand_dirty, demand_read_wanted;
	bool refetch;           /* a notification may be for cfeed: fetch it again */
	struct list_node cqueue;/* feeds waiting for a store (leader) or a fetch */
	struct hub_feed *cfeed; /* the feed whose store or fetch runs */
	ev_timer cluster_tick;  /* followers: try the lock; the leader: read demand */
	uint64_t cluster_scope; /* FNV-1a of --channel and --query */
	char cluster_def[20];   /* the default dashboard's name in the tables */
	char lock_sql[96];
	double demand_read_at;  /* monotonic s of the last demand read */
	char *refused;          /* JSON [[dashboard, role, key], ...] the leader refused, to store */
	uint64_t refused_hash;  /* of the last refused set stored */

	char attached[ATTACHED_MAX][NAME_MAX_BYTES + 1];
	size_t n_attached;
	bool listener_was_ready;/* a later LISTEN is a reconnect */

	unsigned long recomputes, notifications, queries, unchanged;

	/* /readyz: a NOTIFY on our own channel, seen coming back on the
	 * listener, proves it alive (dashboard_ready). */
	ev_timer probe;
	bool probe_wait;        /* its query has not answered yet */
	bool probe_due;         /* the timer found the listener busy: next */
	unsigned long probe_seq;
	char probe_payload[64];
	double probe_sent, probe_seen; /* s, CLOCK_MONOTONIC; 0 = never */
	double queue_usage;     /* pg_notification_queue_usage() with the last probe */

	bool replica;           /* --query-db: queries wait for the replica */
	bool primary_logged;    /* said once that --query-db is a primary */

	bool in_error;
	char detail[512];       /* the last error as logged; /healthz (detailed) only */
};

enum { ERR_DB_UNAVAILABLE, ERR_QUERY_FAILED, ERR_BAD_RESULT, ERR_CHANGE_SOURCE_MISMATCH,
       ERR_CHANGE_STREAM, ERR_REPLICA_LAGGING };

static inline double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* dashboard.c: the error state and the publish path. */
void dashboard_set_error_all(struct dashboard *d, int code, const char *detail, int64_t next_ms);
void dashboard_query_failed(struct dashboard *d, struct hub_feed *f, int code, const char *message);
void dashboard_drop_doc(struct hub_feed *f);
bool dashboard_keep_doc(struct dashboard *d, struct qconn *q, const char *json, size_t len);
void dashboard_on_version(struct dashboard *d, struct hub_feed *f, const PGresult *res);
/* Both the query and the version draw answered: publishes, frees the
 * feed for its next recompute. */
void dashboard_feed_done(struct dashboard *d, struct hub_feed *f);

/* schedule.c: requests coalesce until the loop is about to block
 * (schedule_on_kick), then start on idle query connections. */
void schedule_request(struct dashboard *d, struct hub_feed *f, unsigned bits, const char *table);
void schedule_request_dashboard(struct dashboard *d, struct hub_dashboard *db, unsigned bits,
				const char *table);
void schedule_request_all(struct dashboard *d, unsigned bits);
void schedule_on_kick(struct ev_loop *loop, ev_prepare *w, int revents);
void schedule_on_sched(struct ev_loop *loop, ev_timer *w, int revents);
void schedule_on_refresh(struct ev_loop *loop, ev_timer *w, int revents);
void schedule_feed_wake(void *ud, struct hub_feed *f);

/* qconn.c: runs the next statement of q's recompute. */
void qconn_send(struct qconn *q);
extern const struct pgconn_callbacks qconn_callbacks;

/* replica.c: with --query-db, a recompute's query runs once the replica
 * has replayed the WAL insert position drawn with its version. */
extern const char replica_poll_sql[];
void replica_on_draw(struct dashboard *d, struct hub_feed *f, const PGresult *res);
int replica_on_poll(struct qconn *q, const PGresult *res);
void replica_init(struct qconn *q);
bool replica_wait_target(const char *insert_lsn, const char *block_size, const char *segment_size,
			 char *out, size_t outlen);

/* registry.c: the registry's query, and applying its result (NULL: the
 * listener was lost). */
extern const char registry_sql[];
void registry_read(struct dashboard *d, const PGresult *res);

/* listener.c: starts the listener's next statement, if it is idle. */
void listener_next(struct dashboard *d);
void listener_lost(struct dashboard *d, struct pgconn *pc, const char *error, int64_t next_ms);
extern const struct pgconn_callbacks listener_callbacks;
extern const struct changes_callbacks listener_changes_callbacks;

/* cluster.c: leadership on the listener, the documents the leader stores
 * and followers fetch, the audiences every instance registers.
 * cluster_next starts the listener's next cluster statement (the lock
 * first; the rest only when no version draw waits): true when it sent
 * one. cluster_result takes its result (NULL: the listener was lost). */
/* The advisory lock is (CLUSTER_LOCK_CLASS, 32 bits of the scope): a fixed
 * number, and a hash of --channel and --query, so that instances that would compute
 * different default documents (or never hear each other) are not one
 * cluster. The default dashboard's name in pgpush.feed_doc and
 * pgpush.feed_demand is ":" and the scope's 16 hex digits. */
#define CLUSTER_LOCK_CLASS 1885828213
#define CLUSTER_TICK 0.5        /* s between a follower's lock attempts */
#define CLUSTER_DEMAND_EVERY 5.0 /* s between the leader's demand reads */
#define CLUSTER_ERROR_MAX 4096  /* bytes of a stored error state passed on */
void cluster_init(struct dashboard *d);
void cluster_stop(struct dashboard *d);
bool cluster_next(struct dashboard *d, bool draws_waiting);
void cluster_result(struct dashboard *d, const PGresult *res);
void cluster_listener_ready(struct dashboard *d);
void cluster_listener_lost(struct dashboard *d);
/* A notification for the cluster (":doc,...", ":demand"): true when it was one. */
bool cluster_notify(struct dashboard *d, const char *payload);
/* f's error state was set (the leader stores it; its next document
 * clears it). */
void cluster_error(struct dashboard *d, struct hub_feed *f);
/* The leader published f's new document: store it. */
void cluster_published(struct dashboard *d, struct hub_feed *f);
/* The leader recomputed f and found the same document. */
void cluster_unchanged(struct dashboard *d, struct hub_feed *f);
void cluster_feed_new(void *ud, struct hub_feed *f);
void cluster_feed_gone(void *ud, struct hub_feed *f);
/* cluster.c for clusterdoc.c: the dashboard's name in the cluster's
 * tables; sending one of its statements on the listener (state: what
 * cluster_result will get); queueing f for a store or fetch (without
 * starting it). */
const char *cluster_table_name(const struct dashboard *d, const struct hub_dashboard *db);
bool cluster_send(struct dashboard *d, int state, const char *sql, int n, const char *const *v);
void cluster_queue(struct dashboard *d, struct hub_feed *f);

/* clusterdoc.c: the leader's store of f's document (with the patch from
 * the one stored before) and of its error state; a follower's fetch of
 * f's row, and its result. */
bool clusterdoc_store(struct dashboard *d, struct hub_feed *f);
bool clusterdoc_error(struct dashboard *d, struct hub_feed *f);
bool clusterdoc_fetch(struct dashboard *d, struct hub_feed *f);
void clusterdoc_fetched(struct dashboard *d, struct hub_feed *f, const PGresult *res);

/* dashboard.c: a follower publishes a document the leader stored, under
 * its version (never one of its own). */
void dashboard_publish_stored(struct dashboard *d, struct hub_feed *f, const char *json, size_t len,
			      int64_t version, int64_t generated_ms, const char *reason);

/* dashboard.c: a follower takes the error state the leader stored for f
 * (json: the clients' dashboardDataError payload), or leaves it (NULL). */
void dashboard_leader_error(struct dashboard *d, struct hub_feed *f, const char *json);

/* health.c: the /readyz probe's timer. */
void health_on_probe(struct ev_loop *loop, ev_timer *w, int revents);
bool health_probe_send(struct dashboard *d);

#endif
