/*
 * metrics-exposition: prints a full exposition of pgpushd's metrics, every
 * metric with a sample and every label value used, for
 * tests/unit/t_promtool.sh (promtool check metrics) and
 * tests/unit/t_metrics_doc.sh (the docs/operations.md table).
 */
#include "autoconfig.h"

#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	static struct metrics m;
	char *text;
	size_t len, i;
	int id;

	metrics_init(&m, PACKAGE_VERSION);
	for (id = 0; id < METRIC_COUNT; id++) {
		for (i = 0; i < metrics_nseries(id); i++) {
			switch (metrics_def(id)->type) {
			case METRICS_COUNTER:
				metrics_add(&m, id, i, 3 + i);
				break;
			case METRICS_GAUGE:
				metrics_set(&m, id, i, 2 + i);
				break;
			case METRICS_HISTOGRAM:
				metrics_observe(&m, id, i, 0.004);
				metrics_observe(&m, id, i, 0.3);
				metrics_observe(&m, id, i, 1000);
				break;
			}
		}
	}
	metrics_set(&m, METRIC_SNAPSHOT_AGE, 0, 0.75);
	if (metrics_render_alloc(&m, &text, &len) != 0) {
		fprintf(stderr, "metrics-exposition: out of memory\n");
		return 1;
	}
	fwrite(text, 1, len, stdout);
	free(text);
	return 0;
}
