#include "autoconfig.h"

#include "claims.h"
#include "jwt.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sb {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_put(struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->cap - b->len <= n) {
		size_t cap = b->cap ? b->cap : 256;
		char *grown;

		while (cap - b->len <= n)
			cap *= 2;
		grown = realloc(b->p, cap);
		if (!grown) {
			b->oom = true;
			return;
		}
		b->p = grown;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* A JSON string: only what must be escaped is, always the same way. */
static void put_string(struct sb *b, const char *s, size_t n)
{
	size_t run = 0;

	sb_put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sb_put(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"': sb_str(b, "\\\""); break;
		case '\\': sb_str(b, "\\\\"); break;
		case '\n': sb_str(b, "\\n"); break;
		case '\r': sb_str(b, "\\r"); break;
		case '\t': sb_str(b, "\\t"); break;
		case '\b': sb_str(b, "\\b"); break;
		case '\f': sb_str(b, "\\f"); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			sb_str(b, esc);
		}
	}
	sb_put(b, s + run, n - run);
	sb_put(b, "\"", 1);
}

static int by_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void put_value(struct sb *b, json_object *v)
{
	char num[32];

	switch (json_object_get_type(v)) {
	case json_type_null:
		sb_str(b, "null");
		break;
	case json_type_boolean:
		sb_str(b, json_object_get_boolean(v) ? "true" : "false");
		break;
	case json_type_int: {
		int64_t i = json_object_get_int64(v);

		if (i < INT64_MAX)
			snprintf(num, sizeof(num), "%lld", (long long)i);
		else
			snprintf(num, sizeof(num), "%llu", (unsigned long long)json_object_get_uint64(v));
		sb_str(b, num);
		break;
	}
	case json_type_double: {
		/* json-c keeps the text the token had, which passed strict
		 * RFC 8259 validation: write it back, so no value is rounded. */
		const char *t = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);

		if (!t)
			b->oom = true;
		else
			sb_str(b, t);
		break;
	}
	case json_type_string:
		put_string(b, json_object_get_string(v), (size_t)json_object_get_string_len(v));
		break;
	case json_type_array:
		sb_put(b, "[", 1);
		for (size_t i = 0, n = json_object_array_length(v); i < n; i++) {
			if (i)
				sb_put(b, ",", 1);
			put_value(b, json_object_array_get_idx(v, i));
		}
		sb_put(b, "]", 1);
		break;
	case json_type_object: {
		size_t n = (size_t)json_object_object_length(v), k = 0;
		const char **keys = n ? malloc(n * sizeof(*keys)) : NULL;

		if (n && !keys) {
			b->oom = true;
			break;
		}
		json_object_object_foreach(v, key, val) {
			(void)val;
			keys[k++] = key;
		}
		if (n)
			qsort(keys, n, sizeof(*keys), by_key);
		sb_put(b, "{", 1);
		for (size_t i = 0; i < n; i++) {
			if (i)
				sb_put(b, ",", 1);
			put_string(b, keys[i], strlen(keys[i]));
			sb_put(b, ":", 1);
			put_value(b, json_object_object_get(v, keys[i]));
		}
		sb_put(b, "}", 1);
		free(keys);
		break;
	}
	}
}

int claims_project(const struct jwt_claims *c, const char *const *declared, size_t n,
		   char **json_out)
{
	const char **keys = malloc((n + 1) * sizeof(*keys));
	struct sb b = { 0 };
	size_t nk = 0;

	*json_out = NULL;
	if (!keys)
		return JWT_INTERNAL;
	keys[nk++] = "role";
	for (size_t i = 0; i < n; i++) {
		if (declared[i] && strcmp(declared[i], "role") != 0 &&
		    json_object_object_get_ex(c->payload, declared[i], NULL))
			keys[nk++] = declared[i];
	}
	qsort(keys, nk, sizeof(*keys), by_key);
	sb_put(&b, "{", 1);
	for (size_t i = 0; i < nk; i++) {
		if (i && strcmp(keys[i], keys[i - 1]) == 0)
			continue; /* declared twice */
		if (i)
			sb_put(&b, ",", 1);
		put_string(&b, keys[i], strlen(keys[i]));
		sb_put(&b, ":", 1);
		if (strcmp(keys[i], "role") == 0)
			put_string(&b, c->role, strlen(c->role));
		else
			put_value(&b, json_object_object_get(c->payload, keys[i]));
	}
	sb_put(&b, "}", 1);
	free(keys);
	if (b.oom) {
		free(b.p);
		return JWT_INTERNAL;
	}
	*json_out = b.p;
	return 0;
}
