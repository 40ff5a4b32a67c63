#include "autoconfig.h"

#include "server.h"
#include "conn.h"
#include "log.h"
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

	while (s->reap) {
		struct conn *c = s->reap;

		s->reap = c->next;
		conn_free(c);
	}
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
		 struct hub *hub, server_health_fn *health, void *health_ud)
{
	char host[256];
	unsigned port;

	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->cfg = cfg;
	s->hub = hub;
	s->health = health;
	s->health_ud = health_ud;
	s->lfd = -1;
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
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->state == CONN_WS)
			conn_ws_close(c, 1001, "server shutting down");
		else
			conn_close(c, "server shutting down");
	}
	ev_prepare_start(s->loop, &s->reaper);
}

void server_free(struct server *s)
{
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
	ev_io_stop(s->loop, &s->accept_w);
	ev_timer_stop(s->loop, &s->accept_retry);
	ev_prepare_stop(s->loop, &s->reaper);
}
