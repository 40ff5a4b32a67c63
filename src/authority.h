/*
 * authority: host[:port] strings, pure: the --listen address, and whether
 * an Origin header names the same host as the Host header (the same-origin
 * check of the WebSocket and polling handshakes).
 */
#ifndef PGPUSH_AUTHORITY_H
#define PGPUSH_AUTHORITY_H

#include <stdbool.h>
#include <stddef.h>

/* Splits "host:port", "[v6]:port" or ":port" into host (may be empty) and
 * port. Returns false when malformed. host must hold 256 bytes. */
bool config_split_listen(const char *s, char host[256], unsigned *port);

/* True when an Origin header value (scheme://host[:port], http or https)
 * names the host of a Host header value (host[:port]): hosts compared
 * case-insensitively, a missing port being the Origin scheme's default
 * (80, 443) on both sides. "null" and other schemes never match. Pure. */
bool config_origin_matches_host(const char *origin, size_t olen, const char *host, size_t hlen);

#endif
