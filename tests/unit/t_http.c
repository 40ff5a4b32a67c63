/* The HTTP request-head parser: valid heads, every prefix, malformed input. */
#include "autoconfig.h"

#include "http.h"
#include "tap.h"

#include <stdlib.h>

static const char upgrade_req[] =
	"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
	"Host: localhost:3000\r\n"
	"Connection: keep-alive, Upgrade\r\n"
	"Upgrade: websocket\r\n"
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	"Sec-WebSocket-Version: 13\r\n"
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
	"\r\n";

static void test_valid(void)
{
	struct http_request req;
	int n = http_parse_request(upgrade_req, sizeof(upgrade_req) - 1, &req);
	const struct http_header *h;
	const char *v;
	size_t vlen;

	is_int(n, sizeof(upgrade_req) - 1, "complete head consumed exactly");
	is_mem(req.method, req.method_len, "GET", "method");
	is_mem(req.path, req.path_len, "/socket.io/", "path");
	is_mem(req.query, req.query_len, "EIO=4&transport=websocket", "query");
	is_int(req.minor_version, 1, "HTTP/1.1");
	is_int(req.num_headers, 6, "six headers");
	h = http_find_header(&req, "upgrade");
	ok(h && http_header_has_token(h, "WebSocket"), "Upgrade header found case-insensitively");
	ok(http_header_has_token(http_find_header(&req, "Connection"), "upgrade"),
	   "token found in a comma list");
	ok(!http_header_has_token(http_find_header(&req, "Connection"), "close"),
	   "absent token not found");
	ok(http_find_header(&req, "X-Missing") == NULL, "missing header is NULL");
	ok(http_query_param(req.query, req.query_len, "EIO", &v, &vlen) && vlen == 1 && *v == '4',
	   "query parameter EIO");
	ok(!http_query_param(req.query, req.query_len, "sid", &v, &vlen), "absent parameter");
}

static void test_prefixes(void)
{
	struct http_request req;
	size_t len = sizeof(upgrade_req) - 1;
	size_t bad = 0;

	for (size_t i = 0; i < len; i++) {
		/* Copy so that a read past the prefix would be caught by ASan. */
		char *copy = malloc(i ? i : 1);

		memcpy(copy, upgrade_req, i);
		if (http_parse_request(copy, i, &req) != HTTP_INCOMPLETE)
			bad++;
		free(copy);
	}
	is_int(bad, 0, "every proper prefix of a valid request is incomplete (%zu prefixes)", len);
}

static void test_trailing_bytes(void)
{
	struct http_request req;
	static const char two[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n\x81\x85xxxxhello";

	is_int(http_parse_request(two, sizeof(two) - 1, &req), 27,
	       "bytes after the head are not consumed");
}

static void test_lf_only(void)
{
	struct http_request req;
	static const char lf[] = "GET /healthz HTTP/1.0\nHost: a\n\n";

	is_int(http_parse_request(lf, sizeof(lf) - 1, &req), (int)sizeof(lf) - 1,
	       "bare LF line endings accepted");
	is_int(req.minor_version, 0, "HTTP/1.0");
}

static const struct {
	const char *in;
	int want;
	const char *name;
} bad_cases[] = {
	{ "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", HTTP_ERR_BAD_REQUEST, "TLS hello instead of HTTP" },
	{ "GARBAGE\r\n\r\n", HTTP_ERR_BAD_REQUEST, "no target" },
	{ "GET /\r\n\r\n", HTTP_ERR_BAD_REQUEST, "HTTP/0.9 style" },
	{ "GET / HTTP/2.0\r\n\r\n", HTTP_ERR_VERSION, "HTTP/2.0" },
	{ "GET / HTTP/1.1 \r\n\r\n", HTTP_ERR_BAD_REQUEST, "trailing space in version" },
	{ "GET  / HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_REQUEST, "double space" },
	{ "G(T / HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_REQUEST, "bad method character" },
	{ "GET / HTTP/1.1\r\nNo colon\r\n\r\n", HTTP_ERR_BAD_REQUEST, "header without colon" },
	{ "GET / HTTP/1.1\r\n: value\r\n\r\n", HTTP_ERR_BAD_REQUEST, "empty header name" },
	{ "GET / HTTP/1.1\r\nBad Name: v\r\n\r\n", HTTP_ERR_BAD_REQUEST, "space in header name" },
	{ "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", HTTP_ERR_BAD_REQUEST, "obsolete line folding" },
	{ "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", HTTP_ERR_BAD_REQUEST, "bare CR in a value" },
	{ "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", HTTP_ERR_BAD_REQUEST, "control character in a value" },
	{ "GET /\x7f HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_REQUEST, "DEL in the target" },
	{ "\x01\x02\x03", HTTP_ERR_BAD_REQUEST, "binary garbage rejected before a line ends" },
};

static void test_malformed(void)
{
	struct http_request req;

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		is_int(http_parse_request(bad_cases[i].in, strlen(bad_cases[i].in), &req),
		       bad_cases[i].want, "rejects %s", bad_cases[i].name);
	{
		char nul[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";

		is_int(http_parse_request(nul, sizeof(nul) - 1, &req), HTTP_ERR_BAD_REQUEST,
		       "rejects NUL in a header");
	}
}

static void test_too_many_headers(void)
{
	char buf[8192];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
	struct http_request req;

	for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: v\r\n", i);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
	is_int(http_parse_request(buf, n, &req), HTTP_ERR_TOO_MANY_HEADERS,
	       "more than %d headers is 431", HTTP_MAX_HEADERS);
}

static void test_url_decode(void)
{
	char out[32];

	is_int(http_url_decode("/a%20b", 6, out, sizeof(out)), 4, "decodes %%20");
	is_str(out, "/a b", "decoded text");
	is_int(http_url_decode("/a%2", 4, out, sizeof(out)), -1, "truncated escape");
	is_int(http_url_decode("/a%zz", 5, out, sizeof(out)), -1, "bad hex");
	is_int(http_url_decode("/a%00", 5, out, sizeof(out)), -1, "encoded NUL");
	is_int(http_url_decode("/aaaa", 5, out, 4), -1, "overflow");
}

int main(void)
{
	test_valid();
	test_prefixes();
	test_trailing_bytes();
	test_lf_only();
	test_malformed();
	test_too_many_headers();
	test_url_decode();
	is_str(http_reason(431), "Request Header Fields Too Large", "reason phrase");
	return done_testing();
}
