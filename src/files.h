/*
 * files: static files for --static-dir. Maps a request path to a file below
 * the root without ever leaving it (no "..", no encoded NUL, no symlink out
 * of the root), and names its content type. Pure except files_read.
 */
#ifndef PGPUSH_FILES_H
#define PGPUSH_FILES_H

#include <stddef.h>

#include "buf.h"

#define FILES_MAX_SIZE (16u << 20)

enum files_error {
	FILES_ERR_BAD_PATH = -1,  /* 400 */
	FILES_ERR_NOT_FOUND = -2, /* 404 */
	FILES_ERR_TOO_LARGE = -3, /* 500: refuse to serve */
	FILES_ERR_IO = -4,        /* 500 */
};

/* Turns the request path (not decoded) into a relative file path: decodes
 * %XX, rejects "..", "." segments, NUL and backslashes, maps a trailing "/"
 * to index.html. Returns the length written to out, or FILES_ERR_BAD_PATH. */
long files_map_path(const char *path, size_t len, char *out, size_t outlen);

/* The Content-Type for a file name, by extension. */
const char *files_content_type(const char *name);

/* Reads root/rel into a new buf (owned by the caller), refusing anything but
 * a regular file below root. */
int files_read(const char *root, const char *rel, struct buf **out)
	__attribute__((warn_unused_result));

#endif
