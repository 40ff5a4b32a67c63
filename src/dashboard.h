/*
 * dashboard: when to recompute, and what clients learn about it. Owns the
 * two database connections: a listener (LISTEN, and once per recompute the
 * version draw from pgpush.version_seq with the set of attached tables: a
 * read-write session, kept free of long queries so that notifications are
 * not delayed) and a read-only query connection that runs only the
 * dashboard query. Also the fallback timer and the refresh policy: at most
 * one query in flight plus one pending, starts at least
 * --min-refresh-interval apart, whatever the number of notifications.
 * Results become snapshots published through the hub; failures become
 * dashboardDataError with a code and a fixed message (details: the log).
 */
#ifndef PGPUSH_DASHBOARD_H
#define PGPUSH_DASHBOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "config.h"
#include "hub.h"

struct dashboard;

/* Creates the dashboard and starts connecting. NULL when out of memory. */
struct dashboard *dashboard_new(struct ev_loop *loop, const struct config *cfg, struct hub *hub);
void dashboard_free(struct dashboard *d);

/* Fills out with a JSON status object, always complete and NUL-terminated
 * (outlen >= 32): {"status"} only, or with detailed, the connections,
 * counters, the error clients see and the last error's detail (PostgreSQL's
 * message, shortened to fit). True when healthy (listener connected and a
 * snapshot exists). Matches server_health_fn. */
bool dashboard_health(void *d, bool detailed, char *out, size_t outlen);

/* /readyz (matches server_health_fn): ready while a NOTIFY round trip on
 * the listener completed within DASHBOARD_READY_BOUND s, the notification
 * queue is below DASHBOARD_QUEUE_MAX full, and a snapshot exists. The
 * probe runs every DASHBOARD_PROBE_INTERVAL s. */
#define DASHBOARD_PROBE_INTERVAL 1.0
#define DASHBOARD_READY_BOUND 3.0
#define DASHBOARD_QUEUE_MAX 0.5
bool dashboard_ready(void *d, bool detailed, char *out, size_t outlen);

/* Sets the gauges of pgpush_metrics only the dashboard knows (snapshot
 * age); server_options.metrics_refresh. */
void dashboard_metrics(void *d);

/* Bits of the reason for the next recompute. */
#define DASHBOARD_REASON_STARTUP 1u
#define DASHBOARD_REASON_RECONNECT 2u
#define DASHBOARD_REASON_TIMER 4u
#define DASHBOARD_REASON_NOTIFY 8u
#define DASHBOARD_REASON_REGISTRY 16u
#define DASHBOARD_REASON_LEADER 32u  /* this instance became the cluster's leader */

/* Tables changed (names as pgpush's doorbell sends them: relname): every
 * dashboard registered on one of them (the default one: on any) is
 * recomputed for each of its live audiences. The NOTIFY path calls this;
 * another change source may too. */
void dashboard_tables_changed(struct dashboard *d, const char *const *tables, size_t n);

/* Formats a reason ("startup", "reconnect", "leader", "timer", "notify:a,b", or
 * "notify" when no attached table was named) from the bits and the
 * comma-separated table list. Exposed for tests. */
void dashboard_format_reason(unsigned bits, const char *tables, char *out, size_t outlen);

/* True when an attached table's name may appear in `reason`: 1 to 63 bytes
 * of valid UTF-8, no control character, comma, quote or backslash. */
bool dashboard_name_ok(const char *name);

#endif
