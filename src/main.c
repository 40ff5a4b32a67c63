/*
 * pgpushd: keeps Socket.IO dashboards live from PostgreSQL. main wires the
 * modules together once: options, the loop, signals, the dashboard (the
 * database side), the hub and the server (the client side).
 */
#include "autoconfig.h"

#include "config.h"
#include "dashboard.h"
#include "hub.h"
#include "log.h"
#include "sdnotify.h"
#include "server.h"
#include "tls.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define SHUTDOWN_GRACE 0.9 /* s to finish close handshakes on SIGTERM */

static struct server server;
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

/* SIGHUP: new TLS certificates for new handshakes; open conns keep
 * theirs. (A --config reload calls tls_reload the same way.) */
static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	const struct config *cfg = w->data;

	(void)tls_reload(server.tls, cfg->tls_cert, cfg->tls_key);
}

/* Thousands of sockets need thousands of descriptors: raise the soft limit
 * to the hard one, and keep --max-clients within it, so that a full house
 * gets 503s rather than EMFILE. */
#define FD_RESERVE 64 /* listener, database, logs, the EMFILE spare... */

static void raise_fd_limit(struct config *cfg)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("cannot raise the descriptor limit");
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return;
	if (rl.rlim_cur > FD_RESERVE && cfg->max_clients > rl.rlim_cur - FD_RESERVE) {
		cfg->max_clients = rl.rlim_cur - FD_RESERVE;
		log_info("max-clients is %llu: the descriptor limit is %llu (raise it with ulimit -n or LimitNOFILE=)",
			 (unsigned long long)cfg->max_clients, (unsigned long long)rl.rlim_cur);
	}
}

int main(int argc, char **argv)
{
	struct config cfg;
	char err[512];
	struct ev_loop *loop;
	struct hub hub;
	struct dashboard *dash;
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
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(&cfg);

	loop = ev_default_loop(EVFLAG_AUTO);
	if (!loop) {
		log_error("cannot initialise the event loop");
		return 1;
	}
	hub_init(&hub);
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
		};

		if (server_start(&server, loop, &cfg, &opts) < 0)
			return 1;
	}

	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigint);
	ev_signal_init(&sighup, on_hup, SIGHUP);
	sighup.data = &cfg;
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
	ev_loop_destroy(loop);
	config_free(&cfg);
	return 0;
}
