/* The registry: pgpush.registry() read on the listener, applied to the
 * hub's named dashboards (added, changed, removed). */
#include "autoconfig.h"

#include "dashboard.h"
#include "dashboard_int.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

const char registry_sql[] =
	"SELECT name, fn_sql, pg_catalog.array_to_json(tables)::text,"
	" pg_catalog.array_to_json(audience_claims)::text FROM pgpush.registry()";

static char **json_strv(const char *json, size_t *n)
{
	json_object *arr = json ? json_tokener_parse(json) : NULL;
	size_t len = arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
	char **v = calloc(len ? len : 1, sizeof(*v));
	size_t k = 0;

	for (size_t i = 0; v && i < len; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(arr, i));

		if (s && (v[k] = strdup(s)))
			k++;
	}
	json_object_put(arr);
	*n = k;
	return v;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool strv_equal(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		if (strcmp(a[i], b[i]) != 0)
			return false;
	}
	return true;
}

static void apply_registry_row(struct dashboard *d, const char *name, const char *fn_sql,
			       const char *tables_json, const char *claims_json)
{
	struct hub_dashboard *db = hub_find_dashboard(d->hub, name, strlen(name));
	size_t nt = 0, nc = 0;
	char **tables = json_strv(tables_json, &nt);
	char **claims = json_strv(claims_json, &nc);
	char sql[512];
	bool is_new = false, claims_changed = false, changed;

	snprintf(sql, sizeof(sql), "SELECT %s()", fn_sql);
	if (!tables || !claims)
		goto out;
	if (!db) {
		if (!(db = hub_add_dashboard(d->hub, name)))
			goto out;
		is_new = true;
		log_info("dashboard registered name=%s fn=%s", name, fn_sql);
	}
	db->mark = true;
	claims_changed = !is_new && !strv_equal(db->claims, db->nclaims, claims, nc);
	changed = is_new || claims_changed || !db->sql || strcmp(db->sql, sql) != 0 ||
		  !strv_equal(db->tables, db->ntables, tables, nt);
	if (!changed)
		goto out;
	if (hub_dashboard_set(db, sql, tables, nt, claims, nc) < 0) {
		log_error("out of memory registering a dashboard");
		goto out;
	}
	if (claims_changed) {
		/* Audiences were cut along other claims: their members must
		 * join again to be placed. */
		struct hub_feed *f;

		log_info("dashboard %s declares other audience claims: its clients are disconnected", name);
		HUB_FOR_EACH_FEED(db, f)
			hub_feed_evict(d->hub, f, "{\"message\":\"the dashboard changed\","
						  "\"code\":\"dashboard_changed\"}");
	} else if (!is_new) {
		log_info("dashboard re-registered name=%s fn=%s", name, fn_sql);
		schedule_request_dashboard(d, db, DASHBOARD_REASON_REGISTRY, NULL);
	}
out:
	free_strv(tables, nt);
	free_strv(claims, nc);
}

void registry_read(struct dashboard *d, const PGresult *res)
{
	struct hub_dashboard *db;
	int rows;

	if (!res)
		return; /* the reconnect reads it again */
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 4) {
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		if (!d->registry_warned)
			log_warn("reading pgpush.registry() failed: %s (named dashboards are off; rerun "
				 "sql/install.sql and sql/grant.sql)", primary ? primary : "unexpected result");
		d->registry_warned = true;
		return;
	}
	d->registry_warned = false;
	/* Roles refused so far are tried again: the DBA may have granted
	 * them (and then rung ':registry', or the daemon reconnected). */
	hub_roles_forget(d->hub);
	HUB_FOR_EACH_DASHBOARD(d->hub, db)
		db->mark = false;
	rows = PQntuples(res);
	for (int i = 0; i < rows; i++) {
		const char *name = PQgetvalue(res, i, 0);

		if (PQgetisnull(res, i, 0) || PQgetisnull(res, i, 1) || !dashboard_name_ok(name) ||
		    strchr(name, '/')) {
			log_warn("registry row %d skipped: bad name", i);
			continue;
		}
		apply_registry_row(d, name, PQgetvalue(res, i, 1),
				   PQgetisnull(res, i, 2) ? "[]" : PQgetvalue(res, i, 2),
				   PQgetisnull(res, i, 3) ? "[]" : PQgetvalue(res, i, 3));
	}
	HUB_FOR_EACH_DASHBOARD(d->hub, db) {
		if (db != d->hub->def && !db->gone && !db->mark) {
			log_info("dashboard unregistered name=%s", db->name);
			hub_remove_dashboard(d->hub, db);
		}
	}
}
