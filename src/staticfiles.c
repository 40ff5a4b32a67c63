#include "autoconfig.h"
#include "staticfiles.h"
#include "buf.h"
#include "files.h"
#include "http1.h"

#include <stdint.h>
#include <stdlib.h>

/* A static file streamed to one client (conn_stream): a chunk at a time,
 * never the whole file in memory. */
struct file_stream {
	struct files_file f;
	uint64_t off;
};

static struct buf *file_next(void *ud, size_t max, bool *end)
{
	struct file_stream *fs = ud;
	uint64_t left = fs->f.size - fs->off;
	size_t n = left < max ? (size_t)left : max;
	struct buf *b = buf_new(n);
	long r;

	if (!b)
		return NULL;
	r = files_read_chunk(&fs->f, fs->off, b->data, n);
	if (r < 0 || (size_t)r != n) { /* an error, or the file shrank */
		buf_unref(b);
		return NULL;
	}
	fs->off += n;
	*end = fs->off == fs->f.size;
	return b;
}

static void file_done(void *ud)
{
	struct file_stream *fs = ud;

	files_close(&fs->f);
	free(fs);
}

static const struct conn_source file_source = { file_next, file_done };

void staticfiles_serve(struct conn *c, const char *dir, const struct http_request *req)
{
	char rel[1024];
	struct file_stream *fs;
	long n = files_map_path(req->path, req->path_len, rel, sizeof(rel));
	int rc;

	if (n < 0) {
		http1_respond(c, 400, NULL, "text/plain; charset=utf-8", "Bad Request\n", 12);
		return;
	}
	fs = calloc(1, sizeof(*fs));
	if (!fs) {
		http1_respond(c, 500, NULL, "text/plain; charset=utf-8", "Internal Server Error\n", 22);
		return;
	}
	rc = files_open(dir, rel, &fs->f);
	if (rc < 0) {
		free(fs);
		if (rc == FILES_ERR_NOT_FOUND)
			http1_respond(c, 404, NULL, "text/plain; charset=utf-8", "Not Found\n", 10);
		else
			http1_respond(c, 500, NULL, "text/plain; charset=utf-8",
				      "Internal Server Error\n", 22);
		return;
	}
	http1_respond_stream(c, 200, "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n",
			     files_content_type(rel), fs->f.size, &file_source, fs);
}
