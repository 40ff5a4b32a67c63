/* The cluster: every pgpushd on one database with the same --channel and
 * --query is an instance of it, and the one holding the advisory lock
 * (CLUSTER_LOCK_CLASS, scope) on its listener is the leader (a lone instance leads a cluster of one). Only the leader runs
 * dashboard queries; it stores each new document in pgpush.feed_doc, which
 * notifies ":doc,<id>,<version>"; followers fetch that row and publish it
 * under the leader's version. Every instance registers the audiences it has
 * clients for in pgpush.feed_demand; the leader computes those too. All of
 * it runs on the listener, one statement at a time, after the registry and
 * the lock, the stores and fetches after the version draws (a draw holds a
 * recompute back). The stores and fetches themselves (patches, error
 * states) are clusterdoc.c's. docs/design.md, "Cluster". */
#include "autoconfig.h"

#include "dashboard.h"
#include "dashboard_int.h"
#include "log.h"
#include "metrics.h"
#include "pgconn.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

static const char demand_set_sql[] = "SELECT pgpush.feed_demand_set($1::json, $2)";
static const char demand_read_sql[] = "SELECT dashboard, role, key FROM pgpush.feed_demand_read()";
/* The audiences of other instances the leader does not compute: their
 * instances' clients get this error (pgpush.feed_error) rather than
 * silence; a later store clears it. */
static const char refused_sql[] =
	"SELECT pgpush.feed_error(e->>0, e->>1, e->>2, $2, $3)"
	" FROM pg_catalog.json_array_elements($1::json) e";
static const char refused_json[] =
	"{\"message\":\"too many audiences\",\"code\":\"audience_limit\"}";

/* The dashboard's name in the cluster's tables. */
const char *cluster_table_name(const struct dashboard *d, const struct hub_dashboard *db)
{
	return db == d->hub->def ? d->cluster_def : db->name;
}

static void cqueue_clear(struct dashboard *d)
{
	d->refetch = false;
	for (struct list_node *n; (n = list_pop_front(&d->cqueue));)
		LIST_ENTRY(n, struct hub_feed, clink)->in_cqueue = false;
	d->cfeed = NULL;
}

void cluster_queue(struct dashboard *d, struct hub_feed *f)
{
	if (!f->in_cqueue) {
		list_push_back(&d->cqueue, &f->clink);
		f->in_cqueue = true;
	}
}

static void cqueue_add(struct dashboard *d, struct hub_feed *f)
{
	cluster_queue(d, f);
	listener_next(d);
}

static void set_leader(struct dashboard *d, bool leader)
{
	if (d->leader == leader)
		return;
	d->leader = leader;
	metrics_set(&pgpush_metrics, METRIC_CLUSTER_LEADER, 0, leader ? 1 : 0);
	metrics_inc(&pgpush_metrics, METRIC_CLUSTER_LEADER_CHANGES, 0);
	log_info("cluster role=%s scope=%s", leader ? "leader" : "follower", d->cluster_def + 1);
}

/* Stepping down (the listener is lost): the audiences computed for other
 * instances go after the grace period, unless the next leader is us. */
static void step_down(struct dashboard *d)
{
	struct hub_dashboard *db;
	struct hub_feed *f;

	if (!d->leader)
		return;
	set_leader(d, false);
	d->hub->remote_only = 0;
	d->refused_hash = 0;
	free(d->refused);
	d->refused = NULL;
	changes_free(d->changes);
	d->changes = NULL;
	HUB_FOR_EACH_DASHBOARD(d->hub, db) {
		HUB_FOR_EACH_FEED(db, f) {
			if (f->remote) {
				f->remote = false;
				f->empty_since = d->hub->now(d->hub->now_ud);
			}
		}
	}
}

/* first: the lock was free at the first attempt after connecting, so the
 * recompute that connecting asked for (startup, reconnect) stands: a lone
 * instance behaves as it always did. Otherwise nobody led for a while, or
 * someone else did: whatever was pending here is dropped and everything is
 * computed afresh, as "leader". */
static void become_leader(struct dashboard *d, bool first)
{
	set_leader(d, true);
	cqueue_clear(d);
	d->demand_read_wanted = true;
	if (d->cfg->logical && !d->changes &&
	    !(d->changes = changes_new(d->loop, d->cfg, &listener_changes_callbacks, d)))
		log_error("out of memory starting the change stream");
	if (!first) {
		struct hub_dashboard *db;
		struct hub_feed *f;

		HUB_FOR_EACH_DASHBOARD(d->hub, db) {
			HUB_FOR_EACH_FEED(db, f) {
				f->pending = 0;
				f->pending_tables[0] = '\0';
				f->pending_change_us = 0;
			}
		}
		schedule_request_all(d, DASHBOARD_REASON_LEADER);
	}
	ev_prepare_start(d->loop, &d->kick);
}

/* A follower on this connection: fetch every audience's current document
 * (what changed while the listener was away is unknown). */
static void become_follower(struct dashboard *d)
{
	struct hub_dashboard *db;
	struct hub_feed *f;

	log_info("cluster role=follower scope=%s", d->cluster_def + 1);
	HUB_FOR_EACH_DASHBOARD(d->hub, db) {
		HUB_FOR_EACH_FEED(db, f) {
			/* By key: the row may be gone and made again. */
			f->cluster_id = 0;
			cqueue_add(d, f);
		}
	}
}

bool cluster_send(struct dashboard *d, int state, const char *sql, int n, const char *const *v)
{
	if ((v ? pgconn_query_params(d->listener, sql, n, v) : pgconn_query(d->listener, sql)) == 0)
		d->cluster_wait = state;
	else
		d->cfeed = NULL;
	return true;
}

/* Our audiences: those with clients here, or kept for the grace period;
 * not those the leader keeps only for others. */
static bool send_demand(struct dashboard *d)
{
	json_object *arr = json_object_new_array();
	struct hub_dashboard *db;
	struct hub_feed *f;
	const char *v[2];
	bool sent;

	if (!arr)
		return false;
	HUB_FOR_EACH_DASHBOARD(d->hub, db) {
		if (db->gone)
			continue;
		HUB_FOR_EACH_FEED(db, f) {
			json_object *e;

			if (f->remote && !f->count)
				continue;
			if (!(e = json_object_new_array()))
				continue;
			json_object_array_add(e, json_object_new_string(cluster_table_name(d, db)));
			json_object_array_add(e, json_object_new_string(f->role ? f->role : ""));
			json_object_array_add(e, json_object_new_string(f->key));
			json_object_array_add(arr, e);
		}
	}
	v[0] = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN);
	v[1] = d->cfg->channel;
	sent = v[0] && cluster_send(d, CLUSTER_DEMAND_SET, demand_set_sql, 2, v);
	json_object_put(arr);
	return sent;
}

bool cluster_next(struct dashboard *d, bool draws_waiting)
{
	struct list_node *n;

	if (d->cluster_wait != CLUSTER_IDLE)
		return true;
	if (d->lock_wanted) {
		d->lock_wanted = false;
		if (!d->leader)
			return cluster_send(d, CLUSTER_LOCK, d->lock_sql, 0, NULL);
	}
	if (draws_waiting)
		return false;
	while ((n = list_pop_front(&d->cqueue))) {
		struct hub_feed *f = LIST_ENTRY(n, struct hub_feed, clink);

		f->in_cqueue = false;
		d->cfeed = f;
		if (d->leader) {
			/* The document first: its store clears the error. */
			if (f->cluster_doc && f->snap) {
				f->cluster_doc = false;
				if (f->cluster_err)
					cluster_queue(d, f);
				return clusterdoc_store(d, f);
			}
			if (f->cluster_err) {
				f->cluster_err = false;
				if (f->in_error && f->error_json)
					return clusterdoc_error(d, f);
			}
			d->cfeed = NULL;
			continue;
		}
		if (!d->leader && d->lock_tried)
			return clusterdoc_fetch(d, f);
		d->cfeed = NULL;
	}
	if (d->demand_dirty) {
		d->demand_dirty = false;
		if (send_demand(d))
			return true;
	}
	if (d->refused && d->leader) {
		const char *v[3] = { d->refused, refused_json, d->cfg->channel };
		bool sent = cluster_send(d, CLUSTER_REFUSED, refused_sql, 3, v);

		free(d->refused);
		d->refused = NULL;
		return sent;
	}
	if (d->demand_read_wanted && d->leader) {
		d->demand_read_wanted = false;
		d->demand_read_at = mono_now();
		return cluster_send(d, CLUSTER_DEMAND_READ, demand_read_sql, 0, NULL);
	}
	return false;
}

static bool failed(const PGresult *res, const char *what, bool *warned)
{
	const char *primary;

	if (!res || PQresultStatus(res) == PGRES_TUPLES_OK)
		return !res;
	primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (!*warned)
		log_error("cluster: %s failed: %s (rerun sql/install.sql and sql/grant.sql: pgpushd's "
			  "role needs the cluster's grants, see sql/README.md)", what,
			  primary ? primary : "unexpected result");
	*warned = true;
	return true;
}

static void announce(struct dashboard *d, struct hub_feed *f)
{
	f->cluster_announce = false;
	if (!f->stored_reason[0])
		snprintf(f->stored_reason, sizeof(f->stored_reason), "%s", f->running_reason);
	f->cluster_doc = true;
	f->cluster_err = f->in_error;
	cqueue_add(d, f);
}

void cluster_error(struct dashboard *d, struct hub_feed *f)
{
	if (!d->leader || !d->lock_tried)
		return;
	f->cluster_err = true;
	cqueue_add(d, f);
}

void cluster_unchanged(struct dashboard *d, struct hub_feed *f)
{
	if (d->leader && f->cluster_announce)
		announce(d, f);
}

/* Audiences of other instances not computed here: said once per demand
 * read, and stored as their error (refused_sql) when the set changed, so
 * that their instances' clients are told rather than left waiting. */
static void refuse(struct dashboard *d, json_object *refused, size_t n)
{
	const char *t;
	uint64_t hash = 14695981039346656037ull;

	if (!n) {
		d->refused_hash = 0;
		json_object_put(refused);
		return;
	}
	metrics_add(&pgpush_metrics, METRIC_CLUSTER_DEMAND_REFUSED, 0, (double)n);
	log_warn("cluster: %zu audiences of other instances not computed: --max-audiences %zu "
		 "audiences kept for other instances reached; their clients get audience_limit", n,
		 d->hub->max_audiences);
	t = refused ? json_object_to_json_string_ext(refused, JSON_C_TO_STRING_PLAIN) : NULL;
	if (t) {
		for (const unsigned char *p = (const unsigned char *)t; *p; p++)
			hash = (hash ^ *p) * 1099511628211ull;
		if (hash != d->refused_hash) {
			d->refused_hash = hash;
			free(d->refused);
			d->refused = strdup(t);
			listener_next(d);
		}
	}
	json_object_put(refused);
}

/* The leader: the audiences of other instances become remote feeds here;
 * the remote feeds nobody names any more wait out the grace period. */
static void apply_demand(struct dashboard *d, const PGresult *res)
{
	struct hub *h = d->hub;
	struct hub_dashboard *db;
	struct hub_feed *f;
	json_object *refused = NULL;
	size_t remote_only = 0, nrefused = 0;

	HUB_FOR_EACH_DASHBOARD(h, db) {
		HUB_FOR_EACH_FEED(db, f) {
			f->cluster_mark = f->remote;
			f->remote = false;
		}
	}
	/* Twice: the feeds we have first, then new ones while fewer than
	 * --max-audiences are kept only for others (our own clients' cap
	 * does not count them, hub.c). */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < PQntuples(res) && PQnfields(res) == 3; i++) {
			const char *name = PQgetvalue(res, i, 0), *role = PQgetvalue(res, i, 1);
			const char *key = PQgetvalue(res, i, 2);
			bool had;

			/* Another scope's default dashboard is not ours to compute. */
			if (*name == ':')
				db = strcmp(name, d->cluster_def) == 0 ? h->def : NULL;
			else
				db = hub_find_dashboard(h, name, strlen(name));
			if (!db || !db->sql)
				continue;
			f = hub_feed_remote(h, db, key, *role ? role : NULL, false);
			had = f && f->remote;
			if (pass == 0 && !f)
				continue;
			if (pass == 1 && had)
				continue;
			if (!f && remote_only < h->max_audiences)
				f = hub_feed_remote(h, db, key, *role ? role : NULL, true);
			if (!f) {
				json_object *e = json_object_new_array();

				nrefused++;
				if (!refused)
					refused = json_object_new_array();
				if (refused && e) {
					json_object_array_add(e, json_object_new_string(name));
					json_object_array_add(e, json_object_new_string(role));
					json_object_array_add(e, json_object_new_string(key));
					json_object_array_add(refused, e);
				} else {
					json_object_put(e);
				}
				continue;
			}
			f->remote = true;
			if (!f->count)
				remote_only++;
			if (!f->cluster_mark && !f->count)
				log_info("cluster: computing an audience for other instances dashboard=%s role=%s",
					 name, *role ? role : "(own)");
			/* Newly asked for: the asker may have found the stored document
			 * not current (pgpush.feed_fetch). Announce it again once it is:
			 * now, or after the recompute that is due. */
			if (!f->cluster_mark && f->snap) {
				if (f->pending || f->busy)
					f->cluster_announce = true;
				else
					announce(d, f);
			}
		}
	}
	h->remote_only = remote_only;
	HUB_FOR_EACH_DASHBOARD(h, db) {
		HUB_FOR_EACH_FEED(db, f) {
			if (f->cluster_mark && !f->remote)
				f->empty_since = h->now(h->now_ud);
		}
	}
	refuse(d, refused, nrefused);
	ev_prepare_start(d->loop, &d->kick);
}

void cluster_result(struct dashboard *d, const PGresult *res)
{
	int state = d->cluster_wait;
	struct hub_feed *f = d->cfeed;
	static bool warned[8];

	d->cluster_wait = CLUSTER_IDLE;
	d->cfeed = NULL;
	switch (state) {
	case CLUSTER_LOCK:
		if (failed(res, "taking the leader's lock", &warned[state]))
			break;
	{
		bool first = !d->lock_tried;

		d->lock_tried = true;
		if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
			become_leader(d, first);
		else if (first)
			become_follower(d);
		break;
	}
	case CLUSTER_STORE:
		(void)failed(res, "storing a document", &warned[state]);
		break;
	case CLUSTER_ERROR:
		(void)failed(res, "storing an error state", &warned[state]);
		break;
	case CLUSTER_REFUSED:
		(void)failed(res, "storing the refused audiences' error", &warned[state]);
		break;
	case CLUSTER_FETCH:
		if (!failed(res, "fetching a document", &warned[state]))
			clusterdoc_fetched(d, f, res);
		if (d->refetch && f) {
			d->refetch = false;
			cqueue_add(d, f);
		}
		break;
	case CLUSTER_DEMAND_SET:
		(void)failed(res, "registering the audiences", &warned[state]);
		break;
	case CLUSTER_DEMAND_READ:
		if (!failed(res, "reading the audiences of other instances", &warned[state]) && d->leader)
			apply_demand(d, res);
		break;
	}
}

void cluster_listener_ready(struct dashboard *d)
{
	d->lock_wanted = true;
	d->lock_tried = false;
	d->demand_dirty = true;
}

void cluster_listener_lost(struct dashboard *d)
{
	d->cluster_wait = CLUSTER_IDLE;
	d->lock_wanted = false;
	d->lock_tried = false;
	cqueue_clear(d);
	step_down(d);
}

bool cluster_notify(struct dashboard *d, const char *payload)
{
	long long id, version;
	struct hub_dashboard *db;
	struct hub_feed *f;

	if (strcmp(payload, ":demand") == 0) {
		if (d->leader) {
			d->demand_read_wanted = true;
			listener_next(d);
		}
		return true;
	}
	/* ":err,<id>": the error state changed; fetched whatever the version. */
	if (strncmp(payload, ":err,", 5) == 0) {
		if (!d->leader && d->lock_tried && sscanf(payload + 5, "%lld", &id) == 1)
			version = INT64_MAX;
		else
			return true;
	} else if (strncmp(payload, ":doc,", 5) != 0) {
		return false;
	} else if (d->leader || !d->lock_tried || sscanf(payload + 5, "%lld,%lld", &id, &version) != 2) {
		/* Anyone may NOTIFY: a forged one costs one fetch that finds
		 * nothing newer. */
		return true;
	}
	HUB_FOR_EACH_DASHBOARD(d->hub, db) {
		HUB_FOR_EACH_FEED(db, f) {
			if (f->cluster_id != id)
				continue;
			if (version > f->version)
				cqueue_add(d, f);
			return true;
		}
	}
	/* Perhaps the id of the feed whose first fetch runs: its answer (the
	 * placeholder, without the document) may come after this. */
	if (d->cluster_wait == CLUSTER_FETCH && d->cfeed && !d->cfeed->cluster_id)
		d->refetch = true;
	return true;
}

void cluster_published(struct dashboard *d, struct hub_feed *f)
{
	if (!d->leader)
		return;
	f->cluster_announce = false;
	snprintf(f->stored_reason, sizeof(f->stored_reason), "%s", f->running_reason);
	f->cluster_doc = true;
	cqueue_add(d, f);
}

void cluster_feed_new(void *ud, struct hub_feed *f)
{
	struct dashboard *d = ud;

	schedule_feed_wake(d, f);
	d->demand_dirty = true;
	if (!d->leader && d->lock_tried && (!f->cluster_id || !f->snap))
		cqueue_add(d, f);
	else
		listener_next(d);
}

void cluster_feed_gone(void *ud, struct hub_feed *f)
{
	struct dashboard *d = ud;

	if (f->in_cqueue) {
		list_unlink(&f->clink);
		f->in_cqueue = false;
	}
	if (d->cfeed == f)
		d->cfeed = NULL;
	snapshot_unref(f->cluster_stored);
	f->cluster_stored = NULL;
	/* Sent at once, but not from here: f is still in its dashboard's
	 * list. Soon, since a follower's first fetch trusts a document only
	 * while some instance has its audience. */
	d->demand_dirty = true;
	ev_timer_stop(d->loop, &d->cluster_tick);
	ev_timer_set(&d->cluster_tick, 0, CLUSTER_TICK);
	ev_timer_start(d->loop, &d->cluster_tick);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dashboard *d = w->data;

	if (!pgconn_is_ready(d->listener))
		return;
	if (!d->leader && d->lock_tried)
		d->lock_wanted = true;
	else if (d->leader && mono_now() - d->demand_read_at >= CLUSTER_DEMAND_EVERY)
		d->demand_read_wanted = true;
	listener_next(d);
}

void cluster_init(struct dashboard *d)
{
	const char *parts[2] = { d->cfg->channel ? d->cfg->channel : "", d->cfg->query ? d->cfg->query : "" };
	uint64_t h = 14695981039346656037ull;

	/* FNV-1a over --channel, a NUL, --query. */
	for (int i = 0; i < 2; i++) {
		for (const unsigned char *p = (const unsigned char *)parts[i]; ; p++) {
			h = (h ^ *p) * 1099511628211ull;
			if (!*p)
				break;
		}
	}
	d->cluster_scope = h;
	snprintf(d->cluster_def, sizeof(d->cluster_def), ":%016llx", (unsigned long long)h);
	/* Held until the session ends: a leader that dies or loses its
	 * connection frees it with its backend. */
	snprintf(d->lock_sql, sizeof(d->lock_sql), "SELECT pg_catalog.pg_try_advisory_lock(%d, %d)",
		 CLUSTER_LOCK_CLASS, (int32_t)(uint32_t)(h ^ (h >> 32)));
	list_init(&d->cqueue);
	metrics_set(&pgpush_metrics, METRIC_CLUSTER_LEADER, 0, 0);
	ev_timer_init(&d->cluster_tick, on_tick, CLUSTER_TICK, CLUSTER_TICK);
	d->cluster_tick.data = d;
	ev_timer_start(d->loop, &d->cluster_tick);
}

void cluster_stop(struct dashboard *d)
{
	ev_timer_stop(d->loop, &d->cluster_tick);
	free(d->refused);
	d->refused = NULL;
	cqueue_clear(d);
}
