#include "autoconfig.h"

#include "session.h"
#include "conn.h"
#include "log.h"
#include "pmd.h"
#include "server.h"
#include "snapshot.h"
#include "ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UPGRADE_TIMEOUT 10.0 /* s for a probe to complete (reference default) */
#define NOOP_TICK 0.1        /* s between noops that release a pending GET */

static void on_upgrade_timer(struct ev_loop *loop, ev_timer *w, int revents);

static const struct config *cfg_of(const struct session *s)
{
	return s->srv->cfg;
}

/* ---- the sid table ----------------------------------------------------- */

static size_t bucket_of(const struct server *srv, const char *sid, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)sid[i]) * 16777619u;
	return h & (SERVER_SESSION_BUCKETS - 1);
}

static struct session *find(struct server *srv, const char *sid, size_t len)
{
	struct session *s;

	if (len != UTIL_ID_LEN)
		return NULL;
	for (s = srv->sessions[bucket_of(srv, sid, len)]; s; s = s->hnext) {
		if (memcmp(s->sid, sid, len) == 0)
			return s;
	}
	return NULL;
}

static void table_remove(struct session *s)
{
	struct session **pp = &s->srv->sessions[bucket_of(s->srv, s->sid, UTIL_ID_LEN)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == s) {
			*pp = s->hnext;
			s->srv->nsessions--;
			return;
		}
	}
}

/* ---- heartbeat ----------------------------------------------------------- */

/* The heartbeat runs on a schedule of its own, not on when a timer
 * happened to fire: a ping due at T times out at T + pingTimeout even when
 * the loop was late to send it.
 *
 * Every session waits in one of two lists, "next ping due" and "pong due",
 * ordered by deadline: all deadlines in a list are now plus the same
 * duration, so appending keeps the order. One timer per list fires at its
 * head. Arming, disarming and firing are O(1) whatever the number of
 * clients (libev's "be smart about timeouts", method 4). */
static void hb_list_arm(struct server *srv, struct hb_list *l)
{
	ev_timer_stop(srv->loop, &l->timer);
	if (l->head) {
		ev_tstamp now = ev_time();

		ev_timer_set(&l->timer, l->head->hb_deadline > now ? l->head->hb_deadline - now : 0, 0);
		ev_timer_start(srv->loop, &l->timer);
	}
}

static void hb_unlink(struct session *s)
{
	struct hb_list *l = s->hb_list;
	bool was_head;

	if (!l)
		return;
	was_head = l->head == s;
	if (s->hb_prev)
		s->hb_prev->hb_next = s->hb_next;
	else
		l->head = s->hb_next;
	if (s->hb_next)
		s->hb_next->hb_prev = s->hb_prev;
	else
		l->tail = s->hb_prev;
	s->hb_prev = s->hb_next = NULL;
	s->hb_list = NULL;
	if (was_head)
		hb_list_arm(s->srv, l);
}

static void arm_hb_at(struct session *s, struct hb_list *l, ev_tstamp due)
{
	struct session *after;

	hb_unlink(s);
	s->hb_deadline = due;
	s->hb_list = l;
	/* Nearly always the tail; walk back only if the clock went back. */
	for (after = l->tail; after && after->hb_deadline > due; after = after->hb_prev)
		;
	s->hb_prev = after;
	s->hb_next = after ? after->hb_next : l->head;
	if (s->hb_next)
		s->hb_next->hb_prev = s;
	else
		l->tail = s;
	if (after)
		after->hb_next = s;
	else
		l->head = s;
	if (l->head == s)
		hb_list_arm(s->srv, l);
}

static void arm_hb(struct session *s, uint64_t ms)
{
	arm_hb_at(s, &s->srv->hb_ping, ev_time() + ms / 1000.0);
}

/* Checks the heartbeat with the real clock, not the loop's cached one: a
 * request may arrive in the same iteration as the expiry, or before a late
 * timer has fired at all. */
static bool pong_overdue(struct session *s)
{
	ev_tstamp now = ev_time();

	if (s->awaiting_pong)
		return now >= s->hb_deadline;
	return now >= s->hb_deadline + cfg_of(s)->ping_timeout / 1000.0;
}

static void hb_due(struct session *s)
{
	if (s->awaiting_pong) {
		log_info("ping timeout sid=%s", s->sid);
		session_close(s, "ping timeout");
		return;
	}
	s->awaiting_pong = true;
	if (!s->polling && s->ws)
		conn_send_frame(s->ws, s->srv->ping_frame, CONN_FRAME_EVENT);
	else
		session_send_text(s, "2", 1);
	if (!s->closed)
		arm_hb_at(s, &s->srv->hb_pong, s->hb_deadline + cfg_of(s)->ping_timeout / 1000.0);
}

/* A list's timer: every session whose deadline has come, oldest first. */
static void on_hb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct hb_list *l = w->data;
	struct server *srv = l->srv;
	ev_tstamp now = ev_time();

	while (l->head && l->head->hb_deadline <= now) {
		struct session *s = l->head;

		hb_unlink(s);
		hb_due(s);
	}
	hb_list_arm(srv, l);
}

void session_hb_init(struct server *srv)
{
	struct hb_list *lists[] = { &srv->hb_ping, &srv->hb_pong };

	for (size_t i = 0; i < 2; i++) {
		memset(lists[i], 0, sizeof(*lists[i]));
		lists[i]->srv = srv;
		ev_timer_init(&lists[i]->timer, on_hb, 0, 0);
		lists[i]->timer.data = lists[i];
	}
}

void session_hb_stop(struct server *srv)
{
	ev_timer_stop(srv->loop, &srv->hb_ping.timer);
	ev_timer_stop(srv->loop, &srv->hb_pong.timer);
}

/* ---- sending --------------------------------------------------------------- */

static void schedule_flush(struct session *s)
{
	if (s->flush_queued || !s->get)
		return;
	s->flush_queued = true;
	s->flush_next = s->srv->flush_list;
	s->srv->flush_list = s;
	ev_prepare_start(s->srv->loop, &s->srv->reaper);
}

static void outbox_remove(struct session *s, unsigned i)
{
	s->out_bytes -= s->outbox[i].len;
	buf_unref(s->outbox[i].b);
	memmove(&s->outbox[i], &s->outbox[i + 1], (s->out_len - i - 1) * sizeof(s->outbox[0]));
	s->out_len--;
}

static void outbox_push(struct session *s, struct buf *b, size_t off, size_t len,
			bool binary, bool snapshot)
{
	if (snapshot) {
		for (unsigned i = 0; i < s->out_len; i++) {
			if (s->outbox[i].snapshot) {
				outbox_remove(s, i);
				break;
			}
		}
	}
	if (s->out_len == SESSION_OUTBOX_MAX ||
	    s->out_bytes + len > cfg_of(s)->max_pending_bytes) {
		log_warn("polling client not polling, dropped sid=%s pending=%zu bytes", s->sid,
			 s->out_bytes);
		session_close(s, "output overflow");
		return;
	}
	if (s->out_len == s->out_cap) {
		unsigned cap = s->out_cap ? s->out_cap * 2 : 8;
		struct session_pkt *n = realloc(s->outbox, cap * sizeof(*n));

		if (!n) {
			session_close(s, "out of memory");
			return;
		}
		s->outbox = n;
		s->out_cap = cap;
	}
	s->outbox[s->out_len++] = (struct session_pkt){
		.b = buf_ref(b), .off = off, .len = len, .binary = binary, .snapshot = snapshot,
	};
	s->out_bytes += len;
	schedule_flush(s);
}

void session_send_parts(struct session *s, const struct ws_part *parts, size_t nparts)
{
	struct buf *b;

	if (s->closed)
		return;
	if (!s->polling && s->ws) {
		size_t len = 0;

		for (size_t i = 0; i < nparts; i++)
			len += parts[i].len;
		/* Large per-client messages (an ack carrying the document) are
		 * worth compressing when the client negotiated it. */
		b = s->ws->deflate && len >= SESSION_DEFLATE_MIN
			    ? pmd_frame(WS_OP_TEXT, parts, nparts, SESSION_DEFLATE_LEVEL)
			    : ws_frame_build(WS_OP_TEXT, parts, nparts);
		if (b) {
			conn_send_frame(s->ws, b, CONN_FRAME_EVENT);
			buf_unref(b);
		}
	} else {
		size_t len = 0, off = 0;

		for (size_t i = 0; i < nparts; i++)
			len += parts[i].len;
		b = buf_new(len);
		if (b) {
			for (size_t i = 0; i < nparts; i++) {
				memcpy(b->data + off, parts[i].data, parts[i].len);
				off += parts[i].len;
			}
			outbox_push(s, b, 0, len, false, false);
			buf_unref(b);
		}
	}
	if (!b)
		session_close(s, "out of memory");
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
	if (!s->polling && s->ws) {
		b = ws_frame(WS_OP_BINARY, data, len);
		if (b) {
			conn_send_frame(s->ws, b, CONN_FRAME_EVENT);
			buf_unref(b);
		}
	} else {
		b = buf_from(data, len);
		if (b) {
			outbox_push(s, b, 0, len, true, false);
			buf_unref(b);
		}
	}
	if (!b)
		session_close(s, "out of memory");
}

/* Where the payload of a server frame starts (no mask, RFC 6455 §5.2). */
static size_t frame_payload_off(const struct buf *frame)
{
	uint8_t l = frame->data[1] & 0x7f;

	return l < 126 ? 2 : l == 126 ? 4 : 10;
}

void session_send_frame(struct session *s, struct buf *frame, bool snapshot)
{
	size_t off;

	if (s->closed)
		return;
	if (!s->polling && s->ws) {
		conn_send_frame(s->ws, frame, snapshot ? CONN_FRAME_SNAPSHOT : CONN_FRAME_EVENT);
		return;
	}
	off = frame_payload_off(frame);
	outbox_push(s, frame, off, frame->len - off, false, snapshot);
}

void session_send_snapshot(struct session *s, struct snapshot *snap)
{
	if (!s->closed && !s->polling && s->ws && s->ws->deflate && snap->frame_z)
		conn_send_frame(s->ws, snap->frame_z, CONN_FRAME_SNAPSHOT);
	else
		session_send_frame(s, snap->frame, true);
}

/* Answers the held GET with everything queued, joined by the record
 * separator (Engine.IO v4 payload); binary as "b" + base64. */
void session_flush(struct session *s)
{
	size_t total = 0, o = 0;
	char *body;

	s->flush_queued = false;
	if (s->closed || !s->get || !s->out_len)
		return;
	for (unsigned i = 0; i < s->out_len; i++)
		total += 1 + (s->outbox[i].binary ? 1 + 4 * ((s->outbox[i].len + 2) / 3) + 1
						  : s->outbox[i].len);
	body = malloc(total + 1);
	if (!body) {
		session_close(s, "out of memory");
		return;
	}
	for (unsigned i = 0; i < s->out_len; i++) {
		const struct session_pkt *p = &s->outbox[i];

		if (i)
			body[o++] = EIO_RECORD_SEPARATOR;
		if (p->binary) {
			body[o++] = 'b';
			o += eio_base64_encode(p->b->data + p->off, p->len, body + o);
		} else {
			memcpy(body + o, p->b->data + p->off, p->len);
			o += p->len;
		}
	}
	while (s->out_len)
		outbox_remove(s, s->out_len - 1);
	{
		struct conn *get = s->get;

		s->get = NULL;
		get->sess = NULL;
		conn_respond(get, 200, "Cache-Control: no-store\r\n", "text/plain; charset=UTF-8",
			     body, o);
	}
	free(body);
}

/* Answers a held GET at once with one packet (noop or close). */
static void release_get(struct session *s, const char *pkt)
{
	struct conn *get = s->get;

	if (!get)
		return;
	s->get = NULL;
	get->sess = NULL;
	conn_respond(get, 200, "Cache-Control: no-store\r\n", "text/plain; charset=UTF-8",
		     pkt, strlen(pkt));
}

/* ---- receiving ----------------------------------------------------------- */

static void on_packet(struct session *s, enum eio_packet_type type, const char *data,
		      size_t len, bool binary)
{
	if (binary) {
		if (s->kind == SESSION_ENGINEIO) {
			if (s->srv->app->on_engine_message)
				s->srv->app->on_engine_message(s->srv->app_ud, s,
							       (const uint8_t *)data, len, true);
		} else {
			socketio_on_binary(s, (const uint8_t *)data, len);
		}
		return;
	}
	switch (type) {
	case EIO_PONG:
		if (s->awaiting_pong) {
			s->awaiting_pong = false;
			arm_hb(s, cfg_of(s)->ping_interval);
		}
		break;
	case EIO_MESSAGE:
		if (s->kind == SESSION_ENGINEIO) {
			if (s->srv->app->on_engine_message)
				s->srv->app->on_engine_message(s->srv->app_ud, s,
							       (const uint8_t *)data, len, false);
		} else {
			socketio_on_text(s, data, len);
		}
		break;
	case EIO_CLOSE:
		/* The client's own close: a pending GET is released with a noop;
		 * a close packet answers closes the server decides. */
		release_get(s, "6");
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

static void complete_upgrade(struct session *s)
{
	struct conn *ws = s->probe;

	s->probe = NULL;
	s->probed = false;
	s->polling = false;
	s->ws = ws;
	ev_timer_stop(s->srv->loop, &s->upgrade_timer);
	release_get(s, "6");
	/* What was queued for polling now goes over the WebSocket, in order. */
	for (unsigned i = 0; i < s->out_len && !s->closed; i++) {
		struct session_pkt *p = &s->outbox[i];
		struct buf *f = p->off ? buf_ref(p->b)
				       : ws_frame(p->binary ? WS_OP_BINARY : WS_OP_TEXT,
						  p->b->data, p->len);

		if (f) {
			conn_send_frame(ws, f, p->snapshot ? CONN_FRAME_SNAPSHOT : CONN_FRAME_EVENT);
			buf_unref(f);
		}
	}
	while (s->out_len)
		outbox_remove(s, s->out_len - 1);
	log_debug("upgraded to websocket sid=%s", s->sid);
}

static void probe_message(struct session *s, struct conn *c, bool binary,
			  const uint8_t *data, size_t len)
{
	enum eio_packet_type type;
	const char *d;
	size_t dlen;

	if (!binary && eio_decode_text((const char *)data, len, &type, &d, &dlen) == 0) {
		if (type == EIO_PING && dlen == 5 && memcmp(d, "probe", 5) == 0 && !s->probed) {
			struct buf *f = ws_frame(WS_OP_TEXT, "3probe", 6);

			if (f) {
				conn_send_frame(c, f, CONN_FRAME_EVENT);
				buf_unref(f);
			}
			s->probed = true;
			/* The client pauses polling: release its pending GET. */
			release_get(s, "6");
			return;
		}
		if (type == EIO_UPGRADE && dlen == 0 && s->probed) {
			complete_upgrade(s);
			return;
		}
	}
	/* Anything else on a probe aborts the upgrade, not the session. */
	log_info("upgrade aborted sid=%s: unexpected packet on the probe", s->sid);
	s->probe = NULL;
	s->probed = false;
	c->sess = NULL;
	conn_ws_close(c, 1002, "unexpected packet during upgrade");
}

void session_ws_message(struct session *s, struct conn *c, bool binary,
			const uint8_t *data, size_t len)
{
	enum eio_packet_type type;
	const char *d;
	size_t dlen;

	if (s->closed)
		return;
	if (c == s->probe) {
		probe_message(s, c, binary, data, len);
		return;
	}
	if (binary) {
		on_packet(s, EIO_MESSAGE, (const char *)data, len, true);
		return;
	}
	if (eio_decode_text((const char *)data, len, &type, &d, &dlen) < 0) {
		log_info("protocol error, closing sid=%s: parse error", s->sid);
		session_close_code(s, 1002, "parse error");
		return;
	}
	on_packet(s, type, d, dlen, false);
}

/* ---- lifecycle -------------------------------------------------------------- */

static void on_upgrade_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct session *s = w->data;

	if (!s->probe) {
		ev_timer_stop(loop, w);
		return;
	}
	if (ev_now(loop) >= s->upgrade_deadline) {
		struct conn *p = s->probe;

		log_info("upgrade timed out sid=%s", s->sid);
		s->probe = NULL;
		s->probed = false;
		p->sess = NULL;
		conn_ws_close(p, 1000, "upgrade timeout");
		ev_timer_stop(loop, w);
		return;
	}
	/* While probing, a GET that arrives is released with a noop every
	 * 100 ms, as the reference server does. */
	if (s->probed)
		release_get(s, "6");
}

static void on_connect_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct session *s = w->data;

	if (!s->sio.ever_joined) {
		log_info("no Socket.IO CONNECT in time sid=%s", s->sid);
		session_close(s, "connect timeout");
	}
}

static struct session *session_new(struct server *srv, enum session_kind kind, bool polling)
{
	struct session *s = calloc(1, sizeof(*s));
	size_t b;

	if (!s)
		return NULL;
	if (util_random_id(s->sid) < 0) {
		free(s);
		return NULL;
	}
	s->srv = srv;
	s->kind = kind;
	s->opened = ev_now(srv->loop);
	s->polling = polling;
	ev_timer_init(&s->upgrade_timer, on_upgrade_timer, NOOP_TICK, NOOP_TICK);
	s->upgrade_timer.data = s;
	ev_timer_init(&s->ctimer, on_connect_timer, srv->cfg->connect_timeout / 1000.0, 0);
	s->ctimer.data = s;
	if (kind == SESSION_SOCKETIO)
		ev_timer_start(srv->loop, &s->ctimer);
	b = bucket_of(srv, s->sid, UTIL_ID_LEN);
	s->hnext = srv->sessions[b];
	srv->sessions[b] = s;
	srv->nsessions++;
	arm_hb(s, srv->cfg->ping_interval);
	return s;
}

void session_close(struct session *s, const char *reason)
{
	session_close_code(s, 1000, reason);
}

void session_close_code(struct session *s, uint16_t code, const char *reason)
{
	struct ev_loop *loop = s->srv->loop;

	if (s->closed)
		return;
	s->closed = true;
	log_info("client disconnected peer=%s sid=%s transport=%s after=%.1fs reason=%s", s->peer,
		 s->sid, s->polling ? "polling" : "websocket", ev_now(loop) - s->opened, reason);
	hb_unlink(s);
	ev_timer_stop(loop, &s->upgrade_timer);
	ev_timer_stop(loop, &s->ctimer);
	table_remove(s);
	socketio_on_close(s);
	/* Polling: the pending GET (or nothing) learns of the close. */
	if (s->get) {
		struct conn *get = s->get;

		s->get = NULL;
		get->sess = NULL;
		conn_respond(get, 200, "Cache-Control: no-store\r\n", "text/plain; charset=UTF-8",
			     "1", 1);
	}
	if (s->post) {
		s->post->sess = NULL;
		s->post = NULL;
	}
	if (s->probe) {
		s->probe->sess = NULL;
		conn_ws_close(s->probe, 1000, "");
		s->probe = NULL;
	}
	if (s->ws) {
		struct conn *ws = s->ws;
		bool shutdown = s->srv->shutting_down;

		s->ws = NULL;
		ws->sess = NULL;
		conn_ws_close(ws, shutdown ? 1001 : code, shutdown ? "server shutting down" : reason);
	}
	s->reap_next = s->srv->session_reap;
	s->srv->session_reap = s;
	ev_prepare_start(loop, &s->srv->reaper);
}

void session_free(struct session *s)
{
	while (s->out_len)
		outbox_remove(s, s->out_len - 1);
	free(s->outbox);
	free(s);
}

int session_post_begin(struct server *srv, struct conn *c, const struct http_request *req)
{
	const char *sid;
	size_t n;
	struct session *s;

	if (!http_query_param(req->query, req->query_len, "sid", &sid, &n) ||
	    !(s = find(srv, sid, n)) || !s->polling)
		return 0; /* the route answers it */
	if (s->post) {
		/* Overlapping POSTs: 400, and the session is closed (reference). */
		log_info("duplicate POST, closing sid=%s", s->sid);
		conn_respond(c, 400, NULL, "text/html", "", 0);
		session_close(s, "overlap from client");
		return -1;
	}
	s->post = c;
	c->sess = s;
	return 0;
}

void session_conn_gone(struct session *s, struct conn *c)
{
	if (c == s->post) {
		s->post = NULL;
	} else if (c == s->ws) {
		s->ws = NULL;
		session_close(s, "transport close");
	} else if (c == s->probe) {
		s->probe = NULL;
		s->probed = false;
	} else if (c == s->get) {
		s->get = NULL;
	}
}

/* ---- requests ------------------------------------------------------------ */

static void polling_request(struct session *s, struct conn *c, const struct http_request *req,
			    const char *body, size_t body_len)
{
	if (util_strieq(req->method, req->method_len, "GET")) {
		if (s->get) {
			/* Overlapping GETs: 400 to this one, close to the first. */
			log_info("duplicate poll, closing sid=%s", s->sid);
			conn_respond(c, 400, NULL, "text/html", "", 0);
			session_close(s, "overlap from client");
			return;
		}
		s->get = c;
		c->sess = s;
		conn_hold(c);
		if (s->out_len)
			schedule_flush(s);
		return;
	}
	if (util_strieq(req->method, req->method_len, "POST")) {
		const struct http_header *ct = http_find_header(req, "Content-Type");
		size_t pos = 0;
		struct eio_packet pk;
		int rc;

		if (s->post == c) {
			s->post = NULL;
			c->sess = NULL;
		}

		/* v4 sends binary inside the text payload (base64). */
		if (ct && ct->value_len >= 24 && util_strieq(ct->value, 24, "application/octet-stream")) {
			conn_respond(c, 400, NULL, "text/html", "invalid content", 15);
			session_close(s, "invalid content");
			return;
		}
		while ((rc = eio_payload_next(body, body_len, &pos, &pk)) == 1 && !s->closed) {
			if (pk.binary) {
				uint8_t *raw = malloc(pk.len / 4 * 3 + 3);
				long n = raw ? eio_base64_decode(pk.data, pk.len, raw) : -1;

				if (n < 0) {
					free(raw);
					rc = -1;
					break;
				}
				on_packet(s, EIO_MESSAGE, (const char *)raw, (size_t)n, true);
				free(raw);
			} else {
				on_packet(s, pk.type, pk.data, pk.len, false);
			}
		}
		if (rc < 0) {
			log_info("protocol error, closing sid=%s: parse error", s->sid);
			conn_respond(c, 400, NULL, "text/html", "parse error", 11);
			session_close(s, "parse error");
			return;
		}
		conn_respond(c, 200, NULL, "text/html", "ok", 2);
		return;
	}
	/* Other methods on an existing session: 500, as the reference. */
	conn_respond(c, 500, NULL, "text/html", "", 0);
}

static void respond_error(struct conn *c, enum eio_error err, bool upgrade)
{
	char body[128];
	int n;

	if (upgrade) {
		/* The reference server answers a refused upgrade in plain text. */
		conn_respond(c, 400, NULL, "text/html", eio_error_message(err),
			     strlen(eio_error_message(err)));
		return;
	}
	n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", (int)err,
		     eio_error_message(err));
	conn_respond(c, eio_error_status(err), NULL, "application/json", body, (size_t)n);
}

void session_handle_request(struct server *srv, struct conn *c, enum session_kind kind,
			    const struct http_request *req, size_t head_len,
			    const char *body, size_t body_len)
{
	bool upgrade = http_header_has_token(http_find_header(req, "Upgrade"), "websocket");
	const char *sid;
	size_t sid_len;
	enum eio_error err;
	struct session *s;
	bool ws;
	char open[EIO_OPEN_PACKET_MAX];
	int n;

	err = eio_check_request(req, upgrade, srv->polling, &ws, &sid, &sid_len);
	if (err == EIO_ERR_NONE && c->origin_refused)
		err = EIO_ERR_FORBIDDEN;
	if (err == EIO_ERR_NONE && upgrade && !ws)
		err = EIO_ERR_BAD_REQUEST; /* an upgrade for the polling transport */
	if (err != EIO_ERR_NONE) {
		respond_error(c, err, upgrade);
		return;
	}
	if (sid) {
		s = find(srv, sid, sid_len);
		if (s && pong_overdue(s)) {
			log_info("ping timeout sid=%s", s->sid);
			session_close(s, "ping timeout");
			s = NULL;
		}
		if (!s || s->kind != kind) {
			respond_error(c, EIO_ERR_SESSION_ID_UNKNOWN, upgrade);
			return;
		}
		if (ws) {
			/* An upgrade: only from polling, only once. */
			if (!s->polling || s->probe) {
				respond_error(c, EIO_ERR_BAD_REQUEST, true);
				return;
			}
			if (conn_upgrade(c, req, head_len) < 0)
				return;
			s->probe = c;
			c->sess = s;
			s->upgrade_deadline = ev_now(srv->loop) + UPGRADE_TIMEOUT;
			ev_timer_again(srv->loop, &s->upgrade_timer);
			return;
		}
		if (!s->polling) {
			/* The session has moved to a WebSocket (transport mismatch). */
			respond_error(c, EIO_ERR_BAD_REQUEST, false);
			return;
		}
		polling_request(s, c, req, body, body_len);
		return;
	}

	/* A handshake. */
	if (ws && conn_check_upgrade(c, req) < 0)
		return;
	s = session_new(srv, kind, !ws);
	if (s)
		snprintf(s->peer, sizeof(s->peer), "%s", c->peer);
	if (!s) {
		conn_respond(c, 500, NULL, "text/plain", "Internal Server Error", 21);
		return;
	}
	n = eio_open_packet(open, sizeof(open), s->sid, !ws, srv->cfg->ping_interval,
			    srv->cfg->ping_timeout, srv->cfg->max_payload);
	if (ws) {
		if (conn_upgrade(c, req, head_len) < 0) {
			session_close(s, "handshake failed");
			return;
		}
		s->ws = c;
		c->sess = s;
		log_info("client connected peer=%s sid=%s transport=websocket clients=%zu", c->peer,
			 s->sid, srv->nsessions);
		session_send_text(s, open, (size_t)n);
		return;
	}
	log_info("client connected peer=%s sid=%s transport=polling clients=%zu", c->peer, s->sid,
		 srv->nsessions);
	conn_respond(c, 200, "Cache-Control: no-store\r\n", "text/plain; charset=UTF-8", open,
		     (size_t)n);
}
