/*
 * http: a sans-I/O HTTP/1.1 request-head parser and response helpers.
 * http_parse_request takes the bytes received so far and either finds a
 * complete request head (request line + headers + CRLF CRLF), says it needs
 * more, or rejects it. It allocates nothing: the request points into buf.
 */
#ifndef PGPUSH_HTTP_H
#define PGPUSH_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEADERS 64

struct http_header {
	const char *name;
	size_t name_len;
	const char *value; /* leading and trailing blanks removed */
	size_t value_len;
};

struct http_request {
	const char *method;
	size_t method_len;
	const char *target;   /* request-target as sent, e.g. "/socket.io/?EIO=4" */
	size_t target_len;
	const char *path;     /* target up to '?' (not decoded) */
	size_t path_len;
	const char *query;    /* after '?', or NULL */
	size_t query_len;
	int minor_version;    /* HTTP/1.x */
	size_t num_headers;
	struct http_header headers[HTTP_MAX_HEADERS];
};

enum http_parse_error {
	HTTP_INCOMPLETE = -1,     /* need more bytes */
	HTTP_ERR_BAD_REQUEST = -2,/* malformed: answer 400 */
	HTTP_ERR_TOO_MANY_HEADERS = -3, /* answer 431 */
	HTTP_ERR_VERSION = -4,    /* not HTTP/1.x: answer 505 */
};

/* Parses one request head from buf[0..len). Returns the length of the head
 * (> 0) when complete, or a negative enum http_parse_error. Pointers in req
 * are valid while buf is. Does not enforce a size cap: the caller stops
 * reading at its limit and answers 431 when the result is still
 * HTTP_INCOMPLETE. */
int http_parse_request(const char *buf, size_t len, struct http_request *req);

/* The first header named name (case-insensitive), or NULL. */
const struct http_header *http_find_header(const struct http_request *req,
					   const char *name);

/* True when the header's comma-separated list holds token (case-insensitive),
 * e.g. "Connection: keep-alive, Upgrade" holds "upgrade". */
bool http_header_has_token(const struct http_header *h, const char *token);

/* Finds name=value in a query string. On success points *val into query
 * (not decoded) and returns true; "name" without '=' gives an empty value. */
bool http_query_param(const char *query, size_t query_len, const char *name,
		      const char **val, size_t *val_len);

/* Percent-decodes src into dst (size dstlen, NUL-terminated). Returns the
 * decoded length, or -1 on a bad escape, an encoded NUL or overflow. */
long http_url_decode(const char *src, size_t len, char *dst, size_t dstlen);

/* Standard reason phrase for a status code ("Bad Request"). */
const char *http_reason(int status);

#endif
