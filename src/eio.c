#include "autoconfig.h"

#include "eio.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

int eio_decode_text(const char *msg, size_t len, enum eio_packet_type *type,
		    const char **data, size_t *data_len)
{
	if (len == 0 || msg[0] < '0' || msg[0] > '6')
		return -1;
	*type = (enum eio_packet_type)(msg[0] - '0');
	*data = msg + 1;
	*data_len = len - 1;
	return 0;
}

int eio_open_packet(char *out, size_t outlen, const char *sid, bool upgrades_websocket,
		    uint64_t ping_interval, uint64_t ping_timeout, uint64_t max_payload)
{
	int n = snprintf(out, outlen,
			 "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%llu,"
			 "\"pingTimeout\":%llu,\"maxPayload\":%llu}",
			 sid, upgrades_websocket ? "\"websocket\"" : "",
			 (unsigned long long)ping_interval, (unsigned long long)ping_timeout,
			 (unsigned long long)max_payload);

	return n < 0 || (size_t)n >= outlen ? -1 : n;
}

enum eio_error eio_check_request(const struct http_request *req, bool websocket_upgrade,
				 bool polling_enabled, bool *transport_ws,
				 const char **sid, size_t *sid_len)
{
	const char *v;
	size_t vlen;
	bool ws;

	*transport_ws = false;
	*sid = NULL;
	*sid_len = 0;
	if (!http_query_param(req->query, req->query_len, "transport", &v, &vlen))
		return EIO_ERR_TRANSPORT_UNKNOWN;
	ws = vlen == 9 && memcmp(v, "websocket", 9) == 0;
	if (!ws && !(polling_enabled && vlen == 7 && memcmp(v, "polling", 7) == 0))
		return EIO_ERR_TRANSPORT_UNKNOWN;
	/* A WebSocket transport on a plain GET (no Upgrade) is a bad request. */
	if (ws && !websocket_upgrade)
		return EIO_ERR_BAD_REQUEST;
	*transport_ws = ws;
	if (http_query_param(req->query, req->query_len, "sid", sid, sid_len))
		return EIO_ERR_NONE;
	if (!util_strieq(req->method, req->method_len, "GET"))
		return EIO_ERR_BAD_HANDSHAKE_METHOD;
	if (!http_query_param(req->query, req->query_len, "EIO", &v, &vlen) ||
	    vlen != 1 || v[0] != '4')
		return EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION;
	return EIO_ERR_NONE;
}

const char *eio_error_message(enum eio_error err)
{
	switch (err) {
	case EIO_ERR_TRANSPORT_UNKNOWN: return "Transport unknown";
	case EIO_ERR_SESSION_ID_UNKNOWN: return "Session ID unknown";
	case EIO_ERR_BAD_HANDSHAKE_METHOD: return "Bad handshake method";
	case EIO_ERR_BAD_REQUEST: return "Bad request";
	case EIO_ERR_FORBIDDEN: return "Forbidden";
	case EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION: return "Unsupported protocol version";
	case EIO_ERR_NONE: break;
	}
	return "";
}

int eio_error_status(enum eio_error err)
{
	return err == EIO_ERR_FORBIDDEN ? 403 : 400;
}

int eio_payload_next(const char *payload, size_t len, size_t *pos, struct eio_packet *out)
{
	const char *p, *sep;
	size_t n;

	if (*pos > len || (*pos == len && (len == 0 || *pos > 0)))
		return len == 0 ? -1 : 0;
	p = payload + *pos;
	sep = memchr(p, EIO_RECORD_SEPARATOR, len - *pos);
	n = sep ? (size_t)(sep - p) : len - *pos;
	*pos += n + (sep ? 1 : 0);
	if (sep && *pos == len)
		return -1; /* a trailing separator announces a packet that is not there */
	if (n == 0)
		return -1;
	if (p[0] == 'b') {
		out->type = EIO_MESSAGE;
		out->binary = true;
		out->data = p + 1;
		out->len = n - 1;
		return 1;
	}
	out->binary = false;
	return eio_decode_text(p, n, &out->type, &out->data, &out->len) < 0 ? -1 : 1;
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long eio_base64_decode(const char *in, size_t len, uint8_t *out)
{
	size_t o = 0;

	if (len % 4)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;

		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];

			if (c == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad)
				return -1; /* data after padding */
			v[k] = b64val(c);
			if (v[k] < 0)
				return -1;
		}
		out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (uint8_t)(v[1] << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (uint8_t)(v[2] << 6 | v[3]);
	}
	return (long)o;
}

size_t eio_base64_encode(const uint8_t *in, size_t len, char *out)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0, i;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = tbl[v >> 18];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = tbl[(v >> 6) & 63];
		out[o++] = tbl[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);

		out[o++] = tbl[v >> 18];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}
