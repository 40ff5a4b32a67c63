/*
 * Fuzz target: the HTTP request-head parser (http_parse_request) and the
 * helpers the server applies to what it returns (http_find_header,
 * http_header_has_token, http_query_param, http_url_decode).
 *
 * Invariants, beyond "no memory error, no UB":
 *  - a complete head has a length in (0, size] ending in LF, and every
 *    pointer of the request lies inside it;
 *  - the request line and headers hold what the grammar allows: tchar
 *    method and header names, no CTL in the target, no CR, LF or NUL in a
 *    value, values trimmed;
 *  - the parse of a prefix never contradicts the parse of the whole input:
 *    each prefix is HTTP_INCOMPLETE or gives the same answer as the whole,
 *    and once a prefix is decided every longer one is decided the same way
 *    (how TCP splits a request must not change the server's answer). All
 *    prefixes are tried up to 512 bytes; above that, those around line ends;
 *  - a head parsed alone gives the same length;
 *  - http_url_decode never writes past dstlen and yields no NUL.
 */
#include "autoconfig.h"

#include "http.h"
#include "fuzz.h"

#include <strings.h>

#define ALL_PREFIXES_MAX 512

static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool has_ci(const char *s, size_t len, const char *word)
{
	size_t wlen = strlen(word);

	for (size_t i = 0; i + wlen <= len; i++) {
		if (strncasecmp(s + i, word, wlen) == 0)
			return true;
	}
	return false;
}

static void check_query(const struct http_request *req)
{
	static const char *const names[] = { "EIO", "transport", "sid", "t", "b64", "" };
	const char *q = req->query;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = NULL;
		size_t vlen = 0;

		if (!http_query_param(q, req->query_len, names[i], &v, &vlen))
			continue;
		FUZZ_CHECK(q != NULL);
		FUZZ_CHECK(fuzz_inside(v, vlen, q, req->query_len));
		FUZZ_CHECK(memchr(v, '&', vlen) == NULL);
	}
}

/* Decodes src into a heap buffer of exactly dstlen bytes. */
static void check_url_decode(const char *src, size_t len, size_t dstlen)
{
	char *dst = fuzz_alloc(dstlen);
	long n;

	n = http_url_decode(src, len, dst, dstlen);
	FUZZ_CHECK(n >= -1);
	if (n >= 0) {
		FUZZ_CHECK((size_t)n < dstlen);
		FUZZ_CHECK((size_t)n <= len);
		FUZZ_CHECK(dst[n] == '\0');
		FUZZ_CHECK(memchr(dst, '\0', (size_t)n) == NULL);
		if (!memchr(src, '%', len))
			FUZZ_CHECK((size_t)n == len && memcmp(dst, src, len) == 0);
	}
	free(dst);
}

static void check_head(const char *buf, int rc, const struct http_request *req)
{
	size_t head = (size_t)rc;
	const char *prev_end;

	FUZZ_CHECK(buf[head - 1] == '\n');

	FUZZ_CHECK(req->method_len > 0 && fuzz_inside(req->method, req->method_len, buf, head));
	for (size_t i = 0; i < req->method_len; i++)
		FUZZ_CHECK(is_tchar((unsigned char)req->method[i]));
	FUZZ_CHECK(req->target == req->method + req->method_len + 1);
	FUZZ_CHECK(req->target_len > 0 && fuzz_inside(req->target, req->target_len, buf, head));
	for (size_t i = 0; i < req->target_len; i++) {
		unsigned char c = (unsigned char)req->target[i];

		FUZZ_CHECK(c > 0x20 && c != 0x7f);
	}
	FUZZ_CHECK(req->path == req->target && req->path_len <= req->target_len);
	FUZZ_CHECK(memchr(req->path, '?', req->path_len) == NULL);
	if (req->query) {
		FUZZ_CHECK(req->path[req->path_len] == '?');
		FUZZ_CHECK(req->query == req->path + req->path_len + 1);
		FUZZ_CHECK(req->path_len + 1 + req->query_len == req->target_len);
	} else {
		FUZZ_CHECK(req->path_len == req->target_len && req->query_len == 0);
	}
	FUZZ_CHECK(req->minor_version >= 0 && req->minor_version <= 9);

	FUZZ_CHECK(req->num_headers <= HTTP_MAX_HEADERS);
	prev_end = req->target + req->target_len;
	for (size_t i = 0; i < req->num_headers; i++) {
		const struct http_header *h = &req->headers[i];
		const struct http_header *found;

		FUZZ_CHECK(h->name_len > 0 && fuzz_inside(h->name, h->name_len, buf, head));
		FUZZ_CHECK(h->name > prev_end);
		for (size_t k = 0; k < h->name_len; k++)
			FUZZ_CHECK(is_tchar((unsigned char)h->name[k]));
		FUZZ_CHECK(h->name[h->name_len] == ':');
		FUZZ_CHECK(fuzz_inside(h->value, h->value_len, buf, head));
		FUZZ_CHECK(h->value > h->name + h->name_len);
		for (size_t k = 0; k < h->value_len; k++) {
			unsigned char c = (unsigned char)h->value[k];

			FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0' && c != 0x7f);
		}
		if (h->value_len) {
			FUZZ_CHECK(h->value[0] != ' ' && h->value[0] != '\t');
			FUZZ_CHECK(h->value[h->value_len - 1] != ' ' &&
				   h->value[h->value_len - 1] != '\t');
		}
		prev_end = h->value + h->value_len;

		/* The lookup finds this header or an earlier one of the same name. */
		{
			char name[256];
			size_t n = h->name_len < sizeof(name) - 1 ? h->name_len : 0;

			if (n) {
				memcpy(name, h->name, n);
				name[n] = '\0';
				found = http_find_header(req, name);
				FUZZ_CHECK(found != NULL && found <= h);
				FUZZ_CHECK(found->name_len == n && strncasecmp(found->name, name, n) == 0);
			}
		}
		if (http_header_has_token(h, "upgrade"))
			FUZZ_CHECK(has_ci(h->value, h->value_len, "upgrade"));
		(void)http_header_has_token(h, "");
	}
	FUZZ_CHECK(!http_header_has_token(NULL, "websocket"));
	check_query(req);
}

/* Parses buf[0..len) with the bytes after len made unreadable. */
static int parse_prefix(char *buf, size_t len, size_t size, struct http_request *req)
{
	int rc;

	FUZZ_HIDE_TAIL(buf, len, size);
	rc = http_parse_request(buf, len, req);
	FUZZ_SHOW_TAIL(buf, len, size);
	return rc;
}

static bool want_prefix(const char *buf, size_t size, size_t i)
{
	if (size <= ALL_PREFIXES_MAX || i < 64 || size - i < 8)
		return true;
	/* Around a line end: the parser's subtle cases (CR, LF, CRLF CRLF). */
	for (size_t k = i > 2 ? i - 2 : 0; k <= i && k < size; k++) {
		if (buf[k] == '\r' || buf[k] == '\n')
			return true;
	}
	return false;
}

static void check_prefixes(char *buf, size_t size, int rc)
{
	struct http_request req;
	int decided = HTTP_INCOMPLETE;

	for (size_t i = 0; i < size; i++) {
		int r;

		if (!want_prefix(buf, size, i))
			continue;
		r = parse_prefix(buf, i, size, &req);
		FUZZ_CHECK(r == HTTP_INCOMPLETE || r == rc);
		if (decided != HTTP_INCOMPLETE)
			FUZZ_CHECK(r == decided);
		decided = r;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_dup(data, size);
	struct http_request req;
	int rc = http_parse_request(buf, size, &req);

	FUZZ_CHECK(rc > 0 || rc == HTTP_INCOMPLETE || rc == HTTP_ERR_BAD_REQUEST ||
		   rc == HTTP_ERR_TOO_MANY_HEADERS || rc == HTTP_ERR_VERSION);
	if (rc > 0) {
		struct http_request again;

		FUZZ_CHECK((size_t)rc <= size);
		check_head(buf, rc, &req);
		/* The head alone parses the same: nothing after it was looked at. */
		FUZZ_CHECK(parse_prefix(buf, (size_t)rc, size, &again) == rc);
		FUZZ_CHECK(again.num_headers == req.num_headers);
		/* As the server would, with a buffer just big enough and one the
		 * input picks (down to zero bytes). */
		check_url_decode(req.path, req.path_len, req.path_len + 1);
		check_url_decode(req.path, req.path_len, size ? data[0] % (req.path_len + 2) : 0);
		if (req.query)
			check_url_decode(req.query, req.query_len, req.query_len + 1);
	}
	check_prefixes(buf, size, rc);
	free(buf);
	return 0;
}
