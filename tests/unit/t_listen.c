/* The listening socket and accept: both non-blocking and close-on-exec,
 * with SOCK_NONBLOCK/SOCK_CLOEXEC and accept4, and (built as
 * t_listen_fallback with PGPUSH_NO_SOCK_FLAGS) without them, through
 * fcntl, as on systems that lack them. Real sockets on 127.0.0.1. */
#include "autoconfig.h"

#include "log.h"
#include "server.h"
#include "tap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static bool nsp(void *ud, const char *n, size_t len)
{
	return true;
}

static const struct socketio_app app = { .nsp_exists = nsp };

static bool flags_ok(int fd)
{
	int fl = fcntl(fd, F_GETFL), fd_fl = fcntl(fd, F_GETFD);

	return fl >= 0 && (fl & O_NONBLOCK) && fd_fl >= 0 && (fd_fl & FD_CLOEXEC);
}

int main(void)
{
	const char *args[] = { "t", "--listen", "127.0.0.1:0", "--log-level", "error" };
	struct server_options o = { .app = &app, .polling = true };
	struct ev_loop *loop = ev_default_loop(0);
	struct sockaddr_in sa;
	struct config cfg;
	struct server srv;
	struct conn *c;
	char err[256];
	int cfd;

	if (config_parse(&cfg, 5, (char **)args, NULL, stdout, err, sizeof(err)) != CONFIG_OK) {
		printf("Bail out! %s\n", err);
		return 1;
	}
	log_set_level(cfg.log_level);
	is_int(server_start(&srv, loop, &cfg, &o), 0, "server listening on 127.0.0.1:0");
	ok(flags_ok(srv.lfd), "the listening socket is non-blocking and close-on-exec");

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)atoi(strrchr(srv.bound, ':') + 1));
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	is_int(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0, "a client connects");
	for (int i = 0; i < 50 && list_empty(&srv.cx.live); i++)
		ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT), usleep(10000);
	ok(!list_empty(&srv.cx.live), "it is accepted");
	c = list_empty(&srv.cx.live) ? NULL : LIST_ENTRY(srv.cx.live.next, struct conn, link);
	ok(c && flags_ok(c->fd), "the accepted socket is non-blocking and close-on-exec");
	close(cfd);
	server_free(&srv);
	ev_loop_destroy(loop);
	config_free(&cfg);
	return done_testing();
}
