#include "autoconfig.h"

#include "conn.h"
#include "log.h"
#include "pmd.h"
#include "server.h"
#include "session.h"
#include "ws.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define CONN_READ_BUDGET (256u << 10) /* bytes per wakeup, for fairness */
#define CONN_LINGER_SECS 1.0          /* wait for the peer after closing */
#define CONN_IOV_MAX 64

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void on_ctimer(struct ev_loop *loop, ev_timer *w, int revents);
static void flush(struct conn *c);
static void ws_fail(struct conn *c, uint16_t code, const char *reason);

static const struct config *cfg_of(const struct conn *c)
{
	return c->srv->cfg;
}

struct conn *conn_new(struct server *srv, int fd, const char *peer)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->srv = srv;
	c->fd = fd;
	c->state = CONN_HTTP;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->opened = ev_now(srv->loop);
	ev_io_init(&c->rio, on_read, fd, EV_READ);
	ev_io_init(&c->wio, on_write, fd, EV_WRITE);
	ev_timer_init(&c->timer, on_timer, srv->cfg->request_timeout / 1000.0, 0);
	ev_timer_init(&c->ctimer, on_ctimer, 0, 0);
	c->rio.data = c->wio.data = c->timer.data = c->ctimer.data = c;
	ev_io_start(srv->loop, &c->rio);
	ev_timer_start(srv->loop, &c->timer);
	return c;
}

void conn_free(struct conn *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->outq_len; i++)
		buf_unref(c->outq[(c->outq_head + i) % c->outq_cap].b);
	free(c->outq);
	free(c->cors);
	if (c->ws)
		wslay_event_context_free(c->ws);
	free(c->in);
	free(c->body);
	free(c);
}

void conn_close(struct conn *c, const char *why)
{
	struct ev_loop *loop = c->srv->loop;
	struct session *s = c->sess;

	if (c->state == CONN_CLOSED)
		return;
	if (c->ws)
		log_debug("websocket closed peer=%s after=%.1fs reason=%s", c->peer,
			  ev_now(loop) - c->opened, why);
	else
		log_debug("connection closed peer=%s reason=%s", c->peer, why);
	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	ev_timer_stop(loop, &c->timer);
	ev_timer_stop(loop, &c->ctimer);
	close(c->fd);
	c->fd = -1;
	c->state = CONN_CLOSED;
	c->sess = NULL;
	if (s)
		session_conn_gone(s, c);
	server_conn_closed(c->srv, c);
}

/* ---- output queue ---------------------------------------------------- */

static struct conn_out *outq_at(struct conn *c, unsigned i)
{
	return &c->outq[(c->outq_head + i) % c->outq_cap];
}

static void outq_remove(struct conn *c, unsigned i)
{
	struct conn_out *e = outq_at(c, i);

	c->out_bytes -= e->b->len - e->off;
	buf_unref(e->b);
	for (; i + 1 < c->outq_len; i++)
		*outq_at(c, i) = *outq_at(c, i + 1);
	c->outq_len--;
}

/* The queue starts small and doubles up to CONN_OUTQ_MAX: an idle client
 * costs a few entries, not the cap. */
static int outq_grow(struct conn *c)
{
	unsigned cap = c->outq_cap ? c->outq_cap * 2 : CONN_OUTQ_INITIAL;
	struct conn_out *q = malloc(cap * sizeof(*q));

	if (!q)
		return -1;
	for (unsigned i = 0; i < c->outq_len; i++)
		q[i] = *outq_at(c, i);
	free(c->outq);
	c->outq = q;
	c->outq_cap = cap;
	c->outq_head = 0;
	return 0;
}

/* Returns 0, or -1 when the client is over its caps (and was closed). */
static int outq_push(struct conn *c, struct buf *b, bool snapshot)
{
	struct conn_out *e;

	if (snapshot) {
		/* Latest wins: an older snapshot not yet started is dropped; one
		 * partly written is finished so the stream stays well-formed. */
		for (unsigned i = 0; i < c->outq_len; i++) {
			e = outq_at(c, i);
			if (e->snapshot && e->off == 0) {
				outq_remove(c, i);
				break;
			}
		}
	}
	if (c->outq_len == CONN_OUTQ_MAX ||
	    c->out_bytes + b->len > cfg_of(c)->max_pending_bytes) {
		log_warn("client not reading, dropped peer=%s pending=%zu bytes", c->peer,
			 c->out_bytes);
		conn_close(c, "output overflow");
		return -1;
	}
	if (c->outq_len == c->outq_cap && outq_grow(c) < 0) {
		conn_close(c, "out of memory");
		return -1;
	}
	e = outq_at(c, c->outq_len++);
	e->b = buf_ref(b);
	e->off = 0;
	e->snapshot = snapshot;
	c->out_bytes += b->len;
	return 0;
}

static void after_flush(struct conn *c);

static void flush(struct conn *c)
{
	struct iovec iov[CONN_IOV_MAX];

	while (c->outq_len && c->state != CONN_CLOSED) {
		unsigned n = c->outq_len < CONN_IOV_MAX ? c->outq_len : CONN_IOV_MAX;
		ssize_t w;

		for (unsigned i = 0; i < n; i++) {
			struct conn_out *e = outq_at(c, i);

			iov[i].iov_base = e->b->data + e->off;
			iov[i].iov_len = e->b->len - e->off;
		}
		w = writev(c->fd, iov, (int)n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ev_io_start(c->srv->loop, &c->wio);
				return;
			}
			conn_close(c, "write error");
			return;
		}
		c->out_bytes -= (size_t)w;
		while (w > 0) {
			struct conn_out *e = outq_at(c, 0);
			size_t left = e->b->len - e->off;

			if ((size_t)w < left) {
				e->off += (size_t)w;
				break;
			}
			w -= (ssize_t)left;
			buf_unref(e->b);
			c->outq_head = (c->outq_head + 1) % c->outq_cap;
			c->outq_len--;
		}
	}
	if (c->state == CONN_CLOSED)
		return;
	ev_io_stop(c->srv->loop, &c->wio);
	after_flush(c);
}

void conn_send_frame(struct conn *c, struct buf *frame, enum conn_frame_kind kind)
{
	if (c->state != CONN_WS || c->closing)
		return;
	if (outq_push(c, frame, kind == CONN_FRAME_SNAPSHOT) < 0)
		return;
	if (!ev_is_active(&c->wio))
		flush(c);
}

/* ---- HTTP responses --------------------------------------------------- */

void conn_respond(struct conn *c, int status, const char *extra_headers,
		  const char *content_type, const void *body, size_t body_len)
{
	char head[1024];
	bool head_only = c->head_only;
	int n;
	struct buf *b;

	if (c->state == CONN_CLOSED || c->state == CONN_WS || c->state == CONN_RESPOND ||
	    c->state == CONN_LINGER)
		return;
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "Connection: close\r\n"
		     "%s%s"
		     "\r\n",
		     status, http_reason(status), content_type, body_len,
		     extra_headers ? extra_headers : "", c->cors ? c->cors : "");
	if (n < 0 || (size_t)n >= sizeof(head)) {
		conn_close(c, "response too large");
		return;
	}
	if (head_only)
		body_len = 0;
	b = buf_new((size_t)n + body_len);
	if (!b) {
		conn_close(c, "out of memory");
		return;
	}
	memcpy(b->data, head, (size_t)n);
	if (body_len)
		memcpy(b->data + n, body, body_len);
	log_debug("http %d peer=%s", status, c->peer);
	ev_timer_stop(c->srv->loop, &c->timer);
	ev_io_stop(c->srv->loop, &c->rio);
	c->state = CONN_RESPOND;
	if (outq_push(c, b, false) == 0)
		flush(c);
	buf_unref(b);
}

void conn_hold(struct conn *c)
{
	c->state = CONN_HELD;
	ev_timer_stop(c->srv->loop, &c->timer);
	/* Keep reading: only to see the client go away. */
	ev_io_start(c->srv->loop, &c->rio);
}

/* The close handshake is over (or abandoned) and everything is written:
 * shut our side and drain briefly, so that unread input does not make the
 * kernel reset the connection and destroy our close frame in flight. */
static void ws_finish(struct conn *c)
{
	struct ev_loop *loop = c->srv->loop;

	shutdown(c->fd, SHUT_WR);
	c->state = CONN_LINGER;
	ev_io_start(loop, &c->rio);
	ev_timer_stop(loop, &c->ctimer);
	ev_timer_set(&c->ctimer, CONN_LINGER_SECS, 0);
	ev_timer_start(loop, &c->ctimer);
}

static void after_flush(struct conn *c)
{
	struct ev_loop *loop = c->srv->loop;

	if (c->state == CONN_RESPOND) {
		/* Lingering close: shut our side, read what the client still
		 * sends, so that the kernel does not reset the connection and
		 * destroy the response before the client has read it. */
		shutdown(c->fd, SHUT_WR);
		c->state = CONN_LINGER;
		ev_io_start(loop, &c->rio);
		ev_timer_set(&c->ctimer, CONN_LINGER_SECS, 0);
		ev_timer_start(loop, &c->ctimer);
		return;
	}
	if (c->state == CONN_WS && c->ws && !wslay_event_want_read(c->ws))
		ws_finish(c);
}

/* ---- WebSocket ---------------------------------------------------------- */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
			  int flags, void *ud)
{
	struct conn *c = ud;
	ssize_t r;

	if (c->state != CONN_WS) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	if (c->in_off < c->in_len) {
		size_t n = c->in_len - c->in_off;

		if (n > len)
			n = len;
		memcpy(buf, c->in + c->in_off, n);
		c->in_off += n;
		if (c->in_off == c->in_len) {
			free(c->in);
			c->in = NULL;
			c->in_off = c->in_len = 0;
		}
		return (ssize_t)n;
	}
	if (c->ws_read_budget == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > c->ws_read_budget)
		len = c->ws_read_budget;
	do {
		r = recv(c->fd, buf, len, 0);
	} while (r < 0 && errno == EINTR);
	if (r > 0) {
		c->ws_read_budget -= (size_t)r;
		return r;
	}
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	} else {
		c->recv_failed = true; /* EOF or a socket error, not the peer's framing */
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return -1;
}

/* wslay writes only control frames (pong, close): they join the same queue
 * as our frames, so ordering holds and wslay never sees EAGAIN. */
static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
			  int flags, void *ud)
{
	struct conn *c = ud;
	struct buf *b;

	if (c->state != CONN_WS || !(b = buf_from(data, len))) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	if (outq_push(c, b, false) < 0) {
		buf_unref(b);
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	buf_unref(b);
	return (ssize_t)len;
}

/* A message with RSV1 (negotiated permessage-deflate): inflate it with the
 * server's one inflater, never past --max-payload (zip bombs), and check
 * text for UTF-8 ourselves, since wslay skips that for compressed frames. */
static void ws_compressed_message(struct conn *c, const struct wslay_event_on_msg_recv_arg *arg)
{
	uint8_t *out;
	size_t out_len;
	int rc;

	if (!c->srv->inflater && pmd_inflater_new(false, &c->srv->inflater) < 0) {
		conn_ws_close(c, 1011, "out of memory");
		return;
	}
	rc = pmd_inflate(c->srv->inflater, arg->msg, arg->msg_length, cfg_of(c)->max_payload,
			 &out, &out_len);
	if (rc == PMD_ERR_TOO_BIG) {
		conn_ws_close(c, 1009, "message too big");
		return;
	}
	if (rc < 0) {
		conn_ws_close(c, rc == PMD_ERR_CORRUPT ? 1007 : 1011,
			      rc == PMD_ERR_CORRUPT ? "bad compressed data" : "out of memory");
		return;
	}
	if (arg->opcode == WSLAY_TEXT_FRAME && !util_utf8_valid(out, out_len)) {
		free(out);
		conn_ws_close(c, 1007, "invalid UTF-8");
		return;
	}
	if (c->sess)
		session_ws_message(c->sess, c, arg->opcode == WSLAY_BINARY_FRAME, out, out_len);
	free(out);
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
		      void *ud)
{
	struct conn *c = ud;

	if (c->state != CONN_WS || c->closing)
		return;
	switch (arg->opcode) {
	case WSLAY_TEXT_FRAME:
	case WSLAY_BINARY_FRAME:
		if (arg->rsv & WSLAY_RSV1_BIT) {
			ws_compressed_message(c, arg);
			break;
		}
		if (c->sess)
			session_ws_message(c->sess, c, arg->opcode == WSLAY_BINARY_FRAME,
					   arg->msg, arg->msg_length);
		break;
	case WSLAY_CONNECTION_CLOSE:
		log_debug("close received peer=%s code=%u", c->peer, arg->status_code);
		break;
	default:
		break;
	}
}

static void ws_settle(struct conn *c)
{
	if (c->state != CONN_WS)
		return;
	if (wslay_event_send(c->ws) < 0) {
		conn_close(c, "websocket send error");
		return;
	}
	if (!ev_is_active(&c->wio))
		flush(c);
	if (c->state == CONN_WS && !wslay_event_want_read(c->ws)) {
		ev_io_stop(c->srv->loop, &c->rio);
		if (c->outq_len == 0)
			ws_finish(c);
	}
}

/* Sends a close frame of our own, bypassing wslay (whose state no longer
 * allows it), then closes once it is written. */
static void ws_fail(struct conn *c, uint16_t code, const char *reason)
{
	struct session *s = c->sess;
	uint8_t payload[2 + 123];
	size_t rlen = strnlen(reason, 123);
	struct buf *b;

	if (c->closing) {
		conn_close(c, reason);
		return;
	}
	c->closing = true;
	c->sess = NULL;
	if (s)
		session_conn_gone(s, c);
	log_info("websocket protocol error peer=%s: %s", c->peer, reason);
	payload[0] = (uint8_t)(code >> 8);
	payload[1] = (uint8_t)code;
	memcpy(payload + 2, reason, rlen);
	b = ws_frame(WS_OP_CLOSE, payload, 2 + rlen);
	wslay_event_shutdown_read(c->ws);
	wslay_event_shutdown_write(c->ws);
	if (!b || outq_push(c, b, false) < 0) {
		buf_unref(b);
		conn_close(c, reason);
		return;
	}
	buf_unref(b);
	ev_timer_stop(c->srv->loop, &c->ctimer);
	ev_timer_set(&c->ctimer, CONN_LINGER_SECS, 0);
	ev_timer_start(c->srv->loop, &c->ctimer);
	flush(c);
}

void conn_ws_close(struct conn *c, uint16_t code, const char *reason)
{
	struct session *s = c->sess;

	if (c->state != CONN_WS || c->closing)
		return;
	c->closing = true;
	/* The session learns now that this transport is gone. */
	c->sess = NULL;
	if (s)
		session_conn_gone(s, c);
	wslay_event_queue_close(c->ws, code, (const uint8_t *)reason,
				strnlen(reason, 123));
	ev_timer_stop(c->srv->loop, &c->timer);
	ev_timer_stop(c->srv->loop, &c->ctimer);
	ev_timer_set(&c->ctimer, CONN_LINGER_SECS, 0);
	ev_timer_start(c->srv->loop, &c->ctimer);
	ws_settle(c);
}

int conn_check_upgrade(struct conn *c, const struct http_request *req)
{
	const char *key;
	size_t key_len;

	switch (ws_check_upgrade(req, &key, &key_len)) {
	case WS_HS_OK:
		return 0;
	case WS_HS_BAD_VERSION:
		conn_respond(c, 426, "Sec-WebSocket-Version: 13\r\n", "text/plain; charset=utf-8",
			     "Unsupported WebSocket version\n", 30);
		return -1;
	default:
		conn_respond(c, 400, NULL, "text/html", "Bad request", 11);
		return -1;
	}
}

int conn_upgrade(struct conn *c, const struct http_request *req, size_t head_len)
{
	static const struct wslay_event_callbacks callbacks = {
		.recv_callback = ws_recv_cb,
		.send_callback = ws_send_cb,
		.on_msg_recv_callback = ws_msg_cb,
	};
	char accept[WS_ACCEPT_LEN + 1];
	char ext[PMD_RESPONSE_MAX + 32];
	char resp[512];
	const char *key;
	size_t key_len;
	int n, on = 1;
	struct buf *b;

	if (conn_check_upgrade(c, req) < 0)
		return -1;
	ws_check_upgrade(req, &key, &key_len);
	if (ws_accept_key(key, key_len, accept) < 0 ||
	    wslay_event_context_server_init(&c->ws, &callbacks, c) != 0) {
		conn_respond(c, 500, NULL, "text/plain", "Internal Server Error", 21);
		return -1;
	}
	wslay_event_config_set_max_recv_msg_length(c->ws, cfg_of(c)->max_payload);
	/* permessage-deflate (RFC 7692): accepted only as pmd_negotiate words
	 * it, without context takeover either way, so that the same compressed
	 * frame serves every client and no client costs a compressor. An offer
	 * we do not take is declined by not answering it. */
	ext[0] = '\0';
	if (cfg_of(c)->permessage_deflate) {
		const struct http_header *h = http_find_header(req, "Sec-WebSocket-Extensions");
		struct pmd_params params;
		char response[PMD_RESPONSE_MAX];

		if (h && pmd_negotiate(h->value, h->value_len, &params, response,
				       sizeof(response)) == PMD_NEG_ACCEPTED) {
			c->deflate = true;
			wslay_event_config_set_allowed_rsv_bits(c->ws, WSLAY_RSV1_BIT);
			snprintf(ext, sizeof(ext), "Sec-WebSocket-Extensions: %s\r\n", response);
		}
	}
	n = snprintf(resp, sizeof(resp),
		     "HTTP/1.1 101 Switching Protocols\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Accept: %s\r\n"
		     "%s"
		     "\r\n", accept, ext);
	b = buf_from(resp, (size_t)n);
	if (!b) {
		conn_close(c, "out of memory");
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	ev_timer_stop(c->srv->loop, &c->timer);
	c->state = CONN_WS;
	c->opened = ev_now(c->srv->loop);
	/* Bytes after the head belong to the WebSocket: wslay reads them first. */
	c->in_off = head_len;
	if (c->in_off >= c->in_len) {
		free(c->in);
		c->in = NULL;
		c->in_off = c->in_len = 0;
	}
	if (outq_push(c, b, false) < 0) {
		buf_unref(b);
		return -1;
	}
	buf_unref(b);
	ev_io_start(c->srv->loop, &c->rio);
	if (c->in)
		ev_feed_event(c->srv->loop, &c->rio, EV_READ);
	flush(c);
	return c->state == CONN_WS ? 0 : -1;
}

/* ---- HTTP requests ----------------------------------------------------- */

static void dispatch(struct conn *c)
{
	struct http_request req;
	int rc = http_parse_request(c->in, c->in_len, &req);

	if (rc <= 0) { /* cannot happen: parsed before */
		conn_close(c, "internal error");
		return;
	}
	ev_timer_stop(c->srv->loop, &c->timer);
	ev_io_stop(c->srv->loop, &c->rio);
	server_route(c->srv, c, &req, (size_t)rc, c->body, c->body_len);
}

/* After the head: decide whether a body follows (Content-Length only). */
static void start_body(struct conn *c, const struct http_request *req, size_t head_len)
{
	const struct http_header *cl = http_find_header(req, "Content-Length");
	uint64_t len = 0;
	size_t have;

	c->head_len = head_len;
	c->head_only = util_strieq(req->method, req->method_len, "HEAD");
	if (http_find_header(req, "Transfer-Encoding")) {
		conn_respond(c, 501, NULL, "text/plain; charset=utf-8",
			     "Transfer-Encoding is not supported\n", 35);
		return;
	}
	if (cl && !util_parse_u64(cl->value, cl->value_len, UINT64_MAX / 2, &len)) {
		conn_respond(c, 400, NULL, "text/plain; charset=utf-8", "Bad Content-Length\n", 19);
		return;
	}
	if (len == 0) {
		dispatch(c);
		return;
	}
	if (len > cfg_of(c)->max_payload) {
		conn_respond(c, 413, NULL, "text/plain; charset=utf-8", "Content Too Large\n", 18);
		return;
	}
	if (util_strieq(req->method, req->method_len, "POST") &&
	    session_post_begin(c->srv, c, req) < 0)
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
		ssize_t r = recv(c->fd, c->body + c->body_len, c->body_need - c->body_len, 0);

		if (r < 0 && errno == EINTR)
			continue;
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

static void read_http(struct conn *c)
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
			conn_respond(c, 431, NULL, "text/plain; charset=utf-8",
				     "Request Header Fields Too Large\n", 32);
			return;
		}
		r = recv(c->fd, c->in + c->in_len, cap - c->in_len, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
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
			conn_respond(c, 400, NULL, "text/plain; charset=utf-8", "Bad Request\n", 12);
			return;
		case HTTP_ERR_TOO_MANY_HEADERS:
			conn_respond(c, 431, NULL, "text/plain; charset=utf-8",
				     "Request Header Fields Too Large\n", 32);
			return;
		case HTTP_ERR_VERSION:
			conn_respond(c, 505, NULL, "text/plain; charset=utf-8",
				     "HTTP Version Not Supported\n", 27);
			return;
		default:
			if (req.num_headers > cfg_of(c)->max_headers) {
				conn_respond(c, 431, NULL, "text/plain; charset=utf-8",
					     "Request Header Fields Too Large\n", 32);
				return;
			}
			start_body(c, &req, (size_t)rc);
			return;
		}
	}
}

/* Reads and discards; closes on EOF or error. */
static void drain(struct conn *c, const char *why)
{
	char sink[4096];

	for (;;) {
		ssize_t r = recv(c->fd, sink, sizeof(sink), 0);

		if (r > 0 && c->state == CONN_LINGER)
			continue;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* EOF, an error, or bytes on a held GET (it may send none). */
		conn_close(c, why);
		return;
	}
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	switch (c->state) {
	case CONN_HTTP:
		read_http(c);
		break;
	case CONN_BODY:
		read_body(c);
		break;
	case CONN_HELD:
		drain(c, "client went away during a poll");
		break;
	case CONN_LINGER:
		drain(c, "response sent");
		break;
	case CONN_WS: {
		int rc;

		c->ws_read_budget = CONN_READ_BUDGET;
		c->recv_failed = false;
		rc = wslay_event_recv(c->ws);
		if (c->state != CONN_WS)
			return; /* closed from a callback (a session closed it) */
		if (rc < 0 && !c->recv_failed && rc != WSLAY_ERR_NOMEM) {
			/* wslay refused a frame while parsing its header (a
			 * fragmented or oversized control frame, a 2^63 length)
			 * and reports it as a callback failure without sending
			 * anything: answer 1002 ourselves (RFC 6455 §7.4.1). */
			ws_fail(c, 1002, "protocol error");
			return;
		}
		if (rc < 0) {
			conn_close(c, "connection lost");
			return;
		}
		ws_settle(c);
		break;
	}
	default:
		ev_io_stop(loop, w);
		break;
	}
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	flush(c);
	if (c->state == CONN_WS)
		ws_settle(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;

	if (c->state == CONN_HTTP || c->state == CONN_BODY)
		conn_respond(c, 408, NULL, "text/plain; charset=utf-8", "Request Timeout\n", 16);
}

static void on_ctimer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;

	/* Linger after our close frame or response ended: stop waiting. */
	conn_close(c, c->state == CONN_LINGER ? "response sent" : "close timeout");
}
