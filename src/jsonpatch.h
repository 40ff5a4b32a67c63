/*
 * jsonpatch: RFC 6902 JSON Patch from one JSON text to another (sans-I/O).
 *
 * jsonpatch_diff takes the previous and the new document as the daemon
 * holds them (JSON text, byte for byte the DBA's) and writes the patch as
 * compact JSON text. It works on the text, not on json-c objects: every
 * scalar in the patch is the new document's own text, so a number such as
 * 1234.50 or 18446744073709551616 reaches the client as it was written
 * (json-c would print 1234.50 back, but 18446744073709551615 and -0 as 0).
 *
 * The rules (docs/protocol.md, "Patch rule"):
 *  - objects are diffed member by member (add, remove, or recurse);
 *  - scalars are compared by their text and replaced when it differs;
 *  - arrays of objects with an identity are diffed by it: the key is the
 *    first of "id", "productId", "day" that every element of both arrays
 *    has, with a scalar value unique within each array. Removed elements
 *    go first (highest index down), then moves, then inserts (lowest index
 *    up), then the changed elements at their new index;
 *  - other arrays are diffed by index: the common prefix element by
 *    element, then removals at the tail (highest index first) or adds;
 *  - wherever one "replace" of a whole object or array is shorter than the
 *    operations inside it, that replace is written instead.
 * Operations apply in order, each against the document as the previous
 * ones left it (RFC 6902 section 3), so indexes are those of that moment.
 *
 * jsonpatch_apply is the other way: a patch applied to a document, with
 * caps on what the inputs may cost (for a reader that gets patches from a
 * peer, such as a cluster follower).
 *
 * The text is read and written through jsontext; jsonvalue holds the
 * strict RFC 6902 applier (under jsonpatch_apply) and the canonical
 * comparison that the tests and the fuzz target use to check the diff.
 *
 * Duplicate member names follow JSON.parse: the last value wins, at the
 * place of the first. Strings are compared by their text in the diff (an
 * escaped and an unescaped spelling of one string make a needless but
 * correct replace) and by their value in jsonvalue_equal.
 *
 * Nothing here keeps state between calls; every call allocates what it
 * needs and frees it before returning, except the output it hands over.
 */
#ifndef PGPUSH_JSONPATCH_H
#define PGPUSH_JSONPATCH_H

#include "jsontext.h"

#include <stdbool.h>
#include <stddef.h>

/* Deepest nesting of containers accepted in a document (the daemon's own
 * limit on query results is 64). */
#define JSONPATCH_MAX_DEPTH JSONTEXT_MAX_DEPTH

/* The first three are jsontext's, so its errors pass through unchanged;
 * the others are the applier's. */
enum jsonpatch_error {
	JSONPATCH_ERR_NOMEM = JSONTEXT_ERR_NOMEM,
	JSONPATCH_ERR_JSON = JSONTEXT_ERR_JSON,    /* an input is not one JSON value in UTF-8 */
	JSONPATCH_ERR_DEPTH = JSONTEXT_ERR_DEPTH,  /* nesting deeper than JSONPATCH_MAX_DEPTH */
	JSONPATCH_ERR_PATCH = -4,  /* apply: not an array of well-formed operations */
	JSONPATCH_ERR_PATH = -5,   /* apply: a path or from that does not resolve */
	JSONPATCH_ERR_TEST = -6,   /* apply: a "test" operation failed */
	JSONPATCH_ERR_SIZE = -7,   /* apply: past a cap (JSONPATCH_MAX_*) */
};

/* jsonpatch_apply's caps. A document, a patch and a result are at most
 * JSONPATCH_MAX_DOC bytes (the daemon's cap on a dashboard document), a
 * patch has at most JSONPATCH_MAX_OPS operations, and applying costs at
 * most JSONPATCH_WORK_PER_BYTE element steps (a member compared, a value
 * made, eight elements moved) per input byte plus JSONPATCH_WORK_BASE,
 * and at most JSONPATCH_COPY_NODES values and JSONPATCH_MAX_DOC bytes of
 * text beyond those of the inputs (what "copy" may add). A result nests
 * at most JSONPATCH_MAX_DEPTH containers (JSONPATCH_ERR_DEPTH). */
#define JSONPATCH_MAX_DOC (64u << 20)
#define JSONPATCH_MAX_OPS (1u << 20)
#define JSONPATCH_WORK_PER_BYTE 64u
#define JSONPATCH_WORK_BASE (16u << 20)
#define JSONPATCH_COPY_NODES (1u << 18)

struct jsonpatch {
	char *text;   /* owned: the patch, compact JSON, NUL-terminated */
	size_t len;   /* strlen(text) */
	size_t ops;   /* operations in it; 0 when the documents are equal */
	bool full;    /* len >= the new document's length: send that instead */
};

/* Computes the patch that turns from[0..from_len) into to[0..to_len).
 * Both must be one JSON value each (RFC 8259, UTF-8; whitespace allowed).
 * On success returns 0 and fills *out (release with jsonpatch_clear);
 * otherwise JSONPATCH_ERR_NOMEM, _JSON or _DEPTH, and *out holds nothing.
 * The patch is never longer than one "replace" of the whole document. */
int jsonpatch_diff(const char *from, size_t from_len, const char *to, size_t to_len,
		   struct jsonpatch *out)
	__attribute__((warn_unused_result));

/* Applies patch[0..patch_len) (RFC 6902: an array of add, remove,
 * replace, move, copy and test operations, each against the document as
 * the previous ones left it) to doc[0..doc_len), atomically: on success
 * returns 0 and *out holds the new document as compact JSON (malloc'd,
 * NUL-terminated, *out_len bytes; the caller frees it); otherwise a
 * negative jsonpatch_error and *out is untouched. Scalars keep their text
 * (1234.50 stays 1234.50); member names are written as their value;
 * duplicate member names follow JSON.parse. jsonpatch_apply(a,
 * jsonpatch_diff(a, b)) holds the value b holds (jsonvalue_equal). */
int jsonpatch_apply(const char *doc, size_t doc_len, const char *patch, size_t patch_len,
		    char **out, size_t *out_len)
	__attribute__((warn_unused_result));

/* Frees p->text and zeroes *p; a zeroed struct is fine. */
void jsonpatch_clear(struct jsonpatch *p);

/* A message for a jsonpatch_error (or 0). */
const char *jsonpatch_error_message(int err);

#endif
