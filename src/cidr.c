/*
 * cidr: networks in CIDR notation (RFC 4632 for IPv4, RFC 4291 §2.3 for
 * IPv6) and address matching.
 */
#include "autoconfig.h"

#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int cidr_parse(const char *s, size_t len, struct cidr *out)
{
	char text[CIDR_TEXT_MAX + 1];
	const char *slash;
	size_t alen, bytes, i;
	unsigned prefix, max;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return CIDR_ERR_EMPTY;
	if (len > CIDR_TEXT_MAX || memchr(s, '\0', len))
		return CIDR_ERR_ADDRESS;
	slash = memchr(s, '/', len);
	alen = slash ? (size_t)(slash - s) : len;
	memcpy(text, s, alen);
	text[alen] = '\0';

	/* inet_pton takes exactly these forms: no brackets, no zone id, no
	 * shortened IPv4 ("10.1"), no leading zeros read as octal. */
	if (inet_pton(AF_INET, text, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, text, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		memset(out, 0, sizeof(*out));
		return CIDR_ERR_ADDRESS;
	}

	prefix = max;
	if (slash) {
		const char *p = slash + 1, *end = s + len;

		/* 1 to 3 digits, no sign, no leading zero but for "0" itself. */
		if (p == end || end - p > 3 || (p[0] == '0' && end - p > 1))
			goto bad_prefix;
		for (prefix = 0; p < end; p++) {
			if (*p < '0' || *p > '9')
				goto bad_prefix;
			prefix = prefix * 10 + (unsigned)(*p - '0');
		}
		if (prefix > max)
			goto bad_prefix;
	}
	out->prefix = prefix;

	/* 10.1.2.3/8 is a typo or a misunderstanding; refusing it beats
	 * guessing (nginx only warns, and then matches 10.0.0.0/8). */
	bytes = max / 8;
	for (i = prefix / 8; i < bytes; i++) {
		uint8_t mask = i == prefix / 8 ? (uint8_t)(0xffu >> (prefix % 8)) : 0xff;

		if (out->addr[i] & mask) {
			memset(out, 0, sizeof(*out));
			return CIDR_ERR_HOST_BITS;
		}
	}
	return CIDR_OK;

bad_prefix:
	memset(out, 0, sizeof(*out));
	return CIDR_ERR_PREFIX;
}

static const char *describe(int rc)
{
	switch (rc) {
	case CIDR_ERR_EMPTY:
		return "no network given";
	case CIDR_ERR_ADDRESS:
		return "not an IPv4 or IPv6 address";
	case CIDR_ERR_PREFIX:
		return "the prefix length must be 0-32 for IPv4, 0-128 for IPv6";
	case CIDR_ERR_HOST_BITS:
		return "bits are set after the prefix (write the network address, e.g. 10.0.0.0/8)";
	case CIDR_ERR_TOO_MANY:
		return "too many networks";
	default:
		return "invalid";
	}
}

static bool separator(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int cidr_list_parse(const char *s, struct cidr_list *out, char *err, size_t errlen)
{
	const char *p = s;
	int rc;

	out->n = 0;
	for (;;) {
		const char *start;

		while (*p && separator(*p))
			p++;
		if (!*p)
			break;
		start = p;
		while (*p && !separator(*p))
			p++;
		if (out->n == CIDR_LIST_MAX) {
			rc = CIDR_ERR_TOO_MANY;
			if (errlen)
				snprintf(err, errlen, "more than %d networks", CIDR_LIST_MAX);
			goto fail;
		}
		rc = cidr_parse(start, (size_t)(p - start), &out->v[out->n]);
		if (rc < 0) {
			if (errlen)
				snprintf(err, errlen, "'%.*s': %s",
					 (int)((size_t)(p - start) > CIDR_TEXT_MAX ? CIDR_TEXT_MAX : (size_t)(p - start)),
					 start, describe(rc));
			goto fail;
		}
		out->n++;
	}
	if (out->n == 0) {
		rc = CIDR_ERR_EMPTY;
		if (errlen)
			snprintf(err, errlen, "%s", describe(rc));
		goto fail;
	}
	return CIDR_OK;

fail:
	out->n = 0;
	return rc;
}

void cidr_list_loopback(struct cidr_list *out)
{
	memset(out, 0, sizeof(*out));
	out->v[0].family = AF_INET;
	out->v[0].addr[0] = 127;
	out->v[0].prefix = 8;
	out->v[1].family = AF_INET6;
	out->v[1].addr[15] = 1;
	out->v[1].prefix = 128;
	out->n = 2;
}

/* Whether the first prefix bits of a and b agree. */
static bool same_prefix(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff00u >> rest);

		return (a[whole] & mask) == (b[whole] & mask);
	}
	return true;
}

bool cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		return c->family == AF_INET &&
		       same_prefix((const uint8_t *)&in->sin_addr, c->addr, c->prefix);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		const uint8_t *a = in6->sin6_addr.s6_addr;

		if (c->family == AF_INET6)
			return same_prefix(a, c->addr, c->prefix);
		/* ::ffff:a.b.c.d is IPv4 peer a.b.c.d on a dual-stack socket. */
		if (c->family == AF_INET && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return same_prefix(a + 12, c->addr, c->prefix);
	}
	return false;
}

bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (cidr_match(&l->v[i], sa))
			return true;
	return false;
}

const char *cidr_format(const struct cidr *c, char *buf, size_t buflen)
{
	char addr[INET6_ADDRSTRLEN];

	if (!buflen)
		return buf;
	if ((c->family != AF_INET && c->family != AF_INET6) ||
	    !inet_ntop(c->family, c->addr, addr, sizeof(addr)))
		snprintf(addr, sizeof(addr), "?");
	snprintf(buf, buflen, "%s/%u", addr, c->prefix);
	return buf;
}
