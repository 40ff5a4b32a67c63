#include "autoconfig.h"

#include "log.h"
#include "util.h"

#include <stdarg.h>
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

void log_msg(enum log_level level, const char *fmt, ...)
{
	char stamp[UTIL_ISO_TIME_LEN];
	char line[1024];
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
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* Peer-supplied text may end up in a message: never let it forge lines. */
	for (char *p = line; *p; p++) {
		if ((unsigned char)*p < 0x20)
			*p = '?';
	}
	util_iso_time(now, stamp);
	fprintf(stderr, "%s %s %s\n", stamp, level_names[level], line);
}
