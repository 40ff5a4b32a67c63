/*
 * server: the listening socket, accept (EMFILE-safe, --max-clients), and
 * the router every accepted conn starts with: /socket.io/ to the Socket.IO
 * engine (and, for the protocol test server, /engine.io/ to a plain
 * Engine.IO engine), /healthz, static files. The server owns the conn
 * context (every conn), the engines and the Socket.IO layer; shutdown
 * closes them all and ends the loop once the last conn is gone.
 */
#ifndef PGPUSH_SERVER_H
#define PGPUSH_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <ev.h>

#include "config.h"
#include "engine.h"
#include "peer.h"
#include "socketio.h"
#include "tls.h"
#include "transport.h"

/* Health as the application sees it: fills a small JSON object into out
 * and returns true when ready to serve (200) or false (503). detailed is
 * true only for a loopback peer (127.0.0.0/8, ::1, ::ffff:127.x): what
 * only an operator on the host should read. */
typedef bool server_health_fn(void *ud, bool detailed, char *out, size_t outlen);

struct server_options {
	const struct socketio_app *app;  /* Socket.IO at /socket.io/ */
	void *app_ud;
	server_health_fn *health;        /* NULL: no /healthz */
	void *health_ud;
	bool polling;                    /* serve the HTTP long-polling transport */
	/* Plain Engine.IO at /engine.io/ (the protocol test server), or NULL. */
	const struct engine_handlers *engineio_app;
	void *engineio_ud;
	bool cors_any;                   /* Access-Control-Allow-Origin: * */
	deadline_clock_fn *now;          /* NULL: monotonic */
	server_health_fn *ready;         /* NULL: no /readyz */
	void *ready_ud;
	/* Before GET /metrics renders pgpush_metrics: sets the gauges the
	 * server does not know (snapshot size and age). NULL: none. */
	void (*metrics_refresh)(void *ud);
	void *metrics_ud;
};

struct server {
	struct ev_loop *loop;
	const struct config *cfg;
	server_health_fn *health;
	void *health_ud;
	server_health_fn *ready;
	void *ready_ud;
	void (*metrics_refresh)(void *ud);
	void *metrics_ud;
	ev_timer beat;           /* /livez: stamps `alive` while the loop turns */
	ev_tstamp alive;
	bool cors_any;
	bool has_engineio;

	int lfd;
	int spare_fd;            /* reserved for EMFILE, see server.c */
	ev_io accept_w;
	ev_timer accept_retry;
	struct conn_ctx cx;      /* every conn */
	struct engine sio_eng;   /* /socket.io/ */
	struct socketio sio;
	struct engine eio_eng;   /* /engine.io/ when has_engineio */
	bool shutting_down;
	struct tls_server *tls;  /* --tls-cert: every conn speaks TLS; else NULL */
	char bound[80];          /* "127.0.0.1:3000" */
	unsigned long accepted, rejected;
};

/* Binds cfg->listen and starts accepting. Returns 0, or -1 with a logged
 * error. s must stay where it is while the loop runs. */
int server_start(struct server *s, struct ev_loop *loop, const struct config *cfg,
		 const struct server_options *opts) __attribute__((warn_unused_result));

/* Stops accepting and closes every session (WebSockets with 1001); the
 * loop is broken once every conn is gone. */
void server_shutdown(struct server *s);

/* Frees everything; call after the loop has stopped. */
void server_free(struct server *s);

/* The router: the handlers of a conn nobody has adopted (owner: server). */
extern const struct conn_handlers server_router;

/* Sets up everything but the listening socket (unit tests). */
int server_init(struct server *s, struct ev_loop *loop, const struct config *cfg,
		const struct server_options *opts) __attribute__((warn_unused_result));

/* /livez: the loop stamps its heartbeat every SERVER_BEAT s; older than
 * SERVER_LIVE_BOUND s, /livez answers 503. */
#define SERVER_BEAT 1.0
#define SERVER_LIVE_BOUND 5.0

#endif
