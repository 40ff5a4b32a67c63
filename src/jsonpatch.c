#include "autoconfig.h"

#include "jsonpatch.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing: a flat, read-only index of a JSON text ---------------------
 *
 * One node per value, in document order; a container's children follow it
 * and `next` skips its subtree. Scalars are never decoded: their text is
 * what the diff compares and copies. Member names are decoded (to compare
 * "a\u0062" with "ab"), in place when they hold no escape.
 */

enum jtype { J_OBJ, J_ARR, J_STR, J_NUM, J_LIT };

struct jnode {
	unsigned char type;
	uint32_t khash;      /* FNV-1a of the decoded member name */
	size_t start, len;   /* the value's text */
	size_t next;         /* index of the first node after this subtree */
	size_t count;        /* members or elements */
	const char *key;     /* decoded member name (members of objects only) */
	size_t klen;
};

struct jdoc {
	const char *s;
	size_t len;
	struct jnode *n;
	size_t nn, cap;
	char *keys;          /* decoded names with escapes; at most len bytes */
	size_t keys_len;
};

static uint32_t fnv(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static void skip_ws(const char *s, size_t len, size_t *i)
{
	while (*i < len && (s[*i] == ' ' || s[*i] == '\n' || s[*i] == '\r' || s[*i] == '\t'))
		(*i)++;
}

/* Checks the string starting at s[*i] (the opening quote) and moves *i past
 * it. *escaped tells whether it holds a backslash. */
static bool scan_string(const char *s, size_t len, size_t *i, bool *escaped)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t p = *i + 1;

	*escaped = false;
	while (p < len) {
		unsigned char c = u[p];

		if (c == '"') {
			*i = p + 1;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			*escaped = true;
			if (++p >= len)
				return false;
			c = u[p];
			if (c == 'u') {
				if (len - p < 5)
					return false;
				for (int k = 1; k <= 4; k++)
					if (util_hexval(s[p + k]) < 0)
						return false;
				p += 5;
			} else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' ||
				   c == 'n' || c == 'r' || c == 't') {
				p++;
			} else {
				return false;
			}
		} else if (c < 0x80) {
			p++;
		} else {
			size_t n = util_utf8_seq(u + p, len - p);

			if (!n)
				return false;
			p += n;
		}
	}
	return false;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static uint32_t hex4(const char *s)
{
	return (uint32_t)(util_hexval(s[0]) << 12 | util_hexval(s[1]) << 8 |
			  util_hexval(s[2]) << 4 | util_hexval(s[3]));
}

/* Decodes a checked string's text (quotes included) into o, which has room
 * for len bytes; returns the decoded length. A lone surrogate escape (which
 * JSON.parse keeps as it is) is written as its 3-byte form (WTF-8), which
 * valid UTF-8 text can never hold raw: json_str writes it back as \uXXXX. */
static size_t decode_string(const char *s, size_t len, char *o)
{
	size_t n = 0;

	for (size_t i = 1; i + 1 < len;) {
		char c = s[i];
		uint32_t cp;

		if (c != '\\') {
			o[n++] = c;
			i++;
			continue;
		}
		c = s[i + 1];
		i += 2;
		switch (c) {
		case 'b': o[n++] = '\b'; continue;
		case 'f': o[n++] = '\f'; continue;
		case 'n': o[n++] = '\n'; continue;
		case 'r': o[n++] = '\r'; continue;
		case 't': o[n++] = '\t'; continue;
		case 'u': break;
		default: o[n++] = c; continue;
		}
		cp = hex4(s + i);
		i += 4;
		if (cp >= 0xd800 && cp <= 0xdbff && i + 6 <= len - 1 && s[i] == '\\' &&
		    s[i + 1] == 'u') {
			uint32_t lo = hex4(s + i + 2);

			if (lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				i += 6;
			}
		}
		n += put_utf8(o + n, cp);
	}
	return n;
}

static bool scan_number(const char *s, size_t len, size_t *i)
{
	size_t p = *i;

	if (p < len && s[p] == '-')
		p++;
	if (p < len && s[p] == '0') {
		p++;
	} else if (p < len && s[p] >= '1' && s[p] <= '9') {
		while (p < len && s[p] >= '0' && s[p] <= '9')
			p++;
	} else {
		return false;
	}
	if (p < len && s[p] == '.') {
		if (++p >= len || s[p] < '0' || s[p] > '9')
			return false;
		while (p < len && s[p] >= '0' && s[p] <= '9')
			p++;
	}
	if (p < len && (s[p] == 'e' || s[p] == 'E')) {
		p++;
		if (p < len && (s[p] == '+' || s[p] == '-'))
			p++;
		if (p >= len || s[p] < '0' || s[p] > '9')
			return false;
		while (p < len && s[p] >= '0' && s[p] <= '9')
			p++;
	}
	*i = p;
	return true;
}

static int push_node(struct jdoc *d, enum jtype t, size_t start, size_t *idx)
{
	if (d->nn == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct jnode *n = realloc(d->n, cap * sizeof(*n));

		if (!n)
			return JSONPATCH_ERR_NOMEM;
		d->n = n;
		d->cap = cap;
	}
	*idx = d->nn++;
	memset(&d->n[*idx], 0, sizeof(d->n[*idx]));
	d->n[*idx].type = (unsigned char)t;
	d->n[*idx].start = start;
	return 0;
}

static int parse_value(struct jdoc *d, size_t *i, int depth);

static int parse_container(struct jdoc *d, size_t *i, int depth, bool object)
{
	const char *s = d->s;
	char close = object ? '}' : ']';
	size_t self;
	int rc;

	if (depth >= JSONPATCH_MAX_DEPTH)
		return JSONPATCH_ERR_DEPTH;
	rc = push_node(d, object ? J_OBJ : J_ARR, *i, &self);
	if (rc < 0)
		return rc;
	(*i)++;
	skip_ws(s, d->len, i);
	if (*i < d->len && s[*i] == close) {
		(*i)++;
		goto out;
	}
	for (;;) {
		size_t kstart = 0, kend = 0, child = d->nn;
		bool esc = false;

		if (object) {
			if (*i >= d->len || s[*i] != '"')
				return JSONPATCH_ERR_JSON;
			kstart = *i;
			if (!scan_string(s, d->len, i, &esc))
				return JSONPATCH_ERR_JSON;
			kend = *i;
			skip_ws(s, d->len, i);
			if (*i >= d->len || s[*i] != ':')
				return JSONPATCH_ERR_JSON;
			(*i)++;
		}
		rc = parse_value(d, i, depth + 1);
		if (rc < 0)
			return rc;
		d->n[self].count++;
		if (object) {
			struct jnode *c = &d->n[child];

			if (esc) {
				if (!d->keys) {
					d->keys = malloc(d->len);
					if (!d->keys)
						return JSONPATCH_ERR_NOMEM;
				}
				c->klen = decode_string(s + kstart, kend - kstart,
							d->keys + d->keys_len);
				/* d->keys never moves: it has room for
				 * every name of the text, decoded. */
				c->key = d->keys + d->keys_len;
				d->keys_len += c->klen;
			} else {
				c->key = s + kstart + 1;
				c->klen = kend - kstart - 2;
			}
			c->khash = fnv(c->key, c->klen);
		}
		skip_ws(s, d->len, i);
		if (*i < d->len && s[*i] == ',') {
			(*i)++;
			skip_ws(s, d->len, i);
			continue;
		}
		if (*i < d->len && s[*i] == close) {
			(*i)++;
			break;
		}
		return JSONPATCH_ERR_JSON;
	}
out:
	d->n[self].len = *i - d->n[self].start;
	d->n[self].next = d->nn;
	return 0;
}

static int parse_value(struct jdoc *d, size_t *i, int depth)
{
	const char *s = d->s;
	size_t start, idx;
	enum jtype t;
	bool esc;
	int rc;

	skip_ws(s, d->len, i);
	if (*i >= d->len)
		return JSONPATCH_ERR_JSON;
	start = *i;
	switch (s[*i]) {
	case '{':
		return parse_container(d, i, depth, true);
	case '[':
		return parse_container(d, i, depth, false);
	case '"':
		if (!scan_string(s, d->len, i, &esc))
			return JSONPATCH_ERR_JSON;
		t = J_STR;
		break;
	case 't':
	case 'f':
	case 'n': {
		const char *lit = s[*i] == 't' ? "true" : s[*i] == 'f' ? "false" : "null";
		size_t n = strlen(lit);

		if (d->len - *i < n || memcmp(s + *i, lit, n) != 0)
			return JSONPATCH_ERR_JSON;
		*i += n;
		t = J_LIT;
		break;
	}
	default:
		if (!scan_number(s, d->len, i))
			return JSONPATCH_ERR_JSON;
		t = J_NUM;
		break;
	}
	rc = push_node(d, t, start, &idx);
	if (rc < 0)
		return rc;
	d->n[idx].len = *i - start;
	d->n[idx].next = d->nn;
	return 0;
}

static void jdoc_free(struct jdoc *d)
{
	free(d->n);
	free(d->keys);
}

static int jdoc_parse(struct jdoc *d, const char *s, size_t len)
{
	size_t i = 0;
	int rc;

	memset(d, 0, sizeof(*d));
	d->s = s;
	d->len = len;
	/* A compact dashboard has about one value per 12 bytes. */
	d->cap = len / 12 + 16;
	d->n = malloc(d->cap * sizeof(*d->n));
	if (!d->n)
		return JSONPATCH_ERR_NOMEM;
	rc = parse_value(d, &i, 0);
	if (rc == 0) {
		skip_ws(s, len, &i);
		if (i != len)
			rc = JSONPATCH_ERR_JSON;
	}
	if (rc < 0)
		jdoc_free(d);
	return rc;
}

/* ---- output ------------------------------------------------------------- */

/* A growing byte buffer. After a failed allocation every write is dropped
 * and oom stays set: callers check once, at the end. */
struct out {
	char *s;
	size_t len, cap;
	bool oom;
};

static bool out_room(struct out *o, size_t n)
{
	size_t cap;
	char *s;

	if (o->oom)
		return false;
	if (o->cap - o->len >= n)
		return true;
	cap = o->cap ? o->cap : 256;
	while (cap - o->len < n)
		cap *= 2;
	s = realloc(o->s, cap);
	if (!s) {
		o->oom = true;
		return false;
	}
	o->s = s;
	o->cap = cap;
	return true;
}

static void out_put(struct out *o, const void *p, size_t n)
{
	if (n && out_room(o, n)) {
		memcpy(o->s + o->len, p, n);
		o->len += n;
	}
}

static void out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

static void out_char(struct out *o, char c)
{
	if (out_room(o, 1))
		o->s[o->len++] = c;
}

/* Writes bytes (decoded text, as decode_string makes it) as the contents
 * of a JSON string: quotes, backslashes and control characters escaped,
 * and lone surrogates back as \uXXXX. */
static void json_str(struct out *o, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	if (!len)
		return; /* s may be NULL: the root's path is empty */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[8];
		size_t en = 2;

		if (c >= 0x20 && c != '"' && c != '\\' &&
		    !(c == 0xed && i + 2 < len && (unsigned char)s[i + 1] >= 0xa0))
			continue;
		out_put(o, s + run, i - run);
		e[0] = '\\';
		switch (c) {
		case '"': e[1] = '"'; break;
		case '\\': e[1] = '\\'; break;
		case '\b': e[1] = 'b'; break;
		case '\f': e[1] = 'f'; break;
		case '\n': e[1] = 'n'; break;
		case '\r': e[1] = 'r'; break;
		case '\t': e[1] = 't'; break;
		default: {
			uint32_t cp = c;

			if (c == 0xed) {
				cp = 0xd000 | ((unsigned char)s[i + 1] & 0x3f) << 6 |
				     ((unsigned char)s[i + 2] & 0x3f);
				i += 2;
			}
			e[1] = 'u';
			e[2] = hex[cp >> 12 & 15];
			e[3] = hex[cp >> 8 & 15];
			e[4] = hex[cp >> 4 & 15];
			e[5] = hex[cp & 15];
			en = 6;
		}
		}
		out_put(o, e, en);
		run = i + 1;
	}
	out_put(o, s + run, len - run);
}

/* Copies valid JSON text without the whitespace between tokens. */
static void put_compact(struct out *o, const char *s, size_t len)
{
	size_t run = 0;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
			out_put(o, s + run, i - run);
			run = i + 1;
		}
	}
	out_put(o, s + run, len - run);
}

/* ---- diff ----------------------------------------------------------------- */

struct dctx {
	const struct jdoc *a, *b;
	struct out out;    /* the patch */
	struct out path;   /* the current JSON Pointer, ~ and / escaped */
	size_t ops;
};

static void path_key(struct out *p, const char *k, size_t klen)
{
	size_t run = 0;

	out_char(p, '/');
	for (size_t i = 0; i < klen; i++) {
		if (k[i] != '~' && k[i] != '/')
			continue;
		out_put(p, k + run, i - run);
		out_str(p, k[i] == '~' ? "~0" : "~1");
		run = i + 1;
	}
	out_put(p, k + run, klen - run);
}

static void path_index(struct out *p, size_t i)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "/%zu", i);

	out_put(p, num, (size_t)n);
}

static void op_begin(struct dctx *c, const char *op)
{
	if (c->ops++)
		out_char(&c->out, ',');
	out_str(&c->out, "{\"op\":\"");
	out_str(&c->out, op);
	out_str(&c->out, "\",\"path\":\"");
	json_str(&c->out, c->path.s, c->path.len);
	out_char(&c->out, '"');
}

/* add or replace at the current path, with b's node v as the value */
static void op_value(struct dctx *c, const char *op, const struct jnode *v)
{
	op_begin(c, op);
	out_str(&c->out, ",\"value\":");
	put_compact(&c->out, c->b->s + v->start, v->len);
	out_char(&c->out, '}');
}

static void op_remove(struct dctx *c)
{
	op_begin(c, "remove");
	out_char(&c->out, '}');
}

/* move from the current path + /from to the current path + /to */
static void op_move(struct dctx *c, size_t from, size_t to)
{
	size_t base = c->path.len;

	if (c->ops++)
		out_char(&c->out, ',');
	out_str(&c->out, "{\"op\":\"move\",\"from\":\"");
	path_index(&c->path, from);
	json_str(&c->out, c->path.s, c->path.len);
	c->path.len = base;
	out_str(&c->out, "\",\"path\":\"");
	path_index(&c->path, to);
	json_str(&c->out, c->path.s, c->path.len);
	c->path.len = base;
	out_str(&c->out, "\"}");
}

static bool same_text(const struct jdoc *a, const struct jnode *x, const struct jdoc *b,
		      const struct jnode *y)
{
	return x->len == y->len && memcmp(a->s + x->start, b->s + y->start, x->len) == 0;
}

/* An open-addressing table of the members of one object: for each name,
 * the node of its first and of its last occurrence. */
struct mtab {
	struct mslot {
		size_t first, last; /* node indexes; first == 0 when empty */
	} *slot;
	size_t mask;
};

static bool same_key(const struct jnode *x, const struct jnode *y)
{
	return x->khash == y->khash && x->klen == y->klen && memcmp(x->key, y->key, x->klen) == 0;
}

static struct mslot *mtab_find(const struct mtab *t, const struct jdoc *d, const struct jnode *k)
{
	for (size_t h = k->khash & t->mask;; h = (h + 1) & t->mask) {
		struct mslot *s = &t->slot[h];

		if (!s->first || same_key(&d->n[s->first], k))
			return s;
	}
}

static int mtab_build(struct mtab *t, const struct jdoc *d, size_t obj)
{
	size_t size = 8;

	while (size < d->n[obj].count * 2)
		size *= 2;
	t->slot = calloc(size, sizeof(*t->slot));
	if (!t->slot)
		return JSONPATCH_ERR_NOMEM;
	t->mask = size - 1;
	for (size_t m = obj + 1; m < d->n[obj].next; m = d->n[m].next) {
		struct mslot *s = mtab_find(t, d, &d->n[m]);

		if (!s->first)
			s->first = m;
		s->last = m;
	}
	return 0;
}

static int diff_value(struct dctx *c, size_t ai, size_t bi);

static int diff_object(struct dctx *c, size_t ai, size_t bi)
{
	const struct jdoc *a = c->a, *b = c->b;
	struct mtab ta, tb;
	size_t base = c->path.len;
	int rc;

	rc = mtab_build(&ta, a, ai);
	if (rc < 0)
		return rc;
	rc = mtab_build(&tb, b, bi);
	if (rc < 0)
		goto out_free_ta;
	/* Removals and changes in the old order, then additions in the new:
	 * members do not shift, so any order would do; this one reads well. */
	for (size_t m = ai + 1; m < a->n[ai].next; m = a->n[m].next) {
		const struct mslot *sa = mtab_find(&ta, a, &a->n[m]);
		const struct mslot *sb;

		if (sa->first != m)
			continue; /* a repeated name: its first place speaks for it */
		sb = mtab_find(&tb, b, &a->n[m]);
		path_key(&c->path, a->n[m].key, a->n[m].klen);
		if (!sb->first)
			op_remove(c);
		else
			rc = diff_value(c, sa->last, sb->last);
		c->path.len = base;
		if (rc < 0)
			goto out_free_tb;
	}
	for (size_t m = bi + 1; m < b->n[bi].next; m = b->n[m].next) {
		const struct mslot *sb = mtab_find(&tb, b, &b->n[m]);

		if (sb->first != m || mtab_find(&ta, a, &b->n[m])->first)
			continue;
		path_key(&c->path, b->n[m].key, b->n[m].klen);
		op_value(c, "add", &b->n[sb->last]);
		c->path.len = base;
	}
out_free_tb:
	free(tb.slot);
out_free_ta:
	free(ta.slot);
	return rc;
}

/* The node of the last member named k in object o, or 0. */
static size_t member(const struct jdoc *d, size_t o, const char *k, size_t klen)
{
	size_t found = 0;

	for (size_t m = o + 1; m < d->n[o].next; m = d->n[m].next)
		if (d->n[m].klen == klen && memcmp(d->n[m].key, k, klen) == 0)
			found = m;
	return found;
}

/* A table from identity text to element index, for one keyed array. */
struct itab {
	size_t *slot; /* element index + 1; 0 when empty */
	size_t mask;
};

/* The slot of identity k (a node of kd) in t, which indexes idn of d. */
static size_t *itab_find(const struct itab *t, const struct jdoc *d, const size_t *idn,
			 const struct jdoc *kd, const struct jnode *k)
{
	uint32_t h = fnv(kd->s + k->start, k->len);

	for (size_t p = h & t->mask;; p = (p + 1) & t->mask) {
		size_t *s = &t->slot[p];

		if (!*s || same_text(d, &d->n[idn[*s - 1]], kd, k))
			return s;
	}
}

/* Indexes the identities idn[0..n) of doc d; false when two are equal. */
static int itab_build(struct itab *t, const struct jdoc *d, const size_t *idn, size_t n)
{
	size_t size = 8;

	while (size < n * 2)
		size *= 2;
	t->slot = calloc(size, sizeof(*t->slot));
	if (!t->slot)
		return JSONPATCH_ERR_NOMEM;
	t->mask = size - 1;
	for (size_t i = 0; i < n; i++) {
		size_t *s = itab_find(t, d, idn, d, &d->n[idn[i]]);

		if (*s) {
			free(t->slot);
			t->slot = NULL;
			return 1;
		}
		*s = i + 1;
	}
	return 0;
}

/* Fills idn[i] with the node of the identity member named k of each element
 * of array arr (children el[0..n)); false when one has none, or a
 * container. */
static bool identities(const struct jdoc *d, const size_t *el, size_t n, const char *k,
		       size_t *idn)
{
	for (size_t i = 0; i < n; i++) {
		size_t m;

		if (d->n[el[i]].type != J_OBJ)
			return false;
		m = member(d, el[i], k, strlen(k));
		if (!m || d->n[m].type == J_OBJ || d->n[m].type == J_ARR)
			return false;
		idn[i] = m;
	}
	return true;
}

/* Marks in keep[] the longest increasing subsequence of s[0..n) (distinct
 * values): the elements that stay while the others move. */
static int lis(const size_t *s, size_t n, bool *keep)
{
	size_t *tail = malloc((n + 1) * sizeof(*tail)), *prev = malloc((n + 1) * sizeof(*prev));
	size_t len = 0;

	if (!tail || !prev) {
		free(tail);
		free(prev);
		return JSONPATCH_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		size_t lo = 0, hi = len;

		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (s[tail[mid]] < s[i])
				lo = mid + 1;
			else
				hi = mid;
		}
		prev[i] = lo ? tail[lo - 1] : SIZE_MAX;
		tail[lo] = i;
		if (lo == len)
			len++;
		keep[i] = false;
	}
	for (size_t i = len ? tail[len - 1] : SIZE_MAX; i != SIZE_MAX; i = prev[i])
		keep[i] = true;
	free(tail);
	free(prev);
	return 0;
}

/* Beyond this many element shifts, moving is not worth its CPU time: the
 * array is replaced whole (far beyond any dashboard: 2000 products all
 * reordered). */
#define JSONPATCH_MAX_MOVE_WORK (1u << 22)

/*
 * Arrays whose elements have an identity: ea[0..na) and eb[0..nb) are the
 * elements, ida/idb their identities. In order (RFC 6902 applies each op to
 * what the previous ones left):
 *  1. removals of the elements b lacks, highest index first, so that each
 *     index is still the one in a;
 *  2. moves, to put the survivors in b's order: those on a longest
 *     increasing subsequence of their new positions stay, each other one
 *     goes right after its predecessor in b (its index taken at that time);
 *  3. additions at their index in b, lowest first: everything before each
 *     one is then already in place;
 *  4. the changed elements, at their index in b.
 */
static int diff_keyed(struct dctx *c, size_t bi, const size_t *ea, size_t na, const size_t *eb,
		      size_t nb, const size_t *ida, const size_t *idb, const struct itab *tb)
{
	const struct jdoc *a = c->a, *b = c->b;
	size_t *a_of_b = malloc((nb + 1) * sizeof(*a_of_b)); /* a index + 1, 0: new */
	size_t *seq = malloc((na + 1) * sizeof(*seq));       /* survivors' b index, in a order */
	bool *keep = malloc((na + 1) * sizeof(*keep));
	bool *moved = calloc(nb + 1, sizeof(*moved));
	size_t base = c->path.len, ns = 0, nmoves = 0;
	int rc = JSONPATCH_ERR_NOMEM;

	if (!a_of_b || !seq || !keep || !moved)
		goto out;
	memset(a_of_b, 0, (nb + 1) * sizeof(*a_of_b));
	for (size_t i = 0; i < na; i++) {
		size_t *s = itab_find(tb, b, idb, a, &a->n[ida[i]]);

		if (*s) {
			a_of_b[*s - 1] = i + 1;
			seq[ns++] = *s - 1;
		}
	}
	rc = lis(seq, ns, keep);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < ns; i++) {
		if (!keep[i]) {
			moved[seq[i]] = true;
			nmoves++;
		}
	}
	if (nmoves && nmoves * ns > JSONPATCH_MAX_MOVE_WORK) {
		op_value(c, "replace", &b->n[bi]);
		rc = 0;
		goto out;
	}

	for (size_t i = na; i-- > 0;) {
		if (*itab_find(tb, b, idb, a, &a->n[ida[i]]))
			continue;
		path_index(&c->path, i);
		op_remove(c);
		c->path.len = base;
	}
	/* seq is now the array as it stands: b indexes of the survivors. */
	if (nmoves) {
		size_t prev = SIZE_MAX;

		for (size_t j = 0; j < nb; j++) {
			size_t p, q, t;

			if (!a_of_b[j])
				continue;
			if (moved[j]) {
				for (p = 0; seq[p] != j; p++)
					;
				if (prev == SIZE_MAX) {
					t = 0;
				} else {
					for (q = 0; seq[q] != prev; q++)
						;
					t = p < q ? q : q + 1;
				}
				if (p != t) {
					op_move(c, p, t);
					if (p < t)
						memmove(seq + p, seq + p + 1, (t - p) * sizeof(*seq));
					else
						memmove(seq + t + 1, seq + t, (p - t) * sizeof(*seq));
					seq[t] = j;
				}
			}
			prev = j;
		}
	}
	for (size_t j = 0; j < nb; j++) {
		if (a_of_b[j])
			continue;
		path_index(&c->path, j);
		op_value(c, "add", &b->n[eb[j]]);
		c->path.len = base;
	}
	rc = 0;
	for (size_t j = 0; j < nb && rc == 0; j++) {
		if (!a_of_b[j])
			continue;
		path_index(&c->path, j);
		rc = diff_value(c, ea[a_of_b[j] - 1], eb[j]);
		c->path.len = base;
	}
out:
	free(a_of_b);
	free(seq);
	free(keep);
	free(moved);
	return rc;
}

static int diff_array(struct dctx *c, size_t ai, size_t bi)
{
	static const char *const id_names[] = { "id", "productId", "day" };
	const struct jdoc *a = c->a, *b = c->b;
	size_t na = a->n[ai].count, nb = b->n[bi].count, base = c->path.len;
	size_t *ea = malloc((na + 1) * sizeof(*ea)), *eb = malloc((nb + 1) * sizeof(*eb));
	size_t *ida = malloc((na + 1) * sizeof(*ida)), *idb = malloc((nb + 1) * sizeof(*idb));
	struct itab ta = { NULL, 0 }, tb = { NULL, 0 };
	int rc = JSONPATCH_ERR_NOMEM;

	if (!ea || !eb || !ida || !idb)
		goto out;
	for (size_t m = ai + 1, i = 0; m < a->n[ai].next; m = a->n[m].next)
		ea[i++] = m;
	for (size_t m = bi + 1, j = 0; m < b->n[bi].next; m = b->n[m].next)
		eb[j++] = m;
	if (na && nb) {
		for (size_t k = 0; k < sizeof(id_names) / sizeof(id_names[0]); k++) {
			if (!identities(a, ea, na, id_names[k], ida) ||
			    !identities(b, eb, nb, id_names[k], idb))
				continue;
			rc = itab_build(&ta, a, ida, na);
			if (rc == 0)
				rc = itab_build(&tb, b, idb, nb);
			if (rc < 0)
				goto out;
			if (rc == 0) {
				rc = diff_keyed(c, bi, ea, na, eb, nb, ida, idb, &tb);
				goto out;
			}
			free(ta.slot);
			free(tb.slot);
			ta.slot = tb.slot = NULL;
		}
	}
	/* By index: the common prefix in place, then the tail. */
	rc = 0;
	for (size_t i = 0; i < na && i < nb && rc == 0; i++) {
		path_index(&c->path, i);
		rc = diff_value(c, ea[i], eb[i]);
		c->path.len = base;
	}
	for (size_t i = na; i-- > nb;) {
		path_index(&c->path, i);
		op_remove(c);
		c->path.len = base;
	}
	for (size_t j = na; j < nb; j++) {
		path_index(&c->path, j);
		op_value(c, "add", &b->n[eb[j]]);
		c->path.len = base;
	}
out:
	free(ta.slot);
	free(tb.slot);
	free(ea);
	free(eb);
	free(ida);
	free(idb);
	return rc;
}

/* {"op":"replace","path":"","value":} and a comma */
#define REPLACE_OVERHEAD (sizeof("{\"op\":\"replace\",\"path\":\"\",\"value\":}"))

static int diff_value(struct dctx *c, size_t ai, size_t bi)
{
	const struct jnode *x = &c->a->n[ai], *y = &c->b->n[bi];
	size_t mark, mark_ops;
	int rc;

	if (same_text(c->a, x, c->b, y))
		return 0;
	if (x->type != y->type || (x->type != J_OBJ && x->type != J_ARR)) {
		op_value(c, "replace", y);
		return 0;
	}
	mark = c->out.len;
	mark_ops = c->ops;
	rc = x->type == J_OBJ ? diff_object(c, ai, bi) : diff_array(c, ai, bi);
	if (rc < 0)
		return rc;
	/* One replace of the whole container is shorter: write that instead.
	 * This is what keeps any patch shorter than the new document plus a
	 * few bytes. */
	if (!c->out.oom && c->out.len - mark > REPLACE_OVERHEAD + c->path.len + y->len) {
		c->out.len = mark;
		c->ops = mark_ops;
		op_value(c, "replace", y);
	}
	return 0;
}

int jsonpatch_diff(const char *from, size_t from_len, const char *to, size_t to_len,
		   struct jsonpatch *out)
{
	struct jdoc a, b;
	struct dctx c;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = jdoc_parse(&a, from, from_len);
	if (rc < 0)
		return rc;
	rc = jdoc_parse(&b, to, to_len);
	if (rc < 0)
		goto out_free_a;
	memset(&c, 0, sizeof(c));
	c.a = &a;
	c.b = &b;
	out_char(&c.out, '[');
	rc = diff_value(&c, 0, 0);
	out_put(&c.out, "]", 2); /* and the NUL */
	if (rc == 0 && (c.out.oom || c.path.oom))
		rc = JSONPATCH_ERR_NOMEM;
	free(c.path.s);
	if (rc < 0) {
		free(c.out.s);
		goto out_free_b;
	}
	out->text = c.out.s;
	out->len = c.out.len - 1;
	out->ops = c.ops;
	out->full = out->len >= to_len;
out_free_b:
	jdoc_free(&b);
out_free_a:
	jdoc_free(&a);
	return rc;
}

void jsonpatch_clear(struct jsonpatch *p)
{
	free(p->text);
	memset(p, 0, sizeof(*p));
}

/* ---- apply: a mutable tree ------------------------------------------------- */

struct tn {
	unsigned char type;
	const char *text;   /* scalars: their text, borrowed from a parsed input */
	size_t len;
	const char *key;    /* decoded member name, borrowed */
	size_t klen;
	uint32_t khash;
	struct tn **kid;
	size_t n, cap;
};

static void tn_free(struct tn *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		tn_free(t->kid[i]);
	free(t->kid);
	free(t);
}

static int tn_insert(struct tn *p, size_t at, struct tn *k)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 4;
		struct tn **kid = realloc(p->kid, cap * sizeof(*kid));

		if (!kid)
			return JSONPATCH_ERR_NOMEM;
		p->kid = kid;
		p->cap = cap;
	}
	memmove(p->kid + at + 1, p->kid + at, (p->n - at) * sizeof(*p->kid));
	p->kid[at] = k;
	p->n++;
	return 0;
}

static struct tn *tn_detach(struct tn *p, size_t at)
{
	struct tn *k = p->kid[at];

	memmove(p->kid + at, p->kid + at + 1, (p->n - at - 1) * sizeof(*p->kid));
	p->n--;
	return k;
}

/* The member of object p named k, or SIZE_MAX. */
static size_t tn_find(const struct tn *p, const char *k, size_t klen, uint32_t h)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->kid[i]->khash == h && p->kid[i]->klen == klen &&
		    memcmp(p->kid[i]->key, k, klen) == 0)
			return i;
	return SIZE_MAX;
}

/* Sets member k of object p to v (owned from now on), in place when it
 * exists: JSON.parse's rule for repeated names, and RFC 6902's for add. */
static int tn_set(struct tn *p, const char *k, size_t klen, struct tn *v)
{
	uint32_t h = fnv(k, klen);
	size_t at = tn_find(p, k, klen, h);
	int rc;

	v->key = k;
	v->klen = klen;
	v->khash = h;
	if (at != SIZE_MAX) {
		tn_free(p->kid[at]);
		p->kid[at] = v;
		return 0;
	}
	rc = tn_insert(p, p->n, v);
	if (rc < 0)
		tn_free(v);
	return rc;
}

static int tn_build(const struct jdoc *d, size_t i, struct tn **out)
{
	const struct jnode *n = &d->n[i];
	struct tn *t = calloc(1, sizeof(*t));
	int rc = 0;

	if (!t)
		return JSONPATCH_ERR_NOMEM;
	t->type = n->type;
	t->text = d->s + n->start;
	t->len = n->len;
	for (size_t m = i + 1; m < n->next && rc == 0; m = d->n[m].next) {
		struct tn *k;

		rc = tn_build(d, m, &k);
		if (rc < 0)
			break;
		if (n->type == J_OBJ)
			rc = tn_set(t, d->n[m].key, d->n[m].klen, k);
		else if ((rc = tn_insert(t, t->n, k)) < 0)
			tn_free(k);
	}
	if (rc < 0) {
		tn_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

static struct tn *tn_copy(const struct tn *t)
{
	struct tn *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	*c = *t;
	c->kid = NULL;
	c->n = c->cap = 0;
	for (size_t i = 0; i < t->n; i++) {
		struct tn *k = tn_copy(t->kid[i]);

		if (!k || tn_insert(c, c->n, k) < 0) {
			tn_free(k);
			tn_free(c);
			return NULL;
		}
	}
	return c;
}

static size_t tn_depth(const struct tn *t)
{
	size_t d = 0;

	for (size_t i = 0; i < t->n; i++) {
		size_t k = tn_depth(t->kid[i]);

		if (k > d)
			d = k;
	}
	return d + 1;
}

static bool str_equal(const char *x, size_t xl, const char *y, size_t yl)
{
	char *dx, *dy;
	size_t nx, ny;
	bool eq;

	if (xl == yl && memcmp(x, y, xl) == 0)
		return true;
	if (!memchr(x, '\\', xl) && !memchr(y, '\\', yl))
		return false;
	dx = malloc(xl);
	dy = malloc(yl);
	if (!dx || !dy) {
		free(dx);
		free(dy);
		return false;
	}
	nx = decode_string(x, xl, dx);
	ny = decode_string(y, yl, dy);
	eq = nx == ny && memcmp(dx, dy, nx) == 0;
	free(dx);
	free(dy);
	return eq;
}

static bool tn_equal(const struct tn *x, const struct tn *y)
{
	if (x->type != y->type || x->n != y->n)
		return false;
	switch (x->type) {
	case J_STR:
		return str_equal(x->text, x->len, y->text, y->len);
	case J_NUM:
	case J_LIT:
		return x->len == y->len && memcmp(x->text, y->text, x->len) == 0;
	case J_ARR:
		for (size_t i = 0; i < x->n; i++)
			if (!tn_equal(x->kid[i], y->kid[i]))
				return false;
		return true;
	default:
		for (size_t i = 0; i < x->n; i++) {
			const struct tn *k = x->kid[i];
			size_t at = tn_find(y, k->key, k->klen, k->khash);

			if (at == SIZE_MAX || !tn_equal(k, y->kid[at]))
				return false;
		}
		return true;
	}
}

static void tn_write(struct out *o, const struct tn *t)
{
	if (t->type != J_OBJ && t->type != J_ARR) {
		put_compact(o, t->text, t->len);
		return;
	}
	out_char(o, t->type == J_OBJ ? '{' : '[');
	for (size_t i = 0; i < t->n; i++) {
		if (i)
			out_char(o, ',');
		if (t->type == J_OBJ) {
			out_char(o, '"');
			json_str(o, t->kid[i]->key, t->kid[i]->klen);
			out_str(o, "\":");
		}
		tn_write(o, t->kid[i]);
	}
	out_char(o, t->type == J_OBJ ? '}' : ']');
}

/* A JSON Pointer (RFC 6901), decoded from its JSON string: its reference
 * tokens, unescaped in place. */
struct ptr {
	char *buf;     /* in the apply's names arena: member names added to the
			* document point here, so it lives as long as the tree */
	size_t ntok;
	char **tok;
	size_t *tlen;
};

/* Room for every path and from of one patch, decoded: never more than the
 * patch's length. */
struct names {
	char *buf;
	size_t used;
};

static void ptr_free(struct ptr *p)
{
	free(p->tok);
	free(p->tlen);
}

static int ptr_parse(const struct jdoc *d, size_t node, struct names *names, struct ptr *p)
{
	const struct jnode *n = &d->n[node];
	size_t len, w = 0;

	memset(p, 0, sizeof(*p));
	if (n->type != J_STR)
		return JSONPATCH_ERR_PATCH;
	p->buf = names->buf + names->used;
	p->tok = malloc(n->len * sizeof(*p->tok));
	p->tlen = malloc(n->len * sizeof(*p->tlen));
	if (!p->tok || !p->tlen) {
		ptr_free(p);
		return JSONPATCH_ERR_NOMEM;
	}
	len = decode_string(d->s + n->start, n->len, p->buf);
	names->used += len;
	if (len && p->buf[0] != '/') {
		ptr_free(p);
		return JSONPATCH_ERR_PATH;
	}
	for (size_t i = 0; i < len; i++) {
		char ch = p->buf[i];

		if (ch == '/') {
			if (p->ntok)
				p->tlen[p->ntok - 1] = (size_t)(p->buf + w - p->tok[p->ntok - 1]);
			p->tok[p->ntok++] = p->buf + w;
			continue;
		}
		if (ch == '~') {
			if (i + 1 >= len || (p->buf[i + 1] != '0' && p->buf[i + 1] != '1')) {
				ptr_free(p);
				return JSONPATCH_ERR_PATH;
			}
			ch = p->buf[++i] == '0' ? '~' : '/';
		}
		p->buf[w++] = ch;
	}
	if (p->ntok)
		p->tlen[p->ntok - 1] = (size_t)(p->buf + w - p->tok[p->ntok - 1]);
	return 0;
}

/* An array index token: "0" or digits without a leading zero; "-" (the
 * end) when dash_ok. */
static bool index_of(const char *t, size_t len, size_t n, bool dash_ok, size_t *out)
{
	size_t v = 0;

	if (dash_ok && len == 1 && t[0] == '-') {
		*out = n;
		return true;
	}
	if (!len || len > 18 || (t[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (t[i] < '0' || t[i] > '9')
			return false;
		v = v * 10 + (size_t)(t[i] - '0');
	}
	*out = v;
	return v < n || (dash_ok && v == n);
}

/* The container that holds the pointer's last token (its ntok - 1 first
 * tokens resolved from root), or NULL. */
static struct tn *resolve(struct tn *root, const struct ptr *p, size_t ntok)
{
	struct tn *t = root;

	for (size_t i = 0; i < ntok && t; i++) {
		size_t at;

		if (t->type == J_OBJ) {
			at = tn_find(t, p->tok[i], p->tlen[i], fnv(p->tok[i], p->tlen[i]));
			t = at == SIZE_MAX ? NULL : t->kid[at];
		} else if (t->type == J_ARR && index_of(p->tok[i], p->tlen[i], t->n, false, &at)) {
			t = t->kid[at];
		} else {
			t = NULL;
		}
	}
	return t;
}

/* Where the pointer's target sits in its parent: *parent and *at, or an
 * error when it does not exist. */
static int locate(struct tn *root, const struct ptr *p, struct tn **parent, size_t *at)
{
	struct tn *t = resolve(root, p, p->ntok - 1);
	const char *k = p->tok[p->ntok - 1];
	size_t klen = p->tlen[p->ntok - 1];

	if (!t)
		return JSONPATCH_ERR_PATH;
	if (t->type == J_OBJ)
		*at = tn_find(t, k, klen, fnv(k, klen));
	else if (t->type != J_ARR || !index_of(k, klen, t->n, false, at))
		*at = SIZE_MAX;
	if (*at == SIZE_MAX)
		return JSONPATCH_ERR_PATH;
	*parent = t;
	return 0;
}

/* RFC 6902 4.1 add, taking v (freed on error). */
static int do_add(struct tn **root, const struct ptr *p, struct tn *v)
{
	struct tn *t;
	size_t at;
	int rc = JSONPATCH_ERR_PATH;

	if (p->ntok + tn_depth(v) > 2 * JSONPATCH_MAX_DEPTH) {
		rc = JSONPATCH_ERR_DEPTH;
		goto out_free;
	}
	if (!p->ntok) {
		tn_free(*root);
		*root = v;
		return 0;
	}
	t = resolve(*root, p, p->ntok - 1);
	if (!t)
		goto out_free;
	if (t->type == J_OBJ)
		return tn_set(t, p->tok[p->ntok - 1], p->tlen[p->ntok - 1], v);
	if (t->type != J_ARR || !index_of(p->tok[p->ntok - 1], p->tlen[p->ntok - 1], t->n, true, &at))
		goto out_free;
	rc = tn_insert(t, at, v);
	if (rc == 0)
		return 0;
out_free:
	tn_free(v);
	return rc;
}

static bool ptr_equal(const struct ptr *x, const struct ptr *y, size_t ntok)
{
	for (size_t i = 0; i < ntok; i++)
		if (x->tlen[i] != y->tlen[i] || memcmp(x->tok[i], y->tok[i], x->tlen[i]) != 0)
			return false;
	return true;
}

/* One operation: op is the patch's element node. */
static int apply_op(struct tn **root, const struct jdoc *pd, size_t op, struct names *names)
{
	size_t m_op, m_path, m_from, m_value;
	struct ptr path, from;
	struct tn *v = NULL, *parent = NULL;
	const struct jnode *o;
	size_t at = 0;
	int rc;

	if (pd->n[op].type != J_OBJ)
		return JSONPATCH_ERR_PATCH;
	m_op = member(pd, op, "op", 2);
	m_path = member(pd, op, "path", 4);
	m_from = member(pd, op, "from", 4);
	m_value = member(pd, op, "value", 5);
	if (!m_op || !m_path || pd->n[m_op].type != J_STR)
		return JSONPATCH_ERR_PATCH;
	o = &pd->n[m_op];
#define IS_OP(name) (o->len == strlen(name) + 2 && memcmp(pd->s + o->start + 1, name, o->len - 2) == 0)
	rc = ptr_parse(pd, m_path, names, &path);
	if (rc < 0)
		return rc;
	memset(&from, 0, sizeof(from));
	if (IS_OP("add") || IS_OP("replace") || IS_OP("test")) {
		if (!m_value) {
			rc = JSONPATCH_ERR_PATCH;
			goto out;
		}
		rc = tn_build(pd, m_value, &v);
		if (rc < 0)
			goto out;
		if (IS_OP("add")) {
			rc = do_add(root, &path, v);
		} else if (IS_OP("test")) {
			struct tn *t = path.ntok ? NULL : *root;

			if (path.ntok && locate(*root, &path, &parent, &at) == 0)
				t = parent->kid[at];
			rc = !t ? JSONPATCH_ERR_PATH : tn_equal(t, v) ? 0 : JSONPATCH_ERR_TEST;
			tn_free(v);
		} else if (!path.ntok) {
			tn_free(*root);
			*root = v;
		} else if ((rc = locate(*root, &path, &parent, &at)) == 0) {
			v->key = parent->kid[at]->key;
			v->klen = parent->kid[at]->klen;
			v->khash = parent->kid[at]->khash;
			tn_free(parent->kid[at]);
			parent->kid[at] = v;
		} else {
			tn_free(v);
		}
	} else if (IS_OP("remove")) {
		rc = path.ntok ? locate(*root, &path, &parent, &at) : JSONPATCH_ERR_PATH;
		if (rc == 0)
			tn_free(tn_detach(parent, at));
	} else if (IS_OP("move") || IS_OP("copy")) {
		if (!m_from) {
			rc = JSONPATCH_ERR_PATCH;
			goto out;
		}
		rc = ptr_parse(pd, m_from, names, &from);
		if (rc < 0)
			goto out;
		if (from.ntok) {
			rc = locate(*root, &from, &parent, &at);
			if (rc < 0)
				goto out;
			v = parent->kid[at];
		} else {
			v = *root;
		}
		if (IS_OP("copy")) {
			v = tn_copy(v);
			rc = v ? do_add(root, &path, v) : JSONPATCH_ERR_NOMEM;
		} else if (from.ntok == path.ntok && ptr_equal(&from, &path, path.ntok)) {
			rc = 0; /* 4.4: a move onto itself changes nothing */
		} else if (from.ntok <= path.ntok && ptr_equal(&from, &path, from.ntok)) {
			rc = JSONPATCH_ERR_PATH; /* into its own child */
		} else {
			tn_detach(parent, at);
			rc = do_add(root, &path, v);
		}
	} else {
		rc = JSONPATCH_ERR_PATCH;
	}
#undef IS_OP
out:
	ptr_free(&path);
	ptr_free(&from);
	return rc;
}

int jsonpatch_apply(const char *doc, size_t doc_len, const char *patch, size_t patch_len,
		    char **out, size_t *out_len)
{
	struct jdoc dd, pd;
	struct tn *root = NULL;
	struct out o = { NULL, 0, 0, false };
	struct names names = { NULL, 0 };
	int rc;

	rc = jdoc_parse(&dd, doc, doc_len);
	if (rc < 0)
		return rc;
	rc = jdoc_parse(&pd, patch, patch_len);
	if (rc < 0)
		goto out_free_dd;
	if (pd.n[0].type != J_ARR) {
		rc = JSONPATCH_ERR_PATCH;
		goto out_free_pd;
	}
	names.buf = malloc(patch_len);
	if (!names.buf) {
		rc = JSONPATCH_ERR_NOMEM;
		goto out_free_pd;
	}
	rc = tn_build(&dd, 0, &root);
	for (size_t m = 1; m < pd.nn && rc == 0; m = pd.n[m].next)
		rc = apply_op(&root, &pd, m, &names);
	if (rc == 0) {
		tn_write(&o, root);
		out_put(&o, "", 1);
		if (o.oom) {
			free(o.s);
			rc = JSONPATCH_ERR_NOMEM;
		} else {
			*out = o.s;
			*out_len = o.len - 1;
		}
	}
	tn_free(root);
	free(names.buf);
out_free_pd:
	jdoc_free(&pd);
out_free_dd:
	jdoc_free(&dd);
	return rc;
}

bool jsonpatch_equal(const char *a, size_t a_len, const char *b, size_t b_len)
{
	struct jdoc da, db;
	struct tn *ta = NULL, *tb = NULL;
	bool eq = false;

	if (jdoc_parse(&da, a, a_len) < 0)
		return false;
	if (jdoc_parse(&db, b, b_len) < 0)
		goto out_free_da;
	if (tn_build(&da, 0, &ta) == 0 && tn_build(&db, 0, &tb) == 0)
		eq = tn_equal(ta, tb);
	tn_free(ta);
	tn_free(tb);
	jdoc_free(&db);
out_free_da:
	jdoc_free(&da);
	return eq;
}

const char *jsonpatch_error_message(int err)
{
	switch (err) {
	case 0: return "ok";
	case JSONPATCH_ERR_NOMEM: return "out of memory";
	case JSONPATCH_ERR_JSON: return "not valid JSON";
	case JSONPATCH_ERR_DEPTH: return "nested too deep";
	case JSONPATCH_ERR_PATCH: return "not a JSON Patch";
	case JSONPATCH_ERR_PATH: return "path not found";
	case JSONPATCH_ERR_TEST: return "test failed";
	default: return "unknown error";
	}
}
