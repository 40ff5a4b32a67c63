/*
 * engine: the Engine.IO v4 server object (struct engine, defined in
 * session.h): creating it on a conn context, answering the requests of its
 * path (the handshake on either transport, requests of a polling session,
 * upgrades), the cap on sessions (--max-clients, beyond it 503), and the
 * deferred work run by the conn context's reaper: polling responses queued
 * during the loop iteration, then closed sessions (the layer above's
 * on_close, then freeing). The layer above plugs in with struct
 * engine_handlers; the server's router calls engine_handle_request and
 * engine_post_begin for requests under the engine's path.
 */
#ifndef PGPUSH_ENGINE_H
#define PGPUSH_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "session.h"

struct engine_options {
	const char *path;                  /* "/socket.io" */
	bool polling;                      /* serve the long-polling transport */
	const struct engine_handlers *up;  /* the layer above */
	void *up_ud;
	deadline_clock_fn *now;            /* NULL: deadline_monotonic */
	void *now_ud;
};

/* Initialises e on cx (which must outlive it). Returns 0, or -1 when out
 * of memory. */
int engine_init(struct engine *e, struct conn_ctx *cx, const struct config *cfg,
		const struct engine_options *opts) __attribute__((warn_unused_result));

/* Closes every session and runs the deferred work; stops the timers. */
void engine_free(struct engine *e);

/* Closes every session (WebSockets with 1001) and refuses new ones. */
void engine_shutdown(struct engine *e);

/* True when the request's path is e's path or below it. */
bool engine_owns_path(const struct engine *e, const struct http_request *req);

/* Answers, holds or upgrades a request under e's path. */
void engine_handle_request(struct engine *e, struct conn *c, const struct http_request *req,
			   size_t head_len, const char *body, size_t body_len);

/* A POST head under e's path, before its body: it becomes the in-flight
 * POST of the polling session it names. Returns -1 when it answered. */
int engine_post_begin(struct engine *e, struct conn *c, const struct http_request *req);

/* The deferred work; returns true when it did some. For conn_ctx's
 * deferred hook (the server chains its engines). */
bool engine_run_deferred(struct engine *e);

#endif
