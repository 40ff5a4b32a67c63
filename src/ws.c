#include "autoconfig.h"

#include "ws.h"
#include "util.h"

#include <string.h>

#include <openssl/evp.h>

/* RFC 6455 §1.3 */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static bool key_is_valid(const char *key, size_t len)
{
	/* 16 bytes in base64 are 24 characters ending in "==". */
	if (len != 24 || key[22] != '=' || key[23] != '=')
		return false;
	for (size_t i = 0; i < 22; i++) {
		char c = key[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return false;
	}
	return true;
}

enum ws_handshake_result ws_check_upgrade(const struct http_request *req,
					  const char **key, size_t *key_len)
{
	const struct http_header *h;

	if (!http_header_has_token(http_find_header(req, "Upgrade"), "websocket"))
		return WS_HS_NOT_UPGRADE;
	if (!util_strieq(req->method, req->method_len, "GET") || req->minor_version < 1)
		return WS_HS_BAD_METHOD;
	if (!http_header_has_token(http_find_header(req, "Connection"), "upgrade"))
		return WS_HS_BAD_CONNECTION;
	h = http_find_header(req, "Sec-WebSocket-Version");
	if (!h || !util_strieq(h->value, h->value_len, "13"))
		return WS_HS_BAD_VERSION;
	h = http_find_header(req, "Sec-WebSocket-Key");
	if (!h || !key_is_valid(h->value, h->value_len))
		return WS_HS_BAD_KEY;
	*key = h->value;
	*key_len = h->value_len;
	return WS_HS_OK;
}

int ws_accept_key(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (!ctx)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
	     EVP_DigestUpdate(ctx, key, key_len) &&
	     EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1) &&
	     EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (!ok || mdlen != 20)
		return -1;
	return EVP_EncodeBlock((unsigned char *)out, md, 20) == WS_ACCEPT_LEN ? 0 : -1;
}

size_t ws_frame_header(uint8_t out[WS_MAX_FRAME_HEADER], enum ws_opcode op,
		       bool rsv1, uint64_t payload_len)
{
	out[0] = (uint8_t)(0x80 | (rsv1 ? 0x40 : 0) | (op & 0x0f));
	if (payload_len < 126) {
		out[1] = (uint8_t)payload_len;
		return 2;
	}
	if (payload_len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(payload_len >> 8);
		out[3] = (uint8_t)payload_len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
	return 10;
}

struct buf *ws_frame_build(enum ws_opcode op, const struct ws_part *parts, size_t nparts)
{
	uint8_t hdr[WS_MAX_FRAME_HEADER];
	size_t total = 0, hlen, off;
	struct buf *b;

	for (size_t i = 0; i < nparts; i++)
		total += parts[i].len;
	hlen = ws_frame_header(hdr, op, false, total);
	b = buf_new(hlen + total);
	if (!b)
		return NULL;
	memcpy(b->data, hdr, hlen);
	off = hlen;
	for (size_t i = 0; i < nparts; i++) {
		if (parts[i].len)
			memcpy(b->data + off, parts[i].data, parts[i].len);
		off += parts[i].len;
	}
	return b;
}

struct buf *ws_frame(enum ws_opcode op, const void *payload, size_t len)
{
	struct ws_part part = { payload, len };

	return ws_frame_build(op, &part, 1);
}
