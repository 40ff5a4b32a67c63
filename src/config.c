#include "autoconfig.h"
#include "config.h"
#include <strings.h>

#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum opt_type { OPT_STR, OPT_U64, OPT_SECONDS, OPT_LEVEL, OPT_BOOL };

struct option_def {
	const char *name;   /* flag without "--" */
	const char *env;    /* environment variable */
	enum opt_type type;
	size_t offset;
	const char *def;    /* default as text; NULL = unset */
	uint64_t min, max;  /* for OPT_U64 */
	const char *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct option_def options[] = {
	{ "listen", "PGPUSH_LISTEN", OPT_STR, OFF(listen), "127.0.0.1:3000", 0, 0,
	  "address and port to serve on (HOST:PORT, [V6]:PORT; port 0 = any free port)" },
	{ "db", "DATABASE_URL", OPT_STR, OFF(db), NULL, 0, 0,
	  "libpq conninfo or URI (default: $DATABASE_URL, else the PG* variables)" },
	{ "db-file", "PGPUSH_DB_FILE", OPT_STR, OFF(db_file), NULL, 0, 0,
	  "read the libpq conninfo from this file (keeps a password out of ps; or use PGPASSFILE)" },
	{ "channel", "PGPUSH_CHANNEL", OPT_STR, OFF(channel), "pgpush", 0, 0,
	  "NOTIFY channel the triggers ring" },
	{ "refresh-interval", "PGPUSH_REFRESH_INTERVAL", OPT_SECONDS, OFF(refresh_interval), "30", 0, 0,
	  "seconds without a notification before a fallback recompute" },
	{ "min-refresh-interval", "PGPUSH_MIN_REFRESH_INTERVAL", OPT_U64, OFF(min_refresh_interval), "50", 0, 3600000,
	  "least ms between the starts of two recomputes: a flood of notifications gets at most one per interval" },
	{ "query", "PGPUSH_QUERY", OPT_STR, OFF(query), "SELECT pgpush.dashboard()", 0, 0,
	  "SQL returning one JSON object: the dashboard document" },
	{ "query-timeout", "PGPUSH_QUERY_TIMEOUT", OPT_SECONDS, OFF(query_timeout), "10", 0, 0,
	  "seconds the dashboard query may run (statement_timeout)" },
	{ "allowed-origin", "PGPUSH_ALLOWED_ORIGIN", OPT_STR, OFF(allowed_origin), NULL, 0, 0,
	  "comma-separated Origin values allowed to connect (default: any)" },
	{ "static-dir", "PGPUSH_STATIC_DIR", OPT_STR, OFF(static_dir), NULL, 0, 0,
	  "serve the files of this directory at / (GET and HEAD only)" },
	{ "permessage-deflate", "PGPUSH_PERMESSAGE_DEFLATE", OPT_BOOL, OFF(permessage_deflate), "on", 0, 0,
	  "compress WebSocket messages when the client offers it (RFC 7692): on or off" },
	{ "log-level", "PGPUSH_LOG_LEVEL", OPT_LEVEL, OFF(log_level), "info", 0, 0,
	  "debug, info, warn or error" },
	{ "ping-interval", "PGPUSH_PING_INTERVAL", OPT_U64, OFF(ping_interval), "25000", 10, 3600000,
	  "Engine.IO ping interval, ms" },
	{ "ping-timeout", "PGPUSH_PING_TIMEOUT", OPT_U64, OFF(ping_timeout), "20000", 10, 3600000,
	  "Engine.IO pong timeout, ms" },
	{ "connect-timeout", "PGPUSH_CONNECT_TIMEOUT", OPT_U64, OFF(connect_timeout), "45000", 10, 3600000,
	  "ms a client has to send its Socket.IO CONNECT" },
	{ "max-payload", "PGPUSH_MAX_PAYLOAD", OPT_U64, OFF(max_payload), "1000000", 128, 1073741824,
	  "largest WebSocket message a client may send, bytes" },
	{ "max-clients", "PGPUSH_MAX_CLIENTS", OPT_U64, OFF(max_clients), "100000", 1, 10000000,
	  "concurrent connections and Engine.IO sessions (capped by the descriptor limit); beyond it new ones get 503" },
	{ "max-header-bytes", "PGPUSH_MAX_HEADER_BYTES", OPT_U64, OFF(max_header_bytes), "8192", 256, 1048576,
	  "largest HTTP request head (request line and headers), bytes" },
	{ "max-headers", "PGPUSH_MAX_HEADERS", OPT_U64, OFF(max_headers), "64", 1, 64,
	  "header lines in an HTTP request (431 beyond)" },
	{ "request-timeout", "PGPUSH_REQUEST_TIMEOUT", OPT_U64, OFF(request_timeout), "10000", 10, 3600000,
	  "ms a client has to send a complete HTTP request head" },
	{ "send-timeout", "PGPUSH_SEND_TIMEOUT", OPT_U64, OFF(send_timeout), "10000", 100, 3600000,
	  "ms a client may take no byte of pending output before it is dropped" },
	{ "max-pending-bytes", "PGPUSH_MAX_PENDING_BYTES", OPT_U64, OFF(max_pending_bytes), "8388608", 4096, 1073741824,
	  "unsent output per client before it is dropped, bytes" },
	{ "tls-cert", "PGPUSH_TLS_CERT", OPT_STR, OFF(tls_cert), NULL, 0, 0,
	  "serve TLS (https://, wss://) on --listen with this PEM certificate and its chain (reloaded on SIGHUP)" },
	{ "tls-key", "PGPUSH_TLS_KEY", OPT_STR, OFF(tls_key), NULL, 0, 0,
	  "the PEM private key of --tls-cert" },
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
	case OPT_BOOL:
		if (strcmp(val, "on") == 0 || strcmp(val, "true") == 0 || strcmp(val, "1") == 0 ||
		    strcmp(val, "yes") == 0) {
			*(bool *)field = true;
		} else if (strcmp(val, "off") == 0 || strcmp(val, "false") == 0 ||
			   strcmp(val, "0") == 0 || strcmp(val, "no") == 0) {
			*(bool *)field = false;
		} else {
			snprintf(err, errlen, "invalid value '%s' for %s: expected on or off", val, source);
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

enum config_result config_parse(struct config *cfg, int argc, char **argv,
				config_getenv_fn *getenv_fn, FILE *out,
				char *err, size_t errlen)
{
	char source[96];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (options[i].def &&
		    set_value(cfg, &options[i], options[i].def, "default", err, errlen) < 0)
			return CONFIG_ERROR;
	}
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const char *v = getenv_fn ? getenv_fn(options[i].env) : NULL;

		if (!v || !*v)
			continue;
		snprintf(source, sizeof(source), "$%s", options[i].env);
		if (set_value(cfg, &options[i], v, source, err, errlen) < 0)
			return CONFIG_ERROR;
	}
	for (int a = 1; a < argc; a++) {
		const char *arg = argv[a];
		const struct option_def *o = NULL;
		const char *val;
		size_t nlen;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			print_help(out);
			return CONFIG_HELP;
		}
		if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
			fprintf(out, "pgpushd %s\n", PACKAGE_VERSION);
			return CONFIG_VERSION;
		}
		if (strncmp(arg, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument '%s' (see --help)", arg);
			return CONFIG_ERROR;
		}
		arg += 2;
		val = strchr(arg, '=');
		nlen = val ? (size_t)(val - arg) : strlen(arg);
		for (size_t i = 0; i < N_OPTIONS; i++) {
			if (strlen(options[i].name) == nlen && strncmp(options[i].name, arg, nlen) == 0)
				o = &options[i];
		}
		if (!o) {
			snprintf(err, errlen, "unknown option '--%.*s' (see --help)", (int)nlen, arg);
			return CONFIG_ERROR;
		}
		if (val) {
			val++;
		} else {
			if (a + 1 >= argc) {
				snprintf(err, errlen, "option '--%s' needs a value", o->name);
				return CONFIG_ERROR;
			}
			val = argv[++a];
		}
		snprintf(source, sizeof(source), "--%s", o->name);
		if (set_value(cfg, o, val, source, err, errlen) < 0)
			return CONFIG_ERROR;
	}
	{
		char host[256];
		unsigned port;

		if (!config_split_listen(cfg->listen, host, &port)) {
			snprintf(err, errlen, "invalid value '%s' for --listen: expected HOST:PORT",
				 cfg->listen);
			return CONFIG_ERROR;
		}
	}
	if (!*cfg->channel || strlen(cfg->channel) > 63) {
		snprintf(err, errlen, "invalid value for --channel: 1 to 63 bytes");
		return CONFIG_ERROR;
	}
	if (!*cfg->query) {
		snprintf(err, errlen, "invalid value for --query: empty");
		return CONFIG_ERROR;
	}
	if (cfg->db_file && cfg->db) {
		snprintf(err, errlen, "--db-file and --db (or $DATABASE_URL) both set: use one");
		return CONFIG_ERROR;
	}
	if (!cfg->tls_cert != !cfg->tls_key) {
		snprintf(err, errlen, "--tls-cert and --tls-key go together: set both or neither");
		return CONFIG_ERROR;
	}
	return CONFIG_OK;
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

bool config_split_listen(const char *s, char host[256], unsigned *port)
{
	const char *colon;
	const char *h = s;
	size_t hlen;
	uint64_t p;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return false;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return false;
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen))
			return false; /* bare IPv6 needs brackets */
	}
	if (hlen >= 256 || !util_parse_u64(colon + 1, strlen(colon + 1), 65535, &p))
		return false;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (unsigned)p;
	return true;
}

bool config_origin_allowed(const struct config *cfg, const char *origin, size_t len)
{
	const char *p = cfg->allowed_origin;

	if (!p)
		return true;
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
		if (n && ((n == 1 && *p == '*') || (n == len && strncasecmp(p, origin, n) == 0)))
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
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
