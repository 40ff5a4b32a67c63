/*
 * Fuzz target: the WebSocket opening handshake as the server runs it on a
 * request to the Engine.IO path (engine.c, websocket.c): parse the head,
 * check the Engine.IO query (eio_check_request) and the Origin
 * (config_origin_allowed), check the upgrade (ws_check_upgrade) and compute
 * Sec-WebSocket-Accept (ws_accept_key).
 *
 * Invariants, beyond "no memory error, no UB":
 *  - eio_check_request accepts transport=websocket only on an Upgrade
 *    request, transport=polling only when polling is served, and then either
 *    a sid (pointing at the query's sid value) or a handshake: a GET with
 *    EIO=4; the transport flag says websocket; serving polling only ever
 *    changes a "Transport unknown" answer;
 *  - an allowed Origin is one of the configured list (or "*" is in it),
 *    and no list allows none; an Origin that matches the Host is http or
 *    https, and then matches its own host[:port] as a Host;
 *  - ws_check_upgrade accepts only a GET on HTTP/1.1+ carrying
 *    Upgrade: websocket, Connection: upgrade, Sec-WebSocket-Version: 13 and
 *    a key inside the head that decodes to 16 bytes;
 *  - the accept value is 28 characters of base64 of SHA-1(key + GUID),
 *    computed again here with a one-shot digest.
 */
#include "autoconfig.h"

#include "config.h"
#include "eio.h"
#include "http.h"
#include "ws.h"
#include "fuzz.h"

#include <strings.h>

#include <openssl/evp.h>

static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static bool query_is(const struct http_request *req, const char *name, const char *want)
{
	const char *v;
	size_t vlen;

	return http_query_param(req->query, req->query_len, name, &v, &vlen) &&
	       vlen == strlen(want) && memcmp(v, want, vlen) == 0;
}

static bool ieq(const char *s, size_t len, const char *want)
{
	return len == strlen(want) && strncasecmp(s, want, len) == 0;
}

static void check_eio(const struct http_request *req, bool upgrade_req)
{
	for (int polling = 0; polling <= 1; polling++) {
		bool ws = true, ws_off = true;
		const char *sid = "x", *sid_off = "x", *v;
		size_t sid_len = 1, sid_len_off = 1, vlen;
		enum eio_error err = eio_check_request(req, upgrade_req, polling, &ws, &sid, &sid_len);

		FUZZ_CHECK(err >= EIO_ERR_NONE && err <= EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION);
		FUZZ_CHECK(eio_error_message(err) != NULL);
		FUZZ_CHECK(eio_error_status(err) == 400 || eio_error_status(err) == 403);
		if (err == EIO_ERR_NONE) {
			FUZZ_CHECK(ws == query_is(req, "transport", "websocket"));
			FUZZ_CHECK(ws || (polling && query_is(req, "transport", "polling")));
			FUZZ_CHECK(!ws || upgrade_req);
			if (sid) {
				FUZZ_CHECK(http_query_param(req->query, req->query_len, "sid",
							    &v, &vlen));
				FUZZ_CHECK(sid == v && sid_len == vlen);
				FUZZ_CHECK(fuzz_inside(sid, sid_len, req->query, req->query_len));
			} else {
				/* A handshake: GET, EIO=4 and no sid. */
				FUZZ_CHECK(sid_len == 0);
				FUZZ_CHECK(!http_query_param(req->query, req->query_len, "sid",
							     &v, &vlen));
				FUZZ_CHECK(query_is(req, "EIO", "4"));
				FUZZ_CHECK(ieq(req->method, req->method_len, "GET"));
			}
		} else {
			FUZZ_CHECK(sid == NULL && sid_len == 0);
		}
		if (err == EIO_ERR_TRANSPORT_UNKNOWN || err == EIO_ERR_BAD_REQUEST)
			FUZZ_CHECK(!ws);
		if (!polling)
			continue;
		/* Serving polling only ever changes a "Transport unknown". */
		{
			enum eio_error e = eio_check_request(req, upgrade_req, false, &ws_off,
							     &sid_off, &sid_len_off);

			if (e != EIO_ERR_TRANSPORT_UNKNOWN)
				FUZZ_CHECK(e == err && ws_off == ws && sid_off == sid &&
					   sid_len_off == sid_len);
		}
	}
}

static void check_origin(const struct http_request *req)
{
	static char list[] = " http://localhost:3000 , https://Example.com, null";
	static char any[] = "https://a.example, *";
	struct config cfg = { .allowed_origin = list };
	const struct http_header *h = http_find_header(req, "Origin");

	if (!h)
		return;
	if (config_origin_allowed(&cfg, h->value, h->value_len)) {
		FUZZ_CHECK(ieq(h->value, h->value_len, "http://localhost:3000") ||
			   ieq(h->value, h->value_len, "https://example.com") ||
			   ieq(h->value, h->value_len, "null"));
	}
	cfg.allowed_origin = any;
	FUZZ_CHECK(config_origin_allowed(&cfg, h->value, h->value_len));
	cfg.allowed_origin = NULL;
	FUZZ_CHECK(config_origin_allowed(&cfg, h->value, h->value_len) == CONFIG_ORIGIN_NO);
	{
		const struct http_header *host = http_find_header(req, "Host");

		if (host && config_origin_matches_host(h->value, h->value_len, host->value,
						       host->value_len)) {
			size_t skip = strncasecmp(h->value, "https://", 8) == 0 ? 8 : 7;

			FUZZ_CHECK(strncasecmp(h->value, "http://", 7) == 0 || skip == 8);
			FUZZ_CHECK(config_origin_matches_host(h->value, h->value_len, h->value + skip,
							      h->value_len - skip));
		}
	}
}

static void check_accept(const char *key, size_t key_len)
{
	char accept[WS_ACCEPT_LEN + 1];
	unsigned char md[EVP_MAX_MD_SIZE], got[WS_ACCEPT_LEN / 4 * 3];
	unsigned int mdlen = 0;
	size_t catlen = key_len + sizeof(guid) - 1;
	char *cat = fuzz_alloc(catlen);

	memset(accept, 'x', sizeof(accept));
	FUZZ_CHECK(ws_accept_key(key, key_len, accept) == 0);
	FUZZ_CHECK(accept[WS_ACCEPT_LEN] == '\0' && strlen(accept) == WS_ACCEPT_LEN);
	FUZZ_CHECK(eio_base64_decode(accept, WS_ACCEPT_LEN, got) == 20);

	memcpy(cat, key, key_len);
	memcpy(cat + key_len, guid, sizeof(guid) - 1);
	FUZZ_CHECK(EVP_Digest(cat, catlen, md, &mdlen, EVP_sha1(), NULL) == 1 && mdlen == 20);
	FUZZ_CHECK(memcmp(got, md, 20) == 0);
	free(cat);
}

static void check_upgrade(const char *buf, size_t head, const struct http_request *req,
			  bool upgrade_req)
{
	const char *key = NULL;
	size_t key_len = 0;
	enum ws_handshake_result hs = ws_check_upgrade(req, &key, &key_len);
	uint8_t raw[18];

	FUZZ_CHECK(hs <= WS_HS_OK && hs >= WS_HS_BAD_CONNECTION);
	if (hs == WS_HS_NOT_UPGRADE)
		FUZZ_CHECK(!upgrade_req);
	if (hs != WS_HS_OK) {
		FUZZ_CHECK(key == NULL && key_len == 0);
		return;
	}
	FUZZ_CHECK(upgrade_req);
	FUZZ_CHECK(ieq(req->method, req->method_len, "GET") && req->minor_version >= 1);
	FUZZ_CHECK(http_header_has_token(http_find_header(req, "Connection"), "upgrade"));
	FUZZ_CHECK(http_find_header(req, "Sec-WebSocket-Version") != NULL);
	FUZZ_CHECK(fuzz_inside(key, key_len, buf, head));
	FUZZ_CHECK(key_len == 24 && eio_base64_decode(key, key_len, raw) == 16);
	check_accept(key, key_len);
}

/* RFC 6455 §1.3: the example key and its accept value. */
static void check_rfc_example(void)
{
	static bool done;
	char accept[WS_ACCEPT_LEN + 1];

	if (done)
		return;
	done = true;
	FUZZ_CHECK(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, accept) == 0);
	FUZZ_CHECK(strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_dup(data, size);
	struct http_request req;
	int rc = http_parse_request(buf, size, &req);
	bool upgrade_req;

	check_rfc_example();
	if (rc > 0) {
		FUZZ_CHECK((size_t)rc <= size);
		upgrade_req = http_header_has_token(http_find_header(&req, "Upgrade"), "websocket");
		check_eio(&req, upgrade_req);
		check_origin(&req);
		check_upgrade(buf, (size_t)rc, &req, upgrade_req);
	}
	free(buf);
	return 0;
}
