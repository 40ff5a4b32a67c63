/*
 * jose: the encodings of a JWS compact token (RFC 7515) as jwt reads them,
 * sans-I/O: base64url segments with one spelling only, and JSON objects
 * parsed as strictly as client packets (sio), refusing what json-c cannot
 * hold faithfully.
 *
 * Owns nothing between calls; a parsed object is the caller's
 * (json_object_put). Calls nothing back.
 */
#ifndef PGPUSH_JOSE_H
#define PGPUSH_JOSE_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

/* RFC 7515 §2 base64url: no padding, no other alphabet, and the unused
 * low bits of the last character zero (RFC 4648 §3.5), so that one byte
 * string has one spelling. Writes at most len * 3 / 4 bytes to out.
 * Returns the decoded length, or -1. */
long jose_b64url_decode(const char *s, size_t len, unsigned char *out);

/* A JSON object as RFC 8259 (and JSON.parse) reads it, in valid UTF-8:
 * the object (owned by the caller), or NULL when s[0..len) is not one, is
 * nested deeper than client packets may be, or holds a \u0000 or lone
 * surrogate escape or an integer json-c would saturate (each would make
 * two different texts one value). Duplicate member names: the last wins
 * (json-c), which RFC 7515 §5.2 and RFC 7519 §4 allow, and which is what
 * JavaScript issuers mean. */
json_object *jose_parse_object(const unsigned char *s, size_t len);

/* True when o is a JSON string equal to want (no NUL inside). */
bool jose_str_is(json_object *o, const char *want);

#endif
