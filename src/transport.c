#include "autoconfig.h"

#include "transport.h"
#include "log.h"
#include "metrics.h"
#include "pmd.h"
#include "pmdshare.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONN_IOV_MAX 64

/* ---- the socket I/O -------------------------------------------------------- */

static ssize_t sock_read(struct conn *c, void *buf, size_t len)
{
	ssize_t r;

	do {
		r = recv(c->fd, buf, len, 0);
	} while (r < 0 && errno == EINTR);
	return r;
}

static ssize_t sock_writev(struct conn *c, const struct iovec *iov, int n)
{
	ssize_t w;

	do {
		w = writev(c->fd, iov, n);
	} while (w < 0 && errno == EINTR);
	return w;
}

static void sock_shutdown_write(struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
}

static void sock_close(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
}

const struct conn_io conn_socket_io = {
	.read = sock_read,
	.writev = sock_writev,
	.shutdown_write = sock_shutdown_write,
	.close = sock_close,
	.evented = true,
};

/* ---- watchers ---------------------------------------------------------------- */

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	conn_readable(w->data);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	conn_flush(w->data);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;

	if (c->paced) {
		c->paced = false;
		conn_flush(c);
		return;
	}
	if (c->stalled) {
		struct log_ctx lc = { c->peer, c->id };

		log_msg_ctx(LOG_WARN, &lc, "client not reading, dropped: no byte taken for %llu ms, pending=%zu bytes",
			    (unsigned long long)c->ctx->cfg->send_timeout, c->out_bytes);
		metrics_inc(&pgpush_metrics, METRIC_CLIENTS_DROPPED, METRICS_DROP_SLOW_CLIENT);
		conn_close(c, "send timeout");
		return;
	}
	if (c->proto && c->proto->timeout)
		c->proto->timeout(c);
}

static void on_ctimer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;

	conn_close(c, c->state == CONN_LINGER ? "response sent" : "close timeout");
}

static void watch_write(struct conn *c, bool on)
{
	if (!c->io->evented)
		return;
	if (on)
		ev_io_start(c->ctx->loop, &c->wio);
	else
		ev_io_stop(c->ctx->loop, &c->wio);
}

static bool waiting_write(const struct conn *c)
{
	return c->io->evented ? ev_is_active(&c->wio) : false;
}

/* ---- the context and the reaper --------------------------------------------- */

static void on_reap(struct ev_loop *loop, ev_prepare *w, int revents)
{
	conn_ctx_run(w->data);
}

void conn_ctx_init(struct conn_ctx *ctx, struct ev_loop *loop, const struct config *cfg)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->loop = loop;
	ctx->cfg = cfg;
	list_init(&ctx->live);
	list_init(&ctx->closing);
	ev_prepare_init(&ctx->reaper, on_reap);
	ctx->reaper.data = ctx;
}

void conn_ctx_defer(struct conn_ctx *ctx)
{
	ev_prepare_start(ctx->loop, &ctx->reaper);
}

static void stream_end(struct conn *c)
{
	const struct conn_source *src = c->stream.src;

	if (c->is_websocket || !src)
		return;
	c->stream.src = NULL;
	src->done(c->stream.ud);
}

static void conn_free(struct conn *c)
{
	for (unsigned i = 0; i < c->outq_len; i++) {
		buf_unref(c->outq[(c->outq_head + i) % c->outq_cap].b);
		pmd_msg_unref(c->outq[(c->outq_head + i) % c->outq_cap].m);
	}
	free(c->outq);
	if (c->proto && c->proto->free)
		c->proto->free(c);
	free(c->cors);
	free(c->in);
	free(c->body);
	free(c);
}

static int cmp_backlog(const void *a, const void *b)
{
	size_t x = (*(struct conn *const *)a)->out_bytes, y = (*(struct conn *const *)b)->out_bytes;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* The global budget (--max-total-pending-bytes): drops the conns with the
 * largest backlog first until all of them together are under it. Runs only
 * when over: the broadcast path pays one addition (out_total), no heap to
 * keep ordered on every write. One scan of the open conns and a sort of
 * those with a backlog, rare (an attack or overload) and bounded by
 * --max-clients. Returns true when it dropped any. */
static bool enforce_budget(struct conn_ctx *ctx)
{
	size_t budget = (size_t)ctx->cfg->max_total_pending_bytes, n = 0, before = ctx->out_total;
	size_t largest = 0, dropped = 0;
	struct conn **v = ctx->nconns ? malloc(ctx->nconns * sizeof(*v)) : NULL;
	struct list_node *node, *tmp;

	if (!v)
		return false; /* out of memory: the per-client caps still hold */
	LIST_FOR_EACH_SAFE(node, tmp, &ctx->live) {
		struct conn *c = LIST_ENTRY(node, struct conn, link);

		if (c->out_bytes && n < ctx->nconns)
			v[n++] = c;
	}
	qsort(v, n, sizeof(*v), cmp_backlog);
	for (size_t i = 0; i < n && ctx->out_total > budget; i++) {
		if (!largest)
			largest = v[i]->out_bytes;
		log_debug("client dropped peer=%s: pending=%zu bytes, the most while all clients hold "
			  "%zu (--max-total-pending-bytes %zu)", v[i]->peer, v[i]->out_bytes,
			  ctx->out_total, budget);
		conn_close(v[i], "over the total pending budget");
		dropped++;
	}
	free(v);
	if (dropped) {
		ctx->budget_drops += dropped;
		log_warn("unsent output of all clients %zu bytes, over --max-total-pending-bytes %zu: "
			 "dropped %zu client%s with the largest backlog (the largest %zu bytes), now %zu",
			 before, budget, dropped, dropped == 1 ? "" : "s", largest, ctx->out_total);
	}
	return dropped > 0;
}

/* Deferred work, in rounds until a round does nothing: the layers above
 * (polling responses, closed sessions), the total pending budget, then
 * owners of conns that went away, then the closed conns' memory. Each
 * step may close more. */
void conn_ctx_run(struct conn_ctx *ctx)
{
	bool progress;

	do {
		struct list_node *n;

		progress = ctx->deferred && ctx->deferred(ctx->deferred_ud);
		if (ctx->out_total > ctx->cfg->max_total_pending_bytes && enforce_budget(ctx))
			progress = true;
		while (ctx->gone) {
			struct conn *c = ctx->gone;
			const struct conn_handlers *h = c->h;

			ctx->gone = c->gone_next;
			if (h && h->on_close)
				h->on_close(c);
			c->h = NULL;
			c->owner = NULL;
			progress = true;
		}
		while ((n = list_pop_front(&ctx->closing))) {
			conn_free(LIST_ENTRY(n, struct conn, link));
			progress = true;
		}
	} while (progress);
	ev_prepare_stop(ctx->loop, &ctx->reaper);
}

void conn_ctx_free(struct conn_ctx *ctx)
{
	struct list_node *n;

	while ((n = list_first(&ctx->live)))
		conn_close(LIST_ENTRY(n, struct conn, link), "server stopped");
	conn_ctx_run(ctx);
	pmd_inflater_free(ctx->inflater);
	ctx->inflater = NULL;
}

/* ---- a conn -------------------------------------------------------------------- */

struct conn *conn_new(struct conn_ctx *ctx, int fd, const char *peer, const struct conn_io *io)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ctx = ctx;
	c->io = io;
	c->fd = fd;
	c->state = CONN_HTTP;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	snprintf(c->sock_peer, sizeof(c->sock_peer), "%s", peer);
	c->id = ++ctx->next_id;
	c->opened = ev_now(ctx->loop);
	ev_io_init(&c->rio, on_read, fd, EV_READ);
	ev_io_init(&c->wio, on_write, fd, EV_WRITE);
	ev_timer_init(&c->timer, on_timer, 0, 0);
	ev_timer_init(&c->ctimer, on_ctimer, 0, 0);
	c->rio.data = c->wio.data = c->timer.data = c->ctimer.data = c;
	list_push_back(&ctx->live, &c->link);
	ctx->nconns++;
	return c;
}

void conn_set_handlers(struct conn *c, const struct conn_handlers *h, void *owner)
{
	c->h = h;
	c->owner = owner;
}

void conn_tell_gone(struct conn *c)
{
	if (c->told)
		return;
	c->told = true;
	c->gone_next = c->ctx->gone;
	c->ctx->gone = c;
	conn_ctx_defer(c->ctx);
}

void conn_close(struct conn *c, const char *why)
{
	struct ev_loop *loop = c->ctx->loop;

	if (c->state == CONN_CLOSED)
		return;
	if (c->state == CONN_WS || c->is_websocket)
		log_debug("websocket closed peer=%s after=%.1fs reason=%s", c->peer,
			  ev_now(loop) - c->opened, why);
	else
		log_debug("connection closed peer=%s reason=%s", c->peer, why);
	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	ev_timer_stop(loop, &c->timer);
	ev_timer_stop(loop, &c->ctimer);
	stream_end(c);
	c->ctx->out_total -= c->out_bytes; /* its queue is freed with it */
	c->out_bytes = 0;
	c->io->close(c);
	c->state = CONN_CLOSED;
	list_unlink(&c->link);
	c->ctx->nconns--;
	list_push_back(&c->ctx->closing, &c->link);
	conn_tell_gone(c);
	conn_ctx_defer(c->ctx); /* to free it, even when its owner was told before */
}

void conn_readable(struct conn *c)
{
	if (c->state == CONN_CLOSED || !c->proto || !c->proto->readable) {
		if (c->io->evented)
			ev_io_stop(c->ctx->loop, &c->rio);
		return;
	}
	c->proto->readable(c);
}

void conn_linger(struct conn *c)
{
	struct ev_loop *loop = c->ctx->loop;

	c->io->shutdown_write(c);
	c->state = CONN_LINGER;
	if (c->io->evented)
		ev_io_start(loop, &c->rio);
	conn_close_after(c, CONN_LINGER_SECS);
}

void conn_close_after(struct conn *c, double secs)
{
	struct ev_loop *loop = c->ctx->loop;

	ev_timer_stop(loop, &c->ctimer);
	ev_timer_set(&c->ctimer, secs, 0);
	ev_timer_start(loop, &c->ctimer);
}

void conn_drain(struct conn *c, const char *why)
{
	char sink[4096];

	for (;;) {
		ssize_t r = conn_read(c, sink, sizeof(sink));

		if (r > 0 && c->state == CONN_LINGER)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* EOF, an error, or bytes on a held GET (it may send none). */
		conn_close(c, why);
		return;
	}
}

/* ---- output queue ---------------------------------------------------------- */

static struct conn_out *outq_at(struct conn *c, unsigned i)
{
	return &c->outq[(c->outq_head + i) % c->outq_cap];
}

static void outq_remove(struct conn *c, unsigned i)
{
	struct conn_out *e = outq_at(c, i);

	c->out_bytes -= e->end - e->off;
	c->ctx->out_total -= e->end - e->off;
	buf_unref(e->b);
	pmd_msg_unref(e->m);
	for (; i + 1 < c->outq_len; i++)
		*outq_at(c, i) = *outq_at(c, i + 1);
	c->outq_len--;
}

/* The queue starts small and doubles up to CONN_OUTQ_MAX: an idle client
 * costs a few entries, not the cap. */
static int outq_grow(struct conn *c)
{
	unsigned cap = c->outq_cap ? c->outq_cap * 2 : CONN_OUTQ_INITIAL;
	struct conn_out *q = malloc(cap * sizeof(*q));

	if (!q)
		return -1;
	for (unsigned i = 0; i < c->outq_len; i++)
		q[i] = *outq_at(c, i);
	free(c->outq);
	c->outq = q;
	c->outq_cap = cap;
	c->outq_head = 0;
	return 0;
}

static int push(struct conn *c, struct buf *b, size_t off, size_t len, bool replaceable)
{
	struct conn_out *e;

	if (c->state == CONN_CLOSED)
		return -1;
	if (off + len > UINT32_MAX) {
		conn_close(c, "buffer too large");
		return -1;
	}
	if (replaceable) {
		/* Latest wins: an older entry not yet started is dropped; one
		 * partly written is finished so the stream stays well-formed. */
		for (unsigned i = 0; i < c->outq_len; i++) {
			e = outq_at(c, i);
			if (e->replaceable && e->off == 0) {
				outq_remove(c, i);
				break;
			}
		}
	}
	if (c->outq_len == CONN_OUTQ_MAX ||
	    c->out_bytes + len > c->ctx->cfg->max_pending_bytes) {
		struct log_ctx lc = { c->peer, c->id };

		log_msg_ctx(LOG_WARN, &lc, "client not reading, dropped pending=%zu bytes", c->out_bytes);
		metrics_inc(&pgpush_metrics, METRIC_CLIENTS_DROPPED, METRICS_DROP_SLOW_CLIENT);
		conn_close(c, "output overflow");
		return -1;
	}
	if (c->outq_len == c->outq_cap && outq_grow(c) < 0) {
		conn_close(c, "out of memory");
		return -1;
	}
	e = outq_at(c, c->outq_len++);
	e->b = buf_ref(b);
	e->m = NULL;
	e->off = (uint32_t)off;
	e->end = (uint32_t)(off + len);
	e->replaceable = replaceable;
	c->out_bytes += len;
	c->ctx->out_total += len;
	if (c->ctx->out_total > c->ctx->cfg->max_total_pending_bytes)
		conn_ctx_defer(c->ctx); /* the reaper drops the largest backlogs */
	return 0;
}

int conn_push(struct conn *c, struct buf *b, bool replaceable)
{
	return push(c, b, 0, b->len, replaceable);
}

int conn_push_msg(struct conn *c, struct pmd_msg *m, bool replaceable)
{
	struct buf *b = pmd_msg_frame(m);

	if (push(c, b, 0, b->len, replaceable) < 0)
		return -1;
	outq_at(c, c->outq_len - 1)->m = pmd_msg_ref(m);
	return 0;
}

/* Chooses the frame of a shared-context entry now that it goes to the
 * socket, at the head of the queue: from here on it is part of the output
 * for good (no latest-wins replacement), so the window record may count
 * it. The entries before it were bound before it, in queue order. */
static void bind_msg(struct conn *c, struct conn_out *e)
{
	bool compressed;
	struct buf *b = pmd_msg_bind(e->m, &c->ws.win, &compressed);
	size_t old = e->end - e->off;

	pmd_msg_unref(e->m);
	e->m = NULL;
	e->replaceable = false;
	buf_unref(e->b);
	e->b = b;
	e->off = 0;
	e->end = (uint32_t)b->len;
	c->out_bytes = c->out_bytes - old + b->len;
	c->ctx->out_total = c->ctx->out_total - old + b->len;
}

int conn_push_range(struct conn *c, struct buf *b, size_t off, size_t len)
{
	return push(c, b, off, len, false);
}

void conn_pace(struct conn *c, double secs)
{
	if (c->state == CONN_CLOSED)
		return;
	c->paced = true;
	c->stalled = false; /* re-armed when writing resumes and blocks */
	ev_timer_stop(c->ctx->loop, &c->timer);
	ev_timer_set(&c->timer, secs, 0);
	ev_timer_start(c->ctx->loop, &c->timer);
}

/* The next chunk of the stream into the empty queue. Returns -1 when the
 * conn was closed. */
static int pull(struct conn *c)
{
	bool end = false;
	struct buf *b = c->stream.src->next(c->stream.ud, CONN_SOURCE_CHUNK, &end);
	int rc;

	if (!b) {
		conn_close(c, "stream error");
		return -1;
	}
	if (end)
		stream_end(c);
	rc = conn_push(c, b, false);
	buf_unref(b);
	return rc;
}

int conn_stream(struct conn *c, const struct conn_source *src, void *ud)
{
	if (c->state == CONN_CLOSED || c->is_websocket || c->stream.src) {
		src->done(ud);
		return -1;
	}
	c->stream.src = src;
	c->stream.ud = ud;
	if (!waiting_write(c))
		conn_flush(c);
	return 0;
}

/* The peer takes nothing: (re)starts the send timeout. */
static void stall(struct conn *c)
{
	c->stalled = true;
	ev_timer_stop(c->ctx->loop, &c->timer);
	ev_timer_set(&c->timer, c->ctx->cfg->send_timeout / 1000.0, 0);
	ev_timer_start(c->ctx->loop, &c->timer);
}

void conn_flush(struct conn *c)
{
	struct iovec iov[CONN_IOV_MAX];
	bool progress = false;

	if (c->paced) {
		watch_write(c, false); /* the pace's end flushes (no spin meanwhile) */
		return;
	}

	for (;;) {
		unsigned n;
		ssize_t w;

		if (c->state == CONN_CLOSED)
			return;
		if (!c->outq_len && !c->is_websocket && c->stream.src && pull(c) < 0)
			return;
		if (!c->outq_len)
			break;
		/* A shared-context entry is bound only at the head, once every
		 * byte ahead of it went to the kernel: the batch stops before
		 * any other. While the client is slow to read it stays unbound,
		 * so latest-wins can still replace it. */
		for (n = 0; n < c->outq_len && n < CONN_IOV_MAX; n++) {
			struct conn_out *e = outq_at(c, n);

			if (e->m && n > 0)
				break;
			if (e->m)
				bind_msg(c, e);
			iov[n].iov_base = e->b->data + e->off;
			iov[n].iov_len = e->end - e->off;
		}
		w = c->io->writev(c, iov, (int)n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				watch_write(c, true);
				if (progress || !c->stalled)
					stall(c);
				return;
			}
			conn_close(c, "write error");
			return;
		}
		c->out_bytes -= (size_t)w;
		c->ctx->out_total -= (size_t)w;
		progress = progress || w > 0;
		while (w > 0) {
			struct conn_out *e = outq_at(c, 0);
			size_t left = e->end - e->off;

			if ((size_t)w < left) {
				e->off += (uint32_t)w;
				break;
			}
			w -= (ssize_t)left;
			buf_unref(e->b);
			pmd_msg_unref(e->m); /* NULL: it was bound */
			c->outq_head = (c->outq_head + 1) % c->outq_cap;
			c->outq_len--;
		}
	}
	if (c->state == CONN_CLOSED)
		return;
	if (c->io->flush) {
		int r = c->io->flush(c);

		if (r < 0) {
			conn_close(c, "write error");
			return;
		}
		if (r > 0) {
			watch_write(c, true);
			if (progress || !c->stalled)
				stall(c);
			return;
		}
	}
	watch_write(c, false);
	if (c->stalled) {
		c->stalled = false;
		ev_timer_stop(c->ctx->loop, &c->timer);
	}
	if (c->proto && c->proto->drained)
		c->proto->drained(c);
}

int conn_send(struct conn *c, struct buf *b, bool replaceable)
{
	if (conn_push(c, b, replaceable) < 0)
		return -1;
	if (!waiting_write(c))
		conn_flush(c);
	return 0;
}
