/* Engine.IO v4: packet decoding, the open packet, request validation. */
#include "autoconfig.h"

#include "eio.h"
#include "tap.h"

static const char *sid;
static size_t sid_len;

static enum eio_error check(const char *target, const char *method, bool upgrade, bool polling, bool *ws)
{
	static char buf[512]; /* sid points into it after the call */
	struct http_request req;

	snprintf(buf, sizeof(buf), "%s %s HTTP/1.1\r\nHost: a\r\n\r\n", method, target);
	if (http_parse_request(buf, strlen(buf), &req) <= 0)
		return (enum eio_error)99;
	return eio_check_request(&req, upgrade, polling, ws, &sid, &sid_len);
}

int main(void)
{
	enum eio_packet_type type;
	const char *data;
	size_t dlen;
	char open[EIO_OPEN_PACKET_MAX];
	bool ws;

	is_int(eio_decode_text("4hello", 6, &type, &data, &dlen), 0, "message decoded");
	ok(type == EIO_MESSAGE && dlen == 5 && memcmp(data, "hello", 5) == 0, "type 4, data hello");
	is_int(eio_decode_text("3", 1, &type, &data, &dlen), 0, "pong decoded");
	ok(type == EIO_PONG && dlen == 0, "type 3, no data");
	is_int(eio_decode_text("2probe", 6, &type, &data, &dlen), 0, "ping probe decoded");
	ok(type == EIO_PING, "type 2");
	is_int(eio_decode_text("abc", 3, &type, &data, &dlen), -1, "unknown type is a parser error");
	is_int(eio_decode_text("7", 1, &type, &data, &dlen), -1, "type 7 does not exist");
	is_int(eio_decode_text("", 0, &type, &data, &dlen), -1, "empty message is a parser error");

	ok(eio_open_packet(open, sizeof(open), "abc", false, 25000, 20000, 1000000) > 0, "open packet");
	is_str(open, "0{\"sid\":\"abc\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}",
	       "open packet has exactly the five reference keys, no upgrades on WebSocket");
	ok(eio_open_packet(open, sizeof(open), "abc", true, 300, 200, 1000000) > 0, "polling open packet");
	is_str(open, "0{\"sid\":\"abc\",\"upgrades\":[\"websocket\"],\"pingInterval\":300,\"pingTimeout\":200,\"maxPayload\":1000000}",
	       "polling session advertises the websocket upgrade");
	is_int(eio_open_packet(open, 10, "abc", false, 1, 1, 1), -1, "too small a buffer");

	is_int(check("/socket.io/?EIO=4&transport=websocket", "GET", true, false, &ws), EIO_ERR_NONE, "valid handshake");
	ok(ws, "transport is websocket");
	is_int(check("/socket.io/?EIO=4&transport=polling", "GET", false, false, &ws), EIO_ERR_TRANSPORT_UNKNOWN,
	       "polling not served: Transport unknown (code 0)");
	is_int(check("/socket.io/?EIO=4", "GET", false, false, &ws), EIO_ERR_TRANSPORT_UNKNOWN, "missing transport");
	is_int(check("/socket.io/?EIO=4&transport=abc", "GET", true, false, &ws), EIO_ERR_TRANSPORT_UNKNOWN, "bad transport");
	is_int(check("/socket.io/?EIO=4&transport=WebSocket", "GET", true, false, &ws), EIO_ERR_TRANSPORT_UNKNOWN,
	       "transport names are case-sensitive");
	is_int(check("/socket.io/?EIO=4&transport=websocket", "GET", false, false, &ws), EIO_ERR_BAD_REQUEST,
	       "websocket transport without Upgrade: Bad request (code 3)");
	is_int(check("/socket.io/?EIO=3&transport=websocket", "GET", true, false, &ws), EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION,
	       "EIO=3: Unsupported protocol version (code 5)");
	is_int(check("/socket.io/?transport=websocket", "GET", true, false, &ws), EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION,
	       "missing EIO: code 5");
	is_int(check("/socket.io/?EIO=abc&transport=websocket", "GET", true, false, &ws), EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION,
	       "EIO=abc: code 5");
	is_int(check("/socket.io/?EIO=4&transport=websocket", "POST", true, false, &ws), EIO_ERR_BAD_HANDSHAKE_METHOD,
	       "POST handshake: Bad handshake method (code 2)");
	is_int(check("/socket.io/?EIO=4&transport=websocket&sid=xyz", "GET", true, false, &ws), EIO_ERR_NONE,
	       "a sid is for the caller to look up");
	ok(sid && sid_len == 3 && memcmp(sid, "xyz", 3) == 0, "sid returned");
	is_int(check("/socket.io/?transport=polling&sid=xyz", "POST", false, true, &ws), EIO_ERR_NONE,
	       "requests with a sid skip the handshake checks");
	is_int(check("/socket.io/?EIO=4&transport=polling", "GET", false, true, &ws), EIO_ERR_NONE,
	       "polling handshake when polling is served");
	ok(!ws, "transport is polling");
	is_str(eio_error_message(EIO_ERR_TRANSPORT_UNKNOWN), "Transport unknown", "message for code 0");
	is_int(eio_error_status(EIO_ERR_FORBIDDEN), 403, "Forbidden is 403");
	is_int(eio_error_status(EIO_ERR_SESSION_ID_UNKNOWN), 400, "others are 400");
	{
		static const char payload[] = "4hello\x1e" "bAQIDBA==\x1e" "2\x1e" "3probe";
		struct eio_packet pk;
		size_t pos = 0;
		uint8_t bin[16];
		char enc[16];

		is_int(eio_payload_next(payload, sizeof(payload) - 1, &pos, &pk), 1, "payload: first packet");
		ok(pk.type == EIO_MESSAGE && !pk.binary && pk.len == 5 && memcmp(pk.data, "hello", 5) == 0,
		   "text message hello");
		is_int(eio_payload_next(payload, sizeof(payload) - 1, &pos, &pk), 1, "payload: second packet");
		ok(pk.type == EIO_MESSAGE && pk.binary && pk.len == 8, "binary message, base64");
		is_int(eio_base64_decode(pk.data, pk.len, bin), 4, "base64 decodes to 4 bytes");
		ok(bin[0] == 1 && bin[1] == 2 && bin[2] == 3 && bin[3] == 4, "bytes 01 02 03 04");
		is_int(eio_base64_encode(bin, 4, enc), 8, "base64 encodes to 8 chars");
		is_str(enc, "AQIDBA==", "round trip");
		is_int(eio_payload_next(payload, sizeof(payload) - 1, &pos, &pk), 1, "payload: ping");
		ok(pk.type == EIO_PING && pk.len == 0, "ping");
		is_int(eio_payload_next(payload, sizeof(payload) - 1, &pos, &pk), 1, "payload: pong probe");
		ok(pk.type == EIO_PONG && pk.len == 5, "3probe");
		is_int(eio_payload_next(payload, sizeof(payload) - 1, &pos, &pk), 0, "payload: end");
		pos = 0;
		is_int(eio_payload_next("", 0, &pos, &pk), -1, "empty payload is malformed");
		pos = 0;
		is_int(eio_payload_next("abc", 3, &pos, &pk), -1, "unknown type is malformed");
		pos = 0;
		is_int(eio_payload_next("4a\x1e", 3, &pos, &pk), -1, "trailing separator is malformed");
		pos = 0;
		is_int(eio_payload_next("\x1e" "4a", 3, &pos, &pk), -1, "empty packet is malformed");
		is_int(eio_base64_decode("AQ=D", 4, bin), -1, "data after padding");
		is_int(eio_base64_decode("AQI", 3, bin), -1, "length not a multiple of 4");
		is_int(eio_base64_decode("A*ID", 4, bin), -1, "bad character");
		is_int(eio_base64_encode((const uint8_t *)"ab", 2, enc), 4, "two bytes");
		is_str(enc, "YWI=", "two bytes padded once");
	}
	return done_testing();
}
