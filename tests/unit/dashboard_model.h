/*
 * dashboard_model.h: a dashboard as the reference pgpush.dashboard() and
 * the daemon make it (docs/protocol.md: version, generatedAt and reason
 * first, then summary, recentSales, salesByDay, stockPredictions,
 * lowStock), kept as a model so that one sale can be applied to it the way
 * the database would see it: a new sale in front of recentSales and the
 * oldest dropped, the summary and today's row of salesByDay updated, the
 * product's stock, rate and forecast changed and stockPredictions re-sorted.
 * Shared by tests/unit/t_jsonpatch.c and tests/bench/diff_bench.c.
 */
#ifndef PGPUSH_DASHBOARD_MODEL_H
#define PGPUSH_DASHBOARD_MODEL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DM_MAX_PRODUCTS 200
#define DM_RECENT 10
#define DM_DAYS 30

struct dm_buf {
	char *s;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3)))
static void dm_printf(struct dm_buf *b, const char *fmt, ...)
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

struct dm_sale {
	unsigned id, product, quantity, amount; /* amount in cents */
	unsigned customer, sec;                 /* seconds since midnight */
};

struct dm_product {
	unsigned id, price, stock, reorder, units30; /* price in cents */
};

struct dm {
	unsigned long rng;
	unsigned nprod, next_id, clock;
	struct dm_product prod[DM_MAX_PRODUCTS];
	struct dm_sale recent[DM_RECENT];
	unsigned revenue[DM_DAYS], sales[DM_DAYS], units[DM_DAYS]; /* oldest first */
	long long version;
};

static unsigned dm_rnd(struct dm *m, unsigned n)
{
	m->rng = m->rng * 6364136223846793005ul + 1442695040888963407ul;
	return (unsigned)(m->rng >> 33) % n;
}

static const char *const dm_names[] = {
	"Blue Mug", "Red Pen", "Green Tea", "Desk Lamp", "USB Cable", "Notebook A5",
	"Coffee Beans", "Water Bottle", "Phone Stand", "Sticky Notes", "Stapler", "Mouse Pad",
};
static const char *const dm_people[] = {
	"Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov",
	"Donald Knuth", "Frances Allen", "Ken Thompson",
};

static void dm_init(struct dm *m, unsigned nprod, unsigned long seed)
{
	memset(m, 0, sizeof(*m));
	m->rng = seed;
	m->nprod = nprod > DM_MAX_PRODUCTS ? DM_MAX_PRODUCTS : nprod;
	for (unsigned p = 0; p < m->nprod; p++) {
		m->prod[p].id = p + 1;
		m->prod[p].price = 199 + dm_rnd(m, 5000);
		m->prod[p].stock = dm_rnd(m, 300);
		m->prod[p].reorder = 5 + dm_rnd(m, 20);
		m->prod[p].units30 = dm_rnd(m, 4) ? dm_rnd(m, 400) : 0;
	}
	for (unsigned d = 0; d < DM_DAYS; d++) {
		m->sales[d] = dm_rnd(m, 30);
		m->units[d] = m->sales[d] * 2;
		m->revenue[d] = m->sales[d] * (500 + dm_rnd(m, 3000));
	}
	m->next_id = 9000;
	m->clock = 8 * 3600;
	for (unsigned i = 0; i < DM_RECENT; i++) {
		struct dm_sale *s = &m->recent[DM_RECENT - 1 - i];

		s->id = m->next_id++;
		s->product = dm_rnd(m, m->nprod);
		s->quantity = 1 + dm_rnd(m, 5);
		s->amount = s->quantity * m->prod[s->product].price;
		s->customer = dm_rnd(m, 8);
		s->sec = m->clock += 1 + dm_rnd(m, 600);
	}
	m->version = 1764151200123;
}

/* One sale, as the database would reflect it. */
static void dm_sale(struct dm *m)
{
	struct dm_sale s;
	struct dm_product *p;

	s.id = m->next_id++;
	s.product = dm_rnd(m, m->nprod);
	s.quantity = 1 + dm_rnd(m, 5);
	p = &m->prod[s.product];
	s.amount = s.quantity * p->price;
	s.customer = dm_rnd(m, 8);
	s.sec = m->clock += 1 + dm_rnd(m, 60);
	memmove(m->recent + 1, m->recent, (DM_RECENT - 1) * sizeof(s));
	m->recent[0] = s;
	m->revenue[DM_DAYS - 1] += s.amount;
	m->sales[DM_DAYS - 1]++;
	m->units[DM_DAYS - 1] += s.quantity;
	p->stock = p->stock > s.quantity ? p->stock - s.quantity : 0;
	p->units30 += s.quantity;
	m->version++;
}

/* avgDailyUnits in hundredths */
static unsigned dm_rate(const struct dm_product *p)
{
	return (p->units30 * 100 + 15) / 30;
}

/* stock-out in tenths of days, or -1 (never) */
static long dm_out(const struct dm_product *p)
{
	unsigned r = dm_rate(p);

	return r ? (long)((p->stock * 1000ul) / r) : -1;
}

static int dm_cmp_pred(const void *x, const void *y)
{
	const struct dm_product *a = *(const struct dm_product *const *)x;
	const struct dm_product *b = *(const struct dm_product *const *)y;
	long oa = dm_out(a), ob = dm_out(b);

	if (oa != ob) {
		if (oa < 0 || ob < 0)
			return oa < 0 ? 1 : -1;
		return oa < ob ? -1 : 1;
	}
	return a->id < b->id ? -1 : 1;
}

static int dm_cmp_low(const void *x, const void *y)
{
	const struct dm_product *a = *(const struct dm_product *const *)x;
	const struct dm_product *b = *(const struct dm_product *const *)y;

	if (a->stock != b->stock)
		return a->stock < b->stock ? -1 : 1;
	return a->id < b->id ? -1 : 1;
}

static void dm_money(struct dm_buf *b, const char *name, unsigned long cents)
{
	dm_printf(b, "\"%s\":%lu.%02lu", name, cents / 100, cents % 100);
}

/* The document as the daemon holds it: compact, malloc'd, NUL-terminated. */
static char *dm_json(struct dm *m, size_t *len)
{
	struct dm_buf b = { malloc(4096), 0, 4096 };
	const struct dm_product *order[DM_MAX_PRODUCTS];
	unsigned long rev30 = 0, n30 = 0, low = 0;
	unsigned sec = m->recent[0].sec;

	if (!b.s)
		exit(1);
	for (unsigned d = 0; d < DM_DAYS; d++) {
		rev30 += m->revenue[d];
		n30 += m->sales[d];
	}
	for (unsigned p = 0; p < m->nprod; p++)
		low += m->prod[p].stock <= m->prod[p].reorder;
	dm_printf(&b, "{\"version\":%lld,\"generatedAt\":\"2026-11-26T%02u:%02u:%02u.%03uZ\","
		  "\"reason\":\"notify:sales\",\"summary\":{", m->version, sec / 3600,
		  sec / 60 % 60, sec % 60, (unsigned)(m->version % 1000));
	dm_money(&b, "revenueToday", m->revenue[DM_DAYS - 1]);
	dm_printf(&b, ",\"salesToday\":%u,", m->sales[DM_DAYS - 1]);
	dm_money(&b, "revenue30d", rev30);
	dm_printf(&b, ",\"sales30d\":%lu,", n30);
	dm_money(&b, "avgOrderValue30d", n30 ? (rev30 + n30 / 2) / n30 : 0);
	dm_printf(&b, ",\"lowStockCount\":%lu},\"recentSales\":[", low);
	for (unsigned i = 0; i < DM_RECENT; i++) {
		const struct dm_sale *s = &m->recent[i];
		const struct dm_product *p = &m->prod[s->product];

		dm_printf(&b, "%s{\"id\":%u,\"productId\":%u,\"sku\":\"SKU-%03u\",\"product\":\"%s\","
			  "\"quantity\":%u,", i ? "," : "", s->id, p->id, p->id,
			  dm_names[(p->id - 1) % 12], s->quantity);
		dm_money(&b, "amount", s->amount);
		dm_printf(&b, ",\"customerName\":\"%s\",\"customerEmail\":\"user%u@example.com\","
			  "\"soldAt\":\"2026-11-26T%02u:%02u:%02u.%03u+00:00\"}",
			  dm_people[s->customer], s->customer, s->sec / 3600, s->sec / 60 % 60,
			  s->sec % 60, s->id % 1000);
	}
	dm_printf(&b, "],\"salesByDay\":[");
	for (unsigned d = 0; d < DM_DAYS; d++) {
		dm_printf(&b, "%s{\"day\":\"2026-%02u-%02u\",", d ? "," : "", d < 4 ? 10 : 11,
			  d < 4 ? 28 + d : d - 3);
		dm_money(&b, "revenue", m->revenue[d]);
		dm_printf(&b, ",\"sales\":%u,\"units\":%u}", m->sales[d], m->units[d]);
	}
	dm_printf(&b, "],\"stockPredictions\":[");
	for (unsigned p = 0; p < m->nprod; p++)
		order[p] = &m->prod[p];
	qsort(order, m->nprod, sizeof(order[0]), dm_cmp_pred);
	for (unsigned i = 0; i < m->nprod; i++) {
		const struct dm_product *p = order[i];
		unsigned rate = dm_rate(p);
		long out = dm_out(p);

		dm_printf(&b, "%s{\"productId\":%u,\"sku\":\"SKU-%03u\",\"product\":\"%s\","
			  "\"stock\":%u,\"reorderLevel\":%u,\"avgDailyUnits\":%u.%02u,",
			  i ? "," : "", p->id, p->id, dm_names[(p->id - 1) % 12], p->stock,
			  p->reorder, rate / 100, rate % 100);
		if (out < 0)
			dm_printf(&b, "\"daysUntilStockout\":null,\"stockoutDate\":null,");
		else
			dm_printf(&b, "\"daysUntilStockout\":%ld.%ld,\"stockoutDate\":\"2026-%02ld-%02ld\",",
				  out / 10, out % 10, 11 + (26 + out / 10) / 31 % 2,
				  1 + (26 + out / 10) % 31);
		dm_printf(&b, "\"forecast\":[");
		for (unsigned k = 1; k <= 14; k++) {
			long left = (long)p->stock * 100 - (long)rate * k;

			dm_printf(&b, "%s{\"day\":\"2026-%02u-%02u\",\"stock\":%ld.%02ld}", k > 1 ? "," : "",
				  26 + k > 30 ? 12 : 11, 26 + k > 30 ? 26 + k - 30 : 26 + k,
				  left > 0 ? left / 100 : 0, left > 0 ? left % 100 : 0);
		}
		dm_printf(&b, "]}");
	}
	dm_printf(&b, "],\"lowStock\":[");
	for (unsigned p = 0; p < m->nprod; p++)
		order[p] = &m->prod[p];
	qsort(order, m->nprod, sizeof(order[0]), dm_cmp_low);
	for (unsigned i = 0, n = 0; i < m->nprod; i++) {
		if (order[i]->stock > order[i]->reorder)
			continue;
		dm_printf(&b, "%s{\"productId\":%u,\"sku\":\"SKU-%03u\",\"product\":\"%s\","
			  "\"stock\":%u,\"reorderLevel\":%u}", n++ ? "," : "", order[i]->id,
			  order[i]->id, dm_names[(order[i]->id - 1) % 12], order[i]->stock,
			  order[i]->reorder);
	}
	dm_printf(&b, "]}");
	*len = b.len;
	return b.s;
}

#endif
