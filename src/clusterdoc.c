/* The cluster's documents (cluster.c has leadership, the queue, the
 * demand): the leader stores each new document with the patch from the one
 * it stored before and its error state; a follower fetches the patch when
 * it holds its base, the document otherwise, and the error state.
 * docs/design.md, "Cluster". */
#include "autoconfig.h"

#include "dashboard.h"
#include "dashboard_int.h"
#include "jsonpatch.h"
#include "log.h"
#include "metrics.h"
#include "pgconn.h"
#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/* $7 is the document as the snapshot holds it after our own keys: its
 * opening brace is put back here rather than copied in C. */
static const char store_sql[] =
	"SELECT pgpush.feed_store($1, $2, $3, $4::bigint, $5::bigint, $6, '{' || $7, $8, $9::bigint, $10)";
/* The leader's error state with the document: only when that is current
 * (returned), or the one we hold. */
static const char fetch_key_sql[] =
	"SELECT f.id, f.version, f.generated_ms, f.reason, f.doc,"
	" CASE WHEN f.doc IS NOT NULL OR f.version <= $4::bigint THEN"
	" (SELECT error FROM pgpush.feed_doc e WHERE e.id = f.id) END"
	", NULL::text FROM pgpush.feed_fetch($1, $2, $3, $4::bigint) f";
static const char error_sql[] = "SELECT pgpush.feed_error($1, $2, $3, $4, $5)";
/* The row even when not newer (then without its document): no row means
 * it is gone (PostgreSQL restarted, UNLOGGED tables come back empty), and
 * the feed is fetched again by its key. When newer: the patch alone when
 * it is from $3, the version whose document we hold (0: none); else the
 * document. */
static const char fetch_id_sql[] =
	"SELECT id, version, generated_ms, reason,"
	" CASE WHEN version > $2::bigint AND NOT coalesce(patch_from = $3::bigint AND patch IS NOT NULL,"
	" false) THEN doc END, error,"
	" CASE WHEN version > $2::bigint AND patch_from = $3::bigint THEN patch END"
	" FROM pgpush.feed_doc WHERE id = $1::bigint";
/* "{" and the DBA's members of s: the document the cluster stores (our own
 * keys, version, generatedAt and reason, are stored beside it). malloc'd. */
static char *dba_doc(const struct snapshot *s, size_t *len)
{
	size_t n = s->doc_len - s->body_off;
	char *t = malloc(n + 2);

	if (!t)
		return NULL;
	t[0] = '{';
	memcpy(t + 1, s->doc + s->body_off, n);
	t[n + 1] = '\0';
	*len = n + 1;
	return t;
}

/* The patch from the last stored document to s's, into *p, when there is
 * one smaller than the document (89 us for the demo's 29 KB document,
 * docs/benchmarks.md, issue 10). The snapshot's own patch (the hub's, for
 * members that opted in) is not it: that one includes our keys, and is only
 * computed when a member wants it. */
static bool store_patch(struct hub_feed *f, const struct snapshot *s, struct jsonpatch *p)
{
	const struct snapshot *b = f->cluster_stored;
	char *from, *to;
	size_t from_len, to_len;
	bool ok = false;

	/* Only for audiences another instance has (a lone instance diffs
	 * nothing: its followers would be the only readers). */
	if (!b || b->version >= s->version || !f->remote)
		return false;
	from = dba_doc(b, &from_len);
	to = dba_doc(s, &to_len);
	if (from && to && jsonpatch_diff(from, from_len, to, to_len, p) == 0)
		ok = !p->full && p->len < to_len;
	if (!ok)
		jsonpatch_clear(p);
	free(from);
	free(to);
	return ok;
}

bool clusterdoc_store(struct dashboard *d, struct hub_feed *f)
{
	struct snapshot *s = f->snap;
	char ver[24], gen[24], from[24];
	const char *v[10];
	struct jsonpatch p = { 0 };
	bool sent;

	snprintf(ver, sizeof(ver), "%lld", (long long)s->version);
	snprintf(gen, sizeof(gen), "%lld", (long long)s->generated_ms);
	v[0] = cluster_table_name(d, f->dash);
	v[1] = f->role ? f->role : "";
	v[2] = f->key;
	v[3] = ver;
	v[4] = gen;
	v[5] = f->stored_reason;
	v[6] = s->doc + s->body_off;
	v[7] = d->cfg->channel;
	v[8] = NULL;
	v[9] = NULL;
	if (store_patch(f, s, &p)) {
		snprintf(from, sizeof(from), "%lld", (long long)f->cluster_stored->version);
		v[8] = from;
		v[9] = p.text;
	}
	metrics_inc(&pgpush_metrics, METRIC_CLUSTER_STORES, 0);
	sent = cluster_send(d, CLUSTER_STORE, store_sql, 10, v);
	jsonpatch_clear(&p);
	/* The next patch's base, unless this was a re-announcement. Should
	 * this store fail, feed_store keeps the next patch out (its base is
	 * not the row's). */
	if (!f->cluster_stored || f->cluster_stored->version < s->version) {
		snapshot_unref(f->cluster_stored);
		f->cluster_stored = snapshot_ref(s);
	}
	return sent;
}

/* The error its clients got: followers show it to theirs. */
bool clusterdoc_error(struct dashboard *d, struct hub_feed *f)
{
	const char *v[5];

	v[0] = cluster_table_name(d, f->dash);
	v[1] = f->role ? f->role : "";
	v[2] = f->key;
	v[3] = f->error_json;
	v[4] = d->cfg->channel;
	return cluster_send(d, CLUSTER_ERROR, error_sql, 5, v);
}

bool clusterdoc_fetch(struct dashboard *d, struct hub_feed *f)
{
	char id[24], since[24], base[24];
	const char *v[4];
	bool own_error = f->in_error && !f->leader_error;

	snprintf(id, sizeof(id), "%lld", (long long)f->cluster_id);
	/* Out of our own error (the listener was lost), the document we hold
	 * too: the members leave the error with it. */
	snprintf(since, sizeof(since), "%lld",
		 (long long)(own_error && f->version > 0 ? f->version - 1 : f->version));
	/* A patch only onto the document we hold, and not after one failed. */
	snprintf(base, sizeof(base), "%lld",
		 (long long)(f->snap && !own_error && !f->cluster_no_patch && f->snap->version == f->version
			     ? f->version : 0));
	f->cluster_no_patch = false;
	metrics_inc(&pgpush_metrics, METRIC_CLUSTER_FETCHES, 0);
	if (f->cluster_id) {
		v[0] = id;
		v[1] = since;
		v[2] = base;
		return cluster_send(d, CLUSTER_FETCH, fetch_id_sql, 3, v);
	}
	v[0] = cluster_table_name(d, f->dash);
	v[1] = f->role ? f->role : "";
	v[2] = f->key;
	v[3] = since;
	return cluster_send(d, CLUSTER_FETCH, fetch_key_sql, 4, v);
}

/* The leader's stored error state: what its clients got, a small JSON
 * object; anything else is not passed on. */
static bool error_ok(const char *json)
{
	json_object *o;
	bool ok;

	if (strlen(json) > CLUSTER_ERROR_MAX)
		return false;
	o = json_tokener_parse(json);
	ok = o && json_object_is_type(o, json_type_object);
	json_object_put(o);
	if (!ok)
		log_warn("cluster: a stored error state is not a JSON object; ignored");
	return ok;
}

/* The leader's patch onto the document we hold: the new document, as
 * jsonpatch_apply writes it (compact; each scalar the leader's text). On
 * failure the document itself is fetched next. */
static void apply_patch(struct dashboard *d, struct hub_feed *f, const PGresult *res, int64_t version)
{
	char *base, *out = NULL;
	size_t base_len, out_len = 0;
	int rc = JSONPATCH_ERR_NOMEM;

	if (f->snap && f->snap->version == f->version && (base = dba_doc(f->snap, &base_len))) {
		rc = jsonpatch_apply(base, base_len, PQgetvalue(res, 0, 6), (size_t)PQgetlength(res, 0, 6),
				     &out, &out_len);
		free(base);
	}
	if (rc != 0) {
		log_warn("cluster: a stored patch did not apply dashboard=%s version=%lld: %s; "
			 "fetching the document", f->dash->name, (long long)version,
			 jsonpatch_error_message(rc));
		f->cluster_no_patch = true;
		cluster_queue(d, f);
		return;
	}
	dashboard_publish_stored(d, f, out, out_len, version, strtoll(PQgetvalue(res, 0, 2), NULL, 10),
				 PQgetvalue(res, 0, 3));
	free(out);
}

void clusterdoc_fetched(struct dashboard *d, struct hub_feed *f, const PGresult *res)
{
	const char *err;
	int64_t version;

	if (!f || PQnfields(res) != 7)
		return;
	if (PQntuples(res) != 1) {
		if (f->cluster_id) {
			f->cluster_id = 0;
			cluster_queue(d, f);
			listener_next(d);
		}
		return;
	}
	f->cluster_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if (d->leader)
		return;
	version = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	err = PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5);
	if (err && !error_ok(err))
		err = NULL;
	/* Still in the leader's error: the document we hold stays, with it. */
	if (!PQgetisnull(res, 0, 4) && !(err && version == f->version)) {
		metrics_add(&pgpush_metrics, METRIC_CLUSTER_FETCH_BYTES, METRICS_FETCH_DOCUMENT,
			    (double)PQgetlength(res, 0, 4));
		dashboard_publish_stored(d, f, PQgetvalue(res, 0, 4), (size_t)PQgetlength(res, 0, 4),
					 version, strtoll(PQgetvalue(res, 0, 2), NULL, 10),
					 PQgetvalue(res, 0, 3));
	} else if (!PQgetisnull(res, 0, 6) && version > f->version) {
		metrics_add(&pgpush_metrics, METRIC_CLUSTER_FETCH_BYTES, METRICS_FETCH_PATCH,
			    (double)PQgetlength(res, 0, 6));
		apply_patch(d, f, res, version);
	}
	dashboard_leader_error(d, f, err);
}

