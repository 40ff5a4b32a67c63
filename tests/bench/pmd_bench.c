/*
 * pmd_bench: what compressing a snapshot once costs. Times pmd_frame (one
 * reused deflate stream) and pmd_inflate on dashboard documents shaped like
 * docs/protocol.md, wrapped as the Socket.IO packet the daemon sends.
 *
 * Build and run after `make` in the top directory:
 *   cc -O2 -I. -Isrc tests/bench/pmd_bench.c libpgpush.a -lz -lcrypto \
 *      -o tests/bench/pmd_bench && tests/bench/pmd_bench
 * Optional arguments: document sizes in bytes (default 1024 10240 51200).
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	pmd_cleanup();
	return 0;
}
