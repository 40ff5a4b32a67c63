#include "autoconfig.h"

#include "conn.h"
#include "eio.h"
#include "files.h"
#include "http.h"
#include "hub.h"
#include "log.h"
#include "server.h"
#include "sio.h"
#include "snapshot.h"
#include "ws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define CONN_READ_BUDGET (256u << 10) /* bytes per wakeup, for fairness */
#define CONN_LINGER_SECS 1.0          /* wait for the peer after closing */
#define CONN_IOV_MAX 64

static const char socket_io_path[] = "/socket.io/";

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void on_ctimer(struct ev_loop *loop, ev_timer *w, int revents);
static void flush(struct conn *c);

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
		buf_unref(c->outq[(c->outq_head + i) % CONN_OUTQ_MAX].b);
	if (c->ws)
		wslay_event_context_free(c->ws);
	free(c->in);
	free(c);
}

void conn_close(struct conn *c, const char *why)
{
	struct ev_loop *loop = c->srv->loop;

	if (c->state == CONN_CLOSED)
		return;
	if (c->ws)
		log_info("client disconnected peer=%s sid=%s after=%.1fs reason=%s",
			 c->peer, c->sid, ev_now(loop) - c->opened, why);
	else
		log_debug("connection closed peer=%s reason=%s", c->peer, why);
	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	ev_timer_stop(loop, &c->timer);
	ev_timer_stop(loop, &c->ctimer);
	close(c->fd);
	c->fd = -1;
	hub_leave(c->srv->hub, c);
	c->state = CONN_CLOSED;
	server_conn_closed(c->srv, c);
}

/* ---- output queue ---------------------------------------------------- */

static struct conn_out *outq_at(struct conn *c, unsigned i)
{
	return &c->outq[(c->outq_head + i) % CONN_OUTQ_MAX];
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
		log_warn("client not reading, dropped peer=%s sid=%s pending=%zu bytes",
			 c->peer, c->sid, c->out_bytes);
		conn_close(c, "output overflow");
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
			c->outq_head = (c->outq_head + 1) % CONN_OUTQ_MAX;
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

static void send_text(struct conn *c, const char *text, size_t len)
{
	struct buf *b = ws_frame(WS_OP_TEXT, text, len);

	if (!b) {
		conn_close(c, "out of memory");
		return;
	}
	conn_send_frame(c, b, CONN_FRAME_EVENT);
	buf_unref(b);
}

/* ---- HTTP responses --------------------------------------------------- */

static void respond(struct conn *c, int status, const char *extra_headers,
		    const char *content_type, const void *body, size_t body_len,
		    bool head_only)
{
	char head[1024];
	int n;
	struct buf *b;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "Connection: close\r\n"
		     "%s"
		     "\r\n",
		     status, http_reason(status), content_type, body_len,
		     extra_headers ? extra_headers : "");
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
	c->state = CONN_RESPOND;
	if (outq_push(c, b, false) == 0)
		flush(c);
	buf_unref(b);
}

static void respond_text(struct conn *c, int status, const char *text)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "%s\n", text);

	respond(c, status, NULL, "text/plain; charset=utf-8", body, (size_t)n, false);
}

static void respond_eio_error(struct conn *c, enum eio_error err, bool upgrade)
{
	char body[128];
	int n;

	if (upgrade) {
		/* The reference server answers a refused upgrade in plain text. */
		respond(c, 400, NULL, "text/html", eio_error_message(err),
			strlen(eio_error_message(err)), false);
		return;
	}
	n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", (int)err,
		     eio_error_message(err));
	respond(c, eio_error_status(err), NULL, "application/json", body, (size_t)n, false);
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
		conn_close(c, c->closing ? "closed by server" : "closed by client");
}

/* ---- Socket.IO --------------------------------------------------------- */

static void protocol_error(struct conn *c, const char *what)
{
	log_info("protocol error, closing peer=%s sid=%s: %s", c->peer, c->sid, what);
	conn_ws_close(c, 1002, what);
}

static void answer_request(struct conn *c, const struct sio_packet *p)
{
	struct hub *hub = c->srv->hub;
	char prefix[48];
	int n;

	if (!p->has_id) {
		if (hub->snap)
			conn_send_frame(c, hub->snap->frame, CONN_FRAME_SNAPSHOT);
		else if (hub->error_frame)
			conn_send_frame(c, hub->error_frame, CONN_FRAME_EVENT);
		return;
	}
	n = snprintf(prefix, sizeof(prefix), "43%llu[", (unsigned long long)p->id);
	{
		static const char not_ready[] =
			"{\"message\":\"no dashboard data yet\",\"code\":\"not_ready\"}";
		const char *err = hub->error_json ? hub->error_json : not_ready;
		struct ws_part parts[] = {
			{ prefix, (size_t)n },
			{ hub->snap ? "" : "{\"error\":", hub->snap ? 0 : 9 },
			{ hub->snap ? hub->snap->doc : err, hub->snap ? hub->snap->doc_len : strlen(err) },
			{ hub->snap ? "]" : "}]", hub->snap ? 1 : 2 },
		};
		struct buf *b = ws_frame_build(WS_OP_TEXT, parts, 4);

		if (!b) {
			conn_close(c, "out of memory");
			return;
		}
		conn_send_frame(c, b, CONN_FRAME_EVENT);
		buf_unref(b);
	}
}

static void handle_sio(struct conn *c, const char *data, size_t len)
{
	struct sio_packet p;
	int rc = sio_decode(data, len, &p, c->srv->tok);

	if (rc < 0) {
		protocol_error(c, sio_error_message(rc));
		return;
	}
	if (!sio_is_main_nsp(p.nsp, p.nsp_len)) {
		if (p.type == SIO_CONNECT) {
			char out[320];
			int n = snprintf(out, sizeof(out), "44%.*s,{\"message\":\"Invalid namespace\"}",
					 (int)(p.nsp_len > 256 ? 256 : p.nsp_len), p.nsp);

			send_text(c, out, (size_t)n);
		} else {
			protocol_error(c, "packet for a namespace not joined");
		}
		goto out;
	}
	if (p.type != SIO_CONNECT && !c->sio_joined) {
		protocol_error(c, "packet before CONNECT");
		goto out;
	}
	switch (p.type) {
	case SIO_CONNECT: {
		char id[UTIL_ID_LEN + 1];
		char out[64];
		int n;

		if (c->sio_joined) {
			protocol_error(c, "duplicate CONNECT");
			break;
		}
		if (util_random_id(id) < 0) {
			conn_close(c, "no randomness");
			break;
		}
		n = snprintf(out, sizeof(out), "40{\"sid\":\"%s\"}", id);
		send_text(c, out, (size_t)n);
		if (c->state != CONN_WS)
			break;
		c->sio_joined = true;
		ev_timer_stop(c->srv->loop, &c->ctimer);
		hub_join(c->srv->hub, c);
		break;
	}
	case SIO_DISCONNECT:
		/* Leaves the namespace; the Engine.IO session stays open. */
		c->sio_joined = false;
		hub_leave(c->srv->hub, c);
		break;
	case SIO_EVENT:
	case SIO_BINARY_EVENT:
		c->attachments_due = p.attachments;
		if (p.event && p.event_len == 20 && memcmp(p.event, "requestDashboardData", 20) == 0)
			answer_request(c, &p);
		else
			log_debug("ignored event peer=%s sid=%s", c->peer, c->sid);
		break;
	case SIO_ACK:
	case SIO_BINARY_ACK:
		c->attachments_due = p.attachments; /* we never ask for acks */
		break;
	case SIO_CONNECT_ERROR:
		protocol_error(c, "CONNECT_ERROR from a client");
		break;
	}
out:
	sio_packet_clear(&p);
}

/* ---- Engine.IO over WebSocket ---------------------------------------- */

static void arm_timer(struct conn *c, uint64_t ms)
{
	ev_timer_stop(c->srv->loop, &c->timer);
	ev_timer_set(&c->timer, ms / 1000.0, 0);
	ev_timer_start(c->srv->loop, &c->timer);
}

static void handle_eio_text(struct conn *c, const char *msg, size_t len)
{
	enum eio_packet_type type;
	const char *data;
	size_t dlen;

	if (c->attachments_due) {
		protocol_error(c, "text frame while binary attachments are due");
		return;
	}
	if (eio_decode_text(msg, len, &type, &data, &dlen) < 0) {
		protocol_error(c, "parse error");
		return;
	}
	switch (type) {
	case EIO_PONG:
		if (c->awaiting_pong) {
			c->awaiting_pong = false;
			arm_timer(c, cfg_of(c)->ping_interval);
		}
		break;
	case EIO_MESSAGE:
		handle_sio(c, data, dlen);
		break;
	case EIO_CLOSE:
		conn_ws_close(c, 1000, "");
		break;
	case EIO_PING:
		protocol_error(c, "invalid heartbeat direction");
		break;
	default:
		protocol_error(c, "unexpected packet type");
		break;
	}
}

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
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	else
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
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

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
		      void *ud)
{
	struct conn *c = ud;

	if (c->state != CONN_WS || c->closing)
		return;
	switch (arg->opcode) {
	case WSLAY_TEXT_FRAME:
		handle_eio_text(c, (const char *)arg->msg, arg->msg_length);
		break;
	case WSLAY_BINARY_FRAME:
		if (c->attachments_due == 0)
			protocol_error(c, "unexpected binary frame");
		else
			c->attachments_due--;
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
			conn_close(c, c->closing ? "closed by server" : "closed by client");
	}
}

void conn_ws_close(struct conn *c, uint16_t code, const char *reason)
{
	if (c->state != CONN_WS || c->closing)
		return;
	c->closing = true;
	hub_leave(c->srv->hub, c);
	wslay_event_queue_close(c->ws, code, (const uint8_t *)reason, strlen(reason));
	ev_timer_stop(c->srv->loop, &c->timer);
	ev_timer_stop(c->srv->loop, &c->ctimer);
	ev_timer_set(&c->ctimer, CONN_LINGER_SECS, 0);
	ev_timer_start(c->srv->loop, &c->ctimer);
	ws_settle(c);
}

static void upgrade(struct conn *c, const struct http_request *req, size_t head_len,
		    const char *key, size_t key_len)
{
	static const struct wslay_event_callbacks callbacks = {
		.recv_callback = ws_recv_cb,
		.send_callback = ws_send_cb,
		.on_msg_recv_callback = ws_msg_cb,
	};
	const struct config *cfg = cfg_of(c);
	char accept[WS_ACCEPT_LEN + 1];
	char resp[256];
	char open[EIO_OPEN_PACKET_MAX];
	int n, on;
	struct buf *b;

	if (ws_accept_key(key, key_len, accept) < 0 || util_random_id(c->sid) < 0) {
		respond_text(c, 500, "Internal Server Error");
		return;
	}
	if (wslay_event_context_server_init(&c->ws, &callbacks, c) != 0) {
		respond_text(c, 500, "Internal Server Error");
		return;
	}
	wslay_event_config_set_max_recv_msg_length(c->ws, cfg->max_payload);
	/* permessage-deflate offers are declined by not answering them
	 * (RFC 7692 §5): no Sec-WebSocket-Extensions in the response. */
	n = snprintf(resp, sizeof(resp),
		     "HTTP/1.1 101 Switching Protocols\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Accept: %s\r\n"
		     "\r\n", accept);
	b = buf_from(resp, (size_t)n);
	if (!b) {
		conn_close(c, "out of memory");
		return;
	}
	on = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	c->state = CONN_WS;
	c->opened = ev_now(c->srv->loop);
	/* Bytes after the head belong to the WebSocket: wslay reads them first. */
	c->in_off = head_len;
	if (c->in_off == c->in_len) {
		free(c->in);
		c->in = NULL;
		c->in_off = c->in_len = 0;
	}
	if (outq_push(c, b, false) < 0) {
		buf_unref(b);
		return;
	}
	buf_unref(b);
	n = eio_open_packet(open, sizeof(open), c->sid, false, cfg->ping_interval,
			    cfg->ping_timeout, cfg->max_payload);
	log_info("client connected peer=%s sid=%s clients=%zu", c->peer, c->sid,
		 c->srv->nconns);
	(void)req;
	send_text(c, open, (size_t)n);
	if (c->state != CONN_WS)
		return;
	arm_timer(c, cfg->ping_interval);
	ev_timer_set(&c->ctimer, cfg->connect_timeout / 1000.0, 0);
	ev_timer_start(c->srv->loop, &c->ctimer);
	if (c->in)
		ev_feed_event(c->srv->loop, &c->rio, EV_READ);
}

/* ---- HTTP requests ----------------------------------------------------- */

static void serve_socket_io(struct conn *c, const struct http_request *req, size_t head_len)
{
	bool upgrade_req = http_header_has_token(http_find_header(req, "Upgrade"), "websocket");
	const struct http_header *origin = http_find_header(req, "Origin");
	enum eio_error err;
	bool ws;
	const char *key;
	size_t key_len;
	enum ws_handshake_result hs;

	err = eio_check_request(req, upgrade_req, false, &ws);
	if (err == EIO_ERR_NONE && origin &&
	    !config_origin_allowed(cfg_of(c), origin->value, origin->value_len)) {
		log_info("origin refused peer=%s origin=%.*s", c->peer,
			 (int)(origin->value_len > 100 ? 100 : origin->value_len), origin->value);
		err = EIO_ERR_FORBIDDEN;
	}
	if (err != EIO_ERR_NONE) {
		respond_eio_error(c, err, upgrade_req);
		return;
	}
	hs = ws_check_upgrade(req, &key, &key_len);
	switch (hs) {
	case WS_HS_OK:
		upgrade(c, req, head_len, key, key_len);
		return;
	case WS_HS_BAD_VERSION:
		respond(c, 426, "Sec-WebSocket-Version: 13\r\n", "text/plain; charset=utf-8",
			"Unsupported WebSocket version\n", 30, false);
		return;
	default:
		respond(c, 400, NULL, "text/html", "Bad request", 11, false);
		return;
	}
}

static void serve_health(struct conn *c, bool head_only)
{
	char body[1024];
	bool ok = c->srv->health(c->srv->health_ud, body, sizeof(body));

	respond(c, ok ? 200 : 503, "Cache-Control: no-store\r\n", "application/json",
		body, strlen(body), head_only);
}

static void serve_file(struct conn *c, const struct http_request *req, bool head_only)
{
	char rel[1024];
	char extra[128];
	struct buf *body = NULL;
	long n = files_map_path(req->path, req->path_len, rel, sizeof(rel));
	int rc;

	if (n < 0) {
		respond_text(c, 400, "Bad Request");
		return;
	}
	rc = files_read(cfg_of(c)->static_dir, rel, &body);
	if (rc == FILES_ERR_NOT_FOUND) {
		respond_text(c, 404, "Not Found");
		return;
	}
	if (rc < 0) {
		respond_text(c, 500, "Internal Server Error");
		return;
	}
	snprintf(extra, sizeof(extra), "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n");
	respond(c, 200, extra, files_content_type(rel), body->data, body->len, head_only);
	buf_unref(body);
}

static bool path_is(const struct http_request *req, const char *p)
{
	return req->path_len == strlen(p) && memcmp(req->path, p, req->path_len) == 0;
}

static void handle_request(struct conn *c, const struct http_request *req, size_t head_len)
{
	bool get = util_strieq(req->method, req->method_len, "GET");
	bool head = util_strieq(req->method, req->method_len, "HEAD");

	if (http_find_header(req, "Transfer-Encoding")) {
		respond_text(c, 501, "Transfer-Encoding is not supported");
		return;
	}
	if ((req->path_len >= sizeof(socket_io_path) - 2 &&
	     memcmp(req->path, socket_io_path, sizeof(socket_io_path) - 2) == 0) &&
	    (req->path_len == sizeof(socket_io_path) - 2 || req->path[sizeof(socket_io_path) - 2] == '/')) {
		serve_socket_io(c, req, head_len);
		return;
	}
	if (path_is(req, "/healthz")) {
		if (!get && !head) {
			respond(c, 405, "Allow: GET, HEAD\r\n", "text/plain; charset=utf-8",
				"Method Not Allowed\n", 19, false);
			return;
		}
		serve_health(c, head);
		return;
	}
	if (cfg_of(c)->static_dir) {
		if (!get && !head) {
			respond(c, 405, "Allow: GET, HEAD\r\n", "text/plain; charset=utf-8",
				"Method Not Allowed\n", 19, false);
			return;
		}
		serve_file(c, req, head);
		return;
	}
	respond_text(c, 404, "Not Found");
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
			respond_text(c, 431, "Request Header Fields Too Large");
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
		ev_io_stop(c->srv->loop, &c->rio);
		switch (rc) {
		case HTTP_ERR_BAD_REQUEST:
			respond_text(c, 400, "Bad Request");
			return;
		case HTTP_ERR_TOO_MANY_HEADERS:
			respond_text(c, 431, "Request Header Fields Too Large");
			return;
		case HTTP_ERR_VERSION:
			respond_text(c, 505, "HTTP Version Not Supported");
			return;
		default:
			ev_timer_stop(c->srv->loop, &c->timer);
			handle_request(c, &req, (size_t)rc);
			if (c->state == CONN_WS)
				ev_io_start(c->srv->loop, &c->rio);
			return;
		}
	}
}

static void drain_linger(struct conn *c)
{
	char sink[4096];

	for (;;) {
		ssize_t r = recv(c->fd, sink, sizeof(sink), 0);

		if (r > 0)
			continue;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_close(c, "response sent");
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
	case CONN_LINGER:
		drain_linger(c);
		break;
	case CONN_WS:
		c->ws_read_budget = CONN_READ_BUDGET;
		if (wslay_event_recv(c->ws) < 0) {
			conn_close(c, "connection lost");
			return;
		}
		ws_settle(c);
		break;
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

	switch (c->state) {
	case CONN_HTTP:
		ev_io_stop(loop, &c->rio);
		respond_text(c, 408, "Request Timeout");
		break;
	case CONN_WS:
		if (c->awaiting_pong) {
			log_info("ping timeout peer=%s sid=%s", c->peer, c->sid);
			conn_ws_close(c, 1000, "ping timeout");
			return;
		}
		c->awaiting_pong = true;
		conn_send_frame(c, c->srv->ping_frame, CONN_FRAME_EVENT);
		if (c->state == CONN_WS)
			arm_timer(c, cfg_of(c)->ping_timeout);
		break;
	default:
		break;
	}
}

static void on_ctimer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;

	if (c->state == CONN_WS && !c->closing && !c->sio_joined) {
		log_info("no Socket.IO CONNECT in time peer=%s sid=%s", c->peer, c->sid);
		conn_ws_close(c, 1000, "connect timeout");
		return;
	}
	if (c->state == CONN_WS && !c->closing)
		return;
	/* Linger after our close frame or response ended: stop waiting. */
	conn_close(c, c->state == CONN_LINGER ? "response sent" : "close timeout");
}
