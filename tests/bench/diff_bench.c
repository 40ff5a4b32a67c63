/*
 * diff_bench: what computing a JSON Patch once per new snapshot costs
 * (issue 10: the diff's CPU time must stay below the query's, 2.7 ms for
 * the demo dashboard in docs/benchmarks.md).
 *
 * Times jsonpatch_diff of a dashboard against the same dashboard after one
 * sale, in CPU time of this thread: the dashboards recorded from the demo
 * database (tests/unit/data, 29 KB), and a model dashboard shaped like
 * docs/protocol.md with 36 products (tests/unit/dashboard_model.h). For
 * scale, it also times what json-c alone takes to parse the same two
 * documents, and jsonpatch_apply.
 *
 * Built on demand, never by make or make check:
 *   make tests/bench/diff_bench && tests/bench/diff_bench [OLD NEW]...
 * Optional arguments: pairs of JSON files to diff instead of the defaults.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "jsonpatch.h"

#include "../unit/dashboard_model.h"

#define ROUNDS 31

static double cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Of ROUNDS rounds of n calls, each giving the mean time per call: the
 * median; t[0] is then the best round. */
static double median(double *t)
{
	qsort(t, ROUNDS, sizeof(*t), cmp_double);
	return t[ROUNDS / 2];
}

static void jc_parse(const char *s, size_t len)
{
	struct json_tokener *tok = json_tokener_new_ex(64);
	json_object *o;

	if (!tok)
		exit(1);
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (!o)
		exit(1);
	json_object_put(o);
	json_tokener_free(tok);
}

static void bench(const char *name, const char *a, size_t alen, const char *b, size_t blen)
{
	double td[ROUNDS], tj[ROUNDS], ta[ROUNDS], md, mj, ma;
	struct jsonpatch p;
	size_t n = 200;
	char *out;
	size_t out_len;

	if (jsonpatch_diff(a, alen, b, blen, &p) != 0) {
		fprintf(stderr, "%s: not JSON\n", name);
		exit(1);
	}
	for (int r = 0; r < ROUNDS; r++) {
		double t0 = cpu_us();

		for (size_t i = 0; i < n; i++) {
			struct jsonpatch q;

			if (jsonpatch_diff(a, alen, b, blen, &q) != 0)
				exit(1);
			jsonpatch_clear(&q);
		}
		td[r] = (cpu_us() - t0) / n;
		t0 = cpu_us();
		for (size_t i = 0; i < n; i++) {
			jc_parse(a, alen);
			jc_parse(b, blen);
		}
		tj[r] = (cpu_us() - t0) / n;
		t0 = cpu_us();
		for (size_t i = 0; i < n; i++) {
			if (jsonpatch_apply(a, alen, p.text, p.len, &out, &out_len) != 0)
				exit(1);
			free(out);
		}
		ta[r] = (cpu_us() - t0) / n;
	}
	md = median(td);
	mj = median(tj);
	ma = median(ta);
	printf("%-20s %6zu -> %6zu B  patch %5zu B (%4.1f %%, %2zu ops)  diff %5.1f us (best %5.1f)"
	       "  json-c parse of both %5.1f us  apply %5.1f us\n",
	       name, alen, blen, p.len, 100.0 * p.len / blen, p.ops, md, td[0], mj, ma);
	jsonpatch_clear(&p);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s = malloc((size_t)n + 1);
	if (!s || fread(s, 1, (size_t)n, f) != (size_t)n)
		exit(1);
	fclose(f);
	s[n] = '\0';
	*len = (size_t)n;
	return s;
}

static void bench_files(const char *old, const char *new)
{
	size_t alen, blen;
	char *a = slurp(old, &alen), *b = slurp(new, &blen);
	const char *name = strrchr(new, '/');

	if (!a || !b) {
		fprintf(stderr, "cannot read %s or %s\n", old, new);
		exit(1);
	}
	bench(name ? name + 1 : new, a, alen, b, blen);
	free(a);
	free(b);
}

int main(int argc, char **argv)
{
	struct dm m;
	size_t alen, blen;
	char *a, *b;

	if (argc > 2) {
		for (int i = 1; i + 1 < argc; i += 2)
			bench_files(argv[i], argv[i + 1]);
		return 0;
	}
#ifdef DATA_DIR
	bench_files(DATA_DIR "/dashboard-0.json", DATA_DIR "/dashboard-1.json");
	bench_files(DATA_DIR "/dashboard-4.json", DATA_DIR "/dashboard-5.json");
	bench_files(DATA_DIR "/dashboard-5.json", DATA_DIR "/dashboard-6.json");
#endif
	dm_init(&m, 36, 1);
	a = dm_json(&m, &alen);
	dm_sale(&m);
	b = dm_json(&m, &blen);
	bench("model, one sale", a, alen, b, blen);
	bench("model, unchanged", a, alen, a, alen);
	free(a);
	free(b);
	return 0;
}
