/* Unit tests for metrics: the registry and the Prometheus text format. */
#include "autoconfig.h"

#include "metrics.h"
#include "tap.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static char *render(const struct metrics *m)
{
	char *s;
	size_t len;

	if (metrics_render_alloc(m, &s, &len) != 0)
		abort();
	return s;
}

/* The sample line that starts with prefix (name and labels), or NULL. */
static const char *sample(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
			return p + n + 1;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

static bool sample_is(const char *text, const char *prefix, const char *value)
{
	const char *v = sample(text, prefix);
	size_t n = strlen(value);

	if (!v) {
		printf("#   no sample %s\n", prefix);
		return false;
	}
	if (strncmp(v, value, n) != 0 || v[n] != '\n') {
		printf("#   %s is '%.*s', want '%s'\n", prefix, (int)strcspn(v, "\n"), v, value);
		return false;
	}
	return true;
}

static void test_table(void)
{
	int id;

	for (id = 0; id < METRIC_COUNT; id++) {
		const struct metrics_def *d = metrics_def(id);
		size_t n = strlen(d->name);
		bool total = n > 6 && strcmp(d->name + n - 6, "_total") == 0;
		bool chars = strspn(d->name, "abcdefghijklmnopqrstuvwxyz_") == n;

		ok(strncmp(d->name, "pgpush_", 7) == 0 && chars, "%s: pgpush_ prefix, [a-z_]", d->name);
		ok(total == (d->type == METRICS_COUNTER), "%s: _total if and only if a counter", d->name);
		ok(d->help && *d->help && d->help[strlen(d->help) - 1] == '.', "%s: has a help sentence", d->name);
		ok(!d->values || d->label, "%s: label values have a label name", d->name);
		if (d->type == METRICS_HISTOGRAM) {
			size_t i;
			bool asc = d->nbuckets > 0 && d->nbuckets <= METRICS_MAX_BUCKETS;

			for (i = 1; i < d->nbuckets; i++)
				asc = asc && d->buckets[i] > d->buckets[i - 1];
			ok(asc, "%s: buckets ascending, at most %d", d->name, METRICS_MAX_BUCKETS);
		}
		ok(metrics_nseries(id) >= 1 && metrics_nseries(id) <= METRICS_MAX_SERIES,
		   "%s: 1 to %d series", d->name, METRICS_MAX_SERIES);
	}
	ok(metrics_def(METRIC_COUNT) == NULL && metrics_def(-1) == NULL, "no row out of range");
	is_int(metrics_nseries(METRIC_CLIENTS), METRICS_TRANSPORT_COUNT, "clients: one series per transport");
	is_int(metrics_nseries(METRIC_CLIENTS_DROPPED), METRICS_DROP_COUNT, "dropped: one series per reason");
	is_int(metrics_nseries(METRIC_RECOMPUTES), METRICS_RECOMPUTE_COUNT, "recomputes: one per reason");
	is_int(metrics_nseries(METRIC_DB_RECONNECTS), METRICS_DB_COUNT, "reconnects: one per connection");
}

static void test_fresh(void)
{
	struct metrics m;
	char *s;
	int id;

	metrics_init(&m, "1.2.3");
	s = render(&m);
	for (id = 0; id < METRIC_COUNT; id++) {
		const struct metrics_def *d = metrics_def(id);
		char line[256];

		snprintf(line, sizeof(line), "# HELP %s %s\n", d->name, d->help);
		ok(strstr(s, line) != NULL, "fresh: HELP line of %s", d->name);
		snprintf(line, sizeof(line), "# TYPE %s %s\n", d->name,
			 d->type == METRICS_COUNTER ? "counter" : d->type == METRICS_GAUGE ? "gauge" : "histogram");
		ok(strstr(s, line) != NULL, "fresh: TYPE line of %s", d->name);
	}
	ok(sample_is(s, "pgpush_build_info{version=\"1.2.3\"}", "1"), "build_info is 1 with the version");
	ok(sample_is(s, "pgpush_clients{transport=\"websocket\"}", "0"), "clients by transport start at 0");
	ok(sample_is(s, "pgpush_clients{transport=\"polling\"}", "0"), "polling clients start at 0");
	ok(sample_is(s, "pgpush_clients_dropped_total{reason=\"slow_client\"}", "0"), "labelled counters start at 0");
	ok(sample_is(s, "pgpush_clients_dropped_total{reason=\"shutdown\"}", "0"), "every label value is there");
	ok(sample_is(s, "pgpush_notifications_total", "0"), "unlabelled counter at 0");
	ok(sample_is(s, "pgpush_unsent_bytes", "0"), "unsent bytes at 0");
	ok(!sample(s, "pgpush_snapshot_bytes") && !sample(s, "pgpush_snapshot_age_seconds"),
	   "no snapshot sample before there is a snapshot");
	ok(!sample(s, "pgpush_audiences") && !sample(s, "pgpush_dashboards"), "audiences, dashboards: absent until set");
	ok(sample_is(s, "pgpush_query_duration_seconds_bucket{le=\"+Inf\"}", "0"), "empty histogram: +Inf 0");
	ok(sample_is(s, "pgpush_query_duration_seconds_count", "0"), "empty histogram: count 0");
	ok(sample_is(s, "pgpush_query_duration_seconds_sum", "0"), "empty histogram: sum 0");
	ok(s[strlen(s) - 1] == '\n', "ends with a newline");
	free(s);
}

static void test_updates(void)
{
	struct metrics m;
	char *s;

	metrics_init(&m, "x");
	metrics_inc(&m, METRIC_NOTIFICATIONS, 0);
	metrics_add(&m, METRIC_NOTIFICATIONS, 0, 41);
	metrics_add(&m, METRIC_NOTIFICATIONS, 0, -5);
	metrics_inc(&m, METRIC_CLIENTS_DROPPED, METRICS_DROP_PING_TIMEOUT);
	metrics_inc(&m, METRIC_RECOMPUTES, METRICS_RECOMPUTE_NOTIFY);
	metrics_set(&m, METRIC_CLIENTS, METRICS_TRANSPORT_WEBSOCKET, 1000);
	metrics_gauge_add(&m, METRIC_CLIENTS, METRICS_TRANSPORT_POLLING, 3);
	metrics_gauge_add(&m, METRIC_CLIENTS, METRICS_TRANSPORT_POLLING, -1);
	metrics_set(&m, METRIC_SNAPSHOT_BYTES, 0, 10240);
	metrics_set(&m, METRIC_SNAPSHOT_AGE, 0, 1.5);
	metrics_set(&m, METRIC_UNSENT_BYTES, 0, 12345678901.0);

	/* Ignored: wrong type, series or id; the build info cannot be set. */
	metrics_set(&m, METRIC_NOTIFICATIONS, 0, 7);
	metrics_inc(&m, METRIC_CLIENTS, 0);
	metrics_inc(&m, METRIC_NOTIFICATIONS, 1);
	metrics_inc(&m, METRIC_CLIENTS_DROPPED, METRICS_DROP_COUNT);
	metrics_inc(&m, METRIC_COUNT, 0);
	metrics_observe(&m, METRIC_NOTIFICATIONS, 0, 1);
	metrics_set(&m, METRIC_BUILD_INFO, 0, 5);

	is_int(metrics_get(&m, METRIC_NOTIFICATIONS, 0), 42, "counter: inc and add, negative ignored, set ignored");
	is_int(metrics_get(&m, METRIC_CLIENTS, METRICS_TRANSPORT_POLLING), 2, "gauge add up and down");
	is_int(metrics_get(&m, METRIC_BUILD_INFO, 0), 1, "build info stays 1");
	is_int(metrics_get(&m, METRIC_COUNT, 0), 0, "get out of range: 0");

	s = render(&m);
	ok(sample_is(s, "pgpush_notifications_total", "42"), "counter rendered");
	ok(sample_is(s, "pgpush_clients_dropped_total{reason=\"ping_timeout\"}", "1"), "labelled counter");
	ok(sample_is(s, "pgpush_clients_dropped_total{reason=\"slow_client\"}", "0"), "other label unchanged");
	ok(sample_is(s, "pgpush_recomputes_total{reason=\"notify\"}", "1"), "recompute by reason");
	ok(sample_is(s, "pgpush_clients{transport=\"websocket\"}", "1000"), "gauge set");
	ok(sample_is(s, "pgpush_clients{transport=\"polling\"}", "2"), "gauge added");
	ok(sample_is(s, "pgpush_snapshot_bytes", "10240"), "snapshot bytes once set");
	ok(sample_is(s, "pgpush_snapshot_age_seconds", "1.5"), "fractional gauge");
	ok(sample_is(s, "pgpush_unsent_bytes", "12345678901"), "large integer without an exponent");
	ok(sample_is(s, "pgpush_build_info{version=\"x\"}", "1"), "build info not settable");
	free(s);
}

static void test_histogram(void)
{
	struct metrics m;
	char *s;

	metrics_init(&m, "x");
	metrics_observe(&m, METRIC_QUERY_DURATION, 0, 0.0005);	/* le 0.001 */
	metrics_observe(&m, METRIC_QUERY_DURATION, 0, 0.001);	/* le 0.001: bounds are inclusive */
	metrics_observe(&m, METRIC_QUERY_DURATION, 0, 0.003);	/* le 0.005 */
	metrics_observe(&m, METRIC_QUERY_DURATION, 0, 0.25);	/* le 0.25 */
	metrics_observe(&m, METRIC_QUERY_DURATION, 0, 11);	/* only +Inf */
	metrics_observe(&m, METRIC_QUERY_DURATION, 0, NAN);	/* ignored */
	metrics_observe(&m, METRIC_COMMIT_SEND_DELAY, 0, 0.02);
	s = render(&m);
	ok(sample_is(s, "pgpush_query_duration_seconds_bucket{le=\"0.001\"}", "2"), "le is inclusive");
	ok(sample_is(s, "pgpush_query_duration_seconds_bucket{le=\"0.0025\"}", "2"), "cumulative");
	ok(sample_is(s, "pgpush_query_duration_seconds_bucket{le=\"0.005\"}", "3"), "cumulative, next bucket");
	ok(sample_is(s, "pgpush_query_duration_seconds_bucket{le=\"0.1\"}", "3"), "bucket 0.1");
	ok(sample_is(s, "pgpush_query_duration_seconds_bucket{le=\"0.25\"}", "4"), "bucket 0.25");
	ok(sample_is(s, "pgpush_query_duration_seconds_bucket{le=\"10\"}", "4"), "integer bound without a point");
	ok(sample_is(s, "pgpush_query_duration_seconds_bucket{le=\"+Inf\"}", "5"), "+Inf counts everything");
	ok(sample_is(s, "pgpush_query_duration_seconds_count", "5"), "count, NaN ignored");
	ok(sample_is(s, "pgpush_query_duration_seconds_sum", "11.2545"), "sum");
	ok(sample_is(s, "pgpush_commit_send_delay_seconds_bucket{le=\"0.025\"}", "1"), "second histogram");
	ok(sample_is(s, "pgpush_commit_send_delay_seconds_bucket{le=\"60\"}", "1"), "its last finite bucket");
	is_int(metrics_get(&m, METRIC_QUERY_DURATION, 0), 5, "get: a histogram's count");
	free(s);
}

static void test_escaping(void)
{
	struct metrics m;
	char *s;

	metrics_init(&m, "1.0 \"rc\" C:\\x\nnext");
	s = render(&m);
	ok(sample_is(s, "pgpush_build_info{version=\"1.0 \\\"rc\\\" C:\\\\x\\nnext\"}", "1"),
	   "label value: quote, backslash and newline escaped");
	free(s);

	/* Longer than the label's room: cut, still well-formed. */
	{
		char v[200];

		memset(v, 'v', sizeof(v) - 1);
		v[sizeof(v) - 1] = '\0';
		metrics_init(&m, v);
		is_int(strlen(m.version), METRICS_MAX_VERSION - 1, "long version cut");
		metrics_init(&m, NULL);
		s = render(&m);
		ok(sample_is(s, "pgpush_build_info{version=\"\"}", "1"), "NULL version: empty label");
		free(s);
	}
}

static void test_numbers(void)
{
	struct metrics m;
	char *s;

	metrics_init(&m, "x");
	metrics_set(&m, METRIC_SNAPSHOT_AGE, 0, 0.1);
	metrics_set(&m, METRIC_SNAPSHOT_BYTES, 0, INFINITY);
	metrics_set(&m, METRIC_AUDIENCES, 0, -0.0);
	metrics_set(&m, METRIC_DASHBOARDS, 0, NAN);
	metrics_set(&m, METRIC_UNSENT_BYTES, 0, 1e300);
	s = render(&m);
	ok(sample_is(s, "pgpush_snapshot_age_seconds", "0.1"), "0.1 is the shortest form");
	ok(sample_is(s, "pgpush_snapshot_bytes", "+Inf"), "+Inf");
	ok(sample_is(s, "pgpush_audiences", "0"), "-0 is 0");
	ok(sample_is(s, "pgpush_dashboards", "NaN"), "NaN");
	ok(sample_is(s, "pgpush_unsent_bytes", "1e+300"), "huge: exponent");
	free(s);
}

/* snprintf's contract for every buffer size: the same total, a prefix of the
 * whole, NUL-terminated. */
static void test_render_sizes(void)
{
	struct metrics m;
	char *whole, *buf;
	size_t len, cap;
	bool good = true;

	metrics_init(&m, "9.9.9");
	metrics_observe(&m, METRIC_QUERY_DURATION, 0, 0.01);
	if (metrics_render_alloc(&m, &whole, &len) != 0)
		abort();
	is_int(strlen(whole), len, "render_alloc: length and NUL");
	is_int(metrics_render(&m, NULL, 0), len, "cap 0: length only");
	ok(len > 4096, "the exposition is larger than a small fixed buffer (%zu bytes)", len);
	buf = malloc(len + 2);
	for (cap = 1; cap <= len + 1; cap++) {
		size_t n;

		memset(buf, 'Z', len + 2);
		n = metrics_render(&m, buf, cap);
		if (n != len || buf[cap - 1] != '\0' || memcmp(buf, whole, cap - 1) != 0 || buf[cap] != 'Z') {
			good = false;
			printf("#   cap %zu: got %zu\n", cap, n);
			break;
		}
	}
	ok(good, "every cap from 1 to len+1: prefix, NUL, total length, no overrun");
	free(buf);
	free(whole);
}

int main(void)
{
	test_table();
	test_fresh();
	test_updates();
	test_histogram();
	test_escaping();
	test_numbers();
	test_render_sizes();
	return done_testing();
}
