/*
 * dashboard_doc.h: dashboard-shaped JSON documents of a chosen size, shaped
 * like docs/protocol.md, for tests and benchmarks of compression (shared by
 * tests/unit/t_pmd.c and tests/bench/pmd_bench.c).
 */
#ifndef PGPUSH_DASHBOARD_DOC_H
#define PGPUSH_DASHBOARD_DOC_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sb {
	char *s;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3)))
static void sb_printf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			exit(1);
		if ((size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap * 2 + (size_t)n;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			exit(1);
	}
	b->len += (size_t)n;
}

static unsigned long rng = 12345;

static unsigned rnd(unsigned n)
{
	rng = rng * 6364136223846793005ul + 1442695040888963407ul;
	return (unsigned)(rng >> 33) % n;
}

static const char *const products[] = {
	"Blue Mug", "Red Pen", "Green Tea", "Desk Lamp", "USB Cable", "Notebook A5",
	"Coffee Beans", "Water Bottle", "Phone Stand", "Sticky Notes", "Stapler", "Mouse Pad",
};
static const char *const people[] = {
	"Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov",
	"Donald Knuth", "Frances Allen", "Ken Thompson",
};

/* A Socket.IO dashboardDataUpdate packet of at least `target` bytes: the
 * fixed parts, then one stock prediction (14-point forecast) per product
 * until the size is reached. */
static char *dashboard_doc(size_t target, size_t *len)
{
	struct sb b = { malloc(1024), 0, 1024 };
	unsigned nprod;

	sb_printf(&b, "42[\"dashboardDataUpdate\",{\"summary\":{\"revenueToday\":%u.%02u,"
		  "\"salesToday\":%u,\"revenue30d\":%u.%02u,\"sales30d\":%u,"
		  "\"avgOrderValue30d\":%u.%02u,\"lowStockCount\":%u},\"recentSales\":[",
		  rnd(5000), rnd(100), rnd(50), rnd(90000), rnd(100), rnd(900), rnd(200),
		  rnd(100), rnd(9));
	for (unsigned i = 0, n = target < 2048 ? 3 : 10; i < n; i++) {
		unsigned p = rnd(12), c = rnd(8);

		sb_printf(&b, "%s{\"id\":%u,\"productId\":%u,\"sku\":\"SKU-%03u\",\"product\":\"%s\","
			  "\"quantity\":%u,\"amount\":%u.%02u,\"customerName\":\"%s\","
			  "\"customerEmail\":\"user%u@example.com\","
			  "\"soldAt\":\"2026-11-26T%02u:%02u:%02u.%03u+00:00\"}",
			  i ? "," : "", 9870 - i, p + 1, p + 1, products[p], 1 + rnd(5),
			  rnd(300), rnd(100), people[c], c, 10 - i / 6, rnd(60), rnd(60), rnd(1000));
	}
	sb_printf(&b, "],\"salesByDay\":[");
	for (unsigned d = 0, n = target < 2048 ? 0 : 30; d < n; d++)
		sb_printf(&b, "%s{\"day\":\"2026-%02u-%02u\",\"revenue\":%u.%02u,\"sales\":%u,"
			  "\"units\":%u}", d ? "," : "", d < 4 ? 10 : 11, d < 4 ? 28 + d : d - 3,
			  rnd(3000), rnd(100), rnd(30), rnd(80));
	sb_printf(&b, "],\"stockPredictions\":[");
	for (nprod = 0; b.len + 200 < target; nprod++) {
		unsigned stock = 5 + rnd(200), rate = 1 + rnd(900);

		sb_printf(&b, "%s{\"productId\":%u,\"sku\":\"SKU-%03u\",\"product\":\"%s %u\","
			  "\"stock\":%u,\"reorderLevel\":%u,\"avgDailyUnits\":%u.%02u,"
			  "\"daysUntilStockout\":%u.%u,\"stockoutDate\":\"2026-12-%02u\",\"forecast\":[",
			  nprod ? "," : "", nprod + 1, nprod + 1, products[nprod % 12], nprod / 12,
			  stock, 5 + rnd(20), rate / 100, rate % 100, stock * 100 / rate,
			  rnd(10), 1 + rnd(28));
		for (unsigned k = 1; k <= 14 && b.len + 150 < target; k++) {
			long left = (long)stock * 100 - (long)rate * k;

			if (left < 0)
				left = 0;
			sb_printf(&b, "%s{\"day\":\"2026-11-%02u\",\"stock\":%ld.%02ld}",
				  k > 1 ? "," : "", 26 + k > 30 ? 30 : 26 + k, left / 100, left % 100);
		}
		sb_printf(&b, "]}");
	}
	sb_printf(&b, "],\"lowStock\":[{\"productId\":9,\"sku\":\"SKU-009\",\"product\":\"Red Pen\","
		  "\"stock\":2,\"reorderLevel\":5}],\"version\":1764151200123,"
		  "\"generatedAt\":\"2026-11-26T10:00:00.123Z\",\"reason\":\"notify:sales\"}]");
	*len = b.len;
	return b.s;
}

#endif
