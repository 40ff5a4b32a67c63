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

	is_int(run(&cfg, NULL, err, "--refresh-interval", "0.5", NULL), CONFIG_OK, "fractional seconds");
	ok(cfg.refresh_interval == 0.5, "refresh interval 0.5");
	config_free(&cfg);

	is_int(run(&cfg, NULL, err, "--permessage-deflate", "off", NULL), CONFIG_OK, "--permessage-deflate off");
	ok(!cfg.permessage_deflate, "compression turned off");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, NULL, NULL, NULL), CONFIG_OK, "defaults again");
	ok(cfg.permessage_deflate, "compression on by default");
	config_free(&cfg);
	is_int(run(&cfg, NULL, err, "--permessage-deflate", "maybe", NULL), CONFIG_ERROR, "bad boolean");
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
	ok(config_origin_allowed(&cfg, "http://any", 10), "any origin by default");
	config_free(&cfg);
	return done_testing();
}
