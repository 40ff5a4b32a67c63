/*
 * upgrade: the move of a polling session to a WebSocket (Engine.IO v4
 * "Upgrade"): the probe WebSocket answers 2probe with 3probe, the pending
 * GET is released with a noop, 5 completes the move (what waited in the
 * outbox follows over the WebSocket, in order); anything else, or
 * ENGINE_UPGRADE_TIMEOUT, aborts the probe and leaves the session polling.
 * The probe conn is adopted by the session until then.
 */
#ifndef PGPUSH_UPGRADE_H
#define PGPUSH_UPGRADE_H

#include <stddef.h>

#include "session.h"

/* A WebSocket request for s's sid. Completes the handshake; the conn
 * becomes s's probe when s is polling and not probing yet, otherwise it is
 * closed at once after the handshake, as the reference server does (a
 * client without an error handler would throw on a 400). */
void upgrade_request(struct session *s, struct conn *c, const struct http_request *req,
		     size_t head_len);

/* The upgrade deadline list's callback (engine.c installs it). */
void upgrade_due(struct deadline *d, void *ud);

#endif
