#include "autoconfig.h"

#include "server.h"
#include "conn.h"
#include "files.h"
#include "log.h"
#include "pmd.h"
#include "session.h"
#include "sio.h"
#include "util.h"
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BATCH 256

static const char busy_response[] =
	"HTTP/1.1 503 Service Unavailable\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Length: 20\r\n"
	"Retry-After: 1\r\n"
	"Connection: close\r\n"
	"\r\n"
	"Too many connections";

static void format_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(out, outlen, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(out, outlen, "[%s]:%u", host, port);
	} else {
		snprintf(out, outlen, "unix");
	}
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents);

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *s = w->data;

	if (!s->shutting_down)
		ev_io_start(loop, &s->accept_w);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct server *s = w->data;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[64];
		struct conn *c;
		int fd;

#ifdef HAVE_ACCEPT4
		fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
		fd = accept(s->lfd, (struct sockaddr *)&ss, &sl);
		if (fd >= 0 && util_set_nonblock(fd) < 0) {
			close(fd);
			continue;
		}
#endif
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
		format_addr((struct sockaddr *)&ss, peer, sizeof(peer));
		if (s->nconns >= s->cfg->max_clients || s->shutting_down) {
			/* Best effort, non-blocking: the socket buffer is empty. */
			ssize_t r = send(fd, busy_response, sizeof(busy_response) - 1, MSG_NOSIGNAL);

			(void)r;
			close(fd);
			s->rejected++;
			log_warn("connection refused peer=%s: %zu connections (max %llu)", peer,
				 s->nconns, (unsigned long long)s->cfg->max_clients);
			continue;
		}
		c = conn_new(s, fd, peer);
		if (!c) {
			close(fd);
			log_error("out of memory accepting peer=%s", peer);
			continue;
		}
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		s->accepted++;
	}
}

static void on_reap(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct server *s = w->data;

	/* Polling responses queued during this iteration go out together. */
	while (s->flush_list) {
		struct session *f = s->flush_list;

		s->flush_list = f->flush_next;
		session_flush(f);
	}
	while (s->session_reap) {
		struct session *f = s->session_reap;

		s->session_reap = f->reap_next;
		session_free(f);
	}
	while (s->reap) {
		struct conn *c = s->reap;

		s->reap = c->next;
		conn_free(c);
	}
	if (s->flush_list || s->session_reap)
		return; /* flushing closed more: run again next iteration */
	ev_prepare_stop(loop, w);
	if (s->shutting_down && s->nconns == 0)
		ev_break(loop, EVBREAK_ALL);
}

void server_conn_closed(struct server *s, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	c->prev = NULL;
	c->next = s->reap;
	s->reap = c;
	ev_prepare_start(s->loop, &s->reaper);
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

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0 &&
		    getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
			format_addr((struct sockaddr *)&ss, bound, boundlen);
			break;
		}
		log_error("cannot listen on %s:%u: %s", host, port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

int server_start(struct server *s, struct ev_loop *loop, const struct config *cfg,
		 const struct server_options *opts)
{
	char host[256];
	unsigned port;

	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->cfg = cfg;
	s->app = opts->app;
	s->app_ud = opts->app_ud;
	s->health = opts->health;
	s->health_ud = opts->health_ud;
	s->polling = opts->polling;
	s->engineio_path = opts->engineio_path;
	s->cors_any = opts->cors_any;
	s->lfd = -1;
	session_hb_init(s);
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	s->tok = sio_tokener_new();
	s->ping_frame = ws_frame(WS_OP_TEXT, "2", 1);
	if (!s->tok || !s->ping_frame) {
		log_error("out of memory");
		return -1;
	}
	if (!config_split_listen(cfg->listen, host, &port))
		return -1;
	s->lfd = bind_listen(host, port, s->bound, sizeof(s->bound));
	if (s->lfd < 0)
		return -1;
	ev_io_init(&s->accept_w, on_accept, s->lfd, EV_READ);
	ev_timer_init(&s->accept_retry, on_accept_retry, 0.1, 0);
	ev_prepare_init(&s->reaper, on_reap);
	s->accept_w.data = s->accept_retry.data = s->reaper.data = s;
	ev_io_start(loop, &s->accept_w);
	log_info("listening on %s", s->bound);
	return 0;
}

void server_shutdown(struct server *s)
{
	struct conn *c, *next;

	s->shutting_down = true;
	ev_io_stop(s->loop, &s->accept_w);
	ev_timer_stop(s->loop, &s->accept_retry);
	for (size_t b = 0; b < SERVER_SESSION_BUCKETS; b++) {
		while (s->sessions[b])
			session_close(s->sessions[b], "server shutting down");
	}
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->state == CONN_WS)
			conn_ws_close(c, 1001, "server shutting down");
		else if (c->state != CONN_RESPOND && c->state != CONN_LINGER)
			conn_close(c, "server shutting down");
	}
	ev_prepare_start(s->loop, &s->reaper);
}

void server_free(struct server *s)
{
	for (size_t b = 0; b < SERVER_SESSION_BUCKETS; b++) {
		while (s->sessions[b])
			session_close(s->sessions[b], "server stopped");
	}
	while (s->session_reap) {
		struct session *f = s->session_reap;

		s->session_reap = f->reap_next;
		session_free(f);
	}
	s->flush_list = NULL;
	while (s->conns)
		conn_close(s->conns, "server stopped");
	while (s->reap) {
		struct conn *c = s->reap;

		s->reap = c->next;
		conn_free(c);
	}
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->spare_fd >= 0)
		close(s->spare_fd);
	if (s->tok)
		json_tokener_free(s->tok);
	buf_unref(s->ping_frame);
	pmd_inflater_free(s->inflater);
	pmd_cleanup();
	ev_io_stop(s->loop, &s->accept_w);
	ev_timer_stop(s->loop, &s->accept_retry);
	ev_prepare_stop(s->loop, &s->reaper);
	session_hb_stop(s);
}

/* ---- routes ---------------------------------------------------------------- */

static bool path_is(const struct http_request *req, const char *p)
{
	return req->path_len == strlen(p) && memcmp(req->path, p, req->path_len) == 0;
}

/* Matches "/socket.io" and everything below "/socket.io/", as the
 * reference server matches its path prefix. */
static bool path_under(const struct http_request *req, const char *prefix)
{
	size_t n = strlen(prefix);

	return req->path_len >= n && memcmp(req->path, prefix, n) == 0 &&
	       (req->path_len == n || req->path[n] == '/');
}

static void serve_health(struct server *s, struct conn *c)
{
	char body[1024];
	bool ok = s->health(s->health_ud, true, body, sizeof(body));

	conn_respond(c, ok ? 200 : 503, "Cache-Control: no-store\r\n", "application/json",
		     body, strlen(body));
}

static void serve_file(struct server *s, struct conn *c, const struct http_request *req)
{
	char rel[1024];
	struct buf *body = NULL;
	long n = files_map_path(req->path, req->path_len, rel, sizeof(rel));
	int rc;

	if (n < 0) {
		conn_respond(c, 400, NULL, "text/plain; charset=utf-8", "Bad Request\n", 12);
		return;
	}
	rc = files_read(s->cfg->static_dir, rel, &body);
	if (rc == FILES_ERR_NOT_FOUND) {
		conn_respond(c, 404, NULL, "text/plain; charset=utf-8", "Not Found\n", 10);
		return;
	}
	if (rc < 0) {
		conn_respond(c, 500, NULL, "text/plain; charset=utf-8", "Internal Server Error\n", 22);
		return;
	}
	conn_respond(c, 200, "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n",
		     files_content_type(rel), body->data, body->len);
	buf_unref(body);
}

/* CORS (polling) and the Origin allowlist (both transports). */
static void check_origin(struct server *s, struct conn *c, const struct http_request *req)
{
	const struct http_header *origin = http_find_header(req, "Origin");

	free(c->cors);
	c->cors = NULL;
	if (!origin)
		return;
	if (!config_origin_allowed(s->cfg, origin->value, origin->value_len)) {
		log_info("origin refused peer=%s origin=%.*s", c->peer,
			 (int)(origin->value_len > 100 ? 100 : origin->value_len), origin->value);
		c->origin_refused = true;
		return;
	}
	if (s->cors_any || !s->cfg->allowed_origin) {
		c->cors = strdup("Access-Control-Allow-Origin: *\r\n");
	} else if (origin->value_len < 200) {
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
		conn_respond(c, 403, NULL, "text/plain; charset=utf-8", "Forbidden\n", 10);
		return;
	}
	snprintf(extra, sizeof(extra),
		 "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n%s%.*s%s",
		 h && h->value_len < 256 ? "Access-Control-Allow-Headers: " : "",
		 h && h->value_len < 256 ? (int)h->value_len : 0, h ? h->value : "",
		 h && h->value_len < 256 ? "\r\n" : "");
	conn_respond(c, 204, extra, "text/plain", "", 0);
}

void server_route(struct server *s, struct conn *c, const struct http_request *req,
		  size_t head_len, const char *body, size_t body_len)
{
	bool get = util_strieq(req->method, req->method_len, "GET");
	bool head = util_strieq(req->method, req->method_len, "HEAD");
	enum session_kind kind;

	if (path_under(req, "/socket.io")) {
		kind = SESSION_SOCKETIO;
	} else if (s->engineio_path && path_under(req, "/engine.io")) {
		kind = SESSION_ENGINEIO;
	} else if (s->health && path_is(req, "/healthz")) {
		if (!get && !head) {
			conn_respond(c, 405, "Allow: GET, HEAD\r\n", "text/plain; charset=utf-8",
				     "Method Not Allowed\n", 19);
			return;
		}
		serve_health(s, c);
		return;
	} else if (s->cfg->static_dir) {
		if (!get && !head) {
			conn_respond(c, 405, "Allow: GET, HEAD\r\n", "text/plain; charset=utf-8",
				     "Method Not Allowed\n", 19);
			return;
		}
		serve_file(s, c, req);
		return;
	} else {
		conn_respond(c, 404, NULL, "text/plain; charset=utf-8", "Not Found\n", 10);
		return;
	}
	check_origin(s, c, req);
	if (util_strieq(req->method, req->method_len, "OPTIONS")) {
		preflight(s, c, req);
		return;
	}
	session_handle_request(s, c, kind, req, head_len, body, body_len);
}
