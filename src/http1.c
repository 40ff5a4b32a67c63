#include "autoconfig.h"

#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void readable(struct conn *c);
static void drained(struct conn *c);
static void timeout(struct conn *c);

static const struct conn_proto http1_proto = {
	.readable = readable,
	.drained = drained,
	.timeout = timeout,
};

static const struct config *cfg_of(const struct conn *c)
{
	return c->ctx->cfg;
}

void http1_start(struct conn *c)
{
	struct ev_loop *loop = c->ctx->loop;

	c->proto = &http1_proto;
	c->state = CONN_HTTP;
	ev_timer_set(&c->timer, cfg_of(c)->request_timeout / 1000.0, 0);
	ev_timer_start(loop, &c->timer);
	if (c->io->evented)
		ev_io_start(loop, &c->rio);
}

bool http1_can_respond(const struct conn *c)
{
	return c->state == CONN_HTTP || c->state == CONN_BODY || c->state == CONN_HELD;
}

/* Builds the head and, unless a HEAD request, the body (when body is not
 * NULL) into one buf; switches c to CONN_RESPOND. NULL when c was closed. */
static struct buf *response(struct conn *c, int status, const char *extra_headers,
			    const char *content_type, const void *body, uint64_t body_len)
{
	char head[1024];
	size_t copy = body && !c->head_only ? (size_t)body_len : 0;
	int n;
	struct buf *b;

	/* The responses that end a request the server gave up on. */
	if (status == 408)
		metrics_inc(&pgpush_metrics, METRIC_CLIENTS_DROPPED, METRICS_DROP_REQUEST_TIMEOUT);
	else if (status == 413 || status == 431)
		metrics_inc(&pgpush_metrics, METRIC_CLIENTS_DROPPED, METRICS_DROP_TOO_LARGE);
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: %s\r\n"
		     "Content-Length: %llu\r\n"
		     "Connection: close\r\n"
		     "%s%s"
		     "\r\n",
		     status, http_reason(status), content_type, (unsigned long long)body_len,
		     extra_headers ? extra_headers : "", c->cors ? c->cors : "");
	if (n < 0 || (size_t)n >= sizeof(head)) {
		conn_close(c, "response too large");
		return NULL;
	}
	b = buf_new((size_t)n + copy);
	if (!b) {
		conn_close(c, "out of memory");
		return NULL;
	}
	memcpy(b->data, head, (size_t)n);
	if (copy)
		memcpy(b->data + n, body, copy);
	log_debug("http %d peer=%s", status, c->peer);
	ev_timer_stop(c->ctx->loop, &c->timer);
	ev_io_stop(c->ctx->loop, &c->rio);
	c->state = CONN_RESPOND;
	return b;
}

void http1_respond(struct conn *c, int status, const char *extra_headers,
		   const char *content_type, const void *body, size_t body_len)
{
	struct buf *b;

	if (!http1_can_respond(c))
		return;
	b = response(c, status, extra_headers, content_type, body, body_len);
	if (!b)
		return;
	(void)conn_send(c, b, false);
	buf_unref(b);
}

void http1_respond_stream(struct conn *c, int status, const char *extra_headers,
			  const char *content_type, uint64_t body_len,
			  const struct conn_source *src, void *ud)
{
	struct buf *b;

	if (!http1_can_respond(c)) {
		src->done(ud);
		return;
	}
	b = response(c, status, extra_headers, content_type, NULL, body_len);
	if (!b) {
		src->done(ud);
		return;
	}
	if (conn_push(c, b, false) < 0) {
		buf_unref(b);
		src->done(ud);
		return;
	}
	buf_unref(b);
	if (c->head_only || body_len == 0) {
		src->done(ud);
		conn_flush(c);
		return;
	}
	(void)conn_stream(c, src, ud);
}

void http1_hold(struct conn *c)
{
	c->state = CONN_HELD;
	ev_timer_stop(c->ctx->loop, &c->timer);
	/* Keep reading: only to see the client go away. */
	if (c->io->evented)
		ev_io_start(c->ctx->loop, &c->rio);
}

/* Lingering close: shut our side, read what the client still sends, so
 * that the kernel does not reset the connection and destroy the response
 * before the client has read it. */
static void drained(struct conn *c)
{
	if (c->state == CONN_RESPOND)
		conn_linger(c);
}

static void timeout(struct conn *c)
{
	if (c->state == CONN_HTTP || c->state == CONN_BODY)
		http1_respond(c, 408, NULL, "text/plain; charset=utf-8", "Request Timeout\n", 16);
}

static void dispatch(struct conn *c)
{
	struct http_request req;
	int rc = http_parse_request(c->in, c->in_len, &req);

	if (rc <= 0) { /* cannot happen: parsed before */
		conn_close(c, "internal error");
		return;
	}
	ev_timer_stop(c->ctx->loop, &c->timer);
	ev_io_stop(c->ctx->loop, &c->rio);
	if (c->h && c->h->on_request)
		c->h->on_request(c, &req, (size_t)rc, c->body, c->body_len);
	else
		http1_respond(c, 404, NULL, "text/plain; charset=utf-8", "Not Found\n", 10);
}

/* After the head: decide whether a body follows (Content-Length only). */
static void start_body(struct conn *c, const struct http_request *req, size_t head_len)
{
	const struct http_header *cl = http_find_header(req, "Content-Length");
	uint64_t len = 0;
	size_t have;

	c->head_only = util_strieq(req->method, req->method_len, "HEAD");
	if (http_find_header(req, "Transfer-Encoding")) {
		http1_respond(c, 501, NULL, "text/plain; charset=utf-8",
			      "Transfer-Encoding is not supported\n", 35);
		return;
	}
	if (cl && !util_parse_u64(cl->value, cl->value_len, UINT64_MAX / 2, &len)) {
		http1_respond(c, 400, NULL, "text/plain; charset=utf-8", "Bad Content-Length\n", 19);
		return;
	}
	if (len == 0) {
		dispatch(c);
		return;
	}
	if (len > cfg_of(c)->max_payload) {
		http1_respond(c, 413, NULL, "text/plain; charset=utf-8", "Content Too Large\n", 18);
		return;
	}
	if (c->h && c->h->on_body_start && c->h->on_body_start(c, req) < 0)
		return;
	c->body = malloc(len);
	if (!c->body) {
		conn_close(c, "out of memory");
		return;
	}
	c->body_need = len;
	have = c->in_len - head_len;
	if (have > len)
		have = len; /* pipelined bytes after the body are ignored: we close */
	memcpy(c->body, c->in + head_len, have);
	c->body_len = have;
	if (c->body_len == c->body_need) {
		dispatch(c);
		return;
	}
	c->state = CONN_BODY;
}

static void read_body(struct conn *c)
{
	for (;;) {
		ssize_t r = conn_read(c, c->body + c->body_len, c->body_need - c->body_len);

		if (r < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(c, "read error");
			return;
		}
		if (r == 0) {
			conn_close(c, "closed before the whole body");
			return;
		}
		c->body_len += (size_t)r;
		if (c->body_len == c->body_need) {
			dispatch(c);
			return;
		}
	}
}

static void read_head(struct conn *c)
{
	size_t cap = cfg_of(c)->max_header_bytes;
	struct http_request req;

	if (!c->in && !(c->in = malloc(cap))) {
		conn_close(c, "out of memory");
		return;
	}
	for (;;) {
		ssize_t r;
		int rc;

		if (c->in_len == cap) {
			http1_respond(c, 431, NULL, "text/plain; charset=utf-8",
				      "Request Header Fields Too Large\n", 32);
			return;
		}
		r = conn_read(c, c->in + c->in_len, cap - c->in_len);
		if (r < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(c, "read error");
			return;
		}
		if (r == 0) {
			conn_close(c, "closed before a complete request");
			return;
		}
		c->in_len += (size_t)r;
		rc = http_parse_request(c->in, c->in_len, &req);
		if (rc == HTTP_INCOMPLETE)
			continue;
		switch (rc) {
		case HTTP_ERR_BAD_REQUEST:
			http1_respond(c, 400, NULL, "text/plain; charset=utf-8", "Bad Request\n", 12);
			return;
		case HTTP_ERR_TOO_MANY_HEADERS:
			http1_respond(c, 431, NULL, "text/plain; charset=utf-8",
				      "Request Header Fields Too Large\n", 32);
			return;
		case HTTP_ERR_VERSION:
			http1_respond(c, 505, NULL, "text/plain; charset=utf-8",
				      "HTTP Version Not Supported\n", 27);
			return;
		default:
			if (req.num_headers > cfg_of(c)->max_headers) {
				http1_respond(c, 431, NULL, "text/plain; charset=utf-8",
					      "Request Header Fields Too Large\n", 32);
				return;
			}
			start_body(c, &req, (size_t)rc);
			return;
		}
	}
}

static void readable(struct conn *c)
{
	switch (c->state) {
	case CONN_HTTP:
		read_head(c);
		break;
	case CONN_BODY:
		read_body(c);
		break;
	case CONN_HELD:
		conn_drain(c, "client went away during a poll");
		break;
	case CONN_LINGER:
		conn_drain(c, "response sent");
		break;
	default:
		ev_io_stop(c->ctx->loop, &c->rio);
		break;
	}
}
