/* Unit tests for cidr: parsing CIDR lists and matching peer addresses. */
#include "autoconfig.h"

#include "cidr.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static struct sockaddr_storage ss;

/* A sockaddr for text (IPv4 or IPv6). */
static const struct sockaddr *addr(const char *text)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1)
		in->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1)
		in6->sin6_family = AF_INET6;
	return (const struct sockaddr *)&ss;
}

static int parse(const char *s)
{
	struct cidr c;

	return cidr_parse(s, strlen(s), &c);
}

static const char *canon(const char *s)
{
	static char buf[80];
	struct cidr c;

	if (cidr_parse(s, strlen(s), &c) != 0)
		return "(error)";
	return cidr_format(&c, buf, sizeof(buf));
}

static void test_parse(void)
{
	static const struct { const char *in, *want; } good[] = {
		{ "127.0.0.1", "127.0.0.1/32" },
		{ "10.0.0.0/8", "10.0.0.0/8" },
		{ "0.0.0.0/0", "0.0.0.0/0" },
		{ "192.168.1.128/25", "192.168.1.128/25" },
		{ "::1", "::1/128" },
		{ "::/0", "::/0" },
		{ "fe80::/10", "fe80::/10" },
		{ "2001:DB8::/32", "2001:db8::/32" },
		{ "::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104" },
	};
	static const struct { const char *in; int want; } bad[] = {
		{ "", CIDR_ERR_EMPTY },
		{ "10.0.0.0/", CIDR_ERR_PREFIX },
		{ "10.0.0.0/33", CIDR_ERR_PREFIX },
		{ "10.0.0.0/-1", CIDR_ERR_PREFIX },
		{ "10.0.0.0/+8", CIDR_ERR_PREFIX },
		{ "10.0.0.0/08", CIDR_ERR_PREFIX },
		{ "10.0.0.0/8/8", CIDR_ERR_PREFIX },
		{ "10.0.0.0/ 8", CIDR_ERR_PREFIX },
		{ "::/129", CIDR_ERR_PREFIX },
		{ "::/1000", CIDR_ERR_PREFIX },
		{ "10.1.2.3/8", CIDR_ERR_HOST_BITS },
		{ "192.168.1.129/25", CIDR_ERR_HOST_BITS },
		{ "fe80::1/10", CIDR_ERR_HOST_BITS },
		{ "10.1", CIDR_ERR_ADDRESS },
		{ "010.0.0.1", CIDR_ERR_ADDRESS },
		{ "256.0.0.1", CIDR_ERR_ADDRESS },
		{ "[::1]", CIDR_ERR_ADDRESS },
		{ "fe80::1%eth0", CIDR_ERR_ADDRESS },
		{ "localhost", CIDR_ERR_ADDRESS },
		{ "/8", CIDR_ERR_ADDRESS },
		{ " 10.0.0.0/8", CIDR_ERR_ADDRESS },
		{ "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd/128", CIDR_ERR_ADDRESS },
	};
	size_t i;
	struct cidr c;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		is_str(canon(good[i].in), good[i].want, "parse '%s'", good[i].in);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		is_int(parse(bad[i].in), bad[i].want, "refuse '%s'", bad[i].in);
	is_int(cidr_parse("10.0.0.0/8\0x", 12, &c), CIDR_ERR_ADDRESS, "refuse an embedded NUL");
	is_int(cidr_parse("10.0.0.0/8junk", 10, &c), 0, "only len bytes are read");
	is_int(c.prefix, 8, "... and the prefix is 8");
}

static void test_list(void)
{
	struct cidr_list l;
	char err[200], big[CIDR_LIST_MAX * 16 + 32];
	size_t i, n = 0;

	is_int(cidr_list_parse("127.0.0.0/8, ::1,10.0.0.0/8\t192.168.0.0/16\n", &l, err, sizeof(err)), 0,
	       "list: commas, spaces, tabs, newlines");
	is_int(l.n, 4, "list: four networks");
	is_int(cidr_list_parse("", &l, err, sizeof(err)), CIDR_ERR_EMPTY, "empty list refused");
	is_str(err, "no network given", "empty list: the message");
	is_int(cidr_list_parse(" , ,", &l, err, sizeof(err)), CIDR_ERR_EMPTY, "only separators refused");
	is_int(cidr_list_parse("10.0.0.0/8, 10.1.2.3/16", &l, err, sizeof(err)), CIDR_ERR_HOST_BITS,
	       "one bad entry refuses the list");
	is_str(err, "'10.1.2.3/16': bits are set after the prefix (write the network address, e.g. 10.0.0.0/8)",
	       "the message names the entry");
	is_int(l.n, 0, "refused list: empty");
	is_int(cidr_list_parse("10.0.0.0/8 nonsense", &l, NULL, 0), CIDR_ERR_ADDRESS, "no message buffer: fine");

	for (i = 0; i < CIDR_LIST_MAX; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "10.0.%zu.0/24,", i);
	is_int(cidr_list_parse(big, &l, err, sizeof(err)), 0, "%d networks: fine", CIDR_LIST_MAX);
	is_int(l.n, CIDR_LIST_MAX, "all of them kept");
	snprintf(big + n, sizeof(big) - n, "10.1.0.0/16");
	is_int(cidr_list_parse(big, &l, err, sizeof(err)), CIDR_ERR_TOO_MANY, "one more: refused");
}

static void test_match(void)
{
	struct cidr_list l, lo;
	struct cidr c;
	char buf[8];

	if (cidr_list_parse("10.0.0.0/8, 192.168.1.128/25, 2001:db8::/32, 0.0.0.0/32", &l, NULL, 0) != 0)
		ok(0, "list for matching");
	ok(cidr_list_match(&l, addr("10.255.1.2")), "10.255.1.2 in 10.0.0.0/8");
	ok(!cidr_list_match(&l, addr("11.0.0.1")), "11.0.0.1 in none");
	ok(cidr_list_match(&l, addr("192.168.1.128")), "first address of /25");
	ok(cidr_list_match(&l, addr("192.168.1.255")), "last address of /25");
	ok(!cidr_list_match(&l, addr("192.168.1.127")), "just below the /25");
	ok(cidr_list_match(&l, addr("2001:db8:ffff::1")), "IPv6 in 2001:db8::/32");
	ok(!cidr_list_match(&l, addr("2001:db9::1")), "IPv6 outside");
	ok(cidr_list_match(&l, addr("::ffff:10.1.2.3")), "IPv4-mapped peer matches the IPv4 network");
	ok(!cidr_list_match(&l, addr("::ffff:11.1.2.3")), "IPv4-mapped peer outside");
	ok(!cidr_list_match(&l, addr("::a01:203")), "IPv4-compatible (not mapped) is IPv6, no match");
	ok(cidr_list_match(&l, addr("0.0.0.0")), "0.0.0.0/32 is one host");
	ok(!cidr_list_match(&l, addr("0.0.0.1")), "... only that one");
	ok(!cidr_list_match(&l, NULL), "no address: no match");
	{
		struct sockaddr_storage un;

		memset(&un, 0, sizeof(un));
		un.ss_family = AF_UNIX;
		ok(!cidr_list_match(&l, (struct sockaddr *)&un), "AF_UNIX peer: no match");
	}

	if (cidr_list_parse("0.0.0.0/0", &l, NULL, 0) == 0)
		ok(cidr_list_match(&l, addr("203.0.113.9")) && !cidr_list_match(&l, addr("::1")),
		   "0.0.0.0/0: every IPv4 peer, no IPv6 one");
	if (cidr_list_parse("::/0", &l, NULL, 0) == 0)
		ok(cidr_list_match(&l, addr("::1")) && !cidr_list_match(&l, addr("203.0.113.9")),
		   "::/0: every IPv6 peer, no IPv4 one");
	if (cidr_parse("::ffff:0:0/96", 13, &c) == 0)
		ok(cidr_match(&c, addr("::ffff:1.2.3.4")), "an IPv6 network of mapped addresses matches as IPv6");

	cidr_list_loopback(&lo);
	is_int(lo.n, 2, "loopback: two networks");
	ok(cidr_list_match(&lo, addr("127.0.0.1")) && cidr_list_match(&lo, addr("127.255.255.254")),
	   "loopback: 127.0.0.0/8");
	ok(cidr_list_match(&lo, addr("::1")), "loopback: ::1");
	ok(cidr_list_match(&lo, addr("::ffff:127.0.0.1")), "loopback: mapped 127.0.0.1");
	ok(!cidr_list_match(&lo, addr("10.0.0.1")) && !cidr_list_match(&lo, addr("::2")), "loopback: nothing else");
	is_str(cidr_format(&lo.v[0], buf, sizeof(buf)), "127.0.0", "format cut to the buffer");
	is_str(cidr_format(&lo.v[1], buf, sizeof(buf)), "::1/128", "format ::1/128");
}

int main(void)
{
	test_parse();
	test_list();
	test_match();
	return done_testing();
}
