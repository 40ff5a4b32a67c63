/*
 * Fuzz target: the Engine.IO decoders. The input is used three ways:
 *  - as one WebSocket text message (eio_decode_text);
 *  - as an HTTP long-polling payload (eio_payload_next), whose "b" packets
 *    are base64-decoded as the server would;
 *  - as base64 text (eio_base64_decode) and as raw bytes to encode
 *    (eio_base64_encode).
 *
 * Invariants, beyond "no memory error, no UB":
 *  - a text packet is the type digit and everything after it;
 *  - walking a payload always moves forward and ends; every packet lies
 *    inside the payload and holds no separator; when the walk ends without
 *    error, re-joining the packets with 0x1e gives back the payload exactly;
 *  - base64: the decoder accepts exactly the strings a simple reference
 *    (RFC 4648 alphabet, length a multiple of 4, at most two '=' at the end)
 *    accepts; the decoded length is what the padding says; re-encoding the
 *    result gives the input back, except for the unused low bits of the last
 *    character before the padding; encode then decode is the identity.
 */
#include "autoconfig.h"

#include "eio.h"
#include "fuzz.h"

static int b64_index(unsigned char c)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(tbl, c) : NULL;

	return p ? (int)(p - tbl) : -1;
}

/* The reference: how many bytes in decodes to, or -1 when malformed. */
static long b64_model(const char *in, size_t len)
{
	size_t pad = 0;

	if (len % 4)
		return -1;
	if (len >= 1 && in[len - 1] == '=')
		pad++;
	if (len >= 2 && in[len - 2] == '=')
		pad++;
	if (pad == 1 && len >= 2 && in[len - 2] == '=')
		return -1;
	for (size_t i = 0; i < len - pad; i++) {
		if (b64_index((unsigned char)in[i]) < 0)
			return -1;
	}
	return (long)(len / 4 * 3 - pad);
}

static void check_base64(const char *in, size_t len)
{
	size_t room = len / 4 * 3;
	uint8_t *out = fuzz_alloc(room);
	long n, want = b64_model(in, len);

	n = eio_base64_decode(in, len, out);
	FUZZ_CHECK(n == want);
	if (n >= 0) {
		size_t elen = 4 * (((size_t)n + 2) / 3);
		size_t pad = len / 4 * 3 - (size_t)n;
		char *enc = fuzz_alloc(elen + 1);
		uint8_t *again = fuzz_alloc((size_t)n);
		size_t got;

		got = eio_base64_encode(out, (size_t)n, enc);
		FUZZ_CHECK(got == len && got == elen && enc[got] == '\0');
		/* Identical but for the last data character, whose low bits the
		 * decoder ignores when there is padding. */
		for (size_t i = 0; i < len; i++) {
			if (pad && i == len - pad - 1) {
				int mask = pad == 1 ? 0x3c : 0x30;

				FUZZ_CHECK((b64_index((unsigned char)enc[i]) & mask) ==
					   (b64_index((unsigned char)in[i]) & mask));
				continue;
			}
			FUZZ_CHECK(enc[i] == in[i]);
		}
		FUZZ_CHECK(eio_base64_decode(enc, got, again) == n);
		FUZZ_CHECK(n == 0 || memcmp(again, out, (size_t)n) == 0);
		free(again);
		free(enc);
	}
	free(out);
}

static void check_encode(const uint8_t *data, size_t size)
{
	size_t elen = 4 * ((size + 2) / 3);
	char *enc = fuzz_alloc(elen + 1);
	uint8_t *dec = fuzz_alloc(elen / 4 * 3);
	size_t got;

	got = eio_base64_encode(data, size, enc);
	FUZZ_CHECK(got == elen && enc[got] == '\0' && strlen(enc) == got);
	FUZZ_CHECK(eio_base64_decode(enc, got, dec) == (long)size);
	FUZZ_CHECK(size == 0 || memcmp(dec, data, size) == 0);
	free(dec);
	free(enc);
}

static void check_text(const char *buf, size_t size)
{
	enum eio_packet_type type;
	const char *d = NULL;
	size_t dlen = 0;
	int rc = eio_decode_text(buf, size, &type, &d, &dlen);

	if (size == 0 || buf[0] < '0' || buf[0] > '6') {
		FUZZ_CHECK(rc == -1);
		return;
	}
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK((int)type == buf[0] - '0');
	FUZZ_CHECK(d == buf + 1 && dlen == size - 1);
}

static void check_payload(const char *buf, size_t size)
{
	/* The packets re-joined: at most one byte more than the payload. */
	char *joined = fuzz_alloc(size + 1);
	size_t jlen = 0, pos = 0, count = 0;
	int r;

	for (;;) {
		struct eio_packet pkt;
		size_t start = pos;

		r = eio_payload_next(buf, size, &pos, &pkt);
		FUZZ_CHECK(r == -1 || r == 0 || r == 1);
		if (r <= 0)
			break;
		FUZZ_CHECK(++count <= size);
		FUZZ_CHECK(pos > start && pos <= size);
		FUZZ_CHECK(pkt.data == buf + start + 1);
		FUZZ_CHECK(fuzz_inside(pkt.data, pkt.len, buf + start, pos - start));
		FUZZ_CHECK(memchr(pkt.data, EIO_RECORD_SEPARATOR, pkt.len) == NULL);
		FUZZ_CHECK(pos == size || buf[pos - 1] == EIO_RECORD_SEPARATOR);
		FUZZ_CHECK(pkt.data + pkt.len == buf + pos - (pos == size ? 0 : 1));
		if (pkt.binary) {
			FUZZ_CHECK(buf[start] == 'b' && pkt.type == EIO_MESSAGE);
			check_base64(pkt.data, pkt.len);
		} else {
			FUZZ_CHECK(pkt.type <= EIO_NOOP && buf[start] == '0' + (int)pkt.type);
		}
		if (count > 1)
			joined[jlen++] = EIO_RECORD_SEPARATOR;
		joined[jlen++] = buf[start];
		memcpy(joined + jlen, pkt.data, pkt.len);
		jlen += pkt.len;
		FUZZ_CHECK(jlen <= size);
	}
	if (r == 0) {
		struct eio_packet pkt;

		FUZZ_CHECK(count > 0 && pos == size);
		FUZZ_CHECK(jlen == size && memcmp(joined, buf, size) == 0);
		/* The end stays the end. */
		FUZZ_CHECK(eio_payload_next(buf, size, &pos, &pkt) == 0 && pos == size);
	}
	free(joined);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_dup(data, size);

	check_text(buf, size);
	check_payload(buf, size);
	check_base64(buf, size);
	check_encode(data, size);
	free(buf);
	return 0;
}
