#include "autoconfig.h"
#include "config.h"
#include <strings.h>

#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum opt_type { OPT_STR, OPT_U64, OPT_SECONDS, OPT_LEVEL, OPT_PMD, OPT_FORMAT };

struct option_def {
	const char *name;   /* flag without "--" */
	const char *env;    /* environment variable */
	enum opt_type type;
	size_t offset;
	const char *def;    /* default as text; NULL = unset */
	uint64_t min, max;  /* for OPT_U64 */
	const char *help;
	bool live;          /* applied on SIGHUP without a restart */
};

#define OFF(f) offsetof(struct config, f)

static const struct option_def options[] = {
	{ "listen", "PGPUSH_LISTEN", OPT_STR, OFF(listen), "127.0.0.1:3000", 0, 0,
	  "address and port to serve on (HOST:PORT, [V6]:PORT; port 0 = any free port)", false },
	{ "db", "DATABASE_URL", OPT_STR, OFF(db), NULL, 0, 0,
	  "libpq conninfo or URI (default: $DATABASE_URL, else the PG* variables)", false },
	{ "db-file", "PGPUSH_DB_FILE", OPT_STR, OFF(db_file), NULL, 0, 0,
	  "read the libpq conninfo from this file (keeps a password out of ps; or use PGPASSFILE)", false },
	{ "channel", "PGPUSH_CHANNEL", OPT_STR, OFF(channel), "pgpush", 0, 0,
	  "NOTIFY channel the triggers ring", false },
	{ "change-source", "PGPUSH_CHANGE_SOURCE", OPT_STR, OFF(change_source), "notify", 0, 0,
	  "how changes are learnt: notify (the doorbell triggers) or logical (logical replication); must match pgpush.change_source()", false },
	{ "change-source-fallback", "PGPUSH_CHANGE_SOURCE_FALLBACK", OPT_STR, OFF(change_source_fallback), "none", 0, 0,
	  "with --change-source logical: none, or notify to listen to the doorbell when wal_level, REPLICATION or the publication is missing", false },
	{ "refresh-interval", "PGPUSH_REFRESH_INTERVAL", OPT_SECONDS, OFF(refresh_interval), "30", 0, 0,
	  "seconds without a notification before a fallback recompute", false },
	{ "min-refresh-interval", "PGPUSH_MIN_REFRESH_INTERVAL", OPT_U64, OFF(min_refresh_interval), "50", 0, 3600000,
	  "least ms between the starts of two recomputes: a flood of notifications gets at most one per interval", true },
	{ "query", "PGPUSH_QUERY", OPT_STR, OFF(query), "SELECT pgpush.dashboard()", 0, 0,
	  "SQL returning one JSON object: the dashboard document", false },
	{ "query-timeout", "PGPUSH_QUERY_TIMEOUT", OPT_SECONDS, OFF(query_timeout), "10", 0, 0,
	  "seconds the dashboard query may run (statement_timeout)", false },
	{ "allowed-origin", "PGPUSH_ALLOWED_ORIGIN", OPT_STR, OFF(allowed_origin), NULL, 0, 0,
	  "Origins allowed besides the same origin, comma-separated (e.g. http://localhost:5173); * allows any (default: same origin only)", true },
	{ "static-dir", "PGPUSH_STATIC_DIR", OPT_STR, OFF(static_dir), NULL, 0, 0,
	  "serve the files of this directory at / (GET and HEAD only)", false },
	{ "permessage-deflate", "PGPUSH_PERMESSAGE_DEFLATE", OPT_PMD, OFF(permessage_deflate), "on", 0, 0,
	  "compress WebSocket messages when the client offers it (RFC 7692): off, standalone (each message on its own), shared (context takeover, one deflate per group of clients), or on (the default: shared)", false },
	{ "log-level", "PGPUSH_LOG_LEVEL", OPT_LEVEL, OFF(log_level), "info", 0, 0,
	  "debug, info, warn or error", true },
	{ "ping-interval", "PGPUSH_PING_INTERVAL", OPT_U64, OFF(ping_interval), "25000", 10, 3600000,
	  "Engine.IO ping interval, ms", false },
	{ "ping-timeout", "PGPUSH_PING_TIMEOUT", OPT_U64, OFF(ping_timeout), "20000", 10, 3600000,
	  "Engine.IO pong timeout, ms", false },
	{ "connect-timeout", "PGPUSH_CONNECT_TIMEOUT", OPT_U64, OFF(connect_timeout), "45000", 10, 3600000,
	  "ms a client has to send its Socket.IO CONNECT", true },
	{ "max-payload", "PGPUSH_MAX_PAYLOAD", OPT_U64, OFF(max_payload), "1000000", 128, 1073741824,
	  "largest WebSocket message a client may send, bytes", true },
	{ "max-clients", "PGPUSH_MAX_CLIENTS", OPT_U64, OFF(max_clients), "100000", 1, 10000000,
	  "concurrent connections and Engine.IO sessions (capped by the descriptor limit); beyond it new ones get 503", true },
	{ "max-header-bytes", "PGPUSH_MAX_HEADER_BYTES", OPT_U64, OFF(max_header_bytes), "8192", 256, 1048576,
	  "largest HTTP request head (request line and headers), bytes", false },
	{ "max-headers", "PGPUSH_MAX_HEADERS", OPT_U64, OFF(max_headers), "64", 1, 64,
	  "header lines in an HTTP request (431 beyond)", false },
	{ "request-timeout", "PGPUSH_REQUEST_TIMEOUT", OPT_U64, OFF(request_timeout), "10000", 10, 3600000,
	  "ms a client has to send a complete HTTP request head", false },
	{ "send-timeout", "PGPUSH_SEND_TIMEOUT", OPT_U64, OFF(send_timeout), "10000", 100, 3600000,
	  "ms a client may take no byte of pending output before it is dropped", true },
	{ "jwt-secret-file", "PGPUSH_JWT_SECRET_FILE", OPT_STR, OFF(jwt_secret_file), NULL, 0, 0,
	  "verify client tokens (JWT) with this HMAC secret (>= 32 bytes) or PEM public key (RS256, ES256); clients then need a token", false },
	{ "jwt-audience", "PGPUSH_JWT_AUDIENCE", OPT_STR, OFF(jwt_audience), NULL, 0, 0,
	  "a token's aud must contain this (default: aud not checked)", false },
	{ "jwt-issuer", "PGPUSH_JWT_ISSUER", OPT_STR, OFF(jwt_issuer), NULL, 0, 0,
	  "a token's iss must equal this (default: iss not checked)", false },
	{ "jwt-role-claim", "PGPUSH_JWT_ROLE_CLAIM", OPT_STR, OFF(jwt_role_claim), "role", 0, 0,
	  "the claim naming the database role (a name, or a PostgREST path such as .app_metadata.role)", false },
	{ "anon-role", "PGPUSH_ANON_ROLE", OPT_STR, OFF(anon_role), NULL, 0, 0,
	  "database role of clients without a token (default: a token is required once --jwt-secret-file is set)", false },
	{ "max-audiences", "PGPUSH_MAX_AUDIENCES", OPT_U64, OFF(max_audiences), "1000", 1, 1000000,
	  "audiences (dashboard, role and declared claims) computed at once; beyond it a new one is refused", false },
	{ "query-connections", "PGPUSH_QUERY_CONNECTIONS", OPT_U64, OFF(query_connections), "0", 0, 64,
	  "database connections running dashboard queries, so that one slow audience does not hold up the others (0: 2 with tokens, else 1)", false },
	{ "query-db", "PGPUSH_QUERY_DB", OPT_STR, OFF(query_db), NULL, 0, 0,
	  "run the dashboard queries on this libpq conninfo, typically a streaming replica of --db (each waits until it has replayed the triggering commit); default: on --db", false },
	{ "replica-max-lag-wait", "PGPUSH_REPLICA_MAX_LAG_WAIT", OPT_SECONDS, OFF(replica_max_lag_wait), "5", 0, 0,
	  "with --query-db: seconds a recompute waits for the replica to replay the triggering commit before it fails (replica_lagging) and is retried", false },
	{ "audience-grace", "PGPUSH_AUDIENCE_GRACE", OPT_U64, OFF(audience_grace), "30000", 0, 86400000,
	  "ms an audience without clients is kept (not recomputed: a client that comes back wakes it) before it is dropped", false },
	{ "max-pending-bytes", "PGPUSH_MAX_PENDING_BYTES", OPT_U64, OFF(max_pending_bytes), "8388608", 4096, 1073741824,
	  "unsent output per client before it is dropped, bytes", true },
	{ "config", "PGPUSH_CONFIG", OPT_STR, OFF(config), NULL, 0, 0,
	  "read settings from this file (key = value, as postgresql.conf); flags and the environment win over it", false },
	{ "log-format", "PGPUSH_LOG_FORMAT", OPT_FORMAT, OFF(log_format), "text", 0, 0,
	  "text or json (one object per line)", true },
	{ "metrics-allow", "PGPUSH_METRICS_ALLOW", OPT_STR, OFF(metrics_allow), "127.0.0.0/8,::1", 0, 0,
	  "comma-separated CIDR networks that may GET /metrics; others get 403", true },
	{ "trusted-proxy", "PGPUSH_TRUSTED_PROXY", OPT_STR, OFF(trusted_proxy), NULL, 0, 0,
	  "comma-separated CIDR networks of reverse proxies whose X-Forwarded-For names the client (default: none)", true },
	{ "max-total-pending-bytes", "PGPUSH_MAX_TOTAL_PENDING_BYTES", OPT_U64, OFF(max_total_pending_bytes), "268435456", 65536, 1099511627776,
	  "unsent output of all clients together; beyond it the clients with the most are dropped first, bytes", true },
	{ "tls-cert", "PGPUSH_TLS_CERT", OPT_STR, OFF(tls_cert), NULL, 0, 0,
	  "serve TLS (https://, wss://) on --listen with this PEM certificate and its chain (re-read on SIGHUP)", true },
	{ "tls-key", "PGPUSH_TLS_KEY", OPT_STR, OFF(tls_key), NULL, 0, 0,
	  "the PEM private key of --tls-cert (re-read on SIGHUP)", true },
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static int set_value(struct config *cfg, const struct option_def *o,
		     const char *val, const char *source, char *err, size_t errlen)
{
	char *field = (char *)cfg + o->offset;

	switch (o->type) {
	case OPT_STR: {
		char **dst = (char **)field;
		char *copy = strdup(val);

		if (!copy) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		free(*dst);
		*dst = copy;
		return 0;
	}
	case OPT_U64: {
		uint64_t v;

		if (!util_parse_u64(val, strlen(val), o->max, &v) || v < o->min) {
			snprintf(err, errlen, "invalid value '%s' for %s: expected an integer from %llu to %llu",
				 val, source, (unsigned long long)o->min, (unsigned long long)o->max);
			return -1;
		}
		*(uint64_t *)field = v;
		return 0;
	}
	case OPT_SECONDS: {
		char *end;
		double v;

		errno = 0;
		v = strtod(val, &end);
		if (errno || end == val || *end || !isfinite(v) || v < 0.01 || v > 86400 * 365) {
			snprintf(err, errlen, "invalid value '%s' for %s: expected seconds from 0.01 to 31536000",
				 val, source);
			return -1;
		}
		*(double *)field = v;
		return 0;
	}
	case OPT_PMD:
		/* The old boolean spellings stay accepted: on, true, 1, yes mean
		 * the default mode, off, false, 0, no mean off. */
		if (strcmp(val, "on") == 0 || strcmp(val, "true") == 0 || strcmp(val, "1") == 0 ||
		    strcmp(val, "yes") == 0) {
			*(enum config_pmd *)field = CONFIG_PMD_DEFAULT;
		} else if (strcmp(val, "off") == 0 || strcmp(val, "false") == 0 ||
			   strcmp(val, "0") == 0 || strcmp(val, "no") == 0) {
			*(enum config_pmd *)field = CONFIG_PMD_OFF;
		} else if (strcmp(val, "standalone") == 0) {
			*(enum config_pmd *)field = CONFIG_PMD_STANDALONE;
		} else if (strcmp(val, "shared") == 0) {
			*(enum config_pmd *)field = CONFIG_PMD_SHARED;
		} else {
			snprintf(err, errlen, "invalid value '%s' for %s: expected off, standalone, shared or on",
				 val, source);
			return -1;
		}
		return 0;
	case OPT_FORMAT:
		if (!log_parse_format(val, (enum log_format *)field)) {
			snprintf(err, errlen, "invalid value '%s' for %s: expected text or json", val, source);
			return -1;
		}
		return 0;
	case OPT_LEVEL:
		if (!log_parse_level(val, (enum log_level *)field)) {
			snprintf(err, errlen, "invalid value '%s' for %s: expected debug, info, warn or error",
				 val, source);
			return -1;
		}
		return 0;
	}
	return -1;
}

static void print_help(FILE *out)
{
	fprintf(out,
		"Usage: pgpushd [OPTION]...\n"
		"Keep Socket.IO dashboards live from PostgreSQL LISTEN/NOTIFY.\n\n");
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option_def *o = &options[i];
		char flag[64];

		snprintf(flag, sizeof(flag), "--%s=VALUE", o->name);
		fprintf(out, "  %-28s %s\n  %-28s [env %s", flag, o->help, "", o->env);
		if (o->def)
			fprintf(out, "; default %s", o->def);
		fprintf(out, "]\n");
	}
	fprintf(out, "  %-28s %s\n  %-28s %s\n", "--help", "show this help and exit",
		"--version", "show the version and exit");
}

static const struct option_def *find_option(const char *name, size_t nlen, bool underscores)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const char *o = options[i].name;
		size_t k;

		if (strlen(o) != nlen)
			continue;
		for (k = 0; k < nlen; k++) {
			char c = name[k];

			if (underscores && c == '_')
				c = '-';
			else if (underscores && c == '-')
				break; /* keys spell '-' as '_' */
			if (c != o[k])
				break;
		}
		if (k == nlen)
			return &options[i];
	}
	return NULL;
}

struct file_ctx {
	struct config *cfg;
	const char *path;
};

static int apply_file_setting(void *ud, const char *key, const char *value, unsigned line,
			      char *err, size_t errlen)
{
	struct file_ctx *fc = ud;
	const struct option_def *o = find_option(key, strlen(key), true);
	char source[128];

	if (!o) {
		snprintf(err, errlen, "unknown key '%s'", key);
		return -1;
	}
	if (strcmp(o->name, "config") == 0) {
		snprintf(err, errlen, "config cannot be set in a configuration file");
		return -1;
	}
	snprintf(source, sizeof(source), "%s", key);
	/* An empty string unsets an option that has no default ("--allowed-origin": the same origin only). */
	if (o->type == OPT_STR && !*value && !o->def) {
		char **dst = (char **)((char *)fc->cfg + o->offset);

		free(*dst);
		*dst = NULL;
		return 0;
	}
	(void)line;
	return set_value(fc->cfg, o, value, source, err, errlen);
}

#define CONFIG_FILE_MAX (1024 * 1024)

static int read_config_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	struct file_ctx fc = { cfg, path };
	char *text, msg[400];
	size_t n;
	int rc;

	if (!f) {
		snprintf(err, errlen, "--config %s: %s", path, strerror(errno));
		return -1;
	}
	text = malloc(CONFIG_FILE_MAX + 1);
	if (!text) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = fread(text, 1, CONFIG_FILE_MAX + 1, f);
	if (ferror(f) || n > CONFIG_FILE_MAX) {
		snprintf(err, errlen, "--config %s: %s", path, ferror(f) ? "read error" : "larger than 1 MiB");
		fclose(f);
		free(text);
		return -1;
	}
	fclose(f);
	rc = config_parse_text(text, n, apply_file_setting, &fc, msg, sizeof(msg));
	free(text);
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, msg);
	return rc;
}

enum config_result config_parse(struct config *cfg, int argc, char **argv,
				config_getenv_fn *getenv_fn, FILE *out,
				char *err, size_t errlen)
{
	char source[96];
	const struct option_def **flag_opt = NULL;
	const char **flag_val = NULL;
	int nflags = 0;
	const char *path = NULL;
	enum config_result result = CONFIG_ERROR;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (options[i].def &&
		    set_value(cfg, &options[i], options[i].def, "default", err, errlen) < 0)
			return CONFIG_ERROR;
	}
	flag_opt = calloc((size_t)argc + 1, sizeof(*flag_opt));
	flag_val = calloc((size_t)argc + 1, sizeof(*flag_val));
	if (!flag_opt || !flag_val) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* The command line first, only to learn which file to read: it is
	 * applied last, as it wins. */
	for (int a = 1; a < argc; a++) {
		const char *arg = argv[a];
		const struct option_def *o;
		const char *val;
		size_t nlen;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			print_help(out);
			result = CONFIG_HELP;
			goto out;
		}
		if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
			fprintf(out, "pgpushd %s\n", PACKAGE_VERSION);
			result = CONFIG_VERSION;
			goto out;
		}
		if (strncmp(arg, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument '%s' (see --help)", arg);
			goto out;
		}
		arg += 2;
		val = strchr(arg, '=');
		nlen = val ? (size_t)(val - arg) : strlen(arg);
		o = find_option(arg, nlen, false);
		if (!o) {
			snprintf(err, errlen, "unknown option '--%.*s' (see --help)", (int)nlen, arg);
			goto out;
		}
		if (val) {
			val++;
		} else {
			if (a + 1 >= argc) {
				snprintf(err, errlen, "option '--%s' needs a value", o->name);
				goto out;
			}
			val = argv[++a];
		}
		flag_opt[nflags] = o;
		flag_val[nflags++] = val;
		if (strcmp(o->name, "config") == 0)
			path = val;
	}
	if (!path && getenv_fn)
		path = getenv_fn("PGPUSH_CONFIG");
	if (path && *path && read_config_file(cfg, path, err, errlen) < 0)
		goto out;
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const char *v = getenv_fn ? getenv_fn(options[i].env) : NULL;

		if (!v || !*v)
			continue;
		snprintf(source, sizeof(source), "$%s", options[i].env);
		if (set_value(cfg, &options[i], v, source, err, errlen) < 0)
			goto out;
	}
	for (int f = 0; f < nflags; f++) {
		snprintf(source, sizeof(source), "--%s", flag_opt[f]->name);
		if (set_value(cfg, flag_opt[f], flag_val[f], source, err, errlen) < 0)
			goto out;
	}
	{
		char host[256];
		unsigned port;

		if (!config_split_listen(cfg->listen, host, &port)) {
			snprintf(err, errlen, "invalid value '%s' for --listen: expected HOST:PORT",
				 cfg->listen);
			goto out;
		}
	}
	if (!*cfg->channel || strlen(cfg->channel) > 63) {
		snprintf(err, errlen, "invalid value for --channel: 1 to 63 bytes");
		goto out;
	}
	if (!*cfg->query) {
		snprintf(err, errlen, "invalid value for --query: empty");
		goto out;
	}
	if (strcmp(cfg->change_source, "notify") != 0 && strcmp(cfg->change_source, "logical") != 0) {
		snprintf(err, errlen, "invalid value '%s' for --change-source: expected notify or logical",
			 cfg->change_source);
		goto out; /* frees the flag arrays */
	}
	cfg->logical = strcmp(cfg->change_source, "logical") == 0;
	if (strcmp(cfg->change_source_fallback, "none") != 0 &&
	    strcmp(cfg->change_source_fallback, "notify") != 0) {
		snprintf(err, errlen, "invalid value '%s' for --change-source-fallback: expected none or notify",
			 cfg->change_source_fallback);
		goto out; /* frees the flag arrays */
	}
	cfg->fallback_notify = strcmp(cfg->change_source_fallback, "notify") == 0;
	if (cfg->db_file && cfg->db) {
		snprintf(err, errlen, "--db-file and --db (or $DATABASE_URL) both set: use one");
		goto out;
	}
	/* An empty value (tls_cert = '' in the file) is no TLS. */
	if (cfg->tls_cert && !*cfg->tls_cert) {
		free(cfg->tls_cert);
		cfg->tls_cert = NULL;
	}
	if (cfg->tls_key && !*cfg->tls_key) {
		free(cfg->tls_key);
		cfg->tls_key = NULL;
	}
	if (!cfg->tls_cert != !cfg->tls_key) {
		snprintf(err, errlen, "--tls-cert and --tls-key go together: set both or neither");
		goto out;
	}
	{
		char why[160];

		if (cidr_list_parse(cfg->metrics_allow, &cfg->metrics_allow_list, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "invalid value '%s' for --metrics-allow: %s",
				 cfg->metrics_allow, why);
			goto out;
		}
		if (cfg->trusted_proxy && *cfg->trusted_proxy &&
		    cidr_list_parse(cfg->trusted_proxy, &cfg->trusted_proxy_list, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "invalid value '%s' for --trusted-proxy: %s",
				 cfg->trusted_proxy, why);
			goto out;
		}
	}
	result = CONFIG_OK;
out:
	free(flag_opt);
	free(flag_val);
	return result;
}

bool config_option_is_live(const char *name)
{
	const struct option_def *o = find_option(name, strlen(name), false);

	return o && o->live;
}

static bool option_differs(const struct config *a, const struct config *b,
			   const struct option_def *o)
{
	const char *fa = (const char *)a + o->offset, *fb = (const char *)b + o->offset;

	switch (o->type) {
	case OPT_STR: {
		const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;

		return (sa == NULL) != (sb == NULL) || (sa && strcmp(sa, sb) != 0);
	}
	case OPT_U64:
		return *(const uint64_t *)fa != *(const uint64_t *)fb;
	case OPT_SECONDS:
		return *(const double *)fa != *(const double *)fb;
	case OPT_PMD:
		return *(const enum config_pmd *)fa != *(const enum config_pmd *)fb;
	case OPT_LEVEL:
		return *(const enum log_level *)fa != *(const enum log_level *)fb;
	case OPT_FORMAT:
		return *(const enum log_format *)fa != *(const enum log_format *)fb;
	}
	return false;
}

void config_diff(const struct config *a, const struct config *b,
		 void (*fn)(void *ud, const char *name, bool live), void *ud)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (option_differs(a, b, &options[i]))
			fn(ud, options[i].name, options[i].live);
	}
}

void config_apply_live(struct config *to, struct config *from)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option_def *o = &options[i];
		char *ft = (char *)to + o->offset, *ff = (char *)from + o->offset;

		if (!o->live)
			continue;
		switch (o->type) {
		case OPT_STR: {
			char *tmp = *(char **)ft;

			*(char **)ft = *(char **)ff;
			*(char **)ff = tmp;
			break;
		}
		case OPT_U64:
			*(uint64_t *)ft = *(uint64_t *)ff;
			break;
		case OPT_SECONDS:
			*(double *)ft = *(double *)ff;
			break;
		case OPT_PMD:
			*(enum config_pmd *)ft = *(enum config_pmd *)ff;
			break;
		case OPT_LEVEL:
			*(enum log_level *)ft = *(enum log_level *)ff;
			break;
		case OPT_FORMAT:
			*(enum log_format *)ft = *(enum log_format *)ff;
			break;
		}
	}
	to->metrics_allow_list = from->metrics_allow_list;
	to->trusted_proxy_list = from->trusted_proxy_list;
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (options[i].type == OPT_STR) {
			char **p = (char **)((char *)cfg + options[i].offset);

			free(*p);
			*p = NULL;
		}
	}
}

enum config_origin config_origin_allowed(const struct config *cfg, const char *origin, size_t len)
{
	const char *p = cfg->allowed_origin;
	enum config_origin r = CONFIG_ORIGIN_NO;

	if (!p)
		return CONFIG_ORIGIN_NO;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n;

		if (!end)
			end = p + strlen(p);
		while (p < end && *p == ' ')
			p++;
		n = (size_t)(end - p);
		while (n && p[n - 1] == ' ')
			n--;
		/* An empty entry ("a,,b") allows nothing, not an empty Origin. */
		if (n == len && len && strncasecmp(p, origin, n) == 0)
			return CONFIG_ORIGIN_LISTED;
		if (n == 1 && *p == '*')
			r = CONFIG_ORIGIN_ANY;
		p = *end ? end + 1 : end;
	}
	return r;
}

int config_read_db_file(struct config *cfg, char *err, size_t errlen)
{
	FILE *f;
	char *text;
	size_t n;

	if (!cfg->db_file)
		return 0;
	f = fopen(cfg->db_file, "r");
	if (!f) {
		snprintf(err, errlen, "--db-file %s: %s", cfg->db_file, strerror(errno));
		return -1;
	}
	text = malloc(65536 + 1);
	if (!text) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = fread(text, 1, 65536 + 1, f);
	if (ferror(f) || n > 65536) {
		snprintf(err, errlen, "--db-file %s: %s", cfg->db_file,
			 ferror(f) ? "read error" : "larger than 64 KiB");
		fclose(f);
		free(text);
		return -1;
	}
	fclose(f);
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ' ||
			 text[n - 1] == '\t'))
		n--;
	text[n] = '\0';
	if (n == 0 || memchr(text, '\0', n)) {
		snprintf(err, errlen, "--db-file %s: %s", cfg->db_file,
			 n ? "holds a NUL byte" : "is empty");
		free(text);
		return -1;
	}
	free(cfg->db);
	cfg->db = text;
	return 0;
}
