/*
 * util: small helpers with no state of their own: wall-clock time in
 * milliseconds, ISO 8601 formatting, random identifiers, socket flags.
 */
#ifndef PGPUSH_UTIL_H
#define PGPUSH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UTIL_ISO_TIME_LEN 25 /* "2026-11-26T10:00:00.123Z" + NUL */
#define UTIL_ID_LEN 20       /* base64url of 15 random bytes */

/* Wall-clock time in milliseconds since the Unix epoch. */
int64_t util_now_ms(void);
/* The wall clock in microseconds since the Unix epoch (commit times). */
int64_t util_now_us(void);

/* Formats ms (Unix epoch) as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out. */
void util_iso_time(int64_t ms, char out[UTIL_ISO_TIME_LEN]);

/* Fills out with UTIL_ID_LEN url-safe random characters and a NUL.
 * Returns 0, or -1 when the kernel has no randomness to give. */
int util_random_id(char out[UTIL_ID_LEN + 1]) __attribute__((warn_unused_result));

/* Uniform random double in [0, 1), for jitter (not for secrets). */
double util_random_unit(void);

/* Sets O_NONBLOCK (and FD_CLOEXEC). Returns 0 or -1 with errno. */
int util_set_nonblock(int fd);

/* Case-insensitive comparison of a length-delimited string with a C string. */
bool util_strieq(const char *a, size_t alen, const char *b);

/* Parses a decimal unsigned integer that fills [s, s+len) exactly.
 * Returns false on empty input, any non-digit, or a value above max. */
bool util_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out);

/* True when s[0..len) is well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
bool util_utf8_valid(const uint8_t *s, size_t len);

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF): 1 for ASCII, 2 to 4, or 0
 * when s holds no whole, valid sequence (len 0 included). */
size_t util_utf8_seq(const uint8_t *s, size_t len);

/* The value of one hexadecimal digit, or -1. */
int util_hexval(int c);

#endif
