#include "autoconfig.h"

#include "hub.h"
#include "conn.h"
#include "log.h"

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

void hub_join(struct hub *h, struct conn *c)
{
	c->hub_prev = NULL;
	c->hub_next = h->head;
	if (h->head)
		h->head->hub_prev = c;
	h->head = c;
	c->in_hub = true;
	h->count++;
	if (h->snap)
		conn_send_frame(c, h->snap->frame, CONN_FRAME_SNAPSHOT);
	if (h->error_frame)
		conn_send_frame(c, h->error_frame, CONN_FRAME_EVENT);
}

void hub_leave(struct hub *h, struct conn *c)
{
	if (!c->in_hub)
		return;
	if (c->hub_prev)
		c->hub_prev->hub_next = c->hub_next;
	else
		h->head = c->hub_next;
	if (c->hub_next)
		c->hub_next->hub_prev = c->hub_prev;
	c->hub_prev = c->hub_next = NULL;
	c->in_hub = false;
	h->count--;
}

void hub_publish(struct hub *h, struct snapshot *s)
{
	struct conn *c, *next;

	snapshot_ref(s);
	snapshot_unref(h->snap);
	h->snap = s;
	/* conn_send_frame may drop a stalled client, which leaves the hub:
	 * take next first. */
	for (c = h->head; c; c = next) {
		next = c->hub_next;
		conn_send_frame(c, s->frame, CONN_FRAME_SNAPSHOT);
	}
}

int hub_set_error(struct hub *h, const char *json)
{
	struct conn *c, *next;
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
	for (c = h->head; c; c = next) {
		next = c->hub_next;
		conn_send_frame(c, frame, CONN_FRAME_EVENT);
	}
	return 0;
}
