#include "autoconfig.h"

#include "websocket.h"
#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "pmd.h"
#include "pmdneg.h"
#include "pmdshare.h"
#include "util.h"
#include "ws.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <wslay/wslay.h>

#define WEBSOCKET_READ_BUDGET (256u << 10) /* bytes per wakeup, for fairness */

static void readable(struct conn *c);
static void drained(struct conn *c);
static void ws_free(struct conn *c);

static const struct conn_proto websocket_proto = {
	.readable = readable,
	.drained = drained,
	.free = ws_free,
};

static void ws_free(struct conn *c)
{
	if (c->ws.ctx)
		wslay_event_context_free(c->ws.ctx);
	c->ws.ctx = NULL;
}

bool websocket_deflate(const struct conn *c)
{
	return c->ws.deflate;
}

bool websocket_open(const struct conn *c)
{
	return c->state == CONN_WS && c->ws.ctx && !c->ws.closing;
}

/* The close handshake is over (or abandoned) and everything is written. */
static void drained(struct conn *c)
{
	if (c->state == CONN_WS && !wslay_event_want_read(c->ws.ctx))
		conn_linger(c);
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
		       void *ud)
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
	if (c->ws.read_budget == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > c->ws.read_budget)
		len = c->ws.read_budget;
	r = conn_read(c, buf, len);
	if (r > 0) {
		c->ws.read_budget -= (size_t)r;
		return r;
	}
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	} else {
		c->ws.recv_failed = true; /* EOF or a socket error, not the peer's framing */
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return -1;
}

/* wslay writes only control frames (pong, close): they join the same queue
 * as our frames, so ordering holds and wslay never sees EAGAIN. */
static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *ud)
{
	struct conn *c = ud;
	struct buf *b;

	if (c->state != CONN_WS || !(b = buf_from(data, len))) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	if (conn_push(c, b, false) < 0) {
		buf_unref(b);
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	buf_unref(b);
	return (ssize_t)len;
}

static void deliver(struct conn *c, bool binary, const uint8_t *data, size_t len)
{
	if (c->h && c->h->on_message)
		c->h->on_message(c, binary, data, len);
}

/* A message with RSV1 (negotiated permessage-deflate): inflate it with the
 * context's one inflater, never past --max-payload (zip bombs), and check
 * text for UTF-8 ourselves, since wslay skips that for compressed frames. */
static void compressed_message(struct conn *c, const struct wslay_event_on_msg_recv_arg *arg)
{
	struct conn_ctx *ctx = c->ctx;
	uint8_t *out;
	size_t out_len;
	int rc;

	if (!ctx->inflater && pmd_inflater_new(false, &ctx->inflater) < 0) {
		websocket_close(c, 1011, "out of memory");
		return;
	}
	rc = pmd_inflate(ctx->inflater, arg->msg, arg->msg_length, ctx->cfg->max_payload, &out,
			 &out_len);
	if (rc == PMD_ERR_TOO_BIG) {
		metrics_inc(&pgpush_metrics, METRIC_CLIENTS_DROPPED, METRICS_DROP_TOO_LARGE);
		websocket_close(c, 1009, "message too big");
		return;
	}
	if (rc < 0) {
		websocket_close(c, rc == PMD_ERR_CORRUPT ? 1007 : 1011,
				rc == PMD_ERR_CORRUPT ? "bad compressed data" : "out of memory");
		return;
	}
	if (arg->opcode == WSLAY_TEXT_FRAME && !util_utf8_valid(out, out_len)) {
		free(out);
		websocket_close(c, 1007, "invalid UTF-8");
		return;
	}
	deliver(c, arg->opcode == WSLAY_BINARY_FRAME, out, out_len);
	free(out);
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
		   void *ud)
{
	struct conn *c = ud;

	if (c->state != CONN_WS || c->ws.closing)
		return;
	switch (arg->opcode) {
	case WSLAY_TEXT_FRAME:
	case WSLAY_BINARY_FRAME:
		if (arg->rsv & WSLAY_RSV1_BIT)
			compressed_message(c, arg);
		else
			deliver(c, arg->opcode == WSLAY_BINARY_FRAME, arg->msg, arg->msg_length);
		break;
	case WSLAY_CONNECTION_CLOSE:
		log_debug("close received peer=%s code=%u", c->peer, arg->status_code);
		/* wslay answers it; no more messages will come. */
		c->ws.closing = true;
		conn_tell_gone(c);
		break;
	default:
		break;
	}
}

static void settle(struct conn *c)
{
	if (c->state != CONN_WS)
		return;
	if (wslay_event_send(c->ws.ctx) < 0) {
		conn_close(c, "websocket send error");
		return;
	}
	if (!(c->io->evented && ev_is_active(&c->wio)))
		conn_flush(c);
	if (c->state == CONN_WS && !wslay_event_want_read(c->ws.ctx)) {
		ev_io_stop(c->ctx->loop, &c->rio);
		if (c->outq_len == 0)
			conn_linger(c);
	}
}

/* Sends a close frame of our own, bypassing wslay (whose state no longer
 * allows it), then closes once it is written. */
static void fail(struct conn *c, uint16_t code, const char *reason)
{
	uint8_t payload[2 + 123];
	size_t rlen = strnlen(reason, 123);
	struct buf *b;

	if (c->ws.closing) {
		conn_close(c, reason);
		return;
	}
	c->ws.closing = true;
	conn_tell_gone(c);
	log_info("websocket protocol error peer=%s: %s", c->peer, reason);
	metrics_inc(&pgpush_metrics, METRIC_CLIENTS_DROPPED,
		    code == 1009 ? METRICS_DROP_TOO_LARGE : METRICS_DROP_PROTOCOL_ERROR);
	payload[0] = (uint8_t)(code >> 8);
	payload[1] = (uint8_t)code;
	memcpy(payload + 2, reason, rlen);
	b = ws_frame(WS_OP_CLOSE, payload, 2 + rlen);
	wslay_event_shutdown_read(c->ws.ctx);
	wslay_event_shutdown_write(c->ws.ctx);
	if (!b || conn_push(c, b, false) < 0) {
		buf_unref(b);
		conn_close(c, reason);
		return;
	}
	buf_unref(b);
	conn_close_after(c, CONN_LINGER_SECS);
	if (c->paced) {
		c->paced = false;
		ev_timer_stop(c->ctx->loop, &c->timer);
	}
	conn_flush(c);
}

void websocket_close(struct conn *c, uint16_t code, const char *reason)
{
	if (!websocket_open(c))
		return;
	c->ws.closing = true;
	conn_tell_gone(c);
	wslay_event_queue_close(c->ws.ctx, code, (const uint8_t *)reason, strnlen(reason, 123));
	/* A pause in writing (conn_pace) ends: the close goes now, after
	 * what waited. (The timer may be the send timeout instead: it stays.) */
	if (c->paced) {
		c->paced = false;
		ev_timer_stop(c->ctx->loop, &c->timer);
	}
	conn_close_after(c, CONN_LINGER_SECS);
	settle(c);
}

static void readable(struct conn *c)
{
	int rc;

	if (c->state == CONN_LINGER) {
		conn_drain(c, "response sent");
		return;
	}
	if (c->state != CONN_WS) {
		ev_io_stop(c->ctx->loop, &c->rio);
		return;
	}
	c->ws.read_budget = WEBSOCKET_READ_BUDGET;
	c->ws.recv_failed = false;
	rc = wslay_event_recv(c->ws.ctx);
	if (c->state != CONN_WS)
		return; /* closed from a callback */
	if (rc < 0 && !c->ws.recv_failed && rc != WSLAY_ERR_NOMEM) {
		/* wslay refused a frame while parsing its header (a fragmented or
		 * oversized control frame, a 2^63 length) and reports it as a
		 * callback failure without sending anything: answer 1002
		 * ourselves (RFC 6455 §7.4.1). */
		fail(c, 1002, "protocol error");
		return;
	}
	if (rc < 0) {
		conn_close(c, "connection lost");
		return;
	}
	settle(c);
}

int websocket_send(struct conn *c, struct buf *frame, bool replaceable)
{
	if (!websocket_open(c))
		return -1;
	return conn_send(c, frame, replaceable);
}

_Static_assert((int)CONFIG_PMD_OFF == (int)PMDNEG_MODE_OFF &&
	       (int)CONFIG_PMD_STANDALONE == (int)PMDNEG_MODE_STANDALONE &&
	       (int)CONFIG_PMD_SHARED == (int)PMDNEG_MODE_SHARED &&
	       (int)CONFIG_PMD_DEFAULT == (int)PMDNEG_MODE_DEFAULT,
	       "config's --permessage-deflate values are pmdneg's modes");

int websocket_send_msg(struct conn *c, struct pmd_msg *m, bool replaceable)
{
	if (!websocket_open(c))
		return -1;
	if (conn_push_msg(c, m, replaceable) < 0)
		return -1;
	if (!(c->io->evented && ev_is_active(&c->wio)))
		conn_flush(c);
	return 0;
}

int websocket_send_text(struct conn *c, const struct ws_part *parts, size_t nparts)
{
	size_t len = 0;
	struct buf *b;
	int rc;

	if (!websocket_open(c))
		return -1;
	for (size_t i = 0; i < nparts; i++)
		len += parts[i].len;
	/* Large per-client messages are worth compressing when the client
	 * negotiated it: self-contained, at the client's window size. Not to a
	 * client with context takeover: there it would become the end of the
	 * client's window in place of the last snapshot, a payload nobody else
	 * holds, and its next broadcast would need a frame of its own. Plain
	 * (RSV1 clear), it never enters the window. */
	b = c->ws.deflate && !c->ws.win.shared && len >= WEBSOCKET_DEFLATE_MIN
		    ? pmd_frame_with_dict(WS_OP_TEXT, parts, nparts, NULL, 0,
					  c->ws.win.window_bits, WEBSOCKET_DEFLATE_LEVEL)
		    : ws_frame_build(WS_OP_TEXT, parts, nparts);
	if (!b) {
		conn_close(c, "out of memory");
		return -1;
	}
	rc = conn_send(c, b, false);
	buf_unref(b);
	return rc;
}

/*
 * An ack 43<n>[<doc>] to a client with context takeover, where shared is a
 * snapshot's update frame 42["dashboardDataUpdate",<doc>] and the ack ends
 * with the frame's last bytes (<doc>]). Sent as a shared-context message:
 * compressed against what the client's window ends with (tiny when that is
 * the same snapshot), and afterwards the window ends with those last bytes
 * of the snapshot's payload, a dictionary the server still knows
 * (pmd_window_sent_suffix). Otherwise plain, so the window stays as it was.
 */
static int send_tail(struct conn *c, const char *head, size_t head_len, struct buf *shared,
		     size_t off, size_t len, const char *tail, size_t tail_len)
{
	struct ws_part parts[] = {
		{ head, head_len }, { shared->data + off, len }, { tail, tail_len },
	};
	struct pmd_msg *snap = pmd_msg_find_frame(shared);
	bool ends_alike = off + len + tail_len == shared->len &&
			  (tail_len == 0 || memcmp(shared->data + off + len, tail, tail_len) == 0);
	struct buf *b = ws_frame_build(WS_OP_TEXT, parts, 3);
	struct pmd_msg *m;
	int rc;

	if (!b) {
		conn_close(c, "out of memory");
		return -1;
	}
	if (!snap || !ends_alike) {
		rc = conn_send(c, b, false);
		buf_unref(b);
		return rc;
	}
	m = pmd_msg_new_tail(b, pmd_msg_id(snap), len + tail_len, WEBSOCKET_DEFLATE_LEVEL);
	buf_unref(b);
	if (!m) {
		conn_close(c, "out of memory");
		return -1;
	}
	rc = websocket_send_msg(c, m, false);
	pmd_msg_unref(m);
	return rc;
}

int websocket_send_shared(struct conn *c, const char *head, size_t head_len, struct buf *shared,
			  size_t off, size_t len, const char *tail, size_t tail_len)
{
	uint8_t hdr[WS_MAX_FRAME_HEADER];
	size_t total = head_len + len + tail_len, h;
	struct buf *pre, *post;
	int rc = -1;

	if (!websocket_open(c))
		return -1;
	if (c->ws.deflate && c->ws.win.shared && total >= WEBSOCKET_DEFLATE_MIN)
		return send_tail(c, head, head_len, shared, off, len, tail, tail_len);
	if (c->ws.deflate && total >= WEBSOCKET_DEFLATE_MIN) {
		struct ws_part parts[] = {
			{ head, head_len }, { shared->data + off, len }, { tail, tail_len },
		};

		return websocket_send_text(c, parts, 3);
	}
	h = ws_frame_header(hdr, WS_OP_TEXT, false, total);
	pre = buf_new(h + head_len);
	post = buf_from(tail, tail_len);
	if (!pre || !post) {
		buf_unref(pre);
		buf_unref(post);
		conn_close(c, "out of memory");
		return -1;
	}
	memcpy(pre->data, hdr, h);
	memcpy(pre->data + h, head, head_len);
	if (conn_push(c, pre, false) == 0 && conn_push_range(c, shared, off, len) == 0 &&
	    conn_push(c, post, false) == 0) {
		rc = 0;
		if (!(c->io->evented && ev_is_active(&c->wio)))
			conn_flush(c);
	}
	buf_unref(pre);
	buf_unref(post);
	return rc;
}

int websocket_send_binary(struct conn *c, const uint8_t *data, size_t len)
{
	struct buf *b;
	int rc;

	if (!websocket_open(c))
		return -1;
	b = ws_frame(WS_OP_BINARY, data, len);
	if (!b) {
		conn_close(c, "out of memory");
		return -1;
	}
	rc = conn_send(c, b, false);
	buf_unref(b);
	return rc;
}

int websocket_check(struct conn *c, const struct http_request *req)
{
	const char *key;
	size_t key_len;

	switch (ws_check_upgrade(req, &key, &key_len)) {
	case WS_HS_OK:
		return 0;
	case WS_HS_BAD_VERSION:
		http1_respond(c, 426, "Sec-WebSocket-Version: 13\r\n", "text/plain; charset=utf-8",
			      "Unsupported WebSocket version\n", 30);
		return -1;
	default:
		http1_respond(c, 400, NULL, "text/html", "Bad request", 11);
		return -1;
	}
}

int websocket_accept(struct conn *c, const struct http_request *req, size_t head_len)
{
	static const struct wslay_event_callbacks callbacks = {
		.recv_callback = recv_cb,
		.send_callback = send_cb,
		.on_msg_recv_callback = msg_cb,
	};
	const struct config *cfg = c->ctx->cfg;
	char accept[WS_ACCEPT_LEN + 1];
	char ext[PMDNEG_RESPONSE_MAX + 32];
	char resp[512];
	const char *key;
	size_t key_len;
	int n, on = 1;
	struct buf *b;

	if (websocket_check(c, req) < 0)
		return -1;
	ws_check_upgrade(req, &key, &key_len);
	if (c->stream.src) { /* cannot happen: a stream is a response */
		http1_respond(c, 500, NULL, "text/plain", "Internal Server Error", 21);
		return -1;
	}
	if (ws_accept_key(key, key_len, accept) < 0 ||
	    wslay_event_context_server_init(&c->ws.ctx, &callbacks, c) != 0) {
		c->ws.ctx = NULL;
		http1_respond(c, 500, NULL, "text/plain", "Internal Server Error", 21);
		return -1;
	}
	c->proto = &websocket_proto; /* from now on, freeing the conn frees ctx */
	c->is_websocket = true;
	wslay_event_config_set_max_recv_msg_length(c->ws.ctx, cfg->max_payload);
	/* permessage-deflate (RFC 7692): accepted as pmdneg_negotiate_mode words
	 * it for --permessage-deflate. Standalone: no context takeover, the same
	 * compressed frame for every client. Shared: the server keeps its
	 * context, and the conn's window record says what the client's window
	 * ends with. Either way no client costs a compressor. An offer we do
	 * not take is declined by not answering it. */
	ext[0] = '\0';
	pmd_window_init(&c->ws.win, NULL);
	if (cfg->permessage_deflate != CONFIG_PMD_OFF) {
		const struct http_header *h = http_find_header(req, "Sec-WebSocket-Extensions");
		struct pmdneg_params params;
		char response[PMDNEG_RESPONSE_MAX];

		if (h && pmdneg_negotiate_mode((enum pmdneg_mode)cfg->permessage_deflate, h->value,
					       h->value_len, &params, response,
					       sizeof(response)) == PMDNEG_ACCEPTED) {
			c->ws.deflate = true;
			/* A new WebSocket has a new inflater: its window holds
			 * nothing we could name. */
			pmd_window_init(&c->ws.win, &params);
			wslay_event_config_set_allowed_rsv_bits(c->ws.ctx, WSLAY_RSV1_BIT);
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
	if (c->io->evented)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	ev_timer_stop(c->ctx->loop, &c->timer);
	c->state = CONN_WS;
	c->opened = ev_now(c->ctx->loop);
	/* Bytes after the head belong to the WebSocket: wslay reads them first. */
	c->in_off = head_len;
	if (c->in_off >= c->in_len) {
		free(c->in);
		c->in = NULL;
		c->in_off = c->in_len = 0;
	}
	if (conn_push(c, b, false) < 0) {
		buf_unref(b);
		return -1;
	}
	buf_unref(b);
	if (c->io->evented) {
		ev_io_start(c->ctx->loop, &c->rio);
		if (c->in)
			ev_feed_event(c->ctx->loop, &c->rio, EV_READ);
	}
	conn_flush(c);
	return c->state == CONN_WS ? 0 : -1;
}
