#include "autoconfig.h"

#include "socketio.h"
#include "log.h"
#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pending_ack {
	uint64_t id;
	socketio_ack_cb *cb;
	void *ud;
};

/* A BINARY_EVENT / BINARY_ACK waiting for its attachments. */
struct binary_pending {
	char *text;
	size_t len;
	unsigned due;
	unsigned have;
	struct buf *att[SIO_MAX_ATTACHMENTS];
};

/* The Socket.IO state of one Engine.IO session (session->app). What only
 * some clients need (acks asked, attachments awaited) is allocated when
 * needed: every idle client pays for this struct only. */
struct socketio_client {
	struct socketio *io;
	struct session *s;
	uint64_t next_ack_id;
	unsigned n_acks;
	unsigned n_nsp;
	struct pending_ack *acks;   /* allocated at the first ack asked */
	struct binary_pending *bin; /* while attachments are due */
	struct socketio_socket *nsp[SOCKETIO_MAX_NSP];
	struct deadline connect;    /* until the first namespace is joined */
};

static struct buf *const no_att[1];

static int find_nsp(const struct socketio_client *cl, const char *nsp, size_t len)
{
	for (unsigned i = 0; i < cl->n_nsp; i++) {
		if (cl->nsp[i]->nsp_len == len && memcmp(cl->nsp[i]->nsp, nsp, len) == 0)
			return (int)i;
	}
	return -1;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t socketio_first_element_end(const char *a, size_t len)
{
	size_t i = 0;

	while (i < len && blank(a[i]))
		i++;
	if (i >= len || a[i] != '[')
		return 0;
	i++;
	while (i < len && blank(a[i]))
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

bool socketio_array_inner(const char *a, size_t len, const char **inner, size_t *inner_len)
{
	size_t b = 0, e = len;

	while (b < e && blank(a[b]))
		b++;
	while (e > b && blank(a[e - 1]))
		e--;
	if (e - b < 2 || a[b] != '[' || a[e - 1] != ']')
		return false;
	*inner = a + b + 1;
	*inner_len = e - b - 2;
	return true;
}

/* "/custom," for a namespace other than the main one, "" for "/";
 * -1 when it does not fit (never for a namespace we let a client join). */
static long nsp_prefix(const char *nsp, size_t len, char *out, size_t outlen)
{
	if (sio_is_main_nsp(nsp, len))
		return 0;
	if (len + 2 > outlen)
		return -1;
	memcpy(out, nsp, len);
	out[len] = ',';
	return (long)len + 1;
}

/* Writes "4<type>[<n>-][<nsp>,][<id>]" into head (room for
 * SOCKETIO_MAX_NSP_LEN + 48); returns its length, or -1. */
static long packet_head(const struct socketio_socket *sock, enum sio_type type, unsigned n,
			bool has_id, uint64_t id, char *head, size_t size)
{
	size_t h;
	long pre;

	h = (size_t)snprintf(head, size, "4%d", (int)type);
	if (n)
		h += (size_t)snprintf(head + h, size - h, "%u-", n);
	pre = nsp_prefix(sock->nsp, sock->nsp_len, head + h, size - h - 24);
	if (pre < 0)
		return -1;
	h += (size_t)pre;
	if (has_id)
		h += (size_t)snprintf(head + h, size - h, "%llu", (unsigned long long)id);
	return (long)h;
}

/* Sends "4<type>[<n>-][<nsp>,][<id>]<array>" and its n attachments.
 * type is EVENT or ACK; with attachments it becomes BINARY_EVENT/BINARY_ACK.
 * Returns -1, sending nothing, when the packet cannot be written as asked. */
static int send_packet(struct socketio_socket *sock, enum sio_type type, bool has_id,
		       uint64_t id, const struct ws_part *body, size_t nbody,
		       struct buf *const *att, unsigned n)
{
	struct session *s = sock->session;
	char head[SOCKETIO_MAX_NSP_LEN + 48];
	struct ws_part parts[1 + SOCKETIO_MAX_PARTS];
	size_t np = 0;
	long h;

	if (nbody > SOCKETIO_MAX_PARTS || n > SIO_MAX_ATTACHMENTS)
		return -1;
	if (n)
		type = type == SIO_EVENT ? SIO_BINARY_EVENT : SIO_BINARY_ACK;
	h = packet_head(sock, type, n, has_id, id, head, sizeof(head));
	if (h < 0)
		return -1;
	parts[np++] = (struct ws_part){ head, (size_t)h };
	for (size_t i = 0; i < nbody; i++)
		parts[np++] = body[i];
	session_send_parts(s, parts, np);
	/* Attachments follow their packet, in order, nothing in between
	 * (this is single-threaded: nothing can interleave). */
	for (unsigned i = 0; i < n && !s->closed; i++)
		session_send_binary(s, att[i]->data, att[i]->len);
	return 0;
}

int socketio_emit(struct socketio_socket *sock, const struct ws_part *array_parts, size_t nparts,
		  struct buf *const *att, unsigned n)
{
	return send_packet(sock, SIO_EVENT, false, 0, array_parts, nparts, att, n);
}

int socketio_emit_with_ack(struct socketio_socket *sock, const struct ws_part *array_parts,
			   size_t nparts, struct buf *const *att, unsigned n,
			   socketio_ack_cb *cb, void *ud)
{
	struct socketio_client *cl = sock->client;
	uint64_t id;

	if (cl->n_acks == SOCKETIO_MAX_PENDING_ACKS)
		return -1;
	if (!cl->acks && !(cl->acks = malloc(SOCKETIO_MAX_PENDING_ACKS * sizeof(*cl->acks))))
		return -1;
	id = cl->next_ack_id;
	if (send_packet(sock, SIO_EVENT, true, id, array_parts, nparts, att, n) < 0)
		return -1;
	cl->next_ack_id++;
	cl->acks[cl->n_acks++] = (struct pending_ack){ id, cb, ud };
	return 0;
}

int socketio_ack(struct socketio_socket *sock, uint64_t id, const struct ws_part *array_parts,
		 size_t nparts, struct buf *const *att, unsigned n)
{
	return send_packet(sock, SIO_ACK, true, id, array_parts, nparts, att, n);
}

int socketio_ack_shared(struct socketio_socket *sock, uint64_t id, struct buf *shared,
			size_t off, size_t len)
{
	char head[SOCKETIO_MAX_NSP_LEN + 48];
	long h = packet_head(sock, SIO_ACK, 0, true, id, head, sizeof(head) - 1);

	if (h < 0)
		return -1;
	head[h++] = '[';
	session_send_shared(sock->session, head, (size_t)h, shared, off, len, "]", 1);
	return 0;
}

/* ---- the client's life ------------------------------------------------------- */

static void leave(struct socketio_client *cl, unsigned idx)
{
	struct socketio *io = cl->io;
	struct socketio_socket *sock = cl->nsp[idx];

	cl->nsp[idx] = cl->nsp[--cl->n_nsp];
	if (io->app->on_leave)
		io->app->on_leave(io->app_ud, sock);
	free(sock->nsp);
	free(sock);
}

static void release_pending(struct socketio_client *cl)
{
	struct binary_pending *b = cl->bin;

	if (!b)
		return;
	free(b->text);
	for (unsigned i = 0; i < b->have; i++)
		buf_unref(b->att[i]);
	free(b);
	cl->bin = NULL;
}

static struct buf *const *att_of(const struct socketio_client *cl, unsigned *n)
{
	*n = cl->bin ? cl->bin->have : 0;
	return cl->bin ? cl->bin->att : no_att;
}

static void fail(struct socketio_client *cl, const char *what)
{
	log_info("protocol error, closing sid=%s: %s", cl->s->sid, what);
	session_close_code(cl->s, 1002, what);
}

static void on_connect_due(struct deadline *d, void *ud)
{
	struct socketio_client *cl = LIST_ENTRY(d, struct socketio_client, connect);

	log_info("no Socket.IO CONNECT in time sid=%s", cl->s->sid);
	session_close(cl->s, "connect timeout");
}

static int eng_on_open(void *ud, struct session *s)
{
	struct socketio *io = ud;
	struct socketio_client *cl = calloc(1, sizeof(*cl));

	if (!cl)
		return -1;
	cl->io = io;
	cl->s = s;
	deadline_init(&cl->connect);
	deadline_add(&io->connect, &cl->connect);
	s->app = cl;
	return 0;
}

static void eng_on_close(void *ud, struct session *s, const char *reason)
{
	struct socketio_client *cl = s->app;

	if (!cl)
		return;
	deadline_cancel(&cl->connect);
	while (cl->n_nsp)
		leave(cl, cl->n_nsp - 1);
	release_pending(cl);
	free(cl->acks);
	free(cl);
	s->app = NULL;
}

/* ---- receiving ----------------------------------------------------------------- */

/* CONNECT_ERROR with a payload socket.io-client shows as err.message and
 * err.data.code. */
static void refuse(struct socketio_client *cl, const struct sio_packet *p, const char *code,
		   const char *message)
{
	char out[SOCKETIO_MAX_NSP_LEN + 512];
	char msg[256], c[96];
	size_t n = 2;

	if (snapshot_json_string(message, msg, sizeof(msg)) < 0)
		snprintf(msg, sizeof(msg), "\"refused\"");
	if (snapshot_json_string(code, c, sizeof(c)) < 0)
		snprintf(c, sizeof(c), "\"refused\"");
	memcpy(out, "44", 2);
	n += (size_t)nsp_prefix(p->nsp, p->nsp_len, out + n, sizeof(out) - n);
	n += (size_t)snprintf(out + n, sizeof(out) - n, "{\"message\":%s,\"data\":{\"code\":%s}}",
			      msg, c);
	if (n >= sizeof(out))
		return;
	log_info("namespace refused sid=%s code=%s", cl->s->sid, code);
	session_send_text(cl->s, out, n);
}

void socketio_disconnect(struct socketio_socket *sock)
{
	struct socketio_client *cl = sock->client;
	int idx = find_nsp(cl, sock->nsp, sock->nsp_len);
	char out[SOCKETIO_MAX_NSP_LEN + 8];
	size_t n = 2;

	if (idx < 0)
		return;
	memcpy(out, "41", 2);
	n += (size_t)nsp_prefix(sock->nsp, sock->nsp_len, out + n, sizeof(out) - n);
	if (!sock->session->closed)
		session_send_text(sock->session, out, n);
	leave(cl, (unsigned)idx);
}

static void do_connect(struct socketio_client *cl, const struct sio_packet *p, const char *auth,
		       size_t auth_len)
{
	struct socketio *io = cl->io;
	struct session *s = cl->s;
	char out[SOCKETIO_MAX_NSP_LEN + 64];
	char id[UTIL_ID_LEN + 1];
	struct socketio_socket *sock;
	size_t n;

	if (p->nsp_len > SOCKETIO_MAX_NSP_LEN ||
	    !io->app->nsp_exists(io->app_ud, p->nsp, p->nsp_len)) {
		if (p->nsp_len > SOCKETIO_MAX_NSP_LEN) {
			/* Not echoed back cut short: a namespace that long is an error. */
			fail(cl, "namespace too long");
			return;
		}
		n = (size_t)snprintf(out, sizeof(out), "44%.*s,{\"message\":\"Invalid namespace\"}",
				     (int)p->nsp_len, p->nsp);
		session_send_text(s, out, n);
		return;
	}
	if (cl->n_nsp == SOCKETIO_MAX_NSP) {
		fail(cl, "too many namespaces");
		return;
	}
	if (util_random_id(id) < 0) {
		session_close(s, "no randomness");
		return;
	}
	sock = calloc(1, sizeof(*sock));
	if (!sock || !(sock->nsp = strndup(p->nsp, p->nsp_len))) {
		free(sock);
		session_close(s, "out of memory");
		return;
	}
	sock->nsp_len = p->nsp_len;
	sock->session = s;
	sock->client = cl;
	if (io->app->authorize) {
		const char *message = NULL;
		const char *code = io->app->authorize(io->app_ud, sock, auth, auth_len, &message);

		if (code) {
			refuse(cl, p, code, message ? message : code);
			free(sock->nsp);
			free(sock);
			return;
		}
	}
	cl->nsp[cl->n_nsp++] = sock;
	deadline_cancel(&cl->connect);
	n = 2;
	memcpy(out, "40", 2);
	n += (size_t)nsp_prefix(p->nsp, p->nsp_len, out + n, sizeof(out) - n);
	n += (size_t)snprintf(out + n, sizeof(out) - n, "{\"sid\":\"%s\"}", id);
	session_send_text(s, out, n);
	session_pace(s, SOCKETIO_CONNECT_PACE);
	if (!s->closed && io->app->on_connect)
		io->app->on_connect(io->app_ud, sock, auth, auth_len);
}

static void on_ack(struct socketio_client *cl, struct socketio_socket *sock,
		   const struct sio_packet *p, const char *json, size_t json_len)
{
	/* An answer to an ack we asked for; unknown ids are ignored, as the
	 * reference does. */
	for (unsigned i = 0; p->has_id && i < cl->n_acks; i++) {
		struct pending_ack a = cl->acks[i];
		struct socketio_event ev = {
			.has_id = true, .id = p->id,
			.args = "", .args_len = 0,
		};

		ev.attachments = att_of(cl, &ev.n_attachments);
		if (a.id != p->id)
			continue;
		cl->acks[i] = cl->acks[--cl->n_acks];
		/* args: the array without its brackets (blanks around it allowed:
		 * "430 [2]" is valid). */
		if (json && !socketio_array_inner(json, json_len, &ev.args, &ev.args_len)) {
			ev.args = "";
			ev.args_len = 0;
		}
		a.cb(a.ud, sock, &ev);
		return;
	}
}

static void on_event(struct socketio_client *cl, struct socketio_socket *sock,
		     const struct sio_packet *p, const char *json, size_t json_len)
{
	struct socketio *io = cl->io;
	size_t end = socketio_first_element_end(json, json_len);
	size_t rest = end;
	struct socketio_event ev = {
		.name = p->event, .name_len = p->event_len,
		.has_id = p->has_id, .id = p->id,
	};

	ev.attachments = att_of(cl, &ev.n_attachments);
	if (!end)
		return; /* cannot happen after validation */
	while (rest < json_len && json[rest] != ',' && json[rest] != ']')
		rest++;
	if (rest < json_len && json[rest] == ',')
		rest++;
	ev.args = json + rest;
	ev.args_len = json_len - rest;
	/* Drop the closing bracket (and any blanks after and before it). */
	while (ev.args_len && ev.args[ev.args_len - 1] != ']')
		ev.args_len--;
	if (ev.args_len)
		ev.args_len--;
	if (io->app->on_event)
		io->app->on_event(io->app_ud, sock, &ev);
}

/* Dispatches a complete packet; text is its raw form (for raw JSON). */
static void dispatch(struct socketio_client *cl, const struct sio_packet *p, const char *text,
		     size_t len)
{
	int idx = find_nsp(cl, p->nsp, p->nsp_len);
	const char *json = NULL;
	size_t json_len = 0;

	if (p->data) {
		json = text + p->payload_off;
		json_len = len - p->payload_off;
	}
	if (p->type == SIO_CONNECT) {
		if (idx >= 0) {
			fail(cl, "duplicate CONNECT");
			return;
		}
		do_connect(cl, p, json ? json : "{}", json ? json_len : 2);
		return;
	}
	/* Anything but CONNECT for a namespace not joined closes the whole
	 * connection, as the reference server does. */
	if (idx < 0) {
		fail(cl, "packet for a namespace not joined");
		return;
	}
	switch (p->type) {
	case SIO_DISCONNECT:
		/* The Engine.IO session stays open (reference behaviour). */
		leave(cl, (unsigned)idx);
		break;
	case SIO_EVENT:
	case SIO_BINARY_EVENT:
		on_event(cl, cl->nsp[idx], p, json, json_len);
		break;
	case SIO_ACK:
	case SIO_BINARY_ACK:
		on_ack(cl, cl->nsp[idx], p, json, json_len);
		break;
	case SIO_CONNECT_ERROR:
	default:
		fail(cl, "CONNECT_ERROR from a client");
		break;
	}
}

static void on_text(struct socketio_client *cl, const char *data, size_t len)
{
	struct sio_packet p;
	int rc;

	if (cl->bin) {
		fail(cl, "text packet while binary attachments are due");
		return;
	}
	rc = sio_decode(data, len, &p, cl->io->tok);
	if (rc < 0) {
		fail(cl, sio_error_message(rc));
		return;
	}
	if (p.attachments) {
		/* Keep the text; dispatch once every attachment has arrived. */
		cl->bin = calloc(1, sizeof(*cl->bin));
		if (!cl->bin || !(cl->bin->text = malloc(len))) {
			free(cl->bin);
			cl->bin = NULL;
			sio_packet_clear(&p);
			session_close(cl->s, "out of memory");
			return;
		}
		memcpy(cl->bin->text, data, len);
		cl->bin->len = len;
		cl->bin->due = p.attachments;
		sio_packet_clear(&p);
		return;
	}
	dispatch(cl, &p, data, len);
	sio_packet_clear(&p);
}

static void on_binary(struct socketio_client *cl, const uint8_t *data, size_t len)
{
	struct sio_packet p;
	struct buf *b;
	int rc;

	if (!cl->bin) {
		fail(cl, "unexpected binary message");
		return;
	}
	b = buf_from(data, len);
	if (!b) {
		session_close(cl->s, "out of memory");
		return;
	}
	cl->bin->att[cl->bin->have++] = b;
	if (--cl->bin->due)
		return;
	rc = sio_decode(cl->bin->text, cl->bin->len, &p, cl->io->tok);
	if (rc == 0) {
		dispatch(cl, &p, cl->bin->text, cl->bin->len);
		sio_packet_clear(&p);
	}
	release_pending(cl);
}

static void eng_on_message(void *ud, struct session *s, const uint8_t *data, size_t len,
			   bool binary)
{
	struct socketio_client *cl = s->app;

	if (!cl)
		return;
	if (binary)
		on_binary(cl, data, len);
	else
		on_text(cl, (const char *)data, len);
}

const struct engine_handlers socketio_engine_handlers = {
	.on_open = eng_on_open,
	.on_message = eng_on_message,
	.on_close = eng_on_close,
};

int socketio_init(struct socketio *io, struct engine *eng, const struct socketio_app *app,
		  void *app_ud)
{
	memset(io, 0, sizeof(*io));
	io->eng = eng;
	io->app = app;
	io->app_ud = app_ud;
	io->tok = sio_tokener_new();
	deadline_list_init(&io->connect, eng->cx->loop, eng->now, eng->now_ud,
			   eng->cfg->connect_timeout / 1000.0, on_connect_due, io);
	return io->tok ? 0 : -1;
}

void socketio_free(struct socketio *io)
{
	deadline_list_stop(&io->connect);
	if (io->tok)
		json_tokener_free(io->tok);
	io->tok = NULL;
}
