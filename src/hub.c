#include "autoconfig.h"

#include "hub.h"
#include "log.h"
#include "session.h"

#include <stdlib.h>
#include <string.h>

void hub_init(struct hub *h)
{
	memset(h, 0, sizeof(*h));
}

void hub_free(struct hub *h)
{
	snapshot_unref(h->snap);
	buf_unref(h->error_frame);
	free(h->error_json);
	memset(h, 0, sizeof(*h));
}

static void join(struct hub *h, struct session *s)
{
	s->hub_prev = NULL;
	s->hub_next = h->head;
	if (h->head)
		h->head->hub_prev = s;
	h->head = s;
	s->in_hub = true;
	h->count++;
	if (h->snap)
		session_send_snapshot(s, h->snap);
	if (h->error_frame)
		session_send_frame(s, h->error_frame, false);
}

static void leave(struct hub *h, struct session *s)
{
	if (!s->in_hub)
		return;
	if (s->hub_prev)
		s->hub_prev->hub_next = s->hub_next;
	else
		h->head = s->hub_next;
	if (s->hub_next)
		s->hub_next->hub_prev = s->hub_prev;
	s->hub_prev = s->hub_next = NULL;
	s->in_hub = false;
	h->count--;
}

void hub_publish(struct hub *h, struct snapshot *snap)
{
	struct session *s, *next;

	snapshot_ref(snap);
	snapshot_unref(h->snap);
	h->snap = snap;
	/* Sending may drop a stalled client, which leaves the hub: take next
	 * first. */
	for (s = h->head; s; s = next) {
		next = s->hub_next;
		session_send_snapshot(s, snap);
	}
}

int hub_set_error(struct hub *h, const char *json)
{
	struct session *s, *next;
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
	for (s = h->head; s; s = next) {
		next = s->hub_next;
		session_send_frame(s, frame, false);
	}
	return 0;
}

/* ---- the Socket.IO application ------------------------------------------- */

static bool app_nsp_exists(void *ud, const char *nsp, size_t len)
{
	return sio_is_main_nsp(nsp, len);
}

static void app_on_connect(void *ud, struct session *s, const char *nsp, size_t nsp_len,
			   const char *auth, size_t auth_len)
{
	join(ud, s);
}

static void app_on_leave(void *ud, struct session *s, const char *nsp, size_t nsp_len)
{
	leave(ud, s);
}

/* requestDashboardData: from the cache, never a query. Through the ack
 * when asked for one; else as a dashboardDataUpdate to this client only. */
static void app_on_event(void *ud, struct session *s, const struct socketio_event *ev)
{
	static const char not_ready[] =
		"{\"message\":\"no dashboard data yet\",\"code\":\"not_ready\"}";
	struct hub *h = ud;

	if (!ev->name || ev->name_len != 20 || memcmp(ev->name, "requestDashboardData", 20) != 0) {
		log_debug("ignored event sid=%s", s->sid);
		return;
	}
	if (!ev->has_id) {
		if (h->snap)
			session_send_snapshot(s, h->snap);
		else if (h->error_frame)
			session_send_frame(s, h->error_frame, false);
		return;
	}
	if (h->snap) {
		struct ws_part parts[] = { { "[", 1 }, { h->snap->doc, h->snap->doc_len }, { "]", 1 } };

		socketio_ack(s, ev->nsp, ev->nsp_len, ev->id, parts, 3, NULL, 0);
	} else {
		const char *err = h->error_json ? h->error_json : not_ready;
		struct ws_part parts[] = { { "[{\"error\":", 10 }, { err, strlen(err) }, { "}]", 2 } };

		socketio_ack(s, ev->nsp, ev->nsp_len, ev->id, parts, 3, NULL, 0);
	}
}

const struct socketio_app hub_app = {
	.nsp_exists = app_nsp_exists,
	.on_connect = app_on_connect,
	.on_leave = app_on_leave,
	.on_event = app_on_event,
};
