/*
 * cidr: lists of IPv4 and IPv6 networks ("127.0.0.0/8, ::1") and whether a
 * peer address is in one. For the options of issue 11 that take CIDR...
 * lists: who may read GET /metrics (--metrics-allow; loopback by default)
 * and which proxies' X-Forwarded-For is believed (--trusted-proxy).
 *
 * Sans-I/O and allocation-free: a list is a fixed array of at most
 * CIDR_LIST_MAX entries inside the struct, filled by cidr_list_parse from
 * the option's text. A peer that arrives on a dual-stack [::] listener as
 * an IPv4-mapped address (::ffff:192.0.2.1) matches the IPv4 entries, as
 * it is that IPv4 peer.
 */
#ifndef PGPUSH_CIDR_H
#define PGPUSH_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CIDR_LIST_MAX 64	/* networks in one list */
#define CIDR_TEXT_MAX 64	/* bytes of one entry: an IPv6 address, '/', a prefix */

enum cidr_err {
	CIDR_OK = 0,
	CIDR_ERR_EMPTY = -1,	/* no entry at all */
	CIDR_ERR_ADDRESS = -2,	/* not an IPv4 or IPv6 address */
	CIDR_ERR_PREFIX = -3,	/* the prefix is not 0-32 (IPv4) or 0-128 (IPv6) */
	CIDR_ERR_HOST_BITS = -4,/* bits set after the prefix: 10.1.2.3/8 means 10.0.0.0/8? say so */
	CIDR_ERR_TOO_MANY = -5,	/* more than CIDR_LIST_MAX entries */
};

struct cidr {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* network byte order; 4 bytes used for AF_INET */
	unsigned prefix;	/* 0-32 or 0-128; an address without /N is a host: 32 or 128 */
};

struct cidr_list {
	size_t n;
	struct cidr v[CIDR_LIST_MAX];
};

/* One network, "ADDR" or "ADDR/PREFIX", the address in inet_pton's forms
 * (dotted quad; RFC 4291 text, no brackets, no zone). Returns 0 or an
 * error above. */
int cidr_parse(const char *s, size_t len, struct cidr *out) __attribute__((warn_unused_result));

/* A list: entries separated by commas and/or white space. On error, err
 * (when errlen > 0) says which entry and why, and *out is empty. */
int cidr_list_parse(const char *s, struct cidr_list *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The loopback networks, 127.0.0.0/8 and ::1/128: --metrics-allow's default. */
void cidr_list_loopback(struct cidr_list *out);

/* Whether the address (AF_INET or AF_INET6; anything else never matches)
 * is in c, or in any network of l. */
bool cidr_match(const struct cidr *c, const struct sockaddr *sa);
bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

/* The canonical text of c ("10.0.0.0/8", "::1/128") into buf, NUL-terminated
 * and cut to buflen; returns buf. For logs and --help. */
const char *cidr_format(const struct cidr *c, char *buf, size_t buflen);

#endif
