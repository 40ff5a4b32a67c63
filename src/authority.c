#include "autoconfig.h"
#include "authority.h"
#include <strings.h>

#include "util.h"

#include <stdint.h>
#include <string.h>

bool config_split_listen(const char *s, char host[256], unsigned *port)
{
	const char *colon;
	const char *h = s;
	size_t hlen;
	uint64_t p;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return false;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return false;
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen))
			return false; /* bare IPv6 needs brackets */
	}
	if (hlen >= 256 || !util_parse_u64(colon + 1, strlen(colon + 1), 65535, &p))
		return false;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (unsigned)p;
	return true;
}

/* Splits "host[:port]" or "[v6][:port]" (the whole of s[0..len)): the host
 * part (brackets kept) and the port, or 0 when there is none. */
static bool split_authority(const char *s, size_t len, const char **host, size_t *hostlen,
			    unsigned *port)
{
	const char *colon = NULL;
	uint64_t p;

	if (!len)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == '?' || ch == '#' || ch == '@' ||
		    ch == '\\')
			return false;
	}
	if (s[0] == '[') {
		const char *rb = memchr(s, ']', len);

		if (!rb)
			return false;
		if ((size_t)(rb + 1 - s) < len) {
			if (rb[1] != ':')
				return false;
			colon = rb + 1;
		}
	} else {
		colon = memchr(s, ':', len);
		if (colon && memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)))
			return false; /* a bare IPv6 address */
	}
	*host = s;
	*hostlen = colon ? (size_t)(colon - s) : len;
	*port = 0;
	if (colon) {
		size_t plen = len - (size_t)(colon + 1 - s);

		if (!plen || !util_parse_u64(colon + 1, plen, 65535, &p) || p == 0)
			return false;
		*port = (unsigned)p;
	}
	return *hostlen > 0;
}

bool config_origin_matches_host(const char *origin, size_t olen, const char *host, size_t hlen)
{
	const char *oh, *hh;
	size_t ohlen, hhlen;
	unsigned oport, hport, def;

	if (olen > 7 && strncasecmp(origin, "http://", 7) == 0) {
		def = 80;
		origin += 7;
		olen -= 7;
	} else if (olen > 8 && strncasecmp(origin, "https://", 8) == 0) {
		def = 443;
		origin += 8;
		olen -= 8;
	} else {
		return false; /* "null", file:, extensions: never the same origin */
	}
	while (hlen && (host[hlen - 1] == ' ' || host[hlen - 1] == '\t'))
		hlen--;
	while (hlen && (*host == ' ' || *host == '\t')) {
		host++;
		hlen--;
	}
	if (!split_authority(origin, olen, &oh, &ohlen, &oport) ||
	    !split_authority(host, hlen, &hh, &hhlen, &hport))
		return false;
	/* A browser leaves the scheme's default port out of both; the Host
	 * carries no scheme (TLS may end at a proxy), so a Host without a port
	 * takes the Origin's default. */
	if (!oport)
		oport = def;
	if (!hport)
		hport = def;
	return oport == hport && ohlen == hhlen && strncasecmp(oh, hh, ohlen) == 0;
}

