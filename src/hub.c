#include "autoconfig.h"

#include "hub.h"
#include "claims.h"
#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* A socket's feed is its app_group, its member app_data - 1 in the feed's
 * array (app_data 0: not a member). */
static struct hub_member *member_of(const struct socketio_socket *sock)
{
	struct hub_feed *f = sock->app_group;
	uintptr_t i = (uintptr_t)sock->app_data;

	return f && i ? &f->members[i - 1] : NULL;
}


static int64_t default_unix_now(void)
{
	return (int64_t)time(NULL);
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static char **copy_strv(char **v, size_t n)
{
	char **out = calloc(n ? n : 1, sizeof(*out));

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!(out[i] = strdup(v[i]))) {
			free_strv(out, i);
			return NULL;
		}
	}
	return out;
}

static struct hub_dashboard *dashboard_alloc(const char *name)
{
	struct hub_dashboard *d = calloc(1, sizeof(*d));

	if (!d || !(d->name = strdup(name)) || !(d->nsp = malloc(strlen(name) + 2))) {
		if (d)
			free(d->name);
		free(d);
		return NULL;
	}
	d->nsp[0] = '/';
	memcpy(d->nsp + 1, name, strlen(name) + 1);
	list_init(&d->feeds);
	list_init(&d->link);
	return d;
}

static void dashboard_release(struct hub_dashboard *d)
{
	free(d->name);
	free(d->nsp);
	free(d->sql);
	free_strv(d->tables, d->ntables);
	free_strv(d->claims, d->nclaims);
	free(d);
}

int hub_dashboard_set(struct hub_dashboard *d, const char *sql, char **tables, size_t ntables,
		      char **claims, size_t nclaims)
{
	char *s = sql ? strdup(sql) : NULL;
	char **t = copy_strv(tables, ntables);
	char **c = copy_strv(claims, nclaims);

	if ((sql && !s) || !t || !c) {
		free(s);
		free_strv(t, t ? ntables : 0);
		free_strv(c, c ? nclaims : 0);
		return -1;
	}
	free(d->sql);
	free_strv(d->tables, d->ntables);
	free_strv(d->claims, d->nclaims);
	d->sql = s;
	d->tables = t;
	d->ntables = ntables;
	d->claims = c;
	d->nclaims = nclaims;
	return 0;
}

static struct hub_feed *feed_new(struct hub *h, struct hub_dashboard *d, const char *key,
				 const char *role)
{
	struct hub_feed *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->key = strdup(key);
	f->role = role ? strdup(role) : NULL;
	if (!f->key || (role && !f->role)) {
		free(f->key);
		free(f->role);
		free(f);
		return NULL;
	}
	list_init(&f->vlink);
	list_init(&f->clink);
	f->dash = d;
	f->empty_since = h->now(h->now_ud);
	list_push_back(&d->feeds, &f->link);
	d->nfeeds++;
	h->nfeeds++;
	return f;
}

static void feed_free(struct hub *h, struct hub_feed *f)
{
	if (h->hooks.feed_gone)
		h->hooks.feed_gone(h->hooks_ud, f);
	list_unlink(&f->link);
	if (f->in_vqueue)
		list_unlink(&f->vlink);
	f->dash->nfeeds--;
	h->nfeeds--;
	snapshot_unref(f->snap);
	snapshot_unref(f->prev);
	snapshot_unref(f->cluster_stored);
	buf_unref(f->error_frame);
	free(f->error_json);
	free(f->doc);
	free(f->key);
	free(f->role);
	free(f->members);
	free(f);
}

int hub_init(struct hub *h)
{
	memset(h, 0, sizeof(*h));
	list_init(&h->dashboards);
	h->now = deadline_monotonic;
	h->unix_now = default_unix_now;
	h->max_audiences = 1000;
	h->grace = 30;
	jwt_policy_init(&h->policy);
	h->def = dashboard_alloc("");
	if (!h->def)
		return -1;
	h->def->all_tables = true;
	list_push_back(&h->dashboards, &h->def->link);
	h->main_feed = feed_new(h, h->def, "", NULL);
	if (!h->main_feed)
		return -1;
	h->main_feed->permanent = true;
	return 0;
}

void hub_set_auth(struct hub *h, const struct jwt_key *key, const struct jwt_policy *policy,
		  const char *anon_role, size_t max_audiences, double grace)
{
	h->key = key;
	if (policy)
		h->policy = *policy;
	h->anon_role = anon_role;
	h->max_audiences = max_audiences;
	h->grace = grace;
	if (hub_auth_on(h) && h->main_feed && !h->main_feed->count && !h->main_feed->busy) {
		feed_free(h, h->main_feed);
		h->main_feed = NULL;
	}
}

static void member_free_all(struct hub_feed *f)
{
	for (size_t i = 0; i < f->count; i++) {
		f->members[i].sock->app_data = NULL;
		f->members[i].sock->app_group = NULL;
	}
	f->count = 0;
}

void hub_free(struct hub *h)
{
	struct list_node *n;

	while ((n = list_pop_front(&h->dashboards))) {
		struct hub_dashboard *d = LIST_ENTRY(n, struct hub_dashboard, link);
		struct list_node *fn;

		while ((fn = list_first(&d->feeds))) {
			struct hub_feed *f = LIST_ENTRY(fn, struct hub_feed, link);

			member_free_all(f);
			feed_free(h, f);
		}
		dashboard_release(d);
	}
	memset(h, 0, sizeof(*h));
	list_init(&h->dashboards);
	h->now = deadline_monotonic;
	h->unix_now = default_unix_now;
}

/* Takes one request from m's bucket; false when it is empty. */
static bool take_request(struct hub *h, struct hub_member *m)
{
	double now = h->now(h->now_ud);

	m->tokens += (now - m->at) * HUB_REQUEST_RATE;
	if (m->tokens > HUB_REQUEST_BURST)
		m->tokens = HUB_REQUEST_BURST;
	m->at = now;
	if (m->tokens < 1.0)
		return false;
	m->tokens -= 1.0;
	return true;
}

/* The full document. Latest wins (a replaceable entry) for members that
 * did not opt in to deltas; for those that did, never: a patch queued
 * after it starts from its version, so replacing it would leave the patch
 * without its base (docs/design.md, "Deltas and latest-wins"). */
static void send_full(struct hub_member *m, struct snapshot *snap)
{
	session_send_frame(m->sock->session, snap->frame, snap->msg, !m->deltas);
	m->last = snap->version;
}

/* The patch from snap->patch_from to snap: never replaceable either (the
 * next one starts where it ends). */
static void send_patch(struct hub_member *m, struct snapshot *snap)
{
	session_send_frame(m->sock->session, snap->patch_frame, snap->patch_msg, false);
	m->last = snap->version;
}

static bool patch_fits(const struct hub_member *m, const struct snapshot *snap)
{
	return m->deltas && snap->patch_frame && m->last == snap->patch_from;
}

struct hub_dashboard *hub_find_dashboard(struct hub *h, const char *name, size_t len)
{
	struct hub_dashboard *d;

	HUB_FOR_EACH_DASHBOARD(h, d) {
		if (d != h->def && !d->gone && strlen(d->name) == len && memcmp(d->name, name, len) == 0)
			return d;
	}
	return NULL;
}

struct hub_dashboard *hub_add_dashboard(struct hub *h, const char *name)
{
	struct hub_dashboard *d = dashboard_alloc(name);

	if (!d)
		return NULL;
	list_push_back(&h->dashboards, &d->link);
	h->ndashboards++;
	return d;
}

/* f->snap's patch from f->prev, computed once; then prev goes. */
static void feed_patch(struct hub *h, struct hub_feed *f)
{
	struct snapshot *snap = f->snap, *prev = f->prev;

	if (!prev)
		return;
	f->prev = NULL;
	if (snapshot_attach_patch(snap, prev, f->dash->nsp) < 0) {
		log_warn("no patch from version %lld to %lld (out of memory or too deep); "
			 "sending the document", (long long)prev->version, (long long)snap->version);
	} else {
		h->diffs++;
		h->diff_us += snap->diff_us;
	}
	snapshot_unref(prev);
}

/* Sending never changes the member list: a client dropped on the way is
 * only marked, and leaves from the reaper, after this returns. */
void hub_feed_publish(struct hub *h, struct hub_feed *f, struct snapshot *snap)
{
	bool want = false;

	snapshot_unref(f->prev);
	f->prev = f->snap;
	f->snap = snapshot_ref(snap);
	snapshot_follow(snap, f->prev); /* older payloads stay dictionaries */
	f->snap_doc_off = hub_doc_offset(snap);
	/* The patch once per feed, and only when someone can use it. */
	for (size_t i = 0; f->prev && i < f->count && !want; i++)
		want = f->members[i].deltas && f->members[i].last == f->prev->version;
	if (want)
		feed_patch(h, f);
	for (size_t i = 0; i < f->count; i++) {
		struct hub_member *m = &f->members[i];

		if (patch_fits(m, snap)) {
			send_patch(m, snap);
			h->patches++;
		} else {
			send_full(m, snap);
			h->fulls++;
		}
	}
}

int hub_feed_set_error(struct hub *h, struct hub_feed *f, const char *json)
{
	struct buf *frame = NULL;
	char *copy = NULL;

	if (json) {
		copy = strdup(json);
		frame = snapshot_event_frame_nsp(f->dash->nsp, "dashboardDataError", json,
						 strlen(json));
		if (!copy || !frame) {
			free(copy);
			buf_unref(frame);
			return -1;
		}
	}
	buf_unref(f->error_frame);
	free(f->error_json);
	f->error_frame = frame;
	f->error_json = copy;
	if (!frame)
		return 0;
	for (size_t i = 0; i < f->count; i++)
		session_send_frame(f->members[i].sock->session, frame, NULL, false);
	return 0;
}

void hub_publish(struct hub *h, struct snapshot *s)
{
	if (h->main_feed)
		hub_feed_publish(h, h->main_feed, s);
}

int hub_set_error(struct hub *h, const char *json)
{
	return h->main_feed ? hub_feed_set_error(h, h->main_feed, json) : 0;
}

/* Tells the member (frame: a dashboardDataError) and disconnects it from
 * the namespace: on_leave takes it out of its feed, moving the last member
 * into its place; callers walk the array from its end. */
static void evict_member(struct socketio_socket *sock, struct buf *frame)
{
	if (frame)
		session_send_frame(sock->session, frame, NULL, false);
	socketio_disconnect(sock);
}

void hub_feed_evict(struct hub *h, struct hub_feed *f, const char *json)
{
	struct buf *frame = json ? snapshot_event_frame_nsp(f->dash->nsp, "dashboardDataError", json,
							    strlen(json))
				 : NULL;

	for (size_t i = f->count; i-- > 0;) {
		if (i < f->count)
			evict_member(f->members[i].sock, frame);
	}
	buf_unref(frame);
}

void hub_remove_dashboard(struct hub *h, struct hub_dashboard *d)
{
	struct hub_feed *f;

	if (d->gone || d == h->def)
		return;
	d->gone = true;
	h->ndashboards--;
	HUB_FOR_EACH_FEED(d, f) {
		hub_feed_evict(h, f, "{\"message\":\"the dashboard was unregistered\","
				     "\"code\":\"dashboard_unregistered\"}");
	}
}

void hub_role_bad(struct hub *h, const char *role)
{
	for (unsigned i = 0; i < h->n_bad_roles && i < HUB_BAD_ROLES; i++) {
		if (strcmp(h->bad_roles[i], role) == 0)
			return;
	}
	snprintf(h->bad_roles[h->n_bad_roles % HUB_BAD_ROLES], sizeof(h->bad_roles[0]), "%s", role);
	h->n_bad_roles++;
}

void hub_roles_forget(struct hub *h)
{
	h->n_bad_roles = 0;
}

static bool role_is_bad(const struct hub *h, const char *role)
{
	for (unsigned i = 0; i < h->n_bad_roles && i < HUB_BAD_ROLES; i++) {
		if (strcmp(h->bad_roles[i], role) == 0)
			return true;
	}
	return false;
}

void hub_sweep(struct hub *h)
{
	static const char expired[] =
		"{\"message\":\"the token expired\",\"code\":\"token_expired\"}";
	int64_t now_unix = h->unix_now();
	double now = h->now(h->now_ud);
	struct list_node *dn, *dnext;

	for (dn = h->dashboards.next; dn != &h->dashboards; dn = dnext) {
		struct hub_dashboard *d = LIST_ENTRY(dn, struct hub_dashboard, link);
		struct list_node *fn, *fnext;
		struct buf *frame = NULL;

		dnext = dn->next;
		for (fn = d->feeds.next; fn != &d->feeds; fn = fnext) {
			struct hub_feed *f = LIST_ENTRY(fn, struct hub_feed, link);

			fnext = fn->next;
			for (size_t i = f->count; i-- > 0;) {
				struct hub_member *m;

				if (i >= f->count)
					continue;
				m = &f->members[i];
				if (!m->expires || now_unix < m->expires)
					continue;
				if (!frame)
					frame = snapshot_event_frame_nsp(d->nsp, "dashboardDataError",
									 expired, sizeof(expired) - 1);
				log_info("token expired, disconnecting sid=%s", m->sock->session->sid);
				evict_member(m->sock, frame);
			}
			if (f->count || f->permanent || f->busy || (f->remote && !d->gone))
				continue;
			if (d->gone || now - f->empty_since >= h->grace) {
				log_debug("audience dropped dashboard=%s key=%s", d->name, f->key);
				feed_free(h, f);
			}
		}
		buf_unref(frame);
		if (d->gone && !d->nfeeds) {
			list_unlink(&d->link);
			dashboard_release(d);
		}
	}
}

size_t hub_doc_offset(const struct snapshot *s)
{
	/* The frame ends with <doc>] whatever the namespace before it. */
	const struct buf *f = s->frame;
	uint8_t l = f->data[1] & 0x7f;
	size_t hlen = l < 126 ? 2 : l == 126 ? 4 : 10;
	size_t off;

	if (f->len < hlen + s->doc_len + 1)
		return 0;
	off = f->len - 1 - s->doc_len;
	if (memcmp(f->data + off, s->doc, s->doc_len) != 0 || f->data[f->len - 1] != ']')
		return 0;
	return off;
}

/* ---- the Socket.IO application ------------------------------------------- */

static struct hub_dashboard *dashboard_of(struct hub *h, const char *nsp, size_t len)
{
	if (sio_is_main_nsp(nsp, len))
		return h->def;
	if (len < 2 || nsp[0] != '/')
		return NULL;
	return hub_find_dashboard(h, nsp + 1, len - 1);
}

static bool app_nsp_exists(void *ud, const char *nsp, size_t len)
{
	return dashboard_of(ud, nsp, len) != NULL;
}

static struct hub_feed *find_feed(struct hub_dashboard *d, const char *key)
{
	struct hub_feed *f;

	HUB_FOR_EACH_FEED(d, f) {
		if (strcmp(f->key, key) == 0)
			return f;
	}
	return NULL;
}

struct hub_feed *hub_feed_remote(struct hub *h, struct hub_dashboard *d, const char *key,
				 const char *role, bool create)
{
	struct hub_feed *f = d == h->def && h->main_feed && !*key ? h->main_feed : find_feed(d, key);

	if (!f) {
		if (!create)
			return NULL;
		if (!(f = feed_new(h, d, key, role)))
			return NULL;
		f->remote = true;
		if (h->hooks.feed_new)
			h->hooks.feed_new(h->hooks_ud, f);
	}
	f->remote = true;
	return f;
}

/* The CONNECT auth payload as an object, or NULL. */
static json_object *auth_parse(const char *auth, size_t auth_len)
{
	json_object *o = NULL;

	if (auth_len > 2 && auth_len <= JWT_MAX_TOKEN * 2) {
		json_tokener *jt = json_tokener_new();

		if (jt) {
			o = json_tokener_parse_ex(jt, auth, (int)auth_len);
			json_tokener_free(jt);
		}
	}
	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/* The token: auth.token when a string, else the handshake's Bearer. */
static char *token_of(struct socketio_socket *sock, json_object *o)
{
	json_object *t = NULL;
	char *tok = NULL;

	if (o && json_object_object_get_ex(o, "token", &t) && json_object_is_type(t, json_type_string))
		tok = strdup(json_object_get_string(t));
	if (!tok && sock->session->bearer)
		tok = strdup(sock->session->bearer);
	return tok;
}

/* auth.deltas === true opts in; auth.since (a positive integer) is the
 * version the client holds, kept as the member's last until on_connect
 * decides what to send. */
struct auth_opts {
	bool deltas;
	int64_t since;
};

static struct auth_opts opts_of(json_object *o)
{
	struct auth_opts a = { false, 0 };
	json_object *v = NULL;

	if (!o)
		return a;
	a.deltas = json_object_object_get_ex(o, "deltas", &v) &&
		   json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
	if (a.deltas && json_object_object_get_ex(o, "since", &v)) {
		if (json_object_is_type(v, json_type_int))
			a.since = json_object_get_int64(v);
		else if (json_object_is_type(v, json_type_double) &&
			 json_object_get_double(v) == (double)(int64_t)json_object_get_double(v))
			a.since = (int64_t)json_object_get_double(v);
		if (a.since < 0)
			a.since = 0;
	}
	return a;
}

static const char *admit(struct hub *h, struct socketio_socket *sock, struct hub_feed *f,
			 int64_t expires, struct auth_opts opts)
{
	if (f->count == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 16;
		struct hub_member *m = realloc(f->members, cap * sizeof(*m));

		if (!m)
			return "internal";
		f->members = m;
		f->cap = cap;
	}
	f->members[f->count] = (struct hub_member){
		.sock = sock, .tokens = HUB_REQUEST_BURST, .at = h->now(h->now_ud),
		.expires = expires, .last = opts.since, .deltas = opts.deltas,
	};
	sock->app_group = f;
	sock->app_data = (void *)(uintptr_t)++f->count;
	h->count++;
	return NULL;
}

static const char *app_authorize(void *ud, struct socketio_socket *sock, const char *auth,
				 size_t auth_len, const char **message)
{
	struct hub *h = ud;
	struct hub_dashboard *d = dashboard_of(h, sock->nsp, sock->nsp_len);
	struct jwt_claims c;
	struct hub_feed *f;
	const char *code = NULL;
	char *tok, *key = NULL;
	int64_t expires = 0;
	bool is_new = false;
	json_object *ao;
	struct auth_opts opts;
	int r;

	if (!d) {
		*message = "Invalid namespace";
		h->refused++;
		return "dashboard_unknown";
	}
	ao = auth_parse(auth, auth_len);
	opts = opts_of(ao);
	if (!hub_auth_on(h)) {
		json_object_put(ao);
		f = d == h->def && h->main_feed ? h->main_feed : find_feed(d, "");
		if (!f && (f = feed_new(h, d, "", NULL)))
			is_new = true;
		if (!f) {
			*message = "out of memory";
			return "internal";
		}
		code = admit(h, sock, f, 0, opts);
		if (!code && (is_new || f->count == 1) && h->hooks.feed_new)
			h->hooks.feed_new(h->hooks_ud, f);
		return code;
	}
	memset(&c, 0, sizeof(c));
	tok = h->key ? token_of(sock, ao) : NULL;
	json_object_put(ao);
	if (tok) {
		r = jwt_verify(h->key, tok, strlen(tok), &h->policy, h->unix_now(), &c);
		free(tok);
		if (r != JWT_OK) {
			*message = jwt_result_message(r);
			h->refused++;
			return jwt_result_code(r);
		}
		if (c.has_exp)
			expires = c.exp + h->policy.leeway_sec;
	} else if (h->anon_role) {
		snprintf(c.role, sizeof(c.role), "%s", h->anon_role);
		c.payload = json_object_new_object();
	} else {
		*message = "a token is required";
		h->refused++;
		return "auth_required";
	}
	if (role_is_bad(h, c.role)) {
		jwt_claims_clear(&c);
		*message = "the role cannot be used";
		h->refused++;
		return "role_invalid";
	}
	if (claims_project(&c, (const char *const *)d->claims, d->nclaims, &key) != JWT_OK) {
		jwt_claims_clear(&c);
		*message = "out of memory";
		return "internal";
	}
	f = find_feed(d, key);
	if (!f) {
		if (h->nfeeds - (h->remote_only < h->nfeeds ? h->remote_only : h->nfeeds) >=
		    h->max_audiences) {
			free(key);
			jwt_claims_clear(&c);
			*message = "too many audiences";
			h->refused++;
			log_warn("audience refused: --max-audiences %zu reached", h->max_audiences);
			return "audience_limit";
		}
		f = feed_new(h, d, key, c.role);
		is_new = f != NULL;
	}
	free(key);
	jwt_claims_clear(&c);
	if (!f) {
		*message = "out of memory";
		return "internal";
	}
	code = admit(h, sock, f, expires, opts);
	if (code)
		*message = "out of memory";
	/* A new audience, or one that was left without members (its work
	 * waited): compute it. */
	if (!code && (is_new || f->count == 1) && h->hooks.feed_new)
		h->hooks.feed_new(h->hooks_ud, f);
	return code;
}

static void app_on_connect(void *ud, struct socketio_socket *sock, const char *auth,
			   size_t auth_len)
{
	struct hub *h = ud;
	struct hub_feed *f = sock->app_group;
	struct hub_member *m = member_of(sock);

	if (!m)
		return;
	/* Resume: m->last is the client's `since` (0 without one). */
	if (m->deltas && f->prev && m->last == f->prev->version)
		feed_patch(h, f);
	if (f->snap && m->deltas && m->last == f->snap->version)
		h->resumed++;
	else if (f->snap && patch_fits(m, f->snap)) {
		send_patch(m, f->snap);
		h->patches++;
	} else if (f->snap)
		send_full(m, f->snap);
	if (f->error_frame)
		session_send_frame(sock->session, f->error_frame, NULL, false);
}

/* The last member takes the place of the one that leaves. Never during a
 * broadcast: a member leaves from the reaper (deferred teardown), or from
 * an eviction that walks the array from its end. */
static void app_on_leave(void *ud, struct socketio_socket *sock)
{
	struct hub *h = ud;
	struct hub_feed *f = sock->app_group;
	struct hub_member *m = member_of(sock);

	if (!m)
		return;
	*m = f->members[--f->count];
	m->sock->app_data = (void *)(uintptr_t)(m - f->members + 1);
	sock->app_data = NULL;
	sock->app_group = NULL;
	if (f->count == 0)
		f->empty_since = h->now(h->now_ud);
	h->count--;
}

/* requestDashboardData: from the cache, never a query. Through the ack
 * when asked for one; else as a dashboardDataUpdate to this client only. */
static void app_on_event(void *ud, struct socketio_socket *sock, const struct socketio_event *ev)
{
	static const char not_ready[] =
		"{\"message\":\"no dashboard data yet\",\"code\":\"not_ready\"}";
	struct hub *h = ud;
	struct hub_member *m = member_of(sock);
	struct hub_feed *f = sock->app_group;
	int rc;

	if (!ev->name || ev->name_len != 20 || memcmp(ev->name, "requestDashboardData", 20) != 0) {
		log_debug("ignored event sid=%s", sock->session->sid);
		return;
	}
	if (!m || !take_request(h, m)) {
		h->limited++;
		log_debug("requestDashboardData over the rate, ignored sid=%s", sock->session->sid);
		return;
	}
	if (!ev->has_id) {
		if (f->snap)
			send_full(m, f->snap);
		else if (f->error_frame)
			session_send_frame(sock->session, f->error_frame, NULL, false);
		return;
	}
	if (f->snap)
		m->last = f->snap->version;   /* the ack carries it, in order */
	if (f->snap && f->snap_doc_off) {
		/* The document inside the shared frame: a reference, not a copy. */
		rc = socketio_ack_shared(sock, ev->id, f->snap->frame, f->snap_doc_off,
					 f->snap->doc_len);
	} else if (f->snap) {
		struct ws_part parts[] = { { "[", 1 }, { f->snap->doc, f->snap->doc_len }, { "]", 1 } };

		rc = socketio_ack(sock, ev->id, parts, 3, NULL, 0);
	} else {
		const char *err = f->error_json ? f->error_json : not_ready;
		struct ws_part parts[] = { { "[{\"error\":", 10 }, { err, strlen(err) }, { "}]", 2 } };

		rc = socketio_ack(sock, ev->id, parts, 3, NULL, 0);
	}
	if (rc < 0)
		log_error("cannot send an ack sid=%s", sock->session->sid);
}

const struct socketio_app hub_app = {
	.nsp_exists = app_nsp_exists,
	.authorize = app_authorize,
	.on_connect = app_on_connect,
	.on_leave = app_on_leave,
	.on_event = app_on_event,
};
