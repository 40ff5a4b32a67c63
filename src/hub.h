/*
 * hub: pgpushd's Socket.IO application, shaped namespace → dashboard →
 * audience (feed) → members. A namespace "/" serves the default dashboard,
 * "/<name>" the registered dashboard <name>. A feed is one (dashboard,
 * audience) pair: the projection of a verified token (role plus the claims
 * the dashboard declares, claims_project) is its key, so every member of a
 * feed gets the same document: one shared frame per publish. Without
 * tokens (no key, no anon role) there is one feed per dashboard, key "",
 * the daemon's own role: today's behaviour.
 *
 * The hub admits sockets (authorize: the token, the audience limit),
 * answers requestDashboardData from the feed's cache, disconnects members
 * whose token expires (hub_sweep) and drops feeds left without members
 * for the grace period. It computes nothing: the dashboard module walks
 * the feeds, runs their queries and publishes (hub_feed_publish). The hub
 * holds a reference to each feed's snapshot and error frame, and each feed
 * owns the array of its members (a socket's app_group is its feed, its
 * app_data 1 + its index there); it borrows the sockets, which leave
 * (on_leave) before socketio frees them.
 */
#ifndef PGPUSH_HUB_H
#define PGPUSH_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "deadline.h"
#include "jwt.h"
#include "list.h"
#include "snapshot.h"
#include "socketio.h"

/* requestDashboardData per socket: a bucket of HUB_REQUEST_BURST
 * requests, refilled at HUB_REQUEST_RATE a second; beyond it a request is
 * ignored (no answer, no ack), so that one client cannot make the daemon
 * write for it as fast as it can ask. */
#define HUB_REQUEST_RATE 20.0
#define HUB_REQUEST_BURST 100.0

#define HUB_REASON_MAX 272   /* a feed's `reason` text */
#define HUB_TABLES_MAX 256   /* coalesced table names of a pending recompute */
#define HUB_BAD_ROLES 64     /* roles PostgreSQL refused, remembered */

struct hub_feed;

/* One member: 48 bytes in its feed's array, no allocation of its own. */
struct hub_member {
	struct socketio_socket *sock;
	double tokens;            /* requests it may still make now */
	double at;                /* when tokens was counted */
	int64_t expires;          /* Unix s when the token stops verifying; 0: never */
	int64_t last;             /* the version last queued to it (document,
				   * patch, ack, or its `since` on resume); 0: none */
	bool deltas;              /* opted in to dashboardDataPatch (auth.deltas) */
};

/* One dashboard: the default one (name "", the main namespace) or one of
 * the registry. The dashboard module fills sql/tables/claims. */
struct hub_dashboard {
	struct list_node link;    /* in hub.dashboards */
	char *name;               /* "" for the default */
	char *nsp;                /* "/" + name; "/" for the default */
	char *sql;                /* the query: "SELECT <fn_sql>()" or --query */
	char **tables;            /* relnames that ring it; NULL with all_tables */
	size_t ntables;
	bool all_tables;          /* the default dashboard: every attached table */
	char **claims;            /* declared audience claims */
	size_t nclaims;
	bool gone;                /* unregistered: freed once its feeds are */
	bool mark;                /* scratch for registry updates */
	struct list_node feeds;   /* struct hub_feed */
	size_t nfeeds;
	unsigned long recomputes;
};

/* One (dashboard, audience). The scheduling fields belong to the
 * dashboard module; the hub only reads busy (a feed with a query in
 * flight is never freed). */
struct hub_feed {
	struct list_node link;    /* in dashboard->feeds */
	struct hub_dashboard *dash;
	char *key;                /* the projection (claims JSON); "" without tokens */
	char *role;               /* NULL: the daemon's own role */
	struct hub_member *members; /* count of cap; the order changes on leave */
	size_t count, cap;
	bool permanent;           /* the default feed without tokens: never dropped */
	bool remote;              /* the cluster's leader computes it for other
				   * instances' clients: kept without members */
	double empty_since;       /* monotonic s, when count fell to 0 */
	struct snapshot *snap;    /* current, or NULL before the first */
	size_t snap_doc_off;      /* hub_doc_offset(snap), found once */
	struct snapshot *prev;    /* the one before snap, until snap's patch is
				   * computed (lazily: when a member that opted
				   * in needs it, at publish or on a resume) */
	struct buf *error_frame;  /* 42["dashboardDataError",...] while in error */
	char *error_json;         /* its payload, for acks */

	/* dashboard.c's */
	bool busy;                /* a recompute in flight */
	bool query_wait, version_wait, have_version;
	unsigned pending;         /* DASHBOARD_REASON_* bits */
	unsigned running_bits;    /* the running recompute's */
	int64_t pending_change_us; /* Unix us of the earliest change waiting; 0: none */
	int64_t running_change_us; /* the running recompute's; pgpush_commit_send_delay */
	double pending_since;     /* monotonic s when its work was first seen waiting; 0: none */
	char pending_tables[HUB_TABLES_MAX];
	char running_reason[HUB_REASON_MAX];
	double last_start;        /* monotonic s */
	double not_before;        /* monotonic s: throttle or retry */
	bool started_once;
	unsigned retry_failures;
	int64_t version;          /* last published */
	int64_t drawn_version;
	char *doc;
	size_t doc_len;
	bool in_error;
	int64_t error_since;
	double started;
	struct list_node vlink;   /* waiting for a version draw */
	bool in_vqueue;
	/* cluster.c's */
	struct list_node clink;   /* waiting for a store or a fetch */
	bool in_cqueue;
	bool cluster_mark;        /* scratch for a demand read */
	bool cluster_announce;    /* store again after the next recompute, even unchanged */
	int64_t cluster_id;       /* its row in pgpush.feed_doc; 0: not known */
	char stored_reason[HUB_REASON_MAX]; /* the reason of the document to store */
	bool cluster_doc;         /* leader: the document is to be stored */
	bool cluster_err;         /* leader: the error state is to be stored */
	bool leader_error;        /* follower: in_error is the leader's, fetched */
	bool cluster_no_patch;    /* follower: a patch did not apply: fetch the document */
	struct snapshot *cluster_stored; /* leader: the last document stored, the next patch's base */
};

/* What the hub asks of the dashboard module. */
struct hub_hooks {
	/* A new feed: compute it. */
	void (*feed_new)(void *ud, struct hub_feed *f);
	/* f is about to be freed. */
	void (*feed_gone)(void *ud, struct hub_feed *f);
};

struct hub {
	struct list_node dashboards; /* struct hub_dashboard; the default first */
	struct hub_dashboard *def;   /* the default dashboard */
	struct hub_feed *main_feed;  /* without tokens: the default's one feed */
	deadline_clock_fn *now;   /* for the request rate; monotonic by default */
	void *now_ud;
	size_t count;             /* members, all feeds */
	size_t nfeeds;            /* live audiences */
	size_t ndashboards;       /* registered (not counting the default) */
	unsigned long limited;    /* requests ignored over the rate */
	unsigned long refused;    /* namespace CONNECTs refused */
	unsigned long patches;    /* patch frames queued to members */
	unsigned long fulls;      /* full documents queued by publish */
	unsigned long resumed;    /* CONNECTs with since = the current version */
	unsigned long diffs;      /* patches computed */
	double diff_us;           /* their CPU time, summed */

	/* Authentication: off when key and anon_role are both NULL. */
	const struct jwt_key *key;
	struct jwt_policy policy;
	const char *anon_role;
	size_t max_audiences;
	/* Feeds the cluster's leader keeps only for other instances, as of
	 * its last demand read: not counted against max_audiences for our own
	 * clients (they have a bound of their own, cluster.c). */
	size_t remote_only;
	double grace;             /* s an empty feed is kept */
	int64_t (*unix_now)(void);/* seconds; time(NULL) by default */

	struct hub_hooks hooks;
	void *hooks_ud;

	char bad_roles[HUB_BAD_ROLES][JWT_MAX_ROLE + 1];
	unsigned n_bad_roles;
};

/* The callbacks for server_options.app, with the hub as ud. */
extern const struct socketio_app hub_app;

/* Without tokens, with the default dashboard (sql NULL until set) and its
 * one permanent feed. Returns 0, or -1 when out of memory. */
int hub_init(struct hub *h) __attribute__((warn_unused_result));
void hub_free(struct hub *h);

/* Turns authentication on (key or anon_role not NULL; both borrowed): the
 * permanent feed goes, members join the feed of their audience. */
void hub_set_auth(struct hub *h, const struct jwt_key *key, const struct jwt_policy *policy,
		  const char *anon_role, size_t max_audiences, double grace);

/* Whether tokens decide audiences. */
static inline bool hub_auth_on(const struct hub *h)
{
	return h->key || h->anon_role;
}

/* The registered dashboard of that name (not gone), or NULL. */
struct hub_dashboard *hub_find_dashboard(struct hub *h, const char *name, size_t len);

/* Adds a registered dashboard (name copied; the caller fills the rest).
 * NULL when out of memory. */
struct hub_dashboard *hub_add_dashboard(struct hub *h, const char *name);

/* Unregisters: every member of its feeds gets dashboardDataError
 * (dashboard_unregistered) and is disconnected from the namespace; the
 * feeds go at the next sweep. */
void hub_remove_dashboard(struct hub *h, struct hub_dashboard *d);

/* Sets d's declared claims / tables (copies). Returns 0 or -1. */
int hub_dashboard_set(struct hub_dashboard *d, const char *sql, char **tables, size_t ntables,
		      char **claims, size_t nclaims);

/* Makes s f's current (taking a new reference) and sends it to f's
 * members: when f had a document and a member opted in to deltas, the
 * patch from it is computed once (snapshot_attach_patch); a member that
 * opted in and whose last version is the previous one gets the patch,
 * every other one the full document. */
void hub_feed_publish(struct hub *h, struct hub_feed *f, struct snapshot *s);

/* The feed of (d, key), created when missing and create is true (role
 * copied; NULL: the daemon's own), marked remote: the cluster's leader
 * computes it for the clients of other instances. NULL when missing and
 * not created, or out of memory. hooks.feed_new runs for a new one. */
struct hub_feed *hub_feed_remote(struct hub *h, struct hub_dashboard *d, const char *key,
				 const char *role, bool create);

/* Sets (json != NULL) or clears the error state of f; a new error is sent
 * to its members. Returns 0 or -1 when out of memory. */
int hub_feed_set_error(struct hub *h, struct hub_feed *f, const char *json);

/* Sends dashboardDataError json to every member of f and disconnects them
 * from the namespace (a role PostgreSQL refused). */
void hub_feed_evict(struct hub *h, struct hub_feed *f, const char *json);

/* Remembers that role cannot be SET: later CONNECTs with it are refused
 * with role_invalid. */
void hub_role_bad(struct hub *h, const char *role);

/* Forgets the roles hub_role_bad named (a GRANT may have come since):
 * at every registry read. */
void hub_roles_forget(struct hub *h);

/* Once a second or so: disconnects members whose token expired
 * (dashboardDataError token_expired), drops feeds empty for the grace
 * period (and not busy), frees dashboards gone without feeds. */
void hub_sweep(struct hub *h);

/* The main feed's publish and error (without tokens): what the single
 * dashboard of earlier versions did. */
void hub_publish(struct hub *h, struct snapshot *s);
int hub_set_error(struct hub *h, const char *json);

/* Where s's document lies inside its plain frame (acks reference it), or
 * 0 when it is not there byte for byte. */
size_t hub_doc_offset(const struct snapshot *s);

#define HUB_FOR_EACH_DASHBOARD(h, d) \
	for (struct list_node *d##_n = (h)->dashboards.next; \
	     d##_n != &(h)->dashboards && ((d) = LIST_ENTRY(d##_n, struct hub_dashboard, link)); \
	     d##_n = d##_n->next)
#define HUB_FOR_EACH_FEED(dash, f) \
	for (struct list_node *f##_n = (dash)->feeds.next; \
	     f##_n != &(dash)->feeds && ((f) = LIST_ENTRY(f##_n, struct hub_feed, link)); \
	     f##_n = f##_n->next)

#endif
