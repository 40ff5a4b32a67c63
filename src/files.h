/*
 * files: static files for --static-dir. Maps a request path to a file below
 * the root without ever leaving it (no "..", no encoded NUL, no symlink out
 * of the root), never serves a hidden file (a path component that starts
 * with '.': .env, .git/config), and names its content type. Pure except
 * files_read.
 */
#ifndef PGPUSH_FILES_H
#define PGPUSH_FILES_H

#include <stdbool.h>
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
 * to index.html. Returns the length written to out, or FILES_ERR_BAD_PATH.
 * A hidden name (".env") maps; files_read refuses it as not found, so that
 * the client gets the 404 of a missing file, not a 400 that tells. */
long files_map_path(const char *path, size_t len, char *out, size_t outlen);

/* True when a component of the relative name rel starts with '.': dotfiles
 * and everything below a dot-directory (.env, .git/config, a/.htpasswd,
 * .well-known/x). Such files are never served. */
bool files_hidden(const char *rel);

/* The Content-Type for a file name, by extension. */
const char *files_content_type(const char *name);

/* Reads root/rel into a new buf (owned by the caller), refusing anything but
 * a regular file below root. A hidden name (files_hidden), or a name that
 * resolves to one below root through a symlink, is FILES_ERR_NOT_FOUND:
 * the same answer as a missing file, so that nothing tells it exists. */
int files_read(const char *root, const char *rel, struct buf **out)
	__attribute__((warn_unused_result));

#endif
