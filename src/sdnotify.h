/*
 * sdnotify: systemd's service notification protocol without libsystemd
 * (sd_notify(3), "Notify socket" in systemd.exec(5)): one datagram per
 * message, `KEY=VALUE` lines, to the AF_UNIX socket named by $NOTIFY_SOCKET
 * (a path, or an abstract name when it starts with '@').
 *
 * Owns one datagram socket, opened by sdnotify_init when the service manager
 * asked for notifications and closed by sdnotify_close. Every sender is a
 * no-op returning 0 when it did not (pgpushd run by hand, Type=simple), so
 * callers need no conditions. Never blocks: the socket is non-blocking, and
 * a full queue at the manager is an error returned, not a wait.
 *
 * The watchdog: with WatchdogSec= the manager sets $WATCHDOG_USEC (and
 * $WATCHDOG_PID, which must be ours); the daemon sends WATCHDOG=1 at least
 * that often. sdnotify_watchdog_interval gives half of it, in seconds, for
 * an ev_timer, as sd_watchdog_enabled(3) recommends.
 */
#ifndef PGPUSH_SDNOTIFY_H
#define PGPUSH_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

enum sdnotify_err {
	SDNOTIFY_OK = 0,
	SDNOTIFY_ERR_ADDRESS = -1,	/* $NOTIFY_SOCKET is not an absolute path or '@' name, or too long */
	SDNOTIFY_ERR_SOCKET = -2,	/* socket() failed (errno says why) */
	SDNOTIFY_ERR_SEND = -3,		/* sendto() failed or sent less (errno says why) */
	SDNOTIFY_ERR_TOO_LONG = -4,	/* the message does not fit SDNOTIFY_MAX_MESSAGE */
};

#define SDNOTIFY_MAX_MESSAGE 4096

struct sdnotify {
	int fd;				/* -1: notifications are off */
	struct sockaddr_un addr;
	socklen_t addrlen;
	uint64_t watchdog_usec;		/* 0: no watchdog */
};

/* Reads the protocol's variables from the given values (pass getenv()'s;
 * NULL or empty means unset) rather than the environment, so that tests
 * need not change it. watchdog_pid, when set, must equal self for the
 * watchdog to be ours (a child would inherit its parent's variables).
 * Off (fd -1) when notify_socket is unset. Returns 0 or an error above;
 * on error sd is off, and a caller logs it and carries on. */
int sdnotify_init(struct sdnotify *sd, const char *notify_socket, const char *watchdog_usec,
		  const char *watchdog_pid, pid_t self) __attribute__((warn_unused_result));

/* sdnotify_init from getenv() and getpid(). */
int sdnotify_init_env(struct sdnotify *sd) __attribute__((warn_unused_result));

/* Whether a service manager listens. */
bool sdnotify_enabled(const struct sdnotify *sd);

/* Sends msg as is (KEY=VALUE lines separated by '\n'). 0 or an error. */
int sdnotify_send(struct sdnotify *sd, const char *msg);

/* READY=1, with STATUS=status when status is not NULL: startup is over
 * (the listening socket is open), or a reload is. */
int sdnotify_ready(struct sdnotify *sd, const char *status);

/* STATUS=text (one line: newlines become spaces), shown by systemctl status. */
int sdnotify_status(struct sdnotify *sd, const char *text);

/* RELOADING=1 and MONOTONIC_USEC=now (CLOCK_MONOTONIC, as systemd 253's
 * Type=notify-reload requires; earlier ones ignore it). Send READY=1 when
 * the reload is done. */
int sdnotify_reloading(struct sdnotify *sd);

/* STOPPING=1: shutdown has begun. */
int sdnotify_stopping(struct sdnotify *sd);

/* WATCHDOG=1: the loop is turning. */
int sdnotify_watchdog(struct sdnotify *sd);

/* Half the watchdog timeout in seconds, or 0 when there is no watchdog. */
double sdnotify_watchdog_interval(const struct sdnotify *sd);

/* A message for an error of the functions above, for the log: for
 * SDNOTIFY_ERR_SOCKET and SDNOTIFY_ERR_SEND, strerror(errno), so call it
 * before anything else changes errno. Static storage. */
const char *sdnotify_strerror(int err);

/* Closes the socket; sd is off afterwards. Safe on an off or closed sd. */
void sdnotify_close(struct sdnotify *sd);

#endif
