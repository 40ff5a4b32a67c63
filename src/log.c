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
static enum log_format format = LOG_FORMAT_TEXT;
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

bool log_parse_format(const char *s, enum log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = LOG_FORMAT_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else
		return false;
	return true;
}

void log_set_format(enum log_format f)
{
	format = f;
}

void log_set_level(enum log_level level)
{
	min_level = level;
}

bool log_enabled(enum log_level level)
{
	return level >= min_level;
}

size_t log_escape(const char *in, size_t len, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0;

	while (i < len) {
		size_t n = util_utf8_seq(s + i, len - i);
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

/* An output buffer that refuses what does not fit whole. */
struct out {
	char *buf;
	size_t cap, len;	/* cap excludes the room kept for the NUL */
};

static bool put(struct out *o, const char *s, size_t n)
{
	if (n > o->cap - o->len)
		return false;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	return true;
}

static bool puts_(struct out *o, const char *s)
{
	return put(o, s, strlen(s));
}

/* Text that log_escape produced (well-formed UTF-8, no control characters)
 * as the inside of a JSON string: only '"' and '\\' need escaping. Stops
 * before the first character that does not fit. */
static void put_json(struct out *o, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;

		if (c == '"' || c == '\\') {
			char esc[2] = { '\\', (char)c };

			if (!put(o, esc, 2))
				return;
			i++;
			continue;
		}
		if (i + n > len || !put(o, s + i, n))
			return;
		i += n;
	}
}

/* Text that log_escape produced, as is, cut before the first character or
 * escape (\\ or \xNN) that does not fit. */
static void put_text(struct out *o, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c == '\\' ? (i + 1 < len && s[i + 1] == 'x' ? 4 : 2)
			 : c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;

		if (i + n > len || !put(o, s + i, n))
			return;
		i += n;
	}
}

size_t log_format_line(enum log_format f, const char *stamp, enum log_level level,
		       const struct log_ctx *ctx, const char *msg, size_t msglen,
		       char *out, size_t outlen)
{
	/* Room for every byte of a 1023-byte message escaped as \xNN. */
	char body[4 * 1024 + 1], peer[4 * 64 + 1] = "", tailbuf[LOG_LINE_MIN];
	struct out o = { out, outlen ? outlen - 1 : 0, 0 };
	struct out tail = { tailbuf, sizeof(tailbuf) - 1, 0 };
	size_t bodylen, cap;
	char conn[32] = "";

	if (!outlen)
		return 0;
	if (msglen > 1023)
		msglen = 1023;
	bodylen = log_escape(msg, strnlen(msg, msglen), body, sizeof(body));
	if (ctx && ctx->peer)
		log_escape(ctx->peer, strnlen(ctx->peer, 64), peer, sizeof(peer));
	if (ctx && ctx->conn)
		snprintf(conn, sizeof(conn), "%llu", ctx->conn);

	/* The tail first, so that a long message is cut, never the tail. */
	if (f == LOG_FORMAT_JSON) {
		puts_(&tail, "\"");
		if (ctx && ctx->peer) {
			puts_(&tail, ",\"peer\":\"");
			put_json(&tail, peer, strlen(peer));
			puts_(&tail, "\"");
		}
		if (*conn) {
			puts_(&tail, ",\"conn\":");
			puts_(&tail, conn);
		}
		puts_(&tail, "}\n");
		puts_(&o, "{\"time\":\"");
		put_json(&o, stamp, strlen(stamp));
		puts_(&o, "\",\"level\":\"");
		puts_(&o, level_names[level]);
		puts_(&o, "\",\"msg\":\"");
	} else {
		if (ctx && ctx->peer) {
			puts_(&tail, " peer=");
			puts_(&tail, peer);
		}
		if (*conn) {
			puts_(&tail, " conn=");
			puts_(&tail, conn);
		}
		puts_(&tail, "\n");
		puts_(&o, stamp);
		puts_(&o, " ");
		puts_(&o, level_names[level]);
		puts_(&o, " ");
	}
	/* The body within what the tail leaves: with outlen >= LOG_LINE_MIN
	 * the head and the tail always fit (the peer is cut at 64 bytes). */
	cap = o.cap;
	o.cap = o.cap - o.len > tail.len ? o.cap - tail.len : o.len;
	if (f == LOG_FORMAT_JSON) {
		put_json(&o, body, bodylen);
	} else {
		put_text(&o, body, bodylen);
	}
	o.cap = cap;
	put(&o, tail.buf, tail.len);
	out[o.len] = '\0';
	return o.len;
}

static void vlog(enum log_level level, const struct log_ctx *ctx, const char *fmt, va_list ap)
{
	char stamp[UTIL_ISO_TIME_LEN];
	char raw[1024];
	char line[10 * 1024];
	int rawlen;
	int64_t now = util_now_ms();

	if (!log_enabled(level))
		return;
	if (now / 1000 != window_sec) {
		window_sec = now / 1000;
		for (int l = LOG_DEBUG; l <= LOG_ERROR; l++) {
			window_lines[l] = 0;
			if (suppressed[l]) {
				int n = snprintf(raw, sizeof(raw), "log: %lu %s lines suppressed (over %d lines/s)",
						 suppressed[l], level_names[l], LOG_BUDGET_PER_SEC);

				util_iso_time(now, stamp);
				log_format_line(format, stamp, LOG_WARN, NULL, raw, (size_t)n, line, sizeof(line));
				fputs(line, stderr);
				suppressed[l] = 0;
			}
		}
	}
	if (++window_lines[level] > LOG_BUDGET_PER_SEC) {
		suppressed[level]++;
		return;
	}
	rawlen = vsnprintf(raw, sizeof(raw), fmt, ap);
	if (rawlen < 0)
		rawlen = 0;
	else if ((size_t)rawlen >= sizeof(raw))
		rawlen = sizeof(raw) - 1;
	/* Peers and databases put text in messages: never let it forge a
	 * line, drive a terminal, or make the log invalid UTF-8 (log_escape,
	 * in log_format_line). A NUL the format produced (%c) ends the
	 * message, as it always did. */
	util_iso_time(now, stamp);
	log_format_line(format, stamp, level, ctx, raw, (size_t)rawlen, line, sizeof(line));
	fputs(line, stderr);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, NULL, fmt, ap);
	va_end(ap);
}

void log_msg_ctx(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, ctx, fmt, ap);
	va_end(ap);
}
