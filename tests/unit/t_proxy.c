/* --trusted-proxy: which X-Forwarded-For address becomes the client. */
#include "autoconfig.h"

#include "cidr.h"
#include "server.h"
#include "tap.h"

static const struct {
	const char *trusted;	/* --trusted-proxy, "" for none */
	const char *peer;	/* the socket's peer */
	const char *xff;	/* NULL: no header */
	const char *want;
} cases[] = {
	{ "", "127.0.0.1:5000", "203.0.113.9", "127.0.0.1:5000" },		/* nobody trusted */
	{ "127.0.0.1/32", "127.0.0.1:5000", NULL, "127.0.0.1:5000" },		/* no header */
	{ "127.0.0.1/32", "127.0.0.1:5000", "203.0.113.9", "203.0.113.9" },
	{ "127.0.0.1/32", "192.0.2.1:5000", "203.0.113.9", "192.0.2.1:5000" },	/* not from the proxy */
	{ "127.0.0.1/32", "127.0.0.1:5000", "198.51.100.7, 203.0.113.9", "203.0.113.9" }, /* rightmost */
	{ "127.0.0.1/32, 10.0.0.0/8", "127.0.0.1:5000", "198.51.100.7, 203.0.113.9, 10.1.1.1", "203.0.113.9" },
	{ "127.0.0.1/32, 10.0.0.0/8", "127.0.0.1:5000", "10.2.2.2,10.1.1.1", "10.2.2.2" }, /* all trusted: leftmost */
	{ "127.0.0.1/32", "127.0.0.1:5000", "garbage, 203.0.113.9", "203.0.113.9" },
	{ "127.0.0.1/32", "127.0.0.1:5000", "203.0.113.9, garbage", "127.0.0.1:5000" }, /* the nearest is unusable */
	{ "127.0.0.1/32", "127.0.0.1:5000", "", "127.0.0.1:5000" },
	{ "127.0.0.1/32", "127.0.0.1:5000", "203.0.113.9,", "127.0.0.1:5000" },
	{ "127.0.0.1/32", "127.0.0.1:5000", "2001:db8::1", "[2001:db8::1]" },
	{ "::1", "[::1]:5000", " 203.0.113.9 ", "203.0.113.9" },
	{ "127.0.0.0/8", "[::ffff:127.0.0.1]:5000", "203.0.113.9", "203.0.113.9" }, /* mapped */
	{ "127.0.0.1/32", "127.0.0.1:5000", "203.0.113.9:443", "203.0.113.9" }, /* a port is dropped */
	{ "127.0.0.1/32", "127.0.0.1:5000", "[2001:db8::1]:443", "[2001:db8::1]" },
};

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cidr_list l = { 0 };
		char err[128], out[64];

		if (*cases[i].trusted && cidr_list_parse(cases[i].trusted, &l, err, sizeof(err)) < 0) {
			ok(0, "case %zu: %s", i, err);
			continue;
		}
		server_client_addr(&l, cases[i].peer, cases[i].xff, cases[i].xff ? strlen(cases[i].xff) : 0,
				   out, sizeof(out));
		is_str(out, cases[i].want, "trusted '%s', peer %s, X-Forwarded-For '%s'", cases[i].trusted,
		       cases[i].peer, cases[i].xff ? cases[i].xff : "(none)");
	}
	{
		struct sockaddr_storage ss;

		ok(server_peer_addr("127.0.0.1:80", &ss) && ss.ss_family == AF_INET, "v4 with port");
		ok(server_peer_addr("[::1]:80", &ss) && ss.ss_family == AF_INET6, "v6 with port");
		ok(server_peer_addr("203.0.113.9", &ss), "forwarded v4");
		ok(server_peer_addr("[2001:db8::1]", &ss), "forwarded v6");
		ok(!server_peer_addr("unix", &ss) && !server_peer_addr("", &ss), "no address");
	}
	return done_testing();
}
