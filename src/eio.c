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
				 bool polling_enabled, bool *transport_ws)
{
	const char *v;
	size_t vlen;
	bool ws;

	*transport_ws = false;
	if (!http_query_param(req->query, req->query_len, "transport", &v, &vlen))
		return EIO_ERR_TRANSPORT_UNKNOWN;
	ws = vlen == 9 && memcmp(v, "websocket", 9) == 0;
	if (!ws && !(polling_enabled && vlen == 7 && memcmp(v, "polling", 7) == 0))
		return EIO_ERR_TRANSPORT_UNKNOWN;
	/* A WebSocket transport on a plain GET (no Upgrade) is a bad request. */
	if (ws && !websocket_upgrade)
		return EIO_ERR_BAD_REQUEST;
	if (http_query_param(req->query, req->query_len, "sid", &v, &vlen))
		return EIO_ERR_SESSION_ID_UNKNOWN; /* no polling sessions to upgrade yet */
	if (!util_strieq(req->method, req->method_len, "GET"))
		return EIO_ERR_BAD_HANDSHAKE_METHOD;
	if (!http_query_param(req->query, req->query_len, "EIO", &v, &vlen) ||
	    vlen != 1 || v[0] != '4')
		return EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION;
	*transport_ws = ws;
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
