#include "autoconfig.h"

#include "session.h"
#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "websocket.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct config *cfg_of(const struct session *s)
{
	return s->eng->cfg;
}

static double now_of(const struct engine *e)
{
	return e->now(e->now_ud);
}

/* ---- the sid table ----------------------------------------------------- */

static size_t bucket_of(const char *sid, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)sid[i]) * 16777619u;
	return h & (ENGINE_BUCKETS - 1);
}

struct session *session_find(struct engine *e, const char *sid, size_t len)
{
	struct list_node *head, *n;

	if (len != UTIL_ID_LEN)
		return NULL;
	head = &e->table[bucket_of(sid, len)];
	for (n = head->next; n != head; n = n->next) {
		struct session *s = LIST_ENTRY(n, struct session, table_link);

		if (memcmp(s->sid, sid, len) == 0)
			return s;
	}
	return NULL;
}

/* ---- heartbeat ----------------------------------------------------------- */

/* The heartbeat runs on a schedule of its own, not on when a timer
 * happened to fire: a ping due at T times out at T + pingTimeout even when
 * the loop was late to send it. Deadlines are on the engine's clock
 * (monotonic), so a step of the wall clock changes nothing. */

void session_ping_due(struct deadline *d, void *ud)
{
	struct session *s = LIST_ENTRY(d, struct session, hb);
	struct engine *e = s->eng;

	s->awaiting_pong = true;
	if (!s->polling && s->ws)
		(void)websocket_send(s->ws, e->ping_frame, false);
	else
		session_send_text(s, "2", 1);
	if (!s->closed)
		deadline_add_at(&e->hb_pong, &s->hb, d->at + cfg_of(s)->ping_timeout / 1000.0);
}

void session_pong_due(struct deadline *d, void *ud)
{
	struct session *s = LIST_ENTRY(d, struct session, hb);

	log_info("ping timeout sid=%s", s->sid);
	session_close(s, "ping timeout");
}

bool session_pong_overdue(const struct session *s)
{
	double now = now_of(s->eng);

	if (!deadline_pending(&s->hb))
		return false;
	if (s->awaiting_pong)
		return now >= s->hb.at;
	return now >= s->hb.at + cfg_of(s)->ping_timeout / 1000.0;
}

/* ---- sending --------------------------------------------------------------- */

static bool get_waiting(const struct session *s)
{
	return s->poll.get && http1_can_respond(s->poll.get);
}

void session_schedule_flush(struct session *s)
{
	if (s->closed || list_linked(&s->poll.flush_link) || !get_waiting(s) || !s->poll.len)
		return;
	list_push_back(&s->eng->flush, &s->poll.flush_link);
	conn_ctx_defer(s->eng->cx);
}

static void outbox_remove(struct session *s, unsigned i)
{
	s->poll.bytes -= session_pkt_len(&s->poll.outbox[i]);
	buf_unref(s->poll.outbox[i].b);
	buf_unref(s->poll.outbox[i].head);
	memmove(&s->poll.outbox[i], &s->poll.outbox[i + 1],
		(s->poll.len - i - 1) * sizeof(s->poll.outbox[0]));
	s->poll.len--;
}

void session_outbox_clear(struct session *s)
{
	for (unsigned i = 0; i < s->poll.len; i++) {
		buf_unref(s->poll.outbox[i].b);
		buf_unref(s->poll.outbox[i].head);
	}
	s->poll.len = 0;
	s->poll.bytes = 0;
}

/* Queues a packet; takes a new reference to b, and head's reference. */
static void outbox_push_pkt(struct session *s, struct session_pkt pkt)
{
	size_t len = session_pkt_len(&pkt);

	if (pkt.replaceable) {
		for (unsigned i = 0; i < s->poll.len; i++) {
			if (s->poll.outbox[i].replaceable) {
				outbox_remove(s, i);
				break;
			}
		}
	}
	if (s->poll.len == SESSION_OUTBOX_MAX ||
	    s->poll.bytes + len > cfg_of(s)->max_pending_bytes) {
		log_warn("polling client not polling, dropped sid=%s pending=%zu bytes", s->sid,
			 s->poll.bytes);
		buf_unref(pkt.head);
		session_close(s, "output overflow");
		return;
	}
	if (s->poll.len == s->poll.cap) {
		unsigned cap = s->poll.cap ? s->poll.cap * 2 : 8;
		struct session_pkt *n = realloc(s->poll.outbox, cap * sizeof(*n));

		if (!n) {
			buf_unref(pkt.head);
			session_close(s, "out of memory");
			return;
		}
		s->poll.outbox = n;
		s->poll.cap = cap;
	}
	buf_ref(pkt.b);
	s->poll.outbox[s->poll.len++] = pkt;
	s->poll.bytes += len;
	session_schedule_flush(s);
}

static void outbox_push(struct session *s, struct buf *b, size_t off, size_t len, bool binary,
			bool replaceable)
{
	outbox_push_pkt(s, (struct session_pkt){
		.b = b, .off = off, .len = len, .binary = binary, .replaceable = replaceable,
	});
}

void session_send_parts(struct session *s, const struct ws_part *parts, size_t nparts)
{
	size_t len = 0, off = 0;
	struct buf *b;

	if (s->closed)
		return;
	if (!s->polling) {
		if (s->ws)
			(void)websocket_send_text(s->ws, parts, nparts);
		return;
	}
	for (size_t i = 0; i < nparts; i++)
		len += parts[i].len;
	b = buf_new(len);
	if (!b) {
		session_close(s, "out of memory");
		return;
	}
	for (size_t i = 0; i < nparts; i++) {
		memcpy(b->data + off, parts[i].data, parts[i].len);
		off += parts[i].len;
	}
	outbox_push(s, b, 0, len, false, false);
	buf_unref(b);
}

void session_send_shared(struct session *s, const char *head, size_t head_len,
			 struct buf *shared, size_t off, size_t len, const char *tail,
			 size_t tail_len)
{
	struct buf *h;

	if (s->closed)
		return;
	if (!s->polling) {
		if (s->ws)
			(void)websocket_send_shared(s->ws, head, head_len, shared, off, len, tail,
						    tail_len);
		return;
	}
	h = buf_from(head, head_len);
	if (!h) {
		session_close(s, "out of memory");
		return;
	}
	outbox_push_pkt(s, (struct session_pkt){
		.b = shared, .off = off, .len = len, .head = h, .tail = tail_len ? tail : NULL,
	});
}

void session_send_text(struct session *s, const char *pkt, size_t len)
{
	struct ws_part part = { pkt, len };

	session_send_parts(s, &part, 1);
}

void session_send_binary(struct session *s, const uint8_t *data, size_t len)
{
	struct buf *b;

	if (s->closed)
		return;
	if (!s->polling) {
		if (s->ws)
			(void)websocket_send_binary(s->ws, data, len);
		return;
	}
	b = buf_from(data, len);
	if (!b) {
		session_close(s, "out of memory");
		return;
	}
	outbox_push(s, b, 0, len, true, false);
	buf_unref(b);
}

/* Where the payload of a server frame starts (no mask, RFC 6455 §5.2). */
static size_t frame_payload_off(const struct buf *frame)
{
	uint8_t l = frame->data[1] & 0x7f;

	return l < 126 ? 2 : l == 126 ? 4 : 10;
}

void session_send_frame(struct session *s, struct buf *frame, struct pmd_msg *msg,
			bool replaceable)
{
	size_t off;

	if (s->closed)
		return;
	if (!s->polling) {
		if (s->ws)
			(void)(msg && websocket_deflate(s->ws)
				       ? websocket_send_msg(s->ws, msg, replaceable)
				       : websocket_send(s->ws, frame, replaceable));
		return;
	}
	off = frame_payload_off(frame);
	outbox_push(s, frame, off, frame->len - off, false, replaceable);
}

void session_pace(struct session *s, double secs)
{
	if (!s->closed && !s->polling && s->ws && websocket_open(s->ws))
		conn_pace(s->ws, secs);
}

void session_release_get(struct session *s, const char *pkt)
{
	struct conn *get = s->poll.get;

	if (!get)
		return;
	s->poll.get = NULL;
	conn_set_handlers(get, NULL, NULL);
	list_unlink(&s->poll.flush_link);
	http1_respond(get, 200, "Cache-Control: no-store\r\n", "text/plain; charset=UTF-8", pkt,
		      strlen(pkt));
}

/* ---- receiving ----------------------------------------------------------- */

/* A polling client's own close: the pending GET is released with a noop;
 * when the GET has not come yet (the client sends both at once, in either
 * order), a tombstone answers it with the noop when it comes. */
static void polling_client_close(struct session *s)
{
	struct engine *e = s->eng;

	if (get_waiting(s)) {
		session_release_get(s, "6");
		return;
	}
	if (e->ntombs < ENGINE_TOMBS_MAX) {
		struct session_tomb *t = calloc(1, sizeof(*t));

		if (!t)
			return;
		memcpy(t->sid, s->sid, sizeof(t->sid));
		deadline_init(&t->expiry);
		list_push_back(&e->tombs, &t->link);
		deadline_add(&e->tomb_dl, &t->expiry);
		e->ntombs++;
	}
}

static void tomb_free(struct engine *e, struct session_tomb *t)
{
	deadline_cancel(&t->expiry);
	list_unlink(&t->link);
	e->ntombs--;
	free(t);
}

void session_tomb_due(struct deadline *d, void *ud)
{
	tomb_free(ud, LIST_ENTRY(d, struct session_tomb, expiry));
}

bool session_tomb_take(struct engine *e, const char *sid, size_t len)
{
	struct list_node *n, *tmp;

	if (len != UTIL_ID_LEN)
		return false;
	LIST_FOR_EACH_SAFE(n, tmp, &e->tombs) {
		struct session_tomb *t = LIST_ENTRY(n, struct session_tomb, link);

		if (memcmp(t->sid, sid, len) == 0) {
			tomb_free(e, t);
			return true;
		}
	}
	return false;
}

void session_tombs_clear(struct engine *e)
{
	struct list_node *n;

	while ((n = list_first(&e->tombs)))
		tomb_free(e, LIST_ENTRY(n, struct session_tomb, link));
}

void session_receive(struct session *s, enum eio_packet_type type, const char *data, size_t len,
		     bool binary)
{
	struct engine *e = s->eng;

	if (s->closed)
		return;
	if (binary) {
		e->up->on_message(e->up_ud, s, (const uint8_t *)data, len, true);
		return;
	}
	switch (type) {
	case EIO_PONG:
		if (s->awaiting_pong) {
			s->awaiting_pong = false;
			deadline_add(&e->hb_ping, &s->hb);
		}
		break;
	case EIO_MESSAGE:
		e->up->on_message(e->up_ud, s, (const uint8_t *)data, len, false);
		break;
	case EIO_CLOSE:
		if (s->polling)
			polling_client_close(s);
		session_close(s, "closed by client");
		break;
	case EIO_PING:
		log_info("protocol error, closing sid=%s: invalid heartbeat direction", s->sid);
		session_close_code(s, 1002, "invalid heartbeat direction");
		break;
	default:
		log_info("protocol error, closing sid=%s: unexpected packet type %d", s->sid, type);
		session_close_code(s, 1002, "unexpected packet");
		break;
	}
}

/* ---- the WebSocket transport's handlers ---------------------------------- */

static void ws_on_message(struct conn *c, bool binary, const uint8_t *data, size_t len)
{
	struct session *s = c->owner;
	enum eio_packet_type type;
	const char *d;
	size_t dlen;

	if (binary) {
		session_receive(s, EIO_MESSAGE, (const char *)data, len, true);
		return;
	}
	if (eio_decode_text((const char *)data, len, &type, &d, &dlen) < 0) {
		log_info("protocol error, closing sid=%s: parse error", s->sid);
		session_close_code(s, 1002, "parse error");
		return;
	}
	session_receive(s, type, d, dlen, false);
}

static void ws_on_close(struct conn *c)
{
	struct session *s = c->owner;

	if (s->ws == c) {
		s->ws = NULL;
		session_close(s, "transport close");
	}
}

static const struct conn_handlers ws_handlers = {
	.on_message = ws_on_message,
	.on_close = ws_on_close,
};

void session_adopt_ws(struct session *s, struct conn *c)
{
	s->ws = c;
	s->polling = false;
	conn_set_handlers(c, &ws_handlers, s);
}

/* ---- requests that belong to a session -------------------------------------- */

static void post_on_request(struct conn *c, const struct http_request *req, size_t head_len,
			    const char *body, size_t body_len)
{
	struct session *s = c->owner;
	struct engine *e = s->eng;

	if (s->poll.post == c)
		s->poll.post = NULL;
	conn_set_handlers(c, NULL, NULL);
	e->route(e, c, req, head_len, body, body_len);
}

static void post_on_close(struct conn *c)
{
	struct session *s = c->owner;

	if (s->poll.post == c)
		s->poll.post = NULL;
}

const struct conn_handlers session_post_handlers = {
	.on_request = post_on_request,
	.on_close = post_on_close,
};

static void orphan_on_request(struct conn *c, const struct http_request *req, size_t head_len,
			      const char *body, size_t body_len)
{
	struct engine *e = c->owner;

	conn_set_handlers(c, NULL, NULL);
	e->route(e, c, req, head_len, body, body_len);
}

const struct conn_handlers session_orphan_handlers = {
	.on_request = orphan_on_request,
};

/* ---- lifecycle -------------------------------------------------------------- */

int session_new(struct engine *e, bool polling, const char *peer, struct session **out)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return -1;
	if (util_random_id(s->sid) < 0) {
		free(s);
		return -1;
	}
	s->eng = e;
	s->polling = polling;
	s->opened = now_of(e);
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	list_init(&s->poll.flush_link);
	list_init(&s->reap_link);
	deadline_init(&s->up.timeout);
	deadline_init(&s->hb);
	list_push_back(&e->table[bucket_of(s->sid, UTIL_ID_LEN)], &s->table_link);
	e->nsessions++;
	deadline_add(&e->hb_ping, &s->hb);
	*out = s;
	return 0;
}

void session_close(struct session *s, const char *reason)
{
	session_close_code(s, 1000, reason);
}

void session_close_code(struct session *s, uint16_t code, const char *reason)
{
	struct engine *e = s->eng;

	if (s->closed)
		return;
	s->closed = true;
	s->close_reason = reason;
	{
		struct log_ctx lc = { s->peer, s->conn_id };
		int drop = metrics_drop_reason_of(reason, code);

		log_msg_ctx(LOG_INFO, &lc, "client disconnected sid=%s transport=%s after=%.1fs reason=%s",
			    s->sid, s->polling ? "polling" : "websocket", now_of(e) - s->opened, reason);
		metrics_gauge_add(&pgpush_metrics, METRIC_CLIENTS,
				  s->polling ? METRICS_TRANSPORT_POLLING : METRICS_TRANSPORT_WEBSOCKET, -1);
		if (drop >= 0)
			metrics_inc(&pgpush_metrics, METRIC_CLIENTS_DROPPED, (size_t)drop);
	}
	deadline_cancel(&s->hb);
	deadline_cancel(&s->up.timeout);
	list_unlink(&s->table_link);
	e->nsessions--;
	list_unlink(&s->poll.flush_link);
	/* Polling: the pending GET (or nothing) learns of the close. */
	session_release_get(s, "1");
	if (s->poll.post) {
		conn_set_handlers(s->poll.post, &session_orphan_handlers, e);
		s->poll.post = NULL;
	}
	if (s->up.probe) {
		struct conn *p = s->up.probe;

		s->up.probe = NULL;
		conn_set_handlers(p, NULL, NULL);
		websocket_close(p, 1000, "");
	}
	if (s->ws) {
		struct conn *ws = s->ws;

		s->ws = NULL;
		conn_set_handlers(ws, NULL, NULL);
		websocket_close(ws, e->shutting_down ? 1001 : code,
				e->shutting_down ? "server shutting down" : reason);
	}
	list_push_back(&e->reap, &s->reap_link);
	conn_ctx_defer(e->cx);
}

void session_free(struct session *s)
{
	if (!s)
		return;
	session_outbox_clear(s);
	free(s->poll.outbox);
	free(s->bearer);
	free(s);
}
