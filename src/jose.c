#include "autoconfig.h"

#include "jose.h"
#include "sio.h"
#include "util.h"

#include <stdint.h>
#include <string.h>

#define JOSE_JSON_DEPTH 32     /* as client packets (sio) */

/* ---- base64url ------------------------------------------------------------ */

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long jose_b64url_decode(const char *s, size_t len, unsigned char *out)
{
	unsigned acc = 0;
	int bits = 0;
	size_t n = 0;

	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)s[i]);

		if (v < 0)
			return -1;
		acc = ((acc << 6) | (unsigned)v) & 0xffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	if (bits && (acc & ((1u << bits) - 1)))
		return -1;
	return (long)n;
}

/* ---- JSON ------------------------------------------------------------------ */

static unsigned hex4(const unsigned char *s)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else
			v |= c - 'A' + 10;
	}
	return v;
}

/* json-c cannot keep what these escapes say: a key holding \u0000 is cut
 * short (so two keys could become one), and a lone surrogate becomes
 * U+FFFD (two different strings, one value). Text already passed
 * sio_json_strict, so every backslash starts a complete escape. */
static bool escapes_faithful(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned cp;

		if (s[i] != '\\')
			continue;
		if (s[++i] != 'u')
			continue;
		cp = hex4(s + i + 1);
		i += 4;
		if (cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff))
			return false;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			unsigned lo;

			if (i + 6 >= len || s[i + 1] != '\\' || s[i + 2] != 'u')
				return false;
			lo = hex4(s + i + 3);
			if (lo < 0xdc00 || lo > 0xdfff)
				return false;
			i += 6;
		}
	}
	return true;
}

/* json-c saturates integers it cannot hold (at INT64_MIN and UINT64_MAX)
 * without an error: two different claims would read as one. */
static bool ints_faithful(json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_int:
		return json_object_get_int64(o) != INT64_MIN && json_object_get_uint64(o) != UINT64_MAX;
	case json_type_array:
		for (size_t i = 0, n = json_object_array_length(o); i < n; i++)
			if (!ints_faithful(json_object_array_get_idx(o, i)))
				return false;
		return true;
	case json_type_object: {
		json_object_object_foreach(o, key, val) {
			(void)key;
			if (!ints_faithful(val))
				return false;
		}
		return true;
	}
	default:
		return true;
	}
}

json_object *jose_parse_object(const unsigned char *s, size_t len)
{
	struct json_tokener *tok;
	json_object *obj;

	if (!util_utf8_valid(s, len) || !sio_json_strict((const char *)s, len) ||
	    !escapes_faithful(s, len))
		return NULL;
	tok = json_tokener_new_ex(JOSE_JSON_DEPTH);
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, (const char *)s, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(obj, json_type_object) || !ints_faithful(obj)) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

bool jose_str_is(json_object *o, const char *want)
{
	size_t n = strlen(want);

	return json_object_is_type(o, json_type_string) &&
	       (size_t)json_object_get_string_len(o) == n &&
	       memcmp(json_object_get_string(o), want, n) == 0;
}
