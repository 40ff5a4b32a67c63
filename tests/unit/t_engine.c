/* The Engine.IO core without sockets: session lifecycle, polling (held
 * GET, overlaps, the close packet in either order), the upgrade, the
 * heartbeat and every timeout, the session cap, deferred teardown. A fake
 * transport and a fake clock (core_harness.h); the echo application of the
 * protocol test server at /engine.io/. */
#include "autoconfig.h"

#include "log.h"
#include "tap.h"

#include <math.h>
#include "core_harness.h"

static unsigned opened, closed_n;
static char last_close_reason[64];

static int echo_open(void *ud, struct session *s)
{
	opened++;
	return 0;
}

static void echo_message(void *ud, struct session *s, const uint8_t *data, size_t len, bool binary)
{
	if (binary) {
		session_send_binary(s, data, len);
	} else {
		struct ws_part parts[] = { { "4", 1 }, { data, len } };

		session_send_parts(s, parts, 2);
	}
}

static void echo_close(void *ud, struct session *s, const char *reason)
{
	closed_n++;
	snprintf(last_close_reason, sizeof(last_close_reason), "%s", reason);
}

static const struct engine_handlers echo = {
	.on_open = echo_open,
	.on_message = echo_message,
	.on_close = echo_close,
};

static bool never(void *ud, const char *nsp, size_t len)
{
	return false;
}

static const struct socketio_app no_app = { .nsp_exists = never };

#define EIO_PATH "/engine.io"

static void start(const char **extra, int n)
{
	h_config(extra, n);
	h_start(&no_app, NULL, &echo, NULL);
}

static void stop(void)
{
	h_stop();
	config_free(&h_cfg);
}

static struct h_resp get(const char *sid)
{
	struct fake *f;
	char t[256];

	h_target(t, sizeof(t), EIO_PATH, "polling", sid);
	h_request(&f, "GET", t, NULL, NULL);
	return h_response(f);
}

static struct h_resp post(const char *sid, const char *body)
{
	struct fake *f;
	char t[256];

	h_target(t, sizeof(t), EIO_PATH, "polling", sid);
	h_request(&f, "POST", t, NULL, body);
	return h_response(f);
}

/* A GET left pending: its fake. */
static struct fake *held_get(const char *sid)
{
	struct fake *f;
	char t[256];

	h_target(t, sizeof(t), EIO_PATH, "polling", sid);
	h_request(&f, "GET", t, NULL, NULL);
	return f;
}

static void test_lifecycle_and_polling(void)
{
	char sid[UTIL_ID_LEN + 1];
	struct fake *g, *g2;
	struct h_resp r;

	start(NULL, 0);
	opened = closed_n = 0;
	ok(h_poll_open(EIO_PATH, sid) == 0, "polling handshake: 200 and an open packet");
	is_int(h_srv.eio_eng.nsessions, 1, "one session in the table");
	is_int(opened, 1, "the layer above learned of it (on_open)");

	g = held_get(sid);
	is_int(g->out_len, 0, "a GET with nothing to send is held");
	r = post(sid, "4hello");
	is_int(r.status, 200, "POST 4hello: 200");
	is_str(r.body, "ok", "POST answered ok");
	r = h_response(g);
	is_int(r.status, 200, "the held GET is answered");
	is_str(r.body, "4hello", "with the echo");

	r = post(sid, "4test1\x1e" "4test2\x1e" "4test3");
	is_int(r.status, 200, "POST of three packets");
	r = get(sid);
	is_str(r.body, "4test1\x1e" "4test2\x1e" "4test3", "one GET returns all three, joined");

	r = post(sid, "4hello\x1e" "bAQIDBA==");
	r = get(sid);
	is_str(r.body, "4hello\x1e" "bAQIDBA==", "binary echoed as base64 in the payload");

	/* Duplicate GET: 400 to the second, close to the first. */
	g = held_get(sid);
	g2 = held_get(sid);
	is_int(h_response(g2).status, 400, "duplicate GET: 400");
	r = h_response(g);
	ok(r.status == 200 && strcmp(r.body, "1") == 0, "the first GET gets the close packet");
	is_int(h_srv.eio_eng.nsessions, 0, "the session is gone from the table");
	is_int(closed_n, 1, "on_close ran once, from the reaper");
	is_str(last_close_reason, "overlap from client", "with the reason");
	is_int(get(sid).status, 400, "a later GET: 400 (unknown sid)");

	/* Invalid packet format. */
	ok(h_poll_open(EIO_PATH, sid) == 0, "new session");
	r = post(sid, "abc");
	is_int(r.status, 400, "POST abc: 400");
	is_int(get(sid).status, 400, "and the session is closed");

	/* Other methods: 500. */
	ok(h_poll_open(EIO_PATH, sid) == 0, "new session");
	{
		struct fake *f;
		char t[256];

		h_target(t, sizeof(t), EIO_PATH, "polling", sid);
		h_request(&f, "PUT", t, NULL, NULL);
		is_int(h_response(f).status, 500, "PUT on a session: 500");
	}
	/* application/octet-stream is refused in v4. */
	{
		struct fake *f;
		char t[256], req[512];
		struct conn *c = h_conn(&f);
		int n;

		h_target(t, sizeof(t), EIO_PATH, "polling", sid);
		n = snprintf(req, sizeof(req),
			     "POST %s HTTP/1.1\r\nContent-Type: application/octet-stream\r\n"
			     "Content-Length: 2\r\n\r\n4a", t);
		h_input(c, f, req, (size_t)n);
		is_int(h_response(f).status, 400, "POST application/octet-stream: 400");
	}
	stop();
}

static void test_overlapping_posts(void)
{
	char sid[UTIL_ID_LEN + 1];
	char t[256], req[512];
	struct fake *p1, *p2, *other;
	struct conn *c1, *co;
	struct h_resp r;
	int n;

	start(NULL, 0);
	ok(h_poll_open(EIO_PATH, sid) == 0, "session for overlapping POSTs");
	h_target(t, sizeof(t), EIO_PATH, "polling", sid);
	/* A POST whose body is still coming... */
	c1 = h_conn(&p1);
	n = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nContent-Length: 10\r\n\r\n4ab", t);
	h_input(c1, p1, req, (size_t)n);
	is_int(p1->out_len, 0, "a POST waiting for its body is not answered");
	/* ...and a second one: 400, the session closes (reference). */
	r = post(sid, "4x");
	is_int(r.status, 400, "overlapping POST: 400");
	is_int(h_srv.eio_eng.nsessions, 0, "and the session is closed");
	h_input(c1, p1, "cdefghi", 7);
	r = h_response(p1);
	is_int(r.status, 400, "the first POST, once complete, meets an unknown sid: 400");

	/* Defect 2: a POST to another path with ?sid= and a body does not
	 * count as the session's POST. */
	ok(h_poll_open(EIO_PATH, sid) == 0, "new session");
	co = h_conn(&other);
	n = snprintf(req, sizeof(req), "POST /elsewhere?sid=%s HTTP/1.1\r\nContent-Length: 10\r\n\r\n4ab",
		     sid);
	h_input(co, other, req, (size_t)n);
	r = post(sid, "4real");
	is_int(r.status, 200, "a POST to another path with the sid does not block the session's POST");
	is_int(h_srv.eio_eng.nsessions, 1, "and the session lives");
	h_input(co, other, "cdefghi", 7);
	is_int(h_response(other).status, 404, "the other POST gets its own answer (404)");
	r = get(sid);
	is_str(r.body, "4real", "the real POST was delivered");

	/* A POST whose client goes away mid-body frees the slot. */
	c1 = h_conn(&p2);
	n = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nContent-Length: 10\r\n\r\n4ab", t);
	h_input(c1, p2, req, (size_t)n);
	h_eof(c1, p2);
	r = post(sid, "4after");
	is_int(r.status, 200, "after a POST died mid-body, the next POST is fine");
	stop();
}

static void test_close_packet_races(void)
{
	char sid[UTIL_ID_LEN + 1];
	struct fake *g;
	struct h_resp r;

	start(NULL, 0);
	/* GET first, then the close packet. */
	ok(h_poll_open(EIO_PATH, sid) == 0, "session");
	g = held_get(sid);
	r = post(sid, "1");
	is_int(r.status, 200, "POST 1: 200");
	r = h_response(g);
	ok(r.status == 200 && strcmp(r.body, "6") == 0, "the pending GET gets a noop");
	is_int(get(sid).status, 400, "the next GET: 400");

	/* The close packet first, then the GET that raced it. */
	ok(h_poll_open(EIO_PATH, sid) == 0, "session");
	r = post(sid, "1");
	is_int(r.status, 200, "POST 1 before any GET: 200");
	r = get(sid);
	ok(r.status == 200 && strcmp(r.body, "6") == 0, "the GET that comes after gets a noop");
	is_int(get(sid).status, 400, "the next GET: 400");

	/* The tombstone does not last. */
	ok(h_poll_open(EIO_PATH, sid) == 0, "session");
	r = post(sid, "1");
	h_advance(ENGINE_TOMB_SECS + 0.1);
	is_int(get(sid).status, 400, "a GET long after the close: 400");
	stop();
}

static void test_upgrade(void)
{
	char sid[UTIL_ID_LEN + 1];
	char t[256];
	struct fake *w, *w2, *g;
	struct conn *ws, *ws2;
	char buf[256];

	start(NULL, 0);
	ok(h_poll_open(EIO_PATH, sid) == 0, "session to upgrade");
	g = held_get(sid);
	h_target(t, sizeof(t), EIO_PATH, "websocket", sid);
	ws = h_ws(&w, t);
	ok(ws != NULL, "probe WebSocket: 101");
	h_ws_text(ws, w, "2probe");
	is_str(h_ws_text_next(w), "3probe", "2probe answered 3probe");
	ok(h_response(g).status == 200 && strcmp(h_response(g).body, "6") == 0,
	   "the pending GET is released with a noop");
	g = held_get(sid);
	ok(strcmp(h_response(g).body, "6") == 0, "a GET while probed is released with a noop");
	post(sid, "4queued");
	h_ws_text(ws, w, "5");
	is_str(h_ws_text_next(w), "4queued", "what was queued for polling follows over the WebSocket");
	is_int(get(sid).status, 400, "a GET after the upgrade: 400");
	h_ws_text(ws, w, "4hello");
	is_str(h_ws_text_next(w), "4hello", "echo over the WebSocket");

	/* A second WebSocket for the upgraded sid: handshake, then closed. */
	ws2 = h_ws(&w2, t);
	ok(ws2 != NULL, "second WebSocket for the sid: the handshake completes (101)");
	is_int(h_ws_next(w2, buf, sizeof(buf), NULL), 8, "then it is closed (close frame)");
	h_ws_text(ws, w, "4again");
	is_str(h_ws_text_next(w), "4again", "the first WebSocket still echoes");

	/* Anything but 2probe/5 on a probe aborts the probe, not the session. */
	ok(h_poll_open(EIO_PATH, sid) == 0, "another session");
	h_target(t, sizeof(t), EIO_PATH, "websocket", sid);
	ws = h_ws(&w, t);
	h_ws_text(ws, w, "4nope");
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), 8, "an unexpected packet closes the probe");
	is_int(h_srv.eio_eng.nsessions, 2, "the polling session stays");
	post(sid, "4still");
	is_str(get(sid).body, "4still", "and still works over polling");

	stop();

	/* The timeout alone, with a long heartbeat. */
	{
		const char *hb[] = { "--ping-interval", "60000", "--ping-timeout", "60000" };

		start(hb, 4);
	}
	ok(h_poll_open(EIO_PATH, sid) == 0, "session with a long heartbeat");
	h_target(t, sizeof(t), EIO_PATH, "websocket", sid);
	ws = h_ws(&w, t);
	h_ws_text(ws, w, "2probe");
	is_str(h_ws_text_next(w), "3probe", "probed");
	h_advance(ENGINE_UPGRADE_TIMEOUT + 0.1);
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), 8, "the probe is closed after the upgrade timeout");
	post(sid, "4poll");
	is_str(get(sid).body, "4poll", "the session stays on polling");
	stop();
}

static void test_heartbeat(void)
{
	char sid[UTIL_ID_LEN + 1];
	char buf[64];
	struct fake *w, *g;
	struct conn *ws;
	struct h_resp r;

	start(NULL, 0);
	ws = h_ws(&w, EIO_PATH "/?EIO=4&transport=websocket");
	ok(ws != NULL, "WebSocket handshake");
	ok(strncmp(h_ws_text_next(w), "0{\"sid\":", 8) == 0, "open packet first");
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), -1, "nothing before pingInterval");
	/* The engine's clock, not the loop's: only the fake clock moves. */
	h_advance(0.301);
	is_str(h_ws_text_next(w), "2", "a ping at pingInterval (on the engine's clock)");
	h_ws_text(ws, w, "3");
	h_advance(0.25);
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), -1, "the next ping is pingInterval after the pong");
	h_advance(0.06);
	is_str(h_ws_text_next(w), "2", "second ping");
	h_ws_text(ws, w, "3");
	h_advance(0.301);
	is_str(h_ws_text_next(w), "2", "third ping");
	h_advance(0.201);
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), 8, "no pong within pingTimeout: closed");
	is_int(h_srv.eio_eng.nsessions, 0, "session gone");
	is_str(last_close_reason, "ping timeout", "reason: ping timeout");

	/* A ping from the client is a protocol error in v4. */
	ws = h_ws(&w, EIO_PATH "/?EIO=4&transport=websocket");
	h_ws_text_next(w);
	h_ws_text(ws, w, "2");
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), 8, "client ping: closed");

	/* Polling: the ping goes to the GET; no pong closes the session. */
	ok(h_poll_open(EIO_PATH, sid) == 0, "polling session");
	g = held_get(sid);
	h_advance(0.301);
	r = h_response(g);
	is_str(r.body, "2", "the held GET carries the ping");
	r = post(sid, "3");
	is_int(r.status, 200, "pong POSTed");
	h_advance(0.301);
	is_str(get(sid).body, "2", "the next ping waits for the next GET");
	h_advance(0.201);
	is_int(get(sid).status, 400, "no pong: the session is closed");

	/* The deadline is checked when a request comes, before a late timer. */
	ok(h_poll_open(EIO_PATH, sid) == 0, "polling session");
	fake_now_v += 0.6; /* no timer has run */
	is_int(get(sid).status, 400, "a request after pingInterval + pingTimeout: 400 at once");

	/* A wall-clock step does not matter: nothing but the engine's clock
	 * is read. */
	ws = h_ws(&w, EIO_PATH "/?EIO=4&transport=websocket");
	h_ws_text_next(w);
	h_advance(0.2);
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), -1, "no ping before its time on the engine's clock");
	stop();

	/* Socket.IO: the connect timeout. */
	{
		const char *hb[] = { "--ping-interval", "60000", "--ping-timeout", "60000" };

		start(hb, 4);
	}
	ws = h_ws(&w, "/socket.io/?EIO=4&transport=websocket");
	h_ws_text_next(w);
	h_advance(0.99);
	is_int(h_srv.sio_eng.nsessions, 1, "no CONNECT yet, within connectTimeout: open");
	h_advance(0.02);
	is_int(h_srv.sio_eng.nsessions, 0, "no CONNECT within connectTimeout: closed");
	{
		int op, last = -1;

		while ((op = h_ws_next(w, buf, sizeof(buf), NULL)) >= 0)
			last = op;
		is_int(last, 8, "with a close frame");
	}
	stop();
}

static void test_cap(void)
{
	const char *cap[] = { "--max-clients", "3" };
	char sid[UTIL_ID_LEN + 1];
	struct fake *f;

	start(cap, 2);
	ok(h_poll_open(EIO_PATH, sid) == 0 && h_poll_open(EIO_PATH, sid) == 0 && h_poll_open(EIO_PATH, sid) == 0,
	   "three polling sessions under --max-clients 3");
	h_request(&f, "GET", EIO_PATH "/?EIO=4&transport=polling", NULL, NULL);
	is_int(h_response(f).status, 503, "the fourth session: 503");
	ok(strstr(h_response(f).head, "Retry-After") != NULL, "with Retry-After");
	h_request(&f, "GET", EIO_PATH "/?EIO=4&transport=websocket", H_WS_HEADERS, NULL);
	is_int(h_response(f).status, 503, "a WebSocket session too: 503");
	stop();
}

static void test_teardown(void)
{
	struct fake *w;
	struct conn *ws;
	char buf[64];

	start(NULL, 0);
	/* A session freed while its conn has queued output. */
	ws = h_ws(&w, EIO_PATH "/?EIO=4&transport=websocket");
	h_ws_text_next(w);
	w->blocked = true;
	h_ws_text(ws, w, "4one");
	h_ws_text(ws, w, "4two");
	ok(ws->outq_len >= 2, "output queued while the client does not read");
	h_ws_text(ws, w, "abc"); /* parse error: the session closes */
	is_int(h_srv.eio_eng.nsessions, 0, "the session is closed and reaped");
	ok(!w->closed, "its conn lives on to send what is queued");
	w->blocked = false;
	conn_flush(ws);
	h_settle();
	is_str(h_ws_text_next(w), "4one", "queued output is sent after the session is freed");
	is_str(h_ws_text_next(w), "4two", "in order");
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), 8, "then the close frame");
	h_eof(ws, w);
	ok(w->closed, "the conn closes when the peer does");
	stop();
}

/* The transport's own timers: the request timeout, the linger after a
 * response, the wait for the peer's close frame. They are libev timers
 * (monotonic); the test fires them by hand. */
static void test_conn_timeouts(void)
{
	struct fake *f, *w;
	struct conn *c, *ws;
	char buf[64];

	start(NULL, 0);
	c = h_conn(&f);
	h_input(c, f, "GET /engine.io/?EIO=4 HTTP/1.1\r\nHost", 36);
	is_int(f->out_len, 0, "an incomplete request head waits");
	ok(ev_is_active(&c->timer), "with the request timer running");
	ev_invoke(h_loop, &c->timer, EV_TIMER);
	h_settle();
	is_int(h_response(f).status, 408, "the request timeout: 408");
	ok(f->shut && !f->closed, "then our side is shut and the conn lingers");
	ok(ev_is_active(&c->ctimer), "for a while");
	ev_invoke(h_loop, &c->ctimer, EV_TIMER);
	h_settle();
	ok(f->closed, "the linger ends: closed");

	ws = h_ws(&w, EIO_PATH "/?EIO=4&transport=websocket");
	h_ws_text_next(w);
	h_ws_text(ws, w, "1");
	is_int(h_ws_next(w, buf, sizeof(buf), NULL), 8, "a close packet: our close frame");
	ok(!w->closed && ev_is_active(&ws->ctimer), "waiting for the peer's close frame");
	ev_invoke(h_loop, &ws->ctimer, EV_TIMER);
	h_settle();
	ok(w->closed, "the peer never answers: closed after the close timeout");

	/* A conn whose owner was told already (its close handshake began)
	 * still gets the reaper when it closes: it is freed, and a shutdown
	 * waiting for the last conn ends. */
	ws = h_ws(&w, EIO_PATH "/?EIO=4&transport=websocket");
	h_ws_text_next(w);
	h_ws_text(ws, w, "1");
	ok(ws->told && !w->closed, "closing handshake begun, owner told");
	ok(!ev_is_active(&h_srv.cx.reaper), "nothing left for the reaper");
	w->eof = true;
	conn_readable(ws);
	ok(w->closed, "the peer goes away: closed");
	ok(ev_is_active(&h_srv.cx.reaper), "and the reaper will run before the loop blocks");
	h_settle();
	stop();
}

/* The send timeout: output the peer does not take for --send-timeout
 * drops the conn; every byte taken starts it again. */
static void test_send_timeout(void)
{
	char sid[UTIL_ID_LEN + 1], t[256];
	struct fake *g, *w;
	struct conn *gc, *ws;

	start(NULL, 0);
	is_int(h_cfg.send_timeout, 10000, "--send-timeout defaults to 10 s");
	/* A polling GET whose response is never read. */
	ok(h_poll_open(EIO_PATH, sid) == 0, "polling session");
	h_target(t, sizeof(t), EIO_PATH, "polling", sid);
	gc = h_request(&g, "GET", t, NULL, NULL);
	g->blocked = true;
	post(sid, "4unread");
	ok(gc->stalled && ev_is_active(&gc->timer), "the response waits for the peer: send timeout armed");
	ok(fabs(ev_timer_remaining(h_loop, &gc->timer) - 10.0) < 0.5, "for --send-timeout");
	ev_invoke(h_loop, &gc->timer, EV_TIMER);
	h_settle();
	ok(g->closed, "nothing taken within the send timeout: the conn is dropped");

	/* A WebSocket that stops reading; then reads again in time. */
	ws = h_ws(&w, EIO_PATH "/?EIO=4&transport=websocket");
	h_ws_text_next(w);
	w->blocked = true;
	h_ws_text(ws, w, "4one");
	ok(ws->stalled, "a WebSocket write that blocks arms the send timeout");
	w->blocked = false;
	conn_flush(ws);
	ok(!ws->stalled && !ev_is_active(&ws->timer), "the peer reads: the timeout is off");
	is_str(h_ws_text_next(w), "4one", "and the message went out");
	w->blocked = true;
	h_ws_text(ws, w, "4two");
	ok(ws->stalled, "blocked again");
	ev_invoke(h_loop, &ws->timer, EV_TIMER);
	h_settle();
	ok(w->closed, "stalled for the send timeout: dropped");
	is_int(h_srv.eio_eng.nsessions, 1, "and its session is closed (the polling one stays)");
	stop();
}

/* A body streamed in chunks (a static file): one chunk held per client,
 * pulled as the peer takes them; the source released exactly once. */
struct fake_source {
	size_t total, sent;
	unsigned pulls, dones;
	bool fail;
};

static struct buf *src_next(void *ud, size_t max, bool *end)
{
	struct fake_source *s = ud;
	size_t n = s->total - s->sent < max ? s->total - s->sent : max;
	struct buf *b;

	s->pulls++;
	if (s->fail)
		return NULL;
	b = buf_new(n);
	for (size_t i = 0; i < n; i++)
		b->data[i] = (uint8_t)((s->sent + i) * 7);
	s->sent += n;
	*end = s->sent == s->total;
	return b;
}

static void src_done(void *ud)
{
	((struct fake_source *)ud)->dones++;
}

static const struct conn_source fake_src = { src_next, src_done };

static bool body_ok(const struct fake *f, size_t total)
{
	const char *end = memmem(f->out, f->out_len, "\r\n\r\n", 4);
	const uint8_t *b;

	if (!end || f->out_len - (size_t)(end + 4 - f->out) != total)
		return false;
	b = (const uint8_t *)end + 4;
	for (size_t i = 0; i < total; i++)
		if (b[i] != (uint8_t)(i * 7))
			return false;
	return true;
}

static void test_stream(void)
{
	struct fake_source s;
	struct fake *f;
	struct conn *c;

	start(NULL, 0);
	memset(&s, 0, sizeof(s));
	s.total = 3 * CONN_SOURCE_CHUNK + 1234;
	c = h_conn(&f);
	http1_respond_stream(c, 200, NULL, "application/octet-stream", s.total, &fake_src, &s);
	h_settle();
	is_int(h_response(f).status, 200, "a streamed response: 200");
	ok(strstr(h_response(f).head, "Content-Length: 197842") != NULL, "with the whole length");
	ok(body_ok(f, s.total), "and every byte of the body, in order");
	is_int(s.pulls, 4, "pulled in four chunks");
	is_int(s.dones, 1, "the source released once");
	ok(f->shut, "then the lingering close");

	memset(&s, 0, sizeof(s));
	s.total = 16 * CONN_SOURCE_CHUNK;
	c = h_conn(&f);
	f->blocked = true;
	http1_respond_stream(c, 200, NULL, "application/octet-stream", s.total, &fake_src, &s);
	h_settle();
	ok(s.pulls <= 1, "a client that does not read holds at most one chunk (%u pulled)", s.pulls);
	ok(c->out_bytes <= CONN_SOURCE_CHUNK + 256, "%zu bytes pending", c->out_bytes);
	f->blocked = false;
	conn_flush(c);
	h_settle();
	ok(body_ok(f, s.total), "it reads again: the rest follows");
	is_int(s.dones, 1, "released once");

	memset(&s, 0, sizeof(s));
	s.total = 16 * CONN_SOURCE_CHUNK;
	c = h_conn(&f);
	f->blocked = true;
	http1_respond_stream(c, 200, NULL, "application/octet-stream", s.total, &fake_src, &s);
	ev_invoke(h_loop, &c->timer, EV_TIMER); /* the send timeout */
	h_settle();
	ok(f->closed, "a stalled stream is dropped by the send timeout");
	is_int(s.dones, 1, "and its source released once");

	memset(&s, 0, sizeof(s));
	s.total = 1000;
	s.fail = true;
	c = h_conn(&f);
	http1_respond_stream(c, 200, NULL, "application/octet-stream", s.total, &fake_src, &s);
	h_settle();
	ok(f->closed, "a source that fails closes the conn (the length cannot be kept)");
	is_int(s.dones, 1, "released once");

	memset(&s, 0, sizeof(s));
	s.total = 1000;
	c = h_conn(&f);
	h_input(c, f, "HEAD /x HTTP/1.1\r\nHost: t\r\n", 26);
	c->head_only = true;
	http1_respond_stream(c, 200, NULL, "application/octet-stream", s.total, &fake_src, &s);
	h_settle();
	ok(body_ok(f, 0) && strstr(h_response(f).head, "Content-Length: 1000"), "HEAD: the length, no body");
	is_int(s.pulls, 0, "nothing pulled");
	is_int(s.dones, 1, "released at once");
	stop();
}

static void test_loopback(void)
{
	ok(server_peer_is_loopback("127.0.0.1:5"), "127.0.0.1 is loopback");
	ok(server_peer_is_loopback("127.1.2.3:5"), "127.0.0.0/8 is loopback");
	ok(server_peer_is_loopback("[::1]:5"), "::1 is loopback");
	ok(server_peer_is_loopback("[::ffff:127.0.0.1]:5"), "::ffff:127.x is loopback");
	ok(!server_peer_is_loopback("10.0.0.1:5"), "10.0.0.1 is not");
	ok(!server_peer_is_loopback("[::2]:5"), "::2 is not");
	ok(!server_peer_is_loopback("[::ffff:10.0.0.1]:5"), "::ffff:10.x is not");
}

/* The global budget (--max-total-pending-bytes): the clients with the
 * largest unsent backlog are dropped first, once the turn of the loop is
 * over (the reaper), until all of them together are under it. */
static void test_total_budget(void)
{
	const char *args[] = { "--max-total-pending-bytes", "65536" };
	struct fake *f[4];
	struct conn *c[4];
	struct buf *b40 = buf_new(40000), *b30 = buf_new(30000), *b20 = buf_new(20000),
		   *b10 = buf_new(10000);

	start(args, 2);
	is_int(h_cfg.max_total_pending_bytes, 65536, "--max-total-pending-bytes");
	for (int i = 0; i < 4; i++) {
		c[i] = h_ws(&f[i], EIO_PATH "/?EIO=4&transport=websocket");
		h_ws_text_next(f[i]);
	}
	ok(c[0] && c[1] && c[2] && c[3], "four WebSocket clients");
	is_int(h_srv.cx.out_total, 0, "nothing pending");
	f[0]->blocked = f[1]->blocked = f[2]->blocked = true; /* c[3] reads */
	conn_send(c[0], b40, false);
	conn_send(c[1], b20, false);
	conn_send(c[2], b10, false);
	conn_send(c[3], b30, false);
	is_int(h_srv.cx.out_total, 70000, "the total counts what each client has not taken");
	conn_send(c[3], b30, false);
	is_int(h_srv.cx.out_total, 70000, "a client that reads adds nothing");
	ok(!f[0]->closed, "over the budget, nobody is dropped within the turn of the loop");
	h_settle();
	ok(f[0]->closed, "then the client with the largest backlog is dropped");
	ok(!f[1]->closed && !f[2]->closed && !f[3]->closed, "and only it: the rest is under the budget");
	is_int(h_srv.cx.out_total, 30000, "its bytes leave the total");
	is_int(h_srv.cx.budget_drops, 1, "counted");
	conn_send(c[1], b30, false);  /* 50000 */
	conn_send(c[2], b20, false);  /* 30000 */
	conn_send(c[3], b40, false);  /* taken */
	h_settle();
	ok(f[1]->closed && !f[2]->closed, "over again: the larger of the two goes, 50000 bytes");
	ok(!f[3]->closed, "the client that reads stays");
	is_int(h_srv.cx.out_total, 30000, "under the budget");
	f[2]->blocked = false;
	conn_flush(c[2]);
	is_int(h_srv.cx.out_total, 0, "a client that reads again empties its share");
	buf_unref(b40);
	buf_unref(b30);
	buf_unref(b20);
	buf_unref(b10);
	stop();
}

/* The Origin policy of pgpushd (not the protocol test server's cors_any):
 * the same origin, no Origin, or a listed one; anything else refused. */
static void test_origin(void)
{
	const char *args[] = { "--allowed-origin", "http://localhost:5173" };
	struct fake *f;
	struct h_resp r;

	start(NULL, 0);
	h_srv.cors_any = false;
	h_request(&f, "GET", EIO_PATH "/?EIO=4&transport=polling", "Origin: http://evil.example\r\n", NULL);
	r = h_response(f);
	is_int(r.status, 403, "another site's Origin: 403 on the polling handshake");
	h_request(&f, "GET", EIO_PATH "/?EIO=4&transport=websocket",
		  H_WS_HEADERS "Origin: http://evil.example\r\n", NULL);
	r = h_response(f);
	ok(r.status == 400 && strstr(r.body, "Forbidden"), "and a refused upgrade (400 Forbidden)");
	h_request(&f, "GET", EIO_PATH "/?EIO=4&transport=polling", "Origin: http://t\r\n", NULL);
	r = h_response(f);
	is_int(r.status, 200, "the same origin (Host: t) is allowed");
	ok(strstr(r.head, "Access-Control-Allow-Origin: http://t\r\n") && strstr(r.head, "Vary: Origin"),
	   "CORS names it, with Vary: Origin");
	ok(!strstr(r.head, "Access-Control-Allow-Origin: *"), "never *");
	h_request(&f, "GET", EIO_PATH "/?EIO=4&transport=polling", NULL, NULL);
	r = h_response(f);
	ok(r.status == 200 && !strstr(r.head, "Access-Control-Allow-Origin"), "no Origin: allowed, no CORS");
	h_request(&f, "GET", EIO_PATH "/?EIO=4&transport=polling", "Origin: http://localhost:5173\r\n", NULL);
	is_int(h_response(f).status, 403, "a dev server is another origin");
	stop();

	start(args, 2);
	h_srv.cors_any = false;
	h_request(&f, "GET", EIO_PATH "/?EIO=4&transport=polling", "Origin: http://localhost:5173\r\n", NULL);
	r = h_response(f);
	ok(r.status == 200 && strstr(r.head, "Access-Control-Allow-Origin: http://localhost:5173\r\n"),
	   "--allowed-origin http://localhost:5173 allows it, named in CORS");
	h_request(&f, "GET", EIO_PATH "/?EIO=4&transport=polling", "Origin: http://t\r\n", NULL);
	is_int(h_response(f).status, 200, "and the same origin still");
	h_request(&f, "GET", EIO_PATH "/?EIO=4&transport=polling", "Origin: http://evil.example\r\n", NULL);
	is_int(h_response(f).status, 403, "others stay refused");
	stop();
}

int main(void)
{
	test_lifecycle_and_polling();
	test_overlapping_posts();
	test_close_packet_races();
	test_upgrade();
	test_heartbeat();
	test_cap();
	test_teardown();
	test_conn_timeouts();
	test_send_timeout();
	test_stream();
	test_loopback();
	test_total_budget();
	test_origin();
	return done_testing();
}
