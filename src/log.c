#include "autoconfig.h"

#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Lines per second, per level, before the rest are counted instead of
 * printed: a flood of debug lines never hides a warning. */
#define LOG_BUDGET_PER_SEC 200

static enum log_level min_level = LOG_INFO;
static int64_t window_sec;
static unsigned window_lines[LOG_ERROR + 1];
static unsigned long suppressed[LOG_ERROR + 1];

static const char *const level_names[] = { "debug", "info", "warn", "error" };

bool log_parse_level(const char *s, enum log_level *out)
{
	for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return true;
	}
	return false;
}

void log_set_level(enum log_level level)
{
	min_level = level;
}

bool log_enabled(enum log_level level)
{
	return level >= min_level;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 table 3.7 of
 * Unicode: no overlongs, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;      /* overlong below U+0800 */
	else if (c == 0xed)
		hi = 0x9f;      /* surrogates U+D800..U+DFFF */
	else if (c == 0xf0)
		lo = 0x90;      /* overlong below U+10000 */
	else if (c == 0xf4)
		hi = 0x8f;      /* above U+10FFFF */
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
	}
	return n;
}

size_t log_escape(const char *in, size_t len, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0;

	while (i < len) {
		size_t n = utf8_seq(s + i, len - i);
		/* C0, DEL, and C1 (U+0080..U+009F, encoded C2 80..C2 9F): a
		 * terminal acts on them, so a peer could rewrite the screen. */
		bool control = n == 1 ? (s[i] < 0x20 || s[i] == 0x7f)
				      : n == 2 && s[i] == 0xc2 && s[i + 1] < 0xa0;

		if (n == 0 || control) {
			/* Every byte of the unit, so that a reader can rebuild it. */
			size_t k, cnt = n ? n : 1;

			if (o + 4 * cnt >= outlen)
				break;
			for (k = 0; k < cnt; k++) {
				out[o++] = '\\';
				out[o++] = 'x';
				out[o++] = hex[s[i + k] >> 4];
				out[o++] = hex[s[i + k] & 0x0f];
			}
			i += cnt;
		} else if (s[i] == '\\') {
			if (o + 2 >= outlen)
				break;
			out[o++] = '\\';
			out[o++] = '\\';
			i++;
		} else {
			if (o + n >= outlen)
				break;
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		}
	}
	out[o] = '\0';
	return o;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char stamp[UTIL_ISO_TIME_LEN];
	char raw[1024];
	/* Room for every byte of raw escaped as \xNN. */
	char line[4 * sizeof(raw)];
	int rawlen;
	int64_t now = util_now_ms();
	va_list ap;

	if (!log_enabled(level))
		return;
	if (now / 1000 != window_sec) {
		window_sec = now / 1000;
		for (int l = LOG_DEBUG; l <= LOG_ERROR; l++) {
			window_lines[l] = 0;
			if (suppressed[l]) {
				util_iso_time(now, stamp);
				fprintf(stderr, "%s warn log: %lu %s lines suppressed (over %d lines/s)\n",
					stamp, suppressed[l], level_names[l], LOG_BUDGET_PER_SEC);
				suppressed[l] = 0;
			}
		}
	}
	if (++window_lines[level] > LOG_BUDGET_PER_SEC) {
		suppressed[level]++;
		return;
	}
	va_start(ap, fmt);
	rawlen = vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	if (rawlen < 0)
		rawlen = 0;
	else if ((size_t)rawlen >= sizeof(raw))
		rawlen = sizeof(raw) - 1;
	/* Peers and databases put text in messages: never let it forge a
	 * line, drive a terminal, or make the log invalid UTF-8. A NUL the
	 * format produced (%c) ends the line, as it always did. */
	log_escape(raw, strnlen(raw, (size_t)rawlen), line, sizeof(line));
	util_iso_time(now, stamp);
	fprintf(stderr, "%s %s %s\n", stamp, level_names[level], line);
}
