#include "autoconfig.h"

#include "jsonvalue.h"
#include "jsonpatch.h"
#include "jsontext.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- a mutable tree ---------------------------------------------------------- */

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

/* What an apply has spent, against struct jsonvalue_limits: element steps
 * (a member compared, a node made, eight elements moved: a memmove of
 * pointers costs far less than a comparison), nodes made, and the
 * text of scalars and names they carry (what the output will hold). Once
 * one passes its cap, lookups find nothing and the apply fails with
 * JSONPATCH_ERR_SIZE: a hostile patch (a "copy" of the root into itself,
 * doubling it at each operation; thousands of operations on a wide object)
 * ends early instead of holding the caller. */
struct work {
	size_t steps, nodes, text;
	struct jsonvalue_limits max;
};

static bool over(const struct work *w)
{
	return w->steps > w->max.steps || w->nodes > w->max.nodes || w->text > w->max.text;
}

static void spend_node(struct work *w, const struct tn *t)
{
	w->steps++;
	w->nodes++;
	w->text += t->klen + (t->type == JSONTEXT_OBJ || t->type == JSONTEXT_ARR ? 0 : t->len);
}

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

/* The member of object p named k, or SIZE_MAX (also when w is spent). */
static size_t tn_find(const struct tn *p, const char *k, size_t klen, uint32_t h, struct work *w)
{
	w->steps += p->n;
	if (over(w))
		return SIZE_MAX;
	for (size_t i = 0; i < p->n; i++)
		if (p->kid[i]->khash == h && p->kid[i]->klen == klen &&
		    memcmp(p->kid[i]->key, k, klen) == 0)
			return i;
	return SIZE_MAX;
}

/* Sets member k of object p to v (owned from now on), in place when it
 * exists: JSON.parse's rule for repeated names, and RFC 6902's for add. */
static int tn_set(struct tn *p, const char *k, size_t klen, struct tn *v, struct work *w)
{
	uint32_t h = jsontext_hash(k, klen);
	size_t at = tn_find(p, k, klen, h, w);
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

/* Repeated member names in a freshly built object: the last value wins,
 * at the place of the first (JSON.parse). One pass with a hash table of
 * the names seen, so that a wide object costs its width, not its square. */
static int tn_dedupe(struct tn *t)
{
	size_t size = 16, w = 0;
	size_t *slot;

	while (size < 2 * t->n)
		size *= 2;
	slot = calloc(size, sizeof(*slot)); /* kid index + 1; 0: empty */
	if (!slot)
		return JSONPATCH_ERR_NOMEM;
	for (size_t i = 0; i < t->n; i++) {
		struct tn *k = t->kid[i];
		size_t h = k->khash & (size - 1);

		for (; slot[h]; h = (h + 1) & (size - 1)) {
			struct tn *o = t->kid[slot[h] - 1];

			if (o->khash == k->khash && o->klen == k->klen &&
			    memcmp(o->key, k->key, k->klen) == 0)
				break;
		}
		if (slot[h]) {
			/* Kept nodes sit at w' < w: o is one of them. */
			tn_free(t->kid[slot[h] - 1]);
			t->kid[slot[h] - 1] = k;
			continue;
		}
		slot[h] = w + 1;
		t->kid[w++] = k;
	}
	t->n = w;
	free(slot);
	return 0;
}

static int tn_build(const struct jsontext *d, size_t i, struct tn **out, struct work *w)
{
	const struct jsontext_node *n = &d->n[i];
	struct tn *t = calloc(1, sizeof(*t));
	int rc = 0;

	if (!t)
		return JSONPATCH_ERR_NOMEM;
	t->type = n->type;
	t->text = d->s + n->start;
	t->len = n->len;
	spend_node(w, t);
	for (size_t m = i + 1; m < n->next && rc == 0; m = d->n[m].next) {
		struct tn *k;

		rc = tn_build(d, m, &k, w);
		if (rc < 0)
			break;
		if (n->type == JSONTEXT_OBJ) {
			k->key = d->n[m].key;
			k->klen = d->n[m].klen;
			k->khash = jsontext_hash(k->key, k->klen);
			w->text += k->klen;
		}
		if ((rc = tn_insert(t, t->n, k)) < 0)
			tn_free(k);
	}
	if (rc == 0 && n->type == JSONTEXT_OBJ)
		rc = tn_dedupe(t);
	if (rc < 0) {
		tn_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

static struct tn *tn_copy(const struct tn *t, struct work *w)
{
	struct tn *c;

	spend_node(w, t);
	if (over(w) || !(c = malloc(sizeof(*c))))
		return NULL;
	*c = *t;
	c->kid = NULL;
	c->n = c->cap = 0;
	for (size_t i = 0; i < t->n; i++) {
		struct tn *k = tn_copy(t->kid[i], w);

		if (!k || tn_insert(c, c->n, k) < 0) {
			tn_free(k);
			tn_free(c);
			return NULL;
		}
	}
	return c;
}

/* Nesting of containers: 0 for a scalar, 1 for [] or {"a":1}. */
static size_t tn_depth(const struct tn *t)
{
	size_t d = 0;

	if (t->type != JSONTEXT_OBJ && t->type != JSONTEXT_ARR)
		return 0;
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
	nx = jsontext_decode_string(x, xl, dx);
	ny = jsontext_decode_string(y, yl, dy);
	eq = nx == ny && memcmp(dx, dy, nx) == 0;
	free(dx);
	free(dy);
	return eq;
}

static bool tn_equal(const struct tn *x, const struct tn *y, struct work *w)
{
	if (x->type != y->type || x->n != y->n)
		return false;
	switch (x->type) {
	case JSONTEXT_STR:
		return str_equal(x->text, x->len, y->text, y->len);
	case JSONTEXT_NUM:
	case JSONTEXT_LIT:
		return x->len == y->len && memcmp(x->text, y->text, x->len) == 0;
	case JSONTEXT_ARR:
		for (size_t i = 0; i < x->n; i++)
			if (!tn_equal(x->kid[i], y->kid[i], w))
				return false;
		return true;
	default:
		for (size_t i = 0; i < x->n; i++) {
			const struct tn *k = x->kid[i];
			size_t at = tn_find(y, k->key, k->klen, k->khash, w);

			if (at == SIZE_MAX || !tn_equal(k, y->kid[at], w))
				return false;
		}
		return true;
	}
}

static void tn_write(struct jsontext_out *o, const struct tn *t)
{
	if (t->type != JSONTEXT_OBJ && t->type != JSONTEXT_ARR) {
		jsontext_out_compact(o, t->text, t->len);
		return;
	}
	jsontext_out_char(o, t->type == JSONTEXT_OBJ ? '{' : '[');
	for (size_t i = 0; i < t->n; i++) {
		if (i)
			jsontext_out_char(o, ',');
		if (t->type == JSONTEXT_OBJ) {
			jsontext_out_char(o, '"');
			jsontext_out_string(o, t->kid[i]->key, t->kid[i]->klen);
			jsontext_out_str(o, "\":");
		}
		tn_write(o, t->kid[i]);
	}
	jsontext_out_char(o, t->type == JSONTEXT_OBJ ? '}' : ']');
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

/* Safe to call twice: a failed ptr_parse frees, and so does its caller's
 * way out. */
static void ptr_free(struct ptr *p)
{
	free(p->tok);
	free(p->tlen);
	p->tok = NULL;
	p->tlen = NULL;
}

static int ptr_parse(const struct jsontext *d, size_t node, struct names *names, struct ptr *p)
{
	const struct jsontext_node *n = &d->n[node];
	size_t len, w = 0;

	memset(p, 0, sizeof(*p));
	if (n->type != JSONTEXT_STR)
		return JSONPATCH_ERR_PATCH;
	p->buf = names->buf + names->used;
	p->tok = malloc(n->len * sizeof(*p->tok));
	p->tlen = malloc(n->len * sizeof(*p->tlen));
	if (!p->tok || !p->tlen) {
		ptr_free(p);
		return JSONPATCH_ERR_NOMEM;
	}
	len = jsontext_decode_string(d->s + n->start, n->len, p->buf);
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
static struct tn *resolve(struct tn *root, const struct ptr *p, size_t ntok, struct work *w)
{
	struct tn *t = root;

	for (size_t i = 0; i < ntok && t; i++) {
		size_t at;

		if (t->type == JSONTEXT_OBJ) {
			at = tn_find(t, p->tok[i], p->tlen[i], jsontext_hash(p->tok[i], p->tlen[i]), w);
			t = at == SIZE_MAX ? NULL : t->kid[at];
		} else if (t->type == JSONTEXT_ARR && index_of(p->tok[i], p->tlen[i], t->n, false, &at)) {
			t = t->kid[at];
		} else {
			t = NULL;
		}
	}
	return t;
}

/* Where the pointer's target sits in its parent: *parent and *at, or an
 * error when it does not exist. */
static int locate(struct tn *root, const struct ptr *p, struct tn **parent, size_t *at,
		  struct work *w)
{
	struct tn *t = resolve(root, p, p->ntok - 1, w);
	const char *k = p->tok[p->ntok - 1];
	size_t klen = p->tlen[p->ntok - 1];

	if (!t)
		return JSONPATCH_ERR_PATH;
	if (t->type == JSONTEXT_OBJ)
		*at = tn_find(t, k, klen, jsontext_hash(k, klen), w);
	else if (t->type != JSONTEXT_ARR || !index_of(k, klen, t->n, false, at))
		*at = SIZE_MAX;
	if (*at == SIZE_MAX)
		return JSONPATCH_ERR_PATH;
	*parent = t;
	return 0;
}

/* RFC 6902 4.1 add, taking v (freed on error). */
static int do_add(struct tn **root, const struct ptr *p, struct tn *v, struct work *w)
{
	struct tn *t;
	size_t at;
	int rc = JSONPATCH_ERR_PATH;

	if (p->ntok + tn_depth(v) > w->max.depth) {
		rc = JSONPATCH_ERR_DEPTH;
		goto out_free;
	}
	if (!p->ntok) {
		tn_free(*root);
		*root = v;
		return 0;
	}
	t = resolve(*root, p, p->ntok - 1, w);
	if (!t)
		goto out_free;
	if (t->type == JSONTEXT_OBJ)
		return tn_set(t, p->tok[p->ntok - 1], p->tlen[p->ntok - 1], v, w);
	if (t->type != JSONTEXT_ARR ||
	    !index_of(p->tok[p->ntok - 1], p->tlen[p->ntok - 1], t->n, true, &at))
		goto out_free;
	w->steps += (t->n - at) / 8; /* the elements moved up: one memmove */
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
static int apply_op(struct tn **root, const struct jsontext *pd, size_t op, struct names *names,
		    struct work *w)
{
	size_t m_op, m_path, m_from, m_value;
	struct ptr path, from;
	struct tn *v = NULL, *parent = NULL;
	const struct jsontext_node *o;
	size_t at = 0;
	int rc;

	if (pd->n[op].type != JSONTEXT_OBJ)
		return JSONPATCH_ERR_PATCH;
	m_op = jsontext_member(pd, op, "op", 2);
	m_path = jsontext_member(pd, op, "path", 4);
	m_from = jsontext_member(pd, op, "from", 4);
	m_value = jsontext_member(pd, op, "value", 5);
	if (!m_op || !m_path || pd->n[m_op].type != JSONTEXT_STR)
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
		rc = tn_build(pd, m_value, &v, w);
		if (rc < 0)
			goto out;
		if (IS_OP("add")) {
			rc = do_add(root, &path, v, w);
		} else if (IS_OP("test")) {
			struct tn *t = path.ntok ? NULL : *root;

			if (path.ntok && locate(*root, &path, &parent, &at, w) == 0)
				t = parent->kid[at];
			rc = !t ? JSONPATCH_ERR_PATH : tn_equal(t, v, w) ? 0 : JSONPATCH_ERR_TEST;
			tn_free(v);
		} else if (!path.ntok) {
			tn_free(*root);
			*root = v;
		} else if (path.ntok + tn_depth(v) > w->max.depth) {
			tn_free(v);
			rc = JSONPATCH_ERR_DEPTH;
		} else if ((rc = locate(*root, &path, &parent, &at, w)) == 0) {
			v->key = parent->kid[at]->key;
			v->klen = parent->kid[at]->klen;
			v->khash = parent->kid[at]->khash;
			tn_free(parent->kid[at]);
			parent->kid[at] = v;
		} else {
			tn_free(v);
		}
	} else if (IS_OP("remove")) {
		rc = path.ntok ? locate(*root, &path, &parent, &at, w) : JSONPATCH_ERR_PATH;
		if (rc == 0) {
			w->steps += (parent->n - at) / 8;
			tn_free(tn_detach(parent, at));
		}
	} else if (IS_OP("move") || IS_OP("copy")) {
		if (!m_from) {
			rc = JSONPATCH_ERR_PATCH;
			goto out;
		}
		rc = ptr_parse(pd, m_from, names, &from);
		if (rc < 0)
			goto out;
		if (from.ntok) {
			rc = locate(*root, &from, &parent, &at, w);
			if (rc < 0)
				goto out;
			v = parent->kid[at];
		} else {
			v = *root;
		}
		if (IS_OP("copy")) {
			v = tn_copy(v, w);
			rc = v ? do_add(root, &path, v, w) : over(w) ? JSONPATCH_ERR_SIZE : JSONPATCH_ERR_NOMEM;
		} else if (from.ntok == path.ntok && ptr_equal(&from, &path, path.ntok)) {
			rc = 0; /* 4.4: a move onto itself changes nothing */
		} else if (from.ntok <= path.ntok && ptr_equal(&from, &path, from.ntok)) {
			rc = JSONPATCH_ERR_PATH; /* into its own child */
		} else {
			w->steps += (parent->n - at) / 8;
			tn_detach(parent, at);
			rc = do_add(root, &path, v, w);
		}
	} else {
		rc = JSONPATCH_ERR_PATCH;
	}
#undef IS_OP
out:
	ptr_free(&path);
	ptr_free(&from);
	/* A spent budget shows as a path not found or a failed test: say
	 * what it was. */
	return over(w) ? JSONPATCH_ERR_SIZE : rc;
}

int jsonvalue_apply(const char *doc, size_t doc_len, const char *patch, size_t patch_len,
		    char **out, size_t *out_len)
{
	static const struct jsonvalue_limits none = {
		SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX, 2 * JSONTEXT_MAX_DEPTH
	};

	return jsonvalue_apply_limited(doc, doc_len, patch, patch_len, &none, out, out_len);
}

int jsonvalue_apply_limited(const char *doc, size_t doc_len, const char *patch, size_t patch_len,
			    const struct jsonvalue_limits *lim, char **out, size_t *out_len)
{
	struct work w = { 0, 0, 0, *lim };
	size_t ops = 0;
	struct jsontext dd, pd;
	struct tn *root = NULL;
	struct jsontext_out o = { NULL, 0, 0, false };
	struct names names = { NULL, 0 };
	int rc;

	rc = jsontext_parse(&dd, doc, doc_len);
	if (rc < 0)
		return rc;
	rc = jsontext_parse(&pd, patch, patch_len);
	if (rc < 0)
		goto out_free_dd;
	if (pd.n[0].type != JSONTEXT_ARR) {
		rc = JSONPATCH_ERR_PATCH;
		goto out_free_pd;
	}
	names.buf = malloc(patch_len);
	if (!names.buf) {
		rc = JSONPATCH_ERR_NOMEM;
		goto out_free_pd;
	}
	rc = tn_build(&dd, 0, &root, &w);
	if (rc == 0 && over(&w))
		rc = JSONPATCH_ERR_SIZE;
	for (size_t m = 1; m < pd.nn && rc == 0; m = pd.n[m].next)
		rc = ++ops > lim->ops ? JSONPATCH_ERR_SIZE : apply_op(&root, &pd, m, &names, &w);
	if (rc == 0) {
		tn_write(&o, root);
		jsontext_out_put(&o, "", 1);
		if (o.oom) {
			free(o.s);
			rc = JSONPATCH_ERR_NOMEM;
		} else if (o.len - 1 > lim->out) {
			free(o.s);
			rc = JSONPATCH_ERR_SIZE;
		} else {
			*out = o.s;
			*out_len = o.len - 1;
		}
	}
	tn_free(root);
	free(names.buf);
out_free_pd:
	jsontext_free(&pd);
out_free_dd:
	jsontext_free(&dd);
	return rc;
}

bool jsonvalue_equal(const char *a, size_t a_len, const char *b, size_t b_len)
{
	struct jsontext da, db;
	struct tn *ta = NULL, *tb = NULL;
	struct work w = { 0, 0, 0, { SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX } };
	bool eq = false;

	if (jsontext_parse(&da, a, a_len) < 0)
		return false;
	if (jsontext_parse(&db, b, b_len) < 0)
		goto out_free_da;
	if (tn_build(&da, 0, &ta, &w) == 0 && tn_build(&db, 0, &tb, &w) == 0)
		eq = tn_equal(ta, tb, &w);
	tn_free(ta);
	tn_free(tb);
	jsontext_free(&db);
out_free_da:
	jsontext_free(&da);
	return eq;
}

/* ---- jsonpatch_apply ----------------------------------------------------------
 * Declared in jsonpatch.h (the module users know for patches); defined
 * here, next to the tree, since jsonvalue includes jsonpatch.h and not the
 * other way (tests/layers.sh). */

int jsonpatch_apply(const char *doc, size_t doc_len, const char *patch, size_t patch_len,
		    char **out, size_t *out_len)
{
	struct jsonvalue_limits lim;

	if (doc_len > JSONPATCH_MAX_DOC || patch_len > JSONPATCH_MAX_DOC)
		return JSONPATCH_ERR_SIZE;
	/* Every value of the inputs takes at least one byte: the nodes and
	 * text the inputs make stay within their lengths, and what is
	 * beyond is what copies add. */
	lim.steps = JSONPATCH_WORK_PER_BYTE * (doc_len + patch_len) + JSONPATCH_WORK_BASE;
	lim.nodes = doc_len + patch_len + JSONPATCH_COPY_NODES;
	lim.text = doc_len + patch_len + JSONPATCH_MAX_DOC;
	lim.ops = JSONPATCH_MAX_OPS;
	lim.out = JSONPATCH_MAX_DOC;
	/* What the parser takes, so that the result can be read again. */
	lim.depth = JSONPATCH_MAX_DEPTH;
	return jsonvalue_apply_limited(doc, doc_len, patch, patch_len, &lim, out, out_len);
}
