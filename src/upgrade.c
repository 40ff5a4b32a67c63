#include "autoconfig.h"

#include "upgrade.h"
#include "log.h"
#include "metrics.h"
#include "websocket.h"

#include <string.h>

static void abort_probe(struct session *s, uint16_t code, const char *why)
{
	struct conn *p = s->up.probe;

	s->up.probe = NULL;
	s->up.probed = false;
	deadline_cancel(&s->up.timeout);
	if (p) {
		conn_set_handlers(p, NULL, NULL);
		websocket_close(p, code, why);
	}
}

static void complete(struct session *s)
{
	struct conn *ws = s->up.probe;

	s->up.probe = NULL;
	s->up.probed = false;
	deadline_cancel(&s->up.timeout);
	session_release_get(s, "6");
	session_adopt_ws(s, ws);
	/* What was queued for polling now goes over the WebSocket, in order. */
	for (unsigned i = 0; i < s->poll.len && !s->closed; i++) {
		struct session_pkt *p = &s->poll.outbox[i];
		struct buf *f;

		if (p->head) {
			(void)websocket_send_shared(ws, (const char *)p->head->data, p->head->len, p->b,
						    p->off, p->len, p->tail ? p->tail : "",
						    p->tail ? strlen(p->tail) : 0);
			continue;
		}
		f = p->off ? buf_ref(p->b)
			   : ws_frame(p->binary ? WS_OP_BINARY : WS_OP_TEXT, p->b->data, p->len);
		if (!f) {
			session_close(s, "out of memory");
			break;
		}
		(void)websocket_send(ws, f, p->replaceable);
		buf_unref(f);
	}
	session_outbox_clear(s);
	list_unlink(&s->poll.flush_link);
	log_debug("upgraded to websocket sid=%s", s->sid);
	metrics_gauge_add(&pgpush_metrics, METRIC_CLIENTS, METRICS_TRANSPORT_POLLING, -1);
	metrics_gauge_add(&pgpush_metrics, METRIC_CLIENTS, METRICS_TRANSPORT_WEBSOCKET, 1);
}

static void probe_on_message(struct conn *c, bool binary, const uint8_t *data, size_t len)
{
	struct session *s = c->owner;
	enum eio_packet_type type;
	const char *d;
	size_t dlen;

	if (s->closed)
		return;
	if (!binary && eio_decode_text((const char *)data, len, &type, &d, &dlen) == 0) {
		if (type == EIO_PING && dlen == 5 && memcmp(d, "probe", 5) == 0 && !s->up.probed) {
			struct buf *f = ws_frame(WS_OP_TEXT, "3probe", 6);

			if (f) {
				(void)websocket_send(c, f, false);
				buf_unref(f);
			}
			s->up.probed = true;
			/* The client pauses polling: release its pending GET. */
			session_release_get(s, "6");
			return;
		}
		if (type == EIO_UPGRADE && dlen == 0 && s->up.probed) {
			complete(s);
			return;
		}
	}
	/* Anything else on a probe aborts the upgrade, not the session. */
	log_info("upgrade aborted sid=%s: unexpected packet on the probe", s->sid);
	abort_probe(s, 1002, "unexpected packet during upgrade");
}

static void probe_on_close(struct conn *c)
{
	struct session *s = c->owner;

	if (s->up.probe == c) {
		s->up.probe = NULL;
		s->up.probed = false;
		deadline_cancel(&s->up.timeout);
	}
}

static const struct conn_handlers probe_handlers = {
	.on_message = probe_on_message,
	.on_close = probe_on_close,
};

void upgrade_due(struct deadline *d, void *ud)
{
	struct session *s = LIST_ENTRY(d, struct session, up.timeout);

	log_info("upgrade timed out sid=%s", s->sid);
	abort_probe(s, 1000, "upgrade timeout");
}

void upgrade_request(struct session *s, struct conn *c, const struct http_request *req,
		     size_t head_len)
{
	bool take = s->polling && !s->up.probe;

	if (websocket_accept(c, req, head_len) < 0)
		return;
	if (!take) {
		/* Already upgraded, or upgrading: the reference completes the
		 * handshake and closes this socket (engine.io onWebSocket). */
		log_info("second websocket for sid=%s closed", s->sid);
		conn_set_handlers(c, NULL, NULL);
		websocket_close(c, 1000, "");
		return;
	}
	s->up.probe = c;
	conn_set_handlers(c, &probe_handlers, s);
	deadline_add(&s->eng->upgrade, &s->up.timeout);
}
