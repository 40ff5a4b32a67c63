/* Unit tests for sdnotify: real AF_UNIX datagram sockets standing in for
 * systemd, at a path and in the abstract namespace. */
#include "autoconfig.h"

#include "sdnotify.h"
#include "tap.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A bound datagram socket: name is a path or "@abstract". */
static int listener(const char *name)
{
	struct sockaddr_un a;
	socklen_t len;
	size_t n = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		abort();
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if (name[0] == '@') {
		memcpy(a.sun_path + 1, name + 1, n - 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		memcpy(a.sun_path, name, n + 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	if (bind(fd, (struct sockaddr *)&a, len) < 0) {
		perror("bind");
		abort();
	}
	return fd;
}

/* The next datagram, NUL-terminated, or "" after a second. */
static const char *receive(int fd)
{
	static char buf[SDNOTIFY_MAX_MESSAGE + 1];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	buf[0] = '\0';
	if (poll(&p, 1, 1000) != 1)
		return buf;
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void exchange(const char *name, const char *what)
{
	struct sdnotify sd;
	int fd = listener(name);
	char big[SDNOTIFY_MAX_MESSAGE + 10];
	const char *msg;
	unsigned long long usec = 0;

	is_int(sdnotify_init(&sd, name, NULL, NULL, getpid()), SDNOTIFY_OK, "%s: init", what);
	ok(sdnotify_enabled(&sd), "%s: enabled", what);
	is_int(sdnotify_watchdog_interval(&sd) == 0, 1, "%s: no watchdog without WATCHDOG_USEC", what);

	is_int(sdnotify_ready(&sd, NULL), 0, "%s: READY sent", what);
	is_str(receive(fd), "READY=1", "%s: READY=1 received", what);
	is_int(sdnotify_ready(&sd, "listening on 127.0.0.1:3000"), 0, "%s: READY with STATUS", what);
	is_str(receive(fd), "READY=1\nSTATUS=listening on 127.0.0.1:3000", "%s: one datagram, two lines", what);
	is_int(sdnotify_status(&sd, "two\nlines\r"), 0, "%s: STATUS", what);
	is_str(receive(fd), "STATUS=two lines ", "%s: a newline in STATUS cannot start a key", what);
	is_int(sdnotify_stopping(&sd), 0, "%s: STOPPING", what);
	is_str(receive(fd), "STOPPING=1", "%s: STOPPING=1", what);
	is_int(sdnotify_watchdog(&sd), 0, "%s: WATCHDOG", what);
	is_str(receive(fd), "WATCHDOG=1", "%s: WATCHDOG=1", what);
	is_int(sdnotify_reloading(&sd), 0, "%s: RELOADING", what);
	msg = receive(fd);
	ok(sscanf(msg, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec) == 1 && usec > 0,
	   "%s: RELOADING=1 and MONOTONIC_USEC", what);
	is_int(sdnotify_send(&sd, "EXTEND_TIMEOUT_USEC=5000000"), 0, "%s: any message", what);
	is_str(receive(fd), "EXTEND_TIMEOUT_USEC=5000000", "%s: sent as is", what);

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	is_int(sdnotify_send(&sd, big), SDNOTIFY_ERR_TOO_LONG, "%s: too long refused", what);
	is_int(sdnotify_status(&sd, big), SDNOTIFY_ERR_TOO_LONG, "%s: STATUS too long refused", what);

	/* The manager went away: an error, never a block or a signal. */
	close(fd);
	if (name[0] == '/')
		unlink(name);
	ok(sdnotify_ready(&sd, NULL) == SDNOTIFY_ERR_SEND && (errno == ECONNREFUSED || errno == ENOENT),
	   "%s: no listener: ERR_SEND (%s)", what, strerror(errno));
	sdnotify_close(&sd);
	ok(!sdnotify_enabled(&sd), "%s: closed", what);
	sdnotify_close(&sd);
	ok(1, "%s: closed twice", what);
}

static void test_off(void)
{
	struct sdnotify sd;

	is_int(sdnotify_init(&sd, NULL, "1000000", NULL, getpid()), 0, "no NOTIFY_SOCKET: ok");
	ok(!sdnotify_enabled(&sd), "no NOTIFY_SOCKET: off");
	is_int(sdnotify_ready(&sd, "x"), 0, "off: READY is a no-op");
	is_int(sdnotify_watchdog(&sd), 0, "off: WATCHDOG is a no-op");
	is_int(sdnotify_reloading(&sd), 0, "off: RELOADING is a no-op");
	ok(sdnotify_watchdog_interval(&sd) == 0, "off: no watchdog interval");
	is_int(sdnotify_init(&sd, "", NULL, NULL, getpid()), 0, "empty NOTIFY_SOCKET: ok");
	ok(!sdnotify_enabled(&sd), "empty NOTIFY_SOCKET: off");
	sdnotify_close(&sd);
}

static void test_bad_address(void)
{
	struct sdnotify sd;
	char longpath[200];

	is_int(sdnotify_init(&sd, "relative/socket", NULL, NULL, 1), SDNOTIFY_ERR_ADDRESS, "relative path refused");
	is_str(sdnotify_strerror(SDNOTIFY_ERR_ADDRESS), "not an absolute path or an @abstract name, or too long",
	       "strerror: the address");
	errno = ENOENT;
	is_str(sdnotify_strerror(SDNOTIFY_ERR_SEND), strerror(ENOENT), "strerror: send errors are errno's");
	ok(!sdnotify_enabled(&sd), "refused: off");
	is_int(sdnotify_init(&sd, "@", NULL, NULL, 1), SDNOTIFY_ERR_ADDRESS, "empty abstract name refused");
	is_int(sdnotify_init(&sd, "vsock:2:1234", NULL, NULL, 1), SDNOTIFY_ERR_ADDRESS, "vsock refused");
	longpath[0] = '/';
	memset(longpath + 1, 'a', sizeof(longpath) - 2);
	longpath[sizeof(longpath) - 1] = '\0';
	is_int(sdnotify_init(&sd, longpath, NULL, NULL, 1), SDNOTIFY_ERR_ADDRESS, "path too long refused");
	longpath[0] = '@';
	is_int(sdnotify_init(&sd, longpath, NULL, NULL, 1), SDNOTIFY_ERR_ADDRESS, "abstract name too long refused");
	longpath[sizeof(struct sockaddr_un) - offsetof(struct sockaddr_un, sun_path)] = '\0';
	is_int(sdnotify_init(&sd, longpath, NULL, NULL, 1), 0, "abstract name of exactly sun_path's size");
	sdnotify_close(&sd);
}

static void test_watchdog(void)
{
	struct sdnotify sd;
	pid_t me = getpid();
	char pid[32], other[32];

	snprintf(pid, sizeof(pid), "%ld", (long)me);
	snprintf(other, sizeof(other), "%ld", (long)me + 1);

	is_int(sdnotify_init(&sd, "@pgpush-test-none", "30000000", NULL, me), 0, "watchdog: init");
	ok(sdnotify_watchdog_interval(&sd) == 15.0, "WATCHDOG_USEC=30 s: send every 15 s");
	sdnotify_close(&sd);
	is_int(sdnotify_init(&sd, "@pgpush-test-none", "30000000", pid, me), 0, "WATCHDOG_PID ours");
	ok(sdnotify_watchdog_interval(&sd) == 15.0, "WATCHDOG_PID ours: watchdog on");
	sdnotify_close(&sd);
	is_int(sdnotify_init(&sd, "@pgpush-test-none", "30000000", other, me), 0, "WATCHDOG_PID another's");
	ok(sdnotify_watchdog_interval(&sd) == 0, "WATCHDOG_PID another's: not our watchdog");
	ok(sdnotify_enabled(&sd), "WATCHDOG_PID another's: notifications still on");
	sdnotify_close(&sd);
	is_int(sdnotify_init(&sd, "@pgpush-test-none", "0", NULL, me), 0, "WATCHDOG_USEC=0");
	ok(sdnotify_watchdog_interval(&sd) == 0, "WATCHDOG_USEC=0: off");
	sdnotify_close(&sd);
	is_int(sdnotify_init(&sd, "@pgpush-test-none", "12x", NULL, me), 0, "WATCHDOG_USEC garbage");
	ok(sdnotify_watchdog_interval(&sd) == 0, "WATCHDOG_USEC garbage: off");
	sdnotify_close(&sd);
	is_int(sdnotify_init(&sd, "@pgpush-test-none", "99999999999999999999999", NULL, me), 0,
	       "WATCHDOG_USEC overflow");
	ok(sdnotify_watchdog_interval(&sd) == 0, "WATCHDOG_USEC overflow: off");
	sdnotify_close(&sd);
	is_int(sdnotify_init(&sd, "@pgpush-test-none", "-5", NULL, me), 0, "WATCHDOG_USEC negative");
	ok(sdnotify_watchdog_interval(&sd) == 0, "WATCHDOG_USEC negative: off");
	sdnotify_close(&sd);
}

static void test_env(void)
{
	struct sdnotify sd;
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@pgpush-sdnotify-env-%ld", (long)getpid());
	fd = listener(name);
	setenv("NOTIFY_SOCKET", name, 1);
	setenv("WATCHDOG_USEC", "2000000", 1);
	unsetenv("WATCHDOG_PID");
	is_int(sdnotify_init_env(&sd), 0, "init_env");
	ok(sdnotify_watchdog_interval(&sd) == 1.0, "init_env: watchdog from the environment");
	is_int(sdnotify_ready(&sd, NULL), 0, "init_env: READY");
	is_str(receive(fd), "READY=1", "init_env: received");
	sdnotify_close(&sd);
	close(fd);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
}

int main(void)
{
	char dir[] = "/tmp/pgpush-sdnotify-XXXXXX";
	char path[128], abstract[64];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/notify", dir);
	snprintf(abstract, sizeof(abstract), "@pgpush-sdnotify-%ld", (long)getpid());

	test_off();
	test_bad_address();
	test_watchdog();
	exchange(path, "path");
	exchange(abstract, "abstract");
	test_env();

	unlink(path);
	rmdir(dir);
	return done_testing();
}
