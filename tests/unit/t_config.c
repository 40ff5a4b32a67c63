/* Option parsing: defaults, environment, flags, errors. */
#include "autoconfig.h"

#include "config.h"
#include "tap.h"

#include <stdlib.h>
#include <unistd.h>

static const char *fake_env(const char *name)
{
	if (strcmp(name, "DATABASE_URL") == 0)
		return "postgresql://from-env/db";
	if (strcmp(name, "PGPUSH_CHANNEL") == 0)
		return "envchan";
	return NULL;
}

static enum config_result run(struct config *cfg, config_getenv_fn *env, char *err,
			      const char *a1, const char *a2, const char *a3)
{
	char prog[] = "pgpushd";
	char *argv[] = { prog, (char *)a1, (char *)a2, (char *)a3, NULL };
	int argc = 1 + (a1 != NULL) + (a2 != NULL) + (a3 != NULL);
	FILE *devnull = fopen("/dev/null", "w");
	enum config_result r;

	err[0] = '\0';
	r = config_parse(cfg, argc, argv, env, devnull, err, 256);
	fclose(devnull);
	return r;
}

/* ---- the configuration file -------------------------------------------- */

static char seen[1024];

static int collect(void *ud, const char *key, const char *value, unsigned line,
		   char *err, size_t errlen)
{
	size_t n = strlen(seen);

	(void)ud;
	if (strcmp(key, "bad") == 0) {
		snprintf(err, errlen, "bad key");
		return -1;
	}
	snprintf(seen + n, sizeof(seen) - n, "%u:%s=[%s];", line, key, value);
	return 0;
}

static const struct {
	const char *text;
	int rc;
	const char *want; /* settings seen, or the error */
} file_cases[] = {
	{ "", 0, "" },
	{ "# only a comment\n\n   \n", 0, "" },
	{ "a = 1\n", 0, "1:a=[1];" },
	{ "a=1", 0, "1:a=[1];" },
	{ "a 1 # no '=' is fine\n", 0, "1:a=[1];" },
	{ "  log_level = debug   # trailing\n", 0, "1:log_level=[debug];" },
	{ "a = 'x y # z'\n", 0, "1:a=[x y # z];" },
	{ "a = 'it''s'\n", 0, "1:a=[it's];" },
	{ "a = 'it\\'s'\n", 0, "1:a=[it's];" },
	{ "a = ''\n", 0, "1:a=[];" },
	{ "\r\na = 1\r\nb = 2\r\n", 0, "2:a=[1];3:b=[2];" },
	{ "a = 1\n\n# c\nb = 'two'\n", 0, "1:a=[1];4:b=[two];" },
	{ "a = 1\n= 2\n", -1, "line 2: expected a key, found '='" },
	{ "a = 'open\n", -1, "line 1: unterminated quoted value for a" },
	{ "x = 1\na =\n", -1, "line 2: no value for a" },
	{ "a = 1 2\n", -1, "line 1: unexpected text after the value of a" },
	{ "a = 'x' y\n", -1, "line 1: unexpected text after the value of a" },
	{ "a = x'y\n", -1, "line 1: a quote inside the bare value of a" },
	{ "a = 1\nb = 2\nbad = 3\n", -1, "line 3: bad key" },
};

static int write_file(char *path, const char *text)
{
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (!f)
		return -1;
	fputs(text, f);
	fclose(f);
	return 0;
}

static const char *env_config_path;

static const char *env_with_config(const char *name)
{
	if (strcmp(name, "PGPUSH_CONFIG") == 0)
		return env_config_path;
	if (strcmp(name, "PGPUSH_CHANNEL") == 0)
		return "envchan";
	return NULL;
}

static void diff_cb(void *ud, const char *name, bool live)
{
	char *out = ud;
	size_t n = strlen(out);

	snprintf(out + n, 512 - n, "%s%s%s", n ? "," : "", name, live ? "(live)" : "");
}

static void test_file(void)
{
	struct config cfg, next;
	char err[256], path[] = "/tmp/t_config_conf.XXXXXX", diff[512] = "";

	for (size_t i = 0; i < sizeof(file_cases) / sizeof(file_cases[0]); i++) {
		int rc;

		seen[0] = err[0] = '\0';
		rc = config_parse_text(file_cases[i].text, strlen(file_cases[i].text), collect, NULL,
				       err, sizeof(err));
		is_int(rc, file_cases[i].rc, "file case %zu: result", i);
		is_str(rc == 0 ? seen : err, file_cases[i].want, "file case %zu", i);
	}

	if (write_file(path, "channel = filechan\nlog_level = 'warn'\nallowed_origin = 'http://a, http://b'\n"
			     "ping_interval = 1234\nmetrics_allow = 10.0.0.0/8\n") < 0) {
		ok(0, "temporary file");
		return;
	}
	is_int(run(&cfg, NULL, err, "--config", path, NULL), CONFIG_OK, "--config: %s", err);
	is_str(cfg.channel, "filechan", "a file setting");
	is_int(cfg.log_level, LOG_WARN, "a quoted file setting");
	is_int(cfg.ping_interval, 1234, "a number from the file");
	ok(config_origin_allowed(&cfg, "http://b", 8), "a list from the file");
	is_int(cfg.metrics_allow_list.n, 1, "metrics_allow parsed");
	config_free(&cfg);

	env_config_path = path;
	is_int(run(&cfg, env_with_config, err, NULL, NULL, NULL), CONFIG_OK, "$PGPUSH_CONFIG");
	is_str(cfg.channel, "envchan", "the environment beats the file");
	is_int(cfg.log_level, LOG_WARN, "the file beats the default");
	config_free(&cfg);
	is_int(run(&cfg, env_with_config, err, "--channel", "flagchan", NULL), CONFIG_OK, "flags");
	is_str(cfg.channel, "flagchan", "a flag beats the environment and the file");
	config_free(&cfg);

	is_int(run(&cfg, NULL, err, "--config", path, "--log-level=debug"), CONFIG_OK, "base");
	is_int(run(&next, NULL, err, "--config", path, "--listen=127.0.0.1:9"), CONFIG_OK, "next");
	config_diff(&cfg, &next, diff_cb, diff);
	is_str(diff, "listen,log-level(live)", "the diff: %s", diff);
	config_apply_live(&cfg, &next);
	is_int(cfg.log_level, LOG_WARN, "a live option applied");
	is_str(cfg.listen, "127.0.0.1:3000", "a restart option kept");
	config_free(&cfg);
	config_free(&next);
	ok(config_option_is_live("allowed-origin") && !config_option_is_live("listen"), "live or not");

	{
		FILE *f = fopen(path, "w");

		fputs("channel = x\n\nno_such_key = 1\n", f);
		fclose(f);
	}
	is_int(run(&cfg, NULL, err, "--config", path, NULL), CONFIG_ERROR, "an unknown key");
	ok(strstr(err, path) && strstr(err, "line 3: unknown key 'no_such_key'"), "names file and line: %s", err);
	config_free(&cfg);
	{
		FILE *f = fopen(path, "w");

		fputs("config = /etc/other\n", f);
		fclose(f);
	}
	is_int(run(&cfg, NULL, err, "--config", path, NULL), CONFIG_ERROR, "no include");
	config_free(&cfg);
	{
		FILE *f = fopen(path, "w");

		fputs("trusted_proxy = 10.1.2.3/8\n", f);
		fclose(f);
	}
	is_int(run(&cfg, NULL, err, "--config", path, NULL), CONFIG_ERROR, "a bad CIDR");
	ok(strstr(err, "--trusted-proxy") != NULL, "names the option: %s", err);
	config_free(&cfg);
	unlink(path);
	is_int(run(&cfg, NULL, err, "--config", path, NULL), CONFIG_ERROR, "a missing file");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--log-format", "json", NULL), CONFIG_OK, "--log-format");
	is_int(cfg.log_format, LOG_FORMAT_JSON, "json");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--log-format", "xml", NULL), CONFIG_ERROR, "a bad --log-format");
	config_free(&cfg);
}

int main(void)
{
	struct config cfg;
	char err[256];
	char host[256];
	unsigned port;

	is_int(run(&cfg, NULL, err, NULL, NULL, NULL), CONFIG_OK, "no options");
	is_str(cfg.listen, "127.0.0.1:3000", "default --listen");
	is_str(cfg.channel, "pgpush", "default --channel");
	is_str(cfg.query, "SELECT pgpush.dashboard()", "default --query");
	ok(cfg.refresh_interval == 30.0, "default --refresh-interval 30");
	ok(cfg.db == NULL, "no database: libpq's PG* variables");
	is_int(cfg.ping_interval, 25000, "default ping interval");
	is_int(cfg.max_payload, 1000000, "default max payload");
	is_int(cfg.max_headers, 64, "default max headers");
	config_free(&cfg);

	is_int(run(&cfg, NULL, err, NULL, NULL, NULL), CONFIG_OK, "change source defaults");
	ok(!cfg.logical && !cfg.fallback_notify, "default --change-source notify, no fallback");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--change-source=logical", "--change-source-fallback", "notify"),
	       CONFIG_OK, "--change-source logical with the notify fallback");
	ok(cfg.logical && cfg.fallback_notify, "logical, falling back to notify");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--change-source", "carrier-pigeon", NULL), CONFIG_ERROR,
	       "an unknown change source");
	ok(strstr(err, "--change-source") && strstr(err, "notify or logical"), "says what is allowed: %s", err);
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--change-source-fallback", "logical", NULL), CONFIG_ERROR,
	       "an unknown fallback");
	ok(strstr(err, "--change-source-fallback") != NULL, "names the option: %s", err);
	config_free(&cfg);

	is_int(run(&cfg, fake_env, err, NULL, NULL, NULL), CONFIG_OK, "environment");
	is_str(cfg.db, "postgresql://from-env/db", "DATABASE_URL");
	is_str(cfg.channel, "envchan", "PGPUSH_CHANNEL");
	config_free(&cfg);

	is_int(run(&cfg, fake_env, err, "--channel", "flagchan", "--db=host=/tmp"), CONFIG_OK, "flags");
	is_str(cfg.channel, "flagchan", "a flag beats the environment");
	is_str(cfg.db, "host=/tmp", "--name=value form");
	config_free(&cfg);

	is_int(run(&cfg, NULL, err, NULL, NULL, NULL), CONFIG_OK, "--query-db defaults");
	ok(cfg.query_db == NULL && cfg.replica_max_lag_wait == 5.0, "queries on --db, 5 s lag wait");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--query-db=host=replica", "--replica-max-lag-wait", "0.25"), CONFIG_OK,
	       "--query-db and --replica-max-lag-wait");
	is_str(cfg.query_db, "host=replica", "the query conninfo");
	ok(cfg.replica_max_lag_wait == 0.25, "lag wait 0.25 s");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--replica-max-lag-wait", "0", NULL), CONFIG_ERROR, "a zero lag wait");
	ok(strstr(err, "--replica-max-lag-wait") != NULL, "names the option: %s", err);
	config_free(&cfg);

	is_int(run(&cfg, NULL, err, "--refresh-interval", "0.5", NULL), CONFIG_OK, "fractional seconds");
	ok(cfg.refresh_interval == 0.5, "refresh interval 0.5");
	config_free(&cfg);

	is_int(run(&cfg, NULL, err, "--permessage-deflate", "off", NULL), CONFIG_OK, "--permessage-deflate off");
	ok(!cfg.permessage_deflate, "compression turned off");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, NULL, NULL, NULL), CONFIG_OK, "defaults again");
	ok(cfg.permessage_deflate, "compression on by default");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--permessage-deflate", "maybe", NULL), CONFIG_ERROR, "bad mode");
	ok(strstr(err, "expected off, standalone, shared or on") != NULL, "the error names the modes");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--permessage-deflate", "standalone", NULL), CONFIG_OK, "standalone");
	is_int(cfg.permessage_deflate, CONFIG_PMD_STANDALONE, "standalone mode");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--permessage-deflate", "shared", NULL), CONFIG_OK, "shared");
	is_int(cfg.permessage_deflate, CONFIG_PMD_SHARED, "shared mode");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--permessage-deflate", "on", NULL), CONFIG_OK, "on");
	is_int(cfg.permessage_deflate, CONFIG_PMD_DEFAULT, "on is the default mode");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--permessage-deflate", "yes", NULL), CONFIG_OK, "yes (the old boolean)");
	is_int(cfg.permessage_deflate, CONFIG_PMD_DEFAULT, "yes is the default mode");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, NULL, NULL, NULL), CONFIG_OK, "defaults");
	is_int(cfg.permessage_deflate, CONFIG_PMD_DEFAULT, "unset is the default mode");
	config_free(&cfg);

	is_int(run(&cfg, NULL, err, "--bogus", NULL, NULL), CONFIG_ERROR, "unknown option");
	ok(strstr(err, "--bogus") != NULL, "error names the option: %s", err);
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--refresh-interval", "soon", NULL), CONFIG_ERROR, "bad seconds");
	ok(strstr(err, "--refresh-interval") && strstr(err, "soon"), "error names option and value: %s", err);
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--max-clients", "0", NULL), CONFIG_ERROR, "below the minimum");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--max-headers", "65", NULL), CONFIG_ERROR, "more headers than the parser holds");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--ping-interval", "12x", NULL), CONFIG_ERROR, "not a number");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--log-level", "loud", NULL), CONFIG_ERROR, "bad log level");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--listen", "nowhere", NULL), CONFIG_ERROR, "listen without a port");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--channel", NULL, NULL), CONFIG_ERROR, "missing value");
	ok(strstr(err, "needs a value") != NULL, "says the value is missing: %s", err);
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "stray", NULL, NULL), CONFIG_ERROR, "positional argument");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--tls-cert", "/x.pem", NULL), CONFIG_ERROR, "--tls-cert without --tls-key");
	ok(strstr(err, "--tls-key") != NULL, "says they go together: %s", err);
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--tls-key", "/x.key", NULL), CONFIG_ERROR, "--tls-key without --tls-cert");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--tls-cert", "", NULL), CONFIG_OK, "an empty --tls-cert");
	ok(cfg.tls_cert == NULL, "is no TLS");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--help", NULL, NULL), CONFIG_HELP, "--help");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--version", NULL, NULL), CONFIG_VERSION, "--version");
	config_free(&cfg);

	ok(config_split_listen("127.0.0.1:3000", host, &port) && strcmp(host, "127.0.0.1") == 0 &&
	   port == 3000, "host:port");
	ok(config_split_listen("[::1]:80", host, &port) && strcmp(host, "::1") == 0 && port == 80,
	   "[v6]:port");
	ok(config_split_listen(":0", host, &port) && host[0] == '\0' && port == 0, ":port (any address)");
	ok(!config_split_listen("::1:80", host, &port), "bare IPv6 refused");
	ok(!config_split_listen("a:70000", host, &port), "port out of range");

	is_int(run(&cfg, NULL, err, "--allowed-origin", "http://a.example, https://b.example", NULL),
	       CONFIG_OK, "origin list");
	ok(config_origin_allowed(&cfg, "https://b.example", 17), "listed origin allowed");
	ok(!config_origin_allowed(&cfg, "http://evil.example", 19), "other origin refused");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--allowed-origin", "http://a.example,,http://b.example", NULL),
	       CONFIG_OK, "origin list with an empty entry");
	ok(!config_origin_allowed(&cfg, "", 0), "an empty entry does not allow an empty Origin");
	ok(config_origin_allowed(&cfg, "http://b.example", 16), "entries after it still count");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, NULL, NULL, NULL), CONFIG_OK, "min refresh interval");
	is_int(cfg.min_refresh_interval, 50, "default --min-refresh-interval 50 ms (20 recomputes/s)");
	config_free(&cfg);

	is_int(run(&cfg, fake_env, err, "--db-file", "/x", NULL), CONFIG_ERROR, "--db-file with $DATABASE_URL");
	ok(strstr(err, "--db-file") != NULL, "the error names --db-file: %s", err);
	config_free(&cfg);
	{
		char path[] = "/tmp/t_config_dbXXXXXX";
		int fd = mkstemp(path);
		FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

		ok(f != NULL, "temporary file");
		if (f) {
			fputs("host=/tmp password=secret\n\n", f);
			fclose(f);
		}
		is_int(run(&cfg, NULL, err, "--db-file", path, NULL), CONFIG_OK, "--db-file");
		is_int(config_read_db_file(&cfg, err, sizeof(err)), 0, "read");
		is_str(cfg.db, "host=/tmp password=secret", "conninfo from the file, newline removed");
		config_free(&cfg);
		f = fopen(path, "w");
		if (f)
			fclose(f);
		is_int(run(&cfg, NULL, err, "--db-file", path, NULL), CONFIG_OK, "--db-file, empty");
		is_int(config_read_db_file(&cfg, err, sizeof(err)), -1, "an empty file is an error");
		config_free(&cfg);
		unlink(path);
		is_int(run(&cfg, NULL, err, "--db-file", path, NULL), CONFIG_OK, "--db-file, missing");
		is_int(config_read_db_file(&cfg, err, sizeof(err)), -1, "a missing file is an error");
		ok(strstr(err, path) != NULL, "the error names the file: %s", err);
		config_free(&cfg);
	}

	is_int(run(&cfg, NULL, err, NULL, NULL, NULL), CONFIG_OK, "default origins");
	is_int(config_origin_allowed(&cfg, "http://any", 10), CONFIG_ORIGIN_NO,
	       "no origin is listed by default (same origin only)");
	is_int(cfg.max_total_pending_bytes, 256u << 20, "default --max-total-pending-bytes 256 MiB");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--allowed-origin", "*", NULL), CONFIG_OK, "--allowed-origin *");
	is_int(config_origin_allowed(&cfg, "http://any", 10), CONFIG_ORIGIN_ANY, "* allows any origin");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--allowed-origin", "*,http://a.example", NULL), CONFIG_OK, "* and a list");
	is_int(config_origin_allowed(&cfg, "HTTP://A.example", 16), CONFIG_ORIGIN_LISTED,
	       "a listed origin is told from *, case-insensitively");
	config_free(&cfg);

#define SAME(o, h) config_origin_matches_host(o, strlen(o), h, strlen(h))
	ok(SAME("http://localhost:3000", "localhost:3000"), "same host and port");
	ok(SAME("http://LocalHost:3000", "localhost:3000"), "hosts compared case-insensitively");
	ok(SAME("http://example.com", "example.com"), "no port: http's 80 on both sides");
	ok(SAME("http://example.com", "example.com:80"), "Host with :80 and an http Origin without");
	ok(SAME("http://example.com:80", "example.com"), "Origin with :80 and a Host without");
	ok(SAME("https://example.com", "example.com"), "https behind a proxy: the Host has no port");
	ok(SAME("https://example.com", "example.com:443"), "https and :443");
	ok(!SAME("https://example.com", "example.com:80"), "https is not port 80");
	ok(!SAME("http://example.com", "example.com:443"), "http is not port 443");
	ok(SAME("http://[::1]:3000", "[::1]:3000"), "IPv6 literal");
	ok(SAME("http://127.0.0.1:3000", " 127.0.0.1:3000 "), "spaces around the Host");
	ok(!SAME("http://localhost:5173", "localhost:3000"), "another port is another origin");
	ok(!SAME("http://evil.example", "localhost:3000"), "another host");
	ok(!SAME("http://localhost.evil.example:3000", "localhost:3000"), "a longer host");
	ok(!SAME("http://localhost", "localhost.evil"), "a shorter host");
	ok(!SAME("null", "localhost:3000"), "Origin null never matches");
	ok(!SAME("file://localhost:3000", "localhost:3000"), "other schemes never match");
	ok(!SAME("ws://localhost:3000", "localhost:3000"), "browsers send http(s), never ws");
	ok(!SAME("http://localhost:3000/", "localhost:3000"), "a path is not an origin");
	ok(!SAME("http://user@localhost:3000", "localhost:3000"), "userinfo is not an origin");
	ok(!SAME("http://localhost:3000", ""), "an empty Host matches nothing");
	ok(!SAME("http://", ""), "an empty host matches nothing");
	ok(!SAME("http://localhost:0", "localhost"), "port 0");
	ok(!SAME("http://localhost:99999", "localhost:99999"), "port out of range");
	ok(!SAME("http://a:1:2", "a:1:2"), "a bare IPv6 address");
#undef SAME
	test_file();
	return done_testing();
}
