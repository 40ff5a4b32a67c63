/*
 * jsonvalue: JSON values as a client holds them after JSON.parse
 * (sans-I/O): a strict, atomic RFC 6902 applier and a canonical
 * comparison, used by the tests, the benchmark and the fuzz target to
 * check jsonpatch's diff.
 *
 * Both parse their inputs with jsontext into a mutable tree that borrows
 * scalars' text from the input. Duplicate member names follow JSON.parse:
 * the last value wins, at the place of the first. Nothing is kept between
 * calls; what a call allocates it frees before returning, except the
 * output it hands over.
 */
#ifndef PGPUSH_JSONVALUE_H
#define PGPUSH_JSONVALUE_H

#include <stdbool.h>
#include <stddef.h>

/* Applies patch (an RFC 6902 JSON array of operations) to doc, atomically,
 * without caps but a nesting of 2 * JSONTEXT_MAX_DEPTH (jsonpatch_apply is
 * the capped one):
 * every operation succeeds or nothing is returned. On success returns 0
 * and *out holds the resulting document as compact JSON (malloc'd,
 * NUL-terminated, *out_len bytes; owned by the caller); otherwise a
 * negative jsonpatch_error. Scalars keep their text; member names are
 * written as their value (escapes only where JSON needs them). */
int jsonvalue_apply(const char *doc, size_t doc_len, const char *patch, size_t patch_len,
		    char **out, size_t *out_len)
	__attribute__((warn_unused_result));

/* Caps for jsonvalue_apply_limited; SIZE_MAX: none. */
struct jsonvalue_limits {
	size_t steps; /* element steps: members compared, elements moved, nodes made */
	size_t nodes; /* values made: the document's, the patch's, and copies */
	size_t text;  /* bytes of scalar text and member names in those values */
	size_t ops;   /* operations in the patch */
	size_t out;   /* bytes of the resulting document */
	size_t depth; /* nesting of containers anywhere in the document (past
		       * it: JSONPATCH_ERR_DEPTH) */
};

/* jsonvalue_apply within lim: past any cap, JSONPATCH_ERR_SIZE (and
 * nothing returned). */
int jsonvalue_apply_limited(const char *doc, size_t doc_len, const char *patch, size_t patch_len,
			    const struct jsonvalue_limits *lim, char **out, size_t *out_len)
	__attribute__((warn_unused_result));

/* True when a and b are both valid JSON and hold the same value: member
 * order ignored, duplicate members resolved as JSON.parse does, strings
 * compared by value, numbers and literals by their exact text (1.50 is not
 * 1.5: the client must see the DBA's digits). */
bool jsonvalue_equal(const char *a, size_t a_len, const char *b, size_t b_len);

#endif
