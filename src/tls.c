#include "autoconfig.h"

#include "tls.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct tls_server {
	SSL_CTX *ctx;        /* new handshakes; open conns hold their own reference */
	BIO_METHOD *out_method;
};

/* A conn's TLS state (c->io_data). */
struct tls_conn {
	SSL *ssl;
	unsigned char *out;  /* ciphertext the socket has not taken yet */
	size_t out_off, out_len, out_cap;
	bool failed;         /* a socket write failed */
	bool shut;           /* close_notify queued */
};

static const unsigned char alpn_http11[] = "\x08http/1.1";

/* The first line of OpenSSL's error queue, which is then cleared. */
static const char *ssl_errstr(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "%s", "unknown error");
	ERR_clear_error();
	return buf;
}

/* ---- the output BIO ------------------------------------------------------------ */

/* Sends what is held. 0: all gone; 1: the socket is full; -1: an error. */
static int out_send(struct conn *c, struct tls_conn *t)
{
	while (t->out_off < t->out_len) {
		ssize_t w = send(c->fd, t->out + t->out_off, t->out_len - t->out_off, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			t->failed = true;
			return -1;
		}
		t->out_off += (size_t)w;
	}
	/* Empty: an idle client holds no buffer. */
	free(t->out);
	t->out = NULL;
	t->out_off = t->out_len = t->out_cap = 0;
	return 0;
}

static int out_append(struct tls_conn *t, const unsigned char *data, size_t len)
{
	if (t->out_len + len > t->out_cap) {
		size_t live = t->out_len - t->out_off;
		size_t cap = t->out_cap ? t->out_cap : 4096;
		unsigned char *p;

		while (cap < live + len)
			cap *= 2;
		if (t->out_off || cap != t->out_cap) {
			p = malloc(cap);
			if (!p)
				return -1;
			if (live)
				memcpy(p, t->out + t->out_off, live);
			free(t->out);
			t->out = p;
			t->out_cap = cap;
			t->out_off = 0;
			t->out_len = live;
		}
	}
	memcpy(t->out + t->out_len, data, len);
	t->out_len += len;
	return 0;
}

/* Takes every record into the buffer, never "retry": what one SSL call
 * produces (a handshake flight, the records of one writev) leaves in one
 * send() after it (out_send), not one small segment per record. */
static int bio_out_write(BIO *b, const char *data, int len)
{
	struct conn *c = BIO_get_data(b);
	struct tls_conn *t = c->io_data;

	if (len <= 0)
		return 0;
	if (t->failed || out_append(t, (const unsigned char *)data, (size_t)len) < 0)
		return -1;
	return len;
}

static long bio_out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_WPENDING: {
		struct conn *c = BIO_get_data(b);
		struct tls_conn *t = c->io_data;

		return (long)(t->out_len - t->out_off);
	}
	default:
		return 0;
	}
}

static int bio_out_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/* ---- the context ----------------------------------------------------------------- */

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char *sel;

	/* http/1.1 or nothing: a client that offers only h2 gets the
	 * no_application_protocol alert (RFC 7301 §3.2), not a stream it
	 * cannot read. */
	if (SSL_select_next_proto(&sel, outlen, alpn_http11, sizeof(alpn_http11) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char e[256];

	if (!ctx) {
		snprintf(err, errlen, "cannot create a TLS context: %s", ssl_errstr(e, sizeof(e)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
				 | SSL_OP_IGNORE_UNEXPECTED_EOF
#endif
	);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
			      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
	/* Resumption by tickets only (stateless): no server-side cache that
	 * grows with every handshake and holds memory after the client left. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, errlen, "cannot load the TLS certificate %s: %s", cert,
			 ssl_errstr(e, sizeof(e)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "cannot load the TLS key %s: %s", key, ssl_errstr(e, sizeof(e)));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "the TLS key %s does not match the certificate %s: %s", key, cert,
			 ssl_errstr(e, sizeof(e)));
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static void log_cert(SSL_CTX *ctx, const char *what, const char *cert)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	char subject[256] = "?", serial[128] = "?";

	if (x) {
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;

		X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
		if (hex)
			snprintf(serial, sizeof(serial), "%s", hex);
		OPENSSL_free(hex);
		BN_free(bn);
	}
	log_info("tls: %s %s subject=%s serial=%s", what, cert, subject, serial);
}

struct tls_server *tls_server_new(const char *cert, const char *key, char *err, size_t errlen)
{
	struct tls_server *ts = calloc(1, sizeof(*ts));

	if (!ts) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ts->out_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pgpush-out");
	if (!ts->out_method || !BIO_meth_set_write(ts->out_method, bio_out_write) ||
	    !BIO_meth_set_ctrl(ts->out_method, bio_out_ctrl) ||
	    !BIO_meth_set_create(ts->out_method, bio_out_create)) {
		snprintf(err, errlen, "cannot create a BIO method");
		tls_server_free(ts);
		return NULL;
	}
	ts->ctx = ctx_new(cert, key, err, errlen);
	if (!ts->ctx) {
		tls_server_free(ts);
		return NULL;
	}
	log_cert(ts->ctx, "serving", cert);
	return ts;
}

int tls_reload(struct tls_server *ts, const char *cert, const char *key)
{
	char err[512];
	SSL_CTX *ctx;

	if (!ts)
		return 0;
	ctx = ctx_new(cert, key, err, sizeof(err));
	if (!ctx) {
		log_error("tls: reload failed, keeping the current certificate: %s", err);
		return -1;
	}
	SSL_CTX_free(ts->ctx); /* conns still using it hold a reference */
	ts->ctx = ctx;
	log_cert(ctx, "reloaded", cert);
	return 0;
}

void tls_server_free(struct tls_server *ts)
{
	if (!ts)
		return;
	SSL_CTX_free(ts->ctx);
	BIO_meth_free(ts->out_method);
	free(ts);
}

/* ---- a conn --------------------------------------------------------------------- */

int tls_conn_start(struct tls_server *ts, struct conn *c)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	BIO *rbio = NULL, *wbio = NULL;

	if (!t)
		return -1;
	t->ssl = SSL_new(ts->ctx);
	rbio = BIO_new_socket(c->fd, BIO_NOCLOSE);
	wbio = BIO_new(ts->out_method);
	if (!t->ssl || !rbio || !wbio) {
		BIO_free(rbio);
		BIO_free(wbio);
		SSL_free(t->ssl);
		free(t);
		ERR_clear_error();
		return -1;
	}
	BIO_set_data(wbio, c);
	SSL_set_bio(t->ssl, rbio, wbio);
	SSL_set_accept_state(t->ssl);
	c->io_data = t;
	/* Records are gathered here, so Nagle would only delay them (the
	 * WebSocket upgrade sets it too, but the handshake comes first). */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	return 0;
}

/* After any SSL call: what it produced (handshake records, alerts,
 * tickets) goes out now, or waits for writability. */
static void after_call(struct conn *c, struct tls_conn *t)
{
	if (out_send(c, t) > 0 && c->io->evented && c->state != CONN_CLOSED)
		ev_io_start(c->ctx->loop, &c->wio); /* conn_flush drains it (io.flush) */
}

static ssize_t tls_read(struct conn *c, void *buf, size_t len)
{
	struct tls_conn *t = c->io_data;
	int r, e, saved;
	char msg[256];

	if (len > INT32_MAX)
		len = INT32_MAX;
	ERR_clear_error();
	r = SSL_read(t->ssl, buf, (int)len);
	e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
	saved = errno;
	after_call(c, t);
	errno = saved; /* the read's, not the send's */
	if (r > 0) {
		/* Decrypted bytes the reader did not take: the socket may not
		 * wake us again for them. */
		if (SSL_has_pending(t->ssl) && c->io->evented && ev_is_active(&c->rio))
			ev_feed_event(c->ctx->loop, &c->rio, EV_READ);
		return r;
	}
	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0 && (errno == 0 || errno == EAGAIN)) {
			ERR_clear_error();
			return 0; /* EOF without close_notify */
		}
		ERR_clear_error();
		if (errno == 0 || errno == EAGAIN)
			errno = ECONNRESET;
		return -1;
	default:
		log_info("tls: %s peer=%s: %s",
			 SSL_is_init_finished(t->ssl) ? "error" : "handshake failed", c->peer,
			 ssl_errstr(msg, sizeof(msg)));
		errno = EPROTO;
		return -1;
	}
}

#define TLS_RECORD 16384       /* plaintext bytes of a full record */
#define TLS_SMALL_PIECE 2048   /* pieces below it are gathered into one record */

/* Encrypts len bytes into records of at most TLS_RECORD; adds what went
 * to *total. -1 when it stopped early (buffer full, or an error). */
static int put(struct tls_conn *t, const unsigned char *p, size_t len, size_t *total)
{
	while (len) {
		int chunk = len > TLS_RECORD ? TLS_RECORD : (int)len;
		int r;

		if (t->out_len - t->out_off >= TLS_OUT_MAX)
			return -1;
		r = SSL_write(t->ssl, p, chunk);
		if (r <= 0) {
			if (SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ)
				t->failed = true;
			ERR_clear_error();
			return -1;
		}
		p += r;
		len -= (size_t)r;
		*total += (size_t)r;
	}
	return 0;
}

static ssize_t tls_writev(struct conn *c, const struct iovec *iov, int n)
{
	struct tls_conn *t = c->io_data;
	static unsigned char gather[TLS_RECORD]; /* one loop, one thread */
	size_t total = 0, glen = 0;
	bool stop = false;

	/* No application data before the handshake is over: only an error
	 * response can come that early (a request timeout), and the peer
	 * could not read it anyway. */
	if (!SSL_is_init_finished(t->ssl)) {
		log_debug("tls: handshake not finished in time peer=%s", c->peer);
		errno = EPIPE;
		return -1;
	}
	if (out_send(c, t) < 0) {
		errno = EPIPE;
		return -1;
	}
	if (t->out_len - t->out_off >= TLS_OUT_MAX) {
		errno = EAGAIN;
		return -1;
	}
	ERR_clear_error();
	for (int i = 0; i < n && !stop; i++) {
		const unsigned char *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;

		/* Small pieces (a polling response's head, an ack) share a
		 * record instead of paying one each. */
		if (len < TLS_SMALL_PIECE && glen + len <= sizeof(gather)) {
			memcpy(gather + glen, p, len);
			glen += len;
			continue;
		}
		if (glen) {
			stop = put(t, gather, glen, &total) < 0;
			glen = 0; /* one record: all of it went, or none */
			if (stop)
				break;
		}
		if (len < TLS_SMALL_PIECE) {
			memcpy(gather, p, len);
			glen = len;
			continue;
		}
		stop = put(t, p, len, &total) < 0;
	}
	if (!stop && glen)
		(void)put(t, gather, glen, &total);
	if (out_send(c, t) < 0 || (t->failed && total == 0)) {
		errno = EPIPE;
		return -1;
	}
	if (total == 0) {
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)total;
}

static int tls_flush(struct conn *c)
{
	return out_send(c, c->io_data);
}

static void tls_shutdown_write(struct conn *c)
{
	struct tls_conn *t = c->io_data;

	if (SSL_is_init_finished(t->ssl) && !t->shut) {
		t->shut = true;
		ERR_clear_error();
		(void)SSL_shutdown(t->ssl); /* close_notify; we do not wait for theirs */
		ERR_clear_error();
	}
	if (out_send(c, t) == 0)
		shutdown(c->fd, SHUT_WR);
}

static void tls_close(struct conn *c)
{
	struct tls_conn *t = c->io_data;

	if (t) {
		if (!t->shut && !t->failed && SSL_is_init_finished(t->ssl)) {
			/* Best effort: a close_notify if the socket takes it now. */
			t->shut = true;
			ERR_clear_error();
			(void)SSL_shutdown(t->ssl);
			(void)out_send(c, t);
		}
		ERR_clear_error();
		SSL_free(t->ssl);
		free(t->out);
		free(t);
		c->io_data = NULL;
	}
	close(c->fd);
	c->fd = -1;
}

const struct conn_io tls_conn_io = {
	.read = tls_read,
	.writev = tls_writev,
	.flush = tls_flush,
	.shutdown_write = tls_shutdown_write,
	.close = tls_close,
	.evented = true,
};
