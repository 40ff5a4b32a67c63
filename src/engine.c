#include "autoconfig.h"

#include "engine.h"
#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "polling.h"
#include "upgrade.h"
#include "websocket.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int engine_init(struct engine *e, struct conn_ctx *cx, const struct config *cfg,
		const struct engine_options *opts)
{
	struct ev_loop *loop = cx->loop;

	memset(e, 0, sizeof(*e));
	e->cx = cx;
	e->cfg = cfg;
	snprintf(e->path, sizeof(e->path), "%s", opts->path);
	e->polling = opts->polling;
	e->up = opts->up;
	e->up_ud = opts->up_ud;
	e->route = engine_handle_request;
	e->now = opts->now ? opts->now : deadline_monotonic;
	e->now_ud = opts->now_ud;
	for (size_t i = 0; i < ENGINE_BUCKETS; i++)
		list_init(&e->table[i]);
	list_init(&e->flush);
	list_init(&e->reap);
	list_init(&e->tombs);
	deadline_list_init(&e->hb_ping, loop, e->now, e->now_ud, cfg->ping_interval / 1000.0,
			   session_ping_due, e);
	deadline_list_init(&e->hb_pong, loop, e->now, e->now_ud, cfg->ping_timeout / 1000.0,
			   session_pong_due, e);
	deadline_list_init(&e->upgrade, loop, e->now, e->now_ud, ENGINE_UPGRADE_TIMEOUT,
			   upgrade_due, e);
	deadline_list_init(&e->tomb_dl, loop, e->now, e->now_ud, ENGINE_TOMB_SECS,
			   session_tomb_due, e);
	e->ping_frame = ws_frame(WS_OP_TEXT, "2", 1);
	return e->ping_frame ? 0 : -1;
}

static void close_all(struct engine *e, const char *why)
{
	for (size_t b = 0; b < ENGINE_BUCKETS; b++) {
		struct list_node *n;

		while ((n = list_first(&e->table[b])))
			session_close(LIST_ENTRY(n, struct session, table_link), why);
	}
}

void engine_shutdown(struct engine *e)
{
	e->shutting_down = true;
	close_all(e, "server shutting down");
}

void engine_free(struct engine *e)
{
	close_all(e, "server stopped");
	while (engine_run_deferred(e))
		;
	session_tombs_clear(e);
	deadline_list_stop(&e->hb_ping);
	deadline_list_stop(&e->hb_pong);
	deadline_list_stop(&e->upgrade);
	deadline_list_stop(&e->tomb_dl);
	buf_unref(e->ping_frame);
	e->ping_frame = NULL;
}

bool engine_run_deferred(struct engine *e)
{
	bool did = false;
	struct list_node *n;

	/* Polling responses queued during this iteration go out together. */
	while ((n = list_pop_front(&e->flush))) {
		polling_flush(LIST_ENTRY(n, struct session, poll.flush_link));
		did = true;
	}
	/* Closed sessions: the layer above learns now, outside any call of
	 * its own, so that nothing it iterates changes under it. */
	while ((n = list_pop_front(&e->reap))) {
		struct session *s = LIST_ENTRY(n, struct session, reap_link);

		if (e->up->on_close)
			e->up->on_close(e->up_ud, s, s->close_reason);
		session_free(s);
		did = true;
	}
	return did;
}

bool engine_owns_path(const struct engine *e, const struct http_request *req)
{
	size_t n = strlen(e->path);

	/* "/socket.io" and everything below "/socket.io/", as the reference
	 * server matches its path prefix. */
	return req->path_len >= n && memcmp(req->path, e->path, n) == 0 &&
	       (req->path_len == n || req->path[n] == '/');
}

static void respond_error(struct conn *c, enum eio_error err, bool upgrade)
{
	char body[128];
	int n;

	if (upgrade) {
		/* The reference server answers a refused upgrade in plain text. */
		http1_respond(c, 400, NULL, "text/html", eio_error_message(err),
			      strlen(eio_error_message(err)));
		return;
	}
	n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", (int)err,
		     eio_error_message(err));
	http1_respond(c, eio_error_status(err), NULL, "application/json", body, (size_t)n);
}

static void handshake(struct engine *e, struct conn *c, const struct http_request *req,
		      size_t head_len, bool ws)
{
	char open[EIO_OPEN_PACKET_MAX];
	struct log_ctx lc = { c->peer, c->id };
	struct session *s;
	int n;

	if (ws && websocket_check(c, req) < 0)
		return;
	if (e->shutting_down || e->nsessions >= e->cfg->max_clients) {
		e->refused++;
		log_warn("session refused peer=%s: %zu sessions (max %llu)", c->peer, e->nsessions,
			 (unsigned long long)e->cfg->max_clients);
		http1_respond(c, 503, "Retry-After: 1\r\n", "text/plain; charset=utf-8",
			      "Too many clients\n", 17);
		return;
	}
	if (session_new(e, !ws, c->peer, &s) < 0) {
		http1_respond(c, 500, NULL, "text/plain", "Internal Server Error", 21);
		return;
	}
	s->conn_id = lc.conn;
	metrics_gauge_add(&pgpush_metrics, METRIC_CLIENTS,
			  ws ? METRICS_TRANSPORT_WEBSOCKET : METRICS_TRANSPORT_POLLING, 1);
	{
		/* For clients that cannot set the CONNECT auth payload. */
		const struct http_header *a = http_find_header(req, "authorization");

		if (a && a->value_len > 7 && a->value_len <= 8192 &&
		    strncasecmp(a->value, "Bearer ", 7) == 0)
			s->bearer = strndup(a->value + 7, a->value_len - 7);
	}
	n = eio_open_packet(open, sizeof(open), s->sid, !ws, e->cfg->ping_interval,
			    e->cfg->ping_timeout, e->cfg->max_payload);
	if (ws) {
		if (websocket_accept(c, req, head_len) < 0) {
			session_close(s, "handshake failed");
			return;
		}
		session_adopt_ws(s, c);
		log_msg_ctx(LOG_INFO, &lc, "client connected sid=%s transport=websocket clients=%zu",
			    s->sid, e->nsessions);
		session_send_text(s, open, (size_t)n);
	} else {
		log_msg_ctx(LOG_INFO, &lc, "client connected sid=%s transport=polling clients=%zu",
			    s->sid, e->nsessions);
		http1_respond(c, 200, "Cache-Control: no-store\r\n", "text/plain; charset=UTF-8", open,
			      (size_t)n);
	}
	if (!s->closed && e->up->on_open && e->up->on_open(e->up_ud, s) < 0)
		session_close(s, "out of memory");
}

/* The live session of sid, after checking its heartbeat with the clock:
 * a request may arrive before a late timer has fired. */
static struct session *lookup(struct engine *e, const char *sid, size_t sid_len)
{
	struct session *s = session_find(e, sid, sid_len);

	if (s && session_pong_overdue(s)) {
		log_info("ping timeout sid=%s", s->sid);
		session_close(s, "ping timeout");
		s = NULL;
	}
	return s;
}

void engine_handle_request(struct engine *e, struct conn *c, const struct http_request *req,
			   size_t head_len, const char *body, size_t body_len)
{
	bool upgrade = http_header_has_token(http_find_header(req, "Upgrade"), "websocket");
	const char *sid;
	size_t sid_len;
	enum eio_error err;
	struct session *s;
	bool ws;

	err = eio_check_request(req, upgrade, e->polling, &ws, &sid, &sid_len);
	if (err == EIO_ERR_NONE && c->origin_refused)
		err = EIO_ERR_FORBIDDEN;
	if (err == EIO_ERR_NONE && upgrade && !ws)
		err = EIO_ERR_BAD_REQUEST; /* an upgrade for the polling transport */
	if (err != EIO_ERR_NONE) {
		respond_error(c, err, upgrade);
		return;
	}
	if (!sid) {
		handshake(e, c, req, head_len, ws);
		return;
	}
	s = lookup(e, sid, sid_len);
	if (!s) {
		/* A GET racing the close packet its client POSTed first. */
		if (!ws && util_strieq(req->method, req->method_len, "GET") &&
		    session_tomb_take(e, sid, sid_len)) {
			http1_respond(c, 200, "Cache-Control: no-store\r\n",
				      "text/plain; charset=UTF-8", "6", 1);
			return;
		}
		respond_error(c, EIO_ERR_SESSION_ID_UNKNOWN, upgrade);
		return;
	}
	if (ws) {
		upgrade_request(s, c, req, head_len);
		return;
	}
	if (!s->polling) {
		/* The session has moved to a WebSocket (transport mismatch). */
		respond_error(c, EIO_ERR_BAD_REQUEST, false);
		return;
	}
	polling_request(s, c, req, body, body_len);
}

int engine_post_begin(struct engine *e, struct conn *c, const struct http_request *req)
{
	const char *sid;
	size_t n;
	struct session *s;

	/* Only a POST of this engine's path names one of its sessions. */
	if (!engine_owns_path(e, req) ||
	    !http_query_param(req->query, req->query_len, "sid", &sid, &n) ||
	    !(s = session_find(e, sid, n)) || !s->polling)
		return 0; /* the route answers it */
	return polling_post_begin(s, c);
}
