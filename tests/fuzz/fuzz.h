/*
 * fuzz.h: shared by the fuzz targets (tests/fuzz/fuzz_*.c). Each target
 * defines LLVMFuzzerTestOneInput; it is linked either with libFuzzer
 * (tests/fuzz/run-fuzz.sh, clang) or with replay.c, which feeds it the
 * committed corpus under make check (any C compiler).
 *
 * A target copies its input into an exact-size heap buffer so that
 * AddressSanitizer sees a read one byte past the end, and traps on a broken
 * invariant so that libFuzzer records the input as a crash.
 */
#ifndef PGPUSH_FUZZ_H
#define PGPUSH_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif

#ifdef FUZZ_ASAN
#include <sanitizer/asan_interface.h>
/* Makes buf[len..size) unreadable, so that parsing the prefix buf[0..len)
 * in place is checked as strictly as an exact-size copy would be. */
#define FUZZ_HIDE_TAIL(buf, len, size) ASAN_POISON_MEMORY_REGION((buf) + (len), (size) - (len))
#define FUZZ_SHOW_TAIL(buf, len, size) ASAN_UNPOISON_MEMORY_REGION((buf) + (len), (size) - (len))
#else
#define FUZZ_HIDE_TAIL(buf, len, size) ((void)0)
#define FUZZ_SHOW_TAIL(buf, len, size) ((void)0)
#endif

/* A broken invariant: say which, then trap (libFuzzer saves the input). */
#define FUZZ_CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
		fflush(stderr); \
		__builtin_trap(); \
	} \
} while (0)

/* A divergence already reported and not fixed yet: tolerated, so that
 * fuzzing goes on and make check passes, unless FUZZ_STRICT is set in the
 * environment; then it traps like FUZZ_CHECK. Each use names its issue;
 * the fix turns it into a FUZZ_CHECK. */
#define FUZZ_KNOWN(cond, issue) do { \
	if (!(cond) && getenv("FUZZ_STRICT")) { \
		fprintf(stderr, "%s:%d: known issue %s: %s\n", __FILE__, __LINE__, issue, #cond); \
		fflush(stderr); \
		__builtin_trap(); \
	} \
} while (0)

/* True when [p, p+n) lies inside [base, base+size). */
static inline int fuzz_inside(const void *p, size_t n, const void *base, size_t size)
{
	const char *c = p, *b = base;

	return c >= b && c <= b + size && n <= (size_t)(b + size - c);
}

/* An exact-size heap block. ASan gives malloc(0) one byte: that byte is
 * made unreadable, so that even a zero-size block catches any access.
 * Aborts when out of memory: that is not a finding. */
static inline void *fuzz_alloc(size_t size)
{
	char *p = malloc(size ? size : 1);

	if (!p)
		abort();
	if (!size) {
		p[0] = '\0';
		FUZZ_HIDE_TAIL(p, 0, 1);
	}
	return p;
}

/* An exact-size heap copy of the input. */
static inline char *fuzz_dup(const uint8_t *data, size_t size)
{
	char *buf = fuzz_alloc(size);

	if (size)
		memcpy(buf, data, size);
	return buf;
}

#endif
