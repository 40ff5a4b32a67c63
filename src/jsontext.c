#include "autoconfig.h"

#include "jsontext.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* ---- parsing: a flat, read-only index of a JSON text --------------------- */

uint32_t jsontext_hash(const char *s, size_t len)
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

size_t jsontext_decode_string(const char *s, size_t len, char *o)
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

static int push_node(struct jsontext *d, enum jsontext_type t, size_t start, size_t *idx)
{
	if (d->nn == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct jsontext_node *n = realloc(d->n, cap * sizeof(*n));

		if (!n)
			return JSONTEXT_ERR_NOMEM;
		d->n = n;
		d->cap = cap;
	}
	*idx = d->nn++;
	memset(&d->n[*idx], 0, sizeof(d->n[*idx]));
	d->n[*idx].type = (unsigned char)t;
	d->n[*idx].start = start;
	return 0;
}

static int parse_value(struct jsontext *d, size_t *i, int depth);

static int parse_container(struct jsontext *d, size_t *i, int depth, bool object)
{
	const char *s = d->s;
	char close = object ? '}' : ']';
	size_t self;
	int rc;

	if (depth >= JSONTEXT_MAX_DEPTH)
		return JSONTEXT_ERR_DEPTH;
	rc = push_node(d, object ? JSONTEXT_OBJ : JSONTEXT_ARR, *i, &self);
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
				return JSONTEXT_ERR_JSON;
			kstart = *i;
			if (!scan_string(s, d->len, i, &esc))
				return JSONTEXT_ERR_JSON;
			kend = *i;
			skip_ws(s, d->len, i);
			if (*i >= d->len || s[*i] != ':')
				return JSONTEXT_ERR_JSON;
			(*i)++;
		}
		rc = parse_value(d, i, depth + 1);
		if (rc < 0)
			return rc;
		d->n[self].count++;
		if (object) {
			struct jsontext_node *c = &d->n[child];

			if (esc) {
				if (!d->keys) {
					d->keys = malloc(d->len);
					if (!d->keys)
						return JSONTEXT_ERR_NOMEM;
				}
				c->klen = jsontext_decode_string(s + kstart, kend - kstart,
							d->keys + d->keys_len);
				/* d->keys never moves: it has room for
				 * every name of the text, decoded. */
				c->key = d->keys + d->keys_len;
				d->keys_len += c->klen;
			} else {
				c->key = s + kstart + 1;
				c->klen = kend - kstart - 2;
			}
			c->khash = jsontext_hash(c->key, c->klen);
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
		return JSONTEXT_ERR_JSON;
	}
out:
	d->n[self].len = *i - d->n[self].start;
	d->n[self].next = d->nn;
	return 0;
}

static int parse_value(struct jsontext *d, size_t *i, int depth)
{
	const char *s = d->s;
	size_t start, idx;
	enum jsontext_type t;
	bool esc;
	int rc;

	skip_ws(s, d->len, i);
	if (*i >= d->len)
		return JSONTEXT_ERR_JSON;
	start = *i;
	switch (s[*i]) {
	case '{':
		return parse_container(d, i, depth, true);
	case '[':
		return parse_container(d, i, depth, false);
	case '"':
		if (!scan_string(s, d->len, i, &esc))
			return JSONTEXT_ERR_JSON;
		t = JSONTEXT_STR;
		break;
	case 't':
	case 'f':
	case 'n': {
		const char *lit = s[*i] == 't' ? "true" : s[*i] == 'f' ? "false" : "null";
		size_t n = strlen(lit);

		if (d->len - *i < n || memcmp(s + *i, lit, n) != 0)
			return JSONTEXT_ERR_JSON;
		*i += n;
		t = JSONTEXT_LIT;
		break;
	}
	default:
		if (!scan_number(s, d->len, i))
			return JSONTEXT_ERR_JSON;
		t = JSONTEXT_NUM;
		break;
	}
	rc = push_node(d, t, start, &idx);
	if (rc < 0)
		return rc;
	d->n[idx].len = *i - start;
	d->n[idx].next = d->nn;
	return 0;
}

void jsontext_free(struct jsontext *d)
{
	free(d->n);
	free(d->keys);
}

int jsontext_parse(struct jsontext *d, const char *s, size_t len)
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
		return JSONTEXT_ERR_NOMEM;
	rc = parse_value(d, &i, 0);
	if (rc == 0) {
		skip_ws(s, len, &i);
		if (i != len)
			rc = JSONTEXT_ERR_JSON;
	}
	if (rc < 0)
		jsontext_free(d);
	return rc;
}


size_t jsontext_member(const struct jsontext *d, size_t o, const char *k, size_t klen)
{
	size_t found = 0;

	for (size_t m = o + 1; m < d->n[o].next; m = d->n[m].next)
		if (d->n[m].klen == klen && memcmp(d->n[m].key, k, klen) == 0)
			found = m;
	return found;
}

/* ---- output ------------------------------------------------------------- */

static bool out_room(struct jsontext_out *o, size_t n)
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

void jsontext_out_put(struct jsontext_out *o, const void *p, size_t n)
{
	if (n && out_room(o, n)) {
		memcpy(o->s + o->len, p, n);
		o->len += n;
	}
}

void jsontext_out_str(struct jsontext_out *o, const char *s)
{
	jsontext_out_put(o, s, strlen(s));
}

void jsontext_out_char(struct jsontext_out *o, char c)
{
	if (out_room(o, 1))
		o->s[o->len++] = c;
}

void jsontext_out_string(struct jsontext_out *o, const char *s, size_t len)
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
		jsontext_out_put(o, s + run, i - run);
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
		jsontext_out_put(o, e, en);
		run = i + 1;
	}
	jsontext_out_put(o, s + run, len - run);
}

void jsontext_out_compact(struct jsontext_out *o, const char *s, size_t len)
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
			jsontext_out_put(o, s + run, i - run);
			run = i + 1;
		}
	}
	jsontext_out_put(o, s + run, len - run);
}
