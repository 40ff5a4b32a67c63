#include "autoconfig.h"

#include "socketio.h"
#include "log.h"
#include "server.h"
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct socketio_app *app_of(const struct session *s)
{
	return s->srv->app;
}

static int find_nsp(const struct session *s, const char *nsp, size_t len)
{
	for (unsigned i = 0; i < s->sio.n_nsp; i++) {
		if (strlen(s->sio.nsp[i]) == len && memcmp(s->sio.nsp[i], nsp, len) == 0)
			return (int)i;
	}
	return -1;
}

bool socketio_joined_any(const struct session *s)
{
	return s->sio.n_nsp > 0;
}

/* "/custom," for a namespace other than the main one, "" for "/". */
static size_t nsp_prefix(const char *nsp, size_t len, char *out, size_t outlen)
{
	if (sio_is_main_nsp(nsp, len) || len + 2 > outlen)
		return 0;
	memcpy(out, nsp, len);
	out[len] = ',';
	return len + 1;
}

/* Sends "4<type>[<n>-][<nsp>,][<id>]<array>" and its n attachments.
 * type is EVENT or ACK; with attachments it becomes BINARY_EVENT/BINARY_ACK. */
static void send_packet(struct session *s, enum sio_type type, const char *nsp, size_t nsp_len,
			bool has_id, uint64_t id, const struct ws_part *body, size_t nbody,
			struct buf *const *att, unsigned n)
{
	char head[SOCKETIO_MAX_NSP_LEN + 48];
	struct ws_part parts[16];
	size_t h, np = 0;

	if (n)
		type = type == SIO_EVENT ? SIO_BINARY_EVENT : SIO_BINARY_ACK;
	h = (size_t)snprintf(head, sizeof(head), "4%d", (int)type);
	if (n)
		h += (size_t)snprintf(head + h, sizeof(head) - h, "%u-", n);
	h += nsp_prefix(nsp, nsp_len, head + h, sizeof(head) - h);
	if (has_id)
		h += (size_t)snprintf(head + h, sizeof(head) - h, "%llu", (unsigned long long)id);
	parts[np++] = (struct ws_part){ head, h };
	for (size_t i = 0; i < nbody && np < 16; i++)
		parts[np++] = body[i];
	session_send_parts(s, parts, np);
	/* Attachments follow their packet, in order, nothing in between
	 * (this is single-threaded: nothing can interleave). */
	for (unsigned i = 0; i < n && !s->closed; i++)
		session_send_binary(s, att[i]->data, att[i]->len);
}

void socketio_emit(struct session *s, const char *nsp, size_t nsp_len,
		   const struct ws_part *array_parts, size_t nparts,
		   struct buf *const *att, unsigned n)
{
	send_packet(s, SIO_EVENT, nsp, nsp_len, false, 0, array_parts, nparts, att, n);
}

int socketio_emit_with_ack(struct session *s, const char *nsp, size_t nsp_len,
			   const struct ws_part *array_parts, size_t nparts,
			   struct buf *const *att, unsigned n,
			   socketio_ack_cb *cb, void *ud)
{
	uint64_t id;

	if (s->sio.n_acks == SOCKETIO_MAX_PENDING_ACKS)
		return -1;
	if (!s->sio.acks &&
	    !(s->sio.acks = malloc(SOCKETIO_MAX_PENDING_ACKS * sizeof(*s->sio.acks))))
		return -1;
	id = s->sio.next_ack_id++;
	s->sio.acks[s->sio.n_acks++] = (struct socketio_pending_ack){ id, cb, ud };
	send_packet(s, SIO_EVENT, nsp, nsp_len, true, id, array_parts, nparts, att, n);
	return 0;
}

void socketio_ack(struct session *s, const char *nsp, size_t nsp_len, uint64_t id,
		  const struct ws_part *array_parts, size_t nparts,
		  struct buf *const *att, unsigned n)
{
	send_packet(s, SIO_ACK, nsp, nsp_len, true, id, array_parts, nparts, att, n);
}

size_t socketio_first_element_end(const char *a, size_t len)
{
	size_t i = 0;

	while (i < len && (a[i] == ' ' || a[i] == '\t' || a[i] == '\n' || a[i] == '\r'))
		i++;
	if (i >= len || a[i] != '[')
		return 0;
	i++;
	while (i < len && (a[i] == ' ' || a[i] == '\t' || a[i] == '\n' || a[i] == '\r'))
		i++;
	if (i >= len)
		return 0;
	if (a[i] == '"') {
		for (i++; i < len; i++) {
			if (a[i] == '\\')
				i++;
			else if (a[i] == '"')
				return i + 1;
		}
		return 0;
	}
	if (a[i] == '-' || (a[i] >= '0' && a[i] <= '9')) {
		while (i < len && strchr("+-.eE0123456789", a[i]))
			i++;
		return i;
	}
	return 0;
}

static void leave(struct session *s, unsigned idx)
{
	char *nsp = s->sio.nsp[idx];

	s->sio.nsp[idx] = s->sio.nsp[--s->sio.n_nsp];
	if (app_of(s)->on_leave)
		app_of(s)->on_leave(s->srv->app_ud, s, nsp, strlen(nsp));
	free(nsp);
}

void socketio_on_close(struct session *s)
{
	while (s->sio.n_nsp)
		leave(s, s->sio.n_nsp - 1);
	free(s->sio.acks);
	s->sio.acks = NULL;
	s->sio.n_acks = 0;
	free(s->sio.pending);
	s->sio.pending = NULL;
	for (unsigned i = 0; i < s->sio.att_have; i++)
		buf_unref(s->sio.att[i]);
	s->sio.att_have = s->sio.att_due = 0;
}

static void fail(struct session *s, const char *what)
{
	log_info("protocol error, closing sid=%s: %s", s->sid, what);
	session_close_code(s, 1002, what);
}

static void do_connect(struct session *s, const struct sio_packet *p, const char *auth,
		       size_t auth_len)
{
	char out[SOCKETIO_MAX_NSP_LEN + 64];
	char id[UTIL_ID_LEN + 1];
	size_t n;

	if (!app_of(s)->nsp_exists(s->srv->app_ud, p->nsp, p->nsp_len) ||
	    p->nsp_len > SOCKETIO_MAX_NSP_LEN) {
		n = (size_t)snprintf(out, sizeof(out), "44%.*s,{\"message\":\"Invalid namespace\"}",
				     (int)(p->nsp_len > SOCKETIO_MAX_NSP_LEN ? SOCKETIO_MAX_NSP_LEN : p->nsp_len),
				     p->nsp);
		session_send_text(s, out, n);
		return;
	}
	if (s->sio.n_nsp == SOCKETIO_MAX_NSP) {
		fail(s, "too many namespaces");
		return;
	}
	if (util_random_id(id) < 0) {
		session_close(s, "no randomness");
		return;
	}
	s->sio.nsp[s->sio.n_nsp] = strndup(p->nsp, p->nsp_len);
	if (!s->sio.nsp[s->sio.n_nsp]) {
		session_close(s, "out of memory");
		return;
	}
	s->sio.n_nsp++;
	s->sio.ever_joined = true;
	ev_timer_stop(s->srv->loop, &s->ctimer);
	n = 2;
	memcpy(out, "40", 2);
	n += nsp_prefix(p->nsp, p->nsp_len, out + n, sizeof(out) - n);
	n += (size_t)snprintf(out + n, sizeof(out) - n, "{\"sid\":\"%s\"}", id);
	session_send_text(s, out, n);
	if (!s->closed && app_of(s)->on_connect)
		app_of(s)->on_connect(s->srv->app_ud, s, p->nsp, p->nsp_len, auth, auth_len);
}

/* Dispatches a complete packet; text is its raw form (for raw JSON). */
static void dispatch(struct session *s, const struct sio_packet *p, const char *text, size_t len)
{
	int idx = find_nsp(s, p->nsp, p->nsp_len);
	const char *json = NULL;
	size_t json_len = 0;

	if (p->data) {
		json = text + p->payload_off;
		json_len = len - p->payload_off;
	}

	if (p->type == SIO_CONNECT) {
		if (idx >= 0) {
			fail(s, "duplicate CONNECT");
			return;
		}
		do_connect(s, p, json ? json : "{}", json ? json_len : 2);
		return;
	}
	/* Anything but CONNECT for a namespace not joined closes the whole
	 * connection, as the reference server does. */
	if (idx < 0) {
		fail(s, "packet for a namespace not joined");
		return;
	}
	switch (p->type) {
	case SIO_DISCONNECT:
		/* The Engine.IO session stays open (reference behaviour). */
		leave(s, (unsigned)idx);
		break;
	case SIO_EVENT:
	case SIO_BINARY_EVENT: {
		size_t end = socketio_first_element_end(json, json_len);
		size_t rest = end;
		struct socketio_event ev = {
			.nsp = p->nsp, .nsp_len = p->nsp_len,
			.name = p->event, .name_len = p->event_len,
			.has_id = p->has_id, .id = p->id,
			.attachments = s->sio.att, .n_attachments = s->sio.att_have,
		};

		if (!end)
			break; /* cannot happen after validation */
		while (rest < json_len && json[rest] != ',' && json[rest] != ']')
			rest++;
		if (rest < json_len && json[rest] == ',')
			rest++;
		ev.args = json + rest;
		ev.args_len = json_len - rest;
		/* Drop the closing bracket (and any blanks before it). */
		while (ev.args_len && ev.args[ev.args_len - 1] != ']')
			ev.args_len--;
		if (ev.args_len)
			ev.args_len--;
		if (app_of(s)->on_event)
			app_of(s)->on_event(s->srv->app_ud, s, &ev);
		break;
	}
	case SIO_ACK:
	case SIO_BINARY_ACK:
		/* An answer to an ack we asked for; unknown ids are ignored, as the
		 * reference does. */
		for (unsigned i = 0; p->has_id && i < s->sio.n_acks; i++) {
			struct socketio_pending_ack a = s->sio.acks[i];
			struct socketio_event ev = {
				.nsp = p->nsp, .nsp_len = p->nsp_len,
				.has_id = true, .id = p->id,
				.attachments = s->sio.att, .n_attachments = s->sio.att_have,
			};

			if (a.id != p->id)
				continue;
			s->sio.acks[i] = s->sio.acks[--s->sio.n_acks];
			/* args: the array without its brackets. */
			ev.args = json ? json + 1 : "";
			ev.args_len = json && json_len >= 2 ? json_len - 2 : 0;
			while (ev.args_len && ev.args[ev.args_len] != ']')
				ev.args_len--;
			a.cb(a.ud, s, &ev);
			break;
		}
		break;
	case SIO_CONNECT_ERROR:
	default:
		fail(s, "CONNECT_ERROR from a client");
		break;
	}
}

static void release_pending(struct session *s)
{
	free(s->sio.pending);
	s->sio.pending = NULL;
	for (unsigned i = 0; i < s->sio.att_have; i++)
		buf_unref(s->sio.att[i]);
	s->sio.att_have = s->sio.att_due = 0;
}

void socketio_on_text(struct session *s, const char *data, size_t len)
{
	struct sio_packet p;
	int rc;

	if (s->sio.att_due) {
		fail(s, "text packet while binary attachments are due");
		return;
	}
	rc = sio_decode(data, len, &p, s->srv->tok);
	if (rc < 0) {
		fail(s, sio_error_message(rc));
		return;
	}
	if (p.attachments) {
		/* Keep the text; dispatch once every attachment has arrived. */
		s->sio.pending = malloc(len);
		if (!s->sio.pending) {
			sio_packet_clear(&p);
			session_close(s, "out of memory");
			return;
		}
		memcpy(s->sio.pending, data, len);
		s->sio.pending_len = len;
		s->sio.att_due = p.attachments;
		sio_packet_clear(&p);
		return;
	}
	dispatch(s, &p, data, len);
	sio_packet_clear(&p);
}

void socketio_on_binary(struct session *s, const uint8_t *data, size_t len)
{
	struct sio_packet p;
	struct buf *b;
	int rc;

	if (!s->sio.att_due) {
		fail(s, "unexpected binary message");
		return;
	}
	b = buf_from(data, len);
	if (!b) {
		session_close(s, "out of memory");
		return;
	}
	s->sio.att[s->sio.att_have++] = b;
	if (--s->sio.att_due)
		return;
	rc = sio_decode(s->sio.pending, s->sio.pending_len, &p, s->srv->tok);
	if (rc == 0) {
		dispatch(s, &p, s->sio.pending, s->sio.pending_len);
		sio_packet_clear(&p);
	}
	if (!s->closed)
		release_pending(s);
}
