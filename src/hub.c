#include "autoconfig.h"

#include "hub.h"
#include "log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void hub_init(struct hub *h)
{
	memset(h, 0, sizeof(*h));
	h->now = deadline_monotonic;
}

/* Takes one request from m's bucket; false when it is empty. */
static bool take_request(struct hub *h, struct hub_member *m)
{
	double now = h->now(h->now_ud);

	m->tokens += (now - m->at) * HUB_REQUEST_RATE;
	if (m->tokens > HUB_REQUEST_BURST)
		m->tokens = HUB_REQUEST_BURST;
	m->at = now;
	if (m->tokens < 1.0)
		return false;
	m->tokens -= 1.0;
	return true;
}

/* A socket's app_data is 1 + its index in members (0: not a member). */
static struct hub_member *member_of(struct hub *h, const struct socketio_socket *sock)
{
	uintptr_t i = (uintptr_t)sock->app_data;

	return i ? &h->members[i - 1] : NULL;
}

void hub_free(struct hub *h)
{
	for (size_t i = 0; i < h->count; i++)
		h->members[i].sock->app_data = NULL;
	free(h->members);
	snapshot_unref(h->snap);
	buf_unref(h->error_frame);
	free(h->error_json);
	memset(h, 0, sizeof(*h));
	h->now = deadline_monotonic;
}

static void send_snapshot(struct socketio_socket *sock, struct snapshot *snap)
{
	session_send_frame(sock->session, snap->frame, snap->frame_z, true);
}

static void join(struct hub *h, struct socketio_socket *sock)
{
	if (h->count == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct hub_member *m = realloc(h->members, cap * sizeof(*m));

		if (!m) {
			session_close(sock->session, "out of memory");
			return;
		}
		h->members = m;
		h->cap = cap;
	}
	h->members[h->count] = (struct hub_member){
		.sock = sock, .tokens = HUB_REQUEST_BURST, .at = h->now(h->now_ud),
	};
	sock->app_data = (void *)(uintptr_t)++h->count;
	if (h->snap)
		send_snapshot(sock, h->snap);
	if (h->error_frame)
		session_send_frame(sock->session, h->error_frame, NULL, false);
}

/* The last member takes the place of the one that leaves. Never during a
 * broadcast: a member leaves from the reaper (deferred teardown). */
static void leave(struct hub *h, struct socketio_socket *sock)
{
	struct hub_member *m = member_of(h, sock);

	if (!m)
		return;
	*m = h->members[--h->count];
	m->sock->app_data = (void *)(uintptr_t)(m - h->members + 1);
	sock->app_data = NULL;
}

/* Sending never changes the member list: a client dropped on the way is
 * only marked, and leaves from the reaper, after this returns. */
void hub_publish(struct hub *h, struct snapshot *snap)
{
	snapshot_ref(snap);
	snapshot_unref(h->snap);
	h->snap = snap;
	h->snap_doc_off = hub_doc_offset(snap);
	for (size_t i = 0; i < h->count; i++)
		send_snapshot(h->members[i].sock, snap);
}

int hub_set_error(struct hub *h, const char *json)
{
	struct buf *frame = NULL;
	char *copy = NULL;

	if (json) {
		copy = strdup(json);
		frame = snapshot_event_frame("dashboardDataError", json, strlen(json));
		if (!copy || !frame) {
			free(copy);
			buf_unref(frame);
			return -1;
		}
	}
	buf_unref(h->error_frame);
	free(h->error_json);
	h->error_frame = frame;
	h->error_json = copy;
	if (!frame)
		return 0;
	for (size_t i = 0; i < h->count; i++)
		session_send_frame(h->members[i].sock->session, frame, NULL, false);
	return 0;
}

size_t hub_doc_offset(const struct snapshot *s)
{
	static const char prefix[] = "42[\"dashboardDataUpdate\",";
	const struct buf *f = s->frame;
	uint8_t l = f->data[1] & 0x7f;
	size_t off = (l < 126 ? 2 : l == 126 ? 4 : 10) + sizeof(prefix) - 1;

	if (off + s->doc_len > f->len || memcmp(f->data + off, s->doc, s->doc_len) != 0)
		return 0;
	return off;
}

/* ---- the Socket.IO application ------------------------------------------- */

static bool app_nsp_exists(void *ud, const char *nsp, size_t len)
{
	return sio_is_main_nsp(nsp, len);
}

static void app_on_connect(void *ud, struct socketio_socket *sock, const char *auth,
			   size_t auth_len)
{
	join(ud, sock);
}

static void app_on_leave(void *ud, struct socketio_socket *sock)
{
	leave(ud, sock);
}

/* requestDashboardData: from the cache, never a query. Through the ack
 * when asked for one; else as a dashboardDataUpdate to this client only. */
static void app_on_event(void *ud, struct socketio_socket *sock, const struct socketio_event *ev)
{
	static const char not_ready[] =
		"{\"message\":\"no dashboard data yet\",\"code\":\"not_ready\"}";
	struct hub *h = ud;
	int rc;

	if (!ev->name || ev->name_len != 20 || memcmp(ev->name, "requestDashboardData", 20) != 0) {
		log_debug("ignored event sid=%s", sock->session->sid);
		return;
	}
	if (!member_of(h, sock) || !take_request(h, member_of(h, sock))) {
		h->limited++;
		log_debug("requestDashboardData over the rate, ignored sid=%s", sock->session->sid);
		return;
	}
	if (!ev->has_id) {
		if (h->snap)
			send_snapshot(sock, h->snap);
		else if (h->error_frame)
			session_send_frame(sock->session, h->error_frame, NULL, false);
		return;
	}
	if (h->snap && h->snap_doc_off) {
		/* The document inside the shared frame: a reference, not a copy. */
		rc = socketio_ack_shared(sock, ev->id, h->snap->frame, h->snap_doc_off,
					 h->snap->doc_len);
	} else if (h->snap) {
		struct ws_part parts[] = { { "[", 1 }, { h->snap->doc, h->snap->doc_len }, { "]", 1 } };

		rc = socketio_ack(sock, ev->id, parts, 3, NULL, 0);
	} else {
		const char *err = h->error_json ? h->error_json : not_ready;
		struct ws_part parts[] = { { "[{\"error\":", 10 }, { err, strlen(err) }, { "}]", 2 } };

		rc = socketio_ack(sock, ev->id, parts, 3, NULL, 0);
	}
	if (rc < 0)
		log_error("cannot send an ack sid=%s", sock->session->sid);
}

const struct socketio_app hub_app = {
	.nsp_exists = app_nsp_exists,
	.on_connect = app_on_connect,
	.on_leave = app_on_leave,
	.on_event = app_on_event,
};
