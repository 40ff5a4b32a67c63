#include "autoconfig.h"

#include "http.h"
#include "util.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 §5.6.2 token characters. */
static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Finds the end of the line starting at p; accepts CRLF or bare LF
 * (RFC 9112 §2.2 allows a recipient to). Returns the line length and sets
 * *next past the terminator, or -1 when no terminator yet, -2 on a bare CR
 * or a NUL inside the line. */
static long line_end(const char *p, const char *end, const char **next)
{
	for (const char *q = p; q < end; q++) {
		if (*q == '\n') {
			long n = (long)(q - p);

			*next = q + 1;
			if (n > 0 && p[n - 1] == '\r')
				n--;
			return n;
		}
		if (*q == '\0')
			return -2;
		if (*q == '\r' && q + 1 < end && q[1] != '\n')
			return -2;
	}
	return -1;
}

int http_parse_request(const char *buf, size_t len, struct http_request *req)
{
	const char *p = buf, *end = buf + len, *next;
	const char *sp1, *sp2, *line_stop;
	long n;

	memset(req, 0, offsetof(struct http_request, headers));
	/* RFC 9112 §2.2: ignore at least one empty line before the request. */
	while (p < end && (*p == '\r' || *p == '\n')) {
		if (*p == '\r' && p + 1 < end && p[1] != '\n')
			return HTTP_ERR_BAD_REQUEST;
		p++;
	}
	n = line_end(p, end, &next);
	if (n == -1)
		goto incomplete_line;
	if (n < 0)
		return HTTP_ERR_BAD_REQUEST;
	line_stop = p + n;
	/* method SP request-target SP HTTP-version */
	sp1 = memchr(p, ' ', (size_t)n);
	if (!sp1 || sp1 == p)
		return HTTP_ERR_BAD_REQUEST;
	for (const char *q = p; q < sp1; q++) {
		if (!is_tchar((unsigned char)*q))
			return HTTP_ERR_BAD_REQUEST;
	}
	sp2 = memchr(sp1 + 1, ' ', (size_t)(line_stop - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return HTTP_ERR_BAD_REQUEST;
	for (const char *q = sp1 + 1; q < sp2; q++) {
		unsigned char c = (unsigned char)*q;

		if (c <= 0x20 || c == 0x7f)
			return HTTP_ERR_BAD_REQUEST;
	}
	if (line_stop - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/", 5) != 0 ||
	    sp2[7] != '.' || sp2[6] < '0' || sp2[6] > '9' || sp2[8] < '0' || sp2[8] > '9')
		return HTTP_ERR_BAD_REQUEST;
	if (sp2[6] != '1')
		return HTTP_ERR_VERSION;
	req->method = p;
	req->method_len = (size_t)(sp1 - p);
	req->target = sp1 + 1;
	req->target_len = (size_t)(sp2 - sp1 - 1);
	req->minor_version = sp2[8] - '0';
	{
		const char *qm = memchr(req->target, '?', req->target_len);

		req->path = req->target;
		req->path_len = qm ? (size_t)(qm - req->target) : req->target_len;
		if (qm) {
			req->query = qm + 1;
			req->query_len = req->target_len - req->path_len - 1;
		}
	}
	p = next;

	for (;;) {
		const char *colon, *v, *vend;

		n = line_end(p, end, &next);
		if (n == -1)
			goto incomplete_line;
		if (n < 0)
			return HTTP_ERR_BAD_REQUEST;
		if (n == 0)
			return (int)(next - buf);
		/* Obsolete line folding is rejected (RFC 9112 §5.2). */
		if (*p == ' ' || *p == '\t')
			return HTTP_ERR_BAD_REQUEST;
		colon = memchr(p, ':', (size_t)n);
		if (!colon || colon == p)
			return HTTP_ERR_BAD_REQUEST;
		for (const char *q = p; q < colon; q++) {
			if (!is_tchar((unsigned char)*q))
				return HTTP_ERR_BAD_REQUEST;
		}
		if (req->num_headers == HTTP_MAX_HEADERS)
			return HTTP_ERR_TOO_MANY_HEADERS;
		v = colon + 1;
		vend = p + n;
		while (v < vend && (*v == ' ' || *v == '\t'))
			v++;
		while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
			vend--;
		for (const char *q = v; q < vend; q++) {
			unsigned char c = (unsigned char)*q;

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return HTTP_ERR_BAD_REQUEST;
		}
		req->headers[req->num_headers++] = (struct http_header){
			.name = p, .name_len = (size_t)(colon - p),
			.value = v, .value_len = (size_t)(vend - v),
		};
		p = next;
	}

incomplete_line:
	/* Still need more, but reject early what can never become valid. */
	if (req->method == NULL && p < end) {
		for (const char *q = p; q < end && *q != ' '; q++) {
			if (!is_tchar((unsigned char)*q))
				return HTTP_ERR_BAD_REQUEST;
		}
	}
	return HTTP_INCOMPLETE;
}

const struct http_header *http_find_header(const struct http_request *req,
					   const char *name)
{
	for (size_t i = 0; i < req->num_headers; i++) {
		if (util_strieq(req->headers[i].name, req->headers[i].name_len, name))
			return &req->headers[i];
	}
	return NULL;
}

bool http_header_has_token(const struct http_header *h, const char *token)
{
	const char *p, *end;

	if (!h)
		return false;
	p = h->value;
	end = h->value + h->value_len;
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *e = comma ? comma : end;
		const char *s = p;

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (util_strieq(s, (size_t)(e - s), token))
			return true;
		p = comma ? comma + 1 : end;
	}
	return false;
}

bool http_query_param(const char *query, size_t query_len, const char *name,
		      const char **val, size_t *val_len)
{
	size_t nlen = strlen(name);
	const char *p = query, *end = query ? query + query_len : NULL; /* NULL + 0 is UB */

	if (!query)
		return false;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		const char *k_end = eq ? eq : e;

		if ((size_t)(k_end - p) == nlen && memcmp(p, name, nlen) == 0) {
			*val = eq ? eq + 1 : e;
			*val_len = (size_t)(e - *val);
			return true;
		}
		p = amp ? amp + 1 : end;
	}
	return false;
}

long http_url_decode(const char *src, size_t len, char *dst, size_t dstlen)
{
	size_t o = 0;

	if (dstlen == 0)
		return -1; /* not even room for the NUL */
	for (size_t i = 0; i < len; i++) {
		char c = src[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -1;
			hi = util_hexval(src[i + 1]);
			lo = util_hexval(src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			if (c == '\0')
				return -1;
			i += 2;
		}
		if (o + 1 >= dstlen)
			return -1;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return (long)o;
}

const char *http_reason(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}
