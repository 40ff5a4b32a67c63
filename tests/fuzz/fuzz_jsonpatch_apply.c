/*
 * Fuzz target: the JSON Patch applier (jsonpatch_apply). The input is a
 * document and a patch separated by the first NUL byte (which JSON text
 * cannot hold); without one, the input is applied to itself (a patch
 * that is also its own document).
 *
 * Invariants, beyond "no memory error, no UB, no leak, no hang" (the caps
 * bound a copy bomb or a wide object's lookups):
 *  - the result is one of the documented codes, each with a message, and
 *    on failure nothing is handed over;
 *  - what it applies, the uncapped applier (jsonvalue_apply) applies to
 *    the same text, and what it refuses other than for size or depth, the
 *    uncapped one refuses with the same code: the caps change nothing
 *    else;
 *  - a result is valid JSON in UTF-8 (sio_json_strict, nesting below 32,
 *    when it is that shallow), of its stated length, within the cap;
 *  - diff(doc, result) applied to doc gives the result again.
 */
#include "autoconfig.h"

#include "jsonpatch.h"
#include "jsonvalue.h"
#include "sio.h"
#include "util.h"
#include "fuzz.h"

static void check(const char *doc, size_t doc_len, const char *patch, size_t patch_len)
{
	char *out = NULL, *ref = NULL, *again = NULL;
	size_t out_len = 0, ref_len = 0, again_len = 0;
	struct jsonpatch p;
	int rc = jsonpatch_apply(doc, doc_len, patch, patch_len, &out, &out_len);
	int rrc;

	FUZZ_CHECK(strcmp(jsonpatch_error_message(rc), "unknown error") != 0);
	if (rc < 0) {
		FUZZ_CHECK(out == NULL);
		FUZZ_CHECK(rc == JSONPATCH_ERR_NOMEM || rc == JSONPATCH_ERR_JSON ||
			   rc == JSONPATCH_ERR_DEPTH || rc == JSONPATCH_ERR_PATCH ||
			   rc == JSONPATCH_ERR_PATH || rc == JSONPATCH_ERR_TEST ||
			   rc == JSONPATCH_ERR_SIZE);
		/* A size refusal may stand for work the uncapped applier
		 * would never finish: it is not run then. The uncapped one
		 * nests deeper. */
		if (rc != JSONPATCH_ERR_SIZE && rc != JSONPATCH_ERR_DEPTH) {
			rrc = jsonvalue_apply(doc, doc_len, patch, patch_len, &ref, &ref_len);
			FUZZ_CHECK(rrc == rc);
			free(ref);
		}
		return;
	}
	FUZZ_CHECK(rc == 0 && out != NULL);
	FUZZ_CHECK(strlen(out) == out_len && out_len <= JSONPATCH_MAX_DOC);
	FUZZ_CHECK(util_utf8_valid((const uint8_t *)out, out_len));
	FUZZ_CHECK(jsonvalue_equal(out, out_len, out, out_len));
	if (!memchr(out, '[', out_len) && !memchr(out, '{', out_len))
		FUZZ_CHECK(sio_json_strict(out, out_len));
	rrc = jsonvalue_apply(doc, doc_len, patch, patch_len, &ref, &ref_len);
	FUZZ_CHECK(rrc == 0 && ref_len == out_len && memcmp(ref, out, out_len) == 0);
	free(ref);
	if (jsonpatch_diff(doc, doc_len, out, out_len, &p) == 0) {
		FUZZ_CHECK(jsonpatch_apply(doc, doc_len, p.text, p.len, &again, &again_len) == 0);
		FUZZ_CHECK(jsonvalue_equal(again, again_len, out, out_len));
		free(again);
		jsonpatch_clear(&p);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t doc_len = nul ? (size_t)(nul - data) : size;
	size_t patch_len = nul ? size - doc_len - 1 : size;
	char *doc = fuzz_dup(data, doc_len);
	char *patch = fuzz_dup(nul ? nul + 1 : data, patch_len);

	check(doc, doc_len, patch, patch_len);
	free(doc);
	free(patch);
	return 0;
}
