/*
 * tap.h: a minimal TAP producer for unit tests run by automake's harness.
 *   ok(cond, "name", ...);  is_int(got, want, "name"); is_str(...); done_testing();
 */
#ifndef PGPUSH_TAP_H
#define PGPUSH_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

__attribute__((format(printf, 2, 3)))
static int ok(int cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		tap_failed++;
	return cond;
}

#define is_int(got, want, ...) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	if (!ok(g_ == w_, __VA_ARGS__)) \
		printf("#   got %lld, want %lld\n", g_, w_); \
} while (0)

#define is_str(got, want, ...) do { \
	const char *g_ = (got), *w_ = (want); \
	if (!ok(g_ && w_ && strcmp(g_, w_) == 0, __VA_ARGS__)) \
		printf("#   got '%s', want '%s'\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
} while (0)

#define is_mem(got, glen, want, ...) do { \
	const char *g_ = (const char *)(got), *w_ = (want); size_t gl_ = (glen); \
	if (!ok(gl_ == strlen(w_) && memcmp(g_, w_, gl_) == 0, __VA_ARGS__)) \
		printf("#   got '%.*s', want '%s'\n", (int)gl_, g_, w_); \
} while (0)

static int done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
