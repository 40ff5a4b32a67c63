/* Log lines: whatever a peer or a database puts in a message, the line
 * that reaches stderr is one line of well-formed UTF-8 with no control
 * characters (issue 8, finding 9). */
#include "autoconfig.h"

#include "log.h"
#include "util.h"
#include "tap.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Logs msg through log_msg with stderr sent to a temporary file and returns
 * the text after the time stamp and level ("info "), without the newline. */
static const char *logged(const char *msg)
{
	static char line[8192];
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	if (!tmp || saved < 0)
		abort();
	fflush(stderr);
	dup2(fileno(tmp), STDERR_FILENO);
	log_info("%s", msg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(line, 1, sizeof(line) - 1, tmp);
	fclose(tmp);
	line[n] = '\0';
	if (n && line[n - 1] == '\n')
		line[--n] = '\0';
	/* "2026-11-26T10:00:00.123Z info " */
	return n >= UTIL_ISO_TIME_LEN + 5 ? line + UTIL_ISO_TIME_LEN + 5 : line;
}

static void test_log_msg(void)
{
	const char *l;

	is_str(logged("client connected peer=127.0.0.1:5000"), "client connected peer=127.0.0.1:5000",
	       "plain ASCII passes unchanged");
	is_str(logged("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	       "well-formed UTF-8 passes unchanged");
	is_str(logged("a\nb\rc\td\x1b[31m"), "a\\x0ab\\x0dc\\x09d\\x1b[31m",
	       "control characters escaped, no forged line");
	is_str(logged("del\x7f"), "del\\x7f", "DEL escaped");
	is_str(logged("origin=\xff\xfe"), "origin=\\xff\\xfe", "bytes that are never UTF-8 escaped");
	is_str(logged("trunc=\xc3"), "trunc=\\xc3", "a truncated sequence escaped");
	is_str(logged("overlong=\xc0\xaf"), "overlong=\\xc0\\xaf", "an overlong form escaped");
	is_str(logged("surrogate=\xed\xa0\x80"), "surrogate=\\xed\\xa0\\x80", "a UTF-16 surrogate escaped");
	is_str(logged("c1=\xc2\x9b"), "c1=\\xc2\\x9b", "a C1 control (CSI) escaped");
	is_str(logged("path=C:\\x0a"), "path=C:\\\\x0a", "a backslash is doubled: an escape cannot be forged");
	l = logged("x\xe2\x82");
	is_str(l, "x\\xe2\\x82", "a sequence cut at the end escaped");
}

static size_t esc(const char *in, size_t len, char *out, size_t outlen)
{
	return log_escape(in, len, out, outlen);
}

/* Undoes log_escape; returns the length, or -1 on a malformed escape. */
static long unescape(const char *s, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned v;

		if (s[i] != '\\') {
			out[o++] = s[i];
			continue;
		}
		if (i + 1 < len && s[i + 1] == '\\') {
			out[o++] = '\\';
			i++;
			continue;
		}
		if (i + 3 >= len || s[i + 1] != 'x' || sscanf(s + i + 2, "%2x", &v) != 1)
			return -1;
		out[o++] = (char)v;
		i += 3;
	}
	return (long)o;
}

/* Every output is well-formed UTF-8 with no C0, DEL or C1 control, and
 * decodes back to the input. */
static bool safe_and_reversible(const unsigned char *in, size_t len)
{
	char out[64], back[64];
	size_t n = esc((const char *)in, len, out, sizeof(out));
	long b;

	if (strlen(out) != n || !util_utf8_valid((const uint8_t *)out, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < n && (unsigned char)out[i + 1] < 0xa0))
			return false;
	}
	b = unescape(out, n, back);
	return b == (long)len && memcmp(back, in, len) == 0;
}

static void test_log_escape(void)
{
	char out[32];
	unsigned bad = 0, tried = 0;
	unsigned char in[4];

	is_int(esc("", 0, out, sizeof(out)), 0, "empty input");
	is_str(out, "", "empty input: empty string");
	is_int(esc("a\0b", 3, out, sizeof(out)), 6, "an embedded NUL is escaped, not an end");
	is_str(out, "a\\x00b", "NUL as \\x00");
	is_int(esc("\xf4\x90\x80\x80", 4, out, sizeof(out)), 16, "above U+10FFFF escaped");
	is_int(esc("\xf4\x8f\xbf\xbf", 4, out, sizeof(out)), 4, "U+10FFFF passes");
	is_int(esc("\xef\xbf\xbd", 3, out, sizeof(out)), 3, "U+FFFD passes");
	is_int(esc("\xc2\xa0", 2, out, sizeof(out)), 2, "U+00A0 (first after C1) passes");
	is_int(esc("\xe0\x9f\xbf", 3, out, sizeof(out)), 12, "overlong 3-byte form escaped");
	is_int(esc("\xf0\x8f\xbf\xbf", 4, out, sizeof(out)), 16, "overlong 4-byte form escaped");
	is_int(esc("\x80", 1, out, sizeof(out)), 4, "a stray continuation byte escaped");

	/* Truncation: never half a character, never half an escape. */
	is_int(esc("abcdef", 6, out, 4), 3, "ASCII cut to fit");
	is_str(out, "abc", "ASCII cut, NUL-terminated");
	is_int(esc("ab\xe2\x82\xac", 5, out, 5), 2, "a 3-byte character that does not fit is left out");
	is_int(esc("a\n", 2, out, 5), 1, "an escape that does not fit is left out");
	is_str(out, "a", "... whole");
	is_int(esc("a\\", 2, out, 3), 1, "a doubled backslash that does not fit is left out");
	is_int(esc("abc", 3, out, 1), 0, "outlen 1: just the NUL");
	is_str(out, "", "... an empty string");

	/* Every input of one and two bytes, and every 3- and 4-byte input
	 * with bytes from the interesting values. */
	for (unsigned a = 0; a < 256; a++) {
		in[0] = (unsigned char)a;
		tried++;
		bad += !safe_and_reversible(in, 1);
		for (unsigned b = 0; b < 256; b++) {
			in[1] = (unsigned char)b;
			tried++;
			bad += !safe_and_reversible(in, 2);
		}
	}
	{
		static const unsigned char v[] = { 0x00, 0x0a, 0x1b, 0x41, 0x5c, 0x7f, 0x80, 0x8f, 0x90,
			0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff };
		const size_t nv = sizeof(v);

		for (size_t a = 0; a < nv; a++)
			for (size_t b = 0; b < nv; b++)
				for (size_t c = 0; c < nv; c++)
					for (size_t d = 0; d < nv; d++) {
						in[0] = v[a], in[1] = v[b], in[2] = v[c], in[3] = v[d];
						tried += 2;
						bad += !safe_and_reversible(in, 3);
						bad += !safe_and_reversible(in, 4);
					}
	}
	ok(bad == 0, "%u inputs of 1-4 bytes: every output is safe UTF-8 and decodes back (%u bad)", tried, bad);
}

int main(void)
{
	test_log_msg();
	test_log_escape();
	return done_testing();
}
