/*
 * server: the listening socket, accept, the connections and Engine.IO
 * sessions (the sid table), reaping after each loop iteration, shutdown, and
 * the routes of HTTP requests: /socket.io/ (and, for the protocol test
 * server, /engine.io/), /healthz, static files.
 */
#ifndef PGPUSH_SERVER_H
#define PGPUSH_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>
#include <json-c/json.h>

#include "buf.h"
#include "config.h"
#include "http.h"
#include "socketio.h"

struct conn;
struct pmd_inflater;
struct session;

/* Health as the application sees it: fills a small JSON object into out
 * and returns true when ready to serve (200) or false (503). */
typedef bool server_health_fn(void *ud, bool detailed, char *out, size_t outlen);

#define SERVER_SESSION_BUCKETS 16384 /* power of two */

struct server_options {
	const struct socketio_app *app;
	void *app_ud;
	server_health_fn *health;   /* NULL: no /healthz */
	void *health_ud;
	bool polling;               /* serve the HTTP long-polling transport */
	bool engineio_path;         /* plain Engine.IO sessions at /engine.io/ */
	bool cors_any;              /* Access-Control-Allow-Origin: * */
};

/* Sessions waiting for the same kind of heartbeat deadline, oldest first. */
struct hb_list {
	struct server *srv;
	struct session *head, *tail;
	ev_timer timer;          /* fires at head's deadline */
};

struct server {
	struct ev_loop *loop;
	const struct config *cfg;
	const struct socketio_app *app;
	void *app_ud;
	server_health_fn *health;
	void *health_ud;
	bool polling, engineio_path, cors_any;

	int lfd;
	int spare_fd;            /* reserved for EMFILE, see server.c */
	ev_io accept_w;
	ev_timer accept_retry;
	ev_prepare reaper;       /* flushes polling responses, frees the closed */
	struct conn *conns;      /* all live connections */
	size_t nconns;
	struct conn *reap;       /* closed, freed before the loop blocks */
	struct session *sessions[SERVER_SESSION_BUCKETS];
	size_t nsessions;
	struct hb_list hb_ping, hb_pong; /* next ping due; pong due */
	struct session *flush_list;
	struct session *session_reap;
	struct json_tokener *tok;/* reused for every Socket.IO packet */
	struct buf *ping_frame;  /* the Engine.IO ping, shared by all */
	struct pmd_inflater *inflater; /* shared: no client context takeover */
	bool shutting_down;
	char bound[80];          /* "127.0.0.1:3000" */
	unsigned long accepted, rejected;
};

/* Binds cfg->listen and starts accepting. Returns 0, or -1 with a logged
 * error. s must stay where it is while the loop runs. */
int server_start(struct server *s, struct ev_loop *loop, const struct config *cfg,
		 const struct server_options *opts)
	__attribute__((warn_unused_result));

/* Stops accepting and closes every session (WebSockets with 1001). */
void server_shutdown(struct server *s);

/* Frees everything; call after the loop has stopped. */
void server_free(struct server *s);

/* Used by conn. */
void server_conn_closed(struct server *s, struct conn *c);
void server_route(struct server *s, struct conn *c, const struct http_request *req,
		  size_t head_len, const char *body, size_t body_len);

#endif
