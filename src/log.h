/*
 * log: levelled, one line per event, to stderr:
 *   2026-11-26T10:00:00.123Z info client connected peer=127.0.0.1:5000
 * A flood (thousands of clients connecting at once) is cut to a budget of
 * lines per second; what was dropped is counted in one summary line.
 * Messages carry text from peers and databases: every line is escaped
 * (log_escape) so that it is one line of well-formed UTF-8.
 *
 * With log_set_format(LOG_FORMAT_JSON) (--log-format json) each line is one
 * JSON object instead, for log shippers:
 *   {"time":"2026-11-26T10:00:00.123Z","level":"info","msg":"client connected","peer":"127.0.0.1:5000","conn":42}
 * "msg" holds exactly the text the text format prints (escaped the same
 * way), "peer" and "conn" are there when the line is about a client
 * (log_msg_ctx).
 */
#ifndef PGPUSH_LOG_H
#define PGPUSH_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_DEBUG,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
};

/* Parses "debug", "info", "warn"/"warning", "error". */
bool log_parse_level(const char *s, enum log_level *out);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

/* Copies in[0..len) to out as text safe for one log line: well-formed UTF-8
 * passes unchanged except the C0 controls, DEL and the C1 controls
 * (U+0080..U+009F); each byte of those, and each byte that is not part of a
 * well-formed sequence (stray continuation, truncated or overlong sequence,
 * surrogate, above U+10FFFF), becomes the four characters \xNN (lower-case
 * hex), and a backslash becomes \\ so that no escape can be forged.
 * out always ends with a NUL (outlen must be at least 1); when out is too
 * small the text stops before the first unit (character or escape) that does
 * not fit. Returns the length written, without the NUL. Pure. */
size_t log_escape(const char *in, size_t len, char *out, size_t outlen);

enum log_format {
	LOG_FORMAT_TEXT,	/* "STAMP LEVEL MESSAGE[ peer=P][ conn=N]" */
	LOG_FORMAT_JSON,	/* one JSON object per line */
};

/* Parses "text" or "json". */
bool log_parse_format(const char *s, enum log_format *out);
void log_set_format(enum log_format format);

/* Who a line is about. peer: the client address as text ("127.0.0.1:5000",
 * "[::1]:5000"), or NULL; conn: the connection id, or 0 for none. Borrowed
 * for the call. */
struct log_ctx {
	const char *peer;
	unsigned long long conn;
};

/* One whole line, newline included, for the given parts: pure, for tests
 * and for log_msg. stamp is util_iso_time's text; msg (msglen bytes) is the
 * raw message (its first 1023 bytes), escaped here; ctx may be NULL, and
 * its peer is cut at 64 bytes. out ends with a NUL; with outlen of at least
 * LOG_LINE_MIN, a message that does not fit is cut at a character and the
 * line stays whole (a JSON line stays valid JSON). Returns the length
 * written, without the NUL. */
#define LOG_LINE_MIN 1024
size_t log_format_line(enum log_format format, const char *stamp, enum log_level level,
		       const struct log_ctx *ctx, const char *msg, size_t msglen,
		       char *out, size_t outlen);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same, about a client: its address and connection id on the line. */
void log_msg_ctx(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
