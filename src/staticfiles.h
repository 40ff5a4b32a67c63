/*
 * staticfiles: --static-dir served over HTTP/1: a GET or HEAD of a file
 * under the directory, streamed a chunk at a time (never the whole file in
 * memory); files decides which paths exist. The conn owns the stream once
 * started and closes the file when it ends.
 */
#ifndef PGPUSH_STATICFILES_H
#define PGPUSH_STATICFILES_H

#include "http.h"
#include "transport.h"

/* Answers req on c from the directory dir: the file (200), or 400, 404,
 * 500. */
void staticfiles_serve(struct conn *c, const char *dir, const struct http_request *req);

#endif
