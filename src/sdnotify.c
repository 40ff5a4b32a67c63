/*
 * sdnotify: the notify protocol of sd_notify(3), written out. The wire is
 * documented and stable ("Notify socket", systemd.exec(5); sd_notify(3)):
 * one AF_UNIX datagram per message, newline-separated KEY=VALUE.
 */
#include "autoconfig.h"

#include "sdnotify.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A decimal without sign, spaces or overflow; false otherwise. */
static bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

static void off(struct sdnotify *sd)
{
	memset(sd, 0, sizeof(*sd));
	sd->fd = -1;
}

int sdnotify_init(struct sdnotify *sd, const char *notify_socket, const char *watchdog_usec,
		  const char *watchdog_pid, pid_t self)
{
	size_t n;
	uint64_t v;

	off(sd);
	if (!notify_socket || !*notify_socket)
		return SDNOTIFY_OK;

	/* '@' is the abstract namespace: a leading NUL and no terminating one
	 * (unix(7)); a path is absolute and its NUL is counted. */
	n = strlen(notify_socket);
	sd->addr.sun_family = AF_UNIX;
	if (notify_socket[0] == '@') {
		if (n < 2 || n > sizeof(sd->addr.sun_path))
			return SDNOTIFY_ERR_ADDRESS;
		memcpy(sd->addr.sun_path + 1, notify_socket + 1, n - 1);
		sd->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else if (notify_socket[0] == '/') {
		if (n >= sizeof(sd->addr.sun_path))
			return SDNOTIFY_ERR_ADDRESS;
		memcpy(sd->addr.sun_path, notify_socket, n + 1);
		sd->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	} else {
		return SDNOTIFY_ERR_ADDRESS;
	}

	/* The watchdog is ours only when WATCHDOG_PID is unset or our pid:
	 * sd_watchdog_enabled(3). */
	if (parse_u64(watchdog_usec, &v) && v > 0) {
		uint64_t pid;

		if (!watchdog_pid || !*watchdog_pid ||
		    (parse_u64(watchdog_pid, &pid) && pid == (uint64_t)self))
			sd->watchdog_usec = v;
	}

	sd->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sd->fd < 0) {
		int e = errno;

		off(sd);
		errno = e;
		return SDNOTIFY_ERR_SOCKET;
	}
	return SDNOTIFY_OK;
}

int sdnotify_init_env(struct sdnotify *sd)
{
	return sdnotify_init(sd, getenv("NOTIFY_SOCKET"), getenv("WATCHDOG_USEC"),
			     getenv("WATCHDOG_PID"), getpid());
}

bool sdnotify_enabled(const struct sdnotify *sd)
{
	return sd->fd >= 0;
}

int sdnotify_send(struct sdnotify *sd, const char *msg)
{
	size_t n = strlen(msg);
	ssize_t r;

	if (sd->fd < 0)
		return SDNOTIFY_OK;
	if (n > SDNOTIFY_MAX_MESSAGE)
		return SDNOTIFY_ERR_TOO_LONG;
	do
		r = sendto(sd->fd, msg, n, MSG_NOSIGNAL, (const struct sockaddr *)&sd->addr, sd->addrlen);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return SDNOTIFY_ERR_SEND;
	if ((size_t)r != n) {
		errno = EMSGSIZE;
		return SDNOTIFY_ERR_SEND;
	}
	return SDNOTIFY_OK;
}

/* "KEY=VALUE" with VALUE on one line: a newline would start another key. */
static int send_kv(struct sdnotify *sd, const char *head, const char *key, const char *value)
{
	char msg[SDNOTIFY_MAX_MESSAGE + 1];
	int n;
	char *p;

	if (sd->fd < 0)
		return SDNOTIFY_OK;
	n = snprintf(msg, sizeof(msg), "%s%s%s", head, key, value);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return SDNOTIFY_ERR_TOO_LONG;
	for (p = msg + strlen(head) + strlen(key); *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return sdnotify_send(sd, msg);
}

int sdnotify_ready(struct sdnotify *sd, const char *status)
{
	if (!status)
		return sdnotify_send(sd, "READY=1");
	return send_kv(sd, "READY=1\n", "STATUS=", status);
}

int sdnotify_status(struct sdnotify *sd, const char *text)
{
	return send_kv(sd, "", "STATUS=", text);
}

int sdnotify_reloading(struct sdnotify *sd)
{
	struct timespec ts;
	char usec[32];

	if (sd->fd < 0)
		return SDNOTIFY_OK;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(usec, sizeof(usec), "%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
	return send_kv(sd, "RELOADING=1\n", "MONOTONIC_USEC=", usec);
}

int sdnotify_stopping(struct sdnotify *sd)
{
	return sdnotify_send(sd, "STOPPING=1");
}

int sdnotify_watchdog(struct sdnotify *sd)
{
	return sdnotify_send(sd, "WATCHDOG=1");
}

double sdnotify_watchdog_interval(const struct sdnotify *sd)
{
	if (sd->fd < 0 || sd->watchdog_usec == 0)
		return 0;
	return (double)sd->watchdog_usec / 2e6;
}

const char *sdnotify_strerror(int err)
{
	switch (err) {
	case SDNOTIFY_OK:
		return "success";
	case SDNOTIFY_ERR_ADDRESS:
		return "not an absolute path or an @abstract name, or too long";
	case SDNOTIFY_ERR_TOO_LONG:
		return "message too long";
	case SDNOTIFY_ERR_SOCKET:
	case SDNOTIFY_ERR_SEND:
		return strerror(errno);
	default:
		return "unknown error";
	}
}

void sdnotify_close(struct sdnotify *sd)
{
	if (sd->fd >= 0)
		close(sd->fd);
	off(sd);
}
