/*
 * pgpushd: keeps Socket.IO dashboards live from PostgreSQL. main wires the
 * modules together once: options, the loop, signals, the dashboard (the
 * database side), the hub and the server (the client side).
 */
#include "autoconfig.h"

#include "config.h"
#include "dashboard.h"
#include "hub.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "sdnotify.h"
#include "server.h"
#include "tls.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define SHUTDOWN_GRACE 0.9 /* s to finish close handshakes on SIGTERM */

static struct server server;
static struct config cfg;	/* the live settings; SIGHUP changes the live ones */
static int main_argc;
static char **main_argv;
static struct sdnotify sdn;	/* systemd's notify socket; off without one */

/* Type=notify's watchdog: proves the loop turns, every WatchdogSec/2. */
static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
	sdnotify_watchdog(&sdn);
}

static const char *env_lookup(const char *name)
{
	return getenv(name);
}

static void raise_fd_limit(struct config *c);

static void on_diff(void *ud, const char *name, bool live)
{
	if (live)
		log_info("reload: %s changed", name);
	else
		log_warn("reload: %s changed but needs a restart; keeping the running value", name);
}

/* The certificate files are read again on every reload, changed or not
 * (a renewal keeps the paths): new handshakes get the new certificate,
 * open connections keep theirs. Turning TLS on or off needs a restart. */
static void reload_tls(void)
{
	if (!server.tls) {
		if (cfg.tls_cert)
			log_warn("reload: tls-cert set but the listener speaks plain HTTP; turning TLS on needs a restart");
		return;
	}
	if (!cfg.tls_cert || !cfg.tls_key) {
		log_warn("reload: tls-cert unset but the listener speaks TLS; turning TLS off needs a restart");
		return;
	}
	(void)tls_reload(server.tls, cfg.tls_cert, cfg.tls_key);
}

/* SIGHUP: read the configuration again (file, environment, command line)
 * and apply what can change live; nothing is dropped. */
static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct config next;
	char err[512];
	enum config_result r;
	FILE *devnull = fopen("/dev/null", "w");

	sdnotify_reloading(&sdn);
	r = config_parse(&next, main_argc, main_argv, env_lookup, devnull ? devnull : stdout,
			 err, sizeof(err));
	if (devnull)
		fclose(devnull);
	if (r == CONFIG_OK && config_read_db_file(&next, err, sizeof(err)) < 0)
		r = CONFIG_ERROR;
	if (r != CONFIG_OK) {
		log_error("reload failed, keeping every setting: %s", r == CONFIG_ERROR ? err : "?");
		config_free(&next);
		sdnotify_ready(&sdn, "serving (the last reload failed)");
		return;
	}
	raise_fd_limit(&next);
	config_diff(&cfg, &next, on_diff, NULL);
	config_apply_live(&cfg, &next);
	config_free(&next);
	log_set_level(cfg.log_level);
	log_set_format(cfg.log_format);
	reload_tls();
	log_info("reloaded the configuration%s%s", cfg.config ? " from " : "",
		 cfg.config ? cfg.config : "");
	sdnotify_ready(&sdn, "serving");
}

static void on_grace_over(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	static ev_timer grace;

	if (server.shutting_down) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	log_info("signal %d: closing %zu connections", w->signum, server.cx.nconns);
	sdnotify_stopping(&sdn);
	server_shutdown(&server);
	ev_timer_init(&grace, on_grace_over, SHUTDOWN_GRACE, 0);
	ev_timer_start(loop, &grace);
}

/* Thousands of sockets need thousands of descriptors: raise the soft limit
 * to the hard one, and keep --max-clients within it, so that a full house
 * gets 503s rather than EMFILE. */
#define FD_RESERVE 64 /* listener, database, logs, the EMFILE spare... */

static void raise_fd_limit(struct config *c)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("cannot raise the descriptor limit");
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return;
	if (rl.rlim_cur > FD_RESERVE && c->max_clients > rl.rlim_cur - FD_RESERVE) {
		c->max_clients = rl.rlim_cur - FD_RESERVE;
		log_info("max-clients is %llu: the descriptor limit is %llu (raise it with ulimit -n or LimitNOFILE=)",
			 (unsigned long long)c->max_clients, (unsigned long long)rl.rlim_cur);
	}
}

/* --jwt-secret-file and --anon-role: tokens decide audiences. A key that
 * does not load stops the start (exit 2): better than serving without. */
static int setup_auth(const struct config *c, struct hub *hub, struct jwt_key **key)
{
	struct jwt_policy pol;
	char err[256];

	jwt_policy_init(&pol);
	if (c->jwt_role_claim)
		pol.role_claim = c->jwt_role_claim;
	pol.audience = c->jwt_audience;
	pol.issuer = c->jwt_issuer;
	if (!jwt_role_path_valid(pol.role_claim)) {
		log_error("--jwt-role-claim %s: not a claim name or a path like .app_metadata.role",
			  pol.role_claim);
		return -1;
	}
	if (c->anon_role && (!*c->anon_role || strlen(c->anon_role) > JWT_MAX_ROLE)) {
		log_error("--anon-role: a role name of 1 to %d bytes", JWT_MAX_ROLE);
		return -1;
	}
	if (c->jwt_secret_file) {
		FILE *f = fopen(c->jwt_secret_file, "rb");
		char *data = malloc(JWT_MAX_KEY_FILE + 1);
		size_t n = 0;

		if (!f || !data) {
			log_error("--jwt-secret-file %s: %s", c->jwt_secret_file,
				  f ? "out of memory" : strerror(errno));
			if (f)
				fclose(f);
			free(data);
			return -1;
		}
		n = fread(data, 1, JWT_MAX_KEY_FILE + 1, f);
		fclose(f);
		if (n > JWT_MAX_KEY_FILE) {
			log_error("--jwt-secret-file %s: larger than %d bytes", c->jwt_secret_file,
				  JWT_MAX_KEY_FILE);
			free(data);
			return -1;
		}
		if (jwt_key_load(data, n, key, err, sizeof(err)) < 0) {
			log_error("--jwt-secret-file %s: %s", c->jwt_secret_file, err);
			memset(data, 0, n);
			free(data);
			return -1;
		}
		memset(data, 0, n);
		free(data);
	}
	hub_set_auth(hub, *key, &pol, c->anon_role, c->max_audiences,
		     (double)c->audience_grace / 1000.0);
	if (hub_auth_on(hub))
		log_info("tokens %s, anonymous role %s, at most %llu audiences",
			 *key ? "verified" : "not accepted", c->anon_role ? c->anon_role : "(none)",
			 (unsigned long long)c->max_audiences);
	else
		log_warn("no --jwt-secret-file nor --anon-role: every client that reaches the port "
			 "gets the dashboards as pgpushd's own role");
	return 0;
}

int main(int argc, char **argv)
{
	char err[512];
	struct ev_loop *loop;
	struct hub hub;
	struct dashboard *dash;
	struct jwt_key *key = NULL;
	ev_signal sigterm, sigint, sighup;
	ev_timer watchdog;
	int rc;

	switch (config_parse(&cfg, argc, argv, env_lookup, stdout, err, sizeof(err))) {
	case CONFIG_OK:
		break;
	case CONFIG_HELP:
	case CONFIG_VERSION:
		config_free(&cfg);
		return 0;
	case CONFIG_ERROR:
	default:
		fprintf(stderr, "pgpushd: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	if (config_read_db_file(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgpushd: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	log_set_level(cfg.log_level);
	log_set_format(cfg.log_format);
	main_argc = argc;
	main_argv = argv;
	metrics_init(&pgpush_metrics, PACKAGE_VERSION);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(&cfg);

	loop = ev_default_loop(EVFLAG_AUTO);
	if (!loop) {
		log_error("cannot initialise the event loop");
		return 1;
	}
	if (hub_init(&hub) < 0 || setup_auth(&cfg, &hub, &key) < 0)
		return hub.def ? 2 : 1;
	dash = dashboard_new(loop, &cfg, &hub);
	if (!dash) {
		log_error("out of memory");
		return 1;
	}
	{
		struct server_options opts = {
			.app = &hub_app,
			.app_ud = &hub,
			.health = dashboard_health,
			.health_ud = dash,
			.polling = true,
			.ready = dashboard_ready,
			.ready_ud = dash,
			.metrics_refresh = dashboard_metrics,
			.metrics_ud = dash,
		};

		if (server_start(&server, loop, &cfg, &opts) < 0)
			return 1;
	}

	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigint);
	ev_signal_init(&sighup, on_hup, SIGHUP);
	ev_signal_start(loop, &sighup);
	log_info("pgpushd %s started channel=%s refresh_interval=%gs min_refresh_interval=%llums",
		 PACKAGE_VERSION, cfg.channel, cfg.refresh_interval,
		 (unsigned long long)cfg.min_refresh_interval);

	/* After the listener is open: READY=1 tells systemd it may start what
	 * depends on us. A broken NOTIFY_SOCKET is logged, never fatal. */
	if ((rc = sdnotify_init_env(&sdn)) < 0)
		log_warn("NOTIFY_SOCKET %s: %s", getenv("NOTIFY_SOCKET"), sdnotify_strerror(rc));
	if ((rc = sdnotify_ready(&sdn, "serving")) < 0)
		log_warn("sd_notify READY=1: %s", sdnotify_strerror(rc));
	if (sdnotify_watchdog_interval(&sdn) > 0) {
		ev_timer_init(&watchdog, on_watchdog, 0, sdnotify_watchdog_interval(&sdn));
		ev_timer_again(loop, &watchdog);
	}

	ev_run(loop, 0);

	log_info("stopped");
	sdnotify_close(&sdn);
	server_free(&server);
	dashboard_free(dash);
	hub_free(&hub);
	jwt_key_free(key);
	ev_loop_destroy(loop);
	config_free(&cfg);
	return 0;
}
