#include "autoconfig.h"

#include "jsonpatch.h"
#include "jsontext.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- diff ----------------------------------------------------------------- */

struct dctx {
	const struct jsontext *a, *b;
	struct jsontext_out out;    /* the patch */
	struct jsontext_out path;   /* the current JSON Pointer, ~ and / escaped */
	size_t ops;
};

static void path_key(struct jsontext_out *p, const char *k, size_t klen)
{
	size_t run = 0;

	jsontext_out_char(p, '/');
	for (size_t i = 0; i < klen; i++) {
		if (k[i] != '~' && k[i] != '/')
			continue;
		jsontext_out_put(p, k + run, i - run);
		jsontext_out_str(p, k[i] == '~' ? "~0" : "~1");
		run = i + 1;
	}
	jsontext_out_put(p, k + run, klen - run);
}

static void path_index(struct jsontext_out *p, size_t i)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "/%zu", i);

	jsontext_out_put(p, num, (size_t)n);
}

static void op_begin(struct dctx *c, const char *op)
{
	if (c->ops++)
		jsontext_out_char(&c->out, ',');
	jsontext_out_str(&c->out, "{\"op\":\"");
	jsontext_out_str(&c->out, op);
	jsontext_out_str(&c->out, "\",\"path\":\"");
	jsontext_out_string(&c->out, c->path.s, c->path.len);
	jsontext_out_char(&c->out, '"');
}

/* add or replace at the current path, with b's node v as the value */
static void op_value(struct dctx *c, const char *op, const struct jsontext_node *v)
{
	op_begin(c, op);
	jsontext_out_str(&c->out, ",\"value\":");
	jsontext_out_compact(&c->out, c->b->s + v->start, v->len);
	jsontext_out_char(&c->out, '}');
}

static void op_remove(struct dctx *c)
{
	op_begin(c, "remove");
	jsontext_out_char(&c->out, '}');
}

/* move from the current path + /from to the current path + /to */
static void op_move(struct dctx *c, size_t from, size_t to)
{
	size_t base = c->path.len;

	if (c->ops++)
		jsontext_out_char(&c->out, ',');
	jsontext_out_str(&c->out, "{\"op\":\"move\",\"from\":\"");
	path_index(&c->path, from);
	jsontext_out_string(&c->out, c->path.s, c->path.len);
	c->path.len = base;
	jsontext_out_str(&c->out, "\",\"path\":\"");
	path_index(&c->path, to);
	jsontext_out_string(&c->out, c->path.s, c->path.len);
	c->path.len = base;
	jsontext_out_str(&c->out, "\"}");
}

static bool same_text(const struct jsontext *a, const struct jsontext_node *x,
		      const struct jsontext *b, const struct jsontext_node *y)
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

static bool same_key(const struct jsontext_node *x, const struct jsontext_node *y)
{
	return x->khash == y->khash && x->klen == y->klen && memcmp(x->key, y->key, x->klen) == 0;
}

static struct mslot *mtab_find(const struct mtab *t, const struct jsontext *d,
			       const struct jsontext_node *k)
{
	for (size_t h = k->khash & t->mask;; h = (h + 1) & t->mask) {
		struct mslot *s = &t->slot[h];

		if (!s->first || same_key(&d->n[s->first], k))
			return s;
	}
}

static int mtab_build(struct mtab *t, const struct jsontext *d, size_t obj)
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
	const struct jsontext *a = c->a, *b = c->b;
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

/* A table from identity text to element index, for one keyed array. */
struct itab {
	size_t *slot; /* element index + 1; 0 when empty */
	size_t mask;
};

/* The slot of identity k (a node of kd) in t, which indexes idn of d. */
static size_t *itab_find(const struct itab *t, const struct jsontext *d, const size_t *idn,
			 const struct jsontext *kd, const struct jsontext_node *k)
{
	uint32_t h = jsontext_hash(kd->s + k->start, k->len);

	for (size_t p = h & t->mask;; p = (p + 1) & t->mask) {
		size_t *s = &t->slot[p];

		if (!*s || same_text(d, &d->n[idn[*s - 1]], kd, k))
			return s;
	}
}

/* Indexes the identities idn[0..n) of doc d; false when two are equal. */
static int itab_build(struct itab *t, const struct jsontext *d, const size_t *idn, size_t n)
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
static bool identities(const struct jsontext *d, const size_t *el, size_t n, const char *k,
		       size_t *idn)
{
	for (size_t i = 0; i < n; i++) {
		size_t m;

		if (d->n[el[i]].type != JSONTEXT_OBJ)
			return false;
		m = jsontext_member(d, el[i], k, strlen(k));
		if (!m || d->n[m].type == JSONTEXT_OBJ || d->n[m].type == JSONTEXT_ARR)
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
	const struct jsontext *a = c->a, *b = c->b;
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
	const struct jsontext *a = c->a, *b = c->b;
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
	const struct jsontext_node *x = &c->a->n[ai], *y = &c->b->n[bi];
	size_t mark, mark_ops;
	int rc;

	if (same_text(c->a, x, c->b, y))
		return 0;
	if (x->type != y->type || (x->type != JSONTEXT_OBJ && x->type != JSONTEXT_ARR)) {
		op_value(c, "replace", y);
		return 0;
	}
	mark = c->out.len;
	mark_ops = c->ops;
	rc = x->type == JSONTEXT_OBJ ? diff_object(c, ai, bi) : diff_array(c, ai, bi);
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
	struct jsontext a, b;
	struct dctx c;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = jsontext_parse(&a, from, from_len);
	if (rc < 0)
		return rc;
	rc = jsontext_parse(&b, to, to_len);
	if (rc < 0)
		goto out_free_a;
	memset(&c, 0, sizeof(c));
	c.a = &a;
	c.b = &b;
	jsontext_out_char(&c.out, '[');
	rc = diff_value(&c, 0, 0);
	jsontext_out_put(&c.out, "]", 2); /* and the NUL */
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
	jsontext_free(&b);
out_free_a:
	jsontext_free(&a);
	return rc;
}

void jsonpatch_clear(struct jsonpatch *p)
{
	free(p->text);
	memset(p, 0, sizeof(*p));
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
	case JSONPATCH_ERR_SIZE: return "too large or too costly to apply";
	default: return "unknown error";
	}
}
