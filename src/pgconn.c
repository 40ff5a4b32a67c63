#include "autoconfig.h"

#include "pgconn.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PGCONN_CONNECT_TIMEOUT 10.0 /* s to connect and run setup */
#define PGCONN_BACKOFF_MIN 0.25     /* s before the first retry */
#define PGCONN_BACKOFF_MAX 30.0

enum pgconn_state {
	PGC_WAITING,    /* not connected; timer runs until the next attempt */
	PGC_CONNECTING, /* PQconnectPoll */
	PGC_CHECK,      /* pg_backend_pid() in flight (pgconn_require_session) */
	PGC_SETUP,      /* LISTEN / setup command in flight */
	PGC_READY,
	PGC_BUSY,       /* a query in flight */
	PGC_COPY,       /* replication: streaming CopyBoth */
};

struct pgconn {
	struct ev_loop *loop;
	char *conninfo;
	char *name;
	char *listen_channel;
	char *setup_sql;
	const char *session_needs; /* pgconn_require_session; static text */
	bool pooler_logged;        /* the long explanation went to the log */
	const struct pgconn_callbacks *cb;
	void *ud;

	PGconn *pg;
	enum pgconn_state state;
	ev_io io;
	int io_events;
	ev_timer timer;
	unsigned failures;
	int64_t next_attempt_ms;
	PGresult *kept;      /* result of the running command */
	bool replication;    /* replication=database */
	ev_idle more;        /* CopyData left over from the last budget */
	char error[256];
};

static void on_io(struct ev_loop *loop, ev_io *w, int revents);
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void on_more(struct ev_loop *loop, ev_idle *w, int revents);

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct pgconn *pgconn_new(struct ev_loop *loop, const char *conninfo, const char *name,
			  const char *listen_channel, const char *setup_sql,
			  const struct pgconn_callbacks *cb, void *ud)
{
	struct pgconn *pc = calloc(1, sizeof(*pc));

	if (!pc)
		return NULL;
	pc->loop = loop;
	pc->conninfo = dup_or_null(conninfo);
	pc->name = strdup(name);
	pc->listen_channel = dup_or_null(listen_channel);
	pc->setup_sql = dup_or_null(setup_sql);
	pc->cb = cb;
	pc->ud = ud;
	pc->state = PGC_WAITING;
	if (!pc->name || (conninfo && !pc->conninfo) || (listen_channel && !pc->listen_channel) ||
	    (setup_sql && !pc->setup_sql)) {
		pgconn_free(pc);
		return NULL;
	}
	ev_init(&pc->io, on_io);
	ev_timer_init(&pc->timer, on_timer, 0, 0);
	ev_idle_init(&pc->more, on_more);
	pc->io.data = pc->timer.data = pc->more.data = pc;
	return pc;
}

/* libpq messages end in a newline and may span lines: keep the first. */
static void set_error(struct pgconn *pc, const char *msg)
{
	size_t n;

	snprintf(pc->error, sizeof(pc->error), "%s", msg && *msg ? msg : "unknown error");
	n = strcspn(pc->error, "\n");
	pc->error[n] = '\0';
}

/* The socket may change between PQconnectPoll calls even when its number
 * does not: always re-set the watcher (libev: disappearing descriptors). */
static void watch(struct pgconn *pc, int events)
{
	int fd = PQsocket(pc->pg);

	ev_io_stop(pc->loop, &pc->io);
	if (fd < 0)
		return;
	ev_io_set(&pc->io, fd, events);
	ev_io_start(pc->loop, &pc->io);
	pc->io_events = events;
}

/* Stops the watchers and closes the connection; waiting for nothing. */
static void disconnect(struct pgconn *pc)
{
	ev_io_stop(pc->loop, &pc->io);
	ev_timer_stop(pc->loop, &pc->timer);
	ev_idle_stop(pc->loop, &pc->more);
	if (pc->kept) {
		PQclear(pc->kept);
		pc->kept = NULL;
	}
	if (pc->pg) {
		PQfinish(pc->pg);
		pc->pg = NULL;
	}
	pc->state = PGC_WAITING;
}

static void lost(struct pgconn *pc, const char *why)
{
	double delay;
	bool was_busy = pc->state == PGC_BUSY;

	set_error(pc, why);
	disconnect(pc);
	/* Exponential backoff with jitter: many daemons restarting together
	 * must not reconnect in lockstep. */
	delay = PGCONN_BACKOFF_MIN * (double)(1u << (pc->failures < 10 ? pc->failures : 10));
	if (delay > PGCONN_BACKOFF_MAX)
		delay = PGCONN_BACKOFF_MAX;
	delay *= 0.75 + 0.5 * util_random_unit();
	pc->failures++;
	pc->next_attempt_ms = util_now_ms() + (int64_t)(delay * 1000);
	ev_timer_set(&pc->timer, delay, 0);
	ev_timer_start(pc->loop, &pc->timer);
	if (was_busy && pc->cb->on_result)
		pc->cb->on_result(pc, NULL, pc->ud);
	pc->cb->on_lost(pc, pc->error, pc->next_attempt_ms, pc->ud);
}

static void notice_receiver(void *arg, const PGresult *res)
{
	struct pgconn *pc = arg;

	log_info("database notice conn=%s: %s", pc->name,
		 PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
}

static void connect_now(struct pgconn *pc)
{
	const char *keys[12], *vals[12];
	int n = 0;

	/* Our defaults come first so that the user's conninfo overrides them. */
	keys[n] = "application_name"; vals[n++] = pc->name;
	keys[n] = "keepalives_idle"; vals[n++] = "30";
	keys[n] = "keepalives_interval"; vals[n++] = "10";
	keys[n] = "keepalives_count"; vals[n++] = "3";
	keys[n] = "tcp_user_timeout"; vals[n++] = "60000";
	if (pc->conninfo && *pc->conninfo) {
		keys[n] = "dbname";
		vals[n++] = pc->conninfo;
	}
	/* After the user's conninfo, so that nothing overrides it (nor
	 * PGCLIENTENCODING): the documents clients get must be UTF-8 whatever
	 * the database encoding, and PostgreSQL converts for us. */
	keys[n] = "client_encoding"; vals[n++] = "UTF8";
	if (pc->replication) {
		keys[n] = "replication"; vals[n++] = "database";
	}
	keys[n] = NULL;
	vals[n] = NULL;
	pc->pg = PQconnectStartParams(keys, vals, 1);
	if (!pc->pg) {
		lost(pc, "out of memory");
		return;
	}
	if (PQstatus(pc->pg) == CONNECTION_BAD) {
		lost(pc, PQerrorMessage(pc->pg));
		return;
	}
	pc->state = PGC_CONNECTING;
	ev_timer_stop(pc->loop, &pc->timer);
	ev_timer_set(&pc->timer, PGCONN_CONNECT_TIMEOUT, 0);
	ev_timer_start(pc->loop, &pc->timer);
	/* As if the first poll had answered PGRES_POLLING_WRITING. */
	watch(pc, EV_WRITE);
}

void pgconn_start(struct pgconn *pc)
{
	if (pc->state == PGC_WAITING)
		connect_now(pc);
}

/* Setup (our own text) goes through the simple protocol, which runs
 * several statements; queries through the extended protocol, which runs
 * exactly one. */
static int send_command_params(struct pgconn *pc, const char *sql, bool one_statement,
			       int nparams, const char *const *values)
{
	int f;

	if (!(one_statement ? PQsendQueryParams(pc->pg, sql, nparams, NULL, values, NULL, NULL, 0)
			    : PQsendQuery(pc->pg, sql)))
		return -1;
	f = PQflush(pc->pg);
	if (f < 0)
		return -1;
	watch(pc, f == 1 ? EV_READ | EV_WRITE : EV_READ);
	return 0;
}

static int send_command(struct pgconn *pc, const char *sql, bool one_statement)
{
	return send_command_params(pc, sql, one_statement, 0, NULL);
}

static void start_setup(struct pgconn *pc)
{
	char *sql;
	size_t len;
	char *ident = NULL;

	if (pc->listen_channel) {
		/* Quoted: LISTEN keeps the case, as pg_notify() does. */
		ident = PQescapeIdentifier(pc->pg, pc->listen_channel, strlen(pc->listen_channel));
		if (!ident) {
			lost(pc, PQerrorMessage(pc->pg));
			return;
		}
	}
	len = (pc->setup_sql ? strlen(pc->setup_sql) : 0) + (ident ? strlen(ident) : 0) + 16;
	sql = malloc(len);
	if (!sql) {
		PQfreemem(ident);
		lost(pc, "out of memory");
		return;
	}
	snprintf(sql, len, "%s%s%s%s", pc->setup_sql ? pc->setup_sql : "",
		 pc->setup_sql && ident ? ";" : "", ident ? "LISTEN " : "", ident ? ident : "");
	PQfreemem(ident);
	if (!*sql) {
		free(sql);
		pc->state = PGC_READY;
		ev_timer_stop(pc->loop, &pc->timer);
		watch(pc, EV_READ);
		pc->failures = 0;
		pc->cb->on_ready(pc, pc->ud);
		return;
	}
	pc->state = PGC_SETUP;
	if (send_command(pc, sql, false) < 0)
		lost(pc, PQerrorMessage(pc->pg));
	free(sql);
}

/* Connected: first the pooler check if asked for, then the setup. */
static void connected(struct pgconn *pc)
{
	PQsetnonblocking(pc->pg, 1);
	PQsetNoticeReceiver(pc->pg, notice_receiver, pc);
	if (!pc->session_needs) {
		start_setup(pc);
		return;
	}
	/* Nothing that holds session state (LISTEN, SET, a lock) runs before
	 * we know the session is PostgreSQL's own. */
	pc->state = PGC_CHECK;
	if (send_command(pc, "SELECT pg_catalog.pg_backend_pid()", false) < 0)
		lost(pc, PQerrorMessage(pc->pg));
}

/* The answer to the pooler check. PostgreSQL announces its backend's PID
 * in BackendKeyData; a pooler that hands server sessions out (pgbouncer in
 * any pool_mode, and other multiplexing proxies) announces a key of its
 * own, so the PID the server reports differs. A TCP proxy (haproxy)
 * passes PostgreSQL's message through and is not flagged. Session and
 * transaction pools look alike from here: both are refused. */
static void check_done(struct pgconn *pc, PGresult *res)
{
	char msg[256];
	long server_pid;

	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQnfields(res) != 1) {
		snprintf(msg, sizeof(msg), "setup failed: %s",
			 res ? PQresultErrorMessage(res) : "no answer to SELECT pg_backend_pid()");
		lost(pc, msg);
		return;
	}
	server_pid = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	if (server_pid == (long)PQbackendPID(pc->pg)) {
		start_setup(pc);
		return;
	}
	if (!pc->pooler_logged) {
		pc->pooler_logged = true;
		log_error("conn=%s reaches PostgreSQL through a connection pooler or a proxy that "
			  "shares server sessions (the connection announced backend PID %d, the server "
			  "says %ld): %s, and such a pooler moves the connection between server sessions "
			  "(pgbouncer's transaction mode) or may; pgpushd cannot tell a session-mode pool "
			  "from a transaction-mode one, so it refuses both and retries. Point --db "
			  "directly at PostgreSQL (a TCP balancer such as haproxy is fine); see "
			  "\"Connection poolers\" in docs/operations.md",
			  pc->name, PQbackendPID(pc->pg), server_pid, pc->session_needs);
	}
	snprintf(msg, sizeof(msg), "connected through a connection pooler (backend PID %d announced, "
		 "%ld reported): %s; point --db directly at PostgreSQL",
		 PQbackendPID(pc->pg), server_pid, pc->session_needs);
	lost(pc, msg);
}

static void drain_notifies(struct pgconn *pc)
{
	PGnotify *n;

	while (pc->pg && (n = PQnotifies(pc->pg))) {
		if (pc->cb->on_notify)
			pc->cb->on_notify(pc, n->relname, n->extra, pc->ud);
		PQfreemem(n);
	}
}

/* Reads every result that is complete; when the command is done, moves on. */
static void collect_results(struct pgconn *pc)
{
	while (pc->pg && (pc->state == PGC_CHECK || pc->state == PGC_SETUP || pc->state == PGC_BUSY) &&
	       !PQisBusy(pc->pg)) {
		PGresult *r = PQgetResult(pc->pg);

		drain_notifies(pc);
		if (r && PQresultStatus(r) == PGRES_COPY_BOTH && pc->state == PGC_BUSY) {
			/* START_REPLICATION answered: the stream begins. */
			if (pc->kept)
				PQclear(pc->kept);
			pc->kept = NULL;
			pc->state = PGC_COPY;
			pc->cb->on_result(pc, r, pc->ud);
			PQclear(r);
			return;
		}
		if (r) {
			ExecStatusType st = PQresultStatus(r);
			bool keep = !pc->kept || PQresultStatus(pc->kept) != PGRES_FATAL_ERROR;

			/* Keep the first error, else the last result. */
			if (keep && (st == PGRES_FATAL_ERROR || st == PGRES_TUPLES_OK ||
				     st == PGRES_COMMAND_OK || !pc->kept)) {
				if (pc->kept)
					PQclear(pc->kept);
				pc->kept = r;
			} else {
				PQclear(r);
			}
			continue;
		}
		/* NULL: the command is complete. */
		if (pc->state == PGC_CHECK) {
			PGresult *res = pc->kept;

			pc->kept = NULL;
			check_done(pc, res);
			PQclear(res);
		} else if (pc->state == PGC_SETUP) {
			if (pc->kept && PQresultStatus(pc->kept) == PGRES_FATAL_ERROR) {
				char msg[256];

				snprintf(msg, sizeof(msg), "setup failed: %s",
					 PQresultErrorMessage(pc->kept));
				lost(pc, msg);
				return;
			}
			if (pc->kept) {
				PQclear(pc->kept);
				pc->kept = NULL;
			}
			pc->state = PGC_READY;
			pc->failures = 0;
			ev_timer_stop(pc->loop, &pc->timer);
			pc->cb->on_ready(pc, pc->ud);
		} else {
			PGresult *res = pc->kept;

			pc->kept = NULL;
			pc->state = PGC_READY;
			pc->cb->on_result(pc, res, pc->ud);
			PQclear(res);
		}
	}
}

/* Hands at most PGCONN_COPY_BUDGET buffered messages to on_copy; when
 * more may be buffered, the idle watcher comes back for them once the
 * loop has served everything else. */
static void read_copy(struct pgconn *pc)
{
	for (int i = 0; i < PGCONN_COPY_BUDGET; i++) {
		char *buf = NULL;
		int len;

		if (!pc->pg || pc->state != PGC_COPY)
			return;
		len = PQgetCopyData(pc->pg, &buf, 1);
		if (len == 0) {
			ev_idle_stop(pc->loop, &pc->more);
			return;
		}
		if (len == -1) {
			/* The server ended the stream: its error, if any. */
			PGresult *r = PQgetResult(pc->pg);
			char msg[256];

			snprintf(msg, sizeof(msg), "replication stream ended: %s",
				 r && PQresultStatus(r) == PGRES_FATAL_ERROR ? PQresultErrorMessage(r)
									 : PQerrorMessage(pc->pg));
			PQclear(r);
			lost(pc, msg);
			return;
		}
		if (len < 0) {
			lost(pc, PQerrorMessage(pc->pg));
			return;
		}
		pc->cb->on_copy(pc, buf, len, pc->ud);
		PQfreemem(buf);
	}
	if (pc->pg && pc->state == PGC_COPY)
		ev_idle_start(pc->loop, &pc->more);
}

static void on_more(struct ev_loop *loop, ev_idle *w, int revents)
{
	read_copy(w->data);
}

static void poll_connect(struct pgconn *pc)
{
	switch (PQconnectPoll(pc->pg)) {
	case PGRES_POLLING_OK:
		connected(pc);
		break;
	case PGRES_POLLING_READING:
		watch(pc, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		watch(pc, EV_WRITE);
		break;
	case PGRES_POLLING_FAILED:
	default:
		lost(pc, PQerrorMessage(pc->pg));
		break;
	}
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pgconn *pc = w->data;

	if (pc->state == PGC_CONNECTING) {
		poll_connect(pc);
		return;
	}
	if (revents & EV_WRITE) {
		int f = PQflush(pc->pg);

		if (f < 0) {
			lost(pc, PQerrorMessage(pc->pg));
			return;
		}
		if (f == 0 && pc->io_events != EV_READ)
			watch(pc, EV_READ);
	}
	if (revents & EV_READ) {
		if (!PQconsumeInput(pc->pg)) {
			lost(pc, PQerrorMessage(pc->pg));
			return;
		}
		drain_notifies(pc);
		if (!pc->pg)
			return;
		/* The server may have stopped reading until we read: flush
		 * again (libpq-async, nonblocking mode). */
		if (pc->io_events & EV_WRITE) {
			int f = PQflush(pc->pg);

			if (f < 0) {
				lost(pc, PQerrorMessage(pc->pg));
				return;
			}
			if (f == 0)
				watch(pc, EV_READ);
		}
		if (pc->state == PGC_COPY) {
			read_copy(pc);
			return;
		}
		collect_results(pc);
		if (pc->pg && pc->state == PGC_COPY) {
			read_copy(pc);
			return;
		}
		if (pc->pg && PQstatus(pc->pg) == CONNECTION_BAD)
			lost(pc, PQerrorMessage(pc->pg));
	}
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pgconn *pc = w->data;

	if (pc->state == PGC_WAITING)
		connect_now(pc);
	else if (pc->state == PGC_CONNECTING || pc->state == PGC_CHECK || pc->state == PGC_SETUP)
		lost(pc, "timeout while connecting");
}

int pgconn_query(struct pgconn *pc, const char *sql)
{
	if (pc->state != PGC_READY)
		return PGCONN_ERR_NOT_READY;
	pc->state = PGC_BUSY;
	if (send_command(pc, sql, true) < 0) {
		pc->state = PGC_READY;
		lost(pc, PQerrorMessage(pc->pg));
		return PGCONN_ERR_SEND;
	}
	return 0;
}

int pgconn_query_params(struct pgconn *pc, const char *sql, int nparams,
			const char *const *values)
{
	if (pc->state != PGC_READY)
		return PGCONN_ERR_NOT_READY;
	pc->state = PGC_BUSY;
	if (send_command_params(pc, sql, true, nparams, values) < 0) {
		pc->state = PGC_READY;
		lost(pc, PQerrorMessage(pc->pg));
		return PGCONN_ERR_SEND;
	}
	return 0;
}

int pgconn_command(struct pgconn *pc, const char *sql)
{
	if (pc->state != PGC_READY)
		return PGCONN_ERR_NOT_READY;
	pc->state = PGC_BUSY;
	if (send_command(pc, sql, false) < 0) {
		pc->state = PGC_READY;
		lost(pc, PQerrorMessage(pc->pg));
		return PGCONN_ERR_SEND;
	}
	return 0;
}

int pgconn_put_copy(struct pgconn *pc, const void *buf, size_t len)
{
	int f;

	if (pc->state != PGC_COPY)
		return PGCONN_ERR_NOT_READY;
	if (PQputCopyData(pc->pg, buf, (int)len) != 1 || (f = PQflush(pc->pg)) < 0) {
		lost(pc, PQerrorMessage(pc->pg));
		return PGCONN_ERR_SEND;
	}
	if (f == 1 && !(pc->io_events & EV_WRITE))
		watch(pc, EV_READ | EV_WRITE);
	return 0;
}

void pgconn_drop(struct pgconn *pc, const char *why)
{
	if (pc->state != PGC_WAITING)
		lost(pc, why);
}

void pgconn_stop(struct pgconn *pc)
{
	disconnect(pc);
}

void pgconn_require_session(struct pgconn *pc, const char *needs)
{
	pc->session_needs = needs;
}

void pgconn_set_replication(struct pgconn *pc)
{
	pc->replication = true;
}

bool pgconn_is_streaming(const struct pgconn *pc)
{
	return pc->state == PGC_COPY;
}

bool pgconn_is_ready(const struct pgconn *pc)
{
	return pc->state == PGC_READY || pc->state == PGC_BUSY || pc->state == PGC_COPY;
}

bool pgconn_is_busy(const struct pgconn *pc)
{
	return pc->state == PGC_BUSY;
}

const char *pgconn_name(const struct pgconn *pc)
{
	return pc->name;
}

const char *pgconn_parameter(const struct pgconn *pc, const char *name)
{
	const char *v = pc->pg ? PQparameterStatus(pc->pg, name) : NULL;

	return v ? v : "";
}

const char *pgconn_last_error(const struct pgconn *pc)
{
	return pc->error;
}

int64_t pgconn_next_attempt_ms(const struct pgconn *pc)
{
	return pc->next_attempt_ms;
}

void pgconn_free(struct pgconn *pc)
{
	if (!pc)
		return;
	disconnect(pc);
	free(pc->conninfo);
	free(pc->name);
	free(pc->listen_channel);
	free(pc->setup_sql);
	free(pc);
}
