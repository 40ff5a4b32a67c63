/*
 * loadgen: many Socket.IO v4 WebSocket clients in one process, for the
 * benchmark suite (tests/bench/run.mjs). Not part of `make check`.
 *
 *   loadgen --port P [--host 127.0.0.1] -n N [--concurrency 500]
 *           [--tag-key KEY] [--per-ip 20000] [--deflate] [--max-seconds 1800]
 *           [--auth-file PATH] [--tls]
 *
 * --tls: every client speaks TLS first (OpenSSL, non-blocking, no
 * certificate check: the benchmark measures, it does not authenticate);
 * the handshake time then includes the TLS handshake.
 *
 * It opens N WebSocket connections to /socket.io/?EIO=4&transport=websocket
 * (masked client frames, a minimal client of its own: no wslay), answers
 * Engine.IO pings ("2" -> "3"), joins the main namespace ("40", waits for
 * 40{"sid":...}) and records, for every 42["dashboardDataUpdate",{...}] it
 * receives, the CLOCK_REALTIME time (µs) at which the whole message had
 * arrived, per snapshot version. A 42["dashboardDataPatch",{"from":F,
 * "to":T,...}] (clients that opted in with {"deltas":true} in --auth-file)
 * counts as version T (updates count both; "patches" in stats the latter).
 *
 * With --auth-file, client i joins with the CONNECT payload on line
 * i % L of the file (L lines, each a JSON object such as {"token":"..."}):
 * "40{...}". Tokens for many audiences, one file.
 *
 * When N is larger than --per-ip, client i binds its source address to
 * 127.0.0.(2 + i / per_ip) (IP_BIND_ADDRESS_NO_PORT, so the port is picked
 * per destination at connect time): one address has only ~28,000 ephemeral
 * ports.
 *
 * Output: JSON lines on stdout. Input: commands on stdin, one per line:
 *   ref TAG T0_US      the reference time (CLOCK_REALTIME µs, e.g. the commit
 *                      of the row that the snapshot with this tag shows)
 *   wait TAG MS        answer {"ev":"wait",...} once every joined client's
 *                      latest snapshot has this tag, or after MS ms
 *   report             one {"ev":"version"} line per version received, then
 *                      {"ev":"summary"} pooled over the versions that have a ref
 *   stats              {"ev":"stats",...} counters (update_wire, update_payload:
 *                      frame and inflated bytes of every update, all clients)
 *   reset              forget the versions recorded so far
 *   quit (or EOF)      close every connection and exit
 *
 * The tag of a snapshot is the integer after "KEY": (--tag-key) in the first
 * PFX_MAX bytes of the message, or its "version" without --tag-key. The
 * benchmark's padded documents put a "v" (max(sales.id)) in front of the
 * padding so that a new sale changes them; on the real dashboard the first
 * "id" is recentSales[0].id.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <ev.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define PFX_MAX 1024          /* bytes of each message kept for parsing */
#define SCRATCH (256u << 10)  /* one recv() */
#define ZOUT (64u << 10)

enum cstate { C_IDLE, C_CONNECTING, C_TLS, C_HTTP, C_WS, C_CLOSED };
enum fstate { F_HDR, F_PAYLOAD };

struct client {
	ev_io io;
	int fd;
	int idx;
	uint8_t state;
	uint8_t attempts;
	bool joined;
	bool sent_connect;
	bool inflight;
	bool deflate;        /* permessage-deflate negotiated */
	bool no_ctx;         /* server_no_context_takeover */
	double started;      /* ev_now at connect() of the current attempt */
	/* frame parser */
	uint8_t fst;
	uint8_t hlen;
	uint8_t hdr[14];
	uint8_t opcode;      /* of the current frame */
	uint8_t msg_opcode;  /* of the current message (first frame) */
	bool fin;
	bool msg_compressed;
	uint64_t remaining;
	uint8_t ctrl[126];
	uint8_t ctrl_len;
	/* message being received */
	uint64_t msg_len;    /* payload bytes (inflated) */
	uint64_t msg_wire;   /* frame bytes on the wire, headers included */
	uint16_t pfx_len;
	char pfx[PFX_MAX];
	/* output */
	char *out;
	size_t out_len;
	/* results */
	int64_t last_tag;
	int64_t tag_since;   /* when last_tag first arrived */
	uint64_t updates;
	z_stream *z;
	SSL *ssl;            /* --tls */
};

struct vrec {
	int64_t version;
	int64_t tag;
	int64_t ref_us;      /* 0 when none */
	uint64_t payload_bytes;
	uint64_t wire_bytes;
	bool compressed;
	int64_t *t;
	size_t n, cap;
};

static struct ev_loop *loop;
static struct client *clients;
static int nclients = 1, concurrency = 500, per_ip = 20000, max_attempts = 3;
static const char *host = "127.0.0.1";
static int port;
static const char *tag_key;
static char tag_pat[80];
static bool want_deflate;
static SSL_CTX *tls_ctx;     /* --tls */
static char **auth_lines;     /* --auth-file: "40" + one CONNECT payload per line */
static size_t n_auth;
static double connect_timeout = 15, max_seconds = 1800;
static int next_start, inflight, joined, failed_final, closed_count;
static uint64_t total_msgs, total_updates, total_patches, total_errors_ev, total_bytes, conn_errors;
/* Frame bytes (headers included) and inflated bytes of every update or
 * patch, summed over clients: bytes per client per update, whatever frame
 * (shared, per group, self-contained) each client got. */
static uint64_t total_update_wire, total_update_payload;
static double t_first_start, t_last_join;
static bool connected_reported;
static double *hs_ms; /* handshake time per joined client */
static int hs_n;
static uint8_t *scratch;
static uint8_t *zout;
static struct vrec *vrecs;
static size_t nvrecs, capvrecs;
static struct { int64_t tag; int64_t ref_us; } *refs;
static size_t nrefs, caprefs;
static bool waiting;
static int64_t wait_tag;
static int wait_have;
static ev_timer wait_timer, tick_timer, life_timer;
static ev_io stdin_io;
static char inbuf[4096];
static size_t inlen;
static uint32_t rng = 2463534242u;

static void start_more(void);
static void client_fail(struct client *c, const char *why);
static void check_wait(int64_t t_us);

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint32_t xrand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	if (!q) {
		fprintf(stderr, "loadgen: out of memory\n");
		exit(1);
	}
	return q;
}

/* ---- output -------------------------------------------------------------- */

static void set_events(struct client *c, int ev)
{
	if ((c->io.events & (EV_READ | EV_WRITE)) == ev && ev_is_active(&c->io))
		return;
	ev_io_stop(loop, &c->io);
	ev_io_set(&c->io, c->fd, ev);
	if (ev)
		ev_io_start(loop, &c->io);
}

/* send() or SSL_write(): -1 with errno EAGAIN when it would block. */
static ssize_t xsend(struct client *c, const void *data, size_t len)
{
	int r, e;

	if (!c->ssl)
		return send(c->fd, data, len, MSG_NOSIGNAL);
	if (len == 0)
		return 0;
	ERR_clear_error();
	r = SSL_write(c->ssl, data, len > INT32_MAX ? INT32_MAX : (int)len);
	if (r > 0)
		return r;
	e = SSL_get_error(c->ssl, r);
	ERR_clear_error();
	errno = e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? EAGAIN : EPIPE;
	return -1;
}

/* recv() or SSL_read(): 0 at EOF, -1 with errno EAGAIN when nothing waits. */
static ssize_t xrecv(struct client *c, void *buf, size_t len)
{
	int r, e;

	if (!c->ssl)
		return recv(c->fd, buf, len, 0);
	ERR_clear_error();
	r = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
	if (r > 0)
		return r;
	e = SSL_get_error(c->ssl, r);
	ERR_clear_error();
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	errno = ECONNRESET;
	return -1;
}

static void client_send(struct client *c, const void *data, size_t len)
{
	ssize_t w = 0;

	if (c->state == C_CLOSED)
		return;
	if (!c->out_len) {
		do {
			w = xsend(c, data, len);
		} while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			client_fail(c, "write error");
			return;
		}
		if (w < 0)
			w = 0;
		if ((size_t)w == len)
			return;
	}
	c->out = xrealloc(c->out, c->out_len + len - (size_t)w);
	memcpy(c->out + c->out_len, (const char *)data + w, len - (size_t)w);
	c->out_len += len - (size_t)w;
	set_events(c, EV_READ | EV_WRITE);
}

static void flush_out(struct client *c)
{
	ssize_t w;

	while (c->out_len) {
		w = xsend(c, c->out, c->out_len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			client_fail(c, "write error");
			return;
		}
		memmove(c->out, c->out + w, c->out_len - (size_t)w);
		c->out_len -= (size_t)w;
	}
	free(c->out);
	c->out = NULL;
	set_events(c, EV_READ);
}

/* One masked client frame. */
static void ws_send(struct client *c, int opcode, const void *data, size_t len)
{
	uint8_t f[14 + 256];
	size_t h = 0;
	uint32_t m = xrand();
	const uint8_t *d = data;

	if (len > 256)
		return;
	f[h++] = 0x80 | (uint8_t)opcode;
	if (len < 126) {
		f[h++] = 0x80 | (uint8_t)len;
	} else {
		f[h++] = 0x80 | 126;
		f[h++] = (uint8_t)(len >> 8);
		f[h++] = (uint8_t)len;
	}
	memcpy(f + h, &m, 4);
	for (size_t i = 0; i < len; i++)
		f[h + 4 + i] = d[i] ^ f[h + (i & 3)];
	client_send(c, f, h + 4 + len);
}

static void ws_text(struct client *c, const char *s)
{
	ws_send(c, 1, s, strlen(s));
}

/* ---- lifecycle ----------------------------------------------------------- */

static void client_reset(struct client *c)
{
	if (c->fd >= 0) {
		ev_io_stop(loop, &c->io);
		close(c->fd);
	}
	c->fd = -1;
	SSL_free(c->ssl);
	c->ssl = NULL;
	free(c->out);
	c->out = NULL;
	c->out_len = 0;
	if (c->z) {
		inflateEnd(c->z);
		free(c->z);
		c->z = NULL;
	}
	c->fst = F_HDR;
	c->hlen = 0;
	c->pfx_len = 0;
	c->msg_len = c->msg_wire = 0;
	c->ctrl_len = 0;
	c->deflate = c->no_ctx = false;
	c->sent_connect = false;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void maybe_report_connected(void)
{
	double span;

	if (connected_reported || joined + failed_final < nclients)
		return;
	connected_reported = true;
	span = t_last_join - t_first_start;
	qsort(hs_ms, (size_t)hs_n, sizeof(double), cmp_double);
	printf("{\"ev\":\"connected\",\"n\":%d,\"joined\":%d,\"failed\":%d,\"conn_errors\":%" PRIu64
	       ",\"ms\":%.1f,\"rate\":%.1f,\"hs_p50_ms\":%.2f,\"hs_p99_ms\":%.2f,\"hs_max_ms\":%.2f}\n",
	       nclients, joined, failed_final, conn_errors, span * 1000.0,
	       span > 0 ? joined / span : 0.0,
	       hs_n ? hs_ms[hs_n / 2] : 0.0, hs_n ? hs_ms[(size_t)(hs_n * 0.99)] : 0.0,
	       hs_n ? hs_ms[hs_n - 1] : 0.0);
}

static void client_done_inflight(struct client *c)
{
	if (c->inflight) {
		c->inflight = false;
		inflight--;
	}
}

static void client_fail(struct client *c, const char *why)
{
	bool was_joined = c->joined;

	if (c->state == C_CLOSED && c->fd < 0)
		return;
	client_reset(c);
	c->state = C_CLOSED;
	c->joined = false;
	if (was_joined) {
		/* A joined client lost its connection: count it, never reconnect
		 * (the benchmark wants to know). */
		joined--;
		closed_count++;
		if (waiting && c->last_tag == wait_tag)
			wait_have--;
		if (closed_count <= 10)
			fprintf(stderr, "loadgen: client %d closed: %s\n", c->idx, why);
		check_wait(now_us());
		return;
	}
	conn_errors++;
	client_done_inflight(c);
	if (c->attempts < max_attempts) {
		c->state = C_IDLE;
		/* retried by start_more, at the back of the line */
		if (conn_errors <= 5)
			fprintf(stderr, "loadgen: client %d: %s (retrying)\n", c->idx, why);
	} else {
		failed_final++;
		if (failed_final <= 5)
			fprintf(stderr, "loadgen: client %d failed: %s\n", c->idx, why);
		maybe_report_connected();
	}
	start_more();
}

static void on_io(struct ev_loop *l, ev_io *w, int revents);

static void client_connect(struct client *c)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	c->attempts++;
	c->started = ev_now(loop);
	if (!t_first_start)
		t_first_start = ev_time();
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		c->attempts = (uint8_t)max_attempts;
		c->fd = -1;
		c->state = C_CONNECTING;
		client_fail(c, strerror(errno));
		return;
	}
	c->fd = fd;
	c->state = C_CONNECTING;
	c->inflight = true;
	inflight++;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (nclients > per_ip) {
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(c->idx / per_ip));
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			client_fail(c, "bind");
			return;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	ev_io_init(&c->io, on_io, fd, EV_WRITE);
	c->io.data = c;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		client_fail(c, strerror(errno));
		return;
	}
	ev_io_start(loop, &c->io);
}

static void start_more(void)
{
	static bool busy;
	static int retry_scan;

	if (busy)
		return;
	busy = true;
	while (inflight < concurrency) {
		struct client *c = NULL;

		if (next_start < nclients) {
			c = &clients[next_start++];
		} else {
			/* retries */
			for (int k = 0; k < nclients && !c; k++) {
				struct client *x = &clients[(retry_scan + k) % nclients];

				if (x->state == C_IDLE && x->attempts > 0 && x->attempts < max_attempts) {
					c = x;
					retry_scan = (x->idx + 1) % nclients;
				}
			}
		}
		if (!c)
			break;
		client_connect(c);
	}
	busy = false;
}

static void send_upgrade(struct client *c)
{
	char req[512], key[25];
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	int n;

	for (int i = 0; i < 22; i++)
		key[i] = b64[xrand() % 64];
	key[22] = key[23] = '=';
	key[24] = 0;
	key[21] = 'A'; /* 16 random bytes: the last char carries 4 zero bits */
	n = snprintf(req, sizeof(req),
		     "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
		     "Host: %s:%d\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n"
		     "%s"
		     "\r\n",
		     host, port, key,
		     want_deflate ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : "");
	c->state = C_HTTP;
	c->pfx_len = 0;
	set_events(c, EV_READ);
	client_send(c, req, (size_t)n);
}

/* ---- versions -------------------------------------------------------------- */

static struct vrec *vrec_get(int64_t version, int64_t tag)
{
	for (size_t i = nvrecs; i-- > 0;)
		if (vrecs[i].version == version)
			return &vrecs[i];
	if (nvrecs == capvrecs) {
		capvrecs = capvrecs ? capvrecs * 2 : 64;
		vrecs = xrealloc(vrecs, capvrecs * sizeof(*vrecs));
	}
	memset(&vrecs[nvrecs], 0, sizeof(vrecs[0]));
	vrecs[nvrecs].version = version;
	vrecs[nvrecs].tag = tag;
	return &vrecs[nvrecs++];
}

static int64_t ref_for(int64_t tag)
{
	for (size_t i = nrefs; i-- > 0;)
		if (refs[i].tag == tag)
			return refs[i].ref_us;
	return 0;
}

/* The integer after the JSON key pat ("key", quotes included) and a colon,
 * with optional blanks around the colon (json_build_object writes "k" : v). */
static bool parse_int_after(const char *s, size_t len, const char *pat, int64_t *out)
{
	size_t pl = strlen(pat);
	const char *end = s + len;
	const char *p = s;

	while (p < end && (p = memmem(p, (size_t)(end - p), pat, pl))) {
		bool neg = false;
		int64_t v = 0;

		p += pl;
		while (p < end && *p == ' ')
			p++;
		if (p >= end || *p != ':')
			continue;
		p++;
		while (p < end && *p == ' ')
			p++;
		if (p < end && *p == '-') {
			neg = true;
			p++;
		}
		if (p >= end || *p < '0' || *p > '9')
			continue;
		while (p < end && *p >= '0' && *p <= '9')
			v = v * 10 + (*p++ - '0');
		*out = neg ? -v : v;
		return true;
	}
	return false;
}

static void on_update(struct client *c, int64_t t, bool patch)
{
	int64_t version = -1, tag;
	struct vrec *v;

	/* A dashboardDataPatch {"from":F,"to":T,...} stands for version T. */
	parse_int_after(c->pfx, c->pfx_len, patch ? "\"to\"" : "\"version\"", &version);
	if (!tag_key || !parse_int_after(c->pfx, c->pfx_len, tag_pat, &tag))
		tag = tag_key ? -1 : version;
	v = vrec_get(version, tag);
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 16;
		v->t = xrealloc(v->t, v->cap * sizeof(int64_t));
	}
	v->t[v->n++] = t;
	v->payload_bytes = c->msg_len;
	v->wire_bytes = c->msg_wire;
	v->compressed = c->msg_compressed;
	total_updates++;
	total_update_wire += c->msg_wire;
	total_update_payload += c->msg_len;
	c->updates++;
	if (tag != c->last_tag)
		c->tag_since = t;
	if (waiting && c->joined && c->last_tag != wait_tag && tag == wait_tag) {
		c->last_tag = tag;
		wait_have++;
		check_wait(t);
		return;
	}
	if (waiting && c->joined && c->last_tag == wait_tag && tag != wait_tag)
		wait_have--;
	c->last_tag = tag;
}

/* A complete text message (its first PFX_MAX bytes are in c->pfx). */
static void on_message(struct client *c, int64_t t)
{
	const char *m = c->pfx;
	size_t n = c->pfx_len;

	total_msgs++;
	total_bytes += c->msg_wire;
	if (n == 0)
		return;
	switch (m[0]) {
	case '0': /* Engine.IO open */
		if (!c->sent_connect) {
			c->sent_connect = true;
			ws_text(c, n_auth ? auth_lines[(size_t)c->idx % n_auth] : "40");
		}
		break;
	case '2': /* ping */
		ws_text(c, "3");
		break;
	case '1': /* close */
		client_fail(c, "engine.io close");
		break;
	case '4':
		if (n >= 2 && m[1] == '0') {
			if (!c->joined) {
				c->joined = true;
				joined++;
				client_done_inflight(c);
				t_last_join = ev_time();
				hs_ms[hs_n++] = (ev_time() - c->started) * 1000.0;
				maybe_report_connected();
				start_more();
			}
		} else if (n >= 2 && m[1] == '2') {
			if (n >= 24 && memcmp(m + 2, "[\"dashboardDataUpdate\"", 22) == 0)
				on_update(c, t, false);
			else if (n >= 23 && memcmp(m + 2, "[\"dashboardDataPatch\"", 21) == 0) {
				total_patches++;
				on_update(c, t, true);
			}
			else if (n >= 23 && memcmp(m + 2, "[\"dashboardDataError\"", 21) == 0)
				total_errors_ev++;
		} else if (n >= 2 && m[1] == '4') {
			client_fail(c, "socket.io connect error");
		} else if (n >= 2 && m[1] == '1') {
			client_fail(c, "socket.io disconnect");
		}
		break;
	default:
		break;
	}
}

static void msg_bytes(struct client *c, const uint8_t *p, size_t n)
{
	c->msg_len += n;
	if (c->pfx_len < PFX_MAX) {
		size_t k = PFX_MAX - c->pfx_len;

		if (k > n)
			k = n;
		memcpy(c->pfx + c->pfx_len, p, k);
		c->pfx_len += (uint16_t)k;
	}
}

static int inflate_bytes(struct client *c, const uint8_t *p, size_t n)
{
	z_stream *z = c->z;
	int rc;

	z->next_in = (Bytef *)p;
	z->avail_in = (uInt)n;
	do {
		z->next_out = zout;
		z->avail_out = ZOUT;
		rc = inflate(z, Z_SYNC_FLUSH);
		if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END)
			return -1;
		msg_bytes(c, zout, ZOUT - z->avail_out);
	} while (z->avail_out == 0 || z->avail_in > 0);
	return 0;
}

static void payload_bytes(struct client *c, const uint8_t *p, size_t n)
{
	if (c->opcode >= 8) {
		if (c->ctrl_len + n <= sizeof(c->ctrl)) {
			memcpy(c->ctrl + c->ctrl_len, p, n);
			c->ctrl_len += (uint8_t)n;
		}
		return;
	}
	if (c->msg_compressed) {
		if (inflate_bytes(c, p, n) < 0)
			client_fail(c, "inflate error");
		return;
	}
	msg_bytes(c, p, n);
}

static void frame_done(struct client *c, int64_t t)
{
	if (c->opcode >= 8) {
		switch (c->opcode) {
		case 8:
			ws_send(c, 8, c->ctrl, c->ctrl_len >= 2 ? 2 : 0);
			client_fail(c, "websocket close");
			return;
		case 9:
			ws_send(c, 10, c->ctrl, c->ctrl_len);
			break;
		default:
			break;
		}
		c->ctrl_len = 0;
		return;
	}
	if (!c->fin)
		return;
	if (c->msg_compressed) {
		static const uint8_t tail[4] = { 0, 0, 0xff, 0xff };

		if (inflate_bytes(c, tail, 4) < 0) {
			client_fail(c, "inflate error");
			return;
		}
		if (c->no_ctx)
			inflateReset(c->z);
	}
	if (c->msg_opcode == 1)
		on_message(c, t);
	c->msg_len = c->msg_wire = 0;
	c->pfx_len = 0;
	c->msg_compressed = false;
}

/* Returns false when the client was closed. */
static bool ws_input(struct client *c, const uint8_t *p, size_t n, int64_t t)
{
	const uint8_t *end = p + n;

	while (p < end) {
		if (c->state != C_WS)
			return false;
		if (c->fst == F_HDR) {
			size_t need = 2;

			c->hdr[c->hlen++] = *p++;
			if (c->hlen >= 2) {
				uint8_t l7 = c->hdr[1] & 0x7f;

				need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((c->hdr[1] & 0x80) ? 4 : 0);
			}
			if (c->hlen < need)
				continue;
			{
				uint8_t l7 = c->hdr[1] & 0x7f;
				uint64_t len = l7;

				if (l7 == 126)
					len = ((uint64_t)c->hdr[2] << 8) | c->hdr[3];
				else if (l7 == 127) {
					len = 0;
					for (int i = 0; i < 8; i++)
						len = (len << 8) | c->hdr[2 + i];
				}
				if (c->hdr[1] & 0x80) {
					client_fail(c, "masked server frame");
					return false;
				}
				c->fin = (c->hdr[0] & 0x80) != 0;
				c->opcode = c->hdr[0] & 0x0f;
				if (c->opcode != 0 && c->opcode < 8) {
					c->msg_opcode = c->opcode;
					c->msg_compressed = (c->hdr[0] & 0x40) != 0;
					if (c->msg_compressed && !c->z) {
						client_fail(c, "compressed frame without permessage-deflate");
						return false;
					}
				}
				if (c->opcode < 8)
					c->msg_wire += c->hlen + len;
				c->remaining = len;
				c->hlen = 0;
				c->fst = F_PAYLOAD;
			}
		}
		if (c->fst == F_PAYLOAD) {
			size_t k = (size_t)((uint64_t)(end - p) < c->remaining ? (uint64_t)(end - p) : c->remaining);

			if (k)
				payload_bytes(c, p, k);
			if (c->state != C_WS)
				return false;
			p += k;
			c->remaining -= k;
			if (c->remaining == 0) {
				c->fst = F_HDR;
				frame_done(c, t);
			}
		}
	}
	return c->state == C_WS;
}

static void http_input(struct client *c, const uint8_t *p, size_t n, int64_t t)
{
	size_t k = PFX_MAX - 1 - c->pfx_len;
	char *e;
	size_t head;

	if (k > n)
		k = n;
	memcpy(c->pfx + c->pfx_len, p, k);
	c->pfx_len += (uint16_t)k;
	c->pfx[c->pfx_len] = 0;
	e = strstr(c->pfx, "\r\n\r\n");
	if (!e) {
		if (c->pfx_len >= PFX_MAX - 1)
			client_fail(c, "HTTP response head too large");
		return;
	}
	head = (size_t)(e + 4 - c->pfx);
	if (strncmp(c->pfx, "HTTP/1.1 101", 12) != 0) {
		char why[64];

		snprintf(why, sizeof(why), "HTTP %.3s", c->pfx_len > 12 ? c->pfx + 9 : "???");
		client_fail(c, why);
		return;
	}
	c->pfx[head] = 0;
	if (strcasestr(c->pfx, "permessage-deflate")) {
		c->deflate = true;
		c->no_ctx = strcasestr(c->pfx, "server_no_context_takeover") != NULL;
		c->z = calloc(1, sizeof(*c->z));
		if (!c->z || inflateInit2(c->z, -15) != Z_OK) {
			client_fail(c, "inflateInit");
			return;
		}
	}
	c->state = C_WS;
	c->fst = F_HDR;
	c->hlen = 0;
	{
		/* bytes after the head (from this read) are WebSocket frames */
		size_t used_before = c->pfx_len - k;
		size_t off = head - used_before;

		c->pfx_len = 0;
		if (off < n)
			ws_input(c, p + off, n - off, t);
	}
}

static void on_io(struct ev_loop *l, ev_io *w, int revents)
{
	struct client *c = w->data;

	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			client_fail(c, strerror(err));
			return;
		}
		if (!tls_ctx) {
			send_upgrade(c);
			return;
		}
		c->ssl = SSL_new(tls_ctx);
		if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
			client_fail(c, "SSL_new");
			return;
		}
		SSL_set_connect_state(c->ssl);
		c->state = C_TLS;
	}
	if (c->state == C_TLS) {
		int r, e;

		ERR_clear_error();
		r = SSL_do_handshake(c->ssl);
		if (r == 1) {
			send_upgrade(c);
			return;
		}
		e = SSL_get_error(c->ssl, r);
		ERR_clear_error();
		if (e == SSL_ERROR_WANT_READ)
			set_events(c, EV_READ);
		else if (e == SSL_ERROR_WANT_WRITE)
			set_events(c, EV_READ | EV_WRITE);
		else
			client_fail(c, "TLS handshake failed");
		return;
	}
	if ((revents & EV_WRITE) && c->out_len) {
		flush_out(c);
		if (c->state == C_CLOSED)
			return;
	}
	if (revents & EV_READ) {
		/* A TLS read is one record at most: more rounds for as much. */
		for (int rounds = 0; rounds < (c->ssl ? 64 : 4); rounds++) {
			ssize_t r = xrecv(c, scratch, SCRATCH);
			int64_t t;

			if (r < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN && errno != EWOULDBLOCK)
					client_fail(c, strerror(errno));
				return;
			}
			if (r == 0) {
				client_fail(c, "connection closed by server");
				return;
			}
			t = now_us();
			if (c->state == C_HTTP)
				http_input(c, scratch, (size_t)r, t);
			else if (c->state == C_WS)
				ws_input(c, scratch, (size_t)r, t);
			if (c->state == C_CLOSED || (!c->ssl && (size_t)r < SCRATCH))
				return;
		}
	}
}

/* ---- commands -------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int64_t pct(const int64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)n);

	if (i >= n)
		i = n - 1;
	return v[i];
}

/* t_us in the answer: when the last client got the tag (which may be
 * before the wait command arrived). */
static void check_wait(int64_t t)
{
	if (!waiting || wait_have < joined)
		return;
	waiting = false;
	ev_timer_stop(loop, &wait_timer);
	t = 0;
	for (int i = 0; i < nclients; i++)
		if (clients[i].joined && clients[i].last_tag == wait_tag && clients[i].tag_since > t)
			t = clients[i].tag_since;
	printf("{\"ev\":\"wait\",\"tag\":%" PRId64 ",\"ok\":true,\"have\":%d,\"of\":%d,\"t_us\":%" PRId64 "}\n",
	       wait_tag, wait_have, joined, t);
}

static void on_wait_timeout(struct ev_loop *l, ev_timer *w, int revents)
{
	if (!waiting)
		return;
	waiting = false;
	printf("{\"ev\":\"wait\",\"tag\":%" PRId64 ",\"ok\":false,\"have\":%d,\"of\":%d,\"t_us\":%" PRId64 "}\n",
	       wait_tag, wait_have, joined, now_us());
}

static void cmd_report(void)
{
	/* pooled over the versions that have a reference time */
	int64_t *all = NULL, *last = NULL, *first = NULL, *spread = NULL;
	size_t nall = 0, nv = 0;

	for (size_t i = 0; i < nvrecs; i++) {
		struct vrec *v = &vrecs[i];
		int64_t ref = v->tag >= 0 ? ref_for(v->tag) : 0;
		int64_t *s;

		if (!v->n)
			continue;
		s = xrealloc(NULL, v->n * sizeof(int64_t));
		memcpy(s, v->t, v->n * sizeof(int64_t));
		qsort(s, v->n, sizeof(int64_t), cmp_i64);
		printf("{\"ev\":\"version\",\"version\":%" PRId64 ",\"tag\":%" PRId64 ",\"n\":%zu,"
		       "\"payload_bytes\":%" PRIu64 ",\"wire_bytes\":%" PRIu64 ",\"compressed\":%s,"
		       "\"first_us\":%" PRId64 ",\"last_us\":%" PRId64 ",\"spread_p50_ms\":%.3f,"
		       "\"spread_p99_ms\":%.3f",
		       v->version, v->tag, v->n, v->payload_bytes, v->wire_bytes,
		       v->compressed ? "true" : "false", s[0], s[v->n - 1],
		       (pct(s, v->n, 0.5) - s[0]) / 1000.0, (pct(s, v->n, 0.99) - s[0]) / 1000.0);
		if (ref) {
			printf(",\"ref_us\":%" PRId64 ",\"lat_min_ms\":%.3f,\"lat_p50_ms\":%.3f,"
			       "\"lat_p99_ms\":%.3f,\"lat_max_ms\":%.3f",
			       ref, (s[0] - ref) / 1000.0, (pct(s, v->n, 0.5) - ref) / 1000.0,
			       (pct(s, v->n, 0.99) - ref) / 1000.0, (s[v->n - 1] - ref) / 1000.0);
			all = xrealloc(all, (nall + v->n) * sizeof(int64_t));
			for (size_t k = 0; k < v->n; k++)
				all[nall + k] = s[k] - ref;
			nall += v->n;
			last = xrealloc(last, (nv + 1) * sizeof(int64_t));
			first = xrealloc(first, (nv + 1) * sizeof(int64_t));
			spread = xrealloc(spread, (nv + 1) * sizeof(int64_t));
			last[nv] = s[v->n - 1] - ref;
			first[nv] = s[0] - ref;
			spread[nv] = s[v->n - 1] - s[0];
			nv++;
		}
		printf("}\n");
		free(s);
	}
	printf("{\"ev\":\"summary\",\"versions\":%zu,\"samples\":%zu", nv, nall);
	if (nall) {
		qsort(all, nall, sizeof(int64_t), cmp_i64);
		qsort(last, nv, sizeof(int64_t), cmp_i64);
		qsort(first, nv, sizeof(int64_t), cmp_i64);
		qsort(spread, nv, sizeof(int64_t), cmp_i64);
		printf(",\"lat_p50_ms\":%.3f,\"lat_p99_ms\":%.3f,\"lat_max_ms\":%.3f,"
		       "\"first_p50_ms\":%.3f,\"last_p50_ms\":%.3f,\"last_max_ms\":%.3f,"
		       "\"spread_p50_ms\":%.3f,\"spread_max_ms\":%.3f",
		       pct(all, nall, 0.5) / 1000.0, pct(all, nall, 0.99) / 1000.0, all[nall - 1] / 1000.0,
		       pct(first, nv, 0.5) / 1000.0, pct(last, nv, 0.5) / 1000.0, last[nv - 1] / 1000.0,
		       pct(spread, nv, 0.5) / 1000.0, spread[nv - 1] / 1000.0);
	}
	printf("}\n");
	free(all);
	free(last);
	free(first);
	free(spread);
}

static void cmd_stats(void)
{
	printf("{\"ev\":\"stats\",\"n\":%d,\"joined\":%d,\"closed\":%d,\"failed\":%d,\"conn_errors\":%" PRIu64
	       ",\"msgs\":%" PRIu64 ",\"updates\":%" PRIu64 ",\"patches\":%" PRIu64
	       ",\"error_events\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"versions\":%zu"
	       ",\"update_wire\":%" PRIu64 ",\"update_payload\":%" PRIu64 "}\n",
	       nclients, joined, closed_count, failed_final, conn_errors, total_msgs, total_updates,
	       total_patches, total_errors_ev, total_bytes, nvrecs, total_update_wire, total_update_payload);
}

static void quit(void)
{
	for (int i = 0; i < nclients; i++)
		if (clients[i].fd >= 0) {
			ev_io_stop(loop, &clients[i].io);
			close(clients[i].fd);
			clients[i].fd = -1;
		}
	cmd_stats();
	fflush(stdout);
	exit(0);
}

static void command(char *line)
{
	char cmd[16];
	long long a = 0, b = 0;
	int k = sscanf(line, "%15s %lld %lld", cmd, &a, &b);

	if (k < 1)
		return;
	if (!strcmp(cmd, "ref") && k == 3) {
		if (nrefs == caprefs) {
			caprefs = caprefs ? caprefs * 2 : 64;
			refs = xrealloc(refs, caprefs * sizeof(*refs));
		}
		refs[nrefs].tag = a;
		refs[nrefs].ref_us = b;
		nrefs++;
	} else if (!strcmp(cmd, "wait") && k == 3) {
		waiting = true;
		wait_tag = a;
		wait_have = 0;
		for (int i = 0; i < nclients; i++)
			if (clients[i].joined && clients[i].last_tag == a)
				wait_have++;
		ev_timer_stop(loop, &wait_timer);
		ev_timer_set(&wait_timer, b / 1000.0, 0);
		ev_timer_start(loop, &wait_timer);
		check_wait(now_us());
	} else if (!strcmp(cmd, "report")) {
		cmd_report();
	} else if (!strcmp(cmd, "stats")) {
		cmd_stats();
	} else if (!strcmp(cmd, "reset")) {
		for (size_t i = 0; i < nvrecs; i++)
			free(vrecs[i].t);
		nvrecs = 0;
		nrefs = 0;
	} else if (!strcmp(cmd, "quit")) {
		quit();
	} else {
		printf("{\"ev\":\"error\",\"message\":\"unknown command\"}\n");
	}
}

static void on_stdin(struct ev_loop *l, ev_io *w, int revents)
{
	ssize_t r = read(0, inbuf + inlen, sizeof(inbuf) - 1 - inlen);
	char *nl;

	if (r <= 0) {
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		quit();
	}
	inlen += (size_t)r;
	inbuf[inlen] = 0;
	while ((nl = strchr(inbuf, '\n'))) {
		*nl = 0;
		command(inbuf);
		memmove(inbuf, nl + 1, inlen - (size_t)(nl + 1 - inbuf) + 1);
		inlen -= (size_t)(nl + 1 - inbuf);
	}
	if (inlen == sizeof(inbuf) - 1)
		inlen = 0;
}

static void on_tick(struct ev_loop *l, ev_timer *w, int revents)
{
	double now = ev_now(loop);

	for (int i = 0; i < nclients; i++) {
		struct client *c = &clients[i];

		if (c->inflight && now - c->started > connect_timeout)
			client_fail(c, "handshake timeout");
	}
}

static void on_life(struct ev_loop *l, ev_timer *w, int revents)
{
	fprintf(stderr, "loadgen: --max-seconds reached, exiting\n");
	quit();
}

/* --auth-file: one CONNECT payload (a JSON object) per non-empty line. */
static void load_auth(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (!f) {
		fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (line[0] != '{') {
			fprintf(stderr, "loadgen: %s: every line must be a JSON object\n", path);
			exit(2);
		}
		auth_lines = xrealloc(auth_lines, (n_auth + 1) * sizeof(*auth_lines));
		auth_lines[n_auth] = xrealloc(NULL, (size_t)len + 3);
		memcpy(auth_lines[n_auth], "40", 2);
		memcpy(auth_lines[n_auth] + 2, line, (size_t)len + 1);
		n_auth++;
	}
	free(line);
	fclose(f);
	if (n_auth == 0) {
		fprintf(stderr, "loadgen: %s: no CONNECT payload\n", path);
		exit(2);
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: loadgen --port P [--host 127.0.0.1] [-n N] [--concurrency 500] [--tag-key KEY]\n"
		"               [--per-ip 20000] [--attempts 3] [--deflate] [--connect-timeout S]\n"
		"               [--max-seconds S] [--auth-file PATH] [--tls]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct rlimit rl;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--deflate")) {
			want_deflate = true;
			continue;
		}
		if (!strcmp(a, "--tls")) {
			tls_ctx = SSL_CTX_new(TLS_client_method());
			if (!tls_ctx)
				return 1;
			SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
			SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
						  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
						  SSL_MODE_RELEASE_BUFFERS);
			SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
			continue;
		}
		if (!v)
			usage();
		if (!strcmp(a, "--host"))
			host = v;
		else if (!strcmp(a, "--port"))
			port = atoi(v);
		else if (!strcmp(a, "-n"))
			nclients = atoi(v);
		else if (!strcmp(a, "--concurrency"))
			concurrency = atoi(v);
		else if (!strcmp(a, "--tag-key"))
			tag_key = v;
		else if (!strcmp(a, "--per-ip"))
			per_ip = atoi(v);
		else if (!strcmp(a, "--attempts"))
			max_attempts = atoi(v);
		else if (!strcmp(a, "--connect-timeout"))
			connect_timeout = atof(v);
		else if (!strcmp(a, "--max-seconds"))
			max_seconds = atof(v);
		else if (!strcmp(a, "--auth-file"))
			load_auth(v);
		else
			usage();
		i++;
	}
	if (port <= 0 || nclients <= 0 || concurrency <= 0 || per_ip <= 0 || max_attempts <= 0)
		usage();
	if (tag_key)
		snprintf(tag_pat, sizeof(tag_pat), "\"%.64s\"", tag_key);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)nclients + 16)
		fprintf(stderr, "loadgen: descriptor limit %llu is below %d clients\n",
			(unsigned long long)rl.rlim_cur, nclients);
	rng ^= (uint32_t)getpid() * 2654435761u;
	scratch = xrealloc(NULL, SCRATCH);
	zout = xrealloc(NULL, ZOUT);
	clients = calloc((size_t)nclients, sizeof(*clients));
	hs_ms = calloc((size_t)nclients, sizeof(double));
	if (!clients || !hs_ms)
		return 1;
	for (int i = 0; i < nclients; i++) {
		clients[i].fd = -1;
		clients[i].idx = i;
		clients[i].last_tag = INT64_MIN;
	}
	loop = ev_default_loop(EVFLAG_AUTO);
	ev_timer_init(&wait_timer, on_wait_timeout, 1, 0);
	ev_timer_init(&tick_timer, on_tick, 1, 1);
	ev_timer_start(loop, &tick_timer);
	ev_timer_init(&life_timer, on_life, max_seconds, 0);
	ev_timer_start(loop, &life_timer);
	ev_io_init(&stdin_io, on_stdin, 0, EV_READ);
	ev_io_start(loop, &stdin_io);
	start_more();
	ev_run(loop, 0);
	return 0;
}
