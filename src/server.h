/*
 * server: the listening socket, accept, the list of connections and their
 * reaping, the routes of HTTP requests, and shutdown. Routing is here; what
 * a route answers is in conn (Socket.IO) and files (static files).
 */
#ifndef PGPUSH_SERVER_H
#define PGPUSH_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>
#include <json-c/json.h>

#include "config.h"
#include "hub.h"

struct conn;

/* Health as the dashboard sees it: fills a small JSON object into out and
 * returns true when ready to serve (200) or false (503). */
typedef bool server_health_fn(void *ud, char *out, size_t outlen);

struct server {
	struct ev_loop *loop;
	const struct config *cfg;
	struct hub *hub;
	int lfd;
	int spare_fd;            /* reserved for EMFILE, see server.c */
	ev_io accept_w;
	ev_timer accept_retry;
	ev_prepare reaper;
	struct conn *conns;      /* all live connections */
	size_t nconns;
	struct conn *reap;       /* closed, freed before the loop blocks */
	struct json_tokener *tok;/* reused for every Socket.IO packet */
	struct buf *ping_frame;  /* the Engine.IO ping, shared by all */
	server_health_fn *health;
	void *health_ud;
	bool shutting_down;
	char bound[80];          /* "127.0.0.1:3000" */
	unsigned long accepted, rejected;
};

/* Binds cfg->listen and starts accepting. Returns 0, or -1 with a logged
 * error. */
int server_start(struct server *s, struct ev_loop *loop, const struct config *cfg,
		 struct hub *hub, server_health_fn *health, void *health_ud)
	__attribute__((warn_unused_result));

/* Stops accepting and starts closing every WebSocket with 1001. */
void server_shutdown(struct server *s);

/* Frees everything; call after the loop has stopped. */
void server_free(struct server *s);

/* Used by conn. */
void server_conn_closed(struct server *s, struct conn *c);

#endif
