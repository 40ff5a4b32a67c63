/*
 * Fuzz target: cidr_parse and cidr_list_parse, which read --metrics-allow
 * and --trusted-proxy.
 *
 * Invariants, beyond "no memory error, no UB":
 *  - an accepted network has no bit set after its prefix, a prefix within
 *    its family's width, and its canonical text parses back to itself;
 *  - the network's own address matches it (as IPv4, and as IPv4-mapped
 *    IPv6 for an IPv4 network);
 *  - a list is accepted exactly when every entry is, with at most
 *    CIDR_LIST_MAX of them, and a refused list is empty.
 */
#include "autoconfig.h"

#include "cidr.h"
#include "fuzz.h"

#include <netinet/in.h>

static void check_one(const struct cidr *c)
{
	char text[80];
	struct cidr back;
	unsigned width = c->family == AF_INET ? 32 : 128, i;
	struct sockaddr_storage ss;

	FUZZ_CHECK(c->family == AF_INET || c->family == AF_INET6);
	FUZZ_CHECK(c->prefix <= width);
	for (i = c->prefix; i < width; i++)
		FUZZ_CHECK(!(c->addr[i / 8] & (0x80 >> (i % 8))));
	cidr_format(c, text, sizeof(text));
	FUZZ_CHECK(cidr_parse(text, strlen(text), &back) == 0);
	FUZZ_CHECK(back.family == c->family && back.prefix == c->prefix &&
		   memcmp(back.addr, c->addr, 16) == 0);

	memset(&ss, 0, sizeof(ss));
	if (c->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, c->addr, 4);
		FUZZ_CHECK(cidr_match(c, (struct sockaddr *)&ss));
		memset(&ss, 0, sizeof(ss));
		in6->sin6_family = AF_INET6;
		in6->sin6_addr.s6_addr[10] = 0xff;
		in6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(in6->sin6_addr.s6_addr + 12, c->addr, 4);
		FUZZ_CHECK(cidr_match(c, (struct sockaddr *)&ss));
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		memcpy(in6->sin6_addr.s6_addr, c->addr, 16);
		FUZZ_CHECK(cidr_match(c, (struct sockaddr *)&ss));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_dup(data, size), *str = fuzz_alloc(size + 1);
	static struct cidr_list l;
	struct cidr c;
	char err[160];
	size_t i, entries = 0;
	bool all_good = true;
	const char *p;

	if (cidr_parse(buf, size, &c) == 0)
		check_one(&c);

	/* As a list: a NUL-terminated copy, cut at the first NUL. */
	memcpy(str, data, size);
	str[size] = '\0';
	for (p = str; *p;) {
		const char *start;

		while (*p && strchr(", \t\n\r", *p))
			p++;
		if (!*p)
			break;
		for (start = p; *p && !strchr(", \t\n\r", *p); p++)
			;
		entries++;
		if (cidr_parse(start, (size_t)(p - start), &c) != 0)
			all_good = false;
	}
	if (cidr_list_parse(str, &l, err, sizeof(err)) == 0) {
		FUZZ_CHECK(all_good && entries == l.n && l.n >= 1 && l.n <= CIDR_LIST_MAX);
		for (i = 0; i < l.n; i++)
			check_one(&l.v[i]);
	} else {
		FUZZ_CHECK(!all_good || entries == 0 || entries > CIDR_LIST_MAX);
		FUZZ_CHECK(l.n == 0 && memchr(err, '\0', sizeof(err)));
	}
	free(str);
	free(buf);
	return 0;
}
