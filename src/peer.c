#include "autoconfig.h"
#include "peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

void peer_format(const struct sockaddr *sa, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(out, outlen, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(out, outlen, "[%s]:%u", host, port);
	} else {
		snprintf(out, outlen, "unix");
	}
}

bool server_peer_is_loopback(const char *peer)
{
	return strncmp(peer, "127.", 4) == 0 || strncmp(peer, "[::1]:", 6) == 0 ||
	       strncmp(peer, "[::ffff:127.", 12) == 0;
}

bool server_peer_addr(const char *peer, struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN];
	const char *end;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (*peer == '[') {
		peer++;
		end = strchr(peer, ']');
		if (!end)
			return false;
	} else {
		end = strchr(peer, ':');
		if (!end)
			end = peer + strlen(peer);
	}
	n = (size_t)(end - peer);
	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, peer, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		return true;
	}
	return false;
}

void server_client_addr(const struct cidr_list *trusted, const char *sock_peer,
			const char *xff, size_t xff_len, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	size_t end = xff_len;
	char chosen[INET6_ADDRSTRLEN + 2] = "";

	snprintf(out, outlen, "%s", sock_peer);
	if (!xff || !trusted || trusted->n == 0 || !server_peer_addr(sock_peer, &ss) ||
	    !cidr_list_match(trusted, (struct sockaddr *)&ss))
		return;
	/* Right to left: each proxy appends the address it got the request
	 * from; the first one that is not ours is the client. */
	while (end > 0) {
		size_t start = end, a, b;
		char host[INET6_ADDRSTRLEN + 2];

		while (start > 0 && xff[start - 1] != ',')
			start--;
		a = start;
		b = end;
		while (a < b && (xff[a] == ' ' || xff[a] == '\t'))
			a++;
		while (b > a && (xff[b - 1] == ' ' || xff[b - 1] == '\t'))
			b--;
		end = start ? start - 1 : 0;
		if (b - a == 0 || b - a >= sizeof(host))
			break; /* an empty or oversized entry: believe nothing further left */
		memcpy(host, xff + a, b - a);
		host[b - a] = '\0';
		/* A bare IPv6 address (nginx writes them so), or the forms of
		 * server_peer_addr: v4, v4:port, [v6], [v6]:port. */
		memset(&ss, 0, sizeof(ss));
		if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
			ss.ss_family = AF_INET6;
		else if (!server_peer_addr(host, &ss))
			break;
		{
			char addr[INET6_ADDRSTRLEN];

			inet_ntop(ss.ss_family, ss.ss_family == AF_INET
				  ? (void *)&((struct sockaddr_in *)&ss)->sin_addr
				  : (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
			if (ss.ss_family == AF_INET6)
				snprintf(chosen, sizeof(chosen), "[%s]", addr);
			else
				snprintf(chosen, sizeof(chosen), "%s", addr);
		}
		if (!cidr_list_match(trusted, (struct sockaddr *)&ss))
			break;
	}
	if (*chosen)
		snprintf(out, outlen, "%s", chosen);
}
