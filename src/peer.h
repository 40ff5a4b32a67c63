/*
 * peer: peer addresses as text. The server formats every peer one way
 * ("127.0.0.1:5", "[::1]:5"); these read that text back (loopback or not,
 * the address in a sockaddr) and pick a request's client address from
 * X-Forwarded-For when the peer is a trusted proxy. Pure, no allocation.
 */
#ifndef PGPUSH_PEER_H
#define PGPUSH_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "cidr.h"

/* Formats sa as "host:port", "[v6]:port" or "unix" into out. */
void peer_format(const struct sockaddr *sa, char *out, size_t outlen);

/* True for a loopback address text as the server formats peers
 * ("127.0.0.1:5", "[::1]:5", "[::ffff:127.0.0.1]:5").  */
bool server_peer_is_loopback(const char *peer);

/* The address of a peer text as the server formats it ("127.0.0.1:5",
 * "[::1]:5", or a forwarded "192.0.2.1" / "[2001:db8::1]") into ss.
 * False when it is none.  */
bool server_peer_addr(const char *peer, struct sockaddr_storage *ss);

/* The client address of a request that came from sock_peer: with
 * X-Forwarded-For value xff (NULL: none) and sock_peer in trusted, the
 * rightmost address of the header that is not itself trusted (the leftmost
 * when all are), formatted into out; otherwise sock_peer. Exposed for
 * tests. */
void server_client_addr(const struct cidr_list *trusted, const char *sock_peer,
			const char *xff, size_t xff_len, char *out, size_t outlen);

#endif
