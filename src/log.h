/*
 * log: levelled, one line per event, to stderr:
 *   2026-11-26T10:00:00.123Z info client connected peer=127.0.0.1:5000
 * A flood (thousands of clients connecting at once) is cut to a budget of
 * lines per second; what was dropped is counted in one summary line.
 */
#ifndef PGPUSH_LOG_H
#define PGPUSH_LOG_H

#include <stdbool.h>

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

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
