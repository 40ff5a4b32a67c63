/*
 * core_harness.h: the connection core without sockets, for unit tests.
 * A fake conn_io (bytes in from a buffer the test fills, bytes out into a
 * buffer the test reads; writes can be made to block), a fake clock, the
 * real server object built with server_init (no listening socket), and
 * helpers that speak HTTP/1 and WebSocket (masked client frames) to it.
 * After every input the reaper runs, as the loop would before blocking.
 */
#ifndef PGPUSH_CORE_HARNESS_H
#define PGPUSH_CORE_HARNESS_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "http1.h"
#include "server.h"
#include "session.h"
#include "socketio.h"
#include "transport.h"
#include "websocket.h"

struct fake {
	char *in;
	size_t in_len, in_off, in_cap;
	bool eof;
	char *out;
	size_t out_len, out_off, out_cap;
	bool blocked;        /* writev says EAGAIN */
	bool closed;         /* the transport closed it */
	bool shut;           /* the write side was shut */
	unsigned writes;     /* writev calls that wrote */
	int fd;              /* the conn's fd: a number no socket has */
	struct fake *next_fake;
};

static struct fake *fakes;
static double fake_now_v = 1000.0;
static int fake_fds = 100000;

/* The fake of a conn (its fd says which). */
static struct fake *fake_of(const struct conn *c)
{
	for (struct fake *f = fakes; f; f = f->next_fake)
		if (f->fd == c->fd)
			return f;
	abort();
}

static __attribute__((unused)) double fake_now(void *ud)
{
	(void)ud;
	return fake_now_v;
}

static __attribute__((unused)) ssize_t fk_read(struct conn *c, void *buf, size_t len)
{
	struct fake *f = fake_of(c);
	size_t n = f->in_len - f->in_off;

	if (n == 0) {
		if (f->eof)
			return 0;
		errno = EAGAIN;
		return -1;
	}
	if (n > len)
		n = len;
	memcpy(buf, f->in + f->in_off, n);
	f->in_off += n;
	return (ssize_t)n;
}

static __attribute__((unused)) ssize_t fk_writev(struct conn *c, const struct iovec *iov, int n)
{
	struct fake *f = fake_of(c);
	size_t total = 0;

	if (f->blocked) {
		errno = EAGAIN;
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (f->out_len + iov[i].iov_len > f->out_cap) {
			f->out_cap = (f->out_len + iov[i].iov_len) * 2 + 1024;
			f->out = realloc(f->out, f->out_cap);
		}
		memcpy(f->out + f->out_len, iov[i].iov_base, iov[i].iov_len);
		f->out_len += iov[i].iov_len;
		total += iov[i].iov_len;
	}
	f->writes++;
	return (ssize_t)total;
}

static __attribute__((unused)) void fk_shutdown(struct conn *c)
{
	fake_of(c)->shut = true;
}

static __attribute__((unused)) void fk_close(struct conn *c)
{
	fake_of(c)->closed = true;
}

static const struct conn_io fake_io = {
	.read = fk_read,
	.writev = fk_writev,
	.shutdown_write = fk_shutdown,
	.close = fk_close,
	.evented = false,
};

/* ---- the server under test ------------------------------------------------ */

static struct ev_loop *h_loop;
static struct config h_cfg;
static struct server h_srv;

static __attribute__((unused)) void h_config(const char **extra, int nextra)
{
	const char *args[32] = { "t", "--ping-interval", "300", "--ping-timeout", "200",
				 "--connect-timeout", "1000", "--max-payload", "1000000",
				 "--log-level", "error" };
	int n = 11;
	char err[256];

	for (int i = 0; i < nextra; i++)
		args[n++] = extra[i];
	if (config_parse(&h_cfg, n, (char **)args, NULL, stdout, err, sizeof(err)) != CONFIG_OK) {
		printf("Bail out! config: %s\n", err);
		exit(1);
	}
	log_set_level(h_cfg.log_level);
}

static __attribute__((unused)) void h_start(const struct socketio_app *app, void *app_ud,
		    const struct engine_handlers *eio_app, void *eio_ud)
{
	struct server_options o = {
		.app = app, .app_ud = app_ud, .polling = true,
		.engineio_app = eio_app, .engineio_ud = eio_ud,
		.cors_any = true, .now = fake_now,
	};

	if (!h_loop)
		h_loop = ev_default_loop(0);
	if (server_init(&h_srv, h_loop, &h_cfg, &o) < 0) {
		printf("Bail out! server_init\n");
		exit(1);
	}
}

static __attribute__((unused)) void h_stop(void)
{
	server_free(&h_srv);
	while (fakes) {
		struct fake *f = fakes;

		fakes = f->next_fake;
		free(f->in);
		free(f->out);
		free(f);
	}
}

static bool h_keep_paced; /* leave conn_pace's pauses running */

/* What the loop does before blocking; and, unless h_keep_paced, the end
 * of every pause in writing (its timer, as if it had fired). */
static __attribute__((unused)) void h_settle(void)
{
	struct list_node *n, *tmp;

	conn_ctx_run(&h_srv.cx);
	if (h_keep_paced)
		return;
	LIST_FOR_EACH_SAFE(n, tmp, &h_srv.cx.live) {
		struct conn *c = LIST_ENTRY(n, struct conn, link);

		if (c->paced) {
			ev_timer_stop(h_srv.cx.loop, &c->timer);
			c->paced = false;
			conn_flush(c);
		}
	}
	conn_ctx_run(&h_srv.cx);
}

/* Moves the clock and fires every deadline that came. */
static __attribute__((unused)) void h_advance(double secs)
{
	struct engine *es[2] = { &h_srv.sio_eng, h_srv.has_engineio ? &h_srv.eio_eng : NULL };

	fake_now_v += secs;
	for (int i = 0; i < 2; i++) {
		if (!es[i])
			continue;
		deadline_list_run(&es[i]->hb_ping);
		deadline_list_run(&es[i]->hb_pong);
		deadline_list_run(&es[i]->upgrade);
		deadline_list_run(&es[i]->tomb_dl);
	}
	deadline_list_run(&h_srv.sio.connect);
	h_settle();
}

static __attribute__((unused)) struct conn *h_conn(struct fake **fp)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct conn *c;

	f->fd = fake_fds++;
	c = conn_new(&h_srv.cx, f->fd, "10.0.0.1:1234", &fake_io);
	f->next_fake = fakes;
	fakes = f;
	conn_set_handlers(c, &server_router, &h_srv);
	http1_start(c);
	*fp = f;
	return c;
}

/* Bytes from the client; the conn reads them; the loop settles. */
static __attribute__((unused)) void h_input(struct conn *c, struct fake *f, const void *data, size_t len)
{
	if (f->in_len + len > f->in_cap) {
		f->in_cap = (f->in_len + len) * 2 + 1024;
		f->in = realloc(f->in, f->in_cap);
	}
	memcpy(f->in + f->in_len, data, len);
	f->in_len += len;
	if (!f->closed)
		conn_readable(c);
	h_settle();
}

/* The peer goes away (EOF). */
static __attribute__((unused)) void h_eof(struct conn *c, struct fake *f)
{
	f->eof = true;
	if (!f->closed)
		conn_readable(c);
	h_settle();
}

/* ---- HTTP ---------------------------------------------------------------------- */

struct h_resp {
	int status;
	char head[2048];
	char body[65536];
	size_t body_len;
	bool complete;
};

/* Parses the one response written to f so far. */
static __attribute__((unused)) struct h_resp h_response(const struct fake *f)
{
	struct h_resp r;
	const char *end;

	memset(&r, 0, sizeof(r));
	if (f->out_len < 12 || !(end = memmem(f->out, f->out_len, "\r\n\r\n", 4)))
		return r;
	r.status = atoi(f->out + 9);
	snprintf(r.head, sizeof(r.head), "%.*s", (int)(end - f->out), f->out);
	r.body_len = f->out_len - (size_t)(end + 4 - f->out);
	if (r.body_len >= sizeof(r.body))
		r.body_len = sizeof(r.body) - 1;
	memcpy(r.body, end + 4, r.body_len);
	r.body[r.body_len] = '\0';
	r.complete = true;
	return r;
}

/* Sends a request (method, target, extra headers, body) on a new conn. */
static __attribute__((unused)) struct conn *h_request(struct fake **fp, const char *method, const char *target,
			      const char *headers, const char *body)
{
	char req[4096];
	struct conn *c = h_conn(fp);
	size_t blen = body ? strlen(body) : 0;
	int n;

	n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\n%s", method, target,
		     headers ? headers : "");
	if (body)
		n += snprintf(req + n, sizeof(req) - (size_t)n,
			      "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n", blen);
	n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n%s", body ? body : "");
	h_input(c, *fp, req, (size_t)n);
	return c;
}

/* A polling handshake on path ("/socket.io" or "/engine.io"): the sid. */
static __attribute__((unused)) int h_poll_open(const char *path, char sid[UTIL_ID_LEN + 1])
{
	struct fake *f;
	char target[256];
	struct h_resp r;
	const char *p;

	snprintf(target, sizeof(target), "%s/?EIO=4&transport=polling", path);
	h_request(&f, "GET", target, NULL, NULL);
	r = h_response(f);
	if (r.status != 200 || !(p = strstr(r.body, "\"sid\":\"")))
		return -1;
	memcpy(sid, p + 7, UTIL_ID_LEN);
	sid[UTIL_ID_LEN] = '\0';
	return 0;
}

static __attribute__((unused)) void h_target(char *out, size_t n, const char *path, const char *transport,
		     const char *sid)
{
	snprintf(out, n, "%s/?EIO=4&transport=%s%s%s", path, transport, sid ? "&sid=" : "",
		 sid ? sid : "");
}

/* ---- WebSocket --------------------------------------------------------------------- */

#define H_WS_HEADERS "Upgrade: websocket\r\nConnection: Upgrade\r\n" \
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

/* Opens a WebSocket to target; true when the 101 came. */
static __attribute__((unused)) struct conn *h_ws(struct fake **fp, const char *target)
{
	struct conn *c = h_request(fp, "GET", target, H_WS_HEADERS, NULL);
	const char *end = memmem((*fp)->out, (*fp)->out_len, "\r\n\r\n", 4);

	if (strncmp((*fp)->out, "HTTP/1.1 101", 12) != 0 || !end)
		return NULL;
	(*fp)->out_off = (size_t)(end + 4 - (*fp)->out);
	return c;
}

/* A masked client frame. */
static __attribute__((unused)) void h_ws_send(struct conn *c, struct fake *f, int opcode, const void *data, size_t len)
{
	uint8_t *fr = malloc(len + 14);
	const uint8_t mask[4] = { 1, 2, 3, 4 };
	size_t h = 0;

	fr[h++] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		fr[h++] = (uint8_t)(0x80 | len);
	} else {
		fr[h++] = 0x80 | 126;
		fr[h++] = (uint8_t)(len >> 8);
		fr[h++] = (uint8_t)len;
	}
	memcpy(fr + h, mask, 4);
	h += 4;
	for (size_t i = 0; i < len; i++)
		fr[h + i] = ((const uint8_t *)data)[i] ^ mask[i % 4];
	h_input(c, f, fr, h + len);
	free(fr);
}

static __attribute__((unused)) void h_ws_text(struct conn *c, struct fake *f, const char *text)
{
	h_ws_send(c, f, 1, text, strlen(text));
}

/* The next server frame: its opcode (or -1 when none), its payload in
 * out (NUL-terminated). */
static __attribute__((unused)) int h_ws_next(struct fake *f, char *out, size_t outlen, size_t *len_out)
{
	const uint8_t *p = (const uint8_t *)f->out + f->out_off;
	size_t avail = f->out_len - f->out_off, h = 2, len;
	int op;

	if (avail < 2)
		return -1;
	op = p[0] & 0x0f;
	len = p[1] & 0x7f;
	if (len == 126) {
		len = (size_t)p[2] << 8 | p[3];
		h = 4;
	} else if (len == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		h = 10;
	}
	if (avail < h + len)
		return -1;
	if (len >= outlen)
		len = outlen - 1;
	memcpy(out, p + h, len);
	out[len] = '\0';
	if (len_out)
		*len_out = len;
	f->out_off += h + (p[1] & 0x7f) ; /* header part */
	f->out_off = (size_t)((const char *)p - f->out) + h + len;
	return op;
}

/* The next text frame's payload, skipping pings if asked ("" when none). */
static __attribute__((unused)) const char *h_ws_text_next(struct fake *f)
{
	static char buf[65536];
	int op = h_ws_next(f, buf, sizeof(buf), NULL);

	return op < 0 ? "" : buf;
}

#endif
