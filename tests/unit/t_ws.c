/* RFC 6455: the accept key test vector, handshake checks, frame headers. */
#include "autoconfig.h"

#include "http.h"
#include "tap.h"
#include "ws.h"

static int parse(const char *s, struct http_request *req)
{
	return http_parse_request(s, strlen(s), req);
}

int main(void)
{
	char accept[WS_ACCEPT_LEN + 1];
	struct http_request req;
	const char *key;
	size_t key_len;
	uint8_t hdr[WS_MAX_FRAME_HEADER];
	struct buf *b;

	/* RFC 6455 §1.3 */
	is_int(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, accept), 0, "accept key computed");
	is_str(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "RFC 6455 test vector");

	ok(parse("GET /socket.io/ HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
		 &req) > 0, "parsed upgrade");
	is_int(ws_check_upgrade(&req, &key, &key_len), WS_HS_OK, "valid upgrade accepted");
	is_mem(key, key_len, "dGhlIHNhbXBsZSBub25jZQ==", "key found");

	parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &req);
	is_int(ws_check_upgrade(&req, &key, &key_len), WS_HS_NOT_UPGRADE, "plain GET is not an upgrade");
	parse("POST / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", &req);
	is_int(ws_check_upgrade(&req, &key, &key_len), WS_HS_BAD_METHOD, "POST upgrade refused");
	parse("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
	      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", &req);
	is_int(ws_check_upgrade(&req, &key, &key_len), WS_HS_BAD_CONNECTION, "Connection without upgrade");
	parse("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	      "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", &req);
	is_int(ws_check_upgrade(&req, &key, &key_len), WS_HS_BAD_VERSION, "version 8 refused (426)");
	parse("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short==\r\n\r\n", &req);
	is_int(ws_check_upgrade(&req, &key, &key_len), WS_HS_BAD_KEY, "short key refused");
	parse("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	      "Sec-WebSocket-Version: 13\r\n\r\n", &req);
	is_int(ws_check_upgrade(&req, &key, &key_len), WS_HS_BAD_KEY, "missing key refused");

	is_int(ws_frame_header(hdr, WS_OP_TEXT, false, 5), 2, "short frame: 2-byte header");
	ok(hdr[0] == 0x81 && hdr[1] == 5, "FIN+text, unmasked length 5");
	is_int(ws_frame_header(hdr, WS_OP_TEXT, true, 126), 4, "126 bytes: 16-bit length");
	ok(hdr[0] == 0xc1 && hdr[1] == 126 && hdr[2] == 0 && hdr[3] == 126, "RSV1 and 16-bit length");
	is_int(ws_frame_header(hdr, WS_OP_BINARY, false, 65536), 10, "65536 bytes: 64-bit length");
	ok(hdr[0] == 0x82 && hdr[1] == 127 && hdr[7] == 1 && hdr[8] == 0 && hdr[9] == 0,
	   "64-bit length big-endian");
	is_int(ws_frame_header(hdr, WS_OP_TEXT, false, 65535), 4, "65535 bytes still 16-bit");

	b = ws_frame(WS_OP_TEXT, "2", 1);
	ok(b && b->len == 3 && b->data[0] == 0x81 && b->data[1] == 1 && b->data[2] == '2',
	   "ping frame bytes");
	buf_unref(b);
	{
		struct ws_part parts[] = { { "42[", 3 }, { "\"x\"", 3 }, { "]", 1 } };

		b = ws_frame_build(WS_OP_TEXT, parts, 3);
		ok(b && b->len == 9 && memcmp(b->data + 2, "42[\"x\"]", 7) == 0,
		   "frame built from parts");
		buf_unref(b);
	}
	return done_testing();
}
