/*
 * conformance-server: the protocol test server. The same library code as
 * pgpushd, configured the way the Socket.IO project's published conformance
 * suites expect (engine.io-protocol and socket.io-protocol, test-suite/):
 * pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000,
 * connectTimeout 1,000 ms, CORS "*", namespaces "/" and "/custom";
 * "message" is echoed as "message-back", "message-with-ack" is acknowledged
 * with its arguments, "emit-with-ack" is emitted back asking for an ack whose
 * answer is emitted again (PR #33), "auth" is emitted on connect with the
 * handshake's auth;
 * /engine.io/ is a plain Engine.IO session echoing every message unchanged.
 *
 *   conformance-server [--port N] [--log-level LEVEL]
 */
#include "autoconfig.h"

#include "config.h"
#include "log.h"
#include "server.h"
#include "session.h"
#include "socketio.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool nsp_exists(void *ud, const char *nsp, size_t len)
{
	return (len == 1 && nsp[0] == '/') || (len == 7 && memcmp(nsp, "/custom", 7) == 0);
}

static void on_connect(void *ud, struct socketio_socket *sock, const char *auth,
		       size_t auth_len)
{
	struct ws_part parts[] = { { "[\"auth\",", 8 }, { auth, auth_len }, { "]", 1 } };

	if (socketio_emit(sock, parts, 3, NULL, 0) < 0)
		log_error("cannot emit auth");
}

static bool name_is(const struct socketio_event *ev, const char *name)
{
	return ev->name && ev->name_len == strlen(name) && memcmp(ev->name, name, ev->name_len) == 0;
}

/* The client answered our ack request: emit its answer back (the
 * acknowledgement case of socket.io-protocol PR #33). */
static void on_client_ack(void *ud, struct socketio_socket *sock,
			  const struct socketio_event *answer)
{
	struct ws_part parts[] = {
		{ "[\"emit-with-ack\"", 16 },
		{ ",", answer->args_len ? 1 : 0 },
		{ answer->args, answer->args_len },
		{ "]", 1 },
	};

	if (socketio_emit(sock, parts, 4, answer->attachments, answer->n_attachments) < 0)
		log_error("cannot emit");
}

static void on_event(void *ud, struct socketio_socket *sock, const struct socketio_event *ev)
{
	int rc = 0;

	if (name_is(ev, "message")) {
		struct ws_part parts[] = {
			{ "[\"message-back\"", 15 },
			{ ",", ev->args_len ? 1 : 0 },
			{ ev->args, ev->args_len },
			{ "]", 1 },
		};

		rc = socketio_emit(sock, parts, 4, ev->attachments, ev->n_attachments);
	} else if (name_is(ev, "emit-with-ack")) {
		struct ws_part parts[] = {
			{ "[\"emit-with-ack\"", 16 },
			{ ",", ev->args_len ? 1 : 0 },
			{ ev->args, ev->args_len },
			{ "]", 1 },
		};

		rc = socketio_emit_with_ack(sock, parts, 4, ev->attachments, ev->n_attachments,
					    on_client_ack, NULL);
	} else if (name_is(ev, "message-with-ack") && ev->has_id) {
		struct ws_part parts[] = { { "[", 1 }, { ev->args, ev->args_len }, { "]", 1 } };

		rc = socketio_ack(sock, ev->id, parts, 3, ev->attachments, ev->n_attachments);
	}
	if (rc < 0)
		log_error("cannot answer an event");
}

static void on_engine_message(void *ud, struct session *s, const uint8_t *data, size_t len,
			      bool binary)
{
	if (binary) {
		session_send_binary(s, data, len);
	} else {
		struct ws_part parts[] = { { "4", 1 }, { data, len } };

		session_send_parts(s, parts, 2);
	}
}

static const struct socketio_app conformance_app = {
	.nsp_exists = nsp_exists,
	.on_connect = on_connect,
	.on_event = on_event,
};

/* /engine.io/: a plain Engine.IO session echoing every message. */
static const struct engine_handlers echo_app = {
	.on_message = on_engine_message,
};

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
	const char *port = "3000", *level = "warn";
	char listen[64];
	char err[256];
	struct config cfg;
	struct server srv;
	struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
	ev_signal sigterm, sigint;
	struct server_options opts = {
		.app = &conformance_app,
		.polling = true,
		.engineio_app = &echo_app,
		.cors_any = true,
	};

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			port = argv[++i];
		} else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
			level = argv[++i];
		} else {
			fprintf(stderr, "usage: conformance-server [--port N] [--log-level LEVEL]\n");
			return 2;
		}
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%s", port);
	{
		/* The suites' configuration, through the daemon's own parser. */
		const char *args[] = {
			argv[0], "--listen", listen, "--log-level", level,
			"--ping-interval", "300", "--ping-timeout", "200",
			"--max-payload", "1000000", "--connect-timeout", "1000",
		};

		if (config_parse(&cfg, sizeof(args) / sizeof(args[0]), (char **)args, NULL, stdout, err,
				 sizeof(err)) != CONFIG_OK) {
			fprintf(stderr, "conformance-server: %s\n", err);
			return 2;
		}
	}
	log_set_level(cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	if (server_start(&srv, loop, &cfg, &opts) < 0)
		return 1;
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigint);
	ev_run(loop, 0);
	server_free(&srv);
	ev_loop_destroy(loop);
	config_free(&cfg);
	return 0;
}
