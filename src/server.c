#include "autoconfig.h"

#include "server.h"
#include "files.h"
#include "staticfiles.h"
#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "pmd.h"
#include "util.h"
#include "websocket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BATCH 256

/* accept4 and the SOCK_ flags came together, but neither is POSIX:
 * without them, fcntl does the same after the call. */
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC) && !defined(PGPUSH_NO_SOCK_FLAGS)
#define SOCK_FLAGS (SOCK_NONBLOCK | SOCK_CLOEXEC)
#else
#define SOCK_FLAGS 0
#endif

static const char busy_response[] =
	"HTTP/1.1 503 Service Unavailable\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Length: 20\r\n"
	"Retry-After: 1\r\n"
	"Connection: close\r\n"
	"\r\n"
	"Too many connections";

/* ---- routes ---------------------------------------------------------------- */

/* --trusted-proxy: the client is X-Forwarded-For's when the socket's peer
 * is a trusted proxy; each request says so again (a proxy may reuse one
 * connection for several clients). */
static void set_client_addr(struct server *s, struct conn *c, const struct http_request *req)
{
	const struct http_header *h = http_find_header(req, "X-Forwarded-For");

	server_client_addr(&s->cfg->trusted_proxy_list, c->sock_peer, h ? h->value : NULL,
			   h ? h->value_len : 0, c->peer, sizeof(c->peer));
}

static bool peer_allowed(const struct cidr_list *l, const char *peer)
{
	struct sockaddr_storage ss;

	return server_peer_addr(peer, &ss) && cidr_list_match(l, (struct sockaddr *)&ss);
}

static void serve_metrics(struct server *s, struct conn *c)
{
	char *text = NULL;
	size_t len = 0, unsent = 0;
	struct list_node *n, *tmp;

	if (!peer_allowed(&s->cfg->metrics_allow_list, c->peer)) {
		struct log_ctx lc = { c->peer, c->id };

		log_msg_ctx(LOG_INFO, &lc, "GET /metrics refused: not in --metrics-allow");
		http1_respond(c, 403, NULL, "text/plain; charset=utf-8", "Forbidden\n", 10);
		return;
	}
	LIST_FOR_EACH_SAFE(n, tmp, &s->cx.live) {
		unsent += LIST_ENTRY(n, struct conn, link)->out_bytes;
	}
	metrics_set(&pgpush_metrics, METRIC_UNSENT_BYTES, 0, (double)unsent);
	if (s->metrics_refresh)
		s->metrics_refresh(s->metrics_ud);
	if (metrics_render_alloc(&pgpush_metrics, &text, &len) < 0) {
		http1_respond(c, 500, NULL, "text/plain; charset=utf-8", "Internal Server Error\n", 22);
		return;
	}
	http1_respond(c, 200, "Cache-Control: no-store\r\n", METRICS_CONTENT_TYPE, text, len);
	free(text);
}

static void on_beat(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *s = w->data;

	s->alive = ev_now(loop);
}

static void serve_live(struct server *s, struct conn *c)
{
	double age = ev_time() - s->alive;
	char body[96];
	bool ok = age <= SERVER_LIVE_BOUND;

	snprintf(body, sizeof(body), "{\"status\":\"%s\",\"loopAgeSeconds\":%.3f}",
		 ok ? "ok" : "stalled", age < 0 ? 0.0 : age);
	http1_respond(c, ok ? 200 : 503, "Cache-Control: no-store\r\n", "application/json", body,
		      strlen(body));
}

static void serve_ready(struct server *s, struct conn *c)
{
	char body[1024];
	bool ok = s->ready(s->ready_ud, server_peer_is_loopback(c->peer), body, sizeof(body));

	http1_respond(c, ok ? 200 : 503, "Cache-Control: no-store\r\n", "application/json", body,
		      strlen(body));
}

static bool path_is(const struct http_request *req, const char *p)
{
	return req->path_len == strlen(p) && memcmp(req->path, p, req->path_len) == 0;
}

static void serve_health(struct server *s, struct conn *c)
{
	char body[16384];
	bool ok = s->health(s->health_ud, server_peer_is_loopback(c->peer), body, sizeof(body));

	http1_respond(c, ok ? 200 : 503, "Cache-Control: no-store\r\n", "application/json", body,
		      strlen(body));
}

/* The Origin policy (both transports) and CORS (polling). A request
 * without an Origin is not from a browser's page: allowed. A browser's
 * Origin must name the Host it sent (the same origin), or be listed in
 * --allowed-origin; anything else is refused (engine.c answers 403, or
 * 400 "Forbidden" to an upgrade), so a page of another site can neither
 * open a WebSocket nor read a polling response (cross-site WebSocket
 * hijacking). CORS names the allowed origin, never "*" unless asked for
 * ("*" in --allowed-origin, or cors_any: the protocol test server). */
static void check_origin(struct server *s, struct conn *c, const struct http_request *req)
{
	const struct http_header *origin = http_find_header(req, "Origin");
	const struct http_header *host;
	enum config_origin listed;
	const char *list = s->cfg->allowed_origin && *s->cfg->allowed_origin ? s->cfg->allowed_origin : NULL;

	free(c->cors);
	c->cors = NULL;
	c->origin_refused = false;
	if (!origin)
		return;
	if (s->cors_any) {
		c->cors = strdup("Access-Control-Allow-Origin: *\r\n");
		return;
	}
	host = http_find_header(req, "Host");
	listed = config_origin_allowed(s->cfg, origin->value, origin->value_len);
	if (listed == CONFIG_ORIGIN_ANY &&
	    !(host && config_origin_matches_host(origin->value, origin->value_len, host->value,
						 host->value_len))) {
		c->cors = strdup("Access-Control-Allow-Origin: *\r\nVary: Origin\r\n");
		return;
	}
	if (listed == CONFIG_ORIGIN_NO &&
	    !(host && config_origin_matches_host(origin->value, origin->value_len, host->value,
						 host->value_len))) {
		int olen = (int)(origin->value_len > 100 ? 100 : origin->value_len);
		struct log_ctx lc = { c->peer, c->id };

		log_msg_ctx(LOG_WARN, &lc, "origin refused: Origin %.*s does not match Host %.*s%s; "
			    "allow it with --allowed-origin %s%s%.*s",
			    olen, origin->value,
			    host ? (int)(host->value_len > 100 ? 100 : host->value_len) : 6,
			    host ? host->value : "(none)",
			    list ? " and is not listed" : "", list ? list : "", list ? "," : "",
			    olen, origin->value);
		c->origin_refused = true;
		return;
	}
	if (origin->value_len < 200) {
		char buf[320];

		snprintf(buf, sizeof(buf),
			 "Access-Control-Allow-Origin: %.*s\r\n"
			 "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n",
			 (int)origin->value_len, origin->value);
		c->cors = strdup(buf);
	}
}

static void preflight(struct server *s, struct conn *c, const struct http_request *req)
{
	const struct http_header *h = http_find_header(req, "Access-Control-Request-Headers");
	char extra[512];

	if (c->origin_refused) {
		http1_respond(c, 403, NULL, "text/plain; charset=utf-8", "Forbidden\n", 10);
		return;
	}
	snprintf(extra, sizeof(extra),
		 "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n%s%.*s%s",
		 h && h->value_len < 256 ? "Access-Control-Allow-Headers: " : "",
		 h && h->value_len < 256 ? (int)h->value_len : 0, h ? h->value : "",
		 h && h->value_len < 256 ? "\r\n" : "");
	http1_respond(c, 204, extra, "text/plain", "", 0);
}

/* The engine whose path the request is under, or NULL. */
static struct engine *engine_for(struct server *s, const struct http_request *req)
{
	if (engine_owns_path(&s->sio_eng, req))
		return &s->sio_eng;
	if (s->has_engineio && engine_owns_path(&s->eio_eng, req))
		return &s->eio_eng;
	return NULL;
}

static int route_body_start(struct conn *c, const struct http_request *req)
{
	struct server *s = c->owner;
	struct engine *e;

	set_client_addr(s, c, req);
	/* Only a POST to an Engine.IO path can be a session's POST. */
	if (!util_strieq(req->method, req->method_len, "POST") || !(e = engine_for(s, req)))
		return 0;
	check_origin(s, c, req);
	if (c->origin_refused) {
		/* Answered now (403), so a refused page's POST never reaches a
		 * session and its body is not read. */
		conn_set_handlers(c, NULL, NULL);
		engine_handle_request(e, c, req, 0, NULL, 0);
		return -1;
	}
	return engine_post_begin(e, c, req);
}

static void route(struct conn *c, const struct http_request *req, size_t head_len,
		  const char *body, size_t body_len)
{
	struct server *s = c->owner;
	bool get = util_strieq(req->method, req->method_len, "GET");
	bool head = util_strieq(req->method, req->method_len, "HEAD");
	struct engine *e;

	set_client_addr(s, c, req);
	e = engine_for(s, req);
	if (e) {
		check_origin(s, c, req);
		if (util_strieq(req->method, req->method_len, "OPTIONS")) {
			preflight(s, c, req);
			return;
		}
		conn_set_handlers(c, NULL, NULL);
		engine_handle_request(e, c, req, head_len, body, body_len);
		return;
	}
	if (path_is(req, "/metrics") || path_is(req, "/livez") ||
	    (s->ready && path_is(req, "/readyz"))) {
		if (!get && !head) {
			http1_respond(c, 405, "Allow: GET, HEAD\r\n", "text/plain; charset=utf-8",
				      "Method Not Allowed\n", 19);
			return;
		}
		if (path_is(req, "/metrics"))
			serve_metrics(s, c);
		else if (path_is(req, "/livez"))
			serve_live(s, c);
		else
			serve_ready(s, c);
		return;
	}
	if (s->health && path_is(req, "/healthz")) {
		if (!get && !head) {
			http1_respond(c, 405, "Allow: GET, HEAD\r\n", "text/plain; charset=utf-8",
				      "Method Not Allowed\n", 19);
			return;
		}
		serve_health(s, c);
		return;
	}
	if (s->cfg->static_dir) {
		if (!get && !head) {
			http1_respond(c, 405, "Allow: GET, HEAD\r\n", "text/plain; charset=utf-8",
				      "Method Not Allowed\n", 19);
			return;
		}
		staticfiles_serve(c, s->cfg->static_dir, req);
		return;
	}
	http1_respond(c, 404, NULL, "text/plain; charset=utf-8", "Not Found\n", 10);
}

const struct conn_handlers server_router = {
	.on_body_start = route_body_start,
	.on_request = route,
};

/* ---- accept -------------------------------------------------------------------- */

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *s = w->data;

	if (!s->shutting_down)
		ev_io_start(loop, &s->accept_w);
}

static int accept_one(int lfd, struct sockaddr_storage *ss, socklen_t *sl)
{
	int fd;

#if defined(HAVE_ACCEPT4) && SOCK_FLAGS
	fd = accept4(lfd, (struct sockaddr *)ss, sl, SOCK_FLAGS);
#else
	fd = accept(lfd, (struct sockaddr *)ss, sl);
	if (fd >= 0 && util_set_nonblock(fd) < 0) {
		close(fd);
		errno = ECONNABORTED; /* try the next one */
		return -1;
	}
#endif
	return fd;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct server *s = w->data;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[64];
		struct conn *c;
		int fd = accept_one(s->lfd, &ss, &sl);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of descriptors: the pending connection would wake
				 * us forever. Free the spare, accept and close it at once
				 * so the client sees a close instead of a hang, then
				 * pause accepting briefly (libev "The special problem of
				 * accept()ing when you can't"). */
				if (s->spare_fd >= 0) {
					close(s->spare_fd);
					fd = accept(s->lfd, NULL, NULL);
					if (fd >= 0)
						close(fd);
					s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
				}
				log_error("accept: %s; pausing accepts for 100 ms", strerror(errno));
				ev_io_stop(loop, w);
				ev_timer_set(&s->accept_retry, 0.1, 0);
				ev_timer_start(loop, &s->accept_retry);
				return;
			}
			log_error("accept: %s", strerror(errno));
			return;
		}
		peer_format((struct sockaddr *)&ss, peer, sizeof(peer));
		if (s->cx.nconns >= s->cfg->max_clients || s->shutting_down) {
			/* Best effort, non-blocking: the socket buffer is empty.
			 * (Over TLS a plain answer is noise: just the close.) */
			if (!s->tls) {
				ssize_t r = send(fd, busy_response, sizeof(busy_response) - 1,
						 MSG_NOSIGNAL);

				(void)r;
			}
			close(fd);
			s->rejected++;
			log_warn("connection refused peer=%s: %zu connections (max %llu)", peer,
				 s->cx.nconns, (unsigned long long)s->cfg->max_clients);
			continue;
		}
		c = conn_new(&s->cx, fd, peer, s->tls ? &tls_conn_io : &conn_socket_io);
		if (!c) {
			close(fd);
			log_error("out of memory accepting peer=%s", peer);
			continue;
		}
		if (s->tls && tls_conn_start(s->tls, c) < 0) {
			conn_close(c, "out of memory");
			log_error("out of memory accepting peer=%s", peer);
			continue;
		}
		conn_set_handlers(c, &server_router, s);
		http1_start(c);
		s->accepted++;
	}
}

static int bind_listen(const char *host, unsigned port, char *bound, size_t boundlen)
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	char portstr[8];
	int fd = -1, rc, on = 1;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	rc = getaddrinfo(*host ? host : NULL, portstr, &hints, &res);
	if (rc != 0) {
		log_error("cannot resolve listen address '%s': %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_FLAGS, 0);
		if (fd < 0)
			continue;
		if (!SOCK_FLAGS && util_set_nonblock(fd) < 0) {
			close(fd);
			fd = -1;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0 &&
		    getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
			peer_format((struct sockaddr *)&ss, bound, boundlen);
			break;
		}
		log_error("cannot listen on %s:%u: %s", host, port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* ---- lifecycle -------------------------------------------------------------------- */

/* The conn context's deferred hook: the engines' work, then the end of a
 * shutdown once the last conn is gone. */
static bool deferred(void *ud)
{
	struct server *s = ud;
	bool did = engine_run_deferred(&s->sio_eng);

	if (s->has_engineio && engine_run_deferred(&s->eio_eng))
		did = true;
	if (!did && s->shutting_down && s->cx.nconns == 0)
		ev_break(s->loop, EVBREAK_ALL);
	return did;
}

int server_init(struct server *s, struct ev_loop *loop, const struct config *cfg,
		const struct server_options *opts)
{
	struct engine_options eo = {
		.path = "/socket.io",
		.polling = opts->polling,
		.up = &socketio_engine_handlers,
		.up_ud = &s->sio,
		.now = opts->now,
	};

	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->cfg = cfg;
	s->health = opts->health;
	s->health_ud = opts->health_ud;
	s->ready = opts->ready;
	s->ready_ud = opts->ready_ud;
	s->metrics_refresh = opts->metrics_refresh;
	s->metrics_ud = opts->metrics_ud;
	s->alive = ev_time();
	ev_timer_init(&s->beat, on_beat, SERVER_BEAT, SERVER_BEAT);
	s->beat.data = s;
	s->cors_any = opts->cors_any;
	s->lfd = -1;
	s->spare_fd = -1;
	conn_ctx_init(&s->cx, loop, cfg);
	s->cx.deferred = deferred;
	s->cx.deferred_ud = s;
	if (engine_init(&s->sio_eng, &s->cx, cfg, &eo) < 0 ||
	    socketio_init(&s->sio, &s->sio_eng, opts->app, opts->app_ud) < 0)
		return -1;
	if (opts->engineio_app) {
		eo.path = "/engine.io";
		eo.up = opts->engineio_app;
		eo.up_ud = opts->engineio_ud;
		if (engine_init(&s->eio_eng, &s->cx, cfg, &eo) < 0)
			return -1;
		s->has_engineio = true;
	}
	return 0;
}

int server_start(struct server *s, struct ev_loop *loop, const struct config *cfg,
		 const struct server_options *opts)
{
	char host[256];
	unsigned port;

	if (server_init(s, loop, cfg, opts) < 0) {
		log_error("out of memory");
		return -1;
	}
#ifdef __GLIBC__
	/* Snapshots, their frames and the responses that copy them can be
	 * megabytes. glibc serves such blocks with mmap, but raises that
	 * threshold each time one is freed, after which they come from the
	 * heap and their memory stays with the process when a client that
	 * held them is dropped. A fixed threshold keeps them mmapped: freed
	 * is returned. */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
	if (cfg->tls_cert && cfg->tls_key) {
		char err[512];

		s->tls = tls_server_new(cfg->tls_cert, cfg->tls_key, err, sizeof(err));
		if (!s->tls) {
			log_error("%s", err);
			return -1;
		}
	}
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (!config_split_listen(cfg->listen, host, &port))
		return -1;
	s->lfd = bind_listen(host, port, s->bound, sizeof(s->bound));
	if (s->lfd < 0)
		return -1;
	ev_io_init(&s->accept_w, on_accept, s->lfd, EV_READ);
	ev_timer_init(&s->accept_retry, on_accept_retry, 0.1, 0);
	s->accept_w.data = s->accept_retry.data = s;
	ev_io_start(loop, &s->accept_w);
	ev_timer_start(loop, &s->beat);
	log_info("listening on %s%s", s->bound, s->tls ? " (TLS)" : "");
	return 0;
}

void server_shutdown(struct server *s)
{
	struct list_node *n, *tmp;

	s->shutting_down = true;
	ev_timer_stop(s->loop, &s->beat);
	if (s->lfd >= 0) {
		ev_io_stop(s->loop, &s->accept_w);
		ev_timer_stop(s->loop, &s->accept_retry);
	}
	engine_shutdown(&s->sio_eng);
	if (s->has_engineio)
		engine_shutdown(&s->eio_eng);
	LIST_FOR_EACH_SAFE(n, tmp, &s->cx.live) {
		struct conn *c = LIST_ENTRY(n, struct conn, link);

		if (c->state == CONN_WS)
			websocket_close(c, 1001, "server shutting down");
		else if (c->state != CONN_RESPOND && c->state != CONN_LINGER)
			conn_close(c, "server shutting down");
	}
	conn_ctx_defer(&s->cx);
}

void server_free(struct server *s)
{
	engine_free(&s->sio_eng);
	if (s->has_engineio)
		engine_free(&s->eio_eng);
	socketio_free(&s->sio);
	s->cx.deferred = NULL;
	conn_ctx_free(&s->cx);
	ev_prepare_stop(s->loop, &s->cx.reaper);
	ev_timer_stop(s->loop, &s->beat);
	if (s->lfd >= 0) {
		ev_io_stop(s->loop, &s->accept_w);
		ev_timer_stop(s->loop, &s->accept_retry);
		close(s->lfd);
	}
	if (s->spare_fd >= 0)
		close(s->spare_fd);
	tls_server_free(s->tls); /* after every conn: they hold its BIO method */
	s->tls = NULL;
	pmd_cleanup();
}
