/*
 * tls: TLS under a conn (OpenSSL), as another struct conn_io beside the
 * socket's. The listener hands each accepted conn to tls_conn_start; from
 * then on the conn's reads are SSL_read and its writes SSL_write, and the
 * protocols above (http1, websocket) never know. Frames are still built
 * and compressed once for every client: only the encryption is per client.
 *
 * The handshake is lazy and non-blocking: the first read drives it (the
 * conn's request timer bounds it), and no application byte is written
 * before it is over (such a write closes the conn: a stalled handshake
 * ends at the request timeout).
 *
 * Ciphertext goes through a BIO of our own: the records of one SSL call
 * are gathered in a per-conn buffer and sent with one send(); what the
 * socket does not take waits there, drained by the transport through
 * conn_io.flush (TLS_OUT_MAX bounds it), so SSL_write never returns
 * WANT_WRITE and a queued buffer is never half-committed to a record (the
 * transport may replace an unsent entry). The buffer is freed when empty.
 *
 * struct tls_server holds the current SSL_CTX; tls_reload builds a new one
 * and swaps it in: open conns keep the context they started with (their
 * SSL holds a reference), new handshakes use the new one.
 */
#ifndef PGPUSH_TLS_H
#define PGPUSH_TLS_H

#include <stddef.h>

#include "transport.h"

struct tls_server;

/* Ciphertext held per conn before writes wait: at most this plus one
 * record (16 KB + 22). It is real memory per slow client, outside the
 * transport's --max-pending-bytes and the global unsent budget (which
 * count references to shared buffers), so it stays small; the kernel's
 * socket buffer does the rest. */
#define TLS_OUT_MAX (16u << 10)

/* Loads cert (PEM, the certificate then its chain) and key. NULL with a
 * one-line message in err. */
struct tls_server *tls_server_new(const char *cert, const char *key, char *err, size_t errlen);

/* Builds a new context from cert and key; on success new handshakes use
 * it and 0 is returned. On failure the old one stays, the reason is
 * logged, and -1 is returned. Open conns are never touched. */
int tls_reload(struct tls_server *ts, const char *cert, const char *key);

/* Frees ts (conns still open keep their own reference to the context). */
void tls_server_free(struct tls_server *ts);

/* The TLS I/O: install with conn_new(..., &tls_conn_io), then call
 * tls_conn_start before anything reads. */
extern const struct conn_io tls_conn_io;

/* Attaches a server-side SSL to c (its descriptor). Returns 0, or -1 when
 * out of memory (the caller closes c). */
int tls_conn_start(struct tls_server *ts, struct conn *c);

#endif
