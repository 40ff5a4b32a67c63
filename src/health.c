/* The dashboard's side of /healthz, /readyz and /metrics: the listener's
 * readiness probe (a NOTIFY on our own channel heard back), and the
 * documents and gauges those endpoints render. */
#include "autoconfig.h"

#include "dashboard.h"
#include "dashboard_int.h"
#include "metrics.h"
#include "pgconn.h"
#include "snapshot.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

/* Every DASHBOARD_PROBE_INTERVAL: NOTIFY our own channel from the listener
 * (a session hears its own notifications). A draw or a registry read waits
 * at most for this one round trip. A listener busy at the tick gets the
 * probe as its next statement (listener_next): a follower's lock attempts
 * come on a timer of their own, and one that always fires just before
 * this one would otherwise starve the probe, and /readyz with it. */
void health_on_probe(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dashboard *d = w->data;

	if (d->probe_wait || !pgconn_is_ready(d->listener))
		return;
	if (pgconn_is_busy(d->listener))
		d->probe_due = true;
	else
		health_probe_send(d);
}

/* Sends the probe on the idle listener; true if it went. */
bool health_probe_send(struct dashboard *d)
{
	char sql[256], chan[130];
	size_t k = 0;

	d->probe_due = false;
	for (const char *p = d->cfg->channel; *p && k + 2 < sizeof(chan); p++) {
		if (*p == '\'')
			chan[k++] = '\'';
		chan[k++] = *p;
	}
	chan[k] = '\0';
	snprintf(d->probe_payload, sizeof(d->probe_payload), PROBE_PREFIX "%ld,%lu",
		 (long)getpid(), ++d->probe_seq);
	snprintf(sql, sizeof(sql), "SELECT pg_notify('%s', '%s'), pg_notification_queue_usage()",
		 chan, d->probe_payload);
	if (pgconn_query(d->listener, sql) != 0)
		return false;
	d->probe_wait = true;
	d->probe_sent = mono_now();
	return true;
}

/* Without tokens: the default dashboard's document exists. With them,
 * audiences come and go: a query connection must be up. */
static bool have_document(const struct dashboard *d)
{
	if (d->hub->main_feed)
		return d->hub->main_feed->snap != NULL;
	for (size_t i = 0; i < d->nq; i++) {
		if (pgconn_is_ready(d->q[i].pc))
			return true;
	}
	return false;
}

bool dashboard_ready(void *ud, bool detailed, char *out, size_t outlen)
{
	struct dashboard *d = ud;
	double now = mono_now();
	bool listener = d->probe_seen > 0 && now - d->probe_seen <= DASHBOARD_READY_BOUND;
	bool queue = d->queue_usage < DASHBOARD_QUEUE_MAX;
	bool snapshot = have_document(d);
	bool ok = listener && queue && snapshot;

	if (detailed)
		snprintf(out, outlen, "{\"status\":\"%s\",\"listener\":%s,\"lastRoundTripAgeSeconds\":%.3f,"
			 "\"notificationQueueUsage\":%.6f,\"snapshot\":%s}",
			 ok ? "ok" : "unavailable", listener ? "true" : "false",
			 d->probe_seen > 0 ? now - d->probe_seen : -1.0, d->queue_usage,
			 snapshot ? "true" : "false");
	else
		snprintf(out, outlen, "{\"status\":\"%s\"}", ok ? "ok" : "unavailable");
	return ok;
}

void dashboard_metrics(void *ud)
{
	struct dashboard *d = ud;
	struct hub_feed *mf = d->hub->main_feed;

	if (mf && mf->snap)
		metrics_set(&pgpush_metrics, METRIC_SNAPSHOT_AGE, 0,
			    (double)(util_now_ms() - mf->snap->generated_ms) / 1000.0);
	metrics_set(&pgpush_metrics, METRIC_AUDIENCES, 0, (double)d->hub->nfeeds);
	/* Served: the default one and the registered ones. */
	metrics_set(&pgpush_metrics, METRIC_DASHBOARDS, 0, (double)d->hub->ndashboards + 1);
}


static bool health_fits(json_object *o, char *out, size_t outlen)
{
	size_t n;
	const char *txt = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE, &n);

	if (!txt || n >= outlen)
		return false;
	memcpy(out, txt, n + 1);
	return true;
}

bool dashboard_health(void *ud, bool detailed, char *out, size_t outlen)
{
	struct dashboard *d = ud;
	struct hub *h = d->hub;
	bool listening = pgconn_is_ready(d->listener) && (!d->changes || changes_ok(d->changes));
	bool querying = false;
	struct hub_feed *mf = h->main_feed;
	bool ok;
	const char *status;
	json_object *o = detailed ? json_object_new_object() : NULL;
	json_object *err = NULL, *per;
	struct hub_dashboard *db;

	for (size_t i = 0; i < d->nq; i++)
		querying = querying || pgconn_is_ready(d->q[i].pc);
	/* Without tokens: a document exists. With them, audiences come and
	 * go: the database must be reachable. */
	ok = listening && (mf ? mf->snap != NULL : querying);
	status = ok ? "ok" : "unavailable";
	if (o) {
		json_object_object_add(o, "status", json_object_new_string(status));
		json_object_object_add(o, "listener", json_object_new_boolean(listening));
		json_object_object_add(o, "cluster", json_object_new_string(d->leader ? "leader" : "follower"));
		json_object_object_add(o, "query", json_object_new_boolean(querying));
		json_object_object_add(o, "snapshotVersion",
				       json_object_new_int64(mf && mf->snap ? mf->snap->version : 0));
		json_object_object_add(o, "clients", json_object_new_int64((int64_t)h->count));
		json_object_object_add(o, "recomputes", json_object_new_int64((int64_t)d->recomputes));
		json_object_object_add(o, "notifications",
				       json_object_new_int64((int64_t)d->notifications));
		json_object_object_add(o, "changeSource",
				       json_object_new_string(!d->changes ? d->cfg->logical ? "logical (leader only)"
										  : "notify"
							      : changes_fell_back(d->changes) ? "notify (fallback)"
							      : "logical"));
		json_object_object_add(o, "queries", json_object_new_int64((int64_t)d->queries));
		json_object_object_add(o, "unchanged", json_object_new_int64((int64_t)d->unchanged));
		json_object_object_add(o, "patches", json_object_new_int64((int64_t)h->patches));
		json_object_object_add(o, "fullDocuments", json_object_new_int64((int64_t)h->fulls));
		json_object_object_add(o, "resumed", json_object_new_int64((int64_t)h->resumed));
		json_object_object_add(o, "diffs", json_object_new_int64((int64_t)h->diffs));
		json_object_object_add(o, "diffMicroseconds", json_object_new_int64((int64_t)h->diff_us));
		json_object_object_add(o, "audiences", json_object_new_int64((int64_t)h->nfeeds));
		json_object_object_add(o, "dashboards", json_object_new_int64((int64_t)h->ndashboards));
		json_object_object_add(o, "refused", json_object_new_int64((int64_t)h->refused));
		per = json_object_new_object();
		HUB_FOR_EACH_DASHBOARD(h, db) {
			json_object *e = json_object_new_object();
			size_t clients = 0;
			struct hub_feed *f;

			if (db->gone || !e) {
				json_object_put(e);
				continue;
			}
			HUB_FOR_EACH_FEED(db, f)
				clients += f->count;
			json_object_object_add(e, "audiences", json_object_new_int64((int64_t)db->nfeeds));
			json_object_object_add(e, "recomputes", json_object_new_int64((int64_t)db->recomputes));
			json_object_object_add(e, "clients", json_object_new_int64((int64_t)clients));
			json_object_object_add(per, db == h->def ? "/" : db->name, e);
		}
		json_object_object_add(o, "perDashboard", per);
		if (mf && mf->error_json)
			err = json_tokener_parse(mf->error_json);
		json_object_object_add(o, "error", err);
		json_object_object_add(o, "lastError",
				       d->in_error ? json_object_new_string(d->detail) : NULL);
		/* Every part is bounded but the detail; drop it rather than cut
		 * the JSON when out is small. */
		if (health_fits(o, out, outlen)) {
			json_object_put(o);
			return ok;
		}
		json_object_object_add(o, "lastError", json_object_new_string("(too long)"));
		json_object_object_del(o, "perDashboard");
		if (health_fits(o, out, outlen)) {
			json_object_put(o);
			return ok;
		}
		json_object_put(o);
	}
	snprintf(out, outlen, "{\"status\":\"%s\"}", status);
	return ok;
}
