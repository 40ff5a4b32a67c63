/*
 * pmd_bench: what compressing a snapshot once costs. Times pmd_frame (one
 * reused deflate stream) and pmd_inflate on dashboard documents shaped like
 * docs/protocol.md, wrapped as the Socket.IO packet the daemon sends.
 *
 * Then shared context (issue 14): on the dashboards recorded from the demo
 * database (tests/unit/data, one sale apart), the frame of the new snapshot
 * standalone (pmd_frame) and with the previous snapshot's payload as the
 * dictionary (pmd_frame_with_dict), and the same for a JSON Patch of the
 * sale (jsonpatch_diff, as 42["dashboardDataPatch",{...}]): bytes on the
 * wire and CPU time per frame. Last, what reusing one deflate stream costs
 * (deflateReset, and deflateSetDictionary) on a tiny message.
 *
 * Built on demand, never by make or make check:
 *   make tests/bench/pmd_bench && tests/bench/pmd_bench
 * Optional arguments: document sizes in bytes (default 1024 10240 51200).
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "jsonpatch.h"
#include "pmd.h"

#include "../unit/dashboard_doc.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define ROUNDS 15

/* Of ROUNDS rounds, each giving the mean time per call: the median. Sorts t,
 * so t[0] is then the best round, the least disturbed by other processes. */
static double median(double *t)
{
	qsort(t, ROUNDS, sizeof(*t), cmp_double);
	return t[ROUNDS / 2];
}

static void bench(size_t target)
{
	size_t len;
	char *doc = dashboard_doc(target, &len);
	struct ws_part part = { doc, len };
	struct pmd_inflater *inf;
	static const int levels[] = { 1, 3, 6 };

	if (pmd_inflater_new(false, &inf) != 0)
		exit(1);
	for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
		double tc[ROUNDS], ti[ROUNDS], mc, mi;
		struct buf *b = pmd_frame(WS_OP_TEXT, &part, 1, levels[l]);
		size_t hlen, plen, n, out_len;
		uint8_t *out;

		if (!b)
			exit(1);
		hlen = b->data[1] == 126 ? 4 : b->data[1] == 127 ? 10 : 2;
		plen = b->len - hlen;
		/* About 20 ms per round, whatever the size. */
		n = 20000000 / (len * (levels[l] + 3)) + 10;
		for (int r = 0; r < ROUNDS; r++) {
			double t0 = now_us();

			for (size_t i = 0; i < n; i++)
				buf_unref(pmd_frame(WS_OP_TEXT, &part, 1, levels[l]));
			tc[r] = (now_us() - t0) / n;
			t0 = now_us();
			for (size_t i = 0; i < n; i++) {
				if (pmd_inflate(inf, b->data + hlen, plen, len, &out, &out_len) != PMD_OK)
					exit(1);
				free(out);
			}
			ti[r] = (now_us() - t0) / n;
		}
		mc = median(tc);
		mi = median(ti);
		printf("%6zu B  level %d -> %6zu B  %5.1f %%  %4.2fx  deflate %6.1f us (best %6.1f, "
		       "%4.0f MB/s)  inflate %5.1f us (best %5.1f)\n",
		       len, levels[l], plen, 100.0 * plen / len, (double)len / plen,
		       mc, tc[0], len / mc, mi, ti[0]);
		buf_unref(b);
	}
	pmd_inflater_free(inf);
	free(doc);
}

static double cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* CPU time of one pmd_frame_with_dict call, median of ROUNDS rounds. */
static double time_frame(const struct ws_part *parts, size_t nparts, const uint8_t *dict,
			 size_t dict_len, int level, size_t n)
{
	double t[ROUNDS];

	for (int r = 0; r < ROUNDS; r++) {
		double t0 = cpu_us();

		for (size_t i = 0; i < n; i++)
			buf_unref(pmd_frame_with_dict(WS_OP_TEXT, parts, nparts, dict, dict_len,
						      15, level));
		t[r] = (cpu_us() - t0) / n;
	}
	return median(t);
}

static size_t frame_len(const struct ws_part *parts, size_t nparts, const uint8_t *dict,
			size_t dict_len, int level)
{
	struct buf *b = pmd_frame_with_dict(WS_OP_TEXT, parts, nparts, dict, dict_len, 15, level);
	size_t n;

	if (!b)
		exit(1);
	n = b->len;
	buf_unref(b);
	return n;
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
	*len = (size_t)n;
	return s;
}

#define UPDATE_HEAD "42[\"dashboardDataUpdate\","
#define PATCH_HEAD "42[\"dashboardDataPatch\",{\"from\":1764525600000,\"to\":1764525600001,\"patch\":"

/* The payload of 42["dashboardDataUpdate",doc], as the client's window holds it. */
static uint8_t *update_payload(const char *doc, size_t len, size_t *out_len)
{
	size_t h = strlen(UPDATE_HEAD);
	uint8_t *p = malloc(h + len + 1);

	if (!p)
		exit(1);
	memcpy(p, UPDATE_HEAD, h);
	memcpy(p + h, doc, len);
	p[h + len] = ']';
	*out_len = h + len + 1;
	return p;
}

static void shared_pair(const char *old_path, const char *new_path)
{
	size_t alen, blen, pa_len, pb_len;
	char *a = slurp(old_path, &alen), *b = slurp(new_path, &blen);
	const char *name = strrchr(new_path, '/');
	uint8_t *pa, *pb;
	struct jsonpatch patch;

	if (!a || !b) {
		fprintf(stderr, "cannot read %s or %s\n", old_path, new_path);
		exit(1);
	}
	pa = update_payload(a, alen, &pa_len);
	pb = update_payload(b, blen, &pb_len);
	if (jsonpatch_diff(a, alen, b, blen, &patch) != 0)
		exit(1);
	static const int levels[] = { 1, 6, PMD_LEVEL_DICT };

	for (size_t l = 0; l < 3; l++) {
		int level = levels[l];
		struct ws_part snap = { pb, pb_len };
		struct ws_part pp[] = { { PATCH_HEAD, strlen(PATCH_HEAD) },
					{ patch.text, patch.len }, { "}]", 2 } };
		size_t n = 200;

		printf("%-16s level %-4s snapshot %5zu B: standalone %5zu B (%6.1f us), shared %4zu B "
		       "(%6.1f us), unchanged %4zu B | patch %4zu B: standalone %4zu B (%5.1f us), "
		       "shared %4zu B (%6.1f us)\n",
		       name ? name + 1 : new_path,
		       level == PMD_LEVEL_DICT ? "DICT" : level == 1 ? "1" : "6", pb_len,
		       frame_len(&snap, 1, NULL, 0, level), time_frame(&snap, 1, NULL, 0, level, n),
		       frame_len(&snap, 1, pa, pa_len, level),
		       time_frame(&snap, 1, pa, pa_len, level, n),
		       frame_len(&snap, 1, pb, pb_len, level),
		       pp[0].len + patch.len + 2,
		       frame_len(pp, 3, NULL, 0, level), time_frame(pp, 3, NULL, 0, level, n),
		       frame_len(pp, 3, pa, pa_len, level), time_frame(pp, 3, pa, pa_len, level, n));
	}
	jsonpatch_clear(&patch);
	free(pa);
	free(pb);
	free(a);
	free(b);
}

/* What one reused stream costs per frame on a 5-byte message, against a
 * stream created and freed per frame. */
static void stream_cost(const uint8_t *dict, size_t dict_len)
{
	struct ws_part hello = { "Hello", 5 };
	double t[ROUNDS], fresh;
	size_t n = 2000;

	for (int r = 0; r < ROUNDS; r++) {
		double t0 = cpu_us();

		for (size_t i = 0; i < n; i++) {
			z_stream zs = { 0 };
			uint8_t out[64];

			if (deflateInit2(&zs, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
				exit(1);
			zs.next_in = (Bytef *)"Hello";
			zs.avail_in = 5;
			zs.next_out = out;
			zs.avail_out = sizeof(out);
			deflate(&zs, Z_SYNC_FLUSH);
			deflateEnd(&zs);
		}
		t[r] = (cpu_us() - t0) / n;
	}
	fresh = median(t);
	printf("\"Hello\", level 1: reused stream (deflateReset) %5.1f us; with a %zu B dictionary "
	       "%5.1f us; a stream created per frame %5.1f us\n",
	       time_frame(&hello, 1, NULL, 0, 1, n), dict_len,
	       time_frame(&hello, 1, dict, dict_len, 1, n / 10), fresh);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			bench(strtoul(argv[i], NULL, 10));
	} else {
		bench(1024);
		bench(10240);
		bench(51200);
	}
	printf("deflate stream + scratch: %zu bytes, once per process\n", pmd_deflate_footprint());
#ifdef DATA_DIR
	printf("Shared context (issue 14): frames (header included) of the demo dashboard after "
	       "one sale, CPU per frame (median of %d rounds):\n", ROUNDS);
	shared_pair(DATA_DIR "/dashboard-0.json", DATA_DIR "/dashboard-1.json");
	shared_pair(DATA_DIR "/dashboard-4.json", DATA_DIR "/dashboard-5.json");
	shared_pair(DATA_DIR "/dashboard-5.json", DATA_DIR "/dashboard-6.json");
	{
		size_t len, plen;
		char *doc = slurp(DATA_DIR "/dashboard-0.json", &len);
		uint8_t *p = update_payload(doc, len, &plen);

		stream_cost(p, plen);
		free(p);
		free(doc);
	}
#endif
	pmd_cleanup();
	return 0;
}
