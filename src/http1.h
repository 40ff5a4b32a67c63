/*
 * http1: HTTP/1.1 on a conn: reading a request head (the http parser) and
 * its body (Content-Length only), the request timeout, responses (always
 * "Connection: close", then a lingering close), and holding a request open
 * (a polling GET). The conn's handlers learn of each request (on_body_start,
 * on_request); http1 knows nothing of what the paths mean.
 */
#ifndef PGPUSH_HTTP1_H
#define PGPUSH_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "transport.h"

/* Starts reading a request on a new conn (arms the request timeout). */
void http1_start(struct conn *c);

/* Writes a complete response (with the request's CORS headers) and closes
 * the conn once it is sent. body is copied. Does nothing on a conn that
 * already answered, is a WebSocket, or is closed. */
void http1_respond(struct conn *c, int status, const char *extra_headers,
		   const char *content_type, const void *body, size_t body_len);

/* Like http1_respond for a body of body_len bytes that src produces in
 * chunks as the client takes them (conn_stream), instead of one copy held
 * whole: a static file. ud is the source's until its done runs (at once
 * when nothing is to be sent: a HEAD request, or a conn already answered). */
void http1_respond_stream(struct conn *c, int status, const char *extra_headers,
			  const char *content_type, uint64_t body_len,
			  const struct conn_source *src, void *ud);

/* Parks a request (a polling GET): it stays open until http1_respond; a
 * byte or EOF from the peer closes it. */
void http1_hold(struct conn *c);

/* True while the conn can still be answered (it has not responded). */
bool http1_can_respond(const struct conn *c);

#endif
