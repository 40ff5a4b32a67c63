/*
 * config: the option table. Every option is a command-line flag with an
 * environment fallback and a default; this table is also the --help text.
 * Parsing is pure (no I/O but the getenv callback), so tests drive it.
 */
#ifndef PGPUSH_CONFIG_H
#define PGPUSH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "authority.h"
#include "cidr.h"
#include "conffile.h"
#include "log.h"

/* --permessage-deflate: the same values as pmdneg's enum pmdneg_mode (the
 * base layer cannot name it; websocket checks they agree at compile time).
 *  - OFF: never negotiated, every frame plain.
 *  - STANDALONE: server_no_context_takeover, each message compressed on its
 *    own, once for everyone.
 *  - SHARED: server context takeover; a broadcast is deflated once per group
 *    of clients whose windows end with the same payload (docs/design.md,
 *    "Shared-context compression"). */
enum config_pmd {
	CONFIG_PMD_OFF = 0,
	CONFIG_PMD_STANDALONE = 1,
	CONFIG_PMD_SHARED = 2,
};
/* What "on" (and an unset option) means. */
#define CONFIG_PMD_DEFAULT CONFIG_PMD_SHARED

struct config {
	char *listen;            /* HOST:PORT */
	char *db;                /* libpq conninfo or URI; NULL = PG* variables */
	char *db_file;           /* file holding the conninfo (config_read_db_file) */
	char *channel;
	double refresh_interval; /* seconds */
	uint64_t min_refresh_interval; /* ms between the starts of two recomputes */
	char *query;
	char *allowed_origin;    /* comma-separated list besides the same origin; NULL = none */
	char *static_dir;        /* NULL = no static files */
	enum log_level log_level;
	enum config_pmd permessage_deflate; /* RFC 7692 compression mode; 0: off */
	uint64_t ping_interval;  /* ms */
	uint64_t ping_timeout;   /* ms */
	uint64_t connect_timeout;/* ms, Socket.IO CONNECT after the open packet */
	uint64_t max_payload;    /* bytes per WebSocket message */
	uint64_t max_clients;
	uint64_t max_header_bytes;
	uint64_t max_headers;    /* header lines per request (the parser holds 64) */
	uint64_t request_timeout;/* ms to receive a whole HTTP request head */
	uint64_t send_timeout;   /* ms a client may take no byte of pending output */
	uint64_t max_pending_bytes; /* unsent output per client */
	uint64_t max_total_pending_bytes; /* unsent output of all clients together */
	char *jwt_secret_file;   /* NULL: no tokens (see --anon-role) */
	char *jwt_audience;
	char *jwt_issuer;
	char *jwt_role_claim;
	char *anon_role;         /* role of tokenless clients; NULL: none */
	uint64_t max_audiences;
	uint64_t query_connections;
	char *query_db;          /* conninfo of the dashboard queries; NULL = db */
	double replica_max_lag_wait; /* seconds, with query_db */
	uint64_t audience_grace; /* ms */
	double query_timeout;    /* seconds, statement_timeout of the dashboard query */
	char *config;            /* --config FILE; NULL = none */
	enum log_format log_format;
	char *metrics_allow;     /* CIDR list text: who may GET /metrics */
	char *trusted_proxy;     /* CIDR list text: whose X-Forwarded-For counts; NULL = nobody */
	struct cidr_list metrics_allow_list;  /* parsed from the texts above */
	struct cidr_list trusted_proxy_list; \
	char *change_source;     /* "notify" or "logical" (validated) */
	char *change_source_fallback; /* NULL, "none" or "notify" */
	bool logical;            /* change_source is "logical" */
	bool fallback_notify;    /* change_source_fallback is "notify" */
	char *tls_cert;          /* PEM: the certificate, then its chain; NULL = no TLS */
	char *tls_key;           /* PEM private key */
};

enum config_result {
	CONFIG_OK = 0,
	CONFIG_HELP = 1,     /* --help printed: exit 0 */
	CONFIG_VERSION = 2,  /* --version printed: exit 0 */
	CONFIG_ERROR = -1,   /* err holds a one-line message: exit 2 */
};

typedef const char *config_getenv_fn(const char *name);

/* Fills cfg from defaults, then the configuration file (--config FILE or
 * $PGPUSH_CONFIG; the one I/O besides getenv), then the environment, then
 * argv (last wins).
 * Strings in cfg are heap copies owned by cfg (config_free). Help and
 * version text go to out. On CONFIG_ERROR, err names the option. */
enum config_result config_parse(struct config *cfg, int argc, char **argv,
				config_getenv_fn *getenv_fn, FILE *out,
				char *err, size_t errlen)
	__attribute__((warn_unused_result));

void config_free(struct config *cfg);

/* Whether an option (its flag name without dashes, "allowed-origin") can
 * change on SIGHUP without a restart. */
bool config_option_is_live(const char *name);

/* The options whose values differ between a and b, by flag name: calls fn
 * for each. For SIGHUP: what to apply and what needs a restart. */
void config_diff(const struct config *a, const struct config *b,
		 void (*fn)(void *ud, const char *name, bool live), void *ud);

/* Moves the live options of from into to (strings are swapped, so that
 * config_free(from) frees the old ones). */
void config_apply_live(struct config *to, struct config *from);

/* When cfg->db_file is set, reads the conninfo from it into cfg->db (the
 * whole file, trailing whitespace removed; at most 64 KiB). Returns 0, or
 * -1 with a one-line message in err. The one option that does I/O. */
int config_read_db_file(struct config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Whether --allowed-origin allows origin (length-delimited): listed
 * (case-insensitively), allowed only by a "*" entry, or not at all (also
 * when there is no list). The same origin is config_origin_matches_host's. */
enum config_origin {
	CONFIG_ORIGIN_NO = 0,
	CONFIG_ORIGIN_LISTED = 1,
	CONFIG_ORIGIN_ANY = 2,
};
enum config_origin config_origin_allowed(const struct config *cfg, const char *origin, size_t len);

#endif
