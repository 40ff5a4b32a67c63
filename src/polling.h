/*
 * polling: the HTTP long-polling part of an Engine.IO session (Engine.IO
 * v4 "polling"): the held GET, the POSTs and their overlap rules, and the
 * response that carries the outbox, \x1e-joined, to the held GET. A held
 * GET and an in-flight POST are adopted by the session (its handlers on
 * the conn) until answered.
 */
#ifndef PGPUSH_POLLING_H
#define PGPUSH_POLLING_H

#include <stddef.h>

#include "session.h"

/* A GET, POST or other request of a polling session s on conn c. */
void polling_request(struct session *s, struct conn *c, const struct http_request *req,
		     const char *body, size_t body_len);

/* A POST head for s, before its body: the POST becomes s's in-flight one,
 * or, when s already has one, it is refused (400) and s is closed, as the
 * reference server does. Returns -1 when it answered. */
int polling_post_begin(struct session *s, struct conn *c);

/* Answers the held GET with everything queued (engine.c's deferred work:
 * packets queued during one loop iteration leave in one response). */
void polling_flush(struct session *s);

#endif
