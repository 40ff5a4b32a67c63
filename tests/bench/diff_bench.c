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
 * documents, and jsonvalue_apply. Then the bytes on the wire, as frames
 * of 42["dashboardDataUpdate",<doc>] against
 * 42["dashboardDataPatch",{"from":..,"to":..,"patch":<patch>}] (the event
 * issue 10 adds), plain and compressed as the daemon compresses a snapshot
 * (permessage-deflate, level 1, once for all clients).
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
#include "jsonvalue.h"
#include "pmd.h"

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

/* Length of the WebSocket frame of 42[<head><body><tail>], plain and
 * compressed (level 1, as dashboard.c compresses snapshots). */
static void frame_sizes(const char *head, const char *body, size_t len, const char *tail,
			size_t *plain, size_t *z)
{
	struct ws_part parts[] = {
		{ head, strlen(head) }, { body, len }, { tail, strlen(tail) },
	};
	struct buf *f = pmd_frame(WS_OP_TEXT, parts, 3, 1);
	size_t n = parts[0].len + len + parts[2].len;

	if (!f)
		exit(1);
	*plain = n + (n < 126 ? 2 : n < 65536 ? 4 : 10);
	*z = f->len;
	buf_unref(f);
}

/* The frames a client would get for b: the full document or the patch. */
static void frames(const char *name, const char *a, size_t alen, const char *b, size_t blen)
{
	struct jsonpatch p;
	size_t fp, fz, pp, pz;

	if (jsonpatch_diff(a, alen, b, blen, &p) != 0)
		exit(1);
	frame_sizes("42[\"dashboardDataUpdate\",", b, blen, "]", &fp, &fz);
	frame_sizes("42[\"dashboardDataPatch\",{\"from\":1764525600000,\"to\":1764525600001,"
		    "\"patch\":", p.text, p.len, "}]", &pp, &pz);
	printf("%-20s full %6zu B, deflated %5zu B; patch %5zu B (%4.1f %%), deflated %5zu B "
	       "(%4.1f %%)\n", name, fp, fz, pp, 100.0 * pp / fp, pz, 100.0 * pz / fz);
	jsonpatch_clear(&p);
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
			if (jsonvalue_apply(a, alen, p.text, p.len, &out, &out_len) != 0)
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

typedef void run_fn(const char *name, const char *a, size_t alen, const char *b, size_t blen);

static void run_files(run_fn *run, const char *old, const char *new)
{
	size_t alen, blen;
	char *a = slurp(old, &alen), *b = slurp(new, &blen);
	const char *name = strrchr(new, '/');

	if (!a || !b) {
		fprintf(stderr, "cannot read %s or %s\n", old, new);
		exit(1);
	}
	run(name ? name + 1 : new, a, alen, b, blen);
	free(a);
	free(b);
}

static void run_all(run_fn *run, int argc, char **argv)
{
	struct dm m;
	size_t alen, blen;
	char *a, *b;

	if (argc > 2) {
		for (int i = 1; i + 1 < argc; i += 2)
			run_files(run, argv[i], argv[i + 1]);
		return;
	}
#ifdef DATA_DIR
	run_files(run, DATA_DIR "/dashboard-0.json", DATA_DIR "/dashboard-1.json");
	run_files(run, DATA_DIR "/dashboard-4.json", DATA_DIR "/dashboard-5.json");
	run_files(run, DATA_DIR "/dashboard-5.json", DATA_DIR "/dashboard-6.json");
#endif
	dm_init(&m, 36, 1);
	a = dm_json(&m, &alen);
	dm_sale(&m);
	b = dm_json(&m, &blen);
	run("model, one sale", a, alen, b, blen);
	run("model, unchanged", a, alen, a, alen);
	free(a);
	free(b);
}

int main(int argc, char **argv)
{
	printf("CPU time per call (median of %d rounds, best round):\n", ROUNDS);
	run_all(bench, argc, argv);
	printf("Bytes on the wire per client (WebSocket frames):\n");
	run_all(frames, argc, argv);
	pmd_cleanup();
	return 0;
}
