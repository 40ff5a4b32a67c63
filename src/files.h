/*
 * files: static files for --static-dir. Maps a request path to a file below
 * the root without ever leaving it (no "..", no encoded NUL, no symlink out
 * of the root), never serves a hidden file (a path component that starts
 * with '.': .env, .git/config), and names its content type. Pure except
 * files_open, files_read_chunk and files_read.
 */
#ifndef PGPUSH_FILES_H
#define PGPUSH_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define FILES_MAX_SIZE (16u << 20)
/* What a transport streaming a file should read at a time: big enough for
 * few system calls, small enough to hold per client. */
#define FILES_CHUNK_SIZE (64u << 10)

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

/* An open regular file below the root, for streaming it to a client in
 * chunks instead of holding it whole. Embedded in its owner (the transport
 * sending it); files_close releases the descriptor. */
struct files_file {
	int fd;        /* -1 once closed */
	uint64_t size; /* at files_open: the Content-Length */
};

/* Opens root/rel for reading with the checks of files_read (a regular file
 * below root, not hidden, at most FILES_MAX_SIZE). On success fills *out
 * and returns 0; otherwise returns FILES_ERR_NOT_FOUND, FILES_ERR_TOO_LARGE
 * or FILES_ERR_IO and leaves out->fd at -1. */
int files_open(const char *root, const char *rel, struct files_file *out)
	__attribute__((warn_unused_result));

/* Reads up to len bytes at offset off into dst with pread (no shared file
 * position). Never reads at or past f->size, so that what is sent matches
 * the Content-Length even when the file grows meanwhile. Returns the bytes
 * read: less than asked only at f->size or when the file shrank (then 0
 * means the response cannot be completed: close the connection), or
 * FILES_ERR_IO. Blocks only as long as a read of a local file does. */
long files_read_chunk(const struct files_file *f, uint64_t off, void *dst, size_t len)
	__attribute__((warn_unused_result));

/* Closes the file; safe on a closed one and on NULL. */
void files_close(struct files_file *f);

/* Reads root/rel into a new buf (owned by the caller), refusing anything but
 * a regular file below root. A hidden name (files_hidden), or a name that
 * resolves to one below root through a symlink, is FILES_ERR_NOT_FOUND:
 * the same answer as a missing file, so that nothing tells it exists. */
int files_read(const char *root, const char *rel, struct buf **out)
	__attribute__((warn_unused_result));

#endif
