#include "autoconfig.h"

#include "polling.h"
#include "http1.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

static void get_on_close(struct conn *c)
{
	struct session *s = c->owner;

	if (s->poll.get == c)
		s->poll.get = NULL;
}

static const struct conn_handlers get_handlers = {
	.on_close = get_on_close,
};

static void get_request(struct session *s, struct conn *c)
{
	if (s->poll.get && http1_can_respond(s->poll.get)) {
		/* Overlapping GETs: 400 to this one, close to the first. */
		log_info("duplicate poll, closing sid=%s", s->sid);
		http1_respond(c, 400, NULL, "text/html", "", 0);
		session_close(s, "overlap from client");
		return;
	}
	if (s->poll.get)
		conn_set_handlers(s->poll.get, NULL, NULL); /* gone, not yet told */
	s->poll.get = c;
	conn_set_handlers(c, &get_handlers, s);
	if (s->up.probed) {
		/* The client pauses polling once probed: release its GET with
		 * a noop (the reference does so within 100 ms). */
		session_release_get(s, "6");
		return;
	}
	http1_hold(c);
	session_schedule_flush(s);
}

static void post_request(struct session *s, struct conn *c, const struct http_request *req,
			 const char *body, size_t body_len)
{
	const struct http_header *ct = http_find_header(req, "Content-Type");
	size_t pos = 0;
	struct eio_packet pk;
	int rc;

	if (s->poll.post == c) {
		s->poll.post = NULL;
		conn_set_handlers(c, NULL, NULL);
	}
	/* v4 sends binary inside the text payload (base64). */
	if (ct && ct->value_len >= 24 && util_strieq(ct->value, 24, "application/octet-stream")) {
		http1_respond(c, 400, NULL, "text/html", "invalid content", 15);
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
			session_receive(s, EIO_MESSAGE, (const char *)raw, (size_t)n, true);
			free(raw);
		} else {
			session_receive(s, pk.type, pk.data, pk.len, false);
		}
	}
	if (rc < 0) {
		log_info("protocol error, closing sid=%s: parse error", s->sid);
		http1_respond(c, 400, NULL, "text/html", "parse error", 11);
		session_close(s, "parse error");
		return;
	}
	http1_respond(c, 200, NULL, "text/html", "ok", 2);
}

void polling_request(struct session *s, struct conn *c, const struct http_request *req,
		     const char *body, size_t body_len)
{
	if (util_strieq(req->method, req->method_len, "GET")) {
		get_request(s, c);
		return;
	}
	if (util_strieq(req->method, req->method_len, "POST")) {
		post_request(s, c, req, body, body_len);
		return;
	}
	/* Other methods on an existing session: 500, as the reference. */
	http1_respond(c, 500, NULL, "text/html", "", 0);
}

int polling_post_begin(struct session *s, struct conn *c)
{
	if (s->poll.post && !conn_is_closed(s->poll.post)) {
		/* Overlapping POSTs: 400, and the session is closed (reference). */
		log_info("duplicate POST, closing sid=%s", s->sid);
		http1_respond(c, 400, NULL, "text/html", "", 0);
		session_close(s, "overlap from client");
		return -1;
	}
	if (s->poll.post)
		conn_set_handlers(s->poll.post, NULL, NULL); /* gone, not yet told */
	s->poll.post = c;
	conn_set_handlers(c, &session_post_handlers, s);
	return 0;
}

/* Engine.IO v4 payload: packets joined by the record separator; binary as
 * "b" + base64. */
void polling_flush(struct session *s)
{
	size_t total = 0, o = 0;
	char *body;

	if (s->closed || !s->poll.get || !http1_can_respond(s->poll.get) || !s->poll.len)
		return;
	for (unsigned i = 0; i < s->poll.len; i++) {
		const struct session_pkt *p = &s->poll.outbox[i];

		total += 1 + (p->binary ? 1 + 4 * ((p->len + 2) / 3) + 1 : session_pkt_len(p));
	}
	body = malloc(total + 1);
	if (!body) {
		session_close(s, "out of memory");
		return;
	}
	for (unsigned i = 0; i < s->poll.len; i++) {
		const struct session_pkt *p = &s->poll.outbox[i];

		if (i)
			body[o++] = EIO_RECORD_SEPARATOR;
		if (p->binary) {
			body[o++] = 'b';
			o += eio_base64_encode(p->b->data + p->off, p->len, body + o);
			continue;
		}
		if (p->head) {
			memcpy(body + o, p->head->data, p->head->len);
			o += p->head->len;
		}
		memcpy(body + o, p->b->data + p->off, p->len);
		o += p->len;
		if (p->tail) {
			memcpy(body + o, p->tail, strlen(p->tail));
			o += strlen(p->tail);
		}
	}
	session_outbox_clear(s);
	{
		struct conn *get = s->poll.get;

		s->poll.get = NULL;
		conn_set_handlers(get, NULL, NULL);
		http1_respond(get, 200, "Cache-Control: no-store\r\n", "text/plain; charset=UTF-8",
			      body, o);
	}
	free(body);
}
