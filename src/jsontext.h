/*
 * jsontext: JSON text as jsonpatch and jsonvalue read and write it
 * (sans-I/O, RFC 8259, UTF-8).
 *
 * jsontext_parse checks one JSON value and builds a flat, read-only index
 * of it: one node per value, in document order; a container's children
 * follow it and `next` skips its subtree. Scalars are never decoded: their
 * text is what the diff compares and copies. Member names are decoded (to
 * compare "a\u0062" with "ab"), in place when they hold no escape.
 *
 * struct jsontext_out is the growing buffer the patch and the applied
 * document are written into, with the escaping and compacting writers
 * they share.
 *
 * The index borrows the text it was built from; it owns its node array and
 * decoded names until jsontext_free. Nothing is kept between calls.
 */
#ifndef PGPUSH_JSONTEXT_H
#define PGPUSH_JSONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting of containers accepted in a document (the daemon's own
 * limit on query results is 64). */
#define JSONTEXT_MAX_DEPTH 128

/* The values of the matching JSONPATCH_ERR_* codes, which are these. */
enum jsontext_error {
	JSONTEXT_ERR_NOMEM = -1,
	JSONTEXT_ERR_JSON = -2,   /* not one JSON value in UTF-8 */
	JSONTEXT_ERR_DEPTH = -3,  /* nesting deeper than JSONTEXT_MAX_DEPTH */
};

enum jsontext_type { JSONTEXT_OBJ, JSONTEXT_ARR, JSONTEXT_STR, JSONTEXT_NUM, JSONTEXT_LIT };

struct jsontext_node {
	unsigned char type;  /* enum jsontext_type */
	uint32_t khash;      /* jsontext_hash of the decoded member name */
	size_t start, len;   /* the value's text */
	size_t next;         /* index of the first node after this subtree */
	size_t count;        /* members or elements */
	const char *key;     /* decoded member name (members of objects only) */
	size_t klen;
};

struct jsontext {
	const char *s;       /* borrowed: the text parsed */
	size_t len;
	struct jsontext_node *n;  /* owned: n[0] is the root value */
	size_t nn, cap;
	char *keys;          /* owned: decoded names with escapes; at most len bytes */
	size_t keys_len;
};

/* Parses s[0..len) (one JSON value, whitespace around it allowed) into *d.
 * Returns 0, or JSONTEXT_ERR_NOMEM, _JSON or _DEPTH with *d holding
 * nothing. Release with jsontext_free; s must outlive *d. */
int jsontext_parse(struct jsontext *d, const char *s, size_t len)
	__attribute__((warn_unused_result));

/* Frees what jsontext_parse allocated (not d itself). */
void jsontext_free(struct jsontext *d);

/* The node of the last member named k in object node o of d, or 0 (no
 * such member; node 0 is the root, never a member). */
size_t jsontext_member(const struct jsontext *d, size_t o, const char *k, size_t klen);

/* FNV-1a of s[0..len): the hash of member names. */
uint32_t jsontext_hash(const char *s, size_t len);

/* Decodes a checked string's text (quotes included) into o, which has room
 * for len bytes; returns the decoded length. A lone surrogate escape (which
 * JSON.parse keeps as it is) is written as its 3-byte form (WTF-8), which
 * valid UTF-8 text can never hold raw: jsontext_out_string writes it back
 * as \uXXXX. */
size_t jsontext_decode_string(const char *s, size_t len, char *o);

/* A growing byte buffer, zero-initialised before use; s is owned by whoever
 * holds the struct. After a failed allocation every write is dropped and
 * oom stays set: callers check once, at the end. */
struct jsontext_out {
	char *s;
	size_t len, cap;
	bool oom;
};

void jsontext_out_put(struct jsontext_out *o, const void *p, size_t n);
void jsontext_out_str(struct jsontext_out *o, const char *s);
void jsontext_out_char(struct jsontext_out *o, char c);

/* Writes bytes (decoded text, as jsontext_decode_string makes it) as the
 * contents of a JSON string: quotes, backslashes and control characters
 * escaped, and lone surrogates back as \uXXXX. */
void jsontext_out_string(struct jsontext_out *o, const char *s, size_t len);

/* Copies valid JSON text without the whitespace between tokens. */
void jsontext_out_compact(struct jsontext_out *o, const char *s, size_t len);

#endif
