/*
 * t_tls: the TLS conn_io over a real socket pair and a real loop, against
 * an OpenSSL client in the same process: the handshake, bytes both ways,
 * a 3 MB response to a client that does not read (the transport keeps it
 * queued; nothing is lost or duplicated once the client reads), a write
 * before the handshake (the conn closes), and tls_reload (a bad file keeps
 * the certificate; a good one serves new connections while an open one
 * keeps working).
 */
#include "autoconfig.h"

#include "config.h"
#include "log.h"
#include "tls.h"
#include "transport.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static struct ev_loop *loop;
static struct conn_ctx cx;
static struct config cfg;
static char got[64];
static size_t got_len;

static const char *no_env(const char *name)
{
	(void)name;
	return NULL;
}

/* A self-signed P-256 certificate for localhost with this serial (and a
 * subject of its own: the client trusts both, and finds an issuer by its
 * subject). */
static void make_cert(const char *crt, const char *key, long serial)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	FILE *f;

	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pk);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)(serial == 1 ? "t_tls one" : "t_tls two"), -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	X509_sign(x, pk, EVP_sha256());
	f = fopen(crt, "w");
	PEM_write_X509(f, x);
	fclose(f);
	f = fopen(key, "w");
	PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
}

static void t_readable(struct conn *c)
{
	for (;;) {
		char buf[64];
		ssize_t r = conn_read(c, buf, sizeof(buf));

		if (r > 0) {
			size_t n = (size_t)r < sizeof(got) - got_len ? (size_t)r : sizeof(got) - got_len;

			memcpy(got + got_len, buf, n);
			got_len += n;
			continue;
		}
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_close(c, r == 0 ? "eof" : "read error");
		return;
	}
}

static const struct conn_proto t_proto = { .readable = t_readable };

struct pair {
	struct conn *c;
	SSL *cli;
	int cfd;
};

/* A server conn on one end of a socket pair, an OpenSSL client on the other. */
static struct pair open_pair(struct tls_server *ts, SSL_CTX *cctx, int sndbuf)
{
	struct pair p = { 0 };
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	if (sndbuf)
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	p.c = conn_new(&cx, sv[0], "test", &tls_conn_io);
	if (!p.c || tls_conn_start(ts, p.c) < 0)
		abort();
	p.c->proto = &t_proto;
	ev_io_start(loop, &p.c->rio);
	p.cfd = sv[1];
	p.cli = SSL_new(cctx);
	SSL_set_fd(p.cli, sv[1]);
	SSL_set_tlsext_host_name(p.cli, "localhost");
	SSL_set1_host(p.cli, "localhost");
	SSL_set_connect_state(p.cli);
	return p;
}

static bool handshake(struct pair *p)
{
	for (int i = 0; i < 1000; i++) {
		int r = SSL_do_handshake(p->cli);

		if (r == 1)
			return true;
		if (SSL_get_error(p->cli, r) != SSL_ERROR_WANT_READ &&
		    SSL_get_error(p->cli, r) != SSL_ERROR_WANT_WRITE)
			return false;
		ev_run(loop, EVRUN_NOWAIT);
	}
	return false;
}

static long peer_serial(SSL *s)
{
	X509 *x = SSL_get1_peer_certificate(s);
	long v = x ? ASN1_INTEGER_get(X509_get0_serialNumber(x)) : -1;

	X509_free(x);
	return v;
}

static void close_pair(struct pair *p)
{
	SSL_free(p->cli);
	close(p->cfd);
}

int main(void)
{
	char dir[] = "/tmp/t_tls.XXXXXX";
	char a_crt[64], a_key[64], b_crt[64], b_key[64], bad[64], err[512];
	char arg0[] = "t_tls";
	char *argv[] = { arg0, NULL };
	struct tls_server *ts;
	SSL_CTX *cctx;
	struct pair p, q, early;
	struct buf *big;
	size_t total = 0;
	bool intact = true;

	log_set_level(LOG_ERROR);
	if (!mkdtemp(dir))
		return 1;
	snprintf(a_crt, sizeof(a_crt), "%s/a.pem", dir);
	snprintf(a_key, sizeof(a_key), "%s/a.key", dir);
	snprintf(b_crt, sizeof(b_crt), "%s/b.pem", dir);
	snprintf(b_key, sizeof(b_key), "%s/b.key", dir);
	snprintf(bad, sizeof(bad), "%s/bad.pem", dir);
	make_cert(a_crt, a_key, 1);
	make_cert(b_crt, b_key, 2);
	{
		FILE *f = fopen(bad, "w");

		fputs("not a certificate\n", f);
		fclose(f);
	}
	if (config_parse(&cfg, 1, argv, no_env, stdout, err, sizeof(err)) != CONFIG_OK)
		return 1;
	loop = ev_default_loop(0);
	conn_ctx_init(&cx, loop, &cfg);

	ok(tls_server_new("/nonexistent.pem", a_key, err, sizeof(err)) == NULL, "a missing certificate");
	ok(strstr(err, "/nonexistent.pem") != NULL, "the error names it: %s", err);
	ok(tls_server_new(a_crt, b_key, err, sizeof(err)) == NULL, "a key of another certificate");
	ts = tls_server_new(a_crt, a_key, err, sizeof(err));
	ok(ts != NULL, "a certificate and its key: %s", ts ? "loaded" : err);
	if (!ts)
		return done_testing();

	cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_load_verify_locations(cctx, a_crt, NULL);
	SSL_CTX_load_verify_locations(cctx, b_crt, NULL);

	/* The handshake and bytes both ways. */
	p = open_pair(ts, cctx, 16384);
	ok(handshake(&p), "the handshake completes (the client checks the certificate)");
	is_int(peer_serial(p.cli), 1, "the first certificate");
	SSL_write(p.cli, "hello", 5);
	for (int i = 0; i < 10 && got_len < 5; i++)
		ev_run(loop, EVRUN_NOWAIT);
	ok(got_len == 5 && memcmp(got, "hello", 5) == 0, "the server reads what the client sent");

	/* 3 MB to a client that does not read: it stays queued. */
	big = buf_new(3u << 20);
	for (size_t i = 0; i < big->len; i++)
		big->data[i] = (uint8_t)(i * 7 + i / 65536);
	is_int(conn_send(p.c, big, false), 0, "3 MB queued");
	for (int i = 0; i < 20; i++)
		ev_run(loop, EVRUN_NOWAIT);
	ok(p.c->out_bytes > (1u << 20), "the client reads nothing: %zu bytes still queued", p.c->out_bytes);
	ok(!conn_is_closed(p.c), "and the conn waits");
	/* The client reads: every byte, in order, once. */
	for (int i = 0; i < 100000 && total < big->len; i++) {
		uint8_t in[16384];
		int r = SSL_read(p.cli, in, sizeof(in));

		if (r > 0) {
			intact = intact && memcmp(in, big->data + total, (size_t)r) == 0;
			total += (size_t)r;
		}
		ev_run(loop, EVRUN_NOWAIT);
	}
	is_int(total, big->len, "the client got 3 MB");
	ok(intact, "byte for byte");
	is_int(p.c->out_bytes, 0, "nothing left queued");
	buf_unref(big);

	/* Reload: a bad file keeps the certificate, a good one is used by new
	 * connections; the open one goes on. */
	is_int(tls_reload(ts, bad, a_key), -1, "a bad certificate is refused");
	q = open_pair(ts, cctx, 0);
	ok(handshake(&q), "a new connection after the failed reload");
	is_int(peer_serial(q.cli), 1, "still the first certificate");
	close_pair(&q);
	is_int(tls_reload(ts, b_crt, b_key), 0, "the second certificate loads");
	q = open_pair(ts, cctx, 0);
	ok(handshake(&q), "a new connection after the reload");
	is_int(peer_serial(q.cli), 2, "sees the second certificate");
	close_pair(&q);
	got_len = 0;
	SSL_write(p.cli, "again", 5);
	for (int i = 0; i < 10 && got_len < 5; i++)
		ev_run(loop, EVRUN_NOWAIT);
	ok(got_len == 5 && memcmp(got, "again", 5) == 0 && !conn_is_closed(p.c),
	   "the connection opened before the reload still works");

	/* Nothing is written before the handshake: the conn closes. */
	early = open_pair(ts, cctx, 0);
	big = buf_from("HTTP/1.1 408 Request Timeout\r\n\r\n", 33);
	(void)conn_send(early.c, big, false);
	buf_unref(big);
	ok(conn_is_closed(early.c), "a write before the handshake closes the conn");
	close_pair(&early);

	close_pair(&p);
	conn_ctx_free(&cx);
	tls_server_free(ts);
	SSL_CTX_free(cctx);
	config_free(&cfg);
	ev_loop_destroy(loop);
	unlink(a_crt);
	unlink(a_key);
	unlink(b_crt);
	unlink(b_key);
	unlink(bad);
	rmdir(dir);
	return done_testing();
}
