/*
 * Fuzz target: the JSON Patch diff (jsonpatch_diff). The input is two JSON
 * texts separated by the first NUL byte (which JSON text cannot hold);
 * without one, the input is diffed against itself.
 *
 * Invariants, beyond "no memory error, no UB, no leak":
 *  - the diff accepts exactly the texts JSON.parse accepts in valid UTF-8:
 *    what sio_json_strict (an independent RFC 8259 checker, nesting below
 *    32) and util_utf8_valid pass, it must diff; what it diffs is UTF-8;
 *  - the patch is itself valid JSON, as long as it says, never much longer
 *    than the new document (one replace of it), and "full" means exactly
 *    "not shorter than the new document";
 *  - applying it to the old document succeeds and gives the new one
 *    (jsonvalue_equal: numbers by their text, strings by value, member
 *    order ignored), and json-c, parsing both on its own, agrees;
 *  - a text diffed against itself gives no operation.
 */
#include "autoconfig.h"

#include "jsonpatch.h"
#include "jsonvalue.h"
#include "sio.h"
#include "util.h"
#include "fuzz.h"

#include <json-c/json.h>

static bool valid(const char *s, size_t len)
{
	return sio_json_strict(s, len) && util_utf8_valid((const uint8_t *)s, len);
}

static json_object *jc_parse(const char *s, size_t len)
{
	struct json_tokener *tok = json_tokener_new_ex(2 * JSONPATCH_MAX_DEPTH + 2);
	json_object *o;

	if (!tok)
		abort();
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (!o && json_tokener_get_error(tok) == json_tokener_continue)
		o = json_tokener_parse_ex(tok, "", 1);
	json_tokener_free(tok);
	return o;
}

/* json-c's own reading of the result and of the new document agree. It
 * keeps member names as C strings: with a \u0000 in one, two names can
 * become one, so those are left out. */
static void check_json_c(const char *out, size_t out_len, const char *b, size_t b_len)
{
	json_object *x, *y;

	if (memmem(b, b_len, "\\u0000", 6) || out_len > INT32_MAX - 1 || b_len > INT32_MAX - 1)
		return;
	x = jc_parse(out, out_len);
	y = jc_parse(b, b_len);
	if (x && y)
		FUZZ_CHECK(json_object_equal(x, y));
	json_object_put(x);
	json_object_put(y);
}

static void check_pair(const char *a, size_t a_len, const char *b, size_t b_len)
{
	struct jsonpatch p;
	char *out;
	size_t out_len;
	int rc = jsonpatch_diff(a, a_len, b, b_len, &p);

	FUZZ_CHECK(jsonpatch_error_message(rc) != NULL);
	if (rc < 0) {
		FUZZ_CHECK(rc == JSONPATCH_ERR_JSON || rc == JSONPATCH_ERR_DEPTH);
		FUZZ_CHECK(p.text == NULL && p.len == 0 && p.ops == 0);
		FUZZ_CHECK(!valid(a, a_len) || !valid(b, b_len));
		return;
	}
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(util_utf8_valid((const uint8_t *)a, a_len));
	FUZZ_CHECK(util_utf8_valid((const uint8_t *)b, b_len));
	FUZZ_CHECK(p.text != NULL && strlen(p.text) == p.len);
	FUZZ_CHECK(valid(p.text, p.len));
	FUZZ_CHECK(p.full == (p.len >= b_len));
	/* [{"op":"replace","path":"","value":<b, compacted>}] */
	FUZZ_CHECK(p.len <= b_len + 38);
	FUZZ_CHECK((p.ops == 0) == (strcmp(p.text, "[]") == 0));
	rc = jsonvalue_apply(a, a_len, p.text, p.len, &out, &out_len);
	if (rc != 0)
		fprintf(stderr, "apply: %s\npatch: %s\n", jsonpatch_error_message(rc), p.text);
	FUZZ_CHECK(rc == 0);
	if (!jsonvalue_equal(out, out_len, b, b_len))
		fprintf(stderr, "patch: %s\ngot:   %.*s\n", p.text, (int)out_len, out);
	FUZZ_CHECK(jsonvalue_equal(out, out_len, b, b_len));
	FUZZ_CHECK(p.ops > 0 || jsonvalue_equal(a, a_len, b, b_len));
	check_json_c(out, out_len, b, b_len);
	free(out);
	jsonpatch_clear(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t a_len = nul ? (size_t)(nul - data) : size;
	size_t b_len = nul ? size - a_len - 1 : size;
	char *a = fuzz_dup(data, a_len);
	char *b = fuzz_dup(nul ? nul + 1 : data, b_len);

	check_pair(a, a_len, b, b_len);
	if (nul) {
		check_pair(b, b_len, a, a_len);
	} else {
		struct jsonpatch p;

		if (jsonpatch_diff(a, a_len, b, b_len, &p) == 0)
			FUZZ_CHECK(p.ops == 0 && strcmp(p.text, "[]") == 0);
		jsonpatch_clear(&p);
	}
	free(a);
	free(b);
	return 0;
}
